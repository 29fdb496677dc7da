"""The outbox against a failing sandbox: retries, Retry-After, dead letters, and no duplicate effects."""

from __future__ import annotations

import pytest

from bridge.appkeys import STORE
from bridge.devtools.sandbox import FaultRule, SandboxConfig
from bridge.store import DEAD, DROPPED
from bridge.zendesk.outbox import RetryPolicy
from tests.conftest import BridgeFactory, call_outcome, parent_sid, recording, voice_comments

TICKETS = "/api/v2/channels/voice/tickets"


@pytest.mark.parametrize("kind", ["500", "503", "429", "drop", "drop_after", "hang"])
@pytest.mark.parametrize(
    ("method", "prefix"),
    [("POST", TICKETS), ("PUT", "/api/v2/tickets"), ("POST", "/api/v2/users"), ("GET", "/api/v2/search")],
)
async def test_every_effect_survives_a_failure(make_bridge: BridgeFactory, kind: str, method: str, prefix: str) -> None:
    """Whatever Zendesk does to a create, comment, user or search, each effect lands exactly once."""
    async with make_bridge(zendesk_timeout_seconds=0.5) as bridge:
        bridge.sandbox.add_faults([FaultRule(method=method, path_prefix=prefix, kind=kind, times=2, retry_after=0)])
        path = recording("inbound_unknown_caller")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert len(voice_comments(ticket)) == 1
        assert len([u for u in snapshot["users"] if u["phone"] == "+14155550142"]) == 1
        assert ticket["requester_id"] >= 3001


@pytest.mark.parametrize("kind", ["500", "503", "429", "drop", "drop_after"])
async def test_ticket_create_survives_a_failure(make_bridge: BridgeFactory, kind: str) -> None:
    """Transient failures on create are retried; a create that happened but went unheard is found, not redone."""
    async with make_bridge() as bridge:
        bridge.sandbox.add_faults([FaultRule(method="POST", path_prefix=TICKETS, kind=kind, times=2, retry_after=0)])
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert len(voice_comments(ticket)) == 1
        assert [r["status"] for r in snapshot["requests"] if r["path"].startswith(TICKETS)][-1] in (0, 201)


async def test_hung_request_times_out_and_is_retried(make_bridge: BridgeFactory) -> None:
    """A Zendesk that never answers costs one timeout, then the retry goes through."""
    async with make_bridge(zendesk_timeout_seconds=0.3) as bridge:
        bridge.sandbox.add_faults([FaultRule(method="PUT", path_prefix="/api/v2/tickets", kind="hang")])
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        assert len(voice_comments(ticket)) == 1


async def test_rejected_create_becomes_a_dead_letter_with_zendesk_error(make_bridge: BridgeFactory) -> None:
    """A 422 that dropping a field cannot fix is kept as a dead letter carrying Zendesk's message."""
    async with make_bridge(zendesk_brand_id=1) as bridge:  # no brand 1 in the account
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        store = bridge.app[STORE]
        dead = await store.list_actions([DEAD])
        assert {row.kind for row in dead} == {"create_ticket", "add_voice_comment"}
        create = next(row for row in dead if row.kind == "create_ticket")
        assert "RecordInvalid" in (create.last_error or "")
        assert "Brand: 1 does not exist" in (create.last_error or "")
        assert (await store.stats(0)).dead == 2
        assert call_outcome(bridge.sandbox.snapshot(), parent_sid(path)) == []


async def test_display_to_agent_refused_creates_the_ticket_then_pops_separately(make_bridge: BridgeFactory) -> None:
    """A 422 on display_to_agent: create again without it; the separate pop's 404 is dropped and logged."""
    async with make_bridge(sandbox_config=SandboxConfig(no_tpe_seat=frozenset({1001}))) as bridge:
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert ticket["assignee_id"] == 1001
        assert len(voice_comments(ticket)) == 1
        assert snapshot["displays"] == []
        dropped = await bridge.app[STORE].list_actions([DROPPED])
        assert {row.kind for row in dropped} == {"display_user", "display_ticket", "timer"}


async def test_dead_letter_after_max_age(make_bridge: BridgeFactory) -> None:
    """An action still failing after OUTBOX_MAX_AGE stops being retried and says why."""
    async with make_bridge(retry=RetryPolicy(base=0.01, cap=0.02, max_age=0.0)) as bridge:
        bridge.sandbox.add_faults([FaultRule(method=None, path_prefix="/api/v2", kind="503", times=1000)])
        assert (await bridge.replay([recording("missed_caller_hung_up")])).ok
        await bridge.settle()
        dead = await bridge.app[STORE].list_actions([DEAD])
        assert dead
        assert all("gave up" in (row.last_error or "") for row in dead)


async def test_cached_caller_gone_from_zendesk_is_looked_up_again(make_bridge: BridgeFactory) -> None:
    """A caller user merged or deleted in Zendesk since it was cached is searched (and created) again, once."""
    async with make_bridge() as bridge:
        first, second = recording("simultaneous_unknown_a"), recording("simultaneous_unknown_b")
        assert (await bridge.replay([first])).ok
        await bridge.settle()
        (user,) = [u for u in bridge.sandbox.users.values() if u["phone"] == "+14155550177"]
        del bridge.sandbox.users[user["id"]]  # an agent merged the caller away
        assert (await bridge.replay([second])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        (fresh,) = [u for u in snapshot["users"] if u["phone"] == "+14155550177"]
        assert fresh["id"] != user["id"]
        (ticket,) = call_outcome(snapshot, parent_sid(second))
        assert ticket["requester_id"] == fresh["id"]
        assert (1002, "user", fresh["id"]) in [(p["agent_id"], p["kind"], p["id"]) for p in snapshot["displays"]]


async def test_lagging_search_index_does_not_make_twin_users(make_bridge: BridgeFactory) -> None:
    """A user created by an attempt whose answer was lost is found by external_id while search lags behind."""
    async with make_bridge(sandbox_config=SandboxConfig(search_index_delay=3600)) as bridge:
        bridge.sandbox.add_faults([FaultRule(method="POST", path_prefix="/api/v2/users", kind="drop_after")])
        path = recording("inbound_unknown_caller")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        users = [u for u in snapshot["users"] if u["phone"] == "+14155550142"]
        assert len(users) == 1
        assert users[0]["external_id"] == "bridge-phone:+14155550142"
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert ticket["requester_id"] == users[0]["id"]
