"""RECORD_DIR: capture every accepted webhook in the recording format, phone numbers scrubbed.

A user turns real calls into test fixtures this way: `bridge replay` plays a capture back. Numbers are
replaced consistently (the same number always becomes the same fake, across calls and restarts) by a
keyed hash whose key stays in RECORD_DIR, so captures can be shared without the customers' numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from bridge.core.phones import ANONYMOUS_NUMBERS

_NUMBER = re.compile(r"(?<![\w+])\+\d{7,15}(?!\w)|(?<![\w.:+-])\d{10,15}(?!\w|\.\d)")
KEPT_HEADERS = ("I-Twilio-Idempotency-Token",)
NAME_FIELDS = ("CallerName",)  # CNAM: a person's name, not needed to replay a call


class Capture:
    """Append scrubbed webhooks to one file per call."""

    def __init__(self, directory: Path, keep: Iterable[str] = ()) -> None:
        """Write into `directory`; numbers in `keep` (our own agents and caller id) stay as they are."""
        directory.mkdir(parents=True, exist_ok=True)
        key_file = directory / ".scrub-key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
        self._key = bytes.fromhex(key_file.read_text().strip())
        self._directory = directory
        self._keep = frozenset(keep)
        self._starts: dict[str, datetime] = {}

    def fake(self, number: str) -> str:
        """Return the stable fake of a number: +1555 and seven digits of a keyed hash."""
        if number in self._keep or number in ANONYMOUS_NUMBERS:
            return number  # ours, or Twilio's stand-in for a withheld number: it must stay anonymous
        digest = hmac.new(self._key, number.encode(), hashlib.sha256).hexdigest()
        return "+1555" + str(int(digest[:12], 16) % 10_000_000).zfill(7)

    def scrub(self, value: str) -> str:
        """Replace every phone number in a value by its fake."""
        return _NUMBER.sub(lambda m: self.fake(m.group(0) if m.group(0).startswith("+") else "+" + m.group(0)), value)

    def record(
        self, call_sid: str, path: str, params: Mapping[str, str], headers: Mapping[str, str], now: datetime
    ) -> Path:
        """Append one request to the call's file; `at` counts from the call's first captured request."""
        line: dict[str, object] = {
            "path": path,
            "params": {
                name: ("Caller" if name in NAME_FIELDS else self.scrub(value)) for name, value in params.items()
            },
        }
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        if kept:
            line["headers"] = kept
        return self._append(call_sid, line, now)

    def confirmed(self, call_sid: str, event: Mapping[str, object], key: str, now: datetime) -> Path:
        """Append what a control of the softphone did once Twilio confirmed it: the event ingested, and its key."""
        scrubbed = {name: self.scrub(value) if isinstance(value, str) else value for name, value in event.items()}
        return self._append(call_sid, {"confirmed": {"event": scrubbed, "key": key}}, now)

    def _append(self, call_sid: str, line: dict[str, object], now: datetime) -> Path:
        """Append one line to the call's file, `at` first."""
        target = self._directory / f"{call_sid}.jsonl"
        if call_sid not in self._starts:
            self._starts[call_sid] = now - timedelta(seconds=_last_at(target))
        dated = {"at": round((now - self._starts[call_sid]).total_seconds(), 3), **line}
        with target.open("a", encoding="utf-8") as out:
            out.write(json.dumps(dated, ensure_ascii=False) + "\n")
        return target


def _last_at(path: Path) -> float:
    """Return the last `at` of an existing capture (a restart mid-call continues its timeline)."""
    if not path.exists():
        return 0.0
    lines = path.read_text(encoding="utf-8").splitlines()
    return float(json.loads(lines[-1])["at"]) if lines else 0.0
