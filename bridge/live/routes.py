"""The live view's routes: Zendesk's signed nav-bar request, the board the page polls, supervisors' actions, GET /live.

The page is the app's `nav_bar` location (bridge/softphone/zendesk_app.py): Zendesk POSTs the same signed JWT
as for the top bar, `softphone/identity.py` verifies it, and the user's role is read from Zendesk before the
page is served. The page then holds a session of the live view's own (signed with a key no softphone session
shares) and polls the board every second from whichever instance answers.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from string import Template

from aiohttp import hdrs, web

from bridge.appkeys import CLOCK, DESK, SCHEDULES, STORE
from bridge.core.presence import Chosen
from bridge.dispatch.desk import UnknownAgent
from bridge.live.access import Supervisors, Unknown, UserReader
from bridge.live.callbacks import Callbacks
from bridge.live.service import LiveView
from bridge.ops.frontdoor import REASON
from bridge.ops.settings import Settings
from bridge.softphone.identity import NotVerified, Session, SessionSigner, verify_zendesk_token
from bridge.softphone.presence import BadChoice, parse_choice
from bridge.softphone.routes import SOFTPHONE

log = logging.getLogger("bridge.live")

PAGE_ROUTE = "/zendesk/live"
BOARD_ROUTE = "/live/board"
STATUS_ROUTE = "/live/agents/status"
CANCEL_ROUTE = "/live/callbacks/cancel"
WALL_ROUTE = "/live"
STATIC_PREFIX = "/live/static"
STATIC = Path(__file__).parent / "static"
ASSETS = {"live.js": "text/javascript", "live.css": "text/css"}
PURPOSE = b"bridge live view session v1"
# Zendesk's iframes are the page's only legitimate parents; it talks to nobody but the bridge.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'self' https://*.zendesk.com https://*.zdassets.com https://*.zdusercontent.com"
)


@dataclass(frozen=True)
class Live:
    """What the live view's routes need, settled at start-up."""

    settings: Settings
    view: LiveView
    public_key: str | None
    problem: str | None  # why the page cannot be opened, in words an admin can act on
    sessions: SessionSigner
    supervisors: Supervisors | None  # who is a supervisor now, as Zendesk says (None: no way to read users)


LIVE = web.AppKey("live", Live)


def setup(
    app: web.Application,
    settings: Settings,
    users: Callable[[web.Application], UserReader | None],
    callbacks: Callable[[web.Application], Callbacks | None] = lambda app: None,
) -> None:
    """Mount the live view's routes; its resources settle when the app starts (after the softphone's).

    `users` and `callbacks` are asked for when the app starts, so they may be resources opened before it.
    """

    async def live_ctx(app: web.Application) -> AsyncIterator[None]:
        key = app[SOFTPHONE].public_key or settings.zendesk_app_public_key
        problem = None
        if settings.zendesk_app_audience is None or key is None:
            problem = (
                "the live view is not configured: set ZENDESK_APP_AUDIENCE and ZENDESK_APP_PUBLIC_KEY "
                "(or ZENDESK_APP_ID with the softphone's settings)"
            )
        # The database keeps the secret, so a session one instance issued is good at every other.
        secret = await app[STORE].link_secret(os.urandom(32))
        book = app.get(SCHEDULES)
        view = LiveView(
            app[STORE],
            app[DESK],
            settings,
            app[CLOCK],
            schedules=(lambda: book.schedules) if book is not None else dict,
            callbacks=callbacks(app),
        )
        reader = users(app)
        timeout = settings.zendesk_timeout_seconds
        supervisors = Supervisors(reader, settings.supervisor_roles, timeout) if reader is not None else None
        app[LIVE] = Live(settings, view, key, problem, SessionSigner(secret, PURPOSE), supervisors)
        yield

    app.cleanup_ctx.append(live_ctx)
    app.router.add_post(PAGE_ROUTE, page)
    app.router.add_get(BOARD_ROUTE, board)
    app.router.add_post(STATUS_ROUTE, set_status)
    app.router.add_post(CANCEL_ROUTE, cancel_callback)
    app.router.add_get(WALL_ROUTE, wall)
    app.router.add_get(STATIC_PREFIX + "/{name}", asset)


async def page(request: web.Request) -> web.Response:
    """Verify Zendesk's signed nav-bar request, ask Zendesk the user's role, and serve the live view or refuse."""
    live, now = request.app[LIVE], request.app[CLOCK]()
    if live.problem is not None or live.public_key is None:
        return _message(503, "Live view unavailable", live.problem or "the live view is not configured")
    try:
        form = await request.post()
    except (ValueError, LookupError) as exc:
        raise web.HTTPBadRequest(reason=f"the form body cannot be read ({type(exc).__name__})") from None
    token = form.get("token")
    audience, issuer = live.settings.zendesk_app_audience, live.settings.softphone_issuer
    assert audience is not None  # no problem means it is set
    assert issuer is not None
    try:
        if not isinstance(token, str) or not token:
            raise NotVerified("no token: the app's nav_bar location must say signed: true")
        user_id = verify_zendesk_token(token, live.public_key, audience=audience, issuer=issuer, now=now)
    except NotVerified as exc:
        request[REASON] = f"live view refused: {exc}"
        return _message(401, "Not signed in", f"Zendesk's request could not be verified: {exc}.")
    if live.supervisors is None:
        return _message(503, "Live view unavailable", "the bridge cannot read Zendesk users")
    try:
        verdict = await live.supervisors.read(user_id, now)
    except Unknown as exc:
        log.warning("live view: Zendesk user %s could not be read (%s)", user_id, exc)
        return _message(503, "Live view unavailable", "Zendesk could not say who you are: reload to try again.")
    if not verdict.supervisor:
        log.info("live view refused to Zendesk user %s (role %s)", user_id, verdict.role)
        return _message(403, "Not for you", verdict.why_not)
    log.info("live view opened by Zendesk user %s", user_id)
    config = {"session": live.sessions.issue("supervisor", user_id, now), "user": user_id,
              "name": verdict.name}  # fmt: skip
    body = Template((STATIC / "live.html").read_text()).substitute(config=json.dumps(config).replace("<", "\\u003c"))
    return web.Response(text=body, content_type="text/html", headers=_headers())


async def board(request: web.Request) -> web.Response:
    """Return the board for the page, with its session renewed."""
    live, session = request.app[LIVE], await _supervisor(request)
    made = await live.view.board()
    renewed = live.sessions.issue(session.identity, session.agent_id, request.app[CLOCK](), since=session.since)
    return web.json_response({**made, "session": renewed}, headers={"Cache-Control": "no-store"})


async def set_status(request: web.Request) -> web.Response:
    """Set an agent's status from `{"agent": identity, "status": …}`, as the supervisor the session names."""
    live, session = request.app[LIVE], await _supervisor(request)
    try:
        body = await request.json()
    except (ValueError, LookupError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("agent"), str):
        raise web.HTTPBadRequest(reason='the body must be {"agent": IDENTITY, "status": "available" | "away" | …}')
    try:
        chosen: Chosen = parse_choice({"status": body.get("status")})
        identity = live.view.desk.identity(body["agent"])
    except BadChoice as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from exc
    except UnknownAgent as exc:
        raise web.HTTPNotFound(reason=str(exc)) from exc
    by = f"supervisor {session.agent_id}"
    agent = await live.view.desk.choose(identity, chosen, by=by)  # the desk logs who set it
    live.view.forget()
    return web.json_response({"agent": agent.identity, "chosen": agent.chosen, "chosen_by": agent.chosen_by},
                             headers={"Cache-Control": "no-store"})  # fmt: skip


async def cancel_callback(request: web.Request) -> web.Response:
    """Cancel a pending callback from `{"id": …}` (the hook in bridge/live/callbacks.py; 404 without a store)."""
    live, session = request.app[LIVE], await _supervisor(request)
    callbacks = live.view.callbacks
    if callbacks is None:
        raise web.HTTPNotFound(reason="this bridge keeps no callbacks")
    try:
        body = await request.json()
    except (ValueError, LookupError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("id"), str | int):
        raise web.HTTPBadRequest(reason='the body must be {"id": "…"}')
    by = f"supervisor {session.agent_id}"
    if not await callbacks.cancel(str(body["id"]), by):
        raise web.HTTPConflict(reason="that callback is not pending")
    log.info("callback %s cancelled by %s", body["id"], by)
    live.view.forget()
    return web.json_response({"cancelled": str(body["id"])}, headers={"Cache-Control": "no-store"})


async def wall(request: web.Request) -> web.Response:
    """Serve the board to wall screens: `Authorization: Bearer LIVE_TOKEN` (404 while LIVE_TOKEN is unset)."""
    live = request.app[LIVE]
    token = live.settings.live_token
    if token is None:
        raise web.HTTPNotFound()
    scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    # Header text can hold anything: compare bytes, in constant time.
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected):
        raise web.HTTPUnauthorized(reason="/live needs Authorization: Bearer LIVE_TOKEN",
                                   headers={hdrs.WWW_AUTHENTICATE: "Bearer"})  # fmt: skip
    return web.json_response(await live.view.board(), headers={"Cache-Control": "no-store"})


async def asset(request: web.Request) -> web.FileResponse:
    """Serve one of the page's own files."""
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": ASSETS[name], "Cache-Control": "no-cache"})


def _session(request: web.Request) -> Session:
    """Return the live view's session the request carries (`Authorization: Bearer`), or answer 401."""
    live = request.app[LIVE]
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(reason="a live view session is required")
    try:
        return live.sessions.verify(token, request.app[CLOCK]())
    except NotVerified as exc:
        raise web.HTTPUnauthorized(reason=f"live view session refused: {exc}") from exc


async def _supervisor(request: web.Request) -> Session:
    """Return the request's session if its user is still a supervisor as Zendesk says, else answer 403 (or 503)."""
    live, session = request.app[LIVE], _session(request)
    if live.supervisors is None:
        raise web.HTTPServiceUnavailable(reason="the bridge cannot read Zendesk users")
    try:
        verdict = await live.supervisors.verdict(session.agent_id, request.app[CLOCK]())
    except Unknown as exc:
        log.warning("live view: Zendesk user %s could not be read again (%s)", session.agent_id, exc)
        raise web.HTTPServiceUnavailable(reason="Zendesk could not say who you are: reload to try again.") from exc
    if not verdict.supervisor:
        log.info("live view closed to Zendesk user %s: no longer a supervisor in Zendesk", session.agent_id)
        raise web.HTTPForbidden(reason=verdict.why_not)
    return session


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff"}  # fmt: skip


def _message(status: int, title: str, text: str) -> web.Response:
    """Answer with a small page that says, in words, why there is no live view."""
    body = Template((STATIC / "message.html").read_text()).substitute(title=escape(title), text=escape(text))
    return web.Response(status=status, text=body, content_type="text/html", headers=_headers())
