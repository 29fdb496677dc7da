"""A tiny TwiML app for the stand-in's tests: scripted answers per path, every request kept, signatures checked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bridge.devtools.demo import serve
from bridge.devtools.fake_twilio import TwilioStandIn, serve_stand_in

Answer = str | Callable[[dict[str, str]], str]


@dataclass
class Seen:
    """One request the app received."""

    path: str
    method: str
    params: dict[str, str]
    headers: dict[str, str]
    signed: bool


@dataclass
class TwimlAppServer:
    """Answer TwiML per path (a string, or a function of the params); callbacks not scripted get 204."""

    token: str
    answers: dict[str, Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def paths(self) -> list[str]:
        """Return the paths requested, in order."""
        return [seen.path.split("?")[0] for seen in self.seen]

    def at(self, path: str) -> list[dict[str, str]]:
        """Return the params of every request to `path`."""
        return [seen.params for seen in self.seen if seen.path.split("?")[0] == path]

    async def handle(self, request: web.Request) -> web.Response:
        """Keep the request, check its signature as the bridge does, answer as scripted."""
        if request.method == "POST":
            params = {k: str(v) for k, v in (await request.post()).items()}
            signed_params: Any = params
        else:
            params = dict(request.query)
            signed_params = {}
        url = self.url + request.raw_path
        signed = RequestValidator(self.token).validate(
            url, signed_params, request.headers.get("X-Twilio-Signature", "")
        )
        self.seen.append(Seen(request.raw_path, request.method, params, dict(request.headers), signed))
        answer = self.answers.get(request.path)
        if request.path.startswith("/missing"):
            return web.Response(status=404)
        if answer is None:
            return web.Response(status=204)
        text = answer(params) if callable(answer) else answer
        return web.Response(text=text, content_type="text/xml")


@asynccontextmanager
async def twiml_app(token: str) -> AsyncIterator[TwimlAppServer]:
    """Serve a TwimlAppServer on loopback."""
    server = TwimlAppServer(token)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner, server.url = await serve(app)
    try:
        yield server
    finally:
        await runner.cleanup()


TOKEN = "stand-in-test-token"
OURS = "+16505550100"
DANA = "+14155550123"
START = datetime(2026, 9, 15, 14, 2, 7, tzinfo=UTC)


@dataclass
class Rig:
    """A stand-in and the TwiML app it calls."""

    fake: TwilioStandIn
    app: TwimlAppServer

    def url(self, path: str) -> str:
        """Return the app's absolute URL for `path`."""
        return self.app.url + path


@asynccontextmanager
async def stand_in_rig() -> AsyncIterator[Rig]:
    """Run a stand-in owning our number, whose voice URL and status callback are on a TwiML app."""
    async with twiml_app(TOKEN) as app, serve_stand_in(TOKEN, seed=7, start=START) as fake:
        fake.own(OURS, app.url + "/voice", status_callback=app.url + "/status")
        yield Rig(fake, app)


@asynccontextmanager
async def rest_client(fake: TwilioStandIn) -> AsyncIterator[Client]:
    """Point twilio-python's async client at the stand-in's REST API."""
    http = AsyncTwilioHttpClient()
    client = Client(fake.account.sid, TOKEN, http_client=http)
    client.api.base_url = fake.url
    try:
        yield client
    finally:
        await http.close()


async def raw_post(fake: TwilioStandIn, path: str, data: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
    """POST a form to the stand-in's REST API as it is written (repeated keys kept); return status and JSON."""
    url = f"{fake.url}/2010-04-01/Accounts/{fake.account.sid}/{path}"
    headers = {"Authorization": aiohttp.encode_basic_auth(fake.account.sid, TOKEN)}
    async with aiohttp.ClientSession() as session, session.post(url, data=data, headers=headers) as response:
        return response.status, await response.json()
