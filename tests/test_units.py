"""Small pure pieces: settings parsing, phone handling, Retry-After, log masking."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.core.action_codec import decode, encode
from bridge.core.actions import AddVoiceComment
from bridge.core.clock import from_epoch
from bridge.core.phones import (
    digits,
    is_anonymous,
    is_device,
    is_phone_number,
    mask,
    mask_text,
    national_digits,
    same_number,
    sip_user,
    to_e164,
)
from bridge.ops.logs import JsonFormatter, MaskingFormatter
from bridge.ops.settings import ConfigError, Settings, load_settings, parse_agents, parse_duration
from bridge.twilio.words import media_url, recording_of
from bridge.zendesk.client import Invalid, parse_retry_after
from schemas.zendesk import VoiceComment, VoiceTicket


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


def test_dot_env_in_the_working_directory_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """`.env` fills in what the environment does not set; names the bridge does not know are ignored."""
    assert not Path(".env").exists()  # clean_environment: every test runs in an empty directory of its own
    assert load_settings().twilio_auth_token is None
    Path(".env").write_text(
        "# copied from .env.example\nTWILIO_AUTH_TOKEN=from-file\nTICKET_ON=end\nDIAL_TIMEOUT=30\nNOT_OURS=1\n"
    )
    monkeypatch.setenv("DIAL_TIMEOUT", "45")
    settings = load_settings()
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == "from-file"
    assert (settings.ticket_on, settings.dial_timeout) == ("end", 45)
    assert load_settings(env_file=None).twilio_auth_token is None
    # Only load_settings (start-up) reads the file: the demo's and the tests' own Settings never do.
    assert Settings().twilio_auth_token is None
    Path(".env").write_text("CALLER_ID=555-0100\n")
    with pytest.raises(ConfigError, match="CALLER_ID"):
        load_settings()


def test_an_optional_setting_left_blank_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`NAME=` (as `.env.example` leaves optional ones) means unset, never an empty token or id."""
    defaults = Settings()
    optional = [
        name
        for name, field in Settings.model_fields.items()
        if field.get_default(call_default_factory=True) in (None, {})
    ]
    assert {"zendesk_oauth_token", "zendesk_api_token", "twilio_auth_token", "zendesk_group_id"} <= set(optional)
    for name in optional:
        monkeypatch.setenv(name.upper(), "")
    blank = load_settings()
    for name in optional:
        assert getattr(blank, name) == getattr(defaults, name), name


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


def test_empty_optional_voice_comment_fields_are_omitted_and_still_decode() -> None:
    """A withheld number or unknown location is left out, not sent as "" (and the stored form decodes)."""
    comment = VoiceComment(from_="", to="+16505550100", started_at="2024-01-01T00:00:00Z", call_duration=3, location="")
    assert comment.wire() == {"to": "+16505550100", "started_at": "2024-01-01T00:00:00Z", "call_duration": 3}
    ticket = VoiceTicket(via_id=44, subject="Voicemail", external_id="CA1", voice_comment=comment)
    voice = ticket.wire()["voice_comment"]
    assert isinstance(voice, dict)
    assert "from" not in voice
    action = AddVoiceComment("CA1", comment)
    decoded = decode("add_voice_comment", "CA1:voice_comment", "CA1", encode(action), datetime.now(UTC))
    assert isinstance(decoded, AddVoiceComment)
    assert decoded.voice_comment.wire() == comment.wire()


@pytest.mark.parametrize(
    ("stored", "same"),
    [
        ("(503) 555-0147", True),
        ("+1 503-555-0147", True),
        ("5035550147", True),
        ("1-503-555-0147", True),
        ("+44 15035550147", False),  # ends in the same digits, another country
        ("503-555-0148", False),
        ("", False),
        (None, False),
        ("ext. only", False),
    ],
)
def test_stored_numbers_are_compared_by_parsing(stored: str | None, same: bool) -> None:
    """Zendesk profiles hold numbers as people typed them; a national one is read in the caller's region."""
    assert same_number(stored, "+15035550147") is same
    assert not same_number("503 555 0147", "not a number")  # a caller number that does not parse


def test_national_digits_are_what_phone_search_needs() -> None:
    assert national_digits("+15035550147") == "5035550147"
    assert national_digits("+442079460958") == "2079460958"
    assert national_digits("not a number") == ""


def test_invalid_reads_zendesk_details() -> None:
    body = '{"error":"RecordInvalid","details":{"status":[{"description":"Status: closed prevents ticket update"}]}}'
    error = Invalid("x", status=422, body=body)
    assert error.details == {"status": ["Status: closed prevents ticket update"]}
    assert error.closed_ticket
    assert Invalid("x", status=422, body="not json").details == {}
    assert Invalid("x", status=422, body='{"details": "text"}').details == {}
    assert not Invalid("x", status=422, body='{"details": {"via_id": ["bad"]}}').closed_ticket


def test_twilios_recording_words_become_neutral_facts() -> None:
    """RecordingSource says voicemail or conversation, or nothing; a RecordingUrl plays as MP3."""
    assert (recording_of("RecordVerb"), recording_of("DialVerb")) == ("voicemail", "conversation")
    assert recording_of("StartCallRecordingAPI") is None
    assert recording_of(None) is None
    assert media_url("https://api.twilio.com/R/RE1") == "https://api.twilio.com/R/RE1.mp3"
    assert media_url("https://api.twilio.com/R/RE1.wav") == "https://api.twilio.com/R/RE1.wav"
    assert media_url(None) is None
