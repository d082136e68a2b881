"""The routing cache outside the database: kept current, and used when the database is unreachable."""
import xml.etree.ElementTree as ET

from phoneapp.services import assignments, clients
from phoneapp.services.routing_table import refresh_routing_cache, routing_cache
from tests.support.apps import make_app
from tests.support.webhooks import TRACKING, down_app, post_signed, setup_routing, voice_params


def test_cache_follows_assignment_changes(app, make_client, make_number):
    number = make_number(phone_number=TRACKING)
    refresh_routing_cache()
    assert routing_cache().lookup(TRACKING).target is None
    client = make_client(phone="+14155550187")
    assignments.update_assignment(number, {"client_id": client.id})
    assert routing_cache().lookup(TRACKING).target == "+14155550187"
    assignments.update_assignment(number, {"forward_to_number": "+1 415 555 0166"})
    assert routing_cache().lookup(TRACKING).target == "+14155550166"
    clients.update_client(client, {"phone": "+14155550142"}, "US")
    assert routing_cache().lookup(TRACKING).target == "+14155550166"
    assignments.update_assignment(number, {"forward_to_number": None})
    assert routing_cache().lookup(TRACKING).target == "+14155550142"


def test_voice_webhook_answers_from_cache_when_database_is_down(tmp_path, migrated_postgres):
    assert setup_routing(make_app(tmp_path)).target == "+14155550187"
    app = down_app(tmp_path)
    with app.app_context():
        response = post_signed(app, "/twilio/voice", voice_params())
        assert response.status_code == 200
        assert ET.fromstring(response.data).find("Dial/Number").text == "+14155550187"


def test_fallback_url_answers_from_cache_without_the_database(tmp_path, migrated_postgres):
    setup_routing(make_app(tmp_path))
    app = down_app(tmp_path)
    with app.app_context():
        response = post_signed(app, "/twilio/fallback", voice_params())
        assert ET.fromstring(response.data).find("Dial/Number").text == "+14155550187"
        unknown = post_signed(app, "/twilio/fallback", voice_params(to="+14155550111"))
        assert ET.fromstring(unknown.data).find("Say") is not None
