"""The sandbox account's settings: credentials, limits, strictness switches and installed apps."""

from __future__ import annotations

from dataclasses import dataclass

RATE_WINDOW_SECONDS = 60.0


@dataclass
class SandboxConfig:
    """Credentials and limits the emulated Zendesk account enforces."""

    email: str = "bridge@example.com"
    api_token: str = "sandbox-token"
    oauth_token: str | None = None
    rate_limit_per_minute: int | None = None
    # The limit's window; 60 s like Zendesk. Benchmarks shrink it to see a whole backlog drain in seconds.
    rate_window_seconds: float = RATE_WINDOW_SECONDS
    # Seconds before a new user or ticket shows up in search, as on Zendesk, whose search index lags writes.
    search_index_delay: float = 3.0
    # The role of the token's user: "agent" (least privilege, the default) or "admin".
    token_role: str = "agent"
    # How long after arrival a `late` fault commits the write (and only then answers).
    late_commit_seconds: float = 1.0
    # Ticket keys this account drops with an X-Zendesk-API-Warn instead of applying.
    dropped_ticket_keys: frozenset[str] = frozenset()
    # Agents without a Talk Partner Edition seat: assignable, but screen-pops to them are refused.
    no_tpe_seat: frozenset[int] = frozenset()
    # Installed private apps by id, with the public key (PEM) their signed requests verify with.
    app_public_keys: tuple[tuple[int, str], ...] = ()
    # Whether the account serves the Agent Availability API (off: it answers 404 InvalidEndpoint, as for any
    # endpoint an account does not have), and whether it has unified agent statuses (`agent_status`).
    agent_availability: bool = True
    unified_statuses: bool = True
    # Seconds each API request takes to answer: the real Zendesk takes 100-500 ms, benchmarks model that.
    latency_seconds: float = 0.0


def installation_id(app_id: int) -> int:
    """Return the sandbox's installation id of an installed app (one installation per app)."""
    return 900000 + app_id
