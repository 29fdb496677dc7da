"""The outbox's pieces against a fake Zendesk client: did an earlier attempt land, and where do refused comments go.

An agent may merge, close or delete the call's ticket while the outbox works on it; these tests drive the
pieces directly, with a Context over tests/fake_zendesk.py, where the end-to-end tests go through HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.core.actions import CreateCallRecord, CreateTicket
from bridge.store import DONE, ActionRow
from bridge.store.sqlite import SqliteStore
from bridge.zendesk.client import Invalid, NotFound, ServerBroken
from bridge.zendesk.outbox.comments import add_note, add_voice_comment
from bridge.zendesk.outbox.context import Attempt, Context, TicketDefaults
from bridge.zendesk.outbox.errors import TicketGone, writing_to
from bridge.zendesk.outbox.landed import holds, landed, merge_target, same_call, says, shows_record
from bridge.zendesk.outbox.records import create_call_record
from bridge.zendesk.outbox.relocate import MOVED_RECORD, new_home
from bridge.zendesk.outbox.results import (
    CommentAdded,
    CommentFound,
    CommentMoved,
    Done,
    Needs,
    RecordFound,
    RecordMade,
    TicketMade,
)
from bridge.zendesk.outbox.tickets import create_ticket
from schemas.zendesk import CallComment, CallRecord, VoiceComment, VoiceTicket
from tests.fake_zendesk import API_USER, FakeZendesk, closed_refusal

SID = "CA" + "5" * 32
OTHER = "CA" + "6" * 32
T0 = datetime(2026, 9, 15, 14, 2, 7, tzinfo=UTC)
CALLER = 3001
VOICE = VoiceComment(from_="+14155550142", to="+16505550100", started_at="2026-09-15T14:02:07Z", call_duration=42)
OTHER_VOICE = VoiceComment(from_="+14155550199", to="+16505550100", started_at="2026-09-15T09:00:00Z", call_duration=7)
FIRST, RETRY = Attempt(SID, retried=False), Attempt(SID, retried=True)


def voice(comment: VoiceComment) -> dict[str, Any]:
    """Return a voice comment as a ticket lists it."""
    return {"type": "VoiceComment", "data": comment.wire()}


def note(body: str) -> dict[str, Any]:
    """Return a private note as a ticket lists it."""
    return {"type": "Comment", "body": body, "public": False}


@pytest.fixture
async def zendesk(tmp_path: Path) -> AsyncIterator[tuple[FakeZendesk, Context]]:
    """A fake Zendesk and a delivery context over it (a real store, defaults for new tickets)."""
    store = await SqliteStore.open(str(tmp_path / "pieces.db"))
    fake = FakeZendesk()
    yield fake, Context(fake, store, lambda: T0, TicketDefaults(group_id=77, brand_id=5), app_id=9)
    await store.close()


async def test_writing_to_tells_a_deleted_or_closed_ticket_from_other_refusals() -> None:
    """A 404 or a closed ticket's 422 is TicketGone, with Zendesk's own message; any other refusal passes as it is."""
    with pytest.raises(TicketGone) as deleted:
        async with writing_to(12):
            raise NotFound("HTTP 404", status=404)
    assert (deleted.value.ticket_id, deleted.value.closed, str(deleted.value)) == (12, False, "HTTP 404")
    with pytest.raises(TicketGone) as closed:
        async with writing_to(12):
            raise closed_refusal()
    assert closed.value.closed
    assert isinstance(closed.value.cause, Invalid)
    refused = Invalid("HTTP 422", status=422, body='{"details": {"requester_id": [{"description": "suspended"}]}}')
    with pytest.raises(Invalid) as other:
        async with writing_to(12):
            raise refused
    assert other.value is refused
    with pytest.raises(ServerBroken):
        async with writing_to(12):
            raise ServerBroken("HTTP 503", status=503)


async def test_a_first_attempt_writes_without_looking(zendesk: tuple[FakeZendesk, Context]) -> None:
    """Nothing can have landed before the first attempt: it sends its comment and reads nothing."""
    fake, ctx = zendesk
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER)

    async def look() -> int:
        raise AssertionError("a first attempt looked for an earlier one")

    assert await FIRST.earlier(look) is None
    assert await add_voice_comment(ctx, FIRST, TicketMade(ticket, 45), VOICE) == Done(CommentAdded(ticket))
    assert fake.requests == [("update_ticket", ticket)]
    assert fake.comments[ticket] == [voice(VOICE)]


async def test_a_retry_finds_its_voice_comment_on_the_calls_ticket(zendesk: tuple[FakeZendesk, Context]) -> None:
    """An earlier attempt whose answer was lost is found on the call's ticket, and nothing is written twice."""
    fake, ctx = zendesk
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER, comments=(voice(VOICE),))
    assert await add_voice_comment(ctx, RETRY, TicketMade(ticket, 45), VOICE) == Done(CommentFound(ticket))
    assert fake.sent("update_ticket") == []
    assert len(fake.comments[ticket]) == 1


async def test_a_retry_on_an_open_ticket_looks_nowhere_else(zendesk: tuple[FakeZendesk, Context]) -> None:
    """An open ticket takes updates, so an earlier attempt went nowhere else: no search, then the comment goes on."""
    fake, ctx = zendesk
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER, comments=(note("Earlier chat"),))
    assert await landed(ctx, SID, ticket, lambda c, own: c.get("body") == "Missed call") is None
    assert fake.requests == [("ticket_comments", ticket), ("ticket", ticket)]
    assert await add_note(ctx, RETRY, TicketMade(ticket, 45), "Missed call") == Done(CommentAdded(ticket))
    assert fake.comments[ticket][-1]["body"] == "Missed call"


async def test_a_retry_follows_a_merge_and_tells_its_comment_from_other_calls(
    zendesk: tuple[FakeZendesk, Context],
) -> None:
    """On a merge target, which holds other calls' voice comments, only this call's own (same data) counts."""
    fake, ctx = zendesk
    target = fake.add_ticket(requester_id=CALLER, comments=(voice(OTHER_VOICE),))
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER)
    fake.merge(ticket, target)
    assert await add_voice_comment(ctx, RETRY, TicketMade(ticket, 45), VOICE) == Done(CommentMoved(target, ticket))
    assert fake.comments[target] == [voice(OTHER_VOICE), voice(VOICE)]
    fake.requests.clear()
    assert await add_voice_comment(ctx, RETRY, TicketMade(ticket, 45), VOICE) == Done(CommentFound(target))
    assert fake.sent("update_ticket") == []
    assert fake.sent("user_tickets:requested") == []  # the merge comment said where to look


async def test_a_retry_finds_its_note_on_a_follow_up_of_a_closed_ticket(zendesk: tuple[FakeZendesk, Context]) -> None:
    """A closed ticket's note went to a follow-up with the call's external id, among the requester's tickets."""
    fake, ctx = zendesk
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER, status="closed", subject="Call from Ada")
    assert await add_note(ctx, FIRST, TicketMade(ticket, 46), "Missed call") == Done(CommentMoved(102, ticket))
    follow_up = fake.tickets[102]
    assert follow_up["via_followup_source_id"] == ticket
    assert follow_up["subject"] == "Follow-up: Call from Ada"
    assert (follow_up["requester_id"], follow_up["via_id"]) == (CALLER, 46)
    assert (follow_up["group_id"], follow_up["brand_id"]) == (77, 5)  # nobody is assigned: ZENDESK_GROUP_ID
    assert await landed(ctx, SID, ticket, lambda c, own: c.get("body") == "Missed call") == 102
    assert fake.sent("user_tickets:requested") == [CALLER]


async def test_a_deleted_tickets_comment_goes_to_a_follow_up_found_again_among_the_api_users(
    zendesk: tuple[FakeZendesk, Context],
) -> None:
    """A deleted ticket's comment goes to a follow-up of the API user's (via 45 if unknown), where a retry finds it."""
    fake, ctx = zendesk
    ticket = fake.add_ticket(external_id=SID)
    del fake.tickets[ticket]
    assert await add_note(ctx, FIRST, TicketMade(ticket, None), "Missed call") == Done(CommentMoved(102, ticket))
    follow_up = fake.tickets[102]
    assert follow_up["subject"] == "Call (its ticket was deleted)"
    assert (follow_up["via_id"], follow_up["requester_id"]) == (45, None)
    assert "via_followup_source_id" not in follow_up
    assert await add_note(ctx, RETRY, TicketMade(ticket, None), "Missed call") == Done(CommentFound(102))
    assert fake.sent("user_tickets:requested") == [API_USER]
    assert len(fake.tickets) == 1


async def test_when_the_merge_target_is_closed_too_a_follow_up_takes_the_comment(
    zendesk: tuple[FakeZendesk, Context],
) -> None:
    """The merge target refusing in turn does not lose the comment: a follow-up of the call's ticket takes it."""
    fake, ctx = zendesk
    target = fake.add_ticket(requester_id=CALLER, status="closed")
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER)
    fake.merge(ticket, target)
    outcome = await add_voice_comment(ctx, FIRST, TicketMade(ticket, 45), VOICE)
    (follow_up,) = [t for t in fake.tickets.values() if t["id"] not in (ticket, target)]
    assert outcome == Done(CommentMoved(follow_up["id"], ticket))
    assert follow_up["via_followup_source_id"] == ticket
    assert fake.comments[follow_up["id"]] == [voice(VOICE)]
    assert fake.comments[target] == []


async def test_a_record_for_a_closed_ticket_goes_to_a_follow_up_and_a_retry_finds_it_there(
    zendesk: tuple[FakeZendesk, Context],
) -> None:
    """A call record refused by a closed ticket shows on a follow-up, with a note saying why; a retry finds it."""
    fake, ctx = zendesk
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER, status="closed")
    create = CreateCallRecord(SID, CallRecord(external_id=SID, direction="inbound"),
                              CallComment(title="Inbound call", call_fields=["duration"]))  # fmt: skip
    needs = Needs({f"{SID}:ticket": _ticket_row(ticket)})
    made = await create_call_record(ctx, FIRST, create, needs)
    (follow_up,) = [t for t in fake.tickets.values() if t["id"] != ticket]
    (call_id,) = fake.calls
    assert made == Done(RecordMade(call_id, follow_up["id"]))
    assert fake.calls[call_id]["ticket_id"] == follow_up["id"]
    assert fake.comments[follow_up["id"]][0]["body"] == MOVED_RECORD
    assert await create_call_record(ctx, RETRY, create, needs) == Done(RecordFound(call_id, follow_up["id"]))
    assert len(fake.calls) == 1


async def test_a_follow_up_an_earlier_attempt_made_is_the_new_home(zendesk: tuple[FakeZendesk, Context]) -> None:
    """An attempt that made the follow-up but lost the record's answer is not followed by a second follow-up."""
    fake, ctx = zendesk
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER, status="closed")
    follow_up = fake.add_ticket(external_id=SID, requester_id=CALLER, via_followup_source_id=ticket)
    fake.add_ticket(external_id=OTHER, requester_id=CALLER)  # another call's ticket of the same caller
    gone = TicketGone(ticket, closed_refusal())
    assert await new_home(ctx, SID, 45, gone) == follow_up
    assert fake.sent("create_voice_ticket") == []


async def test_a_lines_group_and_brand_win_over_the_global_ones(zendesk: tuple[FakeZendesk, Context]) -> None:
    """A call's line names its own group (for a ticket nobody is assigned) and brand; the rest stay global."""
    fake, ctx = zendesk
    missed = VoiceTicket(via_id=45, subject="Missed call", external_id=SID)
    await create_ticket(ctx, FIRST, CreateTicket(SID, missed, group_id=5002, brand_id=6002), Needs({}))
    answered = VoiceTicket(via_id=45, subject="Call", external_id=OTHER, assignee_id=1001)
    await create_ticket(ctx, Attempt(OTHER, retried=False), CreateTicket(OTHER, answered, brand_id=6002), Needs({}))
    first, second = fake.tickets.values()
    assert (first["group_id"], first["brand_id"]) == (5002, 6002)
    assert (second.get("group_id"), second["brand_id"]) == (None, 6002)  # assigned: Zendesk picks the group
    record = CreateCallRecord(SID, CallRecord(external_id=SID, direction="inbound"), brand_id=6002)
    await create_call_record(ctx, FIRST, record, Needs({}))
    (call,) = fake.calls.values()
    assert call["brand_id"] == 6002


async def test_a_follow_up_keeps_the_closed_tickets_group_and_brand(zendesk: tuple[FakeZendesk, Context]) -> None:
    """A late comment's follow-up stays where the call's ticket was (its line's group and brand)."""
    fake, ctx = zendesk
    ticket = fake.add_ticket(external_id=SID, requester_id=CALLER, status="closed", group_id=5002, brand_id=6002)
    assert await add_note(ctx, FIRST, TicketMade(ticket, 45), "Missed call") == Done(CommentMoved(102, ticket))
    assert (fake.tickets[102]["group_id"], fake.tickets[102]["brand_id"]) == (5002, 6002)


async def test_a_menus_destination_group_is_named_once_and_left_out_when_gone(
    zendesk: tuple[FakeZendesk, Context],
) -> None:
    """ivr_destination_group_name: the line's group's name (else ZENDESK_GROUP_ID's), read once; gone: left out."""
    fake, ctx = zendesk
    fake.groups = {5002: "Sales team", 77: "Everyone"}
    to_line = CallRecord(external_id=SID, direction="inbound", ivr_action="group", ivr_routed_to="Sales")
    for number, group in enumerate((5002, 5002, None, 404)):
        sid = f"CA{number:032d}"
        await create_call_record(ctx, Attempt(sid, retried=False), CreateCallRecord(sid, to_line, group_id=group),
                                 Needs({}))  # fmt: skip
    voicemail = CallRecord(external_id=OTHER, direction="inbound", ivr_action="voicemail")
    await create_call_record(ctx, Attempt(OTHER, retried=False), CreateCallRecord(OTHER, voicemail, group_id=5002),
                             Needs({}))  # fmt: skip
    names = [call.get("ivr_destination_group_name") for call in fake.calls.values()]
    assert names == ["Sales team", "Sales team", "Everyone", None, None]
    assert fake.sent("group") == [5002, 77, 404]  # each group read once; a voicemail names none


def test_merge_target_reads_a_merged_tickets_last_merge_comment_only() -> None:
    """Only a ticket Zendesk closed by a merge has a target, named in its latest "merged into" comment."""
    comments = [note("This request was closed and merged into request #7."), note("Merged into ticket #9 after all")]
    assert merge_target({"tags": ["closed_by_merge"]}, comments) == 9
    assert merge_target({"tags": ["vip"]}, comments) is None
    assert merge_target({"tags": ["closed_by_merge"]}, [note("Closed")]) is None


def test_matchers_tell_this_calls_comments_from_others() -> None:
    """A voice comment matches by from, start and length; a note by body; an attachment by URL; a record by call."""
    assert same_call(VOICE.wire())(voice(VOICE))
    assert not same_call(VOICE.wire())(voice(OTHER_VOICE))
    assert not same_call(VOICE.wire())(note("+14155550142"))
    assert says("Missed call")(note("Missed call"))
    assert not says("Missed call")(note("Missed call, twice"))
    url = "https://example.zendesk.com/attachments/token/abc/?name=RE1.mp3"
    assert holds(url)({"attachments": [{"content_url": url}]})
    assert not holds(url)({"attachments": None})
    record = {"type": "TpeVoiceComment", "data": {"call_id": 9001, "external_id": SID}}
    assert shows_record(record, SID)
    assert not shows_record(record, OTHER)
    assert not shows_record({**record, "type": "VoiceComment"}, SID)


def _ticket_row(ticket_id: int) -> ActionRow:
    """Return the call's ticket action, done."""
    create = CreateTicket(SID, VoiceTicket(via_id=45, subject="Call", external_id=SID))
    return ActionRow(1, create, (), DONE, 0, T0, T0, None, TicketMade(ticket_id, 45).encode())
