"""The test suite, grouped like the code: one folder per area, shared helpers in tests/support/."""
