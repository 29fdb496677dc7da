"""The `bridge` command: serve, demo, replay, sandbox, migrate, outbox, agents, queue, lines, doctor, zendesk-app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from bridge.ops import logs
from bridge.ops.settings import ConfigError, Settings, load_settings, mask_url

if TYPE_CHECKING:
    from bridge.core.lines import Hours


def _serve(args: argparse.Namespace) -> int:
    """Run the bridge until SIGTERM/SIGINT."""
    from bridge.app import create_app

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    app = create_app(settings)
    # Heroku allows 30 s after SIGTERM and Fly its kill_timeout; finish within 10 s: handlers get 3 s
    # (they only write to the database), then the outbox worker up to 5 s for its current delivery.
    web.run_app(app, host=args.host, port=args.port or settings.port, shutdown_timeout=3.0, print=None)
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Run the demo and print its summary."""
    from bridge.devtools.demo import run_demo

    logs.configure("info" if args.verbose else "error", "text")
    recordings = [Path(p) for p in args.recordings] or None
    with contextlib.suppress(KeyboardInterrupt):
        if args.softphone:
            from bridge.devtools.softphone_demo import run_softphone_demo

            return asyncio.run(run_softphone_demo(sys.stdout, api=args.api))
        return asyncio.run(run_demo(sys.stdout, recordings, hold=args.serve, api=args.api))
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    """Serve the Zendesk emulator alone."""
    from bridge.devtools.sandbox import SandboxConfig, create_sandbox_app

    logs.configure("info", "text")
    config = SandboxConfig(
        email=args.email,
        api_token=args.token,
        rate_limit_per_minute=args.rate_limit,
        rate_window_seconds=args.rate_window,
        token_role=args.role,
        search_index_delay=args.search_delay,
        latency_seconds=args.latency,
        # An installed app, as ZENDESK_API=calls needs one (ZENDESK_APP_ID); its key is a placeholder.
        app_public_keys=tuple((app_id, "unused") for app_id in args.app_id),
    )
    print(f"Sandbox Zendesk on http://{args.host}:{args.port} (email {args.email}, {args.role} token {args.token})")
    web.run_app(create_sandbox_app(config), host=args.host, port=args.port, print=None)
    return 0


def _replay(args: argparse.Namespace) -> int:
    """Replay recordings against a running bridge."""
    from bridge.devtools.replay import RecordingError, replay_files, summarize

    token = args.auth_token
    if not token:
        settings = load_settings()
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    if not token:
        raise ConfigError("give --auth-token or set TWILIO_AUTH_TOKEN: requests must be signed with it")
    try:
        report = asyncio.run(
            replay_files(
                [Path(p) for p in args.files],
                base_url=args.url,
                auth_token=token,
                repeat=args.repeat,
                shuffle=args.shuffle,
                seed=args.seed,
                concurrency=args.concurrency,
            )
        )
    except (RecordingError, OSError) as exc:
        print(f"bridge replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summarize(report), indent=2))
    return 0 if report.ok else 1


def _migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the database schema."""
    from bridge.ops.connections import open_store

    settings = load_settings()

    async def run() -> int:
        store = await open_store(settings)
        try:
            return await store.schema_version()
        finally:
            await store.close()

    print(f"database {mask_url(settings.database_url)} is at schema version {asyncio.run(run())}")
    return 0


def _outbox(args: argparse.Namespace) -> int:
    """List, revive or drop outbox actions."""
    from bridge.core.clock import system_clock
    from bridge.core.phones import mask_text
    from bridge.ops.connections import open_store
    from bridge.store import DEAD, DROPPED, PENDING

    settings = load_settings()

    async def run() -> int:
        store = await open_store(settings)
        now = system_clock()
        try:
            if args.command == "retry":
                ok = await store.revive(args.id, now)
                print(f"action {args.id} {'is pending again' if ok else 'is not dead or dropped'}")
                return 0 if ok else 1
            if args.command == "drop":
                ok = await store.drop(args.id, now, "dropped by an operator")
                print(f"action {args.id} {'dropped' if ok else 'is not pending or dead'}")
                return 0 if ok else 1
            statuses = [args.status] if args.status else [PENDING, DEAD]
            rows = await store.list_actions(statuses if args.status != "all" else [PENDING, DEAD, DROPPED, "done"])
            stats = await store.stats(now)
            print(f"{stats.pending} pending, {stats.dead} dead")
            for row in rows:
                due = "now" if row.next_at <= now else f"in {(row.next_at - now).total_seconds():.0f} s"
                error = mask_text(row.last_error or "")
                print(
                    f"#{row.id:<6} {row.status:<8} {row.kind:<18} call {row.call_sid}  attempts {row.attempts}"
                    f"  due {due}  {error[:200]}"
                )
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


def _agents(args: argparse.Namespace) -> int:
    """List agents with their status, or set one's chosen status (on the database the settings name)."""
    from bridge.core import presence
    from bridge.core.clock import system_clock
    from bridge.dispatch import Desk, Routes, UnknownAgent
    from bridge.ops.connections import open_store

    settings = load_settings()

    async def run() -> int:
        store = await open_store(settings)
        desk = Desk(store, Routes(settings.routing_policy(), dict(settings.agents)), system_clock)
        policy = settings.routing_policy().presence
        try:
            if args.command == "set":
                try:
                    agent = await desk.choose(args.agent, args.status, by="command line")
                except (UnknownAgent, ValueError) as exc:
                    print(f"bridge agents: {exc}", file=sys.stderr)
                    return 2
                print(f"{agent.identity} is {presence.status(agent, system_clock(), policy)}")
                return 0
            now = system_clock()
            agents = await desk.agents()
            print(f"{len(agents)} agents ({settings.routing}); calls today are UTC days")
            for agent in agents:
                since = presence.since(agent, now, policy)
                ago = f"{_ago(now - since)}" if since is not None else "-"
                why = agent.reason or (f"{agent.zendesk} in Zendesk" if presence.held_by_zendesk(agent) else None)
                reason = f"  ({why})" if why else ""
                print(
                    f"{agent.identity:<32} {agent.zendesk_id:<12} {presence.status(agent, now, policy):<10} "
                    f"since {ago:<10} calls today {presence.calls_today(agent, now)}{reason}"
                )
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


def _queue(args: argparse.Namespace) -> int:
    """List the callers waiting and the callbacks kept in line, or cancel a callback (bridge/ops/queue_admin.py)."""
    from bridge.ops import queue_admin

    settings = load_settings()
    if args.command == "cancel":
        try:
            print(asyncio.run(queue_admin.cancel(settings, args.call)))
        except queue_admin.NoSuchCallback as exc:
            print(f"bridge queue: {exc}", file=sys.stderr)
            return 2
        return 0
    for line in asyncio.run(queue_admin.listing(settings)):
        print(line)
    return 0


def _lines(args: argparse.Namespace) -> int:
    """Print each line: its number, where its calls go, its agents and queue, and whether it is open now."""
    from bridge.core.clock import system_clock

    settings = load_settings()
    now = system_clock()
    schedules, problems = asyncio.run(_read_schedules(settings, now))
    print("\n".join(describe_lines(settings, now, schedules, problems)))
    return 0


async def _read_schedules(settings: Settings, now: datetime) -> tuple[dict[int, Hours], dict[int, str]]:
    """Read the Zendesk schedules the lines' hours name, as the bridge would; say why one could not be."""
    import aiohttp

    from bridge.ops.connections import authorization
    from bridge.zendesk.client import ZendeskClient
    from bridge.zendesk.schedules import read_schedules, schedule_ids

    ids = schedule_ids(settings.phone_lines)
    if not ids:
        return {}, {}
    if settings.zendesk_base_url is None:
        return {}, dict.fromkeys(ids, "Zendesk is not configured")
    async with aiohttp.ClientSession() as session:
        zendesk = ZendeskClient(session, settings.zendesk_base_url, authorization(settings), timeout=10)
        read, failed = await read_schedules(zendesk, ids, now.date())
    problems = dict(failed)
    problems |= {key: done.holidays_missing for key, done in read.items() if done.holidays_missing is not None}
    return {key: done.hours for key, done in read.items()}, problems


def describe_lines(
    settings: Settings,
    now: datetime,
    schedules: Mapping[int, Hours] | None = None,
    problems: Mapping[int, str] | None = None,
) -> list[str]:
    """Describe the lines for a person, each with whether it is open at `now` (by its Zendesk schedule, if read)."""
    from bridge.core.hours import opening

    lines = settings.phone_lines
    source = (
        "LINES" if settings.lines else f"LINES_FILE {settings.lines_file}" if settings.lines_file else
        "no LINES or LINES_FILE: one line made of the settings, answering every number"
    )  # fmt: skip
    out = [f"{len(lines.all)} line{'s' if len(lines.all) != 1 else ''} ({source}); now {now:%Y-%m-%d %H:%M} UTC"]
    for line in lines.all:
        state = opening(line.hours, now, schedules)
        shown = {True: "open", False: "closed", None: "open?"}[state.open]
        out.append(f"{line.label()}  {line.number or 'any number'}  {shown}: {state.why}")
        routing = line.routing or settings.routing_policy()
        queue = f"up to {routing.max_size} callers, {routing.max_wait:g} s" if routing.queue else "off"
        agents = ", ".join(line.agents if line.agents is not None else settings.agents) or "none"
        group = line.group_id or settings.zendesk_group_id
        brand = line.brand_id or settings.zendesk_brand_id
        out.append(f"  group {group or '-'}, brand {brand or '-'}; {routing.strategy} to {agents}")
        out.append(f"  queue {line.queue} ({queue}); calls out show {line.caller_id or settings.caller_id or '-'}")
        extras = [f"greeting {line.greeting!r}"] if line.greeting else []
        schedule = line.hours.schedule_id if line.hours is not None else None
        if schedule is not None and schedule in (problems or {}):
            extras.append(f"Zendesk schedule {schedule}: {(problems or {})[schedule]}")
        if line.hours is not None:
            extras.append(f"after hours: {line.after_hours}")
        if line.menu is not None:
            keys = ", ".join(f"{key} {target}" for key, target in line.menu.options.items())
            extras.append(f"menu: {keys} (else {line.menu.default or 'the line'} after {line.menu.timeout} s)")
        out.extend(f"  {extra}" for extra in extras)
    return out


def _ago(span: timedelta) -> str:
    """Say how long a span is, as a person reads it (`2m 05s`)."""
    seconds = max(0, int(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def _doctor(args: argparse.Namespace) -> int:
    """Check the configuration and print what to fix."""
    from bridge.ops.doctor import render, run_checks

    checks, settings = asyncio.run(run_checks())
    print(render(checks, settings))
    return 0 if all(check.ok for check in checks) else 1


def _zendesk_app(args: argparse.Namespace) -> int:
    """Write the softphone app's zip for PUBLIC_URL."""
    from bridge.softphone.zendesk_app import AppError, build

    settings = load_settings()
    try:
        data = build(settings.public_url)
    except AppError as exc:
        raise ConfigError(str(exc)) from exc
    out = Path(args.out)
    out.write_bytes(data)
    print(f"Wrote {out} ({len(data)} bytes): the softphone app for {settings.public_url}.")
    print("Upload it in Admin Center > Apps and integrations > Zendesk Support apps > Upload private app,")
    print("then set ZENDESK_APP_ID to the new app's id and run `bridge doctor` for ZENDESK_APP_AUDIENCE.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(prog="bridge", description="Twilio Voice -> Zendesk Talk Partner Edition")
    commands = parser.add_subparsers(dest="cmd", required=True)

    serve = commands.add_parser("serve", help="run the bridge (production)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser("demo", help="sandbox Zendesk + the real bridge + bundled recordings")
    demo.add_argument("recordings", nargs="*", help="recording files (default: the bundled ones)")
    demo.add_argument("--verbose", action="store_true", help="show the bridge's log")
    demo.add_argument(
        "--serve", action="store_true", help="keep serving (and the recording links playing) until Ctrl-C"
    )
    demo.add_argument(
        "--softphone", action="store_true", help="serve the softphone page on a simulated device until Ctrl-C"
    )
    demo.add_argument(
        "--api", choices=["tickets", "calls"], default="tickets", help="ZENDESK_API: also make TPE call records"
    )
    demo.set_defaults(func=_demo)

    replay = commands.add_parser("replay", help="send recorded webhooks, signed, to a bridge")
    replay.add_argument("files", nargs="+")
    replay.add_argument("--url", required=True, help="the bridge's base URL, as in PUBLIC_URL")
    replay.add_argument("--auth-token", help="Twilio auth token to sign with (default: $TWILIO_AUTH_TOKEN)")
    replay.add_argument("--shuffle", action="store_true", help="send the requests in random order")
    replay.add_argument("--repeat", type=int, default=1, help="send every request N times")
    replay.add_argument("--seed", type=int, default=None, help="seed for --shuffle")
    replay.add_argument("--concurrency", type=int, default=1)
    replay.set_defaults(func=_replay)

    sandbox = commands.add_parser("sandbox", help="run the Zendesk emulator alone")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8081)
    sandbox.add_argument("--email", default="bridge@example.com")
    sandbox.add_argument("--token", default="sandbox-token")
    sandbox.add_argument("--rate-limit", type=int, default=None, help="requests per window before 429")
    sandbox.add_argument("--rate-window", type=float, default=60.0, help="the rate limit's window in seconds")
    sandbox.add_argument("--role", choices=("agent", "admin"), default="agent", help="the token user's role")
    sandbox.add_argument("--search-delay", type=float, default=3.0, help="seconds before search sees a new record")
    sandbox.add_argument("--latency", type=float, default=0.0, help="seconds each API request takes to answer")
    sandbox.add_argument(
        "--app-id", type=int, action="append", default=[], help="an installed app's id (for ZENDESK_API=calls)"
    )
    sandbox.set_defaults(func=_sandbox)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(func=_migrate)

    outbox = commands.add_parser("outbox", help="inspect and act on queued Zendesk actions")
    outbox_commands = outbox.add_subparsers(dest="command")
    listing = outbox_commands.add_parser("list", help="pending and dead actions with their last error")
    listing.add_argument("--status", choices=["pending", "dead", "dropped", "done", "all"])
    retry = outbox_commands.add_parser("retry", help="make a dead or dropped action pending again")
    retry.add_argument("id", type=int)
    drop = outbox_commands.add_parser("drop", help="give up on an action")
    drop.add_argument("id", type=int)
    outbox.set_defaults(func=_outbox, command="list", status=None)

    agents = commands.add_parser("agents", help="list agents and their status, or set one's")
    agent_commands = agents.add_subparsers(dest="command")
    agent_commands.add_parser("list", help="every agent: identity, Zendesk id, status and since when, calls today")
    choose = agent_commands.add_parser("set", help="set an agent's status")
    choose.add_argument("agent", help="an identity from AGENTS (client:alice) or a Zendesk user id")
    choose.add_argument("status", choices=["available", "away", "offline"])
    agents.set_defaults(func=_agents, command="list")

    queue = commands.add_parser("queue", help="list the callers waiting and the callbacks in line, or cancel one")
    queue_commands = queue.add_subparsers(dest="command")
    queue_commands.add_parser("list", help="who waits, and whose callback is kept in line: place, masked number, wait")
    cancel = queue_commands.add_parser("cancel", help="cancel a callback request (a note says so on its ticket)")
    cancel.add_argument("call", help="the CallSid of the call that asked, as `bridge queue` shows it")
    queue.set_defaults(func=_queue, command="list")

    lines = commands.add_parser("lines", help="list the lines (LINES, LINES_FILE) and whether each is open now")
    lines.set_defaults(func=_lines)

    app = commands.add_parser("zendesk-app", help="write the softphone's Zendesk app as a zip to upload")
    app.add_argument("--out", default="zendesk-softphone.zip", help="where to write it (default: %(default)s)")
    app.set_defaults(func=_zendesk_app)

    doctor = commands.add_parser("doctor", help="check settings, Zendesk, agents, database and Twilio")
    doctor.set_defaults(func=_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `bridge` command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"bridge: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


__all__ = ["Settings", "build_parser", "main"]
