"""The routing cache outside the database: kept current, and used when the database is unreachable."""
import xml.etree.ElementTree as ET

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.services import assignments, clients
from phoneapp.services.routing_table import refresh_routing_cache, routing_cache
from tests.conftest import base_environ, make_app, sign
from tests.test_webhooks import TRACKING, voice_params

UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:9/phoneapp"


def setup_routing(app):
    with app.app_context():
        client = clients.create_client({"name": "Acme", "phone": "+14155550187"}, "US")
        from phoneapp.models import PhoneAssignment

        number = PhoneAssignment(twilio_sid="PN" + "1" * 32, phone_number=TRACKING)
        db.session.add(number)
        db.session.commit()
        assignments.update_assignment(number, {"client_id": client.id})
        entry = routing_cache().lookup(TRACKING)
        db.session.remove()
        return entry


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


def down_app(tmp_path):
    """A second web process sharing the instance folder whose database cannot be reached."""
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")},
                      environ=base_environ(tmp_path, DATABASE_URL=UNREACHABLE_DATABASE))


def post_signed(app, path, params):
    url = app.config["PUBLIC_BASE_URL"] + path
    return app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(app, url, params)})


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
