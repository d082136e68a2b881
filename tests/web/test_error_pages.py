"""A refused or missing page keeps the navigation, so staff can go on from it; a 500 page asks nothing of the
database, which may be what failed."""
import pytest

from tests.support.pages import STAFF, login, soup

pytestmark = pytest.mark.usefixtures("request_context")


def nav_links(page):
    return [link.get_text(strip=True) for link in page.select("nav.mainnav a")]


def test_a_403_page_keeps_the_navigation(client, staff):
    login(client, *STAFF)
    response = client.get("/users")
    assert response.status_code == 403
    page = soup(response)
    assert nav_links(page)[:4] == ["Dashboard", "Phone numbers", "Clients", "Call log"]
    assert "Users" not in nav_links(page), "staff are not offered the admins' page"
    assert page.find("form", action="/logout") is not None


def test_a_404_page_keeps_the_navigation(admin_client):
    response = admin_client.get("/clients/424242")
    assert response.status_code == 404
    assert "Users" in nav_links(soup(response))


def test_a_500_page_shows_the_brand_alone(app, admin_client, monkeypatch):
    from phoneapp.web import dashboard

    def broken(**_):
        raise RuntimeError("boom")

    monkeypatch.setattr(dashboard, "dashboard_figures", broken)
    app.testing, app.config["PROPAGATE_EXCEPTIONS"] = False, False
    response = admin_client.get("/")
    assert response.status_code == 500
    page = soup(response)
    assert nav_links(page) == [] and page.find(class_="brand") is not None
