"""Every statement of the store, written once; `bridge.store.dialect` renders each for SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from bridge.core.action_codec import encode
from bridge.core.actions import TELEPHONY_KINDS, Action, Timer
from bridge.core.clock import to_epoch
from bridge.store import DEAD, DROPPED, PENDING, URGENT_KINDS, URGENT_WHEN_SET
from bridge.store.dialect import Dialect, Statement, TextList, sql

ACTION_COLUMNS = "id, key, kind, call_sid, payload, needs, status, attempts, next_at, created_at, last_error, result"


def urgent(d: Dialect) -> str:
    """Return `bridge.store.is_urgent` over the row `a`, derived from the same rule (no column, no migration)."""
    kinds = ", ".join(f"'{kind.value}'" for kind in sorted(URGENT_KINDS))
    when_set = "".join(
        f" OR (a.kind = '{kind.value}' AND {d.json_field('a.payload', field)} IS NOT NULL)"
        for kind, field in sorted(URGENT_WHEN_SET.items())
    )
    return f"(a.kind IN ({kinds}){when_set})"


def telephony() -> str:
    """Return whether the action `a` is for the telephony provider's worker rather than Zendesk's."""
    kinds = ", ".join(f"'{kind.value}'" for kind in sorted(TELEPHONY_KINDS))
    return f"(a.kind IN ({kinds}))"


def waiting_on(d: Dialect) -> str:
    """Return a subquery with a row for each dependency of `a` still pending.

    Each dependency is looked up by its unique key: joined on status instead, the planner scanned every
    pending row for every candidate, and a backlog of 2,000 made each claim take a second.
    """
    return f"""SELECT 1 FROM {d.each("a.needs", "n")}
        WHERE (SELECT d.status FROM actions AS d WHERE d.key = n.value) = '{PENDING}'"""


# The ingest plan's steps (bridge.store.plan).
MARK_SEEN = sql("INSERT INTO seen (key, at) VALUES (:key, :now) ON CONFLICT DO NOTHING")
SAVE_EVENT = sql("INSERT INTO events (call_sid, kind, body, received_at) VALUES (:call_sid, :kind, :body, :now)")
LOAD_CALL = sql("SELECT state FROM calls WHERE call_sid = :call_sid")
CALLS_ARRIVED = sql(
    """SELECT call_sid, created_at, state FROM calls WHERE created_at >= :start AND created_at < :end
    ORDER BY created_at, call_sid"""
)
SAVE_CALL = sql(
    """INSERT INTO calls (call_sid, state, finished, created_at, updated_at) VALUES (:call_sid, :state, :finished,
    :now, :now) ON CONFLICT (call_sid) DO UPDATE SET state = excluded.state, finished = excluded.finished,
    updated_at = excluded.updated_at"""
)
INSERT_ACTION = sql(
    """INSERT INTO actions (key, kind, call_sid, payload, needs, next_at, created_at, updated_at)
    VALUES (:key, :kind, :call_sid, :payload, :needs, :next_at, :now, :now) ON CONFLICT (key) DO NOTHING"""
)


def action_params(action: Action, now: float) -> dict[str, Any]:
    """Return a new action's INSERT_ACTION parameters."""
    return {
        "key": action.key,
        "kind": action.kind.value,
        "call_sid": action.call_sid,
        "payload": json.dumps(encode(action), separators=(",", ":")),
        "needs": TextList(action.needs),
        "next_at": to_epoch(action.due) if isinstance(action, Timer) else now,
        "now": now,
    }


REVIVE_KEY = sql(
    f"""UPDATE actions SET status = '{PENDING}', next_at = :now, created_at = :now, lease_until = 0,
    updated_at = :now WHERE key = :key AND status IN ('{DEAD}', '{DROPPED}')"""
)
CANCEL_KEY = sql(
    f"""UPDATE actions SET status = '{DROPPED}', last_error = 'no longer needed', updated_at = :now
    WHERE key = :key AND status = '{PENDING}'"""
)
SETTLE = sql(
    """UPDATE actions SET status = :status, result = :result, last_error = COALESCE(:error, last_error),
    lease_until = 0, updated_at = :now WHERE id = :id"""
)

# The outbox.
CLAIMABLE = Statement(
    lambda d: (
        f"""SELECT {ACTION_COLUMNS} FROM actions AS a
    WHERE a.status = '{PENDING}' AND a.next_at <= :now AND a.lease_until <= :now
      AND {telephony()} = :telephony
      AND (NOT :urgent_only OR {urgent(d)})
      AND NOT EXISTS ({waiting_on(d)})
    ORDER BY {urgent(d)} DESC, a.next_at, a.id
    LIMIT :limit{d.skip_locked}"""
    )
)
# Counting the attempt when it starts, not when it fails, is what lets a delivery after a crash
# mid-request know that the request may already have reached Zendesk.
LEASE = sql("UPDATE actions SET lease_until = :until, attempts = attempts + 1 WHERE id = :id")
BRING_FORWARD = sql(
    f"""UPDATE actions SET next_at = :now, updated_at = :now
    WHERE status = '{PENDING}' AND next_at > :now AND kind != 'timer' AND last_error IS NOT NULL"""
)
NEXT_DUE = Statement(
    lambda d: (
        f"""SELECT MIN({d.greatest}(a.next_at, a.lease_until)) FROM actions AS a
    WHERE a.status = '{PENDING}' AND {telephony()} = :telephony AND NOT EXISTS ({waiting_on(d)})"""
    )
)
ACTIONS_BY_KEY = Statement(
    lambda d: f"SELECT {ACTION_COLUMNS} FROM actions WHERE key IN (SELECT n.value FROM {d.each(':keys', 'n')})"
)
RETRY_LATER = sql(
    "UPDATE actions SET next_at = :next_at, last_error = :error, lease_until = 0, updated_at = :now WHERE id = :id"
)
UPDATE_RESULT = sql("UPDATE actions SET result = :result, updated_at = :now WHERE key = :key")
RELEASE = sql("UPDATE actions SET lease_until = 0 WHERE id = :id")
RELEASE_LEASES = sql(f"UPDATE actions SET lease_until = 0 WHERE status = '{PENDING}' AND lease_until > 0")
STATS = sql(
    f"""SELECT COUNT(CASE WHEN status = '{PENDING}' THEN 1 END) AS pending,
    COUNT(CASE WHEN status = '{DEAD}' THEN 1 END) AS dead,
    MIN(CASE WHEN status = '{PENDING}' THEN created_at END) AS oldest FROM actions"""
)
LIST_ACTIONS = Statement(
    lambda d: (
        f"""SELECT {ACTION_COLUMNS} FROM actions
    WHERE status IN (SELECT n.value FROM {d.each(":statuses", "n")}) ORDER BY id DESC LIMIT :limit"""
    )
)
REVIVE = sql(
    f"""UPDATE actions SET status = '{PENDING}', next_at = :now, created_at = :now, lease_until = 0,
    updated_at = :now WHERE id = :id AND status IN ('{DEAD}', '{DROPPED}')"""
)
DROP = sql(
    f"""UPDATE actions SET status = '{DROPPED}', last_error = :reason, updated_at = :now
    WHERE id = :id AND status IN ('{PENDING}', '{DEAD}')"""
)

# Calls and events.
STALE_CALLS = Statement(
    lambda d: (
        f"""SELECT call_sid FROM calls WHERE finished = {d.false} AND updated_at < :before
    ORDER BY updated_at LIMIT :limit"""
    )
)
TOUCH_CALL = sql("UPDATE calls SET updated_at = :now WHERE call_sid = :call_sid")
FORGET_SEEN = sql("DELETE FROM seen WHERE key IN (SELECT key FROM seen WHERE at < :before LIMIT :limit)")
# Webhook events only: the ROUTED events routing adds beside them are decisions, not arrivals.
COUNT_EVENTS = sql("SELECT COUNT(*) FROM events WHERE kind != 'routed'")

# Recording links.
KEEP_SECRET = sql("INSERT INTO secrets (name, value) VALUES (:name, :value) ON CONFLICT DO NOTHING")
READ_SECRET = sql("SELECT value FROM secrets WHERE name = :name")
FILE_RECORDING = sql(
    """INSERT INTO recordings (sid, account_sid, call_sid, media_url, channels, filed_at)
    VALUES (:sid, :account_sid, :call_sid, :media_url, :channels, :filed_at) ON CONFLICT (sid) DO NOTHING"""
)
READ_RECORDING = sql(
    """SELECT sid, account_sid, call_sid, media_url, channels, filed_at, upload_token, upload_url, uploaded_at
    FROM recordings WHERE sid = :sid"""
)
SAVE_UPLOAD = sql("UPDATE recordings SET upload_token = :token, upload_url = :url, uploaded_at = :now WHERE sid = :sid")

# Routing: presence and the queue, read and written under the routing lock (ROUTING_LOCK).
ROUTING_LOCK = "routing"
LOAD_AGENTS = sql("SELECT identity, state FROM agents")
ADD_AGENT = sql(
    "INSERT INTO agents (identity, state, updated_at) VALUES (:identity, :state, :now) ON CONFLICT DO NOTHING"
)
SAVE_AGENT = sql(
    """INSERT INTO agents (identity, state, updated_at) VALUES (:identity, :state, :now)
    ON CONFLICT (identity) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"""
)
LOAD_WAITING = sql("SELECT state, announced_at FROM waiting ORDER BY arrived_at, call_sid")
SAVE_WAITING = sql(
    """INSERT INTO waiting (call_sid, state, arrived_at) VALUES (:call_sid, :state, :arrived_at)
    ON CONFLICT (call_sid) DO UPDATE SET state = excluded.state, arrived_at = excluded.arrived_at"""
)
DROP_WAITING = sql("DELETE FROM waiting WHERE call_sid = :call_sid")
ANY_WAITING = sql("SELECT 1 FROM waiting LIMIT 1")
ANNOUNCED = sql("UPDATE waiting SET announced_at = :now WHERE call_sid = :call_sid")

# The pacer of the calls the bridge places (TWILIO_CALLS_PER_SECOND), read and set under PACER_LOCK.
PACER_LOCK = "pacer"
PACER_READ = Statement(lambda d: f"SELECT next_at FROM pacer WHERE name = :name{d.for_update}")
PACER_SET = sql(
    """INSERT INTO pacer (name, next_at) VALUES (:name, :next_at)
    ON CONFLICT (name) DO UPDATE SET next_at = excluded.next_at"""
)

PING = sql("SELECT 1")

# The schema version, kept where each dialect keeps it.
VERSION_TABLE = Statement(lambda d: d.version_table)
VERSION_ROW = Statement(lambda d: d.version_row)
VERSION_KNOWN = Statement(lambda d: d.version_known)
VERSION_READ = Statement(lambda d: d.version_read)
