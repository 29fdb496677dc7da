"""The deployment files name every variable the bridge reads, and say the same things."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from bridge.ops.clients import parse_trusted
from bridge.ops.settings import Settings

ROOT = Path(__file__).parent.parent
VARIABLES = {name.upper() for name in Settings.model_fields}
REQUIRED = {"PUBLIC_URL", "TWILIO_AUTH_TOKEN", "ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "AGENTS",
            "CALLER_ID"}  # fmt: skip
SECRETS = {"TWILIO_AUTH_TOKEN", "ZENDESK_API_TOKEN", "TWILIO_WEBHOOK_KEYS", "METRICS_TOKEN"}


def test_app_json_describes_every_variable() -> None:
    """The Heroku button asks for every required variable and describes every other one."""
    app = json.loads((ROOT / "app.json").read_text())
    env = app["env"]
    assert set(env) == VARIABLES - {"PORT"}  # Heroku assigns PORT itself
    for name, entry in env.items():
        assert entry["description"], name
        assert entry["required"] is (name in REQUIRED), name
    assert app["formation"]["web"]["quantity"] == 1


def test_fly_toml_runs_one_machine_with_a_volume_and_health_check() -> None:
    """fly.toml: SQLite on the /data volume, /healthz checked, SIGTERM, never scaled to zero."""
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    env = fly["env"]
    assert env["DATABASE_URL"] == "sqlite:////data/bridge.db"
    assert fly["mounts"][0]["destination"] == "/data"
    assert fly["kill_signal"] == "SIGTERM"
    service = fly["http_service"]
    assert service["internal_port"] == int(env["PORT"])
    assert service["min_machines_running"] == 1
    assert service["auto_stop_machines"] == "off"
    assert service["checks"][0]["path"] == "/healthz"
    in_env = set(env)
    assert in_env >= REQUIRED - SECRETS
    assert not SECRETS & in_env  # secrets never go into a committed file
    fly_text = (ROOT / "fly.toml").read_text() + (ROOT / "README.md").read_text()
    for secret in SECRETS:
        assert re.search(rf"fly secrets set[^\n]*{secret}", fly_text), secret


def test_env_example_documents_every_variable() -> None:
    """.env.example names every variable, and holds no secret values."""
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^([A-Z_]+)=", text, flags=re.MULTILINE))
    assert named == VARIABLES
    for secret in SECRETS:
        assert re.search(rf"^{secret}=$", text, flags=re.MULTILINE), secret


def test_procfile_serves_and_migrates() -> None:
    """Heroku runs migrations in the release phase and the bridge as the web process."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    assert "web: bridge serve" in lines
    assert "release: bridge migrate" in lines


def test_each_platform_says_which_forwarded_for_entry_is_the_client() -> None:
    """Heroku's router appends the client's address: `*`. Fly's appends the app's after it: the app's addresses."""
    app = json.loads((ROOT / "app.json").read_text())
    assert app["env"]["FORWARDED_ALLOW_IPS"]["value"] == "*"
    fly = tomllib.loads((ROOT / "fly.toml").read_text())["env"]["FORWARDED_ALLOW_IPS"]
    trusted = parse_trusted(fly)
    assert isinstance(trusted, tuple)
    assert trusted
