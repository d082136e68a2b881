"""The shape of the code, checked: the import contracts, the URL map, file sizes and names."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import url_for

from tests.support.paths import ROOT

PRODUCT = ROOT / "phoneapp"
# Past this, one reader can no longer hold a module: split it.
MAX_MODULE_LINES = 400
# The custom contract types `.importlinter` loads, with the packages they are imported through.
CONTRACT_TYPES = [ROOT / "tests" / "__init__.py", ROOT / "tests" / "support" / "__init__.py",
                  ROOT / "tests" / "support" / "import_contracts.py"]

# Every route the product answers, with its methods. A move or a rename that drops or changes one fails here.
URL_MAP = {
    ("GET", "/"),
    ("GET", "/alerts"),
    ("POST", "/alerts/<int:alert_id>/acknowledge"),
    ("GET", "/blocked-numbers"),
    ("POST", "/blocked-numbers"),
    ("POST", "/blocked-numbers/<int:blocked_number_id>/delete"),
    ("GET", "/api/blocked-numbers"),
    ("POST", "/api/blocked-numbers"),
    ("DELETE", "/api/blocked-numbers/<int:blocked_number_id>"),
    ("GET", "/api/call-records"),
    ("GET", "/api/call-records/<int:call_id>"),
    ("PATCH", "/api/call-records/<int:call_id>"),
    ("GET", "/api/call-records/<int:call_id>/events"),
    ("GET", "/api/clients"),
    ("POST", "/api/clients"),
    ("DELETE", "/api/clients/<int:client_id>"),
    ("GET", "/api/clients/<int:client_id>"),
    ("PATCH", "/api/clients/<int:client_id>"),
    ("GET", "/api/health"),
    ("GET", "/api/jobs/<int:job_id>"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/phone-assignments"),
    ("POST", "/api/phone-assignments"),
    ("DELETE", "/api/phone-assignments/<int:number_id>"),
    ("GET", "/api/phone-assignments/<int:number_id>"),
    ("PATCH", "/api/phone-assignments/<int:number_id>"),
    ("POST", "/api/phone-assignments/<int:number_id>/test-call"),
    ("POST", "/api/phone-assignments/<int:number_id>/verify"),
    ("GET", "/api/test-calls/<int:test_call_id>"),
    ("GET", "/api/webhook-endpoints"),
    ("POST", "/api/webhook-endpoints"),
    ("DELETE", "/api/webhook-endpoints/<int:endpoint_id>"),
    ("GET", "/api/webhook-endpoints/<int:endpoint_id>"),
    ("PATCH", "/api/webhook-endpoints/<int:endpoint_id>"),
    ("GET", "/api/webhook-endpoints/<int:endpoint_id>/deliveries"),
    ("POST", "/api/webhook-deliveries/<int:delivery_id>/redeliver"),
    ("GET", "/calls"),
    ("GET", "/calls/export.csv"),
    ("GET", "/calls/<int:call_id>"),
    ("GET", "/partials/calls/<int:call_id>"),
    ("POST", "/calls/<int:call_id>/notes"),
    ("GET", "/calls/<int:call_id>/recording"),
    ("GET", "/calls/<int:call_id>/voicemail"),
    ("GET", "/clients"),
    ("POST", "/clients"),
    ("GET", "/clients/<int:client_id>"),
    ("POST", "/clients/<int:client_id>/delete"),
    ("GET", "/clients/<int:client_id>/edit"),
    ("POST", "/clients/<int:client_id>/edit"),
    ("GET", "/clients/<int:client_id>/rules"),
    ("POST", "/clients/<int:client_id>/rules"),
    ("GET", "/clients/<int:client_id>/notices"),
    ("POST", "/clients/<int:client_id>/notices"),
    ("GET", "/health"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/numbers"),
    ("GET", "/numbers/<int:number_id>"),
    ("GET", "/numbers/<int:number_id>/edit"),
    ("POST", "/numbers/sync"),
    ("GET", "/partials/numbers/sync/<int:run_id>"),
    ("GET", "/numbers/import"),
    ("POST", "/numbers/import"),
    ("GET", "/numbers/import/<token>"),
    ("POST", "/numbers/import/<token>/apply"),
    ("GET", "/numbers/import/<token>/result"),
    ("GET", "/partials/calls"),
    ("GET", "/partials/dashboard"),
    ("GET", "/partials/health"),
    ("GET", "/partials/worker-banner"),
    ("POST", "/partials/numbers/<int:number_id>"),
    ("POST", "/partials/numbers/<int:number_id>/active"),
    ("GET", "/partials/numbers/<int:number_id>/card"),
    ("GET", "/partials/numbers/<int:number_id>/edit"),
    ("POST", "/partials/numbers/<int:number_id>/simulate-call"),
    ("POST", "/partials/numbers/<int:number_id>/test"),
    ("GET", "/partials/numbers/changes"),
    ("GET", "/partials/numbers/status-counts"),
    ("GET", "/partials/recent-calls"),
    ("GET", "/partials/test-calls/<int:test_call_id>"),
    ("GET", "/static/<path:filename>"),
    ("POST", "/twilio/client-webhook/<client_id>"),
    ("POST", "/api/twilio/client-webhook/<client_id>"),
    ("POST", "/twilio/dial-events"),
    ("POST", "/twilio/dial-status"),
    ("POST", "/twilio/fallback"),
    ("POST", "/twilio/recording"),
    ("POST", "/twilio/status"),
    ("POST", "/twilio/test-call-status"),
    ("POST", "/twilio/voice"),
    ("POST", "/twilio/whisper"),
    ("POST", "/twilio/accept"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/<int:user_id>"),
    ("GET", "/users/me"),
    ("POST", "/users/me/timezone"),
    ("POST", "/users/<int:user_id>/activate"),
    ("POST", "/users/<int:user_id>/deactivate"),
    ("POST", "/users/<int:user_id>/role"),
    ("POST", "/users/<int:user_id>/tokens"),
    ("POST", "/users/<int:user_id>/tokens/<int:token_id>/revoke"),
    ("GET", "/webhooks"),
    ("POST", "/webhooks"),
    ("GET", "/webhooks/<int:endpoint_id>"),
    ("GET", "/partials/webhooks/<int:endpoint_id>/deliveries"),
    ("POST", "/webhooks/<int:endpoint_id>/active"),
    ("POST", "/webhooks/<int:endpoint_id>/delete"),
    ("POST", "/webhooks/deliveries/<int:delivery_id>/redeliver"),
}


def served_routes(app):
    return {(method, rule.rule) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_the_url_map_is_pinned(app):
    served = served_routes(app)
    assert served - URL_MAP == set(), "new routes: add them to URL_MAP (and the SPEC)"
    assert URL_MAP - served == set(), "routes that disappeared"


def test_a_page_and_its_fragment_build_their_own_urls(app):
    with app.test_request_context():
        assert_page_and_fragment_urls()


def assert_page_and_fragment_urls():
    assert url_for("dashboard.dashboard") == "/"
    assert url_for("dashboard.dashboard", fragment=True) == "/partials/dashboard"
    assert url_for("calls.calls", outcome="missed") == "/calls?outcome=missed"
    assert url_for("calls.calls", fragment=True, outcome="missed") == "/partials/calls?outcome=missed"
    assert url_for("numbers.edit_number", number_id=3) == "/numbers/3/edit"
    assert url_for("numbers.edit_number", number_id=3, fragment=True) == "/partials/numbers/3/edit"
    assert url_for("health.index", fragment=True) == "/partials/health"


def lint_imports(config):
    command = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(config), "--no-cache"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = lint_imports(ROOT / ".importlinter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("importer, imported, contract", [
    ("phoneapp/web/numbers.py", "phoneapp.web.clients", "Web areas are independent of each other"),
    ("phoneapp/api/calls.py", "phoneapp.web.calls", "Layers"),
    ("phoneapp/services/dashboard.py", "phoneapp.jobs", "Layers"),
    ("phoneapp/domain/routing.py", "flask", "The decisions import neither Flask nor the database"),
    ("phoneapp/services/health.py", "twilio.rest", "Only the gateway talks to Twilio's REST API"),
])
def test_an_import_across_a_contract_breaks_it(tmp_path, importer, imported, contract):
    """The contracts are not vacuous: one stray import in a copy of the code breaks the one it should."""
    copy = tmp_path / "tree"
    for path in [ROOT / ".importlinter", *PRODUCT.rglob("*.py"), *CONTRACT_TYPES]:
        target = copy / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    stray = copy / importer
    stray.write_text(stray.read_text() + f"\nimport {imported}  # noqa\n")
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]
    result = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(copy)})
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts")[1]
    assert contract in broken


def test_no_module_is_too_long_to_read():
    long = {str(path.relative_to(ROOT)): count for path in PRODUCT.rglob("*.py")
            if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_product_module_is_named_like_a_test():
    named_like_tests = [path for path in PRODUCT.rglob("*.py")
                        if path.name.startswith("test_") or path.stem.endswith("_test")]
    assert named_like_tests == []
