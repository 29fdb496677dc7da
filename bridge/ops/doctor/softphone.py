"""Browser agents (the API key, the TwiML App, the Zendesk app's key and installation) and ZENDESK_API=calls."""

from __future__ import annotations

from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization

from bridge.ops.connections import authorization
from bridge.ops.doctor.check import Check
from bridge.ops.doctor.twilio import answer_of
from bridge.ops.settings import ConfigError, Settings
from bridge.softphone.routes import fetch_public_key, unavailable_reason
from bridge.twilio.rest import TwilioApi
from webhooks.names import Route, route_url


async def softphone_checks(settings: Settings) -> list[Check]:
    """Check what browser agents need: the API key, the TwiML App's Voice URL, and the Zendesk app's key."""
    problem = unavailable_reason(settings)
    fix = "set them as docs/softphone.md says"
    checks = [Check("softphone settings", problem is None, problem or "every variable browser agents need is set", fix)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        if settings.twilio_account_sid and settings.twilio_api_key_sid and settings.twilio_api_key_secret:
            checks += await _twiml_app_checks(session, settings)
        checks += await _app_key_checks(session, settings)
    return checks


async def _twiml_app_checks(session: aiohttp.ClientSession, settings: Settings) -> list[Check]:
    """Check the API key signs in, and the TwiML App sends calls to the bridge's /outgoing."""
    assert settings.twilio_account_sid
    assert settings.twilio_api_key_sid
    assert settings.twilio_api_key_secret is not None
    key = settings.twilio_api_key_sid, settings.twilio_api_key_secret.get_secret_value()
    # Twilio docs: REST API, API keys authenticate; the account itself is the cheapest thing to read.
    api = TwilioApi(session, settings.twilio_account_sid, key, settings.twilio_api_url)
    account = await answer_of(api.get(""))
    if isinstance(account, str):
        return _unanswered(account)
    if account[0] != 200:
        return [
            Check(
                "softphone API key",
                False,
                f"Twilio refused TWILIO_API_KEY_SID ({account[0]}): no softphone tokens",
                "create an API key in this account (Account > API keys) and set both its SID and secret",
            )
        ]
    checks = [Check("softphone API key", True, f"{settings.twilio_api_key_sid} signs in")]
    if settings.twilio_twiml_app_sid:
        app = await answer_of(api.get(f"/Applications/{settings.twilio_twiml_app_sid}.json"))
        if isinstance(app, str):
            return _unanswered(app)
        checks.append(_twiml_app_check(settings, *app))
    return checks


def _unanswered(error: str) -> list[Check]:
    """Say Twilio did not answer the softphone's checks."""
    return [Check("softphone API key", False, f"Twilio did not answer: {error}", "check TWILIO_API_URL")]


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


async def calls_checks(settings: Settings) -> list[Check]:
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
