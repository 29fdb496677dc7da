"""`bridge demo --softphone`: the real softphone page on a simulated device, with calls that land in the sandbox.

Nothing here is mounted by `bridge serve`. The demo signs in as Zendesk would (a JWT signed with a key it
makes up), serves the bridge's own page with the fake ZAFClient and Twilio.Device in place of Zendesk's and
Twilio's scripts, and turns each call the person answers or places into the webhooks Twilio would send.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.appkeys import CLOCK
from bridge.core.phones import is_e164
from bridge.devtools.demo import DEMO_AGENTS, RECORDINGS, LocalBridge, local_bridge
from bridge.softphone.identity import verify_zendesk_token
from bridge.softphone.routes import SOFTPHONE, render_page

DEMO_ROUTE = "/demo/softphone"
AGENT = DEMO_AGENTS["client:alice"]
INSTALLATION = 900001
AUDIENCE = f"https://demo.zendesk.com/api/v2/apps/installations/{INSTALLATION}.json"
FAKES = Path(__file__).parent / "fake_phone.js"
ZAF_SCRIPT = re.compile(r'<script src="https://static\.zdassets\.com/[^"]*"></script>')
_SID = re.compile(r"\b(CA|RE)[0-9a-f]{32}\b")
# What the simulated device does on top of the fakes: ring once the phone is ready (and on demand), and tell
# the demo about every call answered or placed, so that Twilio's webhooks for it are replayed to the bridge.
DRIVER = """(function () {
  'use strict';
  var fake = window.__fake;
  function report(body) {
    return fetch('/demo/call', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                body: JSON.stringify(body)}).then(function (r) { return r.json(); })
      .then(function (result) {
        var note = document.getElementById('demo-note');
        note.textContent = result.text;
        return result;
      });
  }
  fake.onAccept = function (call) { report({kind: 'inbound', from: call.parameters.From}); };
  fake.onConnect = function (params) {
    report({kind: 'outbound', to: params.To, ticket: params.TicketId || null}).then(function () {
      fake.answerRemote();
    });
  };
  function ring() { fake.ring('+14155550123'); }
  document.addEventListener('DOMContentLoaded', function () {
    var box = document.createElement('aside');
    box.setAttribute('aria-label', 'Demo controls');
    box.className = 'panel';
    box.innerHTML = '<h2>Demo</h2><p id="demo-note" role="status"></p>' +
      '<button type="button" id="demo-ring">Simulate an incoming call</button> ' +
      '<button type="button" id="demo-dialout">Click-to-call from ticket #1</button>';
    document.querySelector('main').appendChild(box);
    document.getElementById('demo-ring').addEventListener('click', ring);
    document.getElementById('demo-dialout').addEventListener('click', function () {
      fake.zaf.fire('softphone.dial', {number: '+14155550199', ticketId: 1, userId: 2002});
    });
    var wait = setInterval(function () {
      if (document.body.dataset.state === 'ready') { clearInterval(wait); ring(); }
    }, 250);
  });
})();
"""


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


def _outbound_edit(number: str, ticket: str | None) -> Callable[[dict[str, Any]], None]:
    """Point the recorded call out at the dialed number, with the ticket the page passed."""

    def edit(entry: dict[str, Any]) -> None:
        params = entry["params"]
        for field in ("To", "Called"):
            if params.get(field) == "+14155550199":
                params[field] = number
        if entry["path"] == "/twilio/voice/outgoing" and ticket:
            params["TicketId"] = ticket

    return edit


def mount(app: web.Application, bridge_ref: list[LocalBridge], key: rsa.RSAPrivateKey, tmp: Path) -> None:
    """Add the demo's routes to the bridge app (before it starts): the page, the fakes and the call replays."""

    async def page(request: web.Request) -> web.Response:
        now = request.app[CLOCK]()
        claims = {"iss": "demo.zendesk.com", "aud": AUDIENCE, "sub": f"https://demo.zendesk.com/api/v2/users/{AGENT}.json",
                  "iat": int(now.timestamp()), "exp": int(now.timestamp()) + 300}  # fmt: skip
        # As Zendesk would sign in: the bridge's own verification, then the bridge's own page.
        softphone = request.app[SOFTPHONE]
        assert softphone.public_key is not None
        token = jwt.encode(claims, key, algorithm="RS256")
        agent = verify_zendesk_token(token, softphone.public_key, audience=AUDIENCE, issuer="demo.zendesk.com", now=now)
        response = render_page(softphone, agent, now)
        scripts = '<script src="/demo/fake_phone.js"></script><script src="/demo/driver.js"></script>'
        body = ZAF_SCRIPT.sub(scripts, response.text or "")
        return web.Response(text=body, content_type="text/html", headers={
            k: v for k, v in response.headers.items() if k.lower() != "content-type"})  # fmt: skip

    async def fakes(request: web.Request) -> web.Response:
        return web.Response(text=FAKES.read_text(), content_type="text/javascript")

    async def driver(request: web.Request) -> web.Response:
        return web.Response(text=DRIVER, content_type="text/javascript")

    async def call(request: web.Request) -> web.Response:
        body = await request.json()
        bridge = bridge_ref[0]
        ticket = None
        if body.get("kind") == "outbound":
            number = str(body.get("to") or "")
            if not is_e164(number):
                return web.json_response({"text": f"{number!r} is not an E.164 number: Twilio would refuse it"})
            ticket = str(body["ticket"]) if body.get("ticket") else None
            path = fresh_call("outbound_answered", tmp, _outbound_edit(number, ticket))
        else:
            path = fresh_call("inbound_answered", tmp)
        call_sid = json.loads(path.read_text().splitlines()[0])["params"]["CallSid"]
        await bridge.replay([path])
        await bridge.settle_calls()
        own = [t["id"] for t in bridge.sandbox.list_tickets() if t["external_id"] == call_sid]
        # A call out logged on an open ticket has no ticket of its own: it is on the one the page named.
        where = f"ticket #{own[0]}" if own else f"ticket #{ticket}"
        text = f"Twilio's webhooks for {call_sid} were replayed: the call is on {where} in the sandbox."
        return web.json_response({"text": text, "call_sid": call_sid})

    app.router.add_get(DEMO_ROUTE, page)
    app.router.add_get("/demo/fake_phone.js", fakes)
    app.router.add_get("/demo/driver.js", driver)
    app.router.add_post("/demo/call", call)


async def run_softphone_demo(out: TextIO, stop: asyncio.Event | None = None) -> int:
    """Run the sandbox and the bridge with the softphone on, print the page's URL, and serve until stopped."""
    key, pem = _new_key()
    with tempfile.TemporaryDirectory(prefix="bridge-softphone-demo-") as tmp:
        refs: list[LocalBridge] = []
        settings: dict[str, Any] = {
            "twilio_account_sid": "AC" + "d" * 32,
            "twilio_api_key_sid": "SK" + "d" * 32,
            "twilio_api_key_secret": secrets.token_hex(32),
            "twilio_twiml_app_sid": "AP" + "d" * 32,
            "zendesk_app_audience": AUDIENCE,
            "zendesk_app_public_key": pem,
        }
        async with local_bridge(Path(tmp) / "bridge.db", setup=lambda app: mount(app, refs, key, Path(tmp)),
                                **settings) as bridge:  # fmt: skip
            refs.append(bridge)
            body = {"ticket": {"via_id": 45, "subject": "Printer on fire", "comment": {"body": "Please call me back"},
                               "requester_id": 2002, "status": "open"}}  # fmt: skip
            bridge.sandbox.create_voice_ticket(body)
            print(f"Softphone demo: the sandbox Zendesk at {bridge.zendesk_url}, the bridge at {bridge.url}", file=out)
            print(f"Open {bridge.url}{DEMO_ROUTE} in a browser: the phone of client:alice (Zendesk agent {AGENT}).",
                  file=out)  # fmt: skip
            print("It rings once it is ready; answer it, or dial out (ticket #1 is open to log a call on).", file=out)
            print(f"Tickets as Zendesk holds them: {bridge.zendesk_url}/sandbox/state   (Ctrl-C to stop)", file=out,
                  flush=True)  # fmt: skip
            await (stop or asyncio.Event()).wait()
    return 0
