"""Small pure pieces: settings parsing, phone handling, Retry-After, log masking."""

from __future__ import annotations

import json
import logging

import pytest

from bridge.core.clock import from_epoch
from bridge.core.phones import digits, is_anonymous, is_device, is_phone_number, mask, mask_text, sip_user, to_e164
from bridge.ops.logs import JsonFormatter, MaskingFormatter
from bridge.ops.settings import ConfigError, Settings, load_settings, parse_agents, parse_duration
from bridge.zendesk.client import parse_retry_after


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("alice=1001", "identity must be client:NAME, sip:NAME@DOMAIN"),
        ("client:alice=abc", "is not a Zendesk user id"),
        ("client:alice", "is not identity=zendesk_user_id"),
        ("client:alice=1,client:alice=2", "names 'client:alice' twice"),
        ("+1415=3", "identity must be"),
    ],
)
def test_bad_agents_are_named(raw: str, message: str) -> None:
    """Every bad AGENTS entry gets an error that says what is wrong with it."""
    with pytest.raises(ValueError, match=message):
        parse_agents(raw)


def test_agents_and_durations_parse() -> None:
    """Good AGENTS and durations come out typed."""
    assert parse_agents(" client:alice=1001, +16505550111=1003 ,") == {"client:alice": 1001, "+16505550111": 1003}
    assert [parse_duration(v) for v in ("90", "30m", "24h", "2d", 5)] == [90, 1800, 86400, 172800, 5]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_settings_errors_are_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation errors name the variable; serving needs the token and Zendesk."""
    monkeypatch.setenv("CALLER_ID", "555-0100")
    with pytest.raises(ConfigError, match="CALLER_ID"):
        load_settings()
    monkeypatch.delenv("CALLER_ID")
    monkeypatch.setenv("PUBLIC_URL", "bridge.example.com")
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        load_settings()
    monkeypatch.delenv("PUBLIC_URL")
    settings = Settings(twilio_auth_token="t")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ZENDESK_SUBDOMAIN"):
        settings.check_serving()
    settings = Settings(twilio_auth_token="t", zendesk_subdomain="acme")  # type: ignore[arg-type]
    assert settings.zendesk_base_url == "https://acme.zendesk.com"
    with pytest.raises(ConfigError, match="ZENDESK_EMAIL"):
        settings.check_serving()
    assert Settings(database_url="sqlite:////data/bridge.db").sqlite_path == "/data/bridge.db"
    assert Settings(database_url="sqlite:///bridge.db").sqlite_path == "bridge.db"
    with pytest.raises(ConfigError, match="sqlite"):
        _ = Settings(database_url="mysql://x").sqlite_path


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+14155550123", None, "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("4155550123", None, None),
        ("Anonymous", None, None),
        ("Restricted", None, None),
        ("+266696687", None, None),
        ("", None, None),
        ("client:alice", None, None),
    ],
)
def test_numbers_normalise_to_e164(raw: str, region: str | None, expected: str | None) -> None:
    """National formats need DEFAULT_REGION; withheld and client callers are not numbers."""
    assert to_e164(raw, region) == expected


def test_masking() -> None:
    """Logs show only the last four digits of any number."""
    assert mask("+14155550123") == "…0123"
    assert mask("client:alice") == "client:alice"
    assert mask(None) == "-"
    assert mask("sip:dave@acme.sip.twilio.com") == "sip:dave@acme.sip.twilio.com"
    assert mask("sip:+14155550199@acme.sip.twilio.com") == "sip:…0199@acme.sip.twilio.com"
    assert sip_user("sip:+14155550199@acme.sip.twilio.com;transport=UDP") == "+14155550199"
    assert is_device("sip:dave@acme.sip.twilio.com")
    assert is_device("client:alice")
    assert not is_device("+14155550123")
    assert is_phone_number("+16505550111")
    assert not is_phone_number("sip:dave@x")
    assert not is_phone_number(None)
    assert mask_text("call from +14155550123 to +1 (650) 555-0100") == "call from …0123 to …0100"
    assert digits("+1 (415) 555-0123") == "14155550123"
    untouched = "call CAd0a978435ddea4589691b93a03d4b71c at 2026-11-21 12:33:33,643 (RE5eab47b37ef27c0e5986cf)"
    assert mask_text(untouched) == untouched
    assert mask_text("key tel:+14155550123:user, bare 4155550123.") == "key tel:…0123:user, bare …0123."
    assert is_anonymous(None)
    assert is_anonymous("Blocked")
    assert not is_anonymous("+14155550123")


def test_formatters_mask_numbers() -> None:
    """Both log formats mask numbers, and JSON lines parse."""
    record = logging.LogRecord("bridge", logging.INFO, __file__, 1, "caller %s", ("+14155550123",), None)
    assert "+14155550123" not in MaskingFormatter().format(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "caller …0123"
    assert line["level"] == "info"


def test_retry_after_seconds_or_http_date() -> None:
    """Retry-After may be seconds or an HTTP date; garbage falls back to a default."""
    now = from_epoch(1792567670.0)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=now) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 -0000", now=now) == pytest.approx(10.0)
    assert parse_retry_after(None, now=now) == 60.0
    assert parse_retry_after("soon", now=now) == 60.0
