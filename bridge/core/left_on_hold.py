"""A customer left on hold: the agent who has the call went away while the customer waited in its room (no I/O).

On hold in the call's room, the customer hears the hold music with nobody; their agent is out of the room until
they resume (docs/calls-in-progress.md). Should that agent's softphone go away for good (the tab closed, the
laptop shut), nobody would ever resume, and the customer would hear the music until Twilio's own limit for a
<Dial> (four hours). Once the agent has been gone a whole PRESENCE_TIMEOUT_SECONDS more (a reload comes back well
within it), the call goes back to its line's queue, at the place its arrival gives it, as a transfer to the line.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge.core import call_room, presence
from bridge.core.call_model import Call
from bridge.core.events import CallEvent, EventKind
from bridge.core.presence import Agent, PresencePolicy


def left_on_hold(call: Call, agent: Agent, now: datetime, policy: PresencePolicy) -> datetime | None:
    """Return when the customer's hold began if `agent`, who has the call, left them on it long enough ago."""
    gone = presence.gone_since(agent, policy) if presence.softphone_gone(agent, now, policy) else None
    if gone is None or now - gone < timedelta(seconds=policy.presence_timeout):
        return None
    if call.room is None or call.over:
        return None
    seen = call_room.spans(call.room)
    if not seen.on_hold or seen.agents_now or seen.others_now or seen.pending or seen.in_line is not None:
        return None  # someone is with the customer, or being called in, or the line has them already
    if (seen.last_agent or call.answered_agent) != agent.identity:
        return None  # the call is someone else's now
    return seen.holds[-1][0]


def back_to_line(call: Call, line: str, now: datetime) -> CallEvent:
    """Return the note that gives the customer back to their line: it waits in the line's queue from now."""
    return CallEvent(kind=EventKind.ROOM, call_sid=call.sid, at=now, status="line", leg_to=line,
                     reason=call_room.RETURNED)  # fmt: skip
