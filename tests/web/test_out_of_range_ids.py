"""Ids and times in staff URLs that no row or clock can hold are a 404 or ignored, never a 500 (issue: 500s)."""
import pytest

from tests.support.pages import HX, csrf_headers, soup

pytestmark = pytest.mark.usefixtures("request_context")

HUGE = "99999999999999999999"
JUST_PAST = str(2**31)

PAGES = ["/clients/{id}", "/clients/{id}/edit", "/numbers/{id}", "/numbers/{id}/edit", "/users/{id}",
         "/partials/numbers/{id}/card", "/partials/numbers/{id}/edit", "/partials/test-calls/{id}"]
POSTS = ["/clients/{id}/edit", "/clients/{id}/delete", "/partials/numbers/{id}", "/partials/numbers/{id}/active",
         "/partials/numbers/{id}/test", "/partials/numbers/{id}/simulate-call", "/alerts/{id}/acknowledge",
         "/users/{id}/role", "/users/{id}/deactivate", "/users/{id}/activate", "/users/{id}/tokens",
         "/users/1/tokens/{id}/revoke"]


@pytest.mark.parametrize("row_id", [HUGE, JUST_PAST])
@pytest.mark.parametrize("path", PAGES)
def test_a_page_for_an_id_past_the_integer_range_is_not_found(admin_client, path, row_id):
    response = admin_client.get(path.format(id=row_id))
    assert response.status_code == 404
    assert "Not Found" in response.get_data(as_text=True)


@pytest.mark.parametrize("row_id", [HUGE, JUST_PAST])
@pytest.mark.parametrize("path", POSTS)
def test_a_form_post_for_an_id_past_the_integer_range_is_not_found(admin_client, path, row_id):
    response = admin_client.post(path.format(id=row_id), data={"is_active": "false", "role": "staff"},
                                 headers=csrf_headers(admin_client))
    assert response.status_code == 404


def test_a_card_asked_about_an_impossible_test_call_shows_the_card(admin_client, assigned):
    response = admin_client.get(f"/partials/numbers/{assigned.id}/card?test_call={HUGE}", headers=HX)
    assert response.status_code == 200
    assert soup(response).find(id=f"number-{assigned.id}") is not None


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00", "0001-01-01", "9999-12-31T23:59:59"])
def test_changes_since_the_edge_of_time_answer(admin_client, assigned, since):
    response = admin_client.get("/partials/numbers/changes", query_string={"since": since, "card": assigned.id},
                                headers=HX)
    assert response.status_code == 200
    assert soup(response).find(id="number-changes") is not None
