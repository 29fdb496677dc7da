"""`bridge doctor`: check every setting, Zendesk, the agents, the database and Twilio before the first call.

Peers' users most often report "nothing arrives" with no clue why; each failure here names the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp
from cryptography.hazmat.primitives import serialization
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bridge.app import authorization, open_store
from bridge.core.clock import system_clock
from bridge.core.phones import is_client
from bridge.devtools.twilio_media import silent_mp3
from bridge.ops.recordings import TwilioMedia
from bridge.ops.settings import ConfigError, Settings, load_settings, mask_url
from bridge.softphone.routes import fetch_public_key, unavailable_reason
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
        checks += await _twilio_checks(settings)
    checks.append(await _recordings_check(settings))
    if settings.wants_softphone:
        checks += await _softphone_checks(settings)
    if settings.zendesk_api == "calls" and settings.zendesk_base_url:
        checks += await _calls_checks(settings)
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


async def _twilio_checks(settings: Settings) -> list[Check]:
    """Check the Twilio account SID and auth token work together, and that CALLER_ID is the account's."""
    assert settings.twilio_account_sid is not None
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    http = AsyncTwilioHttpClient()
    client = Client(settings.twilio_account_sid, token, http_client=http)
    if settings.twilio_api_url:
        client.api.base_url = settings.twilio_api_url.rstrip("/")
    try:
        try:
            account = await client.api.accounts(settings.twilio_account_sid).fetch_async()
        except Exception as exc:
            return [
                Check(
                    "Twilio credentials",
                    False,
                    f"{settings.twilio_account_sid}: {str(exc).splitlines()[0][:200]}",
                    "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN belong to the same account",
                )
            ]
        checks = [Check("Twilio credentials", True, f"account {account.friendly_name}")]
        if settings.caller_id:
            checks.append(await _caller_id_check(client, settings.caller_id))
        return checks
    finally:
        await http.close()


async def _caller_id_check(client: Client, caller_id: str) -> Check:
    """Check CALLER_ID is one of the account's numbers or verified caller ids, as Twilio requires.

    Twilio refuses a <Dial callerId> that is neither (Twilio docs: TwiML <Dial>, callerId), so every
    outbound call would fail with an error the agent only hears as a hang-up.
    """
    try:
        owned = await client.incoming_phone_numbers.list_async(phone_number=caller_id, limit=1)
        verified = [] if owned else await client.outgoing_caller_ids.list_async(phone_number=caller_id, limit=1)
    except Exception as exc:
        detail = f"could not list the account's numbers: {exc}"[:200]
        return Check("CALLER_ID at Twilio", False, detail, "check the credentials can read Phone Numbers")
    if owned or verified:
        kind = "a number of the account" if owned else "a verified caller id"
        return Check("CALLER_ID at Twilio", True, f"{caller_id} is {kind}")
    return Check(
        "CALLER_ID at Twilio",
        False,
        f"{caller_id} is neither a number of this account nor a verified caller id: outbound calls would fail",
        "set CALLER_ID to one of the account's numbers (Phone Numbers > Manage > Active numbers)",
    )


async def _recordings_check(settings: Settings) -> Check:
    """Check the chosen RECORDINGS mode end to end: Twilio's media API for proxy, a Zendesk upload for zendesk."""
    name = f"RECORDINGS={settings.recordings}"
    if settings.recordings == "twilio":
        return Check(
            name, True, "links are Twilio's own URLs: they play only while Enforce HTTP Auth on Media URLs is off"
        )
    if settings.recordings == "zendesk":
        return await _upload_check(name, settings)
    if not settings.twilio_account_sid:
        return Check(
            name, True, "not checked end to end: set TWILIO_ACCOUNT_SID and the doctor asks Twilio's media API"
        )
    credentials = "the API key" if settings.twilio_api_key_sid else "the auth token"
    async with aiohttp.ClientSession() as session:
        try:
            status = await TwilioMedia(session, settings).check_credentials(settings.twilio_account_sid)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Check(
                name, False, f"Twilio's media API did not answer: {type(exc).__name__}", "check TWILIO_API_URL"
            )
    if status == 200:
        return Check(name, True, f"Twilio's media API accepts {credentials}; links go to {settings.public_url}")
    return Check(
        name,
        False,
        f"Twilio's media API refused {credentials} ({status}): recording links would answer 502",
        "set TWILIO_AUTH_TOKEN of TWILIO_ACCOUNT_SID, or a valid TWILIO_API_KEY_SID/TWILIO_API_KEY_SECRET pair",
    )


async def _softphone_checks(settings: Settings) -> list[Check]:
    """Check what browser agents need: the API key, the TwiML App's Voice URL, and the Zendesk app's key."""
    problem = unavailable_reason(settings)
    fix = "set them as docs/softphone.md says"
    checks = [Check("softphone settings", problem is None, problem or "every variable browser agents need is set", fix)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        if settings.twilio_account_sid and settings.twilio_api_key_sid and settings.twilio_api_key_secret:
            checks += await _twiml_app_checks(session, settings)
        checks += await _app_key_checks(session, settings)
    return checks


async def _twilio_get(session: aiohttp.ClientSession, settings: Settings, path: str) -> tuple[int, dict[str, Any]]:
    """GET one resource of the account with the API key (Twilio docs: REST API, API keys authenticate)."""
    assert settings.twilio_api_key_sid
    assert settings.twilio_api_key_secret is not None
    base = (settings.twilio_api_url or "https://api.twilio.com").rstrip("/")
    key = settings.twilio_api_key_sid, settings.twilio_api_key_secret.get_secret_value()
    headers = {"Authorization": aiohttp.encode_basic_auth(*key)}
    url = f"{base}/2010-04-01/Accounts/{settings.twilio_account_sid}{path}"
    async with session.get(url, headers=headers) as response:
        body = await response.json() if response.status == 200 else {}
        return response.status, dict(body)


async def _twiml_app_checks(session: aiohttp.ClientSession, settings: Settings) -> list[Check]:
    """Check the API key signs in, and the TwiML App sends calls to the bridge's /outgoing."""
    try:
        key_status, _ = await _twilio_get(session, settings, ".json")
        if key_status != 200:
            return [
                Check(
                    "softphone API key",
                    False,
                    f"Twilio refused TWILIO_API_KEY_SID ({key_status}): no softphone tokens",
                    "create an API key in this account (Account > API keys) and set both its SID and secret",
                )
            ]
        checks = [Check("softphone API key", True, f"{settings.twilio_api_key_sid} signs in")]
        if settings.twilio_twiml_app_sid:
            app_status, app = await _twilio_get(
                session, settings, f"/Applications/{settings.twilio_twiml_app_sid}.json"
            )
            checks.append(_twiml_app_check(settings, app_status, app))
        return checks
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            Check("softphone API key", False, f"Twilio did not answer: {type(exc).__name__}", "check TWILIO_API_URL")
        ]


def _twiml_app_check(settings: Settings, status: int, app: dict[str, Any]) -> Check:
    """Judge the TwiML App Twilio described (Twilio docs: Application resource, voice_url and voice_method)."""
    wanted = route_url(settings.public_url, Route.OUTGOING)
    if status != 200:
        return Check(
            "TwiML App",
            False,
            f"{settings.twilio_twiml_app_sid}: Twilio answered {status}",
            "set TWILIO_TWIML_APP_SID to an AP… of this account (Voice > TwiML Apps)",
        )
    if app.get("voice_url") != wanted or str(app.get("voice_method") or "POST").upper() != "POST":
        return Check(
            "TwiML App",
            False,
            f"Voice URL is {app.get('voice_url')!r}: browser agents' calls would not reach the bridge",
            f"set the TwiML App's Voice Request URL to {wanted} (HTTP POST)",
        )
    return Check("TwiML App", True, f"{app.get('friendly_name')}: Voice URL {wanted}")


async def _app_key_checks(session: aiohttp.ClientSession, settings: Settings) -> list[Check]:
    """Check the Zendesk app's public key loads, and find the installation URL its JWTs carry as `aud`."""
    checks = []
    key = settings.zendesk_app_public_key
    if key is None and settings.zendesk_app_id and settings.zendesk_base_url:
        try:
            key = await fetch_public_key(settings, authorization(settings))
        except (aiohttp.ClientError, TimeoutError, ValueError, ConfigError) as exc:
            fix = "set ZENDESK_APP_ID to the uploaded app's id, or ZENDESK_APP_PUBLIC_KEY to its PEM"
            checks.append(Check("softphone app key", False, f"could not fetch it: {exc}", fix))
    if key is not None:
        try:
            serialization.load_pem_public_key(key.encode())
            checks.append(Check("softphone app key", True, "a public key that verifies the app's signed requests"))
        except ValueError:
            fix = "copy it again from /api/v2/apps/ID/public_key.pem, or unset it to fetch it with ZENDESK_APP_ID"
            checks.append(Check("softphone app key", False, "ZENDESK_APP_PUBLIC_KEY is not a readable PEM", fix))
    if settings.zendesk_app_id and settings.zendesk_base_url:
        checks.append(await _audience_check(session, settings))
    return checks


async def _installation(session: aiohttp.ClientSession, settings: Settings, name: str) -> dict[str, Any] | Check:
    """Find ZENDESK_APP_ID's installation (Zendesk docs: Apps, List App Installations), or the failed Check."""
    url = f"{settings.zendesk_base_url}/api/v2/apps/installations.json"
    try:
        async with session.get(url, headers={"Authorization": authorization(settings)}) as response:
            status = response.status
            found = (await response.json()).get("installations", []) if status == 200 else []
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check(name, False, f"could not list app installations ({type(exc).__name__})", "check ZENDESK_URL")
    if status != 200:
        return Check(name, False, f"could not list app installations (HTTP {status})", "use an admin's API token")
    mine = [item for item in found if item.get("app_id") == settings.zendesk_app_id]
    if not mine:
        fix = "install the uploaded app (Admin Center > Apps and integrations > Zendesk Support apps)"
        return Check(name, False, f"app {settings.zendesk_app_id} is not installed", fix)
    return dict(mine[0])


async def _audience_check(session: aiohttp.ClientSession, settings: Settings) -> Check:
    """Compare ZENDESK_APP_AUDIENCE with the URL of the app's installation."""
    name = "ZENDESK_APP_AUDIENCE"
    installation = await _installation(session, settings, name)
    if isinstance(installation, Check):
        return installation
    subdomain = settings.zendesk_subdomain
    host = f"https://{subdomain}.zendesk.com" if subdomain else settings.zendesk_base_url
    audience = f"{host}/api/v2/apps/installations/{installation['id']}.json"
    if settings.zendesk_app_audience == audience:
        return Check(name, True, audience)
    return Check(name, False, f"is {settings.zendesk_app_audience!r}, not the installation", f"set {name}={audience}")


async def _calls_checks(settings: Settings) -> list[Check]:
    """Check what ZENDESK_API=calls needs: ZENDESK_APP_ID is an installed app the token can see."""
    # Every call record names its app (Zendesk docs, "Talk Partner Edition API, Calls": app_id is mandatory),
    # and Zendesk refuses a record whose app is not installed.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        installation = await _installation(session, settings, "ZENDESK_API=calls")
    if isinstance(installation, Check):
        return [installation]
    return [
        Check(
            "ZENDESK_API=calls",
            True,
            f"call records name app {settings.zendesk_app_id}, installed ({installation.get('id')})",
        ),
        # Not probed: the Calls API has no delete, so a test record would stay in the account's call reporting.
        Check(
            "creates call records",
            True,
            "not probed: a call record cannot be deleted and would count in call reporting; a refusal shows on "
            "the first call, in the logs and dead letters",
        ),
    ]


async def _upload_check(name: str, settings: Settings) -> Check:
    """Upload a second of silence to Zendesk and delete it again: the token may upload attachments."""
    if settings.zendesk_base_url is None or not (settings.zendesk_oauth_token or settings.zendesk_api_token):
        return Check(name, False, "no Zendesk credentials to upload with", "set the Zendesk variables")
    async with aiohttp.ClientSession() as session:
        zendesk = ZendeskClient(session, settings.zendesk_base_url, authorization(settings), timeout=10)
        audio = silent_mp3(1.0)
        try:
            upload = await zendesk.upload("bridge-doctor.mp3", audio, content_type="audio/mpeg", length=len(audio))
            await zendesk.delete_upload(str(upload["token"]))
        except ZendeskError as exc:
            return Check(
                name,
                False,
                f"Zendesk refused an upload: {exc}",
                "let the integration agent add attachments (Admin Center > Objects and rules > Tickets > Settings > "
                "Attachments), or use RECORDINGS=proxy",
            )
    return Check(name, True, "Zendesk accepts uploads from these credentials")


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
            f"  SIP Domain > Call Control (desk phones, POST):  {route_url(base, Route.OUTGOING)}",
            "",
            "Zendesk softphone app (bridge zendesk-app): its top bar loads, signed:",
            f"  {base}/zendesk/softphone",
        ]
    failed = sum(not check.ok for check in checks)
    lines += ["", f"{failed} check(s) failed." if failed else "All checks passed."]
    return "\n".join(lines)
