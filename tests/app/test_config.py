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

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=root, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
                                 "HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 1
    assert "phoneapp cannot start: TWILIO_AUTH_TOKEN is required" in result.stderr


# -- settings that are unsafe in production refuse to start --------------------------------------------------

REAL_TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "9f" * 16}
GOOD_KEY = "Xq3v9LrT0aWm8ZkP2cYs7NbH4uGe1JdF6tRoQwEy5Ix"
PRODUCTION = {**REAL_TWILIO, "SECRET_KEY": GOOD_KEY, "PUBLIC_BASE_URL": "https://calls.acme-agency.com"}


def test_production_needs_its_own_secret_key_not_the_generated_one(tmp_path):
    environ = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}
    with pytest.raises(ConfigError, match="SECRET_KEY must be set with real Twilio credentials") as refused:
        load_config(environ, str(tmp_path))
    assert "every web process and worker" in str(refused.value)
    assert not (tmp_path / "secret_key").exists(), "no key is generated for a start that is refused"


@pytest.mark.parametrize("key, reason", [
    ("short-but-random-Zq8", "too short for production: 20 characters, at least 32"),
    ("change-me-change-me-change-me-change-me", "placeholder"),
    ("changemechangemechangemechangeme", "placeholder"),
    ("your-super-secret-key-here-for-production", "placeholder"),
    ("development_secret_key_development_secret_key", "placeholder"),
    ("test-test-test-test-test-test-test-test", "placeholder"),
    ("Secret Key 123 Secret Key 456 Secret Key 789", "placeholder"),
    ("x" * 48, "placeholder"),
    ("abababababababababababababababababab", "placeholder"),
])
def test_production_refuses_a_weak_secret_key(tmp_path, key, reason):
    with pytest.raises(ConfigError, match="^SECRET_KEY") as refused:
        load_config({**PRODUCTION, "SECRET_KEY": key}, str(tmp_path))
    assert reason in str(refused.value)
    assert key not in str(refused.value), "the message must not repeat the key"


@pytest.mark.parametrize("url", ["http://calls.acme-agency.com", "http://10.0.0.5:5000", "http://phonebox:5000",
                                 "http://calls.example.test"])
def test_production_needs_https_unless_on_this_machine(tmp_path, url):
    with pytest.raises(ConfigError, match="^PUBLIC_BASE_URL must be an https:// address"):
        load_config({**PRODUCTION, "PUBLIC_BASE_URL": url}, str(tmp_path))


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "development"])
def test_production_refuses_debug(tmp_path, value):
    with pytest.raises(ConfigError, match="^FLASK_DEBUG is on with real Twilio credentials"):
        load_config({**PRODUCTION, "FLASK_DEBUG": value}, str(tmp_path))


@pytest.mark.parametrize("url", ["https://calls.acme-agency.com", "http://calls.acme-agency.com:8080/phoneapp",
                                 "https://8.8.8.8", "http://[2001:4860:4860::8888]:5000"])
def test_sandbox_refuses_a_public_address(tmp_path, url):
    """Twilio would call that address signed with the real account's token, and every call would get 403."""
    with pytest.raises(ConfigError, match="^PUBLIC_BASE_URL is the public address") as refused:
        load_config({"PUBLIC_BASE_URL": url}, str(tmp_path))
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are unset" in str(refused.value)


@pytest.mark.parametrize("url", [
    "http://localhost:5000", "http://app.localhost:5000", "http://127.0.0.1:5000", "http://[::1]:5000",
    "http://0.0.0.0:5000", "http://192.168.1.20:5000", "http://10.1.2.3", "http://172.16.0.9", "http://169.254.1.1",
    "http://100.64.0.7", "http://phonebox:5000", "https://calls.example.test", "https://public.example",
    "https://calls.example.com", "http://demo.invalid", "http://phonebox.local", "https://phoneapp.internal",
    "http://phonebox.lan", "http://phonebox.home.arpa", "http://LOCALHOST.:5000",
])
def test_sandbox_runs_on_local_and_reserved_addresses(tmp_path, url):
    config = load_config({"PUBLIC_BASE_URL": url}, str(tmp_path))
    assert config["SANDBOX"] is True
    # A demo needs no chosen key: the generated one, or any, will do.
    assert load_config({"PUBLIC_BASE_URL": url, "SECRET_KEY": "dev"}, str(tmp_path))["SECRET_KEY"] == "dev"


@pytest.mark.parametrize("extra", [
    {},
    {"PUBLIC_BASE_URL": "http://127.0.0.1:5000"},
    {"PUBLIC_BASE_URL": "http://localhost:5000"},
    {"PUBLIC_BASE_URL": "http://[::1]:5000"},
    {"FLASK_DEBUG": "0"},
    {"FLASK_DEBUG": "false"},
    {"SECRET_KEY": "tests-only-session-key-5c0e8a2f9b7d4163e8a1c6f0"},
])
def test_production_with_safe_settings_starts(tmp_path, extra):
    config = load_config({**PRODUCTION, **extra}, str(tmp_path))
    assert config["SANDBOX"] is False
    assert config["SECRET_KEY_GENERATED"] is False
    assert config["SESSION_COOKIE_SECURE"] is config["PUBLIC_BASE_URL"].startswith("https://")


@pytest.mark.parametrize("entry_point", ["app", "wsgi"])
def test_entry_points_name_the_unsafe_setting_and_exit(tmp_path, entry_point):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(root),
               **{key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}}
    # Run from an empty folder, so no .env of the developer's joins in.
    result = subprocess.run([sys.executable, "-c", f"import {entry_point}"], cwd=tmp_path, capture_output=True,
                            text=True, env=environ, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("phoneapp cannot start: SECRET_KEY must be set with real Twilio credentials")
    assert "Traceback" not in result.stderr
