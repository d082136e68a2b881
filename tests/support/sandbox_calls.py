"""Reading what a sandbox call did: the call's record, and the numbers each of phoneapp's <Dial>s rang."""
import xml.etree.ElementTree as ET

import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import CallRecord


def the_call():
    """The one call recorded, as the database has it now."""
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord)).one()


def rung(call):
    """The numbers each <Dial> phoneapp answered with rang, in order."""
    return [[number.text for number in ET.fromstring(request.body).iter("Number")]
            for request in call.requests if request.body and "<Dial" in request.body]
