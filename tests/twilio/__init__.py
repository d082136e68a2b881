"""Tests of the Twilio gateway (phoneapp/twilio/) and the simulated Twilio (phoneapp/sandbox/)."""
