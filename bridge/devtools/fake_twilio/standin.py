"""The Twilio stand-in a test drives: it places calls, plays the people on them, and moves virtual time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.devtools.fake_twilio import (
    conference_twiml,
    dial,
    gather,
    queues,
    rest_conferences,
    rest_outbound,
    rest_queues,
)
from bridge.devtools.fake_twilio.account import DEFAULT_ACCOUNT, Account, Outcome
from bridge.devtools.fake_twilio.clock import VirtualClock
from bridge.devtools.fake_twilio.conference_state import Conference
from bridge.devtools.fake_twilio.interpreter import Fetch, Interpreter
from bridge.devtools.fake_twilio.outbound import Outbound, Pickup
from bridge.devtools.fake_twilio.rest import create_rest_app
from bridge.devtools.fake_twilio.state import Call, PhoneNumber, Prompt
from bridge.devtools.fake_twilio.webhooks import Delivery, Sent
from bridge.devtools.twilio_media import FakeTwilio, create_fake_twilio_apps
from bridge.devtools.waiting import wait_until


@dataclass
class TwimlApp:
    """A TwiML App: where browser agents' calls get their TwiML and report their end (Twilio docs: Applications)."""

    sid: str
    voice_url: str
    status_callback: str | None = None


class TwilioStandIn:
    """Twilio for tests: calls placed into an app, its TwiML followed, a REST API served, time virtual."""

    def __init__(
        self,
        auth_token: str,
        account_sid: str = DEFAULT_ACCOUNT,
        *,
        seed: int | None = None,
        start: datetime | None = None,
    ) -> None:
        """Set up an account with no numbers; `seed` makes sids reproducible; `start` is the clock's start."""
        self.account = Account(auth_token, account_sid, seed, start)
        self.account.settle = self.settle
        self.interpreter = Interpreter(self.account)
        self.interpreter.verbs["Dial"] = dial.dial
        self.apps: dict[str, TwimlApp] = {}
        self.outbound = Outbound(self.interpreter)  # calls placed through the REST API, and their CPS queue
        self.route_modules: list[Callable[[web.Application], None]] = [
            rest_queues.add_routes,
            rest_outbound.add_routes,
            rest_conferences.add_routes,
        ]
        queues.register(self.interpreter)
        conference_twiml.register(self.interpreter)
        gather.register(self.interpreter)
        self.url = ""  # the REST API's base URL once served (TWILIO_API_URL)

    # --- configuration ------------------------------------------------------------------------------------

    @property
    def clock(self) -> VirtualClock:
        """Return the virtual clock (usable as the bridge's `clock`)."""
        return self.account.clock

    @property
    def media(self) -> FakeTwilio:
        """Return the fake media API: credentials, API keys, recording audio."""
        return self.account.media

    @property
    def delivery(self) -> Delivery:
        """Return how fire-and-forget callbacks are delivered."""
        return self.account.sender.delivery

    @delivery.setter
    def delivery(self, delivery: Delivery) -> None:
        """Deliver fire-and-forget callbacks in order, or shuffled with duplicates."""
        self.account.sender.delivery = delivery

    def own(self, number: str, voice_url: str, *, status_callback: str | None = None, **options: str) -> PhoneNumber:
        """Own a number configured as the console would (voice URL, call status callback)."""
        return self.account.own(number, voice_url, status_callback=status_callback, **options)

    def outcome(self, to: str, status: str = "answered", **options: Any) -> None:
        """Script how `to` takes every call the REST API places to it (answered_by=, after=, detection=)."""
        self.account.script.outcomes[to] = Outcome(status, **options)

    def verify(self, number: str) -> None:
        """Verify an outgoing caller id: REST-created calls may then use it as From (Twilio docs: OutgoingCallerId)."""
        self.account.verified.add(number)

    @property
    def calls_per_second(self) -> float:
        """Return how many REST-created calls leave Twilio's queue each second."""
        return self.outbound.dialer.cps

    @calls_per_second.setter
    def calls_per_second(self, cps: float) -> None:
        """Set the account's CPS (a fraction slows it below one call a second, for tests of the 24-hour limit)."""
        self.outbound.dialer.cps = cps

    def application(self, voice_url: str, status_callback: str | None = None) -> TwimlApp:
        """Create a TwiML App for browser agents' calls out."""
        app = TwimlApp(self.account.sids.make("AP"), voice_url, status_callback)
        self.apps[app.sid] = app
        return app

    # --- time ------------------------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until nothing is in flight or runnable, releasing held callbacks (shuffled) on the way."""
        activity = self.account.activity
        while True:
            await activity.idle()
            if not self.account.sender.release(lambda work: activity.spawn(work, name="callback")):
                return

    async def idle(self) -> None:
        """Wait until the stand-in has nothing left to do at this moment of virtual time."""
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward, firing every timer that falls due in order (Dial timeouts, prompts…)."""
        await self.clock.advance(seconds)

    # --- calls in ------------------------------------------------------------------------------------------

    async def incoming(self, from_: str, to: str, **params: str) -> Call:
        """Place a call from `from_` to an owned number: Twilio requests its voice URL and follows the TwiML."""
        number = self.account.numbers.get(to)
        if number is None:
            raise ValueError(f"{to} is not a number of this account: own() it first")
        call = self.account.new_call(
            "inbound",
            from_,
            to,
            status="ringing",
            extra=dict(params),
            # Twilio docs: IncomingPhoneNumber, status_callback: the number's callback hears the final status.
            status_callback=number.status_callback,
            status_callback_method=number.status_callback_method,
        )
        self._run(call, Fetch(number.voice_url, number.voice_method))
        await self.settle()
        return call

    async def call_out(self, from_: str, to: str, app: TwimlApp, **params: str) -> Call:
        """Place a browser agent's call: Twilio requests the TwiML App's voice URL with `To` and custom params."""
        call = self.account.new_call(
            "inbound",
            from_,
            to,
            status="ringing",
            status_callback=app.status_callback,
            extra={"ApplicationSid": app.sid, "Called": "", **params},
        )
        call.to_geo = None
        self._run(call, Fetch(app.voice_url, "POST"))
        await self.settle()
        return call

    def _run(self, call: Call, start: Fetch) -> None:
        """Execute a call's TwiML in a tracked task."""
        self.account.activity.spawn(self.interpreter.run(call, start), name=f"call {call.sid}")

    # --- the people on the calls -------------------------------------------------------------------------

    def legs(self, call: Call) -> list[Call]:
        """Return the legs dialed from a call, oldest first."""
        return [leg for leg in self.account.calls.values() if leg.parent is call]

    async def ringing(self, to: str, within: float = 10.0) -> Call:
        """Wait for a leg to `to` that is ringing now, and return the newest."""

        def found() -> Call | None:
            """Return the newest ringing leg (or REST-created call) to `to`."""
            legs = [
                c
                for c in self.account.calls.values()
                if c.to == to and c.status == "ringing" and (c.parent or c.direction == "outbound-api")
            ]
            return legs[-1] if legs else None

        await wait_until(lambda: found() is not None, within=within, what=f"a leg to {to} ringing")
        await self.settle()
        leg = found()
        assert leg is not None
        return leg

    async def answer(self, call: Call, answered_by: str | None = None, detection: float = 3.0) -> None:
        """Pick up a ringing leg or REST-created call; `answered_by` is AMD's verdict, reached after `detection` s."""
        if call.parent is not None and call.direction == "outbound-dial":
            call.parent.post("leg", (call, "answer", {"AnsweredBy": answered_by} if answered_by else None))
        else:
            call.post("answer", Pickup(answered_by, detection))
        await self.settle()

    async def reject(self, call: Call, status: str = "busy") -> None:
        """Refuse a ringing leg: `busy`, `failed` or `no-answer`."""
        if call.parent is not None and call.direction == "outbound-dial":
            call.parent.post("leg", (call, "reject", status))
        else:
            call.post("reject", status)
        await self.settle()

    async def hang_up(self, call: Call) -> None:
        """Hang up a caller or a leg."""
        if call.parent is not None and call.direction == "outbound-dial":
            call.parent.post("leg", (call, "hangup", None))
        else:
            call.post("hangup")
        await self.settle()

    async def press(self, call: Call, digits: str) -> None:
        """Press keys on a call's keypad (DTMF)."""
        call.post("digits", digits)
        await self.settle()

    def conference(self, name: str) -> Conference:
        """Return the newest conference of that name (Twilio docs: names are scoped to the account)."""
        rooms = [c for c in self.account.conferences.values() if c.name == name]
        if not rooms:
            raise KeyError(f"no conference named {name!r}")
        return rooms[-1]

    def heard(self, call: Call) -> list[Prompt]:
        """Return what a call heard (Say, Play, Pause), in order."""
        return list(call.heard)

    # --- what was sent ------------------------------------------------------------------------------------

    @property
    def sent(self) -> list[Sent]:
        """Return every webhook sent, in order."""
        return list(self.account.sender.sent)

    def lines(self, about: Call | Conference) -> list[str]:
        """Return a call's webhooks, or a conference's status callbacks, as recording lines."""
        return self.account.sender.lines(about.root.sid if isinstance(about, Call) else about.sid)

    def write(self, path: Path, about: Call | Conference) -> Path:
        """Save a call's (or a conference's) webhooks as a recording file (tests/recordings/README.md)."""
        return self.account.sender.write(path, about.root.sid if isinstance(about, Call) else about.sid)

    def write_together(self, path: Path, first: Call, *others: Call) -> Path:
        """Save a call's webhooks with its rooms' and other calls', as one recording timed from the call's start.

        A held or transferred call's story is its own webhooks, those of the conferences named after it, and those
        of the agents' calls into them.
        """
        rooms = [room.sid for room in self.account.conferences.values() if room.name == first.root.sid]
        roots = [first.root.sid, *rooms, *(other.root.sid for other in others)]
        return self.account.sender.write_together(path, roots, first.root.created)

    # --- serving --------------------------------------------------------------------------------------------

    def apps_to_serve(self) -> tuple[web.Application, web.Application]:
        """Build the REST API host (with the media API) and the media host."""
        _, media_host = create_fake_twilio_apps(self.media)
        return create_rest_app(self), media_host

    async def close(self) -> None:
        """Stop every call still running and close the HTTP client."""
        await self.account.activity.close()
        await self.account.sender.close()


@asynccontextmanager
async def serve_stand_in(auth_token: str, **options: Any) -> AsyncIterator[TwilioStandIn]:
    """Run a stand-in's REST API and media host on loopback until the block ends."""
    from bridge.devtools.demo import serve  # the one loopback server helper

    fake = TwilioStandIn(auth_token, **options)
    api, media_host = fake.apps_to_serve()
    media_runner, fake.media.media_base = await serve(media_host)
    api_runner, fake.url = await serve(api)
    try:
        yield fake
    finally:
        await fake.close()
        await api_runner.cleanup()
        await media_runner.cleanup()
