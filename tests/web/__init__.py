"""Tests of the staff pages (phoneapp/web/): every area's page, its fragments and forms, and the browser."""
