"""Lines (LINES, LINES_FILE): each number is the Twilio account's and calls this bridge; each line has agents.

A number another URL answers never reaches the bridge, whatever its line says: its callers hear someone
else's TwiML, or Twilio's error. The doctor asks Twilio (IncomingPhoneNumbers) where each number's calls go.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from bridge.core.lines import Line
from bridge.ops.doctor.check import Check
from bridge.ops.doctor.twilio import answer_of
from bridge.ops.settings import Settings
from bridge.twilio.rest import TwilioApi, TwilioError
from webhooks.names import Route, route_url


def line_checks(settings: Settings) -> list[Check]:
    """Say where the lines come from, and fail a line nobody can take calls for."""
    lines = settings.phone_lines
    if not lines.configured:
        return []
    source = "LINES" if settings.lines else f"LINES_FILE {settings.lines_file}"
    names = ", ".join(f"{line.label()} ({line.number})" for line in lines.all)
    checks = [Check("lines", True, f"{len(lines.all)} from {source}: {names}")]
    for line in lines.all:
        if line.agents is not None and not line.agents:
            checks.append(
                Check(
                    f"line {line.label()} agents",
                    False,
                    "none: its callers would wait out the queue and go to voicemail",
                    "give the line agents = [...] from AGENTS (or leave the key out: every agent)",
                )
            )
    return checks


async def line_number_checks(settings: Settings) -> list[Check]:
    """Check each line's number belongs to the Twilio account and sends its calls to this bridge."""
    lines = settings.phone_lines
    account = settings.twilio_account_sid
    if not lines.configured or not account:
        return []
    async with aiohttp.ClientSession() as session:
        api = TwilioApi(session, account, settings.twilio_media_auth(account), settings.twilio_api_url)
        return [await _number_check(api, line, settings.public_url) for line in lines.all]


async def _number_check(api: TwilioApi, line: Line, public_url: str) -> Check:
    """Check one line's number at Twilio (IncomingPhoneNumber: voice_url, voice_method, voice_application_sid)."""
    name = f"line {line.label()} number"
    assert line.number is not None  # a configured line always has one
    try:
        owned = await api.numbers(line.number)
    except TwilioError as exc:
        return Check(name, False, f"could not list the account's numbers: {exc}"[:200],
                     "check the Twilio credentials may read Phone Numbers")  # fmt: skip
    if not owned:
        return Check(
            name,
            False,
            f"{line.number} is not a number of this Twilio account: its calls never reach the bridge",
            "correct the line's number, or buy or port it (Twilio console > Phone Numbers > Manage)",
        )
    incoming = route_url(public_url, Route.INCOMING)
    answered_by = await _answered_by(api, owned[0])
    if answered_by != (incoming, "POST"):
        where = f"{answered_by[0] or 'nowhere'} ({answered_by[1]})"
        return Check(
            name,
            False,
            f"{line.number}'s calls go to {where}, not to this bridge",
            f"Twilio console > Phone Numbers > {line.number} > Voice: A call comes in: Webhook {incoming}, HTTP POST",
        )
    status = route_url(public_url, Route.STATUS)
    note = "" if owned[0].get("status_callback") == status else f" (Call status changes is not {status})"
    return Check(name, True, f"{line.number} is the account's and its calls come to this bridge{note}")


async def _answered_by(api: TwilioApi, number: dict[str, Any]) -> tuple[str | None, str]:
    """Return the URL and method that answer a number's calls: its TwiML App's, when it has one, else its own."""
    app_sid = number.get("voice_application_sid")
    if app_sid:
        # Twilio docs, IncomingPhoneNumber: with a voice_application_sid, the app's voice settings apply.
        app = await answer_of(api.get(f"/Applications/{app_sid}.json"))
        if isinstance(app, str) or app[0] != 200:
            return f"TwiML App {app_sid} (unreadable)", "?"
        number = app[1]
    return number.get("voice_url") or None, str(number.get("voice_method") or "POST").upper()
