"""Make many distinct calls from the recorded ones: fresh sids, and optionally another caller number."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

_SID = re.compile(r"\b(CA|RE|TR)[0-9a-f]{32}\b")


def _fresh(sid: str, salt: str) -> str:
    """Derive a new sid of the same kind, stable for a given salt."""
    return sid[:2] + hashlib.sha256(f"{salt}:{sid}".encode()).hexdigest()[:32]


def variant(source: Path, salt: str, *, caller: str | None = None, old_caller: str | None = None) -> list[str]:
    """Return the lines of `source` with every sid replaced (and `old_caller` replaced by `caller`)."""
    lines = []
    for line in source.read_text().splitlines():
        text = _SID.sub(lambda m: _fresh(m.group(0), salt), line)
        if caller and old_caller:
            text = text.replace(json.dumps(old_caller)[1:-1], caller)
        lines.append(text)
    return lines


def write_calls(sources: list[tuple[Path, str | None]], count: int, directory: Path, numbers: list[str]) -> list[Path]:
    """Write `count` calls cycling through `sources`; calls from an unknown caller cycle through `numbers`."""
    paths = []
    unknown = 0
    for index in range(count):
        source, old_caller = sources[index % len(sources)]
        caller = None
        if old_caller:
            caller, unknown = numbers[unknown % len(numbers)], unknown + 1
        path = directory / f"call-{index:04d}.jsonl"
        path.write_text("\n".join(variant(source, f"call{index}", caller=caller, old_caller=old_caller)) + "\n")
        paths.append(path)
    return paths
