"""A Twilio stand-in for tests: places calls into an app, executes its TwiML as Twilio does, fakes the REST API.

docs/fake-twilio.md says what it models, with each behaviour's Twilio doc, and how a test drives it.
"""

from bridge.devtools.fake_twilio.account import Outcome
from bridge.devtools.fake_twilio.conference_state import Conference, Participant
from bridge.devtools.fake_twilio.standin import TwilioStandIn, TwimlApp, serve_stand_in
from bridge.devtools.fake_twilio.state import Call, PhoneNumber, Recording
from bridge.devtools.fake_twilio.webhooks import Delivery, Sent

__all__ = [
    "Call",
    "Conference",
    "Delivery",
    "Outcome",
    "Participant",
    "PhoneNumber",
    "Recording",
    "Sent",
    "TwilioStandIn",
    "TwimlApp",
    "serve_stand_in",
]
