"""A local SMTP server (aiosmtpd) that keeps what admins are sent, for the e-mail tests."""
import email
from email import policy

from aiosmtpd.controller import Controller


class Inbox:
    """An aiosmtpd handler keeping every message it accepts, and refusing the addresses it is told to."""

    def __init__(self, refuse=()):
        self.messages = []
        self.refuse = set(refuse)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def received_by(self, address):
        return [message for recipients, message in self.messages if address in recipients]

    def subjects(self):
        return [message["Subject"] for _recipients, message in self.messages]


def start_smtp(port, inbox, **options):
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=5, **options)
    controller.start()
    return controller
