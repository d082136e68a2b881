"""Twilio's side of the webhooks: signatures, a voice webhook's form, and apps whose database is gone."""
from twilio.request_validator import RequestValidator

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.services import assignments, clients
from phoneapp.services.routing_table import routing_cache
from tests.support.apps import base_environ

TRACKING = "+14155550100"
CALLER = "+12025550143"
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:9/phoneapp"


def sign(app, url, params):
    return RequestValidator(app.config["TWILIO_AUTH_TOKEN"]).compute_signature(url, params)


def voice_params(call_sid="CA" + "1" * 32, to=TRACKING, caller=CALLER, **extra):
    params = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": caller, "To": to,
              "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01",
              "FromCity": "WASHINGTON", "FromState": "DC", "FromCountry": "US"}
    params.update(extra)
    return params


def post_signed(app, path, params):
    url = app.config["PUBLIC_BASE_URL"] + path
    return app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(app, url, params)})


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


def down_app(tmp_path):
    """A second web process sharing the instance folder whose database cannot be reached."""
    return create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")},
                      environ=base_environ(tmp_path, DATABASE_URL=UNREACHABLE_DATABASE))
