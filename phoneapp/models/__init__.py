"""Database models (SPEC §2), one module per part of the product. Times are stored as naive UTC."""
from phoneapp.models.accounts import ROLES, ApiToken, User, new_session_token
from phoneapp.models.base import MAX_ID, utcnow
from phoneapp.models.calls import CallEvent, CallRecord, TestCall
from phoneapp.models.numbers import CONFIG_STATES, BlockedNumber, Client, PhoneAssignment
from phoneapp.models.operations import (
    HEALTH_COMPONENTS,
    NOTICE_OWED,
    Alert,
    AuditEvent,
    HealthCheck,
    ImportedMonitorAlert,
    JobRun,
    WorkerHeartbeat,
)
from phoneapp.models.outbound import (
    DELIVERY_STATES,
    CallNotice,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

# The migration (migrations/versions) these models match: the last one. A new migration moves it, or its test fails.
SCHEMA_REVISION = "0009"

__all__ = ["CONFIG_STATES", "DELIVERY_STATES", "HEALTH_COMPONENTS", "MAX_ID", "NOTICE_OWED", "ROLES", "SCHEMA_REVISION",
           "Alert", "ApiToken", "AuditEvent", "BlockedNumber", "CallEvent", "CallNotice", "CallRecord", "Client",
           "HealthCheck", "ImportedMonitorAlert", "JobRun", "PhoneAssignment", "TestCall", "User", "WebhookAttempt",
           "WebhookDelivery", "WebhookEndpoint", "WebhookEvent", "WorkerHeartbeat", "new_session_token", "utcnow"]
