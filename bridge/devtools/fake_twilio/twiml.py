"""Parse a TwiML document and check it as Twilio does: verbs, nouns, attributes and values, or a TwimlError.

Where Twilio's docs list a verb's attributes the stand-in refuses any other (Twilio may only warn), and
where they list values it refuses any other: a bridge that passes here passes at Twilio.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

Check = Callable[[str], bool]


class TwimlError(Exception):
    """A document Twilio would refuse; `code` is Twilio's error code (Twilio docs: Error and Warning Dictionary)."""

    def __init__(self, code: int, message: str) -> None:
        """Keep Twilio's code with the reason."""
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class Verb:
    """One parsed element: its name, attributes, text and nested elements."""

    name: str
    attributes: dict[str, str]
    text: str
    children: list[Verb] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        """Return an attribute, or `default` when absent."""
        return self.attributes.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        """Return a true/false attribute."""
        return self.attributes.get(name, "true" if default else "false") == "true"

    def number(self, name: str, default: float) -> float:
        """Return a numeric attribute."""
        return float(self.attributes[name]) if name in self.attributes else default

    def events(self, name: str, default: frozenset[str]) -> frozenset[str]:
        """Return a space-separated event list."""
        return frozenset(self.attributes[name].split()) if name in self.attributes else default


def _enum(*values: str) -> Check:
    """Accept exactly one of `values`."""
    return lambda value: value in values


def _events(*values: str) -> Check:
    """Accept a space-separated list drawn from `values`."""
    return lambda value: bool(value.split()) and all(item in values for item in value.split())


def _integer(low: int, high: int | None = None) -> Check:
    """Accept a whole number in [low, high]."""
    return lambda value: value.isdigit() and int(value) >= low and (high is None or int(value) <= high)


def _keys(allowed: str, empty: bool = True) -> Check:
    """Accept keys drawn from `allowed` (and the empty string when `empty`)."""
    return lambda value: (empty and value == "") or (value != "" and all(ch in allowed for ch in value))


def _url(value: str) -> bool:
    """Accept a relative or absolute URL."""
    return value.strip() != "" and " " not in value.strip()


KEYS_TO_SEND = "0123456789ABCD#*wW"  # Twilio docs: SendDigits: digits, A-D, # and *, w (0.5 s) and W (1 s) pauses
ANY: Check = lambda value: True  # noqa: E731
BOOL = _enum("true", "false")
METHOD = _enum("GET", "POST")
CALL_EVENTS = _events("initiated", "ringing", "answered", "completed")
RECORDING_EVENTS = _events("in-progress", "completed", "absent")
TRIM = _enum("trim-silence", "do-not-trim")
CALLBACKS: dict[str, Check] = {
    "statusCallback": _url,
    "statusCallbackEvent": CALL_EVENTS,
    "statusCallbackMethod": METHOD,
}
AMD: dict[str, Check] = {
    "machineDetection": _enum("Enable", "DetectMessageEnd"),
    "amdStatusCallback": _url,
    "amdStatusCallbackMethod": METHOD,
    "machineDetectionTimeout": _integer(3, 59),
    "machineDetectionSpeechThreshold": _integer(1000, 6000),
    "machineDetectionSpeechEndThreshold": _integer(500, 5000),
    "machineDetectionSilenceTimeout": _integer(2000, 10000),
}
SSML = frozenset({"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w", "amazon:effect"})

# Twilio docs, one page per verb and noun: the attributes each documents and the values each allows.
ATTRIBUTES: dict[str, dict[str, Check]] = {
    "Say": {"voice": ANY, "language": ANY, "loop": _integer(0)},
    "Play": {"loop": _integer(0), "digits": _keys("0123456789ABCDabcd#*wW")},
    "Pause": {"length": _integer(1)},  # Twilio docs: <Pause>, length "integer > 0" (error 13910)
    "Hangup": {},
    "Reject": {"reason": _enum("rejected", "busy")},
    "Redirect": {"method": METHOD},
    "Leave": {},
    "Record": {
        "action": _url,
        "method": METHOD,
        "timeout": _integer(0),
        "finishOnKey": _keys("0123456789*#"),
        "maxLength": _integer(1),
        "playBeep": BOOL,
        "trim": TRIM,
        "recordingStatusCallback": _url,
        "recordingStatusCallbackMethod": METHOD,
        "recordingStatusCallbackEvent": RECORDING_EVENTS,
        "storageUrl": _url,
        "storageUrlMethod": METHOD,
        "transcribe": BOOL,
        "transcribeCallback": _url,
    },
    "Gather": {
        "action": _url,
        "method": METHOD,
        "timeout": _integer(1),
        "finishOnKey": _keys("0123456789*#"),
        "numDigits": _integer(1),
        "input": _enum("dtmf", "speech", "dtmf speech", "speech dtmf"),
        "actionOnEmptyResult": BOOL,  # Twilio docs: error 13338, invalid actionOnEmptyResult
        "speechTimeout": lambda value: value == "auto" or value.isdigit(),
        "language": ANY,
        "hints": ANY,
        "profanityFilter": BOOL,
        "speechModel": ANY,
        "enhanced": BOOL,
        "partialResultCallback": _url,
        "partialResultCallbackMethod": METHOD,
        "bargeIn": BOOL,
        "debug": BOOL,
        "maxSpeechTime": _integer(1),
    },
    "Dial": {
        "action": _url,
        "method": METHOD,
        "timeout": _integer(1, 600),
        "hangupOnStar": BOOL,
        "timeLimit": _integer(1, 86400),
        "callerId": ANY,
        "record": _enum(
            "do-not-record",
            "record-from-answer",
            "record-from-ringing",
            "record-from-answer-dual",
            "record-from-ringing-dual",
            "true",
            "false",
        ),
        "trim": TRIM,
        "recordingStatusCallback": _url,
        "recordingStatusCallbackMethod": METHOD,
        "recordingStatusCallbackEvent": RECORDING_EVENTS,
        "recordingTrack": _enum("both", "inbound", "outbound"),
        "answerOnBridge": BOOL,
        "ringTone": ANY,
        "sequential": BOOL,
        "referUrl": _url,
        "referMethod": METHOD,
        "events": ANY,
        "callReason": ANY,
    },
    "Client": {"url": _url, "method": METHOD, **CALLBACKS},
    "Number": {
        "sendDigits": _keys("0123456789#*wW", empty=False),
        "url": _url,
        "method": METHOD,
        "byoc": ANY,
        **CALLBACKS,
        **AMD,
    },
    "Sip": {"username": ANY, "password": ANY, "url": _url, "method": METHOD, **CALLBACKS, **AMD},
    "Queue": {"url": _url, "method": METHOD, "reservationSid": ANY, "postWorkActivitySid": ANY},
    "Conference": {
        "muted": BOOL,
        "beep": _enum("true", "false", "onEnter", "onExit"),
        "startConferenceOnEnter": BOOL,
        "endConferenceOnExit": BOOL,
        "participantLabel": lambda value: 0 < len(value) <= 128,
        "waitUrl": lambda value: True,  # '' plays nothing (Twilio docs: <Conference>, waitUrl)
        "waitMethod": METHOD,
        "maxParticipants": _integer(2, 250),
        "record": _enum("do-not-record", "record-from-start"),
        "region": ANY,
        "coach": lambda value: re.fullmatch(r"CA[0-9a-f]{32}", value) is not None,
        "trim": TRIM,
        "statusCallbackEvent": _events(
            "start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"
        ),
        "statusCallback": _url,
        "statusCallbackMethod": METHOD,
        "recordingStatusCallback": _url,
        "recordingStatusCallbackMethod": METHOD,
        "recordingStatusCallbackEvent": RECORDING_EVENTS,
        "jitterBufferSize": _enum("off", "small", "medium", "large"),
        "eventCallbackUrl": _url,
        "recordingConfigurationId": ANY,
    },
    "Enqueue": {
        "action": _url,
        "method": METHOD,
        "waitUrl": lambda value: True,  # '' plays nothing while waiting
        "waitUrlMethod": METHOD,  # Twilio docs: error 14206, invalid waitUrlMethod
        "workflowSid": ANY,
    },
    "Identity": {},
    "Parameter": {"name": ANY, "value": ANY},
}
NESTED: dict[str, frozenset[str]] = {
    "Gather": frozenset({"Say", "Play", "Pause"}),  # Twilio docs: <Gather>, nesting
    "Dial": frozenset({"Client", "Number", "Sip", "Queue", "Conference"}),
    "Client": frozenset({"Identity", "Parameter"}),
    "Enqueue": frozenset({"Task"}),
}
TOP_LEVEL = frozenset(
    {"Say", "Play", "Pause", "Hangup", "Reject", "Redirect", "Leave", "Record", "Gather", "Dial", "Enqueue"}
)
DOCUMENTED_ELSEWHERE = frozenset({"Connect", "Start", "Stop", "Pay", "Refer", "Sms", "Message", "Prompt"})
NEEDS_TEXT = frozenset({"Redirect", "Number", "Sip", "Queue", "Conference"})


def parse(text: str) -> list[Verb]:
    """Parse and check a document; return its verbs in order."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise TwimlError(12100, f"Document parse failure: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(12100, f"Document parse failure: the root element is <{root.tag}>, not <Response>")
    verbs = []
    for element in root:
        if element.tag in DOCUMENTED_ELSEWHERE:
            raise TwimlError(12100, f"<{element.tag}> is TwiML the stand-in does not model")
        if element.tag not in TOP_LEVEL:
            raise TwimlError(12100, f"Document parse failure: <{element.tag}> is not a TwiML verb")
        verbs.append(_element(element))
    return verbs


def _element(element: ET.Element) -> Verb:
    """Check one element and its children."""
    name = element.tag
    allowed = ATTRIBUTES.get(name)
    if allowed is None:
        raise TwimlError(12200, f"Schema validation: <{name}> is not allowed here")
    for attribute, value in element.attrib.items():
        check = allowed.get(attribute)
        if check is None:
            raise TwimlError(12200, f"Schema validation: <{name}> has no attribute {attribute!r}")
        if not check(value):
            raise TwimlError(12200, f"Schema validation: <{name} {attribute}={value!r}> is not an allowed value")
    children: list[Verb] = []
    if name == "Say":
        for child in element.iter():
            if child is not element and child.tag not in SSML:
                raise TwimlError(12200, f"Schema validation: <{child.tag}> is not allowed in <Say>")
        text = "".join(element.itertext()).strip()
    else:
        text = (element.text or "").strip()
        for child in element:
            if child.tag not in NESTED.get(name, frozenset()):
                raise TwimlError(12200, f"Schema validation: <{child.tag}> cannot be nested in <{name}>")
            if child.tag != "Task":
                children.append(_element(child))
            text += (child.tail or "").strip()
    if name in NEEDS_TEXT and not text:
        raise TwimlError(12200, f"Schema validation: <{name}> needs a value")
    if name == "Play" and not text and "digits" not in element.attrib:
        raise TwimlError(12200, "Schema validation: <Play> needs a URL or digits")
    if name == "Dial" and not text and not children:
        raise TwimlError(12200, "Schema validation: <Dial> needs a number or a noun")
    if name == "Enqueue" and not text and "workflowSid" not in element.attrib:
        raise TwimlError(12200, "Schema validation: <Enqueue> needs a queue name")
    if name == "Enqueue" and len(text) > 64:
        raise TwimlError(12200, "Schema validation: a queue name has at most 64 characters")
    return Verb(name, dict(element.attrib), text, children)


def absolute_actions(verbs: list[Verb]) -> bool:
    """Tell whether every action URL in inline TwiML is absolute (Twilio docs: Call resource, Twiml; error 15004)."""
    for verb in verbs:
        for attribute in ("action", "url", "waitUrl", "transcribeCallback", "recordingStatusCallback"):
            value = verb.attributes.get(attribute)
            if value and not re.match(r"^https?://", value):
                return False
        if verb.name == "Redirect" and not re.match(r"^https?://", verb.text):
            return False
        if not absolute_actions(verb.children):
            return False
    return True
