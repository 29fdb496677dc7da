"""A waiting caller's callback request, as the call's state keeps it: the number, each turn of calling back.

A turn rings one agent first; once the agent answers, the customer is dialled. A turn the agent did not take
is no attempt (another agent, or the same later, takes the next turn); a turn whose customer did not answer
(no answer, busy, a voicemail pickup that never pressed the key) is one, and after CALLBACK_ATTEMPTS of them
the request is closed. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from bridge.core.events import LegStatus

# How a turn ended: the customer talked with the agent; the customer did not (an attempt); the agent did not
# take it (no attempt); still going.
TurnOutcome = Literal["answered", "customer_missed", "agent_missed"]
Closed = Literal["answered", "exhausted", "cancelled", "refused"]
# Turns in a row whose call Twilio refused to place (no call rang) before the request is closed: Twilio refusing
# the same create again and again is the account's setup (a caller ID not verified, a suspended account), which
# no retry fixes, and every turn holds an agent for its offer. Twilio busy or out of reach is no refusal: an
# outage passes, and the request waits it out.
REFUSALS = 3
REFUSED = "refused"  # a turn's call Twilio would not create (4xx); "busy": Twilio too busy or out of reach


class TurnRecording(BaseModel):
    """The recording of a callback's conversation, as the dial's end reported it."""

    sid: str | None = None
    url: str | None = None
    duration: int | None = None


class Turn(BaseModel):
    """One turn of calling back: the agent's call, then the customer's dial."""

    turn: int
    agent: str | None = None  # who the call to the agent rang
    agent_sid: str | None = None
    agent_status: LegStatus = LegStatus.INITIATED
    agent_sequence: int = -1
    started_at: datetime | None = None  # the agent's call was placed
    answered_at: datetime | None = None  # the agent answered; the customer is dialled from now
    customer_status: str | None = None  # how the customer's dial ended (completed, busy, no-answer, failed, …)
    bridged: bool | None = None  # the customer pressed the key and talked with the agent
    talk: int | None = None  # seconds the customer's leg lasted
    ended_at: datetime | None = None
    recording: TurnRecording | None = None
    not_placed: str | None = None  # why the turn's call was never placed: REFUSED, or busy (Twilio out of reach)

    @property
    def refused(self) -> bool:
        """Tell whether Twilio refused to create the turn's call (nothing rang), rather than being out of reach."""
        placed = self.agent_sid is not None or self.answered_at is not None
        return self.agent_status == LegStatus.FAILED and self.not_placed == REFUSED and not placed

    @property
    def outcome(self) -> TurnOutcome | None:
        """Say how the turn ended, None while it goes on."""
        if self.customer_status is not None:
            talked = self.customer_status == "completed" and self.bridged is not False
            return "answered" if talked else "customer_missed"
        if self.agent_status.terminal and self.answered_at is None:
            return "agent_missed"
        # Answered: the dial's end says how it went (it is reported even when the agent hangs up first). An agent
        # who hung up before anyone was dialled leaves the turn open: its hold runs out and a new turn follows.
        return None


class Callback(BaseModel):
    """What the caller asked for, and every turn of calling them back."""

    number: str = ""  # E.164: the caller's own, or the one they keyed (checked against the line's country)
    keyed: bool = False  # the caller keyed it (not the number they called from)
    # False: only turns are known yet (reported before the request, as only a replay delivers them); nothing
    # is decided for the call until the request comes.
    filed: bool = True
    requested_at: datetime
    waited: float = 0.0  # seconds they had waited in the queue when they asked
    position: int | None = None  # their place in line when they asked
    turns: dict[int, Turn] = Field(default_factory=dict)
    closed: Closed | None = None
    closed_at: datetime | None = None
    retry_at: datetime | None = None  # not to be called again before this (after a customer_missed turn)

    def attempts(self) -> int:
        """Count the turns that dialled the customer and did not reach them."""
        return sum(1 for turn in self.turns.values() if turn.outcome == "customer_missed")

    def attempts_before(self, turn: Turn) -> int:
        """Count the attempts made before this turn."""
        return sum(1 for other in self.turns.values() if other.turn < turn.turn and other.outcome == "customer_missed")

    def refusals(self) -> int:
        """Count the turns in a row, the last ones, whose call Twilio refused to place."""
        count = 0
        for turn in reversed(self.ordered()):
            if not turn.refused:
                break
            count += 1
        return count

    def answered(self) -> Turn | None:
        """Return the turn in which the customer talked with an agent, if one did."""
        return next((turn for turn in self.ordered() if turn.outcome == "answered"), None)

    def ordered(self) -> list[Turn]:
        """Return the turns in order."""
        return [self.turns[number] for number in sorted(self.turns)]
