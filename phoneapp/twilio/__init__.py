"""The Twilio edge: the REST gateway (the only twilio.rest import), TwiML, signatures, public URLs, signed requests."""
