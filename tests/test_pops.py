"""Screen-pops while the phone rings: pops first, a 429 pauses everyone, deadlines, and catching up after an outage."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bridge.core.actions import DisplayUser
from bridge.devtools.demo import LocalBridge, local_bridge
from bridge.devtools.sandbox import FaultRule
from bridge.resources import WORKER
from bridge.store import DONE, DROPPED
from bridge.zendesk.limiter import Limiter
from bridge.zendesk.outbox import RetryPolicy
from tests.conftest import BridgeFactory, ManualClock, call_outcome, eventually, parent_sid, recording, voice_comments

SEARCH = "/api/v2/search"
TICKETS = "/api/v2/channels/voice/tickets"


class Steady:
    """A monotonic count the test moves by hand (the limiter's clock)."""

    def __init__(self) -> None:
        """Start at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """Return the count."""
        return self.now


class Patient(RetryPolicy):
    """A retry policy whose every backoff is ten minutes, the worst an outage's jitter can draw."""

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Wait the cap."""
        return 600.0


def ringing_only(tmp_path: Path, lines: int = 5) -> Path:
    """Write the start of inbound_two_agents: the call arrives and both agents' phones ring, nothing more."""
    path = tmp_path / "ringing.jsonl"
    path.write_text("\n".join(recording("inbound_two_agents").read_text().splitlines()[:lines]) + "\n")
    return path


def requests_to(bridge: LocalBridge, prefix: str) -> list[dict[str, object]]:
    """Return the sandbox's log of requests under `prefix`."""
    return [r for r in bridge.sandbox.snapshot()["requests"] if str(r["path"]).startswith(prefix)]


async def test_a_429_pauses_every_claim_until_its_retry_after(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """After one 429 nothing else is claimed, not even another call's look-up, until Retry-After has passed."""
    steady, clock = Steady(), ManualClock()
    async with make_bridge(clock=clock, limiter=Limiter(400, clock=steady, tick=0.01)) as bridge:
        worker = bridge.app[WORKER]
        bridge.sandbox.add_faults([FaultRule(method="GET", path_prefix=SEARCH, kind="429", retry_after=30)])
        assert (await bridge.replay([ringing_only(tmp_path)])).ok
        await eventually(lambda: [r["status"] for r in requests_to(bridge, SEARCH)] == [429])
        await eventually(lambda: worker.held > 0)
        sent = len(requests_to(bridge, "/api/v2/"))  # the look-up's reads, the last of them the 429
        assert (await bridge.replay([recording("inbound_unknown_caller")])).ok  # another caller, claimable now
        held = worker.held
        await eventually(lambda: worker.held > held)  # the loop looked again with the new call queued
        assert len(requests_to(bridge, "/api/v2/")) == sent  # nothing was claimed or sent since the 429
        pending = await bridge.store.list_actions(["pending"], limit=100)
        assert {row.attempts for row in pending if row.kind == "find_caller"} == {0, 1}
        steady.now = 31.0
        clock.advance(31)
        worker.wake()
        await bridge.settle()
        assert len({str(r["query"]) for r in requests_to(bridge, SEARCH)}) == 2


async def test_a_pop_past_its_deadline_is_dropped(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """A pop held up beyond POP_DEADLINE_SECONDS is dropped with its reason and counted, never sent."""
    clock = ManualClock()
    async with make_bridge(clock=clock, pop_deadline_seconds=30) as bridge:
        # Three: the client repeats a failed read twice itself. With one, the look-up succeeded 0.1 s later
        # and the pops went out, unless this test looked within that 0.1 s (it did not, on a loaded machine).
        bridge.sandbox.add_faults([FaultRule(method="GET", path_prefix=SEARCH, kind="503", times=3)])
        assert (await bridge.replay([ringing_only(tmp_path)])).ok
        await eventually(lambda: [r["status"] for r in requests_to(bridge, SEARCH)] == [503] * 3)
        clock.advance(31)
        bridge.app[WORKER].wake()
        await bridge.settle()
        rows = await bridge.store.list_actions([DONE, DROPPED], limit=100)
        pops = [row for row in rows if row.kind == "display_user"]
        assert len(pops) == 2
        assert all(row.status == DROPPED and "deadline" in (row.last_error or "") for row in pops)
        assert bridge.sandbox.snapshot()["displays"] == []
        async with aiohttp.ClientSession() as session, session.get(bridge.url + "/metrics") as response:
            text = await response.text()
        assert 'bridge_actions_total{kind="display_user",outcome="expired"} 2.0' in text


async def test_pops_answered_elsewhere_are_cancelled(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """The pop of the agent who did not answer, still waiting at the answer, is dropped; the answerer's lands."""
    async with make_bridge() as bridge:
        bridge.sandbox.add_faults([FaultRule(method="GET", path_prefix=SEARCH, kind="503", times=10_000)])
        # Both phones ring, one agent answers, the other leg is cancelled, while the look-up keeps failing.
        assert (await bridge.replay([ringing_only(tmp_path, lines=7)])).ok
        bridge.sandbox.clear_faults()
        await bridge.settle()
        rows = await bridge.store.list_actions([DONE, DROPPED], limit=100)
        pops = {row.status: row for row in rows if row.kind == "display_user"}
        assert set(pops) == {DONE, DROPPED}
        assert pops[DROPPED].last_error == "no longer needed"
        landed = [pop["agent_id"] for pop in bridge.sandbox.snapshot()["displays"] if pop["kind"] == "user"]
        delivered = pops[DONE].action
        assert isinstance(delivered, DisplayUser)
        assert landed == [delivered.agent_id]


async def test_after_an_outage_waiting_actions_go_out_without_their_backoff(make_bridge: BridgeFactory) -> None:
    """A create refused by a failing Zendesk waits ten minutes by its backoff, but goes as soon as Zendesk answers."""
    async with make_bridge(retry=Patient()) as bridge:
        bridge.sandbox.add_faults([FaultRule(method="POST", path_prefix=TICKETS, kind="503")])
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        await bridge.settle()  # within the default 30 s: far less than the 600 s backoff
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        assert len(voice_comments(ticket)) == 1
        assert not bridge.app[WORKER].failing


async def test_a_restart_probes_zendesk_and_sends_the_waiting_backlog_at_once(tmp_path: Path) -> None:
    """Actions left waiting ten minutes by an outage go out soon after a restart once the probe sees Zendesk answer."""
    database, path = tmp_path / "bridge.db", recording("inbound_answered")
    async with local_bridge(database, retry=Patient()) as bridge:
        bridge.sandbox.add_faults([FaultRule(method="POST", path_prefix=TICKETS, kind="503", times=10_000)])
        assert (await bridge.replay([path])).ok
        await eventually(lambda: any(r["status"] == 503 for r in requests_to(bridge, TICKETS)))
    async with local_bridge(database, retry=Patient()) as restarted:
        await restarted.settle()  # within the default 30 s: far less than the 600 s backoff
        (ticket,) = call_outcome(restarted.sandbox.snapshot(), parent_sid(path))
        assert len(voice_comments(ticket)) == 1
        assert any(r["path"] == "/api/v2/users/me.json" for r in requests_to(restarted, "/api/v2/users/me"))


async def test_the_limiter_counts_exactly_the_requests_zendesk_saw(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """Tokens are taken per request: pops that send nothing take none, a look-up of three requests takes three."""
    limiter = Limiter(400)
    async with make_bridge(retry=Patient(), limiter=limiter) as bridge:
        # A look-up that fails and is then given up on: both pops go without sending anything.
        bridge.sandbox.add_faults([FaultRule(method="GET", path_prefix=SEARCH, kind="503", times=10_000)])
        assert (await bridge.replay([ringing_only(tmp_path)])).ok

        async def failed_look_up() -> list[int]:
            rows = await bridge.store.list_actions(["pending"], limit=100)
            return [row.id for row in rows if row.kind == "find_caller" and row.last_error]

        await eventually(failed_look_up)
        bridge.sandbox.clear_faults()
        for action_id in await failed_look_up():
            assert await bridge.store.drop(action_id, datetime.now(UTC), "given up by hand")
        bridge.app[WORKER].wake()
        await bridge.settle()
        pops = [row for row in await bridge.store.list_actions([DROPPED], limit=100) if row.kind == "display_user"]
        assert [row.last_error for row in pops] == ["no Zendesk user for the caller"] * 2
        # A new caller (external id, search, create), pops, a ticket, a voice comment; a voicemail's timers.
        assert (await bridge.replay([recording("inbound_unknown_caller"), recording("voicemail_transcribed")])).ok
        await bridge.settle()
        assert limiter.requests == len(requests_to(bridge, "/api/")) > 0
        assert limiter.in_flight == 0
