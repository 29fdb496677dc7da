"""The agent's controls of the call they are on: `POST /softphone/call` acts, `GET /softphone/call` shows.

The page names the call by its own leg (the SDK's CallSid); the store says which call that leg is on and
whether the session's agent is on it now (their leg answered and not ended). Each action is an entry of
CONTROLS: why it cannot work now (shown beside its button) and what it does. What it does at Twilio is
done first and recorded only once Twilio confirmed it, as an event through the ingest (durable, in order
with the call's webhooks); a failure leaves the call as it was. A click's `request` id is claimed through
the ingest's dedupe keys before anything is asked of Twilio, so a double click acts once, on any instance.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bridge.appkeys import CAPTURE, CLOCK, DESK, INGEST, ROOM_CONTROL, SETTINGS, STORE, TWILIO_API
from bridge.core import call_controls, call_room
from bridge.core.calls import Call
from bridge.core.events import CallEvent, EventKind
from bridge.softphone import room_controls
from bridge.softphone.controls import Command, Context, Control, OnCall, refused
from bridge.softphone.identity import Session
from bridge.store import Store
from bridge.twilio.controls import CALL_ENDED, set_recording
from bridge.twilio.rest import CallGone, TwilioBusy, TwilioError, TwilioRefused

log = logging.getLogger("bridge.softphone")

CALL_ROUTE = "/softphone/call"
TARGETS_ROUTE = "/softphone/transfer-targets"
_SID = re.compile(r"CA[0-9a-f]{32}")  # Twilio docs: a CallSid is CA and 32 hex digits
_REQUEST = re.compile(r"[A-Za-z0-9-]{8,64}")  # a uuid per click, from crypto.randomUUID()
_HEADERS = {"Cache-Control": "no-store"}


# --- pause and resume the recording ---------------------------------------------------------------------


def recording_state(desk: Context, on: OnCall) -> call_controls.RecordingState:
    """Return the recording's state as the page shows it: on, paused, or off (the call is not recorded)."""
    return call_controls.state(on.call.recording_toggles, desk.settings.record_calls)


def _recording_unchangeable(desk: Context, on: OnCall) -> str | None:
    """Say why the recording cannot be paused or resumed at all on this bridge or call."""
    if not desk.settings.record_calls:
        return "Calls are not recorded (RECORD_CALLS is off): there is nothing to pause."
    if desk.twilio is None:
        return "The bridge cannot reach Twilio's API: an admin must set TWILIO_ACCOUNT_SID."
    return None


def _why_not_pause(desk: Context, on: OnCall) -> str | None:
    if (why := _recording_unchangeable(desk, on)) is not None:
        return why
    return "The recording is already paused." if recording_state(desk, on) == "paused" else None


def _why_not_resume(desk: Context, on: OnCall) -> str | None:
    if (why := _recording_unchangeable(desk, on)) is not None:
        return why
    return None if recording_state(desk, on) == "paused" else "The recording is not paused."


def _recording_control(paused: bool) -> Callable[[Context, Command], Awaitable[CallEvent]]:
    """Return the act that pauses (or resumes) the recording, confirmed by Twilio's reply."""
    verb, wanted = ("pause", "paused") if paused else ("resume", "in-progress")

    async def act(desk: Context, command: Command) -> CallEvent:
        assert desk.twilio is not None  # why_not said so first
        try:
            status = await set_recording(desk.twilio, desk.recorded(command.on), paused=paused)
        except TwilioError as exc:
            raise _twilio_refused(exc, verb) from exc
        if status != wanted:
            raise refused(502, f"Twilio did not confirm it (the recording is {status or 'unknown'}): try again.")
        kind = EventKind.RECORDING_PAUSED if paused else EventKind.RECORDING_RESUMED
        on = command.on
        return CallEvent(kind=kind, call_sid=on.call.sid, at=desk.now, leg_sid=on.leg, leg_to=on.identity)

    return act


def _twilio_refused(exc: TwilioError, verb: str) -> web.HTTPException:
    """Say what a Twilio failure means for the agent; the recording is left as it was."""
    if isinstance(exc, CallGone) and exc.code == CALL_ENDED:
        return refused(409, "The call has ended: there is no recording to " + verb + ".")
    if isinstance(exc, CallGone):  # 404, or 20404: no Twilio.CURRENT recording (it starts at the answer)
        return refused(409, f"No recording is in progress on this call, so there is nothing to {verb}.")
    if isinstance(exc, TwilioBusy) and exc.sent:
        # It may have reached Twilio (a 5xx, a lost answer): nothing is recorded as done; the same click again is
        # safe, Twilio answering a pause of a paused recording with its status.
        return refused(503, f"Twilio did not confirm it, so the phone shows the recording as before. Try {verb} again.")
    if isinstance(exc, TwilioBusy):
        return refused(503, f"Twilio is busy or out of reach: the recording is unchanged. Try {verb} again.")
    assert isinstance(exc, TwilioRefused)
    return refused(502, f"Twilio refused to {verb} the recording ({exc}): it is unchanged. Tell an admin.")


# Each action of the page: its name in the request body, why it cannot work now, and what it does.
CONTROLS: dict[str, Control] = {
    "pause_recording": Control(_why_not_pause, _recording_control(paused=True)),
    "resume_recording": Control(_why_not_resume, _recording_control(paused=False)),
    **room_controls.CONTROLS,
}


def view(desk: Context, on: OnCall) -> dict[str, Any]:
    """Return the call as the page shows it (STATE): each action null when it can work, else why not."""
    return {
        "parent": on.call.sid,
        "leg": on.leg,
        "recording": recording_state(desk, on),
        **room_controls.view(on),
        "can": {name: control.why_not(desk, on) for name, control in CONTROLS.items()},
    }


# --- which call the agent is on -------------------------------------------------------------------------


async def on_call(store: Store, busy_call: str | None, identity: str, leg_sid: str) -> OnCall:
    """Return the call `leg_sid` belongs to if `identity` is on it now through that leg, else refuse (403).

    A call out the agent placed is their own leg (the parent); a call they answered is the one their presence
    says keeps them busy, whose answering leg must be theirs.
    """
    own = await store.get_call(leg_sid)
    room_call = await _in_room(store, own, identity) or await _rung_in(store, busy_call, identity, leg_sid)
    if room_call is not None:
        return OnCall(room_call, leg_sid, identity)
    if own is not None and own.direction == "outbound" and own.from_number == identity:
        if own.over:
            raise refused(403, "This call has ended.")
        if own.answered_leg is None:
            raise refused(403, "The customer has not answered yet.")
        return OnCall(own, leg_sid, identity)
    call = await store.get_call(busy_call) if busy_call is not None else None
    leg = call.legs.get(leg_sid) if call is not None else None
    if call is None or leg is None or call.answered_leg != leg_sid or leg.to != identity:
        raise refused(403, "You are not on this call: only the agent who took a call can use its controls.")
    if call.over or leg.status.terminal:
        raise refused(403, "This call has ended.")
    return OnCall(call, leg_sid, identity)


async def _in_room(store: Store, named: Call | None, identity: str) -> Call | None:
    """Return the call in its room the page names, if the agent belongs to it (None: not a room's call).

    The page names it by the call's own sid while the agent is out of the room (on hold), else by their call into it.
    """
    if named is None:
        return None
    call = await store.get_call(named.part_of) if named.part_of is not None else named
    if call is None or call.room is None or identity not in call_room.members(call):
        return None
    if call.over:
        raise refused(403, "This call has ended.")
    if named.part_of is not None and named.from_number != identity:
        raise refused(403, "You are not on this call: only the agent who took a call can use its controls.")
    return call


async def _rung_in(store: Store, busy_call: str | None, identity: str, leg_sid: str) -> Call | None:
    """Return the call whose room rang the agent in (a transfer, a consultation), if `leg_sid` is that ring."""
    call = await store.get_call(busy_call) if busy_call is not None else None
    if call is None or call.room is None:
        return None
    seen = call_room.spans(call.room)
    rung = {label for label, sid in seen.sids.items() if sid == leg_sid}
    if not any(call_room.who_of(label) == identity for label in rung):
        return None
    if call.over:
        raise refused(403, "This call has ended.")
    return call


# --- the routes ------------------------------------------------------------------------------------------


SessionOf = Callable[[web.Request], Session]


def setup(app: web.Application, session_of: SessionOf) -> None:
    """Mount the routes of the controls; `session_of` checks a request's softphone session (401 without one)."""

    async def get(request: web.Request) -> web.Response:
        return await show(request, session_of(request))

    async def post(request: web.Request) -> web.Response:
        return await act(request, session_of(request))

    async def transfer_targets(request: web.Request) -> web.Response:
        session = session_of(request)
        desk = request.app.get(DESK)
        agents = await desk.agents() if desk is not None else []
        policy = request.app[SETTINGS].routing_policy().presence
        settings = request.app[SETTINGS]
        body = room_controls.targets(agents, f"client:{session.identity}", request.app[CLOCK](), policy,
                                     settings.phone_lines)  # fmt: skip
        return web.json_response(body, headers=_HEADERS)

    app.router.add_get(CALL_ROUTE, get)
    app.router.add_post(CALL_ROUTE, post)
    app.router.add_get(TARGETS_ROUTE, transfer_targets)


async def show(request: web.Request, session: Session) -> web.Response:
    """Return the call the agent's leg is on, with what each control can do now."""
    desk, on = await _resolve(request, session, request.query.get("call"))
    return web.json_response({"call": view(desk, on)}, headers=_HEADERS)


async def act(request: web.Request, session: Session) -> web.Response:
    """Carry out one click on the agent's own call, once per `request` id, and answer the call as it now is."""
    try:
        body = await request.json()
    except (ValueError, LookupError):  # not JSON, or a charset Python does not know
        body = None
    if not isinstance(body, dict):
        raise refused(400, 'the body must be {"call": "CA...", "action": "...", "request": "<uuid>"}')
    action, request_id, target = body.get("action"), body.get("request"), body.get("target")
    if not isinstance(action, str) or action not in CONTROLS:
        raise refused(400, f"unknown action {str(action)[:40]!r}: use one of {', '.join(sorted(CONTROLS))}")
    if not isinstance(request_id, str) or not _REQUEST.fullmatch(request_id):
        raise refused(400, "request must be the click's own id (8 to 64 letters, digits or dashes)")
    if target is not None and not isinstance(target, dict):
        raise refused(400, 'target must be {"kind": "...", "value": "..."}')
    desk, on = await _resolve(request, session, body.get("call"))
    control = CONTROLS[action]
    # Kept in the call's history (the click, its agent and its action), it changes nothing of the call itself.
    asked = CallEvent(kind=EventKind.CONTROL_ASKED, call_sid=on.call.sid, at=desk.now, leg_sid=on.leg,
                      leg_to=on.identity, reason=action)  # fmt: skip
    claimed = await desk.ingest([_key(request_id)], asked)
    if claimed.duplicate:
        # The same click again (a retry, a double submit): it was carried out, or is being, once.
        return web.json_response({"call": view(desk, await _again(desk, on)), "repeated": True}, headers=_HEADERS)
    why = control.why_not(desk, on)
    if why is not None:
        raise refused(409, why)
    done = await control.act(desk, Command(on, action, target, request_id))
    log.info("call %s: %s by %s, confirmed by Twilio", on.call.sid, action, on.identity)
    if done is None:  # the room's controls recorded each step themselves
        return web.json_response({"call": view(desk, await _again(desk, on))}, headers=_HEADERS)
    key = f"{_key(request_id)}:done"
    ingested = await desk.ingest([key], done)
    capture = request.app.get(CAPTURE)
    if capture is not None and not ingested.duplicate:  # RECORD_DIR: the call's recording keeps the click too
        capture.confirmed(on.call.sid, done.model_dump(mode="json", exclude_none=True), key, desk.now)
    after = (
        OnCall(ingested.outcome.call, on.leg, on.identity) if ingested.outcome is not None else await _again(desk, on)
    )
    return web.json_response({"call": view(desk, after)}, headers=_HEADERS)


def _key(request_id: str) -> str:
    """Return the dedupe key of one click."""
    return f"control:{request_id}"


async def _again(desk: Context, on: OnCall) -> OnCall:
    """Return the agent's call as the store holds it now."""
    call = await desk.store.get_call(on.call.sid)
    return OnCall(call or on.call, on.leg, on.identity)


async def _resolve(request: web.Request, session: Session, call_sid: object) -> tuple[Context, OnCall]:
    """Return the controls' context and the call the session's agent is on through `call_sid`."""
    if not isinstance(call_sid, str) or not _SID.fullmatch(call_sid):
        raise refused(400, "call must be your own call's CallSid (CA and 32 hex digits), as the phone knows it")
    app = request.app
    identity = f"client:{session.identity}"
    settings = app[SETTINGS]
    if settings.agents.get(identity) != session.agent_id:
        raise refused(403, f"{identity} is not this Zendesk user in AGENTS now: reload Zendesk to sign in again")
    desk_app = app.get(DESK)
    agent = await desk_app.agent(identity) if desk_app is not None else None
    on = await on_call(app[STORE], agent.busy_call if agent is not None else None, identity, call_sid)
    return Context(settings, app[STORE], app[INGEST], app[CLOCK](), app.get(TWILIO_API), app.get(ROOM_CONTROL)), on
