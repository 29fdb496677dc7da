"""`bridge demo --softphone`: the real softphone page on simulated devices, with calls that land in the sandbox.

Nothing here is mounted by `bridge serve`. The demo signs in as Zendesk would (a JWT signed with a key it
makes up) and serves the bridge's own page, for alice or bob, with the fake ZAFClient and Twilio.Device in
place of Zendesk's and Twilio's scripts. Twilio is the stand-in (`bridge.devtools.fake_twilio`), its clock
kept in step with the wall clock: a call in reaches the bridge's `/incoming`, and routing rings the
available agents or queues the caller, then moves them to an agent who frees up, as with real Twilio. Each
page asks the demo which of the stand-in's legs ring its agent, and answers, declines or hangs them up. A
call out is a replay of a recorded call, with the number and the ticket the page passed.

The supervisors' live view opens as Zendesk's nav bar opens it: a form POST of the signed token, for Carol,
whose custom role the demo names in SUPERVISOR_ROLES. `/demo` shows alice's phone beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.appkeys import CLOCK, DESK
from bridge.core.phones import is_e164
from bridge.core.routing import positions
from bridge.devtools.demo import DEMO_NUMBER, RECORDINGS, LocalBridge, calls_mode, local_bridge
from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.fake_twilio.state import FINAL_STATUSES, Call
from bridge.devtools.waiting import wait_until
from bridge.softphone.identity import verify_zendesk_token
from bridge.softphone.routes import SOFTPHONE, render_page
from bridge.store import PENDING
from webhooks.names import Route, route_url

log = logging.getLogger("bridge.demo")

DEMO_ROUTE = "/demo/softphone"
LIVE_DEMO_ROUTE = "/demo/live"
SIDE_BY_SIDE_ROUTE = "/demo"
SUPERVISOR = 1003  # Carol in the sandbox: a team lead, in the custom role SUPERVISOR_ROLE
SUPERVISOR_ROLE = 360000900001
PHONES = {"alice": 1001, "bob": 1002}  # the browser agents of the demo: AGENTS is client:alice=1001,client:bob=1002
AGENT = PHONES["alice"]
CALLERS = ("+14155550123", "+14155550142", "+14155550177")  # Dana Customer (2001) first; the others are new
INSTALLATION = 900001
AUDIENCE = f"https://demo.zendesk.com/api/v2/apps/installations/{INSTALLATION}.json"
FAKES = Path(__file__).parent / "fake_phone.js"
DRIVER = Path(__file__).parent / "softphone_demo.js"
ZAF_SCRIPT = re.compile(r'<script src="https://static\.zdassets\.com/[^"]*"></script>')
_SID = re.compile(r"\b(CA|RE)[0-9a-f]{32}\b")
TICK = 0.2  # seconds: how often the stand-in's clock catches up with the wall clock


@dataclass
class Demo:
    """What the demo's routes share: the running bridge, the key Zendesk would sign with, the calls placed."""

    key: rsa.RSAPrivateKey
    tmp: Path
    bridges: list[LocalBridge] = field(default_factory=list)
    placed: int = 0

    @property
    def bridge(self) -> LocalBridge:
        """Return the running bridge."""
        return self.bridges[0]

    @property
    def twilio(self) -> TwilioStandIn:
        """Return the stand-in playing Twilio."""
        stand_in = self.bridge.stand_in
        assert stand_in is not None  # the demo always runs with one
        return stand_in


def _new_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


def fresh_call(name: str, out_dir: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Copy a bundled recording with new call and recording sids (each demo call is a new call)."""
    fresh: dict[str, str] = {}
    text = _SID.sub(lambda m: fresh.setdefault(m.group(0), m.group(1) + secrets.token_hex(16)),
                    (RECORDINGS / f"{name}.jsonl").read_text())  # fmt: skip
    lines = []
    for line in text.splitlines():
        entry = json.loads(line)
        if edit is not None:
            edit(entry)
        lines.append(json.dumps(entry))
    path = out_dir / f"{name}-{secrets.token_hex(4)}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _outbound_edit(number: str, ticket: str | None, agent: str) -> Callable[[dict[str, Any]], None]:
    """Point the recorded call out at the dialed number, from the agent who dialed, with the page's ticket."""

    def edit(entry: dict[str, Any]) -> None:
        params = entry["params"]
        for name in ("To", "Called"):
            if params.get(name) == "+14155550199":
                params[name] = number
        for name in ("From", "Caller"):
            if params.get(name) == "client:alice":
                params[name] = f"client:{agent}"
        if entry["path"] == "/twilio/voice/outgoing" and ticket:
            params["TicketId"] = ticket

    return edit


LIVE_FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Opening the live view</title></head>
<body><form method="post" action="/zendesk/live"><input type="hidden" name="token" value="{token}">
<noscript><button>Open the live view</button></noscript></form><script>document.forms[0].submit()</script></body></html>
"""
SIDE_BY_SIDE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Softphone and live view</title>
<style>body{{margin:0;display:flex;gap:8px;height:100vh;background:#e9eef3}} iframe{{border:0;background:#fff}}
#phone{{width:340px;flex:none}} #live{{flex:1}}</style></head>
<body><iframe id="phone" title="alice's phone" src="{DEMO_ROUTE}"></iframe>
<iframe id="live" title="Live view" src="{LIVE_DEMO_ROUTE}"></iframe></body></html>
"""


def mount(app: web.Application, demo: Demo) -> None:
    """Add the demo's routes to the bridge app (before it starts): the pages, the scripts, the devices, the calls."""

    def signed(request: web.Request, user: int) -> str:
        """Sign a token for `user` as Zendesk signs the app's signed-URL requests."""
        now = request.app[CLOCK]()
        sub = f"https://demo.zendesk.com/api/v2/users/{user}.json"
        claims = {"iss": "demo.zendesk.com", "aud": AUDIENCE, "sub": sub, "iat": int(now.timestamp()),
                  "exp": int(now.timestamp()) + 300}  # fmt: skip
        return jwt.encode(claims, demo.key, algorithm="RS256")

    async def page(request: web.Request) -> web.Response:
        name = request.query.get("agent", "alice")
        if name not in PHONES:
            raise web.HTTPNotFound(reason=f"the demo's agents are {', '.join(PHONES)}")
        now = request.app[CLOCK]()
        # As Zendesk would sign in: the bridge's own verification, then the bridge's own page.
        softphone = request.app[SOFTPHONE]
        assert softphone.public_key is not None
        token = signed(request, PHONES[name])
        agent = verify_zendesk_token(token, softphone.public_key, audience=AUDIENCE, issuer="demo.zendesk.com", now=now)
        response = render_page(softphone, agent, now)
        scripts = '<script src="/demo/fake_phone.js"></script><script src="/demo/driver.js"></script>'
        body = ZAF_SCRIPT.sub(scripts, response.text or "")
        return web.Response(text=body, content_type="text/html", headers={
            k: v for k, v in response.headers.items() if k.lower() != "content-type"})  # fmt: skip

    async def live(request: web.Request) -> web.Response:
        # Zendesk's nav bar POSTs the signed token to the app's URL; this page does the same, at once.
        return web.Response(text=LIVE_FORM.format(token=signed(request, SUPERVISOR)), content_type="text/html")

    async def side_by_side(request: web.Request) -> web.Response:
        return web.Response(text=SIDE_BY_SIDE, content_type="text/html")

    async def fakes(request: web.Request) -> web.Response:
        return web.Response(text=FAKES.read_text(), content_type="text/javascript")

    async def driver(request: web.Request) -> web.Response:
        return web.Response(text=DRIVER.read_text(), content_type="text/javascript")

    async def device(request: web.Request) -> web.Response:
        return web.json_response(await demo_device(demo, f"client:{request.query.get('agent', 'alice')}"))

    async def leg(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(await demo_leg(demo, str(body.get("sid")), str(body.get("action"))))

    async def call(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("kind") == "room":
            return web.json_response(await join_room(demo, str(body.get("agent") or "alice"), str(body.get("room"))))
        if body.get("kind") == "outbound":
            agent = str(body.get("agent") or "alice")
            return web.json_response(await call_out(demo, str(body.get("to") or ""), body.get("ticket"), agent))
        return web.json_response(await call_in(demo, first=bool(body.get("first"))))

    app.router.add_get(DEMO_ROUTE, page)
    app.router.add_get(LIVE_DEMO_ROUTE, live)
    app.router.add_get(SIDE_BY_SIDE_ROUTE, side_by_side)
    app.router.add_get("/demo/fake_phone.js", fakes)
    app.router.add_get("/demo/driver.js", driver)
    app.router.add_get("/demo/device", device)
    app.router.add_post("/demo/leg", leg)
    app.router.add_post("/demo/call", call)


def _mine(call: Call, identity: str) -> bool:
    """Tell whether a stand-in call is a device's: a leg ringing it, a room ringing it, its way into a room."""
    rung = call.to == identity and (call.parent is not None or call.direction == "outbound-api")
    return rung or (call.from_ == identity and bool(call.extra.get("Room")))


async def demo_device(demo: Demo, identity: str) -> dict[str, Any]:
    """Say what a device sees: the stand-in's legs ringing its identity, the ones still live, the queue."""
    legs = [c for c in demo.twilio.account.calls.values() if _mine(c, identity)]
    waiting = await demo.bridge.app[DESK].waiting()
    queued = [w for w in waiting if not w.being_offered(demo.bridge.clock())]
    return {
        "ringing": [{"sid": c.sid, "from": c.parent.from_ if c.parent else c.from_} for c in legs
                    if c.status == "ringing" and c.to == identity],
        "live": [c.sid for c in legs if c.status not in FINAL_STATUSES],
        "queue": f"Queue: {len(queued)} caller{'s' if len(queued) != 1 else ''} waiting for an agent"
        if queued else "Queue: nobody waiting",
    }  # fmt: skip


async def demo_leg(demo: Demo, sid: str, action: str) -> dict[str, Any]:
    """Answer, decline or hang up one of the stand-in's legs, as the agent did on the page."""
    leg = demo.twilio.account.calls.get(sid)
    if leg is None or leg.status in FINAL_STATUSES:
        return {"text": ""}  # a leg the stand-in already ended (the caller left, another agent answered)
    if leg.parent is None:  # a call into a room: rung in by a colleague, or the agent's own way back in
        return await _room_leg(demo, leg, action)
    if action == "answer":
        await demo.twilio.answer(leg)
        ticket = await _ticket_of(demo, leg.parent)
        where = f"the call is on ticket #{ticket} in the sandbox" if ticket else "its ticket is on its way"
        return {"text": f"{leg.to} answered {leg.parent.sid} from {leg.parent.from_}: {where}."}
    if action == "reject":
        await demo.twilio.reject(leg, "busy")
        return {"text": f"{leg.to} declined {leg.parent.sid}: routing offers it to someone else, or queues it."}
    await demo.twilio.hang_up(leg)
    return {"text": f"{leg.to} hung up {leg.parent.sid}."}


async def _room_leg(demo: Demo, leg: Call, action: str) -> dict[str, Any]:
    """Answer, decline or hang up a call into a room (docs/calls-in-progress.md)."""
    if action == "answer" and leg.status == "ringing":
        await demo.twilio.answer(leg)
        return {"text": f"{leg.to} answered: they are in the call's room now."}
    if action == "reject" and leg.status == "ringing":
        await demo.twilio.reject(leg, "busy")
        return {"text": f"{leg.to} declined: the customer stays on hold."}
    if action == "hangup":
        await demo.twilio.hang_up(leg)
        return {"text": f"{leg.from_ if leg.extra.get('Room') else leg.to} left the call."}
    return {"text": ""}


async def join_room(demo: Demo, agent: str, room: str) -> dict[str, Any]:
    """Place an agent's way back into a call's room through the stand-in, as their softphone's Resume does."""
    fake = demo.twilio
    app = fake.application(route_url(demo.bridge.url, Route.OUTGOING), route_url(demo.bridge.url, Route.STATUS))
    joined = await fake.call_out(f"client:{agent}", "", app, Room=room)
    return {"text": f"{agent} is back in the call: the customer is off hold.", "call_sid": joined.sid}


async def _ticket_of(demo: Demo, call: Call) -> int | None:
    """Wait a little for the call's ticket in the sandbox (the outbox creates it on the answer)."""

    def ticket() -> int | None:
        return next((t["id"] for t in demo.bridge.sandbox.list_tickets() if t["external_id"] == call.sid), None)

    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: ticket() is not None, within=15, what="the call's ticket")
    return ticket()


async def call_in(demo: Demo, *, first: bool) -> dict[str, Any]:
    """Place a call to the demo number through the stand-in; say whom routing rang, or where it queued."""
    if first and demo.placed:
        return {"text": ""}  # the first page ready rings once; a second page does not ring again
    caller = CALLERS[demo.placed % len(CALLERS)]
    demo.placed += 1
    call = await demo.twilio.incoming(caller, DEMO_NUMBER)
    rung = sorted(leg.to for leg in demo.twilio.legs(call) if leg.status == "ringing")
    if rung:
        return {"text": f"{caller} calls ({call.sid}): routing rings {', '.join(rung)}."}
    waiting = await demo.bridge.app[DESK].waiting()
    place = positions(waiting).get(call.sid)
    if place is not None:
        return {"text": f"{caller} calls ({call.sid}): nobody is available, so they wait in the queue, number "
                        f"{place} in line, until an agent is."}  # fmt: skip
    return {"text": f"{caller} calls ({call.sid}): the call is {call.status}."}


async def call_out(demo: Demo, number: str, ticket: object, agent: str) -> dict[str, Any]:
    """Replay a recorded call out from `agent` to `number`, logged on `ticket` when the page named one."""
    if not is_e164(number):
        return {"text": f"{number!r} is not an E.164 number: Twilio would refuse it"}
    if agent not in PHONES:
        return {"text": f"the demo's agents are {', '.join(PHONES)}"}
    on = str(ticket) if ticket else None
    path = fresh_call("outbound_answered", demo.tmp, _outbound_edit(number, on, agent))
    call_sid = json.loads(path.read_text().splitlines()[0])["params"]["CallSid"]
    bridge = demo.bridge
    await bridge.replay([path])
    await _delivered(demo, call_sid)
    own = [t["id"] for t in bridge.sandbox.list_tickets() if t["external_id"] == call_sid]
    # A call out logged on an open ticket has no ticket of its own: it is on the one the page named.
    where = f"ticket #{own[0]}" if own else f"ticket #{on}"
    text = f"Twilio's webhooks for {call_sid} were replayed: the call is on {where} in the sandbox."
    return {"text": text, "call_sid": call_sid}


async def _delivered(demo: Demo, call_sid: str) -> None:
    """Wait until the outbox delivered what the call asked of Zendesk."""
    # Not settle_calls: a queued caller's timers (its longest wait) keep the outbox pending for minutes.
    store = demo.bridge.store

    async def done() -> bool:
        pending = await store.list_actions([PENDING], limit=1000)
        return not any(row.call_sid == call_sid and row.kind != "timer" for row in pending)

    with contextlib.suppress(TimeoutError):
        await wait_until(done, within=30, what="the call's tickets and comments")


async def keep_time(twilio: TwilioStandIn) -> None:
    """Move the stand-in's virtual clock with the wall clock, so rings time out and hold music plays on."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(TICK)  # the demo's pace is a person's: a fifth of a second is soon enough
        now = loop.time()
        try:
            await twilio.advance(now - last)
        except Exception:  # a fault of the stand-in's must not stop the demo's clock
            log.exception("the Twilio stand-in failed; the demo goes on")
        last = now


@contextlib.asynccontextmanager
async def running(task: asyncio.Task[None]) -> AsyncIterator[None]:
    """Cancel a background task when the block ends."""
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_softphone_demo(out: TextIO, stop: asyncio.Event | None = None, api: str = "tickets") -> int:
    """Run the sandbox, the stand-in and the bridge, print the two phones' URLs, and serve until stopped.

    `api`: ZENDESK_API; with `calls` every call also gets its TPE call record, in the sandbox's state.
    """
    key, pem = _new_key()
    with tempfile.TemporaryDirectory(prefix="bridge-softphone-demo-") as tmp:
        demo = Demo(key, Path(tmp))
        key_sid, key_secret = "SK" + "d" * 32, secrets.token_hex(32)
        settings: dict[str, Any] = {
            "agents": {f"client:{name}": user for name, user in PHONES.items()},
            "twilio_api_key_sid": key_sid,
            "twilio_api_key_secret": key_secret,
            "twilio_twiml_app_sid": "AP" + "d" * 32,
            "zendesk_app_audience": AUDIENCE,
            "zendesk_app_public_key": pem,
            "supervisor_roles": str(SUPERVISOR_ROLE),
            **(calls_mode() if api == "calls" else {}),
        }
        async with local_bridge(Path(tmp) / "bridge.db", setup=lambda app: mount(app, demo), stand_in=True,
                                **settings) as bridge:  # fmt: skip
            demo.bridges.append(bridge)
            twilio = demo.twilio
            twilio.media.api_keys[key_sid] = key_secret  # the bridge moves queued callers with the API key
            body = {"ticket": {"via_id": 45, "subject": "Printer on fire", "comment": {"body": "Please call me back"},
                               "requester_id": 2002, "status": "open"}}  # fmt: skip
            bridge.sandbox.create_voice_ticket(body)
            bridge.sandbox.set_role(SUPERVISOR, "agent", SUPERVISOR_ROLE)  # Carol leads the team
            async with running(asyncio.create_task(keep_time(twilio), name="demo-clock")):
                print(f"Softphone demo: the sandbox Zendesk at {bridge.zendesk_url}, the bridge at {bridge.url},",
                      f"Twilio played by the stand-in at {bridge.settings.twilio_api_url}.", file=out)  # fmt: skip
                print(f"Open {bridge.url}{DEMO_ROUTE} in a browser: the phone of client:alice (Zendesk agent {AGENT}).",
                      file=out)  # fmt: skip
                print(f"Open {bridge.url}{DEMO_ROUTE}?agent=bob in a second window: the phone of client:bob "
                      f"(Zendesk agent {PHONES['bob']}).", file=out)  # fmt: skip
                print(f"Open {bridge.url}{SIDE_BY_SIDE_ROUTE} for alice's phone beside the supervisors' live view "
                      f"(Carol, Zendesk agent {SUPERVISOR}, in a supervisors' custom role); the live view alone: "
                      f"{bridge.url}{LIVE_DEMO_ROUTE}.", file=out)  # fmt: skip
                print("A call rings once a phone is ready; 'Simulate an incoming call' places another. Set one agent",
                      "Away: calls ring the other. Set both Away (or busy): callers wait in the queue, and the first",
                      "agent to choose Available is offered the longest-waiting one. Dial out too (ticket #1 is open",
                      "to log a call on).", file=out)  # fmt: skip
                print(f"Tickets as Zendesk holds them: {bridge.zendesk_url}/sandbox/state   (Ctrl-C to stop)", file=out,
                      flush=True)  # fmt: skip
                await (stop or asyncio.Event()).wait()
    return 0
