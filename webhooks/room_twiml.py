"""The TwiML of a call's room: the customer's stay in its <Conference>, an agent joining, the hold music.

The room is named after the customer's call, so every request about it says whose call it is (FriendlyName);
the first participant's TwiML sets the room's callbacks and recording for everyone (Twilio docs: TwiML
<Conference>, statusCallback: "set by the first Participant"), so every join here sets the same ones.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import Conference, Dial, VoiceResponse

from bridge.core import call_room
from webhooks.names import Route
from webhooks.twiml import PARENT_PARAM, RECORDING_EVENTS, TwilioConfig

# What the bridge hears of a room (Twilio docs: statusCallbackEvent); `modify` tells when a consulted colleague became
# the one whose leaving ends the room: the consultation completed as a transfer.
ROOM_EVENTS = "start end join leave hold modify"
CUSTOMER_LABEL = "customer"
MUSIC_PARAM = "line"  # the hold music's URL names the line whose music it plays


def music_url(config: TwilioConfig, line: str | None) -> str:
    """Return the URL of the room's hold music (the line's, when lines name one)."""
    return config.url(Route.HOLD_MUSIC) + (f"?{urlencode({MUSIC_PARAM: line})}" if line else "")


def customer(config: TwilioConfig, parent: str, line: str | None) -> VoiceResponse:
    """Bring the customer into their call's room: on hold (the music) until an agent joins, the room's end theirs.

    startConferenceOnEnter=false: alone, or with only others who do not start it, the customer hears the waitUrl,
    the hold music; endConferenceOnExit=true: when they hang up, the room ends for everyone (Twilio docs: TwiML
    <Conference>). The room records from its start, when an agent is with them: hold music is never recorded.
    """
    response = VoiceResponse()
    action = f"{config.url(Route.ROOM_LEFT)}?{urlencode({PARENT_PARAM: parent})}"
    dial = Dial(action=action, method="POST")
    dial.append(_conference(config, parent, line, start=False, label=CUSTOMER_LABEL))
    response.append(dial)
    return response


def agent(config: TwilioConfig, parent: str, identity: str, line: str | None) -> VoiceResponse:
    """Bring an agent into the call's room: the room starts with them, and ends when they leave it.

    An agent who hangs up ends the call as hanging up ends any call they answered; the customer's stay then ends
    and their <Dial action> hangs up their call.
    """
    response = VoiceResponse()
    dial = Dial()
    label = call_room.label_of(identity)
    dial.append(_conference(config, parent, line, start=True, label=label))
    response.append(dial)
    return response


def hold_music(music: str) -> VoiceResponse:
    """Play the hold music over and over: a room's waitUrl is fetched once, not again when it ends.

    Twilio docs: TwiML <Conference>, waitUrl ("will not be requested again"); <Play loop="0"> repeats until the
    participant leaves the wait (Twilio docs: TwiML <Play>, loop).
    """
    response = VoiceResponse()
    response.play(music, loop=0)
    return response


def _conference(config: TwilioConfig, parent: str, line: str | None, *, start: bool, label: str) -> Conference:
    """Build the room's <Conference> noun with the room's callbacks and recording, as every join sets them."""
    options: dict[str, Any] = {
        "start_conference_on_enter": start,
        "end_conference_on_exit": True,
        "beep": False,
        "participant_label": label,
        "wait_url": music_url(config, line),
        "wait_method": "POST",
        "status_callback": config.url(Route.ROOM_STATUS),
        "status_callback_method": "POST",
        "status_callback_event": ROOM_EVENTS,
    }
    if config.record_calls:
        recording = f"{config.url(Route.RECORDING_STATUS)}?{urlencode({PARENT_PARAM: parent})}"
        options.update(
            record="record-from-start",
            recording_status_callback=recording,
            recording_status_callback_method="POST",
            recording_status_callback_event=RECORDING_EVENTS,
        )
    return Conference(parent, **options)
