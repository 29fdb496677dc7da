"""Name the Twilio webhook routes once, for handlers, callback URLs, metrics labels and dedupe keys."""

from __future__ import annotations

from enum import StrEnum

PREFIX = "/twilio/voice"
UNKNOWN = "unknown"


class Route(StrEnum):
    """A Twilio Voice webhook we serve, named by the last segment of its path."""

    INCOMING = "incoming"  # the phone number's "A call comes in" URL
    OUTGOING = "outgoing"  # the TwiML App's Voice Request URL: browser agents' calls
    STATUS = "status"  # statusCallback of the parent call and of every dialed leg
    DIAL_ACTION = "dial-action"  # <Dial action>
    RECORD_ACTION = "record-action"  # <Record action>
    RECORDING_STATUS = "recording-status"  # recordingStatusCallback
    TRANSCRIPTION = "transcription"  # <Record transcribeCallback>
    SCREEN = "screen"  # <Number url> of a phone agent's leg: the whisper
    SCREEN_RESULT = "screen-result"  # the whisper's <Gather action>: did the agent press 1?
    QUEUE_WAIT = "queue-wait"  # <Enqueue waitUrl>: the wait music, and the caller's place in line
    QUEUE_ACTION = "queue-action"  # <Enqueue action>: how the caller left the queue
    RESUME = "resume"  # the Url a call the bridge moved (out of the queue) fetches: where it goes now
    MENU = "menu"  # the line's menu's <Gather action>: the key the caller pressed, or none
    ROOM = "room"  # the Url a call the bridge moves into its room fetches: the customer joins the <Conference>
    ROOM_STATUS = "room-status"  # the <Conference statusCallback>: who joined, left, was held; start and end
    ROOM_LEFT = "room-left"  # the customer's <Dial action> around the <Conference>: their stay in the room is over
    HOLD_MUSIC = "hold-music"  # the room's waitUrl and HoldUrl: the line's hold music, looped
    # Callbacks (docs/callbacks.md).
    CALLBACK_OFFER = "callback-offer"  # the wait music's <Gather action>: 1 to be called back, 2 for voicemail
    CALLBACK_NUMBER = "callback-number"  # <Gather action>: the caller confirmed their number (1) or keyed another
    CALLBACK_AGENT = "callback-agent"  # the Url of a callback's call to its agent, once answered: whisper, dial
    CALLBACK_STATUS = "callback-status"  # statusCallback of that call
    CALLBACK_DIAL = "callback-dial"  # its <Dial action>: how the customer's dial ended
    CALLBACK_SCREEN = "callback-screen"  # <Number url> on the customer's leg: press 1 to talk (not a machine)
    CALLBACK_SCREEN_RESULT = "callback-screen-result"  # that whisper's <Gather action>


# Plain strings, so that any request path can be looked up without raising.
_NAMES = frozenset(route.value for route in Route)


def route_path(route: Route) -> str:
    """Return a route's path on our server."""
    return f"{PREFIX}/{route.value}"


def route_url(public_url: str, route: Route) -> str:
    """Return a route's absolute URL, as Twilio calls it and signs it."""
    return public_url + route_path(route)


def route_label(path: str) -> str:
    """Name a request path's route for metrics; any other path is 'unknown', so the label set stays bounded."""
    name = path.rsplit("/", 1)[-1]
    return name if name in _NAMES else UNKNOWN
