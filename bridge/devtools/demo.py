"""`bridge demo`: the sandbox Zendesk and the real bridge on free local ports, fed the bundled recordings."""

from __future__ import annotations

import asyncio
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import web

from bridge.app import create_app
from bridge.appkeys import CLOCK, INGEST, STORE
from bridge.core.clock import Clock, system_clock
from bridge.core.events import CallEvent
from bridge.devtools.fake_twilio import TwilioStandIn
from bridge.devtools.replay import Confirmed, ReplayReport, replay_files
from bridge.devtools.sandbox import INTEGRATION_USER_ID, SANDBOX, Sandbox, SandboxConfig, create_sandbox_app
from bridge.devtools.twilio_media import FakeTwilio, create_fake_twilio_apps
from bridge.devtools.waiting import wait_until
from bridge.ops.connections import open_store
from bridge.ops.reconcile import Reconciler
from bridge.ops.settings import Settings
from bridge.resources import RECONCILER
from bridge.store import Store
from bridge.zendesk.limiter import Limiter
from bridge.zendesk.outbox import RetryPolicy
from schemas.zendesk import VIA_NAMES

RECORDINGS = Path(__file__).parent / "recordings"
DEMO_AGENTS = {"client:alice": 1001, "client:bob": 1002, "+16505550111": 1003}
DEMO_NUMBER = "+16505550100"
DEMO_APP_ID = 1003048  # the installed app call records belong to under ZENDESK_API=calls


def _listening_socket() -> socket.socket:
    """Bind a loopback socket on a free port (so the URL is known before the server starts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start an app on a free loopback port; return its runner and base URL."""
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    sock = _listening_socket()
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class LocalBridge:
    """A running bridge wired to a running sandbox."""

    url: str
    zendesk_url: str
    auth_token: str
    app: web.Application
    sandbox: Sandbox
    settings: Settings
    twilio: FakeTwilio
    stand_in: TwilioStandIn | None = None  # local_bridge(stand_in=True): Twilio played by the stand-in

    async def replay(self, paths: Sequence[Path], **options: Any) -> ReplayReport:
        """Replay recordings against this bridge (a control's confirmation straight into its ingest)."""
        return await replay_files(paths, base_url=self.url, auth_token=self.auth_token, confirm=self.confirm, **options)

    async def confirm(self, confirmed: Confirmed) -> None:
        """Ingest a control's confirmation as the softphone's route did, under its own dedupe key."""
        await self.app[INGEST]([confirmed.key], CallEvent.model_validate(confirmed.event))

    @property
    def store(self) -> Store:
        """Return the bridge's store."""
        return self.app[STORE]

    @property
    def reconciler(self) -> Reconciler:
        """Return the bridge's reconciler."""
        return self.app[RECONCILER]

    async def settle_calls(self, within: float = 30.0) -> None:
        """Wait until every call reached its final outcome and the outbox is empty."""

        async def all_finished() -> bool:
            return not await self.store.stale_calls(self.clock() + timedelta(hours=1), limit=1)

        await wait_until(all_finished, within=within, what="every call reaching its outcome")
        await self.settle(within)

    async def settle(self, within: float = 30.0) -> None:
        """Wait until the outbox holds nothing pending, or raise TimeoutError."""

        async def empty() -> bool:
            return (await self.store.stats(self.clock())).pending == 0

        await wait_until(empty, within=within, what="an empty outbox")

    @property
    def clock(self) -> Clock:
        """Return the bridge's clock."""
        return self.app[CLOCK]


@asynccontextmanager
async def local_bridge(
    database: Path,
    *,
    sandbox_config: SandboxConfig | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = system_clock,
    setup: Callable[[web.Application], None] | None = None,
    limiter: Limiter | None = None,
    stand_in: bool = False,
    virtual_time: bool = False,
    stand_in_seed: int | None = None,
    stand_in_start: datetime | None = None,
    store: Callable[[Settings], Awaitable[Store]] = open_store,
    **overrides: Any,
) -> AsyncIterator[LocalBridge]:
    """Run the sandbox and the bridge (SQLite at `database`) on loopback until the block ends.

    With `stand_in`, Twilio is the stand-in of bridge.devtools.fake_twilio: TWILIO_API_URL and
    TWILIO_ACCOUNT_SID point at it, and it owns the demo number with its voice URL and status callback on
    this bridge, so a test places calls with `bridge.stand_in.incoming(...)`; with `virtual_time` too, the
    bridge reads the stand-in's clock, so `stand_in.advance(300)` runs out a queue's wait at once (its sids
    follow `stand_in_seed`, its clock starts at `stand_in_start`: a recording made twice is the same). `store`
    opens the bridge's store (a test's fake may wrap the real one). Agents' availability in Zendesk is read
    only when asked (`zendesk_availability_seconds=…`, with `SandboxConfig(token_role="admin")`): its
    requests would otherwise mix with the ones a test counts or faults.
    """
    config = sandbox_config or SandboxConfig()
    sandbox_app = create_sandbox_app(config)
    sandbox_runner, zendesk_url = await serve(sandbox_app)
    sock = _listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    token = overrides.pop("twilio_auth_token", None) or secrets.token_hex(16)
    # Twilio's media API, as an account with "Enforce HTTP Auth on Media URLs" on has it.
    fake = TwilioStandIn(token, seed=stand_in_seed, start=stand_in_start) if stand_in else None
    if fake is not None and virtual_time:
        clock = fake.clock
    twilio = fake.media if fake else FakeTwilio(token)
    twilio_api, twilio_media = fake.apps_to_serve() if fake else create_fake_twilio_apps(twilio)
    twilio_runners = [await serve(twilio_media), await serve(twilio_api)]
    twilio.media_base = twilio_runners[0][1]
    if fake is not None:
        fake.url = twilio_runners[1][1]
        overrides.setdefault("twilio_account_sid", fake.account.sid)
        fake.own(DEMO_NUMBER, f"{url}/twilio/voice/incoming", status_callback=f"{url}/twilio/voice/status")
    values: dict[str, Any] = {
        "zendesk_availability_seconds": 0,
        "public_url": url,
        "twilio_auth_token": token,
        "zendesk_url": zendesk_url,
        "zendesk_email": config.email,
        "zendesk_api_token": config.api_token,
        "database_url": f"sqlite:///{database}",
        "agents": dict(DEMO_AGENTS),
        "caller_id": DEMO_NUMBER,
        "twilio_api_url": twilio_runners[1][1],
        **overrides,
    }
    settings = Settings(**values)
    app = create_app(settings, retry=retry, clock=clock, limiter=limiter, store=store)
    if setup is not None:
        setup(app)  # more routes, before the app freezes at start-up (the softphone demo's)
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield LocalBridge(url, zendesk_url, token, app, sandbox_app[SANDBOX], settings, twilio, fake)
    finally:
        if fake is not None:
            await fake.close()
        await runner.cleanup()
        await sandbox_runner.cleanup()
        for twilio_runner, _ in twilio_runners:
            await twilio_runner.cleanup()


def render(snapshot: dict[str, Any]) -> str:
    """Describe the sandbox's tickets and screen-pops for a person."""
    users = {user["id"]: user for user in snapshot["users"]}

    def who(user_id: Any) -> str:
        user = users.get(user_id)
        return f"{user['name']} ({user_id})" if user else "(none)"

    records = {int(key): record for key, record in snapshot.get("calls", {}).items()}
    lines = [f"Zendesk (sandbox) now holds {len(snapshot['tickets'])} voice tickets:", ""]
    for ticket in snapshot["tickets"]:
        via = ticket["via_id"]
        lines.append(f"  Ticket #{ticket['id']}  via {via} ({VIA_NAMES.get(via, '?')})  {ticket['subject']!r}")
        lines.append(f"    requester {who(ticket['requester_id'])}, assignee {who(ticket['assignee_id'])}")
        if ticket.get("tags"):
            lines.append(f"    tags: {', '.join(ticket['tags'])}")
        for comment in ticket["comments"]:
            if comment["type"] == "VoiceComment":
                data = comment["data"]
                lines.append(
                    f"    voice comment: {data.get('from')} -> {data.get('to')}, {data.get('call_duration')} s"
                    f" from {data.get('started_at')}, answered by {who(data.get('answered_by_id'))}"
                )
                lines.append(f"      recording {data.get('recording_url') or '(none)'}")
                if data.get("location"):
                    lines.append(f"      location {data['location']}")
                if data.get("transcription_text"):
                    lines.append(f"      transcription: {data['transcription_text']!r}")
            elif comment["type"] == "TpeVoiceComment":
                record = records.get(comment["data"].get("call_id"))
                lines.append(f"    TPE voice comment {comment['data'].get('title')!r}, showing:")
                lines.extend(_record_lines(record, who, "      ") if record else ["      (a record that is gone)"])
            else:
                visibility = "public" if comment.get("public") else "private"
                lines.append(f"    {visibility} comment: {comment['body']}")
        shown = {c["data"].get("call_id") for c in ticket["comments"] if c["type"] == "TpeVoiceComment"}
        for record in records.values():
            if record.get("ticket_id") == ticket["id"] and record["id"] not in shown:
                # A voicemail's: linked without a comment, the ticket's voice comment already plays the message.
                lines.append("    linked call record, no comment of its own:")
                lines.extend(_record_lines(record, who, "      "))
        lines.append("")
    alone = [record for record in records.values() if record.get("ticket_id") is None]
    if records:
        lines.append(f"Call records: {len(records)}, of which {len(alone)} without a ticket:")
        for record in alone:
            lines.extend(_record_lines(record, who, "  "))
        lines.append("")
    lines.append("Screen-pops per agent:")
    by_agent: dict[int, list[str]] = {}
    for pop in snapshot["displays"]:
        target = f"user {who(pop['id'])}" if pop["kind"] == "user" else f"ticket #{pop['id']}"
        by_agent.setdefault(pop["agent_id"], []).append(target)
    for agent_id in sorted(by_agent):
        lines.append(f"  {who(agent_id)}: {'; '.join(by_agent[agent_id])}")
    created = [user for user in snapshot["users"] if user["id"] >= 3001]
    if created:
        lines.append("")
        lines.append("Callers created as end-users: " + ", ".join(f"{u['name']} ({u['id']})" for u in created))
    return "\n".join(lines)


def calls_mode(**config: Any) -> dict[str, Any]:
    """Return `local_bridge`'s settings for ZENDESK_API=calls, with a sandbox account that has the app installed."""
    installed = SandboxConfig(app_public_keys=((DEMO_APP_ID, "unused"),), **config)  # its key is never used here
    return {"zendesk_api": "calls", "zendesk_app_id": DEMO_APP_ID, "sandbox_config": installed}


def _record_lines(record: dict[str, Any], who: Callable[[Any], str], indent: str) -> list[str]:
    """Describe one TPE call record for a person."""
    answered = f", answered by {who(record['agent_id'])}" if record.get("agent_id") else ""
    waited = f" after {record['time_to_answer']} s" if record.get("time_to_answer") is not None else ""
    talk = f", talked {record['talk_time']} s" if record.get("talk_time") is not None else ""
    lines = [
        f"{indent}call record #{record['id']}: {record['direction']} {record['from_line']} -> {record['to_line']}, "
        f"{record.get('completion_status') or 'in progress'}{answered}{waited}{talk} of {record.get('duration')} s"
        f"{', voicemail' if record.get('voicemail') else ''}",
    ]
    if record.get("recording_url"):
        lines.append(f"{indent}  recording {record['recording_url']}")
    if record.get("transcript"):
        lines.append(f"{indent}  transcript: {record['transcript']!r}")
    return lines


async def play_links(snapshot: dict[str, Any]) -> list[str]:
    """Fetch every recording link (voice comments', call records') as a browser would, with no credentials."""
    links: dict[str, str] = {}
    for ticket in snapshot["tickets"]:
        for comment in ticket["comments"]:
            link = comment.get("data", {}).get("recording_url") if comment["type"] == "VoiceComment" else None
            if link:
                links.setdefault(link, f"ticket #{ticket['id']}")
    for record in snapshot.get("calls", {}).values():
        if record.get("recording_url"):
            links.setdefault(record["recording_url"], f"call record #{record['id']}")
    lines = []
    async with aiohttp.ClientSession() as session:
        for link, holder in links.items():
            async with session.get(link) as response:
                body = await response.read()
                kind = response.headers.get("Content-Type", "?")
            lines.append(f"  {holder}: HTTP {response.status}, {kind}, {len(body)} bytes  {link}")
    return lines


async def run_demo(
    out: TextIO, recordings: Sequence[Path] | None = None, *, hold: bool = False, api: str = "tickets"
) -> int:
    """Run the whole demo and print what Zendesk received; return an exit code."""
    paths = list(recordings) if recordings else sorted(RECORDINGS.glob("*.jsonl"))
    mode = calls_mode() if api == "calls" else {}
    with tempfile.TemporaryDirectory(prefix="bridge-demo-") as tmp:
        async with local_bridge(Path(tmp) / "bridge.db", **mode) as bridge:
            print(f"Sandbox Zendesk at {bridge.zendesk_url}; bridge at {bridge.url}; ZENDESK_API={api}", file=out)
            config = bridge.sandbox.config
            print(
                f"The bridge's token is an {bridge.sandbox.users[INTEGRATION_USER_ID]['role']}'s (least privilege); "
                f"search lags writes by {config.search_index_delay:g} s, as on Zendesk",
                file=out,
            )
            print(f"Replaying {len(paths)} recorded calls: {', '.join(p.name for p in paths)}", file=out)
            report = await bridge.replay(paths)
            print(f"Sent {report.sent} signed webhooks; answers: {dict(sorted(report.statuses.items()))}", file=out)
            if not report.ok:
                print("Some webhooks were refused:\n  " + "\n  ".join(report.failures), file=out)
                return 1
            await bridge.settle()
            print("Outbox empty: every action was delivered.\n", file=out)
            snapshot = bridge.sandbox.snapshot()
            print(render(snapshot), file=out)
            played = await play_links(snapshot)
            print(
                "\nRecording links, just played with no credentials (the bridge streams them from a fake Twilio",
                file=out,
            )
            print(
                "that demands Basic auth, as with Enforce HTTP Auth on Media URLs; the audio is 3 s of silence):",
                file=out,
            )
            print("\n".join(played) if played else "  (none)", file=out)
            if recordings is None:
                from bridge.devtools.queue_demo import run_queue_demo  # it builds on this module

                print("\nThe queue, with Twilio played by the stand-in on virtual time:", file=out)
                await run_queue_demo(out)
                from bridge.devtools.lines_demo import run_lines_demo

                print(
                    "\nTwo lines, with the stand-in again: Support answers with a menu, Sales is closed today:",
                    file=out,
                )
                await run_lines_demo(out)
                from bridge.devtools.callback_demo import run_callback_demo

                print("\nA callback, with the stand-in again: a waiting caller keeps their place and is called back:",
                      file=out)  # fmt: skip
                await run_callback_demo(out)
            if hold:
                print("\nServing these links until Ctrl-C.", file=out, flush=True)
                await asyncio.Event().wait()
    return 0
