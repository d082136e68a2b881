"""Tests of the Twilio webhooks (phoneapp/webhooks/), the webhook log and the routing cache."""
