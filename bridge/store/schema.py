"""The schema: one list of migrations, each rendered for SQLite and for PostgreSQL.

Each entry is one schema version; never edit a released one, append a new one. A released entry must keep
rendering what each store applied when it was released (tests/test_sql_store.py compares both with the
scripts in tests/released_schema.py), so a database of either kind made by any earlier version keeps
upgrading. Where the databases differ, use the dialect's fragments (`d.real`, `d.boolean`, `d.texts`, …).
"""

from __future__ import annotations

from bridge.store.dialect import POSTGRES, SQLITE, Dialect, Statement

MIGRATION_LOCK = 7_240_351  # an arbitrary constant: one PostgreSQL instance migrates at a time


def only(dialect: Dialect, text: str) -> Statement:
    """Return a statement that runs in one dialect only (the released schemas differ there)."""
    return Statement(lambda d: text if d is dialect else "")


MIGRATIONS: tuple[tuple[Statement, ...], ...] = (
    # v1
    (
        Statement(lambda d: f"CREATE TABLE seen (key TEXT PRIMARY KEY, at {d.real} NOT NULL){d.without_rowid}"),
        Statement(
            lambda d: (
                f"""CREATE TABLE events (
                id {d.serial_key},
                call_sid TEXT NOT NULL,
                kind TEXT NOT NULL,
                body TEXT NOT NULL,
                received_at {d.real} NOT NULL
            )"""
            )
        ),
        Statement(lambda _: "CREATE INDEX events_by_call ON events (call_sid)"),
        Statement(
            lambda d: (
                f"""CREATE TABLE calls (
                call_sid TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                finished {d.boolean} NOT NULL DEFAULT {d.false},
                created_at {d.real} NOT NULL,
                updated_at {d.real} NOT NULL
            )"""
            )
        ),
        # The PostgreSQL store came after v2 and created v2's index with its v1.
        only(POSTGRES, "CREATE INDEX calls_unfinished ON calls (finished, updated_at)"),
        Statement(
            lambda d: (
                f"""CREATE TABLE actions (
                id {d.serial_key},
                key TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                call_sid TEXT NOT NULL,
                payload TEXT NOT NULL,
                needs {d.texts} NOT NULL DEFAULT {d.no_texts},
                status TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at {d.real} NOT NULL,
                lease_until {d.real} NOT NULL DEFAULT 0,
                created_at {d.real} NOT NULL,
                updated_at {d.real} NOT NULL,
                last_error TEXT,
                result TEXT
            )"""
            )
        ),
        Statement(lambda _: "CREATE INDEX actions_due ON actions (status, next_at)"),
        Statement(lambda _: "CREATE INDEX actions_by_call ON actions (call_sid)"),
    ),
    # v2: reconciliation looks for unfinished calls by age on every round.
    (only(SQLITE, "CREATE INDEX calls_unfinished ON calls (finished, updated_at)"),),
    # v3: recording links. Only recordings filed here may be fetched through the bridge, and the signing
    # secret lives in the database so links outlive restarts, redeploys, several instances and a rotated token.
    (
        Statement(
            lambda d: (
                f"""CREATE TABLE recordings (
                sid TEXT PRIMARY KEY,
                account_sid TEXT NOT NULL,
                call_sid TEXT NOT NULL,
                media_url TEXT NOT NULL,
                channels INTEGER NOT NULL DEFAULT 1,
                filed_at {d.real} NOT NULL,
                upload_token TEXT,
                upload_url TEXT,
                uploaded_at {d.real}
            ){d.without_rowid}"""
            )
        ),
        Statement(lambda d: f"CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL){d.without_rowid}"),
    ),
    # v4: dedupe keys are kept 24 hours (bridge.store.DEDUPE_WINDOW); the prune finds the old ones by age.
    (Statement(lambda _: "CREATE INDEX seen_by_age ON seen (at)"),),
    # v5: routing. Every agent's presence and every caller waiting in the queue, shared by every instance;
    # the rows are JSON (bridge.store.routing_rows) so presence can grow without a migration per field.
    (
        Statement(
            lambda d: (
                f"CREATE TABLE agents (identity TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at {d.real} NOT NULL)"
                f"{d.without_rowid}"
            )
        ),
        Statement(
            lambda d: (
                f"""CREATE TABLE waiting (
                call_sid TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                arrived_at {d.real} NOT NULL,
                announced_at {d.real}
            ){d.without_rowid}"""
            )
        ),
    ),
    # v6: the live view counts each line's calls of a day (and of the same day a week before) by arrival.
    (Statement(lambda _: "CREATE INDEX calls_by_arrival ON calls (created_at)"),),
    # v7: the account-wide pacer of the calls the bridge creates through Twilio's REST API (TWILIO_CALLS_PER_SECOND):
    # the earliest moment the next call may be placed, shared by every instance.
    (Statement(lambda d: f"CREATE TABLE pacer (name TEXT PRIMARY KEY, next_at {d.real} NOT NULL){d.without_rowid}"),),
)
