"""What needs no network (the settings themselves), and the database."""

from __future__ import annotations

from urllib.parse import urlparse

from bridge.core.clock import system_clock
from bridge.ops.connections import open_store
from bridge.ops.doctor.check import Check
from bridge.ops.settings import Settings, mask_url

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def static_checks(settings: Settings) -> list[Check]:
    """Check what needs no network."""
    checks = []
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    checks.append(
        Check("TWILIO_AUTH_TOKEN", True, "set")
        if token
        else Check(
            "TWILIO_AUTH_TOKEN",
            False,
            "not set: the bridge refuses to start without it",
            "copy the primary Auth Token from the Twilio console (Account > API keys & tokens)",
        )
    )
    url = urlparse(settings.public_url)
    if url.scheme == "https" or url.hostname in LOCAL_HOSTS:
        checks.append(Check("PUBLIC_URL", True, settings.public_url))
    else:
        checks.append(
            Check(
                "PUBLIC_URL",
                False,
                f"{settings.public_url} is not https",
                "use the https:// address Twilio reaches (Heroku and Fly give one); signatures cover the scheme",
            )
        )
    if settings.agents:
        agents = ", ".join(settings.agents)
        checks.append(Check("AGENTS", True, f"{len(settings.agents)} agents: {agents}"))
    else:
        checks.append(
            Check(
                "AGENTS",
                False,
                "empty: incoming calls would go straight to voicemail and nobody gets screen-pops",
                "set AGENTS=client:alice=<zendesk user id>,+15551230000=<zendesk user id>",
            )
        )
    lines = settings.phone_lines
    if settings.caller_id:
        checks.append(Check("CALLER_ID", True, settings.caller_id))
    elif lines.configured and all(line.caller_id for line in lines.all):
        checks.append(Check("CALLER_ID", True, "not set: every line has a caller_id of its own"))
    else:
        checks.append(
            Check("CALLER_ID", False, "not set: browser agents cannot call out", "set CALLER_ID to your Twilio number")
        )
    if settings.zendesk_base_url is None:
        checks.append(Check("Zendesk URL", False, "not set", "set ZENDESK_SUBDOMAIN (acme) or ZENDESK_URL"))
    if settings.zendesk_oauth_token is None and (settings.zendesk_email is None or settings.zendesk_api_token is None):
        checks.append(
            Check(
                "Zendesk credentials",
                False,
                "not set",
                "set ZENDESK_EMAIL and ZENDESK_API_TOKEN (or ZENDESK_OAUTH_TOKEN)",
            )
        )
    return checks


async def database_check(settings: Settings) -> Check:
    """Check the database opens and is writable, applying pending migrations as start-up would."""
    try:
        store = await open_store(settings)
    except Exception as exc:  # whatever stops it opening is exactly what this check reports
        return Check(
            "database",
            False,
            f"{mask_url(settings.database_url)}: {exc}",
            "point DATABASE_URL at a writable file (on Fly, the /data volume: sqlite:////data/bridge.db)",
        )
    try:
        await store.ping()
        stats = await store.stats(system_clock())
    finally:
        await store.close()
    url = mask_url(settings.database_url)
    return Check("database", True, f"{url} opened and migrated; {stats.pending} pending, {stats.dead} dead")
