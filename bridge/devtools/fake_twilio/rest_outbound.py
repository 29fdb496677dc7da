"""REST: POST /Calls.json, a call placed by the API (Twilio docs: Call resource, "Create a Call resource")."""

from __future__ import annotations

from aiohttp import web

from bridge.devtools.fake_twilio.interpreter import Fetch
from bridge.devtools.fake_twilio.outbound import Placement, QueueFull, endpoint_error
from bridge.devtools.fake_twilio.rest import BASE, Form, RestError, fake_of
from bridge.devtools.fake_twilio.twiml import KEYS_TO_SEND, TwimlError, absolute_actions, parse

CALL_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
RECORDING_EVENTS = frozenset({"in-progress", "completed", "absent"})
TWIML_LIMIT = 4000  # Twilio docs: Call resource, Twiml: "Max 4000 characters"
# Twilio docs: Call resource, create: every parameter it documents; the stand-in refuses any other.
PARAMETERS = frozenset(
    {
        "To",
        "From",
        "Url",
        "Twiml",
        "ApplicationSid",
        "Method",
        "FallbackUrl",
        "FallbackMethod",
        "StatusCallback",
        "StatusCallbackEvent",
        "StatusCallbackMethod",
        "SendDigits",
        "Timeout",
        "Record",
        "RecordingChannels",
        "RecordingStatusCallback",
        "RecordingStatusCallbackMethod",
        "RecordingStatusCallbackEvent",
        "RecordingTrack",
        "Trim",
        "CallerId",
        "MachineDetection",
        "MachineDetectionTimeout",
        "MachineDetectionSpeechThreshold",
        "MachineDetectionSpeechEndThreshold",
        "MachineDetectionSilenceTimeout",
        "AsyncAmd",
        "AsyncAmdStatusCallback",
        "AsyncAmdStatusCallbackMethod",
        "SipAuthUsername",
        "SipAuthPassword",
        "Byoc",
        "CallReason",
        "CallToken",
        "TimeLimit",
        "ClientNotificationUrl",
    }
)
METHODS = ("GET", "POST")


def _start(fake_apps: dict[str, tuple[str, str | None]], form: Form) -> tuple[Fetch, str | None, dict[str, str]]:
    """Return where the call's TwiML comes from, the status callback, and extra request parameters."""
    url, twiml, app_sid = form.url("Url"), form.get("Twiml"), form.get("ApplicationSid")
    if app_sid is not None:
        if app_sid not in fake_apps:
            raise RestError(400, 21218, f"Invalid ApplicationSid {app_sid}")  # inferred code
        # Twilio docs: Call resource: with ApplicationSid, Url, Method and StatusCallback are ignored.
        voice_url, callback = fake_apps[app_sid]
        return Fetch(voice_url, "POST"), callback, {"ApplicationSid": app_sid}
    callback = form.url("StatusCallback")
    if url is not None:
        return Fetch(url, form.choice("Method", METHODS, "POST")), callback, {}  # Twiml is then ignored
    if twiml is None:
        raise RestError(400, 21200, "Give Url, Twiml or ApplicationSid")  # Twilio docs: error 21200
    if len(twiml) > TWIML_LIMIT:
        raise RestError(400, 21200, f"Twiml has {len(twiml)} characters; at most {TWIML_LIMIT}")
    try:
        verbs = parse(twiml)
    except TwimlError as exc:
        raise RestError(400, exc.code, str(exc)) from None
    if not absolute_actions(verbs):
        raise RestError(400, 15004, "Twiml has a relative URL; give absolute URLs")  # Twilio docs: error 15004
    return Fetch("", twiml=twiml), callback, {}


def _placement(form: Form, start: Fetch) -> Placement:
    """Read the answering, detection and recording parameters."""
    digits = form.get("SendDigits", "") or ""
    if len(digits) > 32 or any(key not in KEYS_TO_SEND for key in digits):
        raise RestError(400, 20001, "SendDigits takes at most 32 of 0-9, A-D, #, *, w and W")
    machine = form.get("MachineDetection")
    if machine is not None and machine not in ("Enable", "DetectMessageEnd"):
        raise RestError(400, 20001, "MachineDetection must be Enable or DetectMessageEnd")
    return Placement(
        start=start,
        timeout=form.integer("Timeout", 60, 1, 600),  # Twilio docs: default 60, at most 600
        machine_detection=machine,
        amd_timeout=form.integer("MachineDetectionTimeout", 30, 3, 59),
        async_amd=form.flag("AsyncAmd"),
        amd_callback=form.url("AsyncAmdStatusCallback"),
        amd_method=form.choice("AsyncAmdStatusCallbackMethod", METHODS, "POST"),
        send_digits=digits,
        record=form.flag("Record"),
        channels=2 if form.choice("RecordingChannels", ("mono", "dual"), "mono") == "dual" else 1,
        recording_callback=form.url("RecordingStatusCallback"),
        recording_method=form.choice("RecordingStatusCallbackMethod", METHODS, "POST"),
        recording_events=form.events("RecordingStatusCallbackEvent", RECORDING_EVENTS, frozenset({"completed"})),
    )


async def create_call(request: web.Request) -> web.Response:
    """POST /Calls.json: validate, queue behind the calls-per-second limit, answer 201 with status `queued`."""
    fake = fake_of(request)
    account = fake.account
    form = Form(await request.post(), PARAMETERS)
    to, from_ = form.get("To", "") or "", form.get("From", "") or ""
    refused = endpoint_error(account, from_, to)
    if refused is not None:
        raise RestError(400, *refused)
    caller_id = form.get("CallerId")
    if caller_id is not None and endpoint_error(account, caller_id, to) is not None:
        raise RestError(400, 21210, f"CallerId {caller_id} is not a number of this account or a verified caller id")
    apps = {sid: (app.voice_url, app.status_callback) for sid, app in fake.apps.items()}
    start, callback, extra = _start(apps, form)
    placement = _placement(form, start)
    events = form.events("StatusCallbackEvent", CALL_EVENTS, frozenset({"completed"}))
    call = account.new_call(
        "outbound-api",
        from_,
        to,
        status="queued",
        status_callback=callback,
        status_callback_method=form.choice("StatusCallbackMethod", METHODS, "POST"),
        # Twilio docs: Call resource, StatusCallbackEvent: without it only `completed` is sent.
        status_events=events if "ApplicationSid" not in extra else frozenset({"completed"}),
        extra=extra,
    )
    try:
        fake.outbound.place(call, placement)
    except QueueFull:
        del account.calls[call.sid]
        raise RestError(400, 22005, "Call queue full: the call would not be placed within 24 hours") from None
    shown = call.resource()  # Twilio answers `queued` whatever happens next
    await fake.settle()
    return web.json_response(shown, status=201)


def add_routes(app: web.Application) -> None:
    """Serve POST /Calls.json."""
    app.router.add_post(f"{BASE}/Calls.json", create_call)
