"""The softphone's routes: Zendesk's signed top-bar request, the Twilio token, the agent's status, the assets."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from string import Template
from typing import Any

import aiohttp
from aiohttp import web
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from bridge.appkeys import CLOCK, DESK, SETTINGS, STORE
from bridge.core.actions import caller_key
from bridge.core.phones import to_e164
from bridge.ops.frontdoor import REASON
from bridge.ops.settings import Settings
from bridge.softphone import calls
from bridge.softphone.identity import NotVerified, Session, SessionSigner, verify_zendesk_token
from bridge.softphone.presence import BadChoice, NotYours, Presence
from bridge.zendesk.outbox.results import Caller, result_of

log = logging.getLogger("bridge.softphone")

PAGE_ROUTE = "/zendesk/softphone"
TOKEN_ROUTE = "/softphone/token"
CALLER_ROUTE = "/softphone/caller"
PRESENCE_ROUTE = "/softphone/presence"
WRAP_UP_ROUTE = "/softphone/presence/wrap-up"
GOODBYE_ROUTE = "/softphone/presence/goodbye"
STATIC_PREFIX = "/softphone/static"
SDK_ROUTE = "/softphone/sdk/twilio.min.js"
STATIC = Path(__file__).parent / "static"
# `npm ci` at build time (package.json at the repository's root) installs the SDK; it is never committed.
SDK_PATH = Path("node_modules", "@twilio", "voice-sdk", "dist", "twilio.min.js")
SDK_FILE = Path(__file__).resolve().parents[2] / SDK_PATH  # a checkout (make, tests, the demo)
VOICE_TOKEN_TTL = 3600  # seconds; the page asks for a fresh one on the SDK's tokenWillExpire
ASSETS = {"softphone.js": "text/javascript", "softphone.css": "text/css", "background.js": "text/javascript",
          "background.html": "text/html", "ticker.js": "text/javascript"}  # fmt: skip
# Zendesk's iframes are the page's only legitimate parents; the SDK talks to Twilio over https and wss.
CSP = (
    "default-src 'self'; script-src 'self' https://static.zdassets.com; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' https: wss:; media-src 'self' https: blob:; "
    "frame-ancestors 'self' https://*.zendesk.com https://*.zdassets.com https://*.zdusercontent.com"
)


@dataclass(frozen=True)
class Softphone:
    """What the softphone routes need, settled at start-up."""

    settings: Settings
    public_key: str | None  # the app's PEM; None when neither set nor fetched
    problem: str | None  # why the softphone is not available, in words an admin can act on
    sessions: SessionSigner | None
    sdk: Path | None  # the SDK's bundle, where the build put it

    def identity_of(self, agent_id: int) -> str | None:
        """Return the browser identity (`client:NAME` in AGENTS) of a Zendesk agent, if any."""
        for identity, user_id in self.settings.agents.items():
            if user_id == agent_id and identity.startswith("client:"):
                return identity.removeprefix("client:")
        return None


SOFTPHONE = web.AppKey("softphone", Softphone)


def unavailable_reason(settings: Settings) -> str | None:
    """Say what browser agents still need configured, or None when everything is set."""
    missing = [
        name
        for name, value in [
            ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("TWILIO_API_KEY_SID", settings.twilio_api_key_sid),
            ("TWILIO_TWIML_APP_SID", settings.twilio_twiml_app_sid),
            ("ZENDESK_APP_AUDIENCE", settings.zendesk_app_audience),
        ]
        if not value
    ]
    if not settings.zendesk_app_public_key and not settings.zendesk_app_id:
        missing.append("ZENDESK_APP_PUBLIC_KEY or ZENDESK_APP_ID")
    return f"the softphone is not configured: set {', '.join(missing)}" if missing else None


async def fetch_public_key(settings: Settings, authorization: str) -> str:
    """Fetch the app's public key once (Zendesk docs: GET /api/v2/apps/{app_id}/public_key.pem)."""
    url = f"{settings.zendesk_base_url}/api/v2/apps/{settings.zendesk_app_id}/public_key.pem"
    timeout = aiohttp.ClientTimeout(total=settings.zendesk_timeout_seconds)
    # Its own session, closed at once: the outbox's session carries Zendesk I/O, this is a start-up read.
    async with (
        aiohttp.ClientSession(headers={"User-Agent": "twilio-zendesk-bridge"}, timeout=timeout) as session,
        session.get(url, headers={"Authorization": authorization}) as response,
    ):
        text = await response.text()
        if response.status != 200 or "BEGIN PUBLIC KEY" not in text:
            what = "without a PEM public key" if response.status == 200 else ""
            raise ValueError(
                f"GET /api/v2/apps/{settings.zendesk_app_id}/public_key.pem answered {response.status} {what}".strip()
            )
        return text.strip()


def find_sdk() -> Path | None:
    """Return where the build installed the SDK: beside the checkout, or in the working directory (an image)."""
    for candidate in (SDK_FILE, Path.cwd() / SDK_PATH):
        if candidate.is_file():
            return candidate
    return None


def setup(app: web.Application, settings: Settings, authorization: str | None) -> None:
    """Mount the softphone's routes, and load the app's key when the application starts."""

    async def softphone_ctx(app: web.Application) -> AsyncIterator[None]:
        problem = unavailable_reason(settings)
        key = settings.zendesk_app_public_key
        if problem is None and key is None and authorization is not None:
            try:
                key = await fetch_public_key(settings, authorization)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # Calls matter more than the softphone: start anyway, and say why on the page and in the log.
                problem = f"the softphone app's public key could not be fetched ({exc}); set ZENDESK_APP_PUBLIC_KEY"
        if problem is not None and settings.wants_softphone:
            log.warning("%s", problem)
        secret = settings.twilio_api_key_secret
        sessions = SessionSigner(secret.get_secret_value().encode()) if secret is not None else None
        app[SOFTPHONE] = Softphone(settings, key, problem, sessions, find_sdk())
        yield

    app.cleanup_ctx.append(softphone_ctx)
    app.router.add_post(PAGE_ROUTE, page)
    app.router.add_post(TOKEN_ROUTE, voice_token)
    app.router.add_post(CALLER_ROUTE, caller)
    app.router.add_get(PRESENCE_ROUTE, presence_now)
    app.router.add_post(PRESENCE_ROUTE, presence_choose)
    app.router.add_post(WRAP_UP_ROUTE, presence_end_wrap_up)
    app.router.add_post(GOODBYE_ROUTE, presence_goodbye)
    calls.setup(app, _session)  # the controls of the call the agent is on
    app.router.add_get(STATIC_PREFIX + "/{name}", asset)
    app.router.add_get(SDK_ROUTE, sdk)


async def page(request: web.Request) -> web.Response:
    """Verify Zendesk's signed top-bar request and serve the softphone page for that agent."""
    softphone, now = request.app[SOFTPHONE], request.app[CLOCK]()
    if softphone.problem is not None or softphone.public_key is None or softphone.sessions is None:
        return _message(503, "Softphone unavailable", softphone.problem or "the softphone is not configured")
    try:
        form = await request.post()
    except (ValueError, LookupError) as exc:  # not the charset it names (or one Python does not know), not a form
        raise web.HTTPBadRequest(reason=f"the form body cannot be read ({type(exc).__name__})") from None
    token = form.get("token")
    audience, issuer = softphone.settings.zendesk_app_audience, softphone.settings.softphone_issuer
    assert audience is not None  # unavailable_reason made sure
    assert issuer is not None
    try:
        if not isinstance(token, str) or not token:
            raise NotVerified("no token: the app's location must say signed: true")
        agent_id = verify_zendesk_token(token, softphone.public_key, audience=audience, issuer=issuer, now=now)
    except NotVerified as exc:
        request[REASON] = f"softphone page refused: {exc}"  # logged by the front door, once a second at most
        return _message(401, "Not signed in", f"Zendesk's request could not be verified: {exc}.")
    return render_page(softphone, agent_id, now)


def render_page(softphone: Softphone, agent_id: int, now: datetime) -> web.Response:
    """Serve a verified agent their phone, or a page saying why they have none."""
    identity = softphone.identity_of(agent_id)
    assert softphone.sessions is not None  # the caller checked the softphone is available
    if identity is None:
        log.info("softphone page for Zendesk agent %s, who has no client: identity in AGENTS", agent_id)
        return _message(
            200,
            "No phone for you yet",
            f"Your Zendesk user ({agent_id}) is not a browser agent of this bridge. Ask an admin to add "
            f"client:YOURNAME={agent_id} to AGENTS.",
        )
    config: dict[str, Any] = {
        "session": softphone.sessions.issue(identity, agent_id, now),
        "identity": identity,
        "agent": agent_id,
    }
    lines = softphone.settings.phone_lines.of_agent(f"client:{identity}")
    if len(lines) > 1:
        # An agent serving several lines chooses which one a call out goes from (its caller id, group, brand).
        config["lines"] = [{"number": line.number, "name": line.label()} for line in lines]
    # JSON in a non-executed <script> block: `<` escaped so the data can never close the element.
    body = _template("softphone.html").substitute(config=json.dumps(config).replace("<", "\\u003c"))
    return web.Response(text=body, content_type="text/html", headers=_headers())


async def voice_token(request: web.Request) -> web.Response:
    """Return a Twilio Voice access token for the session's agent, and the session renewed."""
    softphone, session, now = request.app[SOFTPHONE], _session(request), request.app[CLOCK]()
    settings = softphone.settings
    # A session exists only when unavailable_reason found all of these set.
    assert settings.twilio_api_key_sid
    assert settings.twilio_api_key_secret is not None
    assert softphone.sessions is not None
    assert settings.twilio_account_sid
    # twilio-python, twilio.jwt.access_token: AccessToken signed with an API key, and a VoiceGrant that
    # lets the device receive calls to its identity and call out through the TwiML App.
    access = AccessToken(
        settings.twilio_account_sid,
        settings.twilio_api_key_sid,
        settings.twilio_api_key_secret.get_secret_value(),
        identity=session.identity,
        ttl=VOICE_TOKEN_TTL,
    )
    access.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=settings.twilio_twiml_app_sid))
    renewed = softphone.sessions.issue(session.identity, session.agent_id, now, since=session.since)
    log.info("softphone token issued to client:%s (Zendesk agent %s)", session.identity, session.agent_id)
    body = {"token": access.to_jwt(), "identity": session.identity, "ttl": VOICE_TOKEN_TTL, "session": renewed}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def caller(request: web.Request) -> web.Response:
    """Return the Zendesk user the bridge found for a caller's number, when it knows one (no Zendesk I/O)."""
    _session(request)
    try:
        number = str((await request.json())["number"])
    except (ValueError, KeyError, TypeError, LookupError) as exc:
        raise web.HTTPBadRequest(reason='body must be {"number": "+1…"}') from exc
    e164 = to_e164(number, request.app[SETTINGS].default_region)
    user_id = None
    if e164:
        key = caller_key(e164)
        row = (await request.app[STORE].results([key])).get(key)
        found = result_of(row) if row is not None else None
        user_id = found.user_id if isinstance(found, Caller) else None
    return web.json_response({"number": e164 or number, "user_id": user_id}, headers={"Cache-Control": "no-store"})


async def presence_now(request: web.Request) -> web.Response:
    """Return the session's agent's status; asking is the softphone's sign of life."""
    return await _presence(request, lambda agent, now: agent.check_in(now))


async def presence_choose(request: web.Request) -> web.Response:
    """Set the session's agent's chosen status from `{"status": "available" | "away" | "offline"}`."""
    try:
        body = await request.json()
    except (ValueError, LookupError):  # not JSON, or a charset Python does not know
        body = None  # parse_choice says what the body must be
    return await _presence(request, lambda agent, now: agent.choose(body, now))


async def presence_end_wrap_up(request: web.Request) -> web.Response:
    """End the session's agent's wrap-up: they are ready for the next call."""
    return await _presence(request, lambda agent, now: agent.end_wrap_up(now))


async def presence_goodbye(request: web.Request) -> web.Response:
    """Record that the page closed, from navigator.sendBeacon: the session in the body (a beacon sends no headers)."""
    # The token rides in the body, never the URL (a URL lands in access logs); the header still works.
    body = (await request.read()).decode("ascii", "replace").strip()
    agent = _presence_of(request, _session(request, body))
    await agent.goodbye()
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


async def _presence(
    request: web.Request, act: Callable[[Presence, datetime], Awaitable[dict[str, Any]]]
) -> web.Response:
    """Run one presence request for the session's own agent and answer with their status."""
    agent = _presence_of(request, _session(request))
    try:
        body = await act(agent, request.app[CLOCK]())
    except BadChoice as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from exc
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def _presence_of(request: web.Request, session: Session) -> Presence:
    """Return the session's agent at the desk, or answer 404 (no routing) or 403 (not an agent of AGENTS)."""
    desk = request.app.get(DESK)
    if desk is None:
        raise web.HTTPNotFound(reason="this bridge keeps no presence: routing is not running")
    try:
        return Presence(desk, session)
    except NotYours as exc:
        raise web.HTTPForbidden(reason=str(exc)) from exc


async def asset(request: web.Request) -> web.FileResponse:
    """Serve one of the page's own files."""
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": ASSETS[name], "Cache-Control": "no-cache"})


async def sdk(request: web.Request) -> web.FileResponse:
    """Serve @twilio/voice-sdk's browser bundle, installed by npm at build time."""
    path = request.app[SOFTPHONE].sdk
    if path is None:
        raise web.HTTPServiceUnavailable(reason="the Twilio Voice SDK is not installed: run npm ci at build time")
    return web.FileResponse(path, headers={"Content-Type": "text/javascript", "Cache-Control": "max-age=3600"})


def _session(request: web.Request, body: str | None = None) -> Session:
    """Return the verified session the request carries (`Authorization: Bearer`, else `body`), or answer 401."""
    softphone = request.app[SOFTPHONE]
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    token = bearer if scheme.lower() == "bearer" else body
    if softphone.problem is not None or softphone.sessions is None or not token:
        raise web.HTTPUnauthorized(reason="a softphone session is required")
    try:
        return softphone.sessions.verify(token, request.app[CLOCK]())
    except (NotVerified, ValueError, KeyError) as exc:
        raise web.HTTPUnauthorized(reason=f"softphone session refused: {exc}") from exc


def _template(name: str) -> Template:
    return Template((STATIC / name).read_text())


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff"}  # fmt: skip


def _message(status: int, title: str, text: str) -> web.Response:
    """Answer with a small page that says, in words, why there is no phone."""
    body = _template("message.html").substitute(title=escape(title), text=escape(text))
    return web.Response(status=status, text=body, content_type="text/html", headers=_headers())
