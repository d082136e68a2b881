"""The Twilio gateway, driven through the real twilio client against the sandbox REST API."""
from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from phoneapp.sandbox.account import SandboxAccount
from phoneapp.sandbox.http_client import SandboxHttpClient
from phoneapp.services.twilio_account import gateway_for
from phoneapp.twilio.gateway import (
    HostRewritingHttpClient,
    NumberConfig,
    NumberNotFound,
    TwilioError,
    TwilioGateway,
)
from tests.support.fake_twilio import running_fake_twilio

PUBLIC = "https://calls.example.com"
MISSING_SID = "PN" + "0" * 32


@pytest.fixture(params=["http", "in-process"])
def setup(request, tmp_path):
    """(gateway, account, wrong_token_gateway) over a real local port or the in-process sandbox client."""
    if request.param == "http":
        with running_fake_twilio(tmp_path / "twilio.json") as fake:
            yield (TwilioGateway(fake.account_sid, fake.auth_token, HostRewritingHttpClient(fake.base_url)),
                   fake.account,
                   TwilioGateway(fake.account_sid, "0" * 32, HostRewritingHttpClient(fake.base_url)))
    else:
        gateway = gateway_for({"SANDBOX": True, "SANDBOX_STATE_PATH": str(tmp_path / "state" / "sandbox.json")})
        account = gateway.sandbox
        yield gateway, account, TwilioGateway(account.account_sid, "0" * 32, SandboxHttpClient(account))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_lists_every_number_across_pages(setup):
    gateway, account, _ = setup
    account.add_numbers([f"+1415556{i:04d}" for i in range(120)])
    numbers = gateway.list_numbers(page_size=50)
    assert len(numbers) == 124  # four default lines + 120, so three pages were followed
    assert [n.sid for n in numbers] == [n["sid"] for n in account.numbers()]
    assert all(isinstance(n, NumberConfig) for n in numbers)
    assert numbers[0].phone_number == "+14155550101" and numbers[0].friendly_name == "Sandbox line 1"
    assert numbers[0].voice_url is None and numbers[0].voice_application_sid is None


def test_fetch_update_and_fetch_again(setup):
    gateway, account, _ = setup
    sid = account.numbers()[1]["sid"]
    account.update_number(sid, voice_url="https://old.example.com/voice", voice_method="GET",
                          voice_application_sid="AP" + "a" * 32, trunk_sid="TK" + "b" * 32)
    before = gateway.fetch_number(sid)
    assert before.voice_url == "https://old.example.com/voice"
    assert before.voice_application_sid == "AP" + "a" * 32 and before.routed_elsewhere

    updated = gateway.update_number_webhooks(sid, voice_url=f"{PUBLIC}/twilio/voice",
                                             voice_fallback_url=f"{PUBLIC}/twilio/fallback",
                                             status_callback=f"{PUBLIC}/twilio/status")
    after = gateway.fetch_number(sid)
    assert updated == after
    assert after.voice_url == f"{PUBLIC}/twilio/voice" and after.voice_method == "POST"
    assert after.voice_fallback_url == f"{PUBLIC}/twilio/fallback"
    assert after.status_callback == f"{PUBLIC}/twilio/status"
    assert after.voice_application_sid is None and after.trunk_sid is None and not after.routed_elsewhere
    stored = account.get_number(sid)
    assert stored["voice_fallback_method"] == "POST" and stored["status_callback_method"] == "POST"
    assert stored["voice_application_sid"] == "" and stored["trunk_sid"] == ""


def test_unknown_number_is_number_not_found(setup):
    gateway, _, _ = setup
    with pytest.raises(NumberNotFound) as caught:
        gateway.fetch_number(MISSING_SID)
    assert caught.value.status == 404 and caught.value.code == 20404
    with pytest.raises(NumberNotFound):
        gateway.update_number_webhooks(MISSING_SID, voice_url=f"{PUBLIC}/a", voice_fallback_url=f"{PUBLIC}/b",
                                       status_callback=f"{PUBLIC}/c")
    with pytest.raises(NumberNotFound):
        gateway.fetch_number("../../Calls")


def test_find_number_by_phone(setup):
    gateway, account, _ = setup
    account.add_numbers(["+14155550110", "+14155550111"])
    found = gateway.find_number_by_phone("+14155550111")
    assert found is not None and found.sid == account.find_number("+14155550111")["sid"]
    # "+1415555011" is a prefix of both, but only an exact match counts.
    assert gateway.find_number_by_phone("+1415555011") is None
    assert gateway.find_number_by_phone("+19995550100") is None


def test_wrong_token_is_a_401_twilio_error(setup):
    _, _, wrong = setup
    for attempt in (lambda: wrong.fetch_number(MISSING_SID), wrong.list_numbers, wrong.fetch_account,
                    wrong.list_monitor_alerts):
        with pytest.raises(TwilioError) as caught:
            attempt()
        assert caught.value.status == 401 and caught.value.code == 20003
        assert not isinstance(caught.value, NumberNotFound)


def test_create_call_returns_sid_and_account_keeps_it(setup):
    gateway, account, _ = setup
    sid = gateway.create_call(to="+14155550101", from_="+15005550006", url=f"{PUBLIC}/twilio/test-call",
                              status_callback=f"{PUBLIC}/twilio/test-status",
                              status_callback_events=["initiated", "ringing", "answered", "completed"], timeout=25)
    assert sid.startswith("CA") and len(sid) == 34
    call = account.get_call(sid)
    assert call["status"] == "queued" and call["direction"] == "outbound-api"
    assert call["to"] == "+14155550101" and call["from"] == "+15005550006"
    assert call["request"]["url"] == f"{PUBLIC}/twilio/test-call"
    assert call["request"]["status_callback_events"] == ["initiated", "ringing", "answered", "completed"]
    assert call["request"]["timeout"] == 25


def test_bad_call_input_is_a_400_twilio_error(setup):
    gateway, _, _ = setup
    with pytest.raises(TwilioError) as caught:
        gateway.create_call(to="not-a-number", from_="+15005550006", url=f"{PUBLIC}/a", status_callback=f"{PUBLIC}/b",
                            status_callback_events=["completed"])
    assert caught.value.status == 400 and caught.value.code == 21211


def test_fetch_account(setup):
    gateway, account, _ = setup
    assert gateway.fetch_account() == {"sid": account.account_sid, "friendly_name": "phoneapp sandbox",
                                       "status": "active"}


def test_monitor_alerts_newest_first_and_filtered_by_start(setup):
    gateway, account, _ = setup
    first = account.add_alert(11200, request_url=f"{PUBLIC}/twilio/voice", resource_sid="CA" + "1" * 32)
    second = account.add_alert("11205", request_url=f"{PUBLIC}/twilio/status", resource_sid="CA" + "2" * 32)
    alerts = gateway.list_monitor_alerts()
    assert [a["sid"] for a in alerts] == [second["sid"], first["sid"]]
    assert alerts[1]["error_code"] == "11200" and alerts[1]["request_url"] == f"{PUBLIC}/twilio/voice"
    assert alerts[1]["resource_sid"] == "CA" + "1" * 32 and alerts[1]["log_level"] == "error"
    assert "ErrorCode=11200" in alerts[1]["alert_text"]
    assert alerts[1]["date_created"].tzinfo is not None
    assert gateway.list_monitor_alerts(start_date=datetime.now(UTC) + timedelta(days=1)) == []
    assert len(gateway.list_monitor_alerts(start_date=datetime.now(UTC) - timedelta(days=1))) == 2
    assert len(gateway.list_monitor_alerts(limit=1)) == 1


def test_monitor_alerts_follow_absolute_next_page_urls(tmp_path):
    with running_fake_twilio(tmp_path / "twilio.json") as fake:
        for i in range(7):
            fake.account.add_alert(11200, request_url=f"{PUBLIC}/twilio/voice?n={i}")
        gateway = TwilioGateway(fake.account_sid, fake.auth_token, HostRewritingHttpClient(fake.base_url))
        alerts = gateway._client.monitor.v1.alerts.list(page_size=3)
    assert len(alerts) == 7


def test_connection_refused_is_a_twilio_error():
    gateway = TwilioGateway("AC" + "0" * 32, "x" * 32, HostRewritingHttpClient(f"http://127.0.0.1:{closed_port()}"))
    with pytest.raises(TwilioError) as caught:
        gateway.list_numbers()
    assert caught.value.status is None and "could not reach Twilio" in caught.value.message


def test_silent_server_is_a_timeout_twilio_error():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        gateway = TwilioGateway("AC" + "0" * 32, "x" * 32, HostRewritingHttpClient(base, timeout=0.3))
        with pytest.raises(TwilioError) as caught:
            gateway.fetch_account()
    assert caught.value.status is None and "in time" in caught.value.message


def test_host_rewriting_keeps_path_and_query():
    client = HostRewritingHttpClient("http://127.0.0.1:4010")
    assert client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?Page=1&PageToken=PA"
                          ) == "http://127.0.0.1:4010/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?Page=1&PageToken=PA"
    assert client.rewrite("https://monitor.twilio.com/v1/Alerts?PageSize=3") == "http://127.0.0.1:4010/v1/Alerts?PageSize=3"
    assert client.rewrite("https://api.sydney.us1.twilio.com/x") == "http://127.0.0.1:4010/x"
    assert client.rewrite("https://example.com/x") == "https://example.com/x"
    assert HostRewritingHttpClient("https://mock.test/twilio/").rewrite("https://api.twilio.com/v1/A") == \
        "https://mock.test/twilio/v1/A"
    assert client.timeout == 10
    with pytest.raises(ValueError):
        HostRewritingHttpClient("127.0.0.1:4010")


def test_gateway_for_chooses_the_client(tmp_path):
    real = gateway_for({"SANDBOX": False, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "t",
                        "TWILIO_API_BASE_URL": None})
    assert real.account_sid == "AC" + "1" * 32 and real.sandbox is None
    assert real._client.http_client.timeout == 10
    local = gateway_for({"SANDBOX": False, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "t",
                         "TWILIO_API_BASE_URL": "http://127.0.0.1:4010"})
    assert isinstance(local._client.http_client, HostRewritingHttpClient)
    path = tmp_path / "sandbox.json"
    one = gateway_for({"SANDBOX": True, "SANDBOX_STATE_PATH": path})
    two = gateway_for({"SANDBOX": True, "SANDBOX_STATE_PATH": str(path)})
    assert one.account_sid == two.account_sid == SandboxAccount.open(path).account_sid
    with pytest.raises(ValueError, match="SANDBOX_STATE_PATH"):
        gateway_for({"SANDBOX": True})


def test_sandbox_gateway_runs_the_call_created_hook(tmp_path):
    created = []
    gateway = gateway_for({"SANDBOX": True, "SANDBOX_STATE_PATH": tmp_path / "s.json"}, on_call_created=created.append)
    sid = gateway.create_call(to="+14155550102", from_="+15005550006", url=f"{PUBLIC}/t", status_callback=f"{PUBLIC}/s",
                              status_callback_events=["completed"])
    assert [c["sid"] for c in created] == [sid]


def test_rest_errors_are_twilio_shaped(tmp_path):
    with running_fake_twilio(tmp_path / "twilio.json") as fake:
        base = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}"
        auth = (fake.account_sid, fake.auth_token)
        anonymous = requests.get(f"{base}/IncomingPhoneNumbers.json", timeout=5)
        assert anonymous.status_code == 401 and anonymous.json()["code"] == 20003
        assert anonymous.json()["message"] == "Authenticate" and anonymous.json()["status"] == 401
        other = requests.get(f"{fake.base_url}/2010-04-01/Accounts/AC{'f' * 32}/IncomingPhoneNumbers.json",
                             auth=auth, timeout=5)
        assert other.status_code == 404 and other.json()["code"] == 20404
        missing_to = requests.post(f"{base}/Calls.json", data={"From": "+15005550006", "Url": f"{PUBLIC}/x"},
                                   auth=auth, timeout=5)
        assert missing_to.status_code == 400 and missing_to.json()["code"] == 21201
        sid = fake.account.numbers()[0]["sid"]
        bad_url = requests.post(f"{base}/IncomingPhoneNumbers/{sid}.json", data={"VoiceUrl": "not a url"},
                                auth=auth, timeout=5)
        assert bad_url.status_code == 400 and 21000 <= bad_url.json()["code"] < 22000
        page = requests.get(f"{base}/IncomingPhoneNumbers.json", params={"PageSize": 3}, auth=auth, timeout=5).json()
        assert page["page_size"] == 3 and page["start"] == 0 and page["end"] == 2
        assert page["next_page_uri"].startswith(f"/2010-04-01/Accounts/{fake.account_sid}/IncomingPhoneNumbers.json?")
        last = requests.get(fake.base_url + page["next_page_uri"], auth=auth, timeout=5).json()
        assert len(last["incoming_phone_numbers"]) == 1 and last["next_page_uri"] is None
        assert last["previous_page_uri"] is not None
        wildcard = requests.get(f"{base}/IncomingPhoneNumbers.json", params={"PhoneNumber": "+1415555010*"},
                                auth=auth, timeout=5).json()
        assert len(wildcard["incoming_phone_numbers"]) == 4


def test_concurrent_gateway_calls_keep_every_change(tmp_path):
    with running_fake_twilio(tmp_path / "twilio.json") as fake:
        sids = [n["sid"] for n in fake.account.numbers()]

        def point(index):
            gateway = TwilioGateway(fake.account_sid, fake.auth_token, HostRewritingHttpClient(fake.base_url))
            gateway.update_number_webhooks(sids[index], voice_url=f"{PUBLIC}/v{index}",
                                           voice_fallback_url=f"{PUBLIC}/f", status_callback=f"{PUBLIC}/s")

        threads = [threading.Thread(target=point, args=(i,)) for i in range(len(sids))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [n["voice_url"] for n in fake.account.numbers()] == [f"{PUBLIC}/v{i}" for i in range(len(sids))]
