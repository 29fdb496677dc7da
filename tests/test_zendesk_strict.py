"""The bridge against a sandbox as strict as Zendesk: an agent token, real phone data, conflicts, closed tickets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.devtools.sandbox import FaultRule, SandboxConfig
from bridge.store import DEAD, DONE
from tests.callgen import variant
from tests.conftest import BridgeFactory, call_outcome, eventually, parent_sid, recording, voice_comments

TICKETS = "/api/v2/channels/voice/tickets"
UNKNOWN_CALLER = "+14155550142"  # the caller of inbound_unknown_caller


def call_from(tmp_path: Path, number: str, name: str = "inbound_unknown_caller", salt: str = "x") -> Path:
    """Write a copy of a recorded call placed from another number."""
    path = tmp_path / f"{name}-{salt}-{number[1:]}.jsonl"
    path.write_text("\n".join(variant(recording(name), salt, caller=number, old_caller=UNKNOWN_CALLER)) + "\n")
    return path


def listed_tickets(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the requests that used List Tickets (admins only)."""
    return [r for r in snapshot["requests"] if r["path"] in ("/api/v2/tickets", "/api/v2/tickets.json")]


# -- 1. least privilege ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop_after", "late"])
@pytest.mark.parametrize("name", ["inbound_answered", "voicemail_anonymous", "missed_caller_hung_up"])
async def test_agent_token_settles_a_create_whose_answer_was_lost(
    make_bridge: BridgeFactory, kind: str, name: str
) -> None:
    """A create that landed but went unheard is found through the requester's tickets, never created twice."""
    async with make_bridge(zendesk_timeout_seconds=0.5) as bridge:
        assert bridge.sandbox.users[1000]["role"] == "agent"
        bridge.sandbox.add_faults([FaultRule(method="POST", path_prefix=TICKETS, kind=kind)])
        path = recording(name)
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        expected = 0 if "missed_call" in ticket["tags"] else 1
        assert len(voice_comments(ticket)) == expected
        assert (await bridge.store.stats(bridge.clock())).dead == 0
        assert listed_tickets(snapshot) == []
        assert all(r["status"] != 403 for r in snapshot["requests"])


# -- 2. real phone data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "user_id"),
    [
        ("+15035550147", 2003),  # stored "(503) 555-0147"; a +44 number ends in the same digits
        ("+15035550148", 2004),  # stored "+1 503-555-0148"
        ("+15035550149", 2005),  # stored "5035550149"
        ("+15035550160", 2006),  # only an extra phone identity holds it
        ("+15035550170", 2008),  # a direct line beats the shared front desk number
    ],
)
async def test_caller_is_found_whatever_format_the_profile_holds(
    make_bridge: BridgeFactory, tmp_path: Path, number: str, user_id: int
) -> None:
    """The national number is searched and each candidate parsed: the right user, and no new one."""
    async with make_bridge() as bridge:
        before = set(bridge.sandbox.users)
        path = call_from(tmp_path, number)
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        assert {u["id"] for u in snapshot["users"]} == before
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert ticket["requester_id"] == user_id


async def test_a_number_shared_by_several_people_gets_no_new_user(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    async with make_bridge() as bridge:
        before = set(bridge.sandbox.users)
        path = call_from(tmp_path, "+15035550180")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        assert {u["id"] for u in snapshot["users"]} == before
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert ticket["requester_id"] in (2009, 2010)


async def test_two_calls_seconds_apart_from_a_new_number_share_one_user(
    make_bridge: BridgeFactory, tmp_path: Path
) -> None:
    """Search lags (an hour here); a second look-up of the number finds the first one's user by external_id.

    The second call goes through another bridge (its own database, the same Zendesk), so it really looks
    the caller up again instead of reusing the first call's cached result.
    """
    async with make_bridge(sandbox_config=SandboxConfig(search_index_delay=3600)) as bridge:
        first = call_from(tmp_path, "+15035550444", salt="a")
        assert (await bridge.replay([first])).ok
        await bridge.settle()
        async with make_bridge(zendesk_url=bridge.zendesk_url) as other:
            second = call_from(tmp_path, "+15035550444", salt="b")
            assert (await other.replay([second])).ok
            await other.settle()
        snapshot = bridge.sandbox.snapshot()
        users = [u for u in snapshot["users"] if u["phone"] == "+15035550444"]
        assert len(users) == 1
        for path in (first, second):
            (ticket,) = call_outcome(snapshot, parent_sid(path))
            assert ticket["requester_id"] == users[0]["id"]


async def test_external_id_taken_reads_that_user(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """Another creator wins the race between our look-up and our create: 422 "taken", and that user is used."""
    config = SandboxConfig(search_index_delay=3600, late_commit_seconds=1.0)
    async with make_bridge(sandbox_config=config, zendesk_timeout_seconds=5) as bridge:
        sandbox = bridge.sandbox
        # The external_id look-up sees no user, and its answer arrives a second later.
        sandbox.add_faults([FaultRule(method="GET", path_prefix="/api/v2/users/search", kind="late")])
        path = call_from(tmp_path, "+15035550555")
        assert (await bridge.replay([path])).ok
        await eventually(lambda: any(r["path"].startswith("/api/v2/users/search") for r in sandbox.requests))
        # Meanwhile another instance (another deployment's bridge) creates the caller.
        twin = sandbox.create_user(
            {"user": {"name": "Caller", "phone": "+15035550555", "external_id": "bridge-phone:+15035550555"}}
        )
        await bridge.settle()
        snapshot = sandbox.snapshot()
        assert [u["id"] for u in snapshot["users"] if u["phone"] == "+15035550555"] == [twin["id"]]
        assert [
            r["status"] for r in snapshot["requests"] if r["method"] == "POST" and r["path"].startswith("/api/v2/users")
        ] == [422]
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert ticket["requester_id"] == twin["id"]
        assert (await bridge.store.stats(bridge.clock())).dead == 0


# -- 3. conflicts and timeouts ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["409", "late"])
async def test_voice_comment_survives_a_conflict_or_a_late_commit(make_bridge: BridgeFactory, kind: str) -> None:
    """A 409 is retried; a PUT that commits after we gave up is found by the look-up, not sent twice."""
    async with make_bridge(zendesk_timeout_seconds=0.5) as bridge:
        bridge.sandbox.add_faults([FaultRule(method="PUT", path_prefix="/api/v2/tickets", kind=kind, times=2)])
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        assert len(voice_comments(ticket)) == 1
        assert (await bridge.store.stats(bridge.clock())).dead == 0


# -- 4. closed, merged and deleted tickets ----------------------------------------------------------


@pytest.mark.parametrize("late", [False, True], ids=["", "landing late"])
@pytest.mark.parametrize("fate", ["merged", "closed", "deleted"])
async def test_recording_follows_the_conversation(
    make_bridge: BridgeFactory, tmp_path: Path, fate: str, late: bool
) -> None:
    """The voice comment goes to the merge target, or to a follow-up of a closed or deleted ticket.

    Landing late, the write there commits after the bridge gave up; the retry finds it, and adds nothing.
    """
    async with make_bridge(recording_wait_seconds=3600, zendesk_timeout_seconds=0.5) as bridge:
        path = recording("inbound_answered")
        lines = path.read_text().splitlines()
        # Everything up to the recording's arrival: the ticket exists, the voice comment waits.
        head = tmp_path / "head.jsonl"
        tail = tmp_path / "tail.jsonl"
        split = next(i for i, line in enumerate(lines) if "/twilio/voice/recording-status" in line)
        head.write_text("\n".join(lines[:split]) + "\n")
        tail.write_text("\n".join(lines[split:]) + "\n")
        sid = parent_sid(path)
        sandbox = bridge.sandbox
        other = sandbox.create_voice_ticket({"ticket": {"via_id": 45, "subject": "Earlier", "comment": {"body": "x"}}})
        assert (await bridge.replay([head])).ok
        await eventually(lambda: bool(call_outcome(sandbox.snapshot(), sid)))
        (ticket,) = call_outcome(sandbox.snapshot(), sid)
        if fate == "merged":
            sandbox.merge(other["id"], [ticket["id"]])
        elif fate == "closed":
            sandbox.close_ticket(ticket["id"])
        else:
            sandbox.delete_ticket(ticket["id"])
        if late:
            # The merge target is ticket 1 ("Earlier"); a follow-up is a new voice ticket.
            where = "/api/v2/tickets/1.json" if fate == "merged" else TICKETS
            sandbox.add_faults(
                [FaultRule(method="PUT" if fate == "merged" else "POST", path_prefix=where, kind="late")]
            )
        assert (await bridge.replay([tail])).ok
        await bridge.settle_calls()
        snapshot = sandbox.snapshot()
        assert (await bridge.store.stats(bridge.clock())).dead == 0
        tickets = {t["id"]: t for t in snapshot["tickets"]}
        if fate == "merged":
            assert len(voice_comments(tickets[other["id"]])) == 1
            assert voice_comments(tickets[ticket["id"]]) == []
        else:
            (follow_up,) = [t for t in call_outcome(snapshot, sid) if t["id"] != ticket["id"]]
            assert len(voice_comments(follow_up)) == 1
            assert follow_up["via_followup_source_id"] == (ticket["id"] if fate == "closed" else None)
            assert follow_up["requester_id"] == ticket["requester_id"] or fate == "deleted"


# -- 5. precise 422 handling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "why"),
    [(2001, "downgraded to end-user"), (1004, "suspended")],
)
async def test_refused_assignee_is_dropped_and_the_ticket_goes_to_the_group(
    make_bridge: BridgeFactory, agent: int, why: str
) -> None:
    """Zendesk blames assignee_id (and display_to_agent): the ticket is created without exactly those."""
    async with make_bridge(agents={"client:alice": agent}, zendesk_group_id=5002) as bridge:
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        assert (ticket["assignee_id"], ticket["group_id"]) == (None, 5002), why
        assert ticket["requester_id"] == 2001 if agent != 2001 else ticket["requester_id"]
        assert len(voice_comments(ticket)) == 1
        assert (await bridge.store.stats(bridge.clock())).dead == 0


async def test_suspended_requester_is_left_to_zendesk(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """The caller's user is suspended: the ticket is still created, the requester left to Zendesk."""
    async with make_bridge() as bridge:
        path = call_from(tmp_path, "+15035550199")  # Ned, suspended
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        assert ticket["requester_id"] == 1000
        assert len(voice_comments(ticket)) == 1
        assert (await bridge.store.stats(bridge.clock())).dead == 0


# -- 6. brand and group -----------------------------------------------------------------------------


async def test_group_goes_on_unassigned_tickets_and_brand_on_all(make_bridge: BridgeFactory) -> None:
    async with make_bridge(zendesk_group_id=5001, zendesk_brand_id=6002) as bridge:
        paths = [recording("voicemail_transcribed"), recording("missed_caller_hung_up"), recording("inbound_answered")]
        assert (await bridge.replay(paths)).ok
        await bridge.settle_calls()
        snapshot = bridge.sandbox.snapshot()
        voicemail, missed, answered = (call_outcome(snapshot, parent_sid(p))[0] for p in paths)
        assert (voicemail["group_id"], voicemail["brand_id"]) == (5001, 6002)
        assert (missed["group_id"], missed["brand_id"]) == (5001, 6002)
        assert (answered["group_id"], answered["brand_id"], answered["assignee_id"]) == (None, 6002, 1001)


# -- 7. Zendesk's own signals -----------------------------------------------------------------------


async def test_a_dropped_voice_comment_is_not_recorded_as_delivered(
    make_bridge: BridgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Zendesk answers 200 but drops voice_comment (X-Zendesk-API-Warn): a dead letter saying so, and a log."""
    config = SandboxConfig(dropped_ticket_keys=frozenset({"voice_comment"}))
    async with make_bridge(sandbox_config=config) as bridge:
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        dead = await bridge.store.list_actions([DEAD])
        assert [row.kind for row in dead] == ["add_voice_comment"]
        assert "dropped ['voice_comment']" in (dead[0].last_error or "")
    assert any("X-Zendesk-API-Warn" in record.getMessage() for record in caplog.records)


async def test_a_voicemail_whose_voice_comment_is_dropped_is_not_delivered(make_bridge: BridgeFactory) -> None:
    """Without its voice comment a voicemail ticket has no comment, which Zendesk refuses: a dead letter."""
    config = SandboxConfig(dropped_ticket_keys=frozenset({"voice_comment"}))
    async with make_bridge(sandbox_config=config) as bridge:
        path = recording("voicemail_transcribed")
        assert (await bridge.replay([path])).ok
        await bridge.settle_calls()
        assert call_outcome(bridge.sandbox.snapshot(), parent_sid(path)) == []
        dead = await bridge.store.list_actions([DEAD])
        assert [row.kind for row in dead] == ["create_ticket"]
        assert "RecordInvalid" in (dead[0].last_error or "")


async def test_rate_limit_headers_hold_requests_until_the_reset(make_bridge: BridgeFactory) -> None:
    """A Zendesk limit below ours: the remaining budget and its reset pace the outbox, everything lands."""
    config = SandboxConfig(rate_limit_per_minute=6, rate_window_seconds=1.0)
    async with make_bridge(sandbox_config=config) as bridge:
        path = recording("inbound_unknown_caller")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        (ticket,) = call_outcome(snapshot, parent_sid(path))
        assert len(voice_comments(ticket)) == 1
        limited = [r for r in snapshot["requests"] if r["status"] == 429]
        assert len(limited) <= 2  # only requests already in flight when the budget ran out


@pytest.mark.parametrize("lag", [0.0, 3600.0])
async def test_a_ticket_whose_requester_changed_is_still_found(make_bridge: BridgeFactory, lag: float) -> None:
    """The create landed, its answer was lost, and an agent changed the requester meanwhile.

    The assignee's tickets find it at once; search finds it too, once indexed.
    """
    async with make_bridge(sandbox_config=SandboxConfig(search_index_delay=lag)) as bridge:
        sandbox = bridge.sandbox
        sandbox.add_faults([FaultRule(method="POST", path_prefix=TICKETS, kind="drop_after")])
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        sid = parent_sid(path)
        await eventually(lambda: bool(call_outcome(sandbox.snapshot(), sid)))
        (ticket,) = call_outcome(sandbox.snapshot(), sid)
        sandbox.tickets[ticket["id"]]["requester_id"] = 2002  # an agent fixed the requester meanwhile
        await bridge.settle()
        (ticket,) = call_outcome(sandbox.snapshot(), sid)
        assert len(voice_comments(ticket)) == 1
        assert any(r["path"] == "/api/v2/users/1001/tickets/assigned.json" for r in sandbox.requests)


async def test_a_ticket_nobody_owns_any_more_is_found_once_search_indexed_it(make_bridge: BridgeFactory) -> None:
    """Requester and assignee both changed before the retry: only search can find it (it lags writes)."""
    async with make_bridge(sandbox_config=SandboxConfig(search_index_delay=0)) as bridge:
        sandbox = bridge.sandbox
        sandbox.add_faults([FaultRule(method="POST", path_prefix=TICKETS, kind="drop_after")])
        path = recording("inbound_answered")
        assert (await bridge.replay([path])).ok
        sid = parent_sid(path)
        await eventually(lambda: bool(call_outcome(sandbox.snapshot(), sid)))
        (ticket,) = call_outcome(sandbox.snapshot(), sid)
        sandbox.tickets[ticket["id"]].update(requester_id=2002, assignee_id=1002)
        await bridge.settle()
        (ticket,) = call_outcome(sandbox.snapshot(), sid)
        assert len(voice_comments(ticket)) == 1
        assert any(r["query"].get("query", "").startswith("type:ticket") for r in sandbox.requests)


async def test_a_brief_read_failure_does_not_cost_the_attempt(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """Reads are safe to repeat: a 500 and a short 429 on the caller search are retried within the attempt."""
    async with make_bridge() as bridge:
        bridge.sandbox.add_faults(
            [
                FaultRule(method="GET", path_prefix="/api/v2/search", kind="500"),
                FaultRule(method="GET", path_prefix="/api/v2/search", kind="429", retry_after=0),
            ]
        )
        path = call_from(tmp_path, "+15035550147")
        assert (await bridge.replay([path])).ok
        await bridge.settle()
        (look_up,) = [row for row in await bridge.store.list_actions([DONE]) if row.kind == "find_caller"]
        assert look_up.attempts == 1
        assert look_up.result == {"user_id": 2003}
