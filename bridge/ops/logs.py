"""Logging set-up: one line per event, as text or JSON, with phone numbers masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from bridge.core.phones import mask_text

_CALL_SID = re.compile(r"\bCA[0-9a-f]{32}\b")


class MaskingFormatter(logging.Formatter):
    """Format a record as text, masking any phone number that slipped into the message."""

    def format(self, record: logging.LogRecord) -> str:
        """Render and mask."""
        return mask_text(super().format(record))


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object, masking phone numbers."""

    def format(self, record: logging.LogRecord) -> str:
        """Render and mask."""
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_text(record.getMessage()),
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
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
