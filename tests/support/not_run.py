"""What the suite could not run here: noted by fixtures and tests, said once at the end by the root conftest."""
import os

IN_CI = os.environ.get("CI", "").lower() == "true"

_not_run = []


def note_not_run(what, why, service=False):
    """Record something the suite could not run here; said once at the end.

    `service`: it needs a service URL (TEST_DATABASE_URL, TEST_REDIS_URL). CI runs the suite twice, on the
    embedded defaults and then with the services, so there only the services pass must run such tests.
    Anything else not run (no browser) fails a CI run.
    """
    if (what, why, service) not in _not_run:
        _not_run.append((what, why, service))


def not_run():
    """(what, why, service) of everything noted so far."""
    return list(_not_run)
