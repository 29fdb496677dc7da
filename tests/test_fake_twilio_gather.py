"""The Twilio stand-in's <Gather>: digits, finish keys, timeouts and the default action."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.twiml_apps import DANA, OURS, Rig, stand_in_rig

MENU = (
    '<Response><Gather numDigits="1" action="/choice" timeout="5"><Say>Press 1 for sales</Say></Gather>'
    "<Say>No choice</Say><Redirect>/voice</Redirect></Response>"
)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A stand-in and its TwiML app."""
    async with stand_in_rig() as running:
        yield running


async def test_a_digit_during_the_prompt_submits_at_num_digits(rig: Rig) -> None:
    """A keypress cuts the prompt short; numDigits reached requests the action with Digits at once."""
    rig.app.answers.update({"/voice": MENU, "/choice": "<Response><Say>Sales</Say></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    await rig.fake.press(call, "1")
    choice = rig.app.at("/choice")[0]
    assert (choice["Digits"], choice["FinishedOnKey"], choice["msg"]) == ("1", "", "Gather End")
    assert call.heard[-1].text == "Sales"


async def test_no_input_makes_no_request_and_the_next_verb_runs(rig: Rig) -> None:
    """The timeout starts after the prompt; with nothing pressed Twilio requests nothing and goes on."""
    rig.app.answers["/voice"] = MENU
    call = await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(2 + 4)  # the prompt (two seconds by the stand-in's estimate), then less than the timeout
    assert rig.app.paths() == ["/voice"]
    await rig.fake.advance(1)
    assert rig.app.at("/choice") == []
    assert [p.text for p in call.heard][:2] == ["Press 1 for sales", "No choice"]
    await rig.fake.advance(1)
    assert rig.app.paths() == ["/voice", "/voice"]  # the <Redirect> loop


async def test_the_finish_key_is_not_sent_and_empty_input_goes_on_unless_asked(rig: Rig) -> None:
    """`#` submits what was typed (without the `#`); `#` alone is no input; actionOnEmptyResult asks anyway."""
    rig.app.answers.update({"/voice": "<Response><Gather><Say>Account</Say></Gather><Say>None</Say></Response>"})
    call = await rig.fake.incoming(DANA, OURS)
    await rig.fake.press(call, "42#")
    typed = rig.app.at("/voice")[1]  # the default action is the document's own URL
    assert (typed["Digits"], typed["FinishedOnKey"]) == ("42", "#")
    rig.app.answers["/voice"] = "<Response><Gather><Say>Account</Say></Gather><Say>None</Say></Response>"
    other = await rig.fake.incoming(DANA, OURS)
    await rig.fake.press(other, "#")
    assert other.heard[-1].text == "None"
    rig.app.answers["/voice"] = '<Response><Gather actionOnEmptyResult="true" action="/empty" timeout="3"/></Response>'
    await rig.fake.incoming(DANA, OURS)
    await rig.fake.advance(3)
    assert rig.app.at("/empty")[0]["Digits"] == ""
