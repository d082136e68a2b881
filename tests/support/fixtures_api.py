"""Fixtures for the API (a pytest plugin, loaded by the root conftest): a staff user's token client."""
import pytest

from phoneapp.services import users
from tests.support.api import ApiClient


@pytest.fixture
def api(app, staff):
    """A staff user's token client; a fresh test client so no session cookie is ever involved."""
    return ApiClient(app.test_client(), users.issue_token(staff))
