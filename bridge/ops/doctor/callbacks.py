"""Callbacks (docs/callbacks.md): whether a line offers them, and whether its callers can hear the offer."""

from __future__ import annotations

from bridge.ops.doctor.check import Check
from bridge.ops.settings import Settings


def callbacks_check(settings: Settings) -> Check:
    """Say which lines offer a callback and after how long, or why the offer is never heard."""
    lines = settings.phone_lines
    offers = {
        line.label(): seconds
        for line in lines.all
        if (seconds := line.callback_offer_seconds if lines.configured else settings.callback_offer_seconds)
    }
    if not offers:
        return Check("callbacks", True, "off: no line offers waiting callers a callback (CALLBACK_OFFER_SECONDS)")
    if not settings.queueing:
        return Check(
            "callbacks",
            False,
            "a callback is offered, but callers cannot wait in the queue, so nobody hears the offer",
            "turn the queue on (TWILIO_ACCOUNT_SID; QUEUE_MAX_SIZE and QUEUE_MAX_WAIT_SECONDS above 0)",
        )
    after = ", ".join(f"{name} after {seconds:g} s" for name, seconds in offers.items())
    return Check(
        "callbacks",
        True,
        f"offered ({after}); {settings.callback_attempts} attempts, {settings.callback_retry_minutes:g} min apart; "
        f"calls placed at most {settings.twilio_calls_per_second:g} a second",
    )
