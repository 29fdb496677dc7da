"""The settings page and the deployment files name every variable the bridge reads, and say the same things."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from bridge.ops.clients import parse_trusted
from bridge.ops.settings import Settings, load_settings

ROOT = Path(__file__).parent.parent
VARIABLES = {name.upper() for name in Settings.model_fields}
REQUIRED = {"PUBLIC_URL", "TWILIO_AUTH_TOKEN", "ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "AGENTS",
            "CALLER_ID"}  # fmt: skip
SECRETS = {"TWILIO_AUTH_TOKEN", "ZENDESK_API_TOKEN", "TWILIO_WEBHOOK_KEYS", "METRICS_TOKEN", "LIVE_TOKEN"}
# Values that describe one site (a URL, an account, the agents), so an example shows them rather than the default.
SITE = {"PUBLIC_URL", "ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "AGENTS", "CALLER_ID", "DEFAULT_REGION"}
# Chosen for Heroku and Fly: PostgreSQL or the volume, JSON logs, and whose X-Forwarded-For entry names the client.
PLATFORM = {"DATABASE_URL", "LOG_FORMAT", "FORWARDED_ALLOW_IPS"}
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| ([^|]*) \| (.+) \|$", flags=re.MULTILINE)


def means_the_default(name: str, value: str) -> bool:
    """Tell whether setting `name` to `value` gives what leaving it unset gives (a blank means unset)."""
    field = name.lower()
    return bool(getattr(Settings(**{field: value}), field) == getattr(Settings(), field))


def settings_page() -> dict[str, str]:
    """Return each variable's default cell in docs/settings.md, checking that none is documented twice."""
    rows = ROW.findall((ROOT / "docs" / "settings.md").read_text())
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), sorted(name for name in names if names.count(name) > 1)
    return {name: default.strip() for name, default, _ in rows}


def test_settings_page_documents_every_variable_once_with_its_default() -> None:
    """docs/settings.md has one row per variable of the settings class, and its default column is the class's."""
    page = settings_page()
    assert set(page) == VARIABLES, f"missing {sorted(VARIABLES - set(page))}, unknown {sorted(set(page) - VARIABLES)}"
    for name, default in page.items():
        if default in ("(required)", "(unset)"):
            assert getattr(Settings(), name.lower()) in (None, {}, ()), name
        else:
            literal = re.fullmatch(r"`([^`]*)`", default)
            assert literal, f"{name}: the default is `value`, (unset) or (required), not {default!r}"
            assert means_the_default(name, literal.group(1)), f"{name}: {default} is not the default"
    assert {name for name, default in page.items() if default == "(required)"} == {"TWILIO_AUTH_TOKEN"}


def test_app_json_describes_every_variable() -> None:
    """The Heroku button asks for every required variable and describes every other one."""
    app = json.loads((ROOT / "app.json").read_text())
    env = app["env"]
    assert set(env) == VARIABLES - {"PORT"}  # Heroku assigns PORT itself
    for name, entry in env.items():
        assert entry["description"], name
        assert entry["required"] is (name in REQUIRED), name
        if "value" in entry and name not in SITE | PLATFORM:
            assert means_the_default(name, entry["value"]), f"app.json {name}={entry['value']!r} is not the default"
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
    commented = set(re.findall(r"^\s*# ([A-Z_]+) = ", (ROOT / "fly.toml").read_text(), flags=re.MULTILINE))
    assert in_env | commented <= VARIABLES, sorted((in_env | commented) - VARIABLES)
    for name, value in env.items():
        if name not in SITE | PLATFORM:
            assert means_the_default(name, value), f"fly.toml {name}={value!r} is not the default"
    fly_text = "".join((ROOT / path).read_text() for path in ("fly.toml", "README.md", "docs/deploy.md"))
    for secret in SECRETS:
        assert re.search(rf"fly secrets set[^\n]*{secret}", fly_text), secret


def test_env_example_documents_every_variable() -> None:
    """.env.example names every variable once, holds no secret values, and shows the defaults."""
    text = (ROOT / ".env.example").read_text()
    lines = re.findall(r"^([A-Z_]+)=(.*)$", text, flags=re.MULTILINE)
    named = [name for name, _ in lines]
    assert set(named) == VARIABLES
    assert len(named) == len(VARIABLES), sorted(name for name in named if named.count(name) > 1)
    for secret in SECRETS:
        assert re.search(rf"^{secret}=$", text, flags=re.MULTILINE), secret
    for name, value in lines:
        if name not in SITE:
            assert means_the_default(name, value), f".env.example {name}={value!r} is not the default"


def test_env_example_copied_to_dot_env_starts_the_bridge() -> None:
    """`cp .env.example .env` and the two secrets filled in give settings the bridge serves with."""
    text = (ROOT / ".env.example").read_text()
    for secret in ("TWILIO_AUTH_TOKEN", "ZENDESK_API_TOKEN"):
        text = re.sub(rf"^{secret}=$", f"{secret}=filled-in", text, flags=re.MULTILINE)
    Path(".env").write_text(text)  # the test's own empty working directory (clean_environment)
    settings = load_settings()
    settings.check_serving()
    assert settings.zendesk_oauth_token is None  # left blank: the email and API token are used
    assert settings.zendesk_base_url == "https://acme.zendesk.com"


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
