"""App-wide tests: settings, security headers, migrations, outages of Redis, the architecture."""
