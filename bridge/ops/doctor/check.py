"""One line of the doctor's table, and the table as printed."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.ops.settings import Settings
from webhooks.names import Route, route_url


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def render(checks: list[Check], settings: Settings | None) -> str:
    """Format the table, the fixes and the URLs to paste into Twilio."""
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        lines.append(f"{'PASS' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"      {'':<{width}}  fix: {check.fix}")
    if settings is not None:
        base = settings.public_url
        lines += [
            "",
            "Paste into the Twilio console:",
            f"  Phone number > Voice > A call comes in (POST):  {route_url(base, Route.INCOMING)}",
            f"  Phone number > Voice > Call status changes:     {route_url(base, Route.STATUS)}",
            f"  TwiML App > Voice Request URL (POST):           {route_url(base, Route.OUTGOING)}",
            f"  TwiML App > Status Callback URL:                {route_url(base, Route.STATUS)}",
            f"  SIP Domain > Call Control (desk phones, POST):  {route_url(base, Route.OUTGOING)}",
            "",
            "Zendesk softphone app (bridge zendesk-app): its top bar loads, signed:",
            f"  {base}/zendesk/softphone",
        ]
    failed = sum(not check.ok for check in checks)
    lines += ["", f"{failed} check(s) failed." if failed else "All checks passed."]
    return "\n".join(lines)
