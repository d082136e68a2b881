"""Tests of the services (phoneapp/services/) on their own."""
