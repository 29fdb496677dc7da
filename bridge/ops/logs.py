"""Logging set-up: one line per event, as text or JSON, with phone numbers masked and control characters escaped."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime

from bridge.core.phones import mask_text

_CALL_SID = re.compile(r"\bCA[0-9a-f]{32}\b")


# What bridge.core.phones masks starts with "+" and a digit, or is a run of ten digits or more that no word
# character precedes (a CallSid's hex holds such runs, but inside its word): a line with neither, most of
# them, skips the masking regex, which costs twice this search.
_MAYBE_NUMBER = re.compile(r"\+\d|(?<![\w.:+-])\d{10}")


def _masked(text: str) -> str:
    """Mask phone numbers in `text`, looking for them only when the text could hold one."""
    return mask_text(text) if _MAYBE_NUMBER.search(text) else text


# What could start a new line or rewrite one on a terminal: C0 and C1 controls (CR, LF, ESC, NEL…), DEL, the
# Unicode line and paragraph separators, and the bidirectional overrides that reorder what a reader sees.
# Anything a request controls (its path, headers, even a signed CallSid) can reach a log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The same in JSON, less what json.dumps escapes itself (below U+0020), spelled as JSON escapes.
_JSON_CONTROL = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape_one(match: re.Match[str]) -> str:
    """Spell one control character out as a Python escape."""
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """Escape control characters, so that one record is one line whatever its message holds."""
    return _CONTROL.sub(_escape_one, text) if _CONTROL.search(text) else text


def _continuation(text: str) -> str:
    """Indent a traceback's lines (each escaped), so no line of it can pass for a record of its own."""
    return "".join("\n    " + escape(line) for line in text.splitlines())


class MaskingFormatter(logging.Formatter):
    """Format a record as text, masking any phone number that slipped into the message.

    A webhook logs a line as it is acknowledged, so this is on the ingest path: the date is formatted
    once a second, and a plain record skips the generic formatting machinery (together about a third of
    a line's cost).
    """

    LAYOUT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

    def __init__(self) -> None:
        """Use the one layout the bridge logs in."""
        super().__init__(self.LAYOUT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """Return `2026-09-15 14:02:08,123`, formatting the date and time once per second."""
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        """Render, mask and escape: a record is one line, and a traceback's lines are indented under it."""
        message = escape(_masked(record.getMessage()))
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += _continuation(mask_text(record.exc_text))
        if record.stack_info:
            line += _continuation(mask_text(self.formatStack(record.stack_info)))
        return line


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object, masking phone numbers."""

    def format(self, record: logging.LogRecord) -> str:
        """Render and mask."""
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _masked(record.getMessage()),
        }
        call = _CALL_SID.search(entry["msg"])
        if call:
            entry["call_sid"] = call.group(0)
        if record.exc_info:
            entry["exc"] = mask_text(self.formatException(record.exc_info))
        text = json.dumps(entry, ensure_ascii=False)
        return _JSON_CONTROL.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text) if _JSON_CONTROL.search(text) else text


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send the bridge's logs to stderr in the chosen format.

    LOG_LEVEL=debug is the bridge's own debug lines only: the libraries stay at info, since their debug
    output carries what must never be logged (aiosqlite logs every statement with its parameters, the
    recording links' secret among them).
    """
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(MaskingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    wanted = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(max(wanted, logging.INFO))
    logging.getLogger("bridge").setLevel(wanted)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
