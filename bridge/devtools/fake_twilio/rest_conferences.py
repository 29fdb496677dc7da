"""REST: Conferences, their Participants and their recordings.

Twilio docs: Conference resource, Conference Participant resource, Recording resource (update, for a
conference's recording).
"""

from __future__ import annotations

from aiohttp import web

from bridge.devtools.fake_twilio.conference_state import EVENTS, Conference, Participant, Settings, live_conference
from bridge.devtools.fake_twilio.conference_twiml import load_announcement, run_added
from bridge.devtools.fake_twilio.interpreter import Fetch
from bridge.devtools.fake_twilio.outbound import DAY, Placement, endpoint_error
from bridge.devtools.fake_twilio.rest import BASE, Form, RestError, change_recording, fake_of, find_recording, page
from bridge.devtools.fake_twilio.rest_outbound import CALL_EVENTS, METHODS
from bridge.devtools.fake_twilio.state import recording_resource
from bridge.devtools.fake_twilio.twiml import TwimlError
from bridge.devtools.fake_twilio.webhooks import FetchError

CONFERENCE = "{conference:CF[0-9a-f]{32}}"
RECORDING_EVENTS = frozenset(
    {"started", "in-progress", "paused", "resumed", "stopped", "completed", "failed", "absent"}
)
CONFERENCE_RECORDING_EVENTS = frozenset({"in-progress", "completed", "failed", "absent"})
BEEPS = ("true", "false", "onEnter", "onExit")
# Twilio docs: Participant create: the true/false parameters and their defaults (EarlyMedia is accepted, not modelled).
CREATE_FLAGS = (
    ("Muted", False),
    ("Hold", False),
    ("StartConferenceOnEnter", True),
    ("EndConferenceOnExit", False),
    ("EarlyMedia", True),
)
# Twilio docs: Participant create: the documented parameters. AMD on participants is not modelled; AsyncAmd*
# belong to Calls only (Twilio docs: warning 21263); anything else is refused.
CREATE = frozenset(
    {
        "From",
        "To",
        "StatusCallback",
        "StatusCallbackMethod",
        "StatusCallbackEvent",
        "Label",
        "Timeout",
        "Record",
        "Muted",
        "Beep",
        "StartConferenceOnEnter",
        "EndConferenceOnExit",
        "WaitUrl",
        "WaitMethod",
        "EarlyMedia",
        "MaxParticipants",
        "ConferenceRecord",
        "ConferenceTrim",
        "ConferenceStatusCallback",
        "ConferenceStatusCallbackMethod",
        "ConferenceStatusCallbackEvent",
        "RecordingChannels",
        "RecordingStatusCallback",
        "RecordingStatusCallbackMethod",
        "SipAuthUsername",
        "SipAuthPassword",
        "Region",
        "ConferenceRecordingStatusCallback",
        "ConferenceRecordingStatusCallbackMethod",
        "RecordingStatusCallbackEvent",
        "ConferenceRecordingStatusCallbackEvent",
        "Coaching",
        "CallSidToCoach",
        "JitterBufferSize",
        "Byoc",
        "CallerId",
        "CallReason",
        "RecordingTrack",
        "TimeLimit",
        "Trim",
        "CallToken",
        "Hold",
        "ClientNotificationUrl",
        "CallerDisplayName",
        "RecordingConfigurationId",
    }
)
UPDATE = frozenset(
    {
        "Muted",
        "Hold",
        "HoldUrl",
        "HoldMethod",
        "AnnounceUrl",
        "AnnounceMethod",
        "WaitUrl",
        "WaitMethod",
        "BeepOnExit",
        "EndConferenceOnExit",
        "Coaching",
        "CallSidToCoach",
    }
)


def _conference(request: web.Request, live: bool = False) -> Conference:
    """Return the conference the path names (a CF sid), or Twilio's 20404."""
    conference = fake_of(request).account.conferences.get(request.match_info["conference"])
    if conference is None or (live and conference.status == "completed"):
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return conference


def _participant(request: web.Request) -> Participant:
    """Return the live participant the path names by call sid or label (Twilio docs: Participant, CallSid)."""
    participant = _conference(request).find(request.match_info["participant"])
    if participant is None:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return participant


# --- Conferences -------------------------------------------------------------------------------------------


async def list_conferences(request: web.Request) -> web.Response:
    """GET /Conferences.json, filtered by FriendlyName and Status (Twilio docs: Conference resource, read)."""
    conferences = list(fake_of(request).account.conferences.values())
    for name, attribute in (("FriendlyName", "name"), ("Status", "status")):
        if name in request.query:
            conferences = [c for c in conferences if getattr(c, attribute) == request.query[name]]
    conferences.sort(key=lambda c: c.created, reverse=True)
    return page(request, "conferences", [c.resource() for c in conferences])


async def fetch_conference(request: web.Request) -> web.Response:
    """GET /Conferences/{CF}.json."""
    return web.json_response(_conference(request).resource())


async def update_conference(request: web.Request) -> web.Response:
    """POST /Conferences/{CF}.json: Status=completed ends it; AnnounceUrl plays to everyone in it."""
    fake = fake_of(request)
    conference = _conference(request)
    form = Form(await request.post(), frozenset({"Status", "AnnounceUrl", "AnnounceMethod"}))
    status, announce = form.get("Status"), form.url("AnnounceUrl")
    if status not in (None, "completed"):
        raise RestError(400, 20001, "Status can only be completed")
    if conference.status == "completed":
        raise RestError(400, 20001, "The conference has ended")  # inferred code
    if status == "completed":
        await conference.end("conference-ended-via-api")
    elif announce is not None:
        await _announce(request, conference, None, announce, form.choice("AnnounceMethod", METHODS, "POST"))
    await fake.settle()
    return web.json_response(conference.resource())


async def _announce(
    request: web.Request, conference: Conference, participant: Participant | None, url: str, method: str
) -> None:
    """Fetch an announcement once and queue it for one participant or for everyone in the room."""
    fake = fake_of(request)
    targets = [participant] if participant is not None else conference.joined()
    try:
        music = await load_announcement(fake.interpreter, conference, url, method)
    except (FetchError, TwimlError) as exc:
        for target in targets:
            target.call.errors.append(str(exc.code))
        return
    for target in targets:
        conference.announce(target, music)


# --- Participants ------------------------------------------------------------------------------------------


async def list_participants(request: web.Request) -> web.Response:
    """GET …/Participants.json: live participants only (Twilio docs: not those that left, nor ended rooms)."""
    participants = _conference(request).participants
    for name in ("Muted", "Hold", "Coaching"):
        if name in request.query:
            wanted = request.query[name] == "true"
            participants = [p for p in participants if getattr(p, name.lower()) == wanted]
    return page(request, "participants", [p.resource() for p in participants])


async def fetch_participant(request: web.Request) -> web.Response:
    """GET …/Participants/{CA or label}.json."""
    return web.json_response(_participant(request).resource())


def _room(request: web.Request, form: Form) -> tuple[Conference | None, Settings]:
    """Find the room a create names (a live CF sid, or a FriendlyName), and the settings a new one would take."""
    key = request.match_info["conference"]
    if key.startswith("CF") and len(key) == 34:
        # Twilio docs: "If a conference specified by ConferenceSid is not active, the request fails".
        conference: Conference | None = _conference(request, live=True)
    else:
        conference = live_conference(fake_of(request).account, key)
    record = form.choice("ConferenceRecord", ("true", "false", "record-from-start", "do-not-record"), "false")
    settings = Settings(
        callback=form.url("ConferenceStatusCallback"),
        method=form.choice("ConferenceStatusCallbackMethod", METHODS, "POST"),
        # Twilio docs: Participant create, ConferenceStatusCallbackEvent: default `start end`.
        events=form.events("ConferenceStatusCallbackEvent", EVENTS, frozenset({"start", "end"})),
        record=record in ("true", "record-from-start"),
        recording_callback=form.url("ConferenceRecordingStatusCallback"),
        recording_method=form.choice("ConferenceRecordingStatusCallbackMethod", METHODS, "POST"),
        recording_events=form.events(
            "ConferenceRecordingStatusCallbackEvent", CONFERENCE_RECORDING_EVENTS, frozenset({"completed"})
        ),
        max_participants=form.integer("MaxParticipants", 250, 2, 250),
    )
    return conference, settings


async def create_participant(request: web.Request) -> web.Response:
    """POST …/Participants.json: place a call into the room (a sid or a name); 201 with the participant, queued."""
    fake = fake_of(request)
    account = fake.account
    form = Form(await request.post(), CREATE)
    to, from_ = form.get("To", "") or "", form.get("From", "") or ""
    refused = endpoint_error(account, from_, to)
    if refused is not None:
        raise RestError(400, *refused)
    label = form.get("Label")
    coach = form.get("CallSidToCoach")
    coaching = form.flag("Coaching", coach is not None)
    timeout = form.integer("Timeout", 60, 5, 600)  # Twilio docs: 5 to 600, default 60
    placement = Placement(
        start=Fetch(""),
        record=form.flag("Record"),
        channels=2 if form.choice("RecordingChannels", ("mono", "dual"), "mono") == "dual" else 1,
        recording_callback=form.url("RecordingStatusCallback"),
        recording_method=form.choice("RecordingStatusCallbackMethod", METHODS, "POST"),
        recording_events=form.events("RecordingStatusCallbackEvent", RECORDING_EVENTS, frozenset({"completed"})),
    )
    wait_url, wait_method = form.url("WaitUrl", empty=True), form.choice("WaitMethod", METHODS, "POST")
    beep = form.choice("Beep", BEEPS, "true")
    flags = {name: form.flag(name, default) for name, default in CREATE_FLAGS}
    events = form.events("StatusCallbackEvent", CALL_EVENTS, frozenset({"completed"}))
    callback, method = form.url("StatusCallback"), form.choice("StatusCallbackMethod", METHODS, "POST")
    room, settings = _room(request, form)
    if label is not None and room is not None and room.find(label) is not None:
        raise RestError(400, 16025, f"A participant labelled {label!r} is already in the conference")  # inferred
    if coaching and (coach is None or room is None or room.find(coach) is None):
        raise RestError(400, 13240, "Coaching needs CallSidToCoach, a participant of this conference")  # inferred
    if room is not None and room.full():
        raise RestError(400, 16020, "Conference is full")  # Twilio docs: error 16020
    if fake.outbound.dialer.wait() > DAY:
        raise RestError(400, 22005, "Call queue full: the call would not be placed within 24 hours")
    # Twilio docs: Participant create: "If an active conference does not exist with your FriendlyName, we create" one.
    conference = room or Conference(account, request.match_info["conference"], settings)
    call = account.new_call(
        "outbound-api", from_, to, status="queued", status_callback=callback,
        status_callback_method=method, status_events=events,
    )  # fmt: skip
    part = Participant(
        call,
        conference,
        account.now,
        label=label,
        muted=flags["Muted"],
        hold=flags["Hold"],
        coaching=coaching,
        call_sid_to_coach=coach,
        start_on_enter=flags["StartConferenceOnEnter"],
        end_on_exit=flags["EndConferenceOnExit"],
        beep=beep,
        wait_url=wait_url,
        wait_method=wait_method,
        via_api=True,
    )
    fake.outbound.dialer.enqueue(call)  # Twilio docs: Participant create: calls are paced by the account's CPS
    conference.participants.append(part)
    shown = {**part.resource(), "status": "queued", "queue_time": str(call.queue_time)}
    # Twilio docs: Participant create, Timeout: "We always add a 5-second timeout buffer".
    ringing = run_added(fake.interpreter, call, part, timeout + 5, placement if placement.record else None)
    account.activity.spawn(ringing, name=f"participant {call.sid}")
    await fake.settle()
    return web.json_response(shown, status=201)


async def update_participant(request: web.Request) -> web.Response:
    """POST …/Participants/{CA or label}.json: mute, hold, announce, modify; Status is no parameter (400)."""
    fake = fake_of(request)
    part = _participant(request)
    conference = part.conference
    form = Form(await request.post(), UPDATE)
    if form.get("Muted") is not None:
        # Twilio docs: Participant update, Muted: "Anything value other than true or false is interpreted as false".
        await conference.set_muted(part, (form.get("Muted") or "").lower() == "true")
    modified = False
    if form.get("EndConferenceOnExit") is not None:
        modified |= part.end_on_exit != (value := form.flag("EndConferenceOnExit"))
        part.end_on_exit = value
    if form.get("Coaching") is not None or form.get("CallSidToCoach") is not None:
        coach = form.get("CallSidToCoach", part.call_sid_to_coach)
        coaching = form.flag("Coaching", coach is not None)
        if coaching and (coach is None or conference.find(coach) is None):
            raise RestError(400, 13240, "Coaching needs CallSidToCoach, a participant of this conference")
        modified |= (part.coaching, part.call_sid_to_coach) != (coaching, coach)
        part.coaching, part.call_sid_to_coach = coaching, coach
    if form.get("BeepOnExit") is not None:
        on_exit = form.flag("BeepOnExit")
        beep = {(True, True): "true", (True, False): "onEnter", (False, True): "onExit", (False, False): "false"}
        new = beep[(part.beep in ("true", "onEnter"), on_exit)]
        modified |= new != part.beep
        part.beep = new
    if form.get("WaitUrl") is not None:
        # Inferred: the new WaitUrl is kept; a waitUrl is played once, so a participant already waiting hears no change.
        modified |= part.wait_url != form.url("WaitUrl", empty=True)
        part.wait_url, part.wait_method = form.url("WaitUrl", empty=True), form.choice("WaitMethod", METHODS, "POST")
    if modified:
        await conference.modified(part)  # Twilio docs: `modify`: BeepOnExit, EndConferenceOnExit, Coaching, WaitUrl
    if form.get("HoldUrl") is not None:
        part.hold_url = form.url("HoldUrl")
    if form.get("HoldMethod") is not None:
        part.hold_method = form.choice("HoldMethod", METHODS, "GET")
    if form.get("Hold") is not None:
        await conference.set_hold(part, form.flag("Hold"))
    announce = form.url("AnnounceUrl")
    if announce is not None:
        await _announce(request, conference, part, announce, form.choice("AnnounceMethod", METHODS, "POST"))
    await fake.settle()
    return web.json_response(part.resource())


async def delete_participant(request: web.Request) -> web.Response:
    """DELETE …/Participants/{CA or label}.json: take it out (participant_updated_via_api); 204."""
    fake = fake_of(request)
    part = _participant(request)
    conference = part.conference
    if part.joined:
        # Its TwiML call goes on to the Dial action; a REST-added one has nothing to go on with and hangs up.
        await conference.leave(
            part, "participant_updated_via_api", "completed" if part.via_api else "in-progress", True
        )
        conference.tell(part, "left")
    else:
        await conference.leave(part, "participant_updated_via_api", "canceled", True)
        part.call.post("hangup", "api")  # still ringing: the add is called off
    await fake.settle()
    return web.Response(status=204)


# --- Recordings --------------------------------------------------------------------------------------------


async def list_conference_recordings(request: web.Request) -> web.Response:
    """GET /Conferences/{CF}/Recordings.json."""
    fake = fake_of(request)
    conference = _conference(request)
    recordings = [r for r in fake.account.recordings.values() if r.conference_sid == conference.sid]
    return page(request, "recordings", [recording_resource(fake.account.sid, r) for r in recordings])


async def control_conference_recording(request: web.Request) -> web.Response:
    """POST /Conferences/{CF}/Recordings/{RE|Twilio.CURRENT}.json: pause, resume or stop (Twilio docs: Recording)."""
    fake = fake_of(request)
    conference = _conference(request)
    recordings = [r for r in fake.account.recordings.values() if r.conference_sid == conference.sid]
    recording = find_recording(request, recordings, conference.status == "completed")
    await change_recording(request, recording)
    return web.json_response(recording_resource(fake.account.sid, recording))


def add_routes(app: web.Application) -> None:
    """Serve the Conference, Participant and conference Recording resources."""
    participants = f"{BASE}/Conferences/{CONFERENCE}/Participants"
    app.router.add_get(f"{BASE}/Conferences.json", list_conferences)
    app.router.add_get(f"{BASE}/Conferences/{CONFERENCE}.json", fetch_conference)
    app.router.add_post(f"{BASE}/Conferences/{CONFERENCE}.json", update_conference)
    app.router.add_get(f"{participants}.json", list_participants)
    app.router.add_post(f"{BASE}/Conferences/{{conference}}/Participants.json", create_participant)
    app.router.add_get(f"{participants}/{{participant}}.json", fetch_participant)
    app.router.add_post(f"{participants}/{{participant}}.json", update_participant)
    app.router.add_delete(f"{participants}/{{participant}}.json", delete_participant)
    app.router.add_get(f"{BASE}/Conferences/{CONFERENCE}/Recordings.json", list_conference_recordings)
    app.router.add_post(f"{BASE}/Conferences/{CONFERENCE}/Recordings/{{recording}}.json", control_conference_recording)
