"""Settings from the environment and `.env`, read once at start-up (docs/settings.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bridge.core.calls import Policy
from bridge.core.lines import Lines
from bridge.core.phones import is_e164
from bridge.core.presence import PresencePolicy
from bridge.core.routing import RoutingPolicy
from bridge.ops.clients import Trusted, parse_trusted
from bridge.ops.lines import Globals, parse_lines

_CLIENT = re.compile(r"^client:[A-Za-z0-9_.@-]{1,256}$")
_SIP = re.compile(r"^sip:[A-Za-z0-9_.+!~*'()&=$,;?/%-]+@[A-Za-z0-9.-]+$")
# Twilio's own hold music, as its <Enqueue> wait-music sample plays it (Twilio docs: TwiML <Enqueue>, waitUrl).
TWILIO_HOLD_MUSIC = "https://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_GREETING = (
    "Sorry, nobody can take your call right now. Please leave a message after the beep, "
    "and press the pound key when you are done."
)


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


def parse_agents(raw: str) -> dict[str, int]:
    """Parse `identity=zendesk_user_id` pairs, naming the first bad entry in the error."""
    agents: dict[str, int] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        identity, sep, user_id = (piece.strip() for piece in entry.partition("="))
        if not sep or not identity or not user_id:
            raise ValueError(f"AGENTS entry {entry!r} is not identity=zendesk_user_id")
        if not (_CLIENT.match(identity) or _SIP.match(identity) or is_e164(identity)):
            raise ValueError(
                f"AGENTS entry {entry!r}: identity must be client:NAME, sip:NAME@DOMAIN (a desk phone) "
                "or an E.164 number like +14155550100"
            )
        if not user_id.isdigit() or int(user_id) <= 0:
            raise ValueError(f"AGENTS entry {entry!r}: {user_id!r} is not a Zendesk user id (a positive integer)")
        if identity in agents:
            raise ValueError(f"AGENTS names {identity!r} twice")
        agents[identity] = int(user_id)
    return agents


def parse_webhook_keys(raw: str) -> dict[str, str]:
    """Parse `keyid=secret` pairs of Twilio SharedKeys, naming the first bad entry (never its secret)."""
    keys: dict[str, str] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        key_id, sep, secret = (piece.strip() for piece in entry.partition("="))
        if not sep or not key_id or not secret:
            raise ValueError(f"TWILIO_WEBHOOK_KEYS entry for {key_id or '?'!r} is not keyid=secret")
        if key_id in keys:
            raise ValueError(f"TWILIO_WEBHOOK_KEYS names {key_id!r} twice")
        keys[key_id] = secret
    return keys


def mask_url(url: str) -> str:
    """Hide a password in a database URL (Heroku's DATABASE_URL carries one)."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def parse_roles(raw: str) -> tuple[str, ...]:
    """Parse SUPERVISOR_ROLES: Zendesk role names or custom role ids, comma-separated (blank: none)."""
    return tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))


def parse_duration(raw: str | float) -> float:
    """Parse seconds given as a number or with a unit suffix (`90`, `30m`, `24h`, `2d`)."""
    if isinstance(raw, int | float):
        return float(raw)
    match = _DURATION.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a duration such as 3600, 30m, 24h or 2d")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Settings(BaseSettings):
    """Every environment variable the bridge reads (docs/settings.md), typed and validated."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    public_url: str = "http://localhost:8080"
    twilio_auth_token: SecretStr | None = None
    twilio_account_sid: str | None = None
    twilio_api_url: str | None = None  # instead of https://api.twilio.com (a proxy, or a test fake)
    zendesk_subdomain: str | None = None
    zendesk_url: str | None = None
    zendesk_email: str | None = None
    zendesk_api_token: SecretStr | None = None
    zendesk_oauth_token: SecretStr | None = None
    database_url: str = "sqlite:///bridge.db"
    agents: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    caller_id: str | None = None
    port: int = Field(8080, ge=1, le=65535)
    ticket_on: Literal["answer", "end"] = "answer"
    dial_timeout: int = Field(20, ge=5, le=600)
    record_calls: bool = True
    voicemail: bool = True
    transcribe_voicemail: bool = True
    missed_call_tickets: bool = True
    recording_wait_seconds: float = Field(120.0, ge=0)
    transcription_wait_seconds: float = Field(60.0, ge=0)
    voicemail_greeting: str = DEFAULT_GREETING
    default_region: str | None = None
    zendesk_rate_limit: int = Field(400, ge=1)
    zendesk_timeout_seconds: float = Field(15.0, gt=0)
    zendesk_group_id: int | None = Field(None, gt=0)
    zendesk_brand_id: int | None = Field(None, gt=0)
    pop_deadline_seconds: float = Field(30.0, gt=0)
    outbox_max_age: Annotated[float, NoDecode] = 24 * 3600.0
    call_stale_minutes: float = Field(30.0, gt=0)
    record_dir: str | None = None
    screen_phone_agents: bool = True
    twilio_webhook_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    twilio_api_key_sid: str | None = None
    twilio_api_key_secret: SecretStr | None = None
    recordings: Literal["proxy", "zendesk", "twilio"] = "proxy"
    recording_link_ttl_days: float | None = Field(None, gt=0)
    twilio_twiml_app_sid: str | None = None  # the TwiML App browser agents call out through (softphone tokens)
    zendesk_app_id: int | None = Field(None, gt=0)  # the installed softphone app (its key is fetched with it)
    zendesk_app_public_key: str | None = None  # PEM that verifies the app's signed requests; else fetched by id
    zendesk_app_audience: str | None = None  # https://{subdomain}.zendesk.com/api/v2/apps/installations/{id}.json
    # How calls reach Zendesk: "tickets" (voice comments on tickets) or "calls" (TPE call records, which name
    # the installed app ZENDESK_APP_ID).
    zendesk_api: Literal["tickets", "calls"] = "tickets"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["json", "text"] = "text"
    # A request body not complete this long after its headers closes the connection: Twilio sends a webhook
    # whole, and gives up on it after 15 s (Twilio docs: Webhooks, connection overrides).
    body_timeout_seconds: float = Field(10.0, gt=0)
    # Who the client is behind a proxy (docs/security.md): unset, the peer; a list of proxy addresses or
    # networks, the rightmost X-Forwarded-For entry not in it; "*", the rightmost entry.
    forwarded_allow_ips: Annotated[Trusted | None, NoDecode] = None
    metrics_token: SecretStr | None = None  # when set, /metrics needs `Authorization: Bearer METRICS_TOKEN`
    # Routing and the queue (docs/routing.md).
    routing: Literal["ring_all", "longest_idle", "round_robin"] = "ring_all"
    agent_ring_seconds: int = Field(15, ge=5, le=600)
    wrap_up_seconds: float = Field(0.0, ge=0)
    presence_timeout_seconds: float = Field(60.0, ge=10)
    missed_offers_away: int = Field(0, ge=0)
    hold_music_url: str = TWILIO_HOLD_MUSIC
    queue_announce_seconds: float = Field(60.0, ge=0)
    queue_max_wait_seconds: float = Field(300.0, ge=0)
    queue_max_size: int = Field(50, ge=0)
    # Routing that knows the customer (docs/routing.md): the caller's own agent first (0: off), an ordinary
    # caller ranked as a priority one after this long (0: never), and how long /incoming waits for the look-up.
    preferred_agent_seconds: int = Field(0, ge=0, le=600)
    priority_aging_seconds: float = Field(120.0, ge=0)
    lookup_budget_ms: int = Field(300, ge=0, le=5000)
    # Callbacks (docs/callbacks.md): after this long in the queue a caller may press 1 to be called back (unset: no
    # offer); each request is tried CALLBACK_ATTEMPTS times, CALLBACK_RETRY_MINUTES apart.
    callback_offer_seconds: float | None = Field(None, gt=0)
    callback_retry_minutes: float = Field(10.0, gt=0)
    callback_attempts: int = Field(3, ge=1, le=10)
    # Numbers a caller may key for their callback besides their line's country: E.164 prefixes such as +44,+3531.
    callback_allowed_prefixes: Annotated[tuple[str, ...] | None, NoDecode] = None
    # Every call the bridge creates through Twilio's REST API is paced account-wide to this many a second.
    twilio_calls_per_second: float = Field(1.0, gt=0, le=100)
    # How often agents' availability in Zendesk is read (0: never); it needs an admin's token.
    zendesk_availability_seconds: float = Field(30.0, ge=0)
    # The numbers the bridge answers, each a line (docs/lines.md): TOML inline, or the path of a TOML file.
    lines: str | None = None
    lines_file: str | None = None
    # The supervisors' live view (docs/live-view.md): who besides Zendesk admins may open it (role names or
    # custom role ids), the wait a service level counts as answered in time, and the wall screens' JSON token.
    supervisor_roles: Annotated[tuple[str, ...], NoDecode] = ()
    service_level_seconds: float = Field(20.0, gt=0)
    live_token: SecretStr | None = None  # when set, GET /live answers `Authorization: Bearer LIVE_TOKEN`
    _lines: Lines = PrivateAttr(default_factory=Lines)

    @field_validator("agents", mode="before")
    @classmethod
    def _agents(cls, value: object) -> object:
        return parse_agents(value) if isinstance(value, str) else value

    @field_validator("twilio_webhook_keys", mode="before")
    @classmethod
    def _webhook_keys(cls, value: object) -> object:
        return parse_webhook_keys(value) if isinstance(value, str) else value

    @field_validator("callback_allowed_prefixes", mode="before")
    @classmethod
    def _prefixes(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        prefixes = tuple(part.strip() for part in value.split(",") if part.strip())
        if not prefixes:
            return None
        for prefix in prefixes:
            if not re.match(r"^\+[1-9]\d{0,6}$", prefix):
                raise ValueError(f"{prefix!r} is not a number prefix: write them as +44,+3531 (a plus and digits)")
        return prefixes

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _forwarded(cls, value: object) -> object:
        return parse_trusted(value) if isinstance(value, str) else value

    @field_validator("supervisor_roles", mode="before")
    @classmethod
    def _supervisor_roles(cls, value: object) -> object:
        return parse_roles(value) if isinstance(value, str) else value

    @field_validator("outbox_max_age", mode="before")
    @classmethod
    def _max_age(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str | int | float) else value

    @field_validator(
        "twilio_auth_token",
        "zendesk_email",
        "zendesk_api_token",
        "zendesk_oauth_token",
        "caller_id",
        "default_region",
        "zendesk_subdomain",
        "zendesk_url",
        "record_dir",
        "twilio_account_sid",
        "twilio_api_url",
        "twilio_api_key_sid",
        "twilio_api_key_secret",
        "recording_link_ttl_days",
        "twilio_twiml_app_sid",
        "zendesk_app_id",
        "zendesk_app_public_key",
        "zendesk_app_audience",
        "zendesk_group_id",
        "zendesk_brand_id",
        "metrics_token",
        "live_token",
        "lines",
        "lines_file",
        "callback_offer_seconds",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, value: str | None) -> str | None:
        if value is not None and not is_e164(value):
            raise ValueError(f"CALLER_ID {value!r} must be an E.164 number like +16505550100")
        return value

    @field_validator("routing", mode="before")
    @classmethod
    def _routing(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("zendesk_availability_seconds")
    @classmethod
    def _availability(cls, value: float) -> float:
        if 0 < value < 5:
            raise ValueError("ZENDESK_AVAILABILITY_SECONDS must be 0 (off) or at least 5")
        return value

    @field_validator("hold_music_url")
    @classmethod
    def _hold_music(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"HOLD_MUSIC_URL {value!r} must be an http(s) URL of an MP3 or WAV file (or of TwiML)")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"PUBLIC_URL {value!r} must start with https:// (or http:// for localhost)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _api_key_pair(self) -> Settings:
        if bool(self.twilio_api_key_sid) != (self.twilio_api_key_secret is not None):
            raise ValueError("set both TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET, or neither")
        return self

    @field_validator("zendesk_api", mode="before")
    @classmethod
    def _zendesk_api(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or "tickets"
        return value

    @model_validator(mode="after")
    def _calls_need_an_app(self) -> Settings:
        # Docs, "Talk Partner Edition API, Calls": app_id is mandatory on every call record.
        if self.zendesk_api == "calls" and self.zendesk_app_id is None:
            raise ValueError(
                "ZENDESK_API=calls needs ZENDESK_APP_ID, the id of the installed softphone app that call records "
                "name (or set ZENDESK_API=tickets)"
            )
        return self

    @model_validator(mode="after")
    def _read_lines(self) -> Settings:
        # After every other field: a line takes what it leaves out from them (AGENTS, ROUTING, QUEUE_*, …).
        if self.lines is not None and self.lines_file is not None:
            raise ValueError("set LINES (the lines' TOML) or LINES_FILE (the path of a TOML file), not both")
        if self.lines is not None:
            self._lines = parse_lines(self.lines, "LINES", self._line_globals())
        elif self.lines_file is not None:
            try:
                text = Path(self.lines_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"LINES_FILE {self.lines_file!r} cannot be read: {exc}") from None
            self._lines = parse_lines(text, f"LINES_FILE {self.lines_file}", self._line_globals())
        return self

    def _line_globals(self) -> Globals:
        """Return what every line takes from these settings for the keys it leaves out."""
        return Globals(
            agents=tuple(self.agents),
            routing=self._base_routing(),
            can_queue=bool(self.twilio_account_sid),
            hold_music_url=self.hold_music_url,
            queue_announce_seconds=self.queue_announce_seconds,
            caller_id=self.caller_id,
            callback_offer_seconds=self.callback_offer_seconds,
        )

    @property
    def phone_lines(self) -> Lines:
        """Return the lines: LINES or LINES_FILE, else the one line these settings describe."""
        return self._lines

    @field_validator("zendesk_app_public_key")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        # Platforms' one-line variables often carry a PEM with literal \n between its lines.
        pem = value.replace("\\n", "\n").strip() if value is not None else None
        if pem is not None and not pem.startswith("-----BEGIN PUBLIC KEY-----"):
            raise ValueError("ZENDESK_APP_PUBLIC_KEY must be a PEM starting with -----BEGIN PUBLIC KEY-----")
        return pem

    @field_validator("zendesk_app_audience")
    @classmethod
    def _audience(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/]+/api/v2/apps/installations/\d+\.json$", value):
            raise ValueError(
                f"ZENDESK_APP_AUDIENCE {value!r} must be https://SUBDOMAIN.zendesk.com/api/v2/apps/installations/ID.json"
                " (bridge doctor finds it from ZENDESK_APP_ID)"
            )
        return value

    @property
    def softphone_issuer(self) -> str | None:
        """Return the `iss` the app's JWTs carry: the host of the installation URL."""
        if self.zendesk_app_audience is None:
            return None
        return self.zendesk_app_audience.split("://", 1)[1].split("/", 1)[0]

    @field_validator("recordings", mode="before")
    @classmethod
    def _recordings(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def twilio_media_auth(self, account_sid: str) -> tuple[str, str]:
        """Return the Basic auth for Twilio's media API: the API key when set, else the account and its token."""
        if self.twilio_api_key_sid and self.twilio_api_key_secret is not None:
            return self.twilio_api_key_sid, self.twilio_api_key_secret.get_secret_value()
        token = self.twilio_auth_token.get_secret_value() if self.twilio_auth_token else ""
        return account_sid, token

    @property
    def zendesk_base_url(self) -> str | None:
        """Return the Zendesk API base URL from ZENDESK_URL or ZENDESK_SUBDOMAIN."""
        if self.zendesk_url:
            return self.zendesk_url.rstrip("/")
        if self.zendesk_subdomain:
            return f"https://{self.zendesk_subdomain}.zendesk.com"
        return None

    @property
    def sqlite_path(self) -> str:
        """Return the SQLite file of a `sqlite:///relative` or `sqlite:////absolute` DATABASE_URL."""
        if not self.database_url.startswith("sqlite:///"):
            raise ConfigError(f"DATABASE_URL {self.database_url!r} is not a sqlite:/// URL")
        return self.database_url.removeprefix("sqlite:///") or "bridge.db"

    @property
    def wants_softphone(self) -> bool:
        """Tell whether the settings ask for the softphone (ZENDESK_APP_ID alone may only name call records' app)."""
        app_for_softphone = self.zendesk_app_id is not None and self.zendesk_api != "calls"
        return bool(self.twilio_twiml_app_sid or self.zendesk_app_audience or app_for_softphone)

    @property
    def queueing(self) -> bool:
        """Tell whether callers may wait in the queue: it is on, and the bridge can move them out of it.

        Moving a waiting caller to an agent is a Calls update through Twilio's REST API, which needs the
        account SID with the auth token or an API key (`bridge doctor` says so when they are missing).
        """
        return bool(self.twilio_account_sid) and self.queue_max_size > 0 and self.queue_max_wait_seconds > 0

    def routing_policy(self) -> RoutingPolicy:
        """Return routing's view of these settings, each line's own policy and agents included."""
        return self.phone_lines.routing(self._base_routing(), tuple(self.agents))

    def _base_routing(self) -> RoutingPolicy:
        """Return the global routing settings."""
        return RoutingPolicy(
            strategy=self.routing,
            ring_all_seconds=self.dial_timeout,
            agent_ring_seconds=self.agent_ring_seconds,
            queue=self.queueing,
            max_wait=self.queue_max_wait_seconds,
            max_size=self.queue_max_size,
            voicemail=self.voicemail,
            preferred_seconds=self.preferred_agent_seconds,
            aging=self.priority_aging_seconds,
            presence=PresencePolicy(
                wrap_up_seconds=self.wrap_up_seconds,
                presence_timeout=self.presence_timeout_seconds,
                missed_offers_away=self.missed_offers_away,
            ),
        )

    def policy(self) -> Policy:
        """Return the state machine's view of these settings."""
        return Policy(
            agents=dict(self.agents),
            ticket_on=self.ticket_on,
            record_calls=self.record_calls,
            voicemail=self.voicemail,
            transcribe_voicemail=self.transcribe_voicemail,
            missed_call_tickets=self.missed_call_tickets,
            recording_wait=self.recording_wait_seconds,
            transcription_wait=self.transcription_wait_seconds,
            caller_id=self.caller_id,
            default_region=self.default_region,
            screen_phone_agents=self.screen_phone_agents,
            api=self.zendesk_api,
            queue_max_wait=self.queue_max_wait_seconds,
            wrap_up=self.wrap_up_seconds,
            lines=self.phone_lines,
            joined_recordings=self.recordings != "twilio",
            callback_attempts=self.callback_attempts,
            callback_retry=self.callback_retry_minutes * 60,
        )

    def check_serving(self) -> None:
        """Refuse to serve without what every webhook and delivery needs (fail closed)."""
        if self.twilio_auth_token is None or not self.twilio_auth_token.get_secret_value():
            raise ConfigError(
                "TWILIO_AUTH_TOKEN is not set: the bridge cannot check Twilio's signatures and will not start "
                "(copy it from the Twilio console, Account > API keys & tokens > Auth Token)"
            )
        if self.zendesk_base_url is None:
            raise ConfigError("set ZENDESK_SUBDOMAIN (acme for acme.zendesk.com) or ZENDESK_URL")
        if self.zendesk_oauth_token is None and (self.zendesk_email is None or self.zendesk_api_token is None):
            raise ConfigError("set ZENDESK_EMAIL and ZENDESK_API_TOKEN, or ZENDESK_OAUTH_TOKEN")


ENV_FILE = Path(".env")  # in the working directory, as `.env.example` tells users to copy it


def load_settings(env_file: Path | None = ENV_FILE, **overrides: object) -> Settings:
    """Read the environment and `env_file` once (the environment wins), turning errors into one ConfigError."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            # An error about several settings together names them itself.
            lines.append(f"{name}: {message}" if name else message)
        raise ConfigError("; ".join(lines)) from exc
