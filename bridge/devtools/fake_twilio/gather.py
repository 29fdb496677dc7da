"""<Gather>: collect keypresses during and after its nested prompts (Twilio docs: TwiML <Gather>)."""

from __future__ import annotations

from urllib.parse import urljoin

from bridge.devtools.fake_twilio.interpreter import Context, Flow, Interpreter
from bridge.devtools.fake_twilio.state import Call
from bridge.devtools.fake_twilio.twiml import Verb

KEYS = frozenset({"digits"})


async def gather(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Play the nested verbs, take digits until numDigits, finishOnKey or the timeout, then request the action."""
    await rt.answer(call)
    finish = verb.get("finishOnKey", "#")  # Twilio docs: <Gather>, finishOnKey default '#'; '' disables it
    wanted = int(verb.number("numDigits", 0)) or None  # default: unlimited
    timeout = verb.number("timeout", 5)  # Twilio docs: <Gather>, timeout default 5 s, after the prompts end
    typed = ""
    pressed: list[str] = []
    for nested in verb.children:
        kind, value = await rt.prompt(call, nested, KEYS)
        if kind == "digits":
            pressed.extend(str(value))  # a keypress stops the prompt (barge-in)
            break
    finished_on = ""
    while True:
        while pressed:
            key = pressed.pop(0)
            if finish and key in finish:
                finished_on = key
                return await _submit(rt, call, verb, url, typed, finished_on)
            typed += key
            if wanted is not None and len(typed) >= wanted:
                return await _submit(rt, call, verb, url, typed, finished_on)
        kind, value = await rt.wait(call, timeout, KEYS)
        if kind == "timeout":
            break
        pressed.extend(str(value))
    if typed or verb.flag("actionOnEmptyResult"):
        return await _submit(rt, call, verb, url, typed, finished_on)
    return None  # Twilio docs: <Gather>: no input, no request; the next verb runs


async def _submit(rt: Interpreter, call: Call, verb: Verb, url: str, typed: str, finished_on: str) -> Flow:
    """Request the action (default: the current document's URL) with Digits, or go on when nothing was typed."""
    if not typed and not verb.flag("actionOnEmptyResult"):
        return None  # Twilio docs: <Gather>: the finish key alone is no input
    action = urljoin(url, verb.get("action")) if verb.get("action") else url
    # Digits without the finish key; FinishedOnKey and msg as Twilio sends them (tests/recordings, screen-result).
    params = {"Digits": typed, "FinishedOnKey": finished_on, "msg": "Gather End"}
    return await rt.action(call, action, verb.get("method", "POST"), params)


def register(rt: Interpreter) -> None:
    """Teach the interpreter <Gather>."""
    rt.verbs["Gather"] = gather
