"""Driving the JSON API: a bearer-token client, a page's CSRF token, and the shape of an error answer."""
import json

from bs4 import BeautifulSoup


class ApiClient:
    """A test client sending JSON bodies, with `Authorization: Bearer <token>` unless token is None."""

    def __init__(self, client, token=None):
        self.client = client
        self.token = token

    def open(self, method, path, body=None, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        if body is not None:
            kwargs.setdefault("data", json.dumps(body))
            kwargs.setdefault("content_type", "application/json")
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.open("POST", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.open("PATCH", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.open("DELETE", path, **kwargs)


def page_csrf_token(client):
    """The token a logged-in page hands its scripts in <meta name="csrf-token">."""
    page = ApiClient(client).get("/", follow_redirects=True)
    assert page.status_code == 200, page.status_code
    return BeautifulSoup(page.data, "html.parser").find("meta", {"name": "csrf-token"})["content"]


def assert_error(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "details"} and isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    return body
