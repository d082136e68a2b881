"""Ports for the tests' own servers (SMTP, Twilio test server, private PostgreSQL and Redis)."""
import socket


def free_port():
    """A port nothing listens on now, chosen by the system so parallel test runs never collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
