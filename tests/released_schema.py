"""The schemas each store applied as released, version by version, verbatim: what existing databases hold.

Never edit these: they are what `bridge.store.schema` must keep rendering for the versions they cover.
Once a new version ships, append the scripts it rendered for each database.
"""

# SQLite: one script per version, its statements separated by semicolons.
SQLITE: list[str] = [
    """
    CREATE TABLE seen (key TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        call_sid TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE INDEX events_by_call ON events (call_sid);
    CREATE TABLE calls (
        call_sid TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        finished INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE actions (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        call_sid TEXT NOT NULL,
        payload TEXT NOT NULL,
        needs TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        lease_until REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_error TEXT,
        result TEXT
    );
    CREATE INDEX actions_due ON actions (status, next_at);
    CREATE INDEX actions_by_call ON actions (call_sid);
    """,
    # v2: reconciliation looks for unfinished calls by age on every round.
    """
    CREATE INDEX calls_unfinished ON calls (finished, updated_at);
    """,
    # v3: recording links. Only recordings filed here may be fetched through the bridge, and the signing
    # secret lives in the database so links outlive restarts, redeploys and a rotated Twilio token.
    """
    CREATE TABLE recordings (
        sid TEXT PRIMARY KEY,
        account_sid TEXT NOT NULL,
        call_sid TEXT NOT NULL,
        media_url TEXT NOT NULL,
        channels INTEGER NOT NULL DEFAULT 1,
        filed_at REAL NOT NULL,
        upload_token TEXT,
        upload_url TEXT,
        uploaded_at REAL
    ) WITHOUT ROWID;
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    """,
    # v4: dedupe keys pruned by age.
    """
    CREATE INDEX seen_by_age ON seen (at);
    """,
    # v5: routing: agents' presence and the queue.
    """
    CREATE TABLE agents (identity TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE waiting (
        call_sid TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        arrived_at REAL NOT NULL,
        announced_at REAL
    ) WITHOUT ROWID;
    """,
    # v6: the live view reads calls by arrival.
    """
    CREATE INDEX calls_by_arrival ON calls (created_at);
    """,
    # v7: the pacer of the calls the bridge creates.
    """
    CREATE TABLE pacer (name TEXT PRIMARY KEY, next_at REAL NOT NULL) WITHOUT ROWID;
    """,
]

# PostgreSQL: one script per version, run as one multi-statement query.
POSTGRES: list[str] = [
    """
    CREATE TABLE seen (key TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL);
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        call_sid TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX events_by_call ON events (call_sid);
    CREATE TABLE calls (
        call_sid TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        finished BOOLEAN NOT NULL DEFAULT FALSE,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX calls_unfinished ON calls (finished, updated_at);
    CREATE TABLE actions (
        id BIGSERIAL PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        call_sid TEXT NOT NULL,
        payload TEXT NOT NULL,
        needs TEXT[] NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at DOUBLE PRECISION NOT NULL,
        lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        last_error TEXT,
        result TEXT
    );
    CREATE INDEX actions_due ON actions (status, next_at);
    CREATE INDEX actions_by_call ON actions (call_sid);
    """,
    # v2: SQLite's v2 added the calls_unfinished index, which this store has had since v1; kept as a step so
    # both stores count versions alike.
    "SELECT 1",
    # v3: recording links. Only recordings filed here may be fetched through the bridge, and the signing
    # secret lives in the database so links outlive restarts, redeploys, several instances and a rotated token.
    """
    CREATE TABLE recordings (
        sid TEXT PRIMARY KEY,
        account_sid TEXT NOT NULL,
        call_sid TEXT NOT NULL,
        media_url TEXT NOT NULL,
        channels INTEGER NOT NULL DEFAULT 1,
        filed_at DOUBLE PRECISION NOT NULL,
        upload_token TEXT,
        upload_url TEXT,
        uploaded_at DOUBLE PRECISION
    );
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # v4: dedupe keys pruned by age.
    """
    CREATE INDEX seen_by_age ON seen (at);
    """,
    # v5: routing: agents' presence and the queue.
    """
    CREATE TABLE agents (identity TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
    CREATE TABLE waiting (
        call_sid TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        arrived_at DOUBLE PRECISION NOT NULL,
        announced_at DOUBLE PRECISION
    );
    """,
    # v6: the live view reads calls by arrival.
    """
    CREATE INDEX calls_by_arrival ON calls (created_at);
    """,
    # v7: the pacer of the calls the bridge creates.
    """
    CREATE TABLE pacer (name TEXT PRIMARY KEY, next_at DOUBLE PRECISION NOT NULL);
    """,
]
