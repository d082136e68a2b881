"""Settings: embedded defaults, and start-up refused with the setting named when one is wrong."""
import pytest

from phoneapp.config import ConfigError, load_config


def test_embedded_defaults_are_sqlite_no_redis_and_sandbox(tmp_path):
    config = load_config({}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'phoneapp.db'}"
    assert config["REDIS_URL"] is None
    assert config["SANDBOX"] is True
    assert config["SECRET_KEY"] == load_config({}, str(tmp_path))["SECRET_KEY"], "kept across restarts"


def test_postgres_urls_use_the_psycopg_driver(tmp_path):
    config = load_config({"DATABASE_URL": "postgres://u@db/phoneapp"}, str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/phoneapp"


@pytest.mark.parametrize("environ, named", [
    ({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32}, "TWILIO_AUTH_TOKEN"),
    ({"TWILIO_AUTH_TOKEN": "secret"}, "TWILIO_ACCOUNT_SID"),
    ({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "secret"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "calls.example.com"}, "PUBLIC_BASE_URL"),
    ({"DEFAULT_FORWARD_NUMBER": "12"}, "DEFAULT_FORWARD_NUMBER"),
    ({"APP_TIMEZONE": "Mars/Olympus"}, "APP_TIMEZONE"),
    ({"RECORD_CALLS": "maybe"}, "RECORD_CALLS"),
    ({"VERIFY_MAX_AGE": "soon"}, "VERIFY_MAX_AGE"),
    ({"ALERT_SMS_NUMBERS": "+14155550100,nope"}, "ALERT_SMS_NUMBERS"),
])
def test_bad_or_missing_setting_stops_start_up_naming_it(tmp_path, environ, named):
    with pytest.raises(ConfigError, match=named):
        load_config({"SECRET_KEY": "k", **environ}, str(tmp_path))


def test_values_are_normalised(tmp_path):
    config = load_config({"SECRET_KEY": "k", "DEFAULT_FORWARD_NUMBER": "(415) 555-0199", "RECORD_CALLS": "yes",
                          "VERIFY_MAX_AGE": "15m", "PUBLIC_BASE_URL": "https://calls.example.com/"},
                         str(tmp_path))
    assert config["DEFAULT_FORWARD_NUMBER"] == "+14155550199"
    assert config["RECORD_CALLS"] is True
    assert config["VERIFY_MAX_AGE"] == 900
    assert config["PUBLIC_BASE_URL"] == "https://calls.example.com"


def test_app_entry_point_exits_with_the_message(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=root, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                                 "HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 1
    assert "phoneapp cannot start: TWILIO_AUTH_TOKEN is required" in result.stderr
