"""What a call's ticket and record say: the record's fields, the voice comment, the notes (no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bridge.core import call_menu, call_room
from bridge.core.call_model import MAX_CALL_SECONDS, RECORDING_WAIT, UNKNOWN_LINE, Call, Leg, Policy, Recording
from bridge.core.lines import Line
from bridge.core.phones import is_anonymous
from schemas.zendesk import CallComment, VoiceComment

FINAL_RECORDING = frozenset({"completed", "absent", "failed"})  # a recording's statuses once it is over


def _before_room(call: Call) -> Recording | None:
    """Return the recording of the conversation before any room: the completed one, or the hint once waited for."""
    if call.recording is not None and call.recording.status == "completed":
        return call.recording
    if RECORDING_WAIT in call.fired and call.recording is None:
        return call.recording_hint
    return None


def _recording_parts(call: Call) -> list[Recording]:
    """Return the parts of an answered call's recording in the order they were said, each with something to play.

    A call that never moved into its room has one part at most. One that did goes on in the room's recordings
    (one for each room it was in, a cold transfer starting a fresh one), each begun after the one before ended.
    """
    first = _before_room(call)
    parts = [first] if first is not None and first.url else []
    if call.room is None:
        return parts
    room = call.room
    done = [r for r in room.recordings if r.status == "completed" and r.url]
    done.sort(key=lambda r: (r.started_at or room.entered_at, r.sid or ""))
    return parts + [Recording(**r.model_dump()) for r in done]


def _conversation(call: Call) -> Recording | None:
    """Return the recording of an answered call as one: its first part's link and start, all the parts' length.

    A call in one part (every call that never moved into its room) gets that part unchanged.
    """
    parts = _recording_parts(call)
    if len(parts) < 2:
        return parts[0] if parts else _before_room(call)
    lengths = [part.duration for part in parts if part.duration is not None]
    return parts[0].model_copy(update={"duration": sum(lengths) if lengths else None})


def _parts(call: Call) -> tuple[str, ...]:
    """Return the links of an answered call's recording parts, in order; empty when it is in one part (or none)."""
    parts = _recording_parts(call)
    return tuple(part.url for part in parts if part.url) if len(parts) > 1 else ()


def _comment(title: str, author: int | None, fields: tuple[str, ...]) -> CallComment:
    """Build the comment section that shows the record on its ticket."""
    return CallComment(title=title, call_fields=list(fields), author_id=author)


def _line(call: Call, policy: Policy) -> Line:
    """Return the call's line: the one it started on, else the number called, else the first."""
    lines = policy.lines
    if call.line is not None:
        return lines.get(call.line)
    if call.direction == "inbound":
        return lines.called(call.to_number) or lines.first
    return lines.for_call_out(call.from_number, None) or lines.first


def _routed_line(call: Call, policy: Policy) -> Line:
    """Return the line whose agents and queue take the call: the one its line's menu led to, else its own."""
    return policy.lines.get(call.chosen_line) if call.chosen_line is not None else _line(call, policy)


def _caller_id(call: Call, policy: Policy) -> str | None:
    """Return the number a call out shows the customer: its line's caller id, else CALLER_ID."""
    return _line(call, policy).caller_id or policy.caller_id


def _placement(call: Call, policy: Policy) -> dict[str, Any]:
    """Return where the call's ticket goes: its line's group and brand (none: the global ones apply).

    A caller whose menu led them to another line is that line's caller: its team sees the ticket.
    """
    line = _routed_line(call, policy)
    return {"group_id": line.group_id, "brand_id": line.brand_id}


def _queue_max_wait(call: Call, policy: Policy) -> float:
    """Return how long the call's caller may wait in the queue: its line's longest wait."""
    routing = _routed_line(call, policy).routing
    return routing.max_wait if routing is not None else policy.queue_max_wait


def _opening(call: Call, leg: Leg | None, agent_id: int | None, policy: Policy) -> dict[str, Any]:
    """Return the record's fields known when the call starts (and, for an answered leg, when it is answered)."""
    inbound = call.direction == "inbound"
    customer = (_customer(call, leg) if leg is not None else call.to_number) if not inbound else call.from_number
    nickname = _line(call, policy).name
    fields: dict[str, Any] = {
        "from_line": (call.from_number if inbound else _caller_id(call, policy) or call.from_number) or UNKNOWN_LINE,
        "to_line": (call.to_number if inbound else customer) or UNKNOWN_LINE,
        "call_started_at": _iso(call.first_seen) or None,
        "direction": call.direction,
        "external_id": call.sid,
        "end_user_location": call.from_location if inbound else (leg.to_location if leg is not None else None),
    }
    if nickname is not None:
        # Zendesk's Calls API: the line's nickname, on the side of the call the line is.
        fields["to_line_nickname" if inbound else "from_line_nickname"] = nickname
    if call.after_hours is not None:
        # Zendesk's Calls API: the call came outside business hours (its line's, or the line its menu led to).
        fields["outside_business_hours"] = True
    if leg is not None:
        fields["agent_id"] = agent_id
        fields["time_to_answer"] = _seconds(call.first_seen, leg.answered_at)
    if inbound:
        fields.update(call_menu.record_fields(call, policy))  # empty until the menu's part is known
    if call.voicemail_chosen:
        # Zendesk's Calls API: the caller chose voicemail (the queue's callback offer, its second key).
        fields["customer_requested_voicemail"] = True
    return fields


def _ending(call: Call, leg: Leg | None, status: str, recording: Recording | None = None) -> dict[str, Any]:
    """Return the record's fields known once the call is over (a dual recording starts at the answer)."""
    ended = call.ended_at or call.dial_at or (leg.ended_at if leg is not None else None)
    span = _seconds(call.first_seen, ended)
    if span is not None and span > MAX_CALL_SECONDS:
        # Legs are dated by Twilio's Timestamp, parent webhooks by their arrival: when the two disagree by more
        # than any call lasts (a replay of an old recording), Twilio's own durations are the truth.
        span = ended = None
    duration = call.parent_duration if call.parent_duration is not None else span
    fields: dict[str, Any] = {"completion_status": status}
    answered: datetime | None = None
    if leg is not None:
        talk = leg.duration if leg.duration is not None else call.dial_duration
        fields["talk_time"] = talk if talk is not None or recording is None else recording.duration
        if call.room is not None:
            fields.update(_room_times(call, leg, ended))
        # Known at the answer only when the leg's `answered` came first; a shuffled or lost one dates it now.
        answered = leg.answered_at or (recording.started_at if recording is not None else None)
        fields["time_to_answer"] = _seconds(call.first_seen, answered)
        if duration is None and fields["talk_time"] is not None:
            duration = (fields["time_to_answer"] or 0) + fields["talk_time"]  # rang, then talked
    elif duration is None:
        # Nobody answered: the call lasted as long as it rang, plus any message left after the greeting.
        rang, message = _ring_seconds(call), recording.duration if recording is not None else None
        duration = None if rang is None and message is None else (rang or 0) + (message or 0)
    if ended is None and duration is not None and call.first_seen is not None:
        ended = call.first_seen + timedelta(seconds=duration)
    return {"call_ended_at": _iso(ended) or None, "duration": duration, **fields, **_waits(call, answered)}


def _room_times(call: Call, leg: Leg, ended: datetime | None) -> dict[str, Any]:
    """Return a call's times once it moved into its room: talk time from the answer to its end, less the holds."""
    assert call.room is not None
    seen = call_room.spans(call.room)
    end = seen.ended_at or ended or call.ended_at
    held = seen.hold_seconds(end) if end is not None else None
    answered, fields = leg.answered_at, {"hold_time": held}
    if seen.consults:
        fields["consultation_time"] = seen.consult_seconds(end) if end is not None else None
    if answered is not None and end is not None and held is not None:
        fields["talk_time"] = max(0, _seconds(answered, end) or 0) - held
    return fields


def _waits(call: Call, answered: datetime | None) -> dict[str, Any]:
    """Return the record's waiting fields: how long the caller waited for an agent, and how in the queue.

    `wait_time` runs from the call's arrival to the answer, or to when the caller stopped waiting (sent to
    voicemail or the apology, or hung up); `queue_time` is the part of it spent in the queue (README, "Call
    records"). Calls the bridge never routed (calls out, calls only their status callback told of) have none.
    """
    if call.direction != "inbound" or call.placed is None or not call_menu.waited_for_agent(call):
        return {}  # a call out, a call the bridge never routed, a caller the menu kept or sent elsewhere
    until = answered
    if until is None:
        gave_up = call.placed.at if call.placed.kind in ("voicemail", "unavailable") else None
        until = gave_up or call.ended_at
    waited = _seconds(call.first_seen, until)
    fields: dict[str, Any] = {"wait_time": waited if waited is not None and 0 <= waited <= MAX_CALL_SECONDS else None}
    if call.queued_at is not None:
        fields["queue_time"] = round(call.queue_time(until))
    # Zendesk's Calls API: both say why a caller went to voicemail unanswered; an answered call did neither.
    if call.no_agent == "exceeded_queue_time" and answered is None:
        fields["exceeded_queue_time"] = True
    if call.no_agent == "overflowed" and answered is None:
        fields["overflowed"] = True
    if call.abandoned_position is not None:
        fields["call_abandoned_position"] = call.abandoned_position
    return fields


def _recorded(recording: Recording | None, transcript: str | None = None) -> dict[str, Any]:
    """Return the record's recording fields, empty when there is nothing to play or read."""
    fields: dict[str, Any] = {}
    if recording is not None and recording.url:
        fields["recording_url"] = recording.url
        fields["recording_time"] = recording.duration
    if transcript:
        fields["transcript"] = transcript
    return fields


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    """Return whole seconds between two instants, or None when either is unknown."""
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def _recording_settled(call: Call, policy: Policy) -> bool:
    """Tell whether the voice comment can go: the recordings are ready, absent, not expected, or waited for.

    A call that moved into its room also waits for the room's recordings: one for each room that started (each
    records from its start, when an agent is with the customer; a cold transfer starts a fresh room), and for each
    of them to be over (completed, or absent: nothing was said).
    """
    if not policy.record_calls or RECORDING_WAIT in call.fired:
        return True
    if call.room is not None:
        recordings = call.room.recordings
        started = {h.room for h in call.room.happened if h.what == "start"}
        expected = max(len(started), 1 if call_room.spans(call.room).started else 0)
        if len(recordings) < expected or any(r.status not in FINAL_RECORDING for r in recordings):
            return False
        if not _room_reported(call.room):
            return False
    return call.recording is not None


def _room_reported(room: call_room.Room) -> bool:
    """Tell whether the room's reports say, in any order they came, whether each of the customer's rooms started.

    Each room's reports must include the end of the customer's stay there (their leave, or the room's end). A room
    whose start was not reported may still have started: its reports are numbered from 1 (the provider's sequence),
    so none may be missing before the last. Numbers missing for good (events nobody asked to hear may be numbered
    too) only delay the voice comment, as far as the recording's bounded wait.
    """
    rooms = {h.room for h in room.happened if h.room is not None}
    for one in rooms:
        reports = [h for h in room.happened if h.room == one]
        if not any(h.what == "end" or (h.what == "leave" and h.label == call_room.CUSTOMER) for h in reports):
            return False  # the customer's stay there is not reported over yet
        if any(h.what == "start" for h in reports):
            continue  # it started, so it recorded: its recording is waited for
        numbers = {h.sequence for h in reports if h.sequence is not None}
        if numbers and numbers != set(range(1, max(numbers) + 1)):
            return False  # a report is missing: it may be the room's start
    return bool(rooms)


def _parts_note(parts: tuple[str, ...]) -> str:
    """Say where each part of a recording in parts plays, for a private note on the call's ticket."""
    listed = "\n".join(f"{number}. {url}" for number, url in enumerate(parts, start=1))
    return (
        f"The call's recording is in {len(parts)} parts, one after another (the call was held or transferred). "
        f"The voice comment plays the first; all of them:\n\n{listed}"
    )


def _awaits_duration(call: Call, policy: Policy) -> bool:
    """Tell whether a call record's end should wait for the parent call's final status, boundedly.

    Only that callback carries Twilio's own CallDuration (Twilio docs: status callbacks); a recording that
    arrives first would otherwise end the record with a duration and an end computed from the legs.
    """
    return policy.api == "calls" and call.parent_duration is None and RECORDING_WAIT not in call.fired


def _voice_comment(call: Call, leg: Leg, agent_id: int | None, policy: Policy) -> VoiceComment:
    """Build the voice comment of an answered call: outbound `from` is CALLER_ID, duration is talk time."""
    inbound = call.direction == "inbound"
    recording = _conversation(call)
    duration = leg.duration if leg.duration is not None else call.dial_duration
    if duration is None and recording is not None:
        duration = recording.duration
    if call.room is not None:
        # The conversation ran from the answer to the end of the customer's stay in the room, holds included.
        end = call_room.spans(call.room).ended_at or call.ended_at
        duration = _seconds(leg.answered_at, end) if leg.answered_at is not None and end else duration
    started = leg.answered_at or (recording.started_at if recording else None) or call.first_seen
    return VoiceComment(
        from_=(call.from_number or "") if inbound else (_caller_id(call, policy) or ""),
        to=(call.to_number or "") if inbound else _customer(call, leg),
        started_at=_iso(started),
        call_duration=duration or 0,
        recording_url=recording.url if recording is not None and recording.url else None,
        answered_by_id=agent_id,
        location=call.from_location if inbound else leg.to_location,
    )


def _transfer_note(transfer: call_room.Transfer, line: str | None = None) -> str:
    """Say who transferred the call to whom (or to which line, and who took it there), and when, for a private note."""
    by = transfer.by or "the agent on the call"
    when = f" at {_human(transfer.lined_at)}" if transfer.lined_at is not None else ""  # into the line's queue
    if transfer.returned:
        where = f"the line {line}" if line is not None else "the queue"
        return (f"Call returned to {where}{when}: {by} went offline with the customer on hold; "
                f"{transfer.to} took it at {_human(transfer.at)}.")  # fmt: skip
    if line is not None:
        return f"Call transferred by {by} to the line {line}{when}; {transfer.to} took it at {_human(transfer.at)}."
    return f"Call transferred by {by} to {transfer.to} at {_human(transfer.at)}."


def _customer(call: Call, leg: Leg) -> str:
    """Return the customer's number on an outbound call."""
    return call.to_number or leg.to or ""


def _answer_note(call: Call, leg: Leg) -> str:
    """Say who called whom and when, for the private comment on the new ticket."""
    when = _human(leg.answered_at or call.first_seen)
    if call_menu.forwarded(call):
        # The forwarded <Number> reports no progress: when it answered is known only from its recording.
        who = f"Inbound call from {_show(call.from_number)} to {call.to_number}"
        by = "after hours: the line was closed, so it was forwarded" if call.after_hours else "forwarded by the menu"
        return f"{who} at {_human(call.first_seen)}, {by} to {leg.to}, which answered."
    if call.direction == "inbound":
        return f"Inbound call from {_show(call.from_number)} to {call.to_number}, answered by {leg.to} at {when}."
    return f"Outbound call from {call.from_number} to {_show(_customer(call, leg))}, answered at {when}."


def _missed_note(call: Call) -> str:
    """Say who called, when, and how long it rang (and they waited in the queue), for a missed-call ticket."""
    came = f"Missed call from {_show(call.from_number)} to {call.to_number} at {_human(call.first_seen)}"
    if call.after_hours is not None:
        how = call.last_dial_status or call.dial_status
        forward = f" It was forwarded, and nobody answered ({how})." if call.after_hours == "forward" else ""
        heard = "heard its voicemail greeting and left no message" if call.voicemail_offered else "left no voicemail"
        return f"{came}, after hours: the line was closed.{forward} The caller {heard}."
    if call.placed is not None and call.placed.kind == "menu":
        return (
            f"{came}: the caller hung up in the menu, before it led them anywhere. Nobody was rung and no voicemail "
            "was left."
        )
    rang = _ring_seconds(call)
    rang_text = f"; it rang for {rang} s" if rang is not None else ""
    waited = ""
    if call.queued_at is not None:
        place = f", number {call.abandoned_position} in line," if call.abandoned_position else ""
        waited = f" The caller waited {round(call.queue_time(call.ended_at))} s in the queue{place} and hung up."
    return f"{came}{rang_text}.{waited} Nobody answered and no voicemail was left."


def _closed_note(call: Call) -> str:
    """Say what became of a call that came after hours and heard the closed message."""
    came = f"Call from {_show(call.from_number)} to {call.to_number} at {_human(call.first_seen)}, after hours"
    return f"{came}: the line was closed. The caller heard the closed message, and the call ended."


def _unrouted_note(call: Call) -> str:
    """Say what is known of a call the bridge did not route."""
    return (
        f"Call from {_show(call.from_number)} to {call.to_number} at {_human(call.first_seen)}, "
        f"{call.parent_duration} s. It was handled outside the bridge (a Studio flow, a TwiML Bin or a "
        "fallback URL), so no agent was rung and there is no recording."
    )


def _ring_seconds(call: Call) -> int | None:
    """Estimate how long the agents' phones rang, from the legs' own timestamps."""
    starts = [leg.started_at for leg in call.legs.values() if leg.started_at]
    ends = [leg.ended_at for leg in call.legs.values() if leg.ended_at]
    if starts and ends:
        return max(0, int((max(ends) - min(starts)).total_seconds()))
    return call.parent_duration


def _show(number: str | None) -> str:
    """Name a caller for a ticket subject."""
    return "an anonymous caller" if is_anonymous(number) or number is None else number


def _iso(moment: datetime | None) -> str:
    """Format an instant as ISO 8601 UTC, as voice_comment.started_at wants."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _human(moment: datetime | None) -> str:
    """Format an instant for a human reading a ticket."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "an unknown time"
