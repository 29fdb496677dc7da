"""`bridge doctor`: check every setting, Zendesk, the agents, the database and Twilio before the first call.

Peers' users most often report "nothing arrives" with no clue why; each failure here names the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bridge.app import authorization, open_store
from bridge.core.clock import system_clock
from bridge.core.phones import is_client
from bridge.ops.settings import ConfigError, Settings, load_settings, mask_url
from bridge.zendesk.client import AuthFailed, NotFound, ZendeskClient, ZendeskError
from webhooks.names import Route, route_url

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


async def run_checks() -> tuple[list[Check], Settings | None]:
    """Run every check against the environment; return them and the settings when they loaded."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        checks = [Check("settings", False, part, "correct the variable named") for part in str(exc).split("; ")]
        return checks, None
    checks = [Check("settings", True, "every variable parses")]
    checks += _static_checks(settings)
    if settings.zendesk_base_url and (settings.zendesk_oauth_token or settings.zendesk_api_token):
        checks += await _zendesk_checks(settings)
    checks.append(await _database_check(settings))
    if settings.twilio_account_sid:
        checks.append(await _twilio_check(settings))
    return checks, settings


def _static_checks(settings: Settings) -> list[Check]:
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
    if settings.caller_id:
        checks.append(Check("CALLER_ID", True, settings.caller_id))
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


async def _zendesk_checks(settings: Settings) -> list[Check]:
    """Check Zendesk is reachable, the credentials work, and every AGENTS id is an agent."""
    assert settings.zendesk_base_url is not None
    async with aiohttp.ClientSession() as session:
        zendesk = ZendeskClient(session, settings.zendesk_base_url, authorization(settings), timeout=10)
        try:
            me = await zendesk.me()
        except AuthFailed as exc:
            return [
                Check(
                    "Zendesk credentials",
                    False,
                    f"{settings.zendesk_base_url} refused them ({exc.status})",
                    "check ZENDESK_EMAIL/ZENDESK_API_TOKEN, and that Admin Center > Apps and integrations > "
                    "Zendesk API has token access on",
                )
            ]
        except ZendeskError as exc:
            return [Check("Zendesk", False, f"{settings.zendesk_base_url}: {exc}", "check ZENDESK_SUBDOMAIN/URL")]
        checks = []
        if me.get("role") in ("agent", "admin"):
            checks.append(Check("Zendesk credentials", True, f"act as {me.get('name')} ({me.get('role')})"))
            checks += await _permission_checks(zendesk, int(me["id"]), str(me.get("role")))
            checks += await _placement_checks(zendesk, settings)
        else:
            checks.append(
                Check(
                    "Zendesk credentials",
                    False,
                    f"act as {me.get('name')}, role {me.get('role')}",
                    "use the token of an agent or admin (a dedicated integration agent)",
                )
            )
        for identity, user_id in settings.agents.items():
            checks.append(await _agent_check(zendesk, identity, user_id))
        return checks


async def _permission_checks(zendesk: ZendeskClient, me: int, role: str) -> list[Check]:
    """Say what the token's role may and may not do, and why the bridge needs no more than an agent's."""
    checks = []
    probes = [
        (
            "may search callers",
            zendesk.search_users_by_phone("0000000000"),
            "finds the caller's user by phone (Search API, allowed for agents)",
        ),
        (
            "may read identities",
            zendesk.user_phones(me),
            "reads the extra phone numbers of a candidate user (User Identities, allowed for agents)",
        ),
        (
            "may list requested",
            zendesk.user_tickets(me, "requested"),
            "finds a ticket an attempt created when its answer was lost (a user's requested tickets, allowed "
            "for agents)",
        ),
    ]
    for name, probe, why in probes:
        try:
            await probe
        except ZendeskError as exc:
            checks.append(Check(name, False, f"refused ({exc.status or exc}): {why}", _PERMISSION_FIX))
        else:
            checks.append(Check(name, True, why))
    try:
        await zendesk.tickets_by_external_id("bridge-doctor-probe")
    except AuthFailed:
        checks.append(
            Check("List Tickets", True, f"refused to this {role}, as Zendesk allows it for admins only; not needed")
        )
    except ZendeskError as exc:
        checks.append(Check("List Tickets", True, f"not usable ({exc.status or exc}); not needed"))
    else:
        checks.append(
            Check(
                "List Tickets",
                True,
                f"allowed to this {role}; not needed: an agent's token is enough (least privilege)",
            )
        )
    checks.append(
        Check(
            "creates end-users",
            True,
            "the bridge creates a user for an unknown caller: agents may unless Admin Center > People > Roles "
            "forbids adding end-users",
        )
    )
    return checks


_PERMISSION_FIX = (
    "give the integration user an agent role that may view all tickets and add end-users "
    "(Admin Center > People > Team > Roles)"
)


async def _placement_checks(zendesk: ZendeskClient, settings: Settings) -> list[Check]:
    """Check ZENDESK_GROUP_ID and ZENDESK_BRAND_ID name a group and brand the token can see."""
    checks = []
    for name, value, read in (
        ("ZENDESK_GROUP_ID", settings.zendesk_group_id, zendesk.group),
        ("ZENDESK_BRAND_ID", settings.zendesk_brand_id, zendesk.brand),
    ):
        if value is None:
            continue
        try:
            found = await read(value)
        except ZendeskError as exc:
            checks.append(Check(name, False, f"{value}: {exc}", "use the id from Admin Center (it is in the URL)"))
        else:
            checks.append(Check(name, True, f"{found.get('name')} ({value})"))
    return checks


async def _agent_check(zendesk: ZendeskClient, identity: str, user_id: int) -> Check:
    """Check one AGENTS entry names a Zendesk agent."""
    name = f"agent {identity}"
    try:
        user = await zendesk.user(user_id)
    except NotFound:
        return Check(name, False, f"Zendesk has no user {user_id}", "use the id from the agent's profile URL")
    except ZendeskError as exc:
        return Check(name, False, f"user {user_id}: {exc}", "check the Zendesk credentials")
    if user.get("role") not in ("agent", "admin"):
        return Check(
            name,
            False,
            f"user {user_id} ({user.get('name')}) is an {user.get('role')}, not an agent",
            "map the identity to the agent's own Zendesk user id",
        )
    kind = "browser client" if is_client(identity) else "phone"
    return Check(name, True, f"{user.get('name')} ({user_id}), {kind}")


async def _database_check(settings: Settings) -> Check:
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


async def _twilio_check(settings: Settings) -> Check:
    """Check the Twilio account SID and auth token work together."""
    assert settings.twilio_account_sid is not None
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    http = AsyncTwilioHttpClient()
    client = Client(settings.twilio_account_sid, token, http_client=http)
    if settings.twilio_api_url:
        client.api.base_url = settings.twilio_api_url.rstrip("/")
    try:
        account = await client.api.accounts(settings.twilio_account_sid).fetch_async()
        return Check("Twilio credentials", True, f"account {account.friendly_name}")
    except Exception as exc:
        return Check(
            "Twilio credentials",
            False,
            f"{settings.twilio_account_sid}: {str(exc).splitlines()[0][:200]}",
            "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN belong to the same account",
        )
    finally:
        await http.close()


def render(checks: list[Check], settings: Settings | None) -> str:
    """Format the table, the fixes and the URLs to paste into Twilio."""
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        lines.append(f"{'PASS' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"      {'':<{width}}  fix: {check.fix}")
    if settings is not None:
        base = settings.public_url
        lines += [
            "",
            "Paste into the Twilio console:",
            f"  Phone number > Voice > A call comes in (POST):  {route_url(base, Route.INCOMING)}",
            f"  Phone number > Voice > Call status changes:     {route_url(base, Route.STATUS)}",
            f"  TwiML App > Voice Request URL (POST):           {route_url(base, Route.OUTGOING)}",
            f"  TwiML App > Status Callback URL:                {route_url(base, Route.STATUS)}",
        ]
    failed = sum(not check.ok for check in checks)
    lines += ["", f"{failed} check(s) failed." if failed else "All checks passed."]
    return "\n".join(lines)
