"""Tests of the JSON API and its OpenAPI document (phoneapp/api/)."""
