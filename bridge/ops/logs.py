"""Logging set-up: one line per event, as text or JSON, with phone numbers masked."""

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
        """Render and mask."""
        if record.exc_info or record.exc_text or record.stack_info:
            return mask_text(super().format(record))
        message = _masked(record.getMessage())
        return f"{self.formatTime(record)} {record.levelname} {record.name}: {message}"


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
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send the bridge's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(MaskingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
