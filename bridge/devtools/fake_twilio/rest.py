"""A fake of Twilio's REST API (2010-04-01): Calls, Recordings, recording control, the account, its numbers.

Form-encoded requests, HTTP Basic auth (AccountSid and auth token, or an API key SK… and its secret), JSON
answers with Twilio's snake_case fields, and Twilio's error body, so twilio-python raises TwilioRestException
with Twilio's `code` (Twilio docs: "Twilio API responses", errors and paging).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web
from multidict import MultiDictProxy

from bridge.devtools.fake_twilio.interpreter import Fetch
from bridge.devtools.fake_twilio.state import API_VERSION, Call, Recording, recording_resource
from bridge.devtools.fake_twilio.twiml import TwimlError, absolute_actions, parse
from bridge.devtools.twilio_media import add_media_routes

if TYPE_CHECKING:
    from bridge.devtools.fake_twilio.standin import TwilioStandIn

STAND_IN: web.AppKey[TwilioStandIn] = web.AppKey("stand_in")
BASE = f"/{API_VERSION}/Accounts/{{account}}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NOT_LIVE = "Call is not in-progress. Cannot redirect."


class RestError(web.HTTPException):
    """Twilio's error answer: `{code, message, more_info, status}` (Twilio docs: "Twilio API responses")."""

    def __init__(self, status: int, code: int, message: str) -> None:
        """Build the JSON body twilio-python reads into TwilioRestException."""
        self.status_code = status
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        super().__init__(text=web.json_response(body).text, content_type="application/json")


def fake_of(request: web.Request) -> TwilioStandIn:
    """Return the stand-in serving the request."""
    return request.config_dict[STAND_IN]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the account and Basic credentials, then apply a scripted failure (429/20429, 5xx) if one is due."""
    if request.path.endswith(".mp3"):
        return await handler(request)  # the media route checks its own credentials
    fake = fake_of(request)
    account = request.match_info.get("account", "")
    if not fake.media.authorised(request.headers.get(hdrs.AUTHORIZATION), account or fake.account.sid):
        raise RestError(401, 20003, "Authenticate")
    if account and account != fake.account.sid:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    fake.account.script.rest_log.append((request.method, request.path))
    failure = fake.account.rest_failure()
    if failure is not None:
        # Twilio docs: error 20429, "Too many requests": not processed, safe to retry with a back-off.
        raise RestError(failure[0], failure[1], "Too Many Requests" if failure[1] == 20429 else "Internal error")
    return await handler(request)


def page(request: web.Request, key: str, items: list[dict[str, Any]]) -> web.Response:
    """Answer a list with Twilio's paging keys around the one list key (twilio-python finds it by elimination)."""
    size = int(request.query.get("PageSize", "50"))
    number = int(request.query.get("Page", "0"))
    shown = items[number * size : (number + 1) * size]
    uri = request.path_qs
    return web.json_response(
        {
            key: shown,
            "start": number * size,
            "end": number * size + max(len(shown) - 1, 0),
            "page": number,
            "page_size": size,
            "uri": uri,
            "first_page_uri": request.path,
            "next_page_uri": None,
            "previous_page_uri": None,
        }
    )


async def form(request: web.Request) -> dict[str, str]:
    """Read a form body, last value of each name."""
    data = await request.post()
    return {name: str(value) for name, value in data.items()}


class Form:
    """A create or update request's form: every value of each name; a name the docs do not list is refused."""

    def __init__(self, data: MultiDictProxy[Any], allowed: frozenset[str]) -> None:
        """Refuse undocumented names (stricter than Twilio, which may ignore them)."""
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise RestError(400, 20001, f"{', '.join(unknown)}: not a parameter of this request")
        self._data = data

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the last value of `name`."""
        values = self._data.getall(name, [])
        return str(values[-1]) if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """Return a true/false parameter."""
        value = self.get(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise RestError(400, 20001, f"{name} must be true or false, not {value!r}")
        return value.lower() == "true"

    def choice(self, name: str, values: tuple[str, ...], default: str) -> str:
        """Return a parameter that takes one of `values`."""
        value = self.get(name, default)
        if value not in values:
            raise RestError(400, 20001, f"{name} must be one of {', '.join(values)}, not {value!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        """Return a whole number in [low, high]."""
        value = self.get(name)
        if value is None:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise RestError(400, 20001, f"{name} must be a whole number from {low} to {high}")
        return int(value)

    def url(self, name: str, empty: bool = False) -> str | None:
        """Return an absolute http(s) URL (or '' when `empty` is allowed)."""
        value = self.get(name)
        if value is None or (empty and value == ""):
            return value
        if not value.startswith(("http://", "https://")):
            raise RestError(400, 21205, f"{name} must be an absolute URL, not {value!r}")  # Twilio docs: 21205
        return value

    def events(self, name: str, allowed: frozenset[str], default: frozenset[str]) -> frozenset[str]:
        """Return an event list given as repeated keys, space-separated values, or both."""
        values = [str(value) for value in self._data.getall(name, [])]
        if not values:
            return default
        events = frozenset(event for value in values for event in value.split())
        if not events or not events <= allowed:
            raise RestError(400, 20001, f"{name} takes {', '.join(sorted(allowed))}, not {values}")
        return events


def call_or_404(request: web.Request) -> Call:
    """Return the call named in the path, or Twilio's 20404."""
    call = fake_of(request).account.calls.get(request.match_info["call"])
    if call is None:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return call


# --- Calls ---------------------------------------------------------------------------------------------------


async def list_calls(request: web.Request) -> web.Response:
    """GET /Calls.json, filtered by ParentCallSid, Status, To, From (Twilio docs: Call resource, read)."""
    calls = list(fake_of(request).account.calls.values())
    query = request.query
    if "ParentCallSid" in query:
        calls = [c for c in calls if c.parent is not None and c.parent.sid == query["ParentCallSid"]]
    if "Status" in query:
        calls = [c for c in calls if c.resource()["status"] == query["Status"]]
    for name, attribute in (("To", "to"), ("From", "from_")):
        if name in query:
            calls = [c for c in calls if getattr(c, attribute) == query[name]]
    calls.sort(key=lambda c: c.created, reverse=True)  # Twilio lists the newest first
    return page(request, "calls", [c.resource() for c in calls])


async def fetch_call(request: web.Request) -> web.Response:
    """GET /Calls/{CA}.json."""
    return web.json_response(call_or_404(request).resource())


async def update_call(request: web.Request) -> web.Response:
    """POST /Calls/{CA}.json: redirect a live call to new TwiML, or end it (Twilio docs: "Modifying live calls")."""
    call = call_or_404(request)
    body = await form(request)
    url, twiml, status = body.get("Url"), body.get("Twiml"), body.get("Status")
    if url and twiml:
        raise RestError(400, 20001, "Url and Twiml cannot both be given")  # inferred code; the docs say exclusive
    if status not in (None, "canceled", "completed"):
        raise RestError(400, 20001, f"Status must be canceled or completed, not {status!r}")
    if not (url or twiml or status):
        raise RestError(400, 20001, "Give Url, Twiml or Status")
    if call.over:
        raise RestError(400, 21220, NOT_LIVE)  # Twilio docs: error 21220, "Invalid call state"
    if status == "canceled":
        # Twilio docs: Call resource: `canceled` ends a queued or ringing call and does nothing to a live one.
        if call.status in ("queued", "initiated", "ringing") and call.direction != "inbound":
            _hang_up(call)
    elif status == "completed":
        _hang_up(call)
    else:
        if call.direction == "outbound-dial" or (call.direction == "outbound-api" and call.answered is None):
            raise RestError(400, 21220, "The stand-in redirects answered calls that run TwiML only")
        if twiml is not None:
            try:
                verbs = parse(twiml)
            except TwimlError as exc:
                raise RestError(400, exc.code, str(exc)) from None
            if not absolute_actions(verbs):
                # Twilio docs: error 15004: inline TwiML needs absolute action URLs.
                raise RestError(400, 15004, "Twiml has a relative URL; give absolute URLs")
            call.post("redirect", Fetch("", twiml=twiml))
        else:
            assert url is not None
            call.post("redirect", Fetch(url, body.get("Method", "POST")))
    fake = fake_of(request)
    await fake.settle()
    return web.json_response(call.resource())


def _hang_up(call: Call) -> None:
    """Hang up a call from the REST API: a dialed leg through its <Dial>, any other through its runner."""
    if call.parent is not None and call.direction == "outbound-dial":
        call.parent.post("leg", (call, "hangup", None))
    else:
        call.post("hangup", "api")  # not the person hanging up: a conference says participant_updated_via_api


# --- Recordings ---------------------------------------------------------------------------------------------


async def list_recordings(request: web.Request) -> web.Response:
    """GET /Recordings.json, filtered by CallSid or ConferenceSid (Twilio docs: Recording resource, read)."""
    fake = fake_of(request)
    recordings = list(fake.account.recordings.values())
    if "call" in request.match_info:
        recordings = [r for r in recordings if r.call_sid == request.match_info["call"]]
    if "CallSid" in request.query:
        recordings = [r for r in recordings if r.call_sid == request.query["CallSid"]]
    if "ConferenceSid" in request.query:
        recordings = [r for r in recordings if r.conference_sid == request.query["ConferenceSid"]]
    return page(request, "recordings", [recording_resource(fake.account.sid, r) for r in recordings])


async def fetch_recording(request: web.Request) -> web.Response:
    """GET /Recordings/{RE}.json."""
    fake = fake_of(request)
    recording = fake.account.recordings.get(request.match_info["recording"])
    if recording is None:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return web.json_response(recording_resource(fake.account.sid, recording))


async def control_recording(request: web.Request) -> web.Response:
    """POST /Calls/{CA}/Recordings/{RE|Twilio.CURRENT}.json: pause, resume or stop (Twilio docs: Call Recordings)."""
    fake = fake_of(request)
    call = call_or_404(request)
    recording = find_recording(request, call.recordings, call.over)
    await change_recording(request, recording)
    return web.json_response(recording_resource(fake.account.sid, recording))


def find_recording(request: web.Request, recordings: list[Recording], over: bool) -> Recording:
    """Find the recording a control request names, as Twilio answers for a finished call or none."""
    if over:
        raise RestError(400, 21220, "Call is not in-progress. Cannot be recorded.")
    sid = request.match_info["recording"]
    live = [r for r in recordings if r.status in ("in-progress", "paused")]
    found = live[-1:] if sid == "Twilio.CURRENT" else [r for r in recordings if r.sid == sid]
    if not found:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return found[0]


async def change_recording(request: web.Request, recording: Recording) -> None:
    """Apply Status=paused|in-progress|stopped and PauseBehavior=skip|silence to a live recording."""
    fake = fake_of(request)
    body = await form(request)
    status, behaviour = body.get("Status"), body.get("PauseBehavior", "silence")
    if status not in ("paused", "in-progress", "stopped") or behaviour not in ("skip", "silence"):
        raise RestError(400, 20001, "Status must be paused, in-progress or stopped; PauseBehavior skip or silence")
    if recording.status not in ("in-progress", "paused"):
        raise RestError(400, 21220, "The recording is not in progress")
    now = fake.account.now
    if status == "paused" and recording.paused_at is None:
        recording.paused_at, recording.pause_behavior, recording.status = now, behaviour, "paused"
    elif status == "in-progress" and recording.paused_at is not None:
        fake.account.resume_recording(recording)
        recording.status = "in-progress"
    elif status == "stopped":
        await fake.account.finish_recording(recording)
        await fake.settle()


# --- the account and its IncomingPhoneNumbers ---------------------------------------------------------------


async def fetch_account(request: web.Request) -> web.Response:
    """GET /Accounts/{AC}.json: the account itself (Twilio docs: Account resource, fetch)."""
    fake = fake_of(request)
    return web.json_response(
        {
            "sid": fake.account.sid,
            "friendly_name": "Twilio stand-in",
            "status": "active",
            "type": "Full",
            "uri": f"/{API_VERSION}/Accounts/{fake.account.sid}.json",
        }
    )


async def list_numbers(request: web.Request) -> web.Response:
    """GET /IncomingPhoneNumbers.json, filtered by PhoneNumber (Twilio docs: IncomingPhoneNumber resource)."""
    fake = fake_of(request)
    numbers = list(fake.account.numbers.values())
    if "PhoneNumber" in request.query:
        numbers = [n for n in numbers if n.number == request.query["PhoneNumber"]]
    items = [
        {
            "sid": n.sid,
            "account_sid": fake.account.sid,
            "phone_number": n.number,
            "friendly_name": n.friendly_name,
            "voice_url": n.voice_url,
            "voice_method": n.voice_method,
            "voice_fallback_url": None,
            "status_callback": n.status_callback or "",
            "status_callback_method": n.status_callback_method,
            "voice_application_sid": None,
            "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False},
            "api_version": API_VERSION,
            "uri": fake.account.uri(f"IncomingPhoneNumbers/{n.sid}.json"),
        }
        for n in numbers
    ]
    return page(request, "incoming_phone_numbers", items)


def create_rest_app(fake: TwilioStandIn) -> web.Application:
    """Build the REST API host: every route of this module and of the queue, conference and outbound modules."""
    app = web.Application(middlewares=[guard])
    app[STAND_IN] = fake
    add_media_routes(app, fake.media)
    call = "{call:CA[0-9a-f]{32}}"
    app.router.add_get(f"{BASE}/Calls.json", list_calls)
    app.router.add_get(f"{BASE}/Calls/{call}.json", fetch_call)
    app.router.add_post(f"{BASE}/Calls/{call}.json", update_call)
    app.router.add_get(f"{BASE}/Calls/{call}/Recordings.json", list_recordings)
    app.router.add_post(f"{BASE}/Calls/{call}/Recordings/{{recording}}.json", control_recording)
    app.router.add_get(f"{BASE}/Recordings.json", list_recordings)
    app.router.add_get(f"{BASE}/Recordings/{{recording:RE[0-9a-f]{{32}}}}.json", fetch_recording)
    app.router.add_get(f"{BASE}.json", fetch_account)
    app.router.add_get(f"{BASE}/IncomingPhoneNumbers.json", list_numbers)
    for add_routes in fake.route_modules:
        add_routes(app)
    return app
