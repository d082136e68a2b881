"""Plain helpers and constants for the tests, imported as `from tests.support.<module> import ...`.

The `fixtures_*` modules here are the exception: pytest plugins loaded by the root conftest's `pytest_plugins`,
holding fixtures only, and never imported by a test.
"""
