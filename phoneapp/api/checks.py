"""Work the API queues for a worker: a number's configuration check, test calls, and how they went."""
from flask_login import current_user

from phoneapp.api.blueprint import bp
from phoneapp.api.errors import ApiError
from phoneapp.api.inputs import boolean, check_body, json_body
from phoneapp.api.numbers import number_or_404, one_number_json
from phoneapp.api.queries import row_or_404
from phoneapp.api.schemas import ID, TIME, _object, nullable, ref
from phoneapp.domain.call_test_steps import FINAL_STEPS, PROGRESS_STEPS
from phoneapp.jobs import QueueUnavailable, on_demand
from phoneapp.models import JobRun, TestCall
from phoneapp.services import call_tests
from phoneapp.services.serializers import iso

TEST_CALL_BODY = {"live": boolean()}
JOB_STATUSES = ("queued", "running", "retrying", "succeeded", "failed")
TEST_STEPS = (*PROGRESS_STEPS, *FINAL_STEPS)
# For the OpenAPI document's components.
SCHEMAS = {
    "Job": _object({
        "id": ID, "name": {"type": "string"}, "status": {"type": "string", "enum": list(JOB_STATUSES)},
        "attempts": {"type": "integer", "minimum": 0}, "max_attempts": {"type": "integer", "minimum": 1},
        "summary": {"type": "string", "description": "What the job did, once it succeeded"},
        "error": nullable({"type": "string"}), "enqueued_at": TIME, "started_at": nullable(TIME),
        "finished_at": nullable(TIME),
    }, description="Background work for a worker; failed ones are retried per JOB_RETRY_DELAYS, then stay failed"),
    "VerifyQueued": _object({"job": ref("Job"), "phone_assignment": ref("PhoneAssignment")}),
    "TestCallStart": _object({"live": {"type": "boolean", "default": True,
                                       "description": "false: the dry check only, no call is placed"}},
                             required=()),
    "TestCallStep": _object({
        "step": {"type": "string", "enum": list(TEST_STEPS)}, "label": {"type": "string"},
        "ok": nullable({"type": "boolean"}), "detail": {"type": "string"}, "at": TIME}),
    "TestCall": _object({
        "id": ID, "phone_assignment_id": ID, "requested_by": nullable({"type": "string"}),
        "live": {"type": "boolean"},
        "step": {"type": "string", "enum": list(TEST_STEPS),
                 "description": "The step reached; a finished test ends on one of " + ", ".join(FINAL_STEPS)},
        "result": nullable({"type": "string", "enum": ["passed", "failed"]}),
        "detail": {"type": "string"}, "steps": {"type": "array", "items": ref("TestCallStep")},
        "call_sid": nullable({"type": "string"}), "inbound_call_sid": nullable({"type": "string"}),
        "created_at": TIME, "deadline_at": TIME, "finished_at": nullable(TIME),
    }, description="A test of a tracking number (dry check, then a live call); past deadline_at it ends timed out"),
}


def job_json(run):
    return {"id": run.id, "name": run.name, "status": run.status, "attempts": run.attempts,
            "max_attempts": run.max_attempts, "summary": run.summary or "", "error": run.error,
            "enqueued_at": iso(run.enqueued_at), "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at)}


def test_call_json(test):
    return {"id": test.id, "phone_assignment_id": test.phone_assignment_id,
            "requested_by": test.requested_by.email if test.requested_by is not None else None,
            "live": test.live, "step": test.step, "result": test.result, "detail": test.detail,
            "steps": [{"step": s.get("step"), "label": s.get("label"), "ok": s.get("ok"),
                       "detail": s.get("detail") or "", "at": s.get("at")} for s in test.steps or []],
            "call_sid": test.call_sid, "inbound_call_sid": test.inbound_call_sid,
            "created_at": iso(test.created_at), "deadline_at": iso(test.deadline_at),
            "finished_at": iso(test.finished_at)}


@bp.post("/phone-assignments/<int:number_id>/verify")
def verify_number(number_id):
    """Queue a check of the number's Twilio configuration (fixed when AUTO_FIX_WEBHOOKS is on); 202."""
    number = number_or_404(number_id)
    try:
        run = on_demand.queue_verification([number])
    except QueueUnavailable as exc:
        raise ApiError(503, str(exc)) from None
    return {"job": job_json(run), "phone_assignment": one_number_json(number)}, 202


@bp.get("/jobs/<int:job_id>")
def get_job(job_id):
    """A queued job's progress: queued, running, retrying, succeeded or failed."""
    return job_json(row_or_404(JobRun, job_id, "job"))


@bp.post("/phone-assignments/<int:number_id>/test-call")
def start_test_call(number_id):
    """Queue a test: the dry check and, unless `live` is false, a live call; 202 with the test to poll.

    409, with the running test, while a test of the number is under way: a second one is not started.
    """
    number = number_or_404(number_id)
    data = check_body(json_body(allow_empty=True), TEST_CALL_BODY)
    try:
        test = on_demand.start_test_call(number, current_user, live=data.get("live", True) is not False)
    except on_demand.AlreadyTesting as exc:
        raise ApiError(409, f"{exc}; poll the running one at /api/test-calls/{exc.test.id}",
                       {"test_call": exc.test.id}) from None
    if test.finished_at is not None and test.step == "failed" and test.detail.startswith("Could not start"):
        raise ApiError(503, test.detail, {"test_call": test_call_json(test)})
    return test_call_json(test), 202


@bp.get("/test-calls/<int:test_call_id>")
def get_test_call(test_call_id):
    """A test call's progress, step by step; one past its deadline is reported timed out."""
    test = row_or_404(TestCall, test_call_id, "test call")
    call_tests.expire_if_overdue(test)
    return test_call_json(test)
