"""Fixtures for the e-mail tests: a local SMTP server (aiosmtpd) and what it received."""
import pytest

from tests.support.mail import Inbox, start_smtp
from tests.support.ports import free_port


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def inbox(smtp_port):
    inbox = Inbox()
    controller = start_smtp(smtp_port, inbox)
    yield inbox
    controller.stop()
