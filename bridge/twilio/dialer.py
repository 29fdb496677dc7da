"""Place the calls of callbacks' turns: the agent first, through Twilio's REST API, paced account-wide.

A turn is a `PlaceCallback` action the routing transaction that decided it leased to this instance (or one
the mover claims). Before anything reaches Twilio, one store transaction checks the turn is still the one its
request's row last decided and takes a slot of the account's pacer (TWILIO_CALLS_PER_SECOND, shared by every
instance): a turn routing has moved on from is never placed, and no call the bridge creates waits in Twilio's
own queue (Twilio docs: Call resource, create; calls are placed at the account's CPS and queued beyond it).
The agent's call fetches `/twilio/voice/callback-agent` once answered: the whisper, then the customer's dial.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from bridge.core.actions import PlaceCallback
from bridge.core.clock import Clock
from bridge.core.events import CallEvent, EventKind
from bridge.core.lines import Lines
from bridge.core.phones import mask
from bridge.core.routing import OFFER_GRACE
from bridge.ingest import Ingest
from bridge.store import DONE, DROPPED, ActionRow, Store
from bridge.twilio.rest import TwilioApi, TwilioBusy, TwilioError

log = logging.getLogger("bridge.dialer")
AGENT_PATH = "/twilio/voice/callback-agent"  # webhooks.names.Route.CALLBACK_AGENT
STATUS_PATH = "/twilio/voice/callback-status"  # webhooks.names.Route.CALLBACK_STATUS
CALL_PARAM, TURN_PARAM = "call", "turn"  # the call that asked, and the turn, in the agent's call's URLs


@dataclass(frozen=True)
class Dialing:
    """What placing a turn's call needs from the settings."""

    public_url: str
    lines: Lines
    ring_seconds: int = 20  # how long the agent's phone rings
    calls_per_second: float = 1.0  # TWILIO_CALLS_PER_SECOND


class Dialer:
    """Place a callback turn's call to its agent, once, when the pacer allows."""

    def __init__(self, store: Store, api: TwilioApi, ingest: Ingest, dialing: Dialing, clock: Clock) -> None:
        """Bind the store, Twilio's API, the way back into the store, the settings and the clock."""
        self._store = store
        self._api = api
        self._ingest = ingest
        self._dialing = dialing
        self._clock = clock

    async def place(self, row: ActionRow) -> None:
        """Place the turn's call, or put it off to the pacer's next slot, or drop it once routing moved on."""
        turn = row.action
        assert isinstance(turn, PlaceCallback)
        now = self._clock()
        call = await self._store.get_call(turn.call_sid)
        if call is None or call.asked is None or turn.turn in call.asked.turns:
            # Never heard of, or this turn's call was placed already (an earlier attempt landed): never again.
            await self._store.finish(row.id, DONE if call is not None else DROPPED, result=None, error=None, now=now)
            return
        hold = self._dialing.ring_seconds + 2 * OFFER_GRACE
        claimed = await self._store.claim_callback(
            turn.call_sid, turn.turn, turn.agent, now, hold, 1.0 / self._dialing.calls_per_second
        )
        if claimed is False:
            await self._store.finish(row.id, DROPPED, result=None, error="routing moved on", now=now)
            log.info("dialer: callback turn %s of call %s is no longer due", turn.turn, turn.call_sid)
            return
        if isinstance(claimed, datetime):
            await self._store.retry_later(row.id, next_at=claimed, error="paced", now=now)
            return
        line = self._dialing.lines.get(call.route_line)
        shown = line.number or call.to_number or ""
        query = urlencode({CALL_PARAM: turn.call_sid, TURN_PARAM: turn.turn})
        base = self._dialing.public_url
        try:
            sid = await self._api.create_call(
                turn.agent, shown, f"{base}{AGENT_PATH}?{query}", f"{base}{STATUS_PATH}?{query}",
                ring_seconds=self._dialing.ring_seconds,
            )  # fmt: skip
        except TwilioBusy as exc:
            # Never sent again for this turn (a second call to the agent is worse than a turn lost): the turn is told
            # it failed and routing decides the request again; should Twilio have placed it after all (`sent`), that
            # call's own reports win over the failure (bridge/core/callback_flow.py).
            await self._failed(row, turn, exc, "busy")
            return
        except TwilioError as exc:
            await self._failed(row, turn, exc, "refused")
            return
        event = CallEvent(kind=EventKind.CALLBACK_LEG, call_sid=turn.call_sid, at=self._clock(), sequence=turn.turn,
                          leg_sid=sid, leg_to=turn.agent, status="initiated")  # fmt: skip
        await self._ingest([f"callback_placed|{turn.call_sid}|{turn.turn}"], event)
        await self._store.finish(row.id, DONE, result={"sid": sid}, error=None, now=self._clock())
        log.info("dialer: callback turn %s of call %s rings %s (%s)", turn.turn, turn.call_sid, mask(turn.agent), sid)

    async def _failed(self, row: ActionRow, turn: PlaceCallback, exc: TwilioError, why: str) -> None:
        """Tell the request its turn's call was not placed (the agent is let go), and settle the action."""
        event = CallEvent(kind=EventKind.CALLBACK_LEG, call_sid=turn.call_sid, at=self._clock(), sequence=turn.turn,
                          leg_to=turn.agent, status="failed", reason=why)  # fmt: skip
        await self._ingest([f"callback_failed|{turn.call_sid}|{turn.turn}"], event)
        await self._store.finish(row.id, DROPPED, result=None, error=str(exc), now=self._clock())
        log.warning("dialer: callback turn %s of call %s not placed (%s): %s", turn.turn, turn.call_sid, why, exc)
