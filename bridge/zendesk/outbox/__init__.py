"""The outbox: delivers queued actions to Zendesk with retries, backoff and durable timers.

To follow one delivery: `worker.py` claims the action and settles its outcome, `dispatch.py` sends it
to the piece for its type (`callers`, `tickets`, `comments`, `records`, `pops`, `timers`), which works
with a `context.Context` and returns a typed result (`results.py`). Around them: "did it land?"
(`landed.py`), tickets closed or merged meanwhile (`relocate.py`), recording links
(`recording_links.py`), Zendesk's health (`health.py`), and the outbox's own refusals (`errors.py`).
"""

from bridge.zendesk.outbox.context import Context, RecordingLinks, TicketDefaults
from bridge.zendesk.outbox.dispatch import Deliverer
from bridge.zendesk.outbox.results import Done, Dropped, Outcome, Settled
from bridge.zendesk.outbox.worker import RetryPolicy, Worker, describe

__all__ = [
    "Context",
    "Deliverer",
    "Done",
    "Dropped",
    "Outcome",
    "RecordingLinks",
    "RetryPolicy",
    "Settled",
    "TicketDefaults",
    "Worker",
    "describe",
]
