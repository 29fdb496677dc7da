"""Replay recorded calls through the real bridge into the sandbox and check what Zendesk holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bridge.appkeys import STORE
from bridge.core.calls import (
    ABANDONED_IN_QUEUE,
    ABANDONED_IN_VOICEMAIL,
    ABANDONED_ON_HOLD,
    COMPLETED,
    NOT_ANSWERED,
    OUTSIDE_ABANDONED,
    OUTSIDE_COMPLETED,
)
from bridge.devtools.demo import calls_mode
from tests.conftest import (
    BridgeFactory,
    call_outcome,
    call_records,
    parent_sid,
    recording,
    tpe_comments,
    voice_comments,
)
from tests.customer_flows import line as customer_line
from tests.hours_flows import FORWARD_TO, closed_now, holiday_now
from tests.menu_flows import EMERGENCY, MENU_LINES, SALES_CLOSED
from tests.queue_flows import TWO_LINES

DANA, ERIN, FRANK, ALICE, BOB, CAROL, INTEGRATION = 2001, 2002, 2003, 1001, 1002, 1003, 1000
NEW = "new"  # a requester the bridge had to create
LATER = "Hi, this is Dana again, the replacement for order 4471 has not arrived yet, please call me back."
QUICK_WAIT = {"recording_wait_seconds": 0.2}  # the flow ends on a wait: do not wait two minutes for it
DESK_PHONE = {"agents": {"sip:dave@acme.sip.twilio.com": 1002}}
# The queue's recordings come from a bridge that queues (it knows its Twilio account): replay them on one.
QUEUEING = {"twilio_account_sid": "AC455c03f9e322135d9c681cabb529d68e"}
# The lines' recordings: Support (+16505550100: group 5001, brand 6001) and Sales (+16505550101: 5002, 6002).
LINES = {**QUEUEING, "lines": TWO_LINES}
KNOWING = {**QUEUEING, "lines": customer_line()}  # tests/customer_flows.py's line: the caller's agent first, VIPs
# A callback request (docs/callbacks.md): its ticket is via 45, tagged, popped to the agent its turns rang.
CALLBACK: dict[str, Any] = {
    "via": 45, "requester": 2001, "assignee": None, "tags": ["callback_requested"], "user_pops": set(),
    "ticket_pops": 1, "settings": QUEUEING, "callback": True,
}  # fmt: skip
# A callback that reached the customer: the ticket goes to the agent who called them back, with a note saying so.
CALLBACK_TAKEN: dict[str, Any] = {**CALLBACK, "assignee": ALICE}
# After hours (tests/hours_flows.py): Support (group 5001, brand 6001) closed whenever the replay runs.
CLOSED: dict[str, Any] = {"group": 5001, "brand": 6001, "nickname": "Support", "after_hours": True}
CLOSED |= {"user_pops": set(), "ticket_pops": 0}
AFTER_HOURS_VOICEMAIL = {
    "via": 44,
    "requester": DANA,
    "assignee": None,
    "voice": {"call_duration": 21, "transcription_text": "This is a message left with the Twilio stand-in."},
    "tags": ["after_hours"],
    **CLOSED,
}
# The menus' recordings: Support (+16505550100) has a menu (1 Sales, 2 Support, 3 a forward, 9 voicemail; Sales its
# default). Each answer of the menu is replayed in its place, and the ticket and record say where it led.
MENUS = {**QUEUEING, "lines": MENU_LINES}
# Calls in progress (tests/room_flows.py): Dana calls, alice and bob ring, alice answers; then the room's story.
ROOM_CALL: dict[str, Any] = {
    "via": 45,
    "requester": DANA,
    "user_pops": {(ALICE, DANA), (BOB, DANA)},
    "settings": QUEUEING,
}


class BridgeLink:
    """Equal to the bridge's signed link to one recording (RECORDINGS=proxy, the default)."""

    def __init__(self, sid: str) -> None:
        """Name the recording."""
        self.pattern = re.compile(rf"http://127\.0\.0\.1:\d+/recordings/{sid}\.mp3\?sig=[A-Za-z0-9_-]{{43}}")

    def __eq__(self, other: object) -> bool:
        """Match a link to this recording."""
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None


# One row per recording: the ticket it must produce (or none), and the user pops while ringing.
EXPECTED: dict[str, dict[str, Any]] = {
    "inbound_answered": {
        "via": 45,
        "requester": DANA,
        "assignee": ALICE,
        "voice": {
            "from": "+14155550123",
            "to": "+16505550100",
            "call_duration": 95,
            "started_at": "2026-09-15T14:02:15Z",
            "answered_by_id": ALICE,
            "location": "SAN FRANCISCO, CA, US",
            "recording_url": BridgeLink("RE5eab47b37ef27c0e5986cfffd23c1ff1"),
        },
        "user_pops": {(ALICE, DANA)},
    },
    # Alice paused the recording 20 s into the talk and resumed it 15 s later (tests/control_flows.py): the
    # ticket is as any answered call's, and the record counts both clicks and the 15 s not recorded.
    "inbound_recording_paused": {
        "via": 45,
        "requester": DANA,
        "assignee": ALICE,
        "voice": {"answered_by_id": ALICE, "call_duration": 75},
        "user_pops": {(ALICE, DANA), (BOB, DANA), (CAROL, DANA)},
        "record": {"recording_control_interactions": 2, "not_recording_time": 15, "talk_time": 75},
    },
    "inbound_recording_first": {"via": 45, "requester": DANA, "assignee": ALICE, "user_pops": {(ALICE, DANA)}},
    "inbound_stale_ringing": {"via": 45, "requester": DANA, "assignee": ALICE, "user_pops": {(ALICE, DANA)}},
    "inbound_two_agents": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB, "call_duration": 60},
        "user_pops": {(ALICE, DANA), (BOB, DANA)},
    },
    "inbound_idempotency_tokens": {"via": 45, "requester": DANA, "assignee": ALICE, "user_pops": {(ALICE, DANA)}},
    "inbound_unknown_caller": {
        "via": 45,
        "requester": NEW,
        "new_user_phone": "+14155550142",
        "assignee": ALICE,
        "user_pops": {(ALICE, NEW)},
    },
    "inbound_unmapped_agent": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": {"answered_by_id": None, "call_duration": 40},
        "user_pops": set(),
        "ticket_pops": 0,
    },
    "inbound_phone_agent": {"via": 45, "requester": DANA, "assignee": CAROL, "user_pops": {(CAROL, DANA)}},
    "voicemail_transcribed": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {
            "call_duration": 23,
            "transcription_text": "Hi, this is Dana from Acme, my order 4471 arrived "
            "damaged, please call me back at this number.",
        },
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "voicemail_transcription_first": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"transcription_text": str},
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "voicemail_transcription_failed": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"transcription_text": None, "call_duration": 23},
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "voicemail_anonymous": {
        "via": 44,
        "requester": INTEGRATION,
        "assignee": None,
        "voice": {"from": "Anonymous", "location": None},
        "user_pops": set(),
        "ticket_pops": 0,
        "users_created": 0,
    },
    "voicemail_unknown_caller": {
        "via": 44,
        "requester": NEW,
        "new_user_phone": "+14155550166",
        "assignee": None,
        "user_pops": {(ALICE, NEW)},
        "ticket_pops": 0,
    },
    "missed_caller_hung_up": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "missed_recording_absent": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "outbound_answered": {
        "via": 46,
        "requester": ERIN,
        "assignee": ALICE,
        "voice": {
            "from": "+16505550100",
            "to": "+14155550199",
            "call_duration": 142,
            "answered_by_id": ALICE,
            "started_at": "2026-09-15T16:30:09Z",
        },
        "user_pops": {(ALICE, ERIN)},
    },
    "outbound_unanswered": {"ticket": False, "user_pops": {(ALICE, ERIN)}, "settings": QUICK_WAIT},
    # --- Twilio as it really behaves -------------------------------------------------------------------
    "voicemail_answer_on_bridge": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 23, "transcription_text": LATER},
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "voicemail_dial_busy": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 23},
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "voicemail_dial_failed": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 23},
        "user_pops": set(),
        "ticket_pops": 0,
    },
    "voicemail_dial_canceled": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 23},
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "voicemail_max_length": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 119, "transcription_text": LATER},
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    # Too short for Twilio to transcribe: no wait for a transcription that never comes (60 s > settle's 30 s).
    "voicemail_too_short": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 2, "transcription_text": None},
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
    },
    "voicemail_withheld_number": {
        "via": 44,
        "requester": INTEGRATION,
        "assignee": None,
        "voice": {"from": "+266696687", "call_duration": 23},
        "user_pops": set(),
        "ticket_pops": 0,
        "users_created": 0,
    },
    "voicemail_hung_up_in_greeting": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
        "settings": QUICK_WAIT,
    },
    "voicemail_empty_recording": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
        "settings": QUICK_WAIT,
    },
    "missed_withheld_empty_from": {
        "via": 45,
        "requester": INTEGRATION,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": set(),
        "ticket_pops": 0,
        "users_created": 0,
    },
    "inbound_phone_agent_screened": {
        "via": 45,
        "requester": DANA,
        "assignee": CAROL,
        "voice": {"answered_by_id": CAROL, "call_duration": 99},
        "user_pops": {(CAROL, DANA)},
    },
    "inbound_phone_agent_mobile_voicemail": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 20, "transcription_text": LATER},
        "user_pops": {(CAROL, DANA)},
        "ticket_pops": 0,
    },
    "inbound_long_call": {
        "via": 45,
        "requester": DANA,
        "assignee": ALICE,
        "voice": {"call_duration": 2700},
        "user_pops": {(ALICE, DANA)},
    },
    "inbound_unknown_status": {
        "via": 45,
        "requester": DANA,
        "assignee": ALICE,
        "voice": {"call_duration": 60},
        "user_pops": {(ALICE, DANA)},
    },
    "unrouted_studio_call": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["outside_bridge"],
        "not_tags": ["missed_call"],
        "user_pops": set(),
        "ticket_pops": 0,
        "settings": QUICK_WAIT,
    },
    "unrouted_zero_length_call": {"ticket": False, "user_pops": set(), "settings": QUICK_WAIT},
    "inbound_sip_desk_phone": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB},
        "user_pops": {(BOB, DANA)},
        "settings": DESK_PHONE,
    },
    "outbound_sip_desk_phone": {
        "via": 46,
        "requester": ERIN,
        "assignee": BOB,
        "voice": {"from": "+16505550100", "to": "+14155550199", "call_duration": 70, "answered_by_id": BOB},
        "user_pops": {(BOB, ERIN)},
        "settings": DESK_PHONE,
    },
    "outbound_unknown_callee": {
        "via": 46,
        "requester": NEW,
        "new_user_phone": "+14155550188",
        "assignee": ALICE,
        "user_pops": {(ALICE, NEW)},
    },
    # The queue (tests/queue_flows.py plays them through Twilio's stand-in). A replay sends the webhooks, not
    # the presence changes that caused them, so only what the webhooks say is checked here: waits are not.
    "queue_answered": {
        "via": 45,
        "requester": DANA,
        "assignee": ALICE,
        "user_pops": {(ALICE, DANA)},
        "settings": QUEUEING,
    },
    "queue_hung_up": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": set(),
        "ticket_pops": 0,
        "settings": QUEUEING,
    },
    "queue_timeout": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "user_pops": set(),
        "ticket_pops": 0,
        "settings": QUEUEING,
    },
    "queue_full": {
        "via": 45,
        "requester": ERIN,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": set(),
        "ticket_pops": 0,
        "settings": QUEUEING,
    },
    "queue_rang_out_keeps_place": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB},
        "user_pops": {(ALICE, DANA), (BOB, DANA)},
        "settings": QUEUEING,
    },
    "queue_agent_away_mid_ring": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB},
        "user_pops": {(ALICE, DANA), (BOB, DANA)},
        "settings": QUEUEING,
    },
    # Calls in progress (tests/room_flows.py): held, transferred, consulted, joined by a third party. The webhooks say
    # it all: the room's reports (hold, join, leave; `modify` when a consultation completed), its labels (how each
    # participant was invited) and its recording.
    "room_held_then_resumed": {
        **ROOM_CALL,
        "assignee": ALICE,
        "record": {"hold_time": 30, "talk_time": 60},
    },
    "room_hung_up_on_hold": {
        **ROOM_CALL,
        "assignee": ALICE,
        "record": {"hold_time": 50},
    },
    "room_ended_on_hold": {
        **ROOM_CALL,
        "assignee": ALICE,
        "record": {"hold_time": 20, "talk_time": 15},
    },
    "room_left_on_hold": {
        **ROOM_CALL,
        "assignee": BOB,
        # The webhooks cannot say alice went away (the bridge's own note does, live): replayed, it reads as hers.
        "note": "Call transferred by client:alice to client:bob",
        "ticket_pops": 2,
        "record": {"hold_time": 65, "talk_time": 40},
    },
    "room_transferred_cold": {
        **ROOM_CALL,
        "assignee": BOB,
        "note": "Call transferred by client:alice to client:bob",
        "ticket_pops": 2,
        "record": {"hold_time": 6},
    },
    "room_transferred_to_line": {
        **ROOM_CALL,
        "assignee": BOB,
        "note": "Call transferred by client:alice to the line Sales",
        "ticket_pops": 2,
        "group": 5002,
        "brand": 6001,
        "nickname": "Support",
        "record": {"hold_time": 35},
        "settings": LINES,
    },
    "room_consult_completed": {
        **ROOM_CALL,
        "assignee": BOB,
        "note": "Call transferred by client:alice to client:bob",
        "ticket_pops": 2,
        "record": {"consultation_time": 15},
    },
    "room_consult_cancelled": {
        **ROOM_CALL,
        "assignee": ALICE,
        "record": {"consultation_time": 15},
    },
    "room_transferred_to_number": {
        **ROOM_CALL,
        "assignee": ALICE,
        "note": "Call transferred by client:alice to +14155550177",
        "record": {"hold_time": 5},
    },
    "room_three_way": {
        **ROOM_CALL,
        "assignee": ALICE,
    },
    # Callbacks (tests/callback_flows.py): the caller's call and the calls placed to call them back, in one file
    # (our URLs in the latter name the caller's call). One ticket, tagged; the conversation a voice comment on it.
    "callback_answered": {
        **CALLBACK_TAKEN,
        "voice": {"answered_by_id": ALICE, "from": "+16505550100", "to": "+14155550123", "call_duration": 40},
        "note": "by client:alice: +14155550123 answered.",
    },
    "callback_retried": {
        **CALLBACK_TAKEN,
        "voice": {"answered_by_id": ALICE, "to": "+14155550123"},
        "note": "Callback attempt 2 of 3 at",
    },
    "callback_exhausted": {**CALLBACK, "voice": None, "tags": ["callback_requested", "callback_exhausted"]},
    "callback_other_number": {
        **CALLBACK_TAKEN,
        "voice": {"answered_by_id": ALICE, "to": "+14155550177"},
        "note": "by client:alice: +14155550177 answered.",
    },
    "callback_anonymous": {
        **CALLBACK_TAKEN,
        "requester": INTEGRATION,
        "users_created": 0,
        "voice": {"answered_by_id": ALICE, "to": "+14155550177"},
        "note": "by client:alice: +14155550177 answered.",
    },
    "voicemail_by_choice": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "user_pops": set(),
        "ticket_pops": 0,
        "settings": QUEUEING,
        "record": {"customer_requested_voicemail": True},
    },
    # Lines (tests/queue_flows.py's lines_overlapping_agents): each ticket and record is its line's.
    "lines_overlapping_agents_sales": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB, "to": "+16505550101"},
        "user_pops": {(BOB, DANA)},
        "brand": 6002,
        "nickname": "Sales",
        "settings": LINES,
    },
    "lines_overlapping_agents_support": {
        "via": 45,
        "requester": ERIN,
        "assignee": ALICE,
        "voice": {"answered_by_id": ALICE, "to": "+16505550100"},
        "user_pops": {(ALICE, ERIN)},
        "brand": 6001,
        "nickname": "Support",
        "settings": LINES,
    },
    "lines_overlapping_agents_missed": {
        "via": 45,
        "requester": FRANK,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": set(),
        "ticket_pops": 0,
        "group": 5001,
        "brand": 6001,
        "nickname": "Support",
        "settings": LINES,
    },
    # Routing that knows the customer (tests/customer_flows.py). A replay brings the webhooks, not the sandbox's
    # open tickets, organizations and tags that shaped the routing: each call becomes its own ticket here, the
    # agent who answered assigned (the live flows, tests/test_known_customer.py, check the rest).
    "customer_own_agent_first": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB},
        "user_pops": {(BOB, DANA)},
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_own_agent_away": {
        "via": 45,
        "requester": DANA,
        "assignee": ALICE,
        "voice": {"answered_by_id": ALICE},
        "user_pops": {(ALICE, DANA)},
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_two_open_tickets": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB},
        "user_pops": {(BOB, DANA)},
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_priority_caller": {
        "via": 45,
        "requester": ERIN,
        "assignee": ALICE,
        "voice": {"answered_by_id": ALICE},
        "user_pops": {(ALICE, ERIN)},
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_ordinary_caller": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": {(ALICE, DANA)},
        "ticket_pops": 0,
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_slow_look_up": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB},
        "user_pops": {(ALICE, DANA), (BOB, DANA)},
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_slow_look_up_known": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB},
        "user_pops": {(BOB, DANA)},
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_slow_look_up_known_earlier": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": {(BOB, DANA)},
        "ticket_pops": 0,
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_aged_ordinary_caller": {
        "via": 45,
        "requester": DANA,
        "assignee": ALICE,
        "voice": {"answered_by_id": ALICE},
        "user_pops": {(ALICE, DANA)},
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_late_priority_caller": {
        "via": 45,
        "requester": 2004,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": {(ALICE, 2004)},
        "ticket_pops": 0,
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_expected_wait": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": None,
        "tags": ["missed_call"],
        "user_pops": set(),
        "ticket_pops": 0,
        "nickname": "Support",
        "settings": KNOWING,
    },
    "customer_expected_wait_first": {
        "via": 45,
        "requester": ERIN,
        "assignee": ALICE,
        "voice": {"answered_by_id": ALICE},
        "user_pops": {(ALICE, ERIN)},
        "nickname": "Support",
        "settings": KNOWING,
    },
    # After hours: nobody is rung; the tickets and records say the call came after hours.
    "after_hours_voicemail": {**AFTER_HOURS_VOICEMAIL, "settings": {"lines": closed_now("voicemail")}},
    "after_hours_holiday": {**AFTER_HOURS_VOICEMAIL, "settings": {"lines": holiday_now()}},
    "after_hours_message": {
        "via": 45,
        "requester": ERIN,
        "assignee": None,
        "voice": None,
        "tags": ["after_hours"],
        "not_tags": ["missed_call"],
        **CLOSED,
        "settings": {"lines": closed_now("message")},
    },
    # The forward is a menu's forward: answered by the number, recorded, nobody assigned.
    "after_hours_forward": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": {"answered_by_id": None, "call_duration": 40},
        "tags": ["after_hours"],
        "not_tags": ["missed_call"],
        **CLOSED,
        "settings": {"lines": closed_now(FORWARD_TO)},
    },
    # Menus (tests/menu_flows.py): a note and tags on the ticket, the ivr fields on the record.
    "menu_to_line": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB, "call_duration": 40},
        "user_pops": {(BOB, DANA)},
        "brand": 6002,  # Sales', the line the menu led to
        "nickname": "Support",  # the number called
        "tags": ["ivr", "ivr_1"],
        "note": "- pressed 1: the line Sales",
        "ivr": {"ivr_action": "group", "ivr_routed_to": "Sales", "ivr_destination_group_name": "Phones"},
        "settings": MENUS,
    },
    "menu_to_voicemail": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 10},
        "user_pops": set(),
        "ticket_pops": 0,
        "group": 5001,
        "brand": 6001,
        "nickname": "Support",
        "tags": ["ivr", "ivr_9"],
        "note": "- pressed 9: voicemail",
        "ivr": {"ivr_action": "voicemail", "ivr_routed_to": "voicemail", "customer_requested_voicemail": True},
        "settings": MENUS,
    },
    "menu_to_number": {
        "via": 45,
        "requester": DANA,
        "assignee": None,
        "voice": {"answered_by_id": None, "call_duration": 30},
        "user_pops": set(),
        "ticket_pops": 0,
        "group": 5001,
        "brand": 6001,
        "nickname": "Support",
        "tags": ["ivr", "ivr_3"],
        "note": f"- pressed 3: forwarded to {EMERGENCY}",
        "ivr": {"ivr_action": "phone_number", "ivr_routed_to": EMERGENCY, "customer_requested_voicemail": None},
        "settings": MENUS,
    },
    "menu_invalid_key": {
        "via": 45,
        "requester": DANA,
        "assignee": ALICE,
        "voice": {"answered_by_id": ALICE, "call_duration": 25},
        "user_pops": {(ALICE, DANA)},
        "brand": 6001,
        "nickname": "Support",
        "tags": ["ivr", "ivr_2"],
        "note": "- pressed 7, which is not a choice: heard the menu again\n- pressed 2: the line Support",
        "ivr": {"ivr_action": "group", "ivr_routed_to": "Support", "ivr_destination_group_name": "Support"},
        "settings": MENUS,
    },
    "menu_timeout": {
        "via": 45,
        "requester": DANA,
        "assignee": BOB,
        "voice": {"answered_by_id": BOB, "call_duration": 20},
        "user_pops": {(BOB, DANA)},
        "brand": 6002,
        "nickname": "Support",
        "tags": ["ivr", "ivr_timeout"],
        "note": "- pressed nothing within 6 s: the line Sales (the default)",
        "ivr": {"ivr_action": "group", "ivr_routed_to": "Sales"},
        "settings": MENUS,
    },
    # A menu and hours: 1 leads to Sales, closed whenever the replay runs: Sales' after-hours voicemail.
    "menu_to_closed_line": {
        "via": 44,
        "requester": DANA,
        "assignee": None,
        "voice": {"call_duration": 21, "transcription_text": "This is a message left with the Twilio stand-in."},
        "user_pops": set(),
        "ticket_pops": 0,
        "group": 5002,
        "brand": 6002,
        "nickname": "Support",
        "after_hours": True,
        "tags": ["after_hours", "ivr", "ivr_1"],
        "note": "- pressed 1: the line Sales",
        "ivr": {"ivr_action": "group", "ivr_routed_to": "Sales", "ivr_destination_group_name": "Phones"},
        "settings": {**QUEUEING, "lines": SALES_CLOSED},
    },
}


def completion(name: str, expect: dict[str, Any]) -> str:
    """Return the completion_status a recording's call record must carry (ZENDESK_API=calls)."""
    if name == "outbound_unanswered":
        return NOT_ANSWERED
    if name.startswith("unrouted_"):
        return OUTSIDE_COMPLETED if expect.get("ticket", True) else OUTSIDE_ABANDONED
    if expect["via"] == 44 or name in (
        "queue_full",  # sent to the greeting by a full queue, and hung up there
        "voicemail_hung_up_in_greeting",
        "voicemail_empty_recording",
        "missed_recording_absent",
    ):
        return ABANDONED_IN_VOICEMAIL  # the caller reached voicemail, with a message or without
    if "missed_call" in expect.get("tags", []) or expect.get("callback"):
        return ABANDONED_IN_QUEUE  # a callback request: the caller hung up in the queue, asking to be called back
    if name == "room_hung_up_on_hold":
        return ABANDONED_ON_HOLD
    return COMPLETED


def check_record(snapshot: dict[str, Any], name: str, expect: dict[str, Any], tickets: list[dict[str, Any]]) -> None:
    """Assert that one recording made exactly one call record, with its ticket's voice comment showing it."""
    sid = parent_sid(recording(name))
    (record,) = call_records(snapshot, sid)
    assert record["direction"] == ("outbound" if name.startswith("outbound") else "inbound")
    assert record["completion_status"] == completion(name, expect), name
    assert record["app_id"] is not None
    assert record["call_started_at"].endswith("Z")
    assert record["to_line_nickname"] == expect.get("nickname")  # only lines name one
    assert record["outside_business_hours"] is (True if expect.get("after_hours") else None)
    assert record["brand_id"] == expect.get("brand")
    voice = expect.get("voice", {})
    answered = record["completion_status"] == COMPLETED and expect.get("via") in (45, 46) and voice is not None
    if answered:
        assert record["agent_id"] == expect["assignee"]
        assert record["talk_time"] is not None
        assert record["time_to_answer"] is not None
    assert bool(record["voicemail"]) is (expect.get("via") == 44)
    for field, value in expect.get("ivr", {}).items():
        assert record[field] == value, field
    for field, value in expect.get("record", {}).items():
        assert record[field] == value, (name, field)
    if "record" not in expect:  # nobody touched the recording: the record says nothing of it
        assert (record["recording_control_interactions"], record["not_recording_time"]) == (None, None)
    if expect.get("callback"):
        assert (record["callback"], record["callback_source"]) == (True, "queue")
        assert record["callback_number"]
    assert (record["ivr_hops"] == 1) is ("ivr" in expect)  # only a line with a menu has them
    if voice and "recording_url" in voice:
        assert record["recording_url"] == voice["recording_url"]
    if voice is None:
        assert record["recording_url"] is None  # a missed call has nothing to play, and shows no empty player
    if not tickets:
        assert record["ticket_id"] is None
        return
    (ticket,) = tickets
    assert record["ticket_id"] == ticket["id"]
    if expect["via"] == 44:
        # One voice comment per call: a voicemail ticket's, which Zendesk requires; the record is only linked.
        assert tpe_comments(ticket) == []
        assert len(voice_comments(ticket)) == 1
        return
    # One voice comment per call: the record's; a callback's call has a record of its own, shown there too.
    shown, *talked = sorted(tpe_comments(ticket), key=lambda comment: comment["external_id"] != sid)
    assert shown["call_id"] == record["id"]
    assert shown["external_id"] == sid
    assert len(talked) == (1 if expect.get("callback") and voice is not None else 0)
    for comment in talked:
        (talk,) = [record for record in snapshot["calls"].values() if record["id"] == comment["call_id"]]
        assert (talk["callback"], talk["direction"], talk["agent_id"]) == (True, "outbound", voice["answered_by_id"])
    assert voice_comments(ticket) == []


def check(
    snapshot: dict[str, Any], name: str, expect: dict[str, Any], *, pops: bool, ticket_on: str, api: str = "tickets"
) -> None:
    """Assert that the sandbox holds exactly what one recording should have produced."""
    sid = parent_sid(recording(name))
    tickets = call_outcome(snapshot, sid)
    if api == "calls":
        check_record(snapshot, name, expect, tickets)
    else:
        assert snapshot["calls"] == {}
    created = [user for user in snapshot["users"] if user["id"] >= 3001]
    if "new_user_phone" in expect:
        assert [user["phone"] for user in created] == [expect["new_user_phone"]]
    if "users_created" in expect:
        assert len(created) == expect["users_created"]
    if expect.get("ticket", True) is False:
        assert tickets == []
    else:
        assert len(tickets) == 1, f"{name}: {len(tickets)} tickets"
        ticket = tickets[0]
        assert ticket["via_id"] == expect["via"]
        requester = created[0]["id"] if expect["requester"] == NEW else expect["requester"]
        assert ticket["requester_id"] == requester
        assert ticket["assignee_id"] == expect["assignee"]
        assert (ticket["group_id"], ticket["brand_id"]) == (expect.get("group"), expect.get("brand"))  # the line's
        comments = voice_comments(ticket)
        if api == "calls":
            pass  # check_record looked at the voice comments
        elif expect.get("voice", {}) is None:
            assert comments == []
            assert "Recording not available" not in str(ticket)
        else:
            assert len(comments) == 1, f"{name}: {len(comments)} voice comments"
            for field, value in (expect.get("voice") or {}).items():
                if value is str:
                    assert isinstance(comments[0].get(field), str)
                    assert comments[0][field]
                else:
                    assert comments[0].get(field) == value, field
        for tag in expect.get("tags", []):
            assert tag in ticket["tags"]
        for tag in expect.get("not_tags", []):
            assert tag not in ticket["tags"]
        if "note" in expect:
            notes = [c["body"] for c in ticket["comments"] if c["type"] == "Comment" and not c["public"]]
            assert sum(expect["note"] in body for body in notes) == 1, notes
        if ticket_on == "answer" and expect["via"] != 44 and expect.get("voice", {}) is not None:
            assert any(c["type"] == "Comment" and not c["public"] for c in ticket["comments"])
    if not pops:
        return
    new_id = created[0]["id"] if created else None
    want = {(agent, new_id if user == NEW else user) for agent, user in expect["user_pops"]}
    got = [(pop["agent_id"], pop["id"]) for pop in snapshot["displays"] if pop["kind"] == "user"]
    # A replay compresses seconds of ringing into milliseconds, and a pop still pending when its call is
    # answered elsewhere or over is cancelled on purpose (tests/test_pops.py): each may land, at most once.
    assert len(got) == len(set(got)), f"{name}: user pops {got}"
    assert set(got) <= want, f"{name}: user pops {got}"
    ticket_pops = [pop for pop in snapshot["displays"] if pop["kind"] == "ticket"]
    assert len(ticket_pops) == expect.get("ticket_pops", 1 if tickets else 0)


def api_settings(api: str) -> dict[str, Any]:
    """Return the settings of one ZENDESK_API mode."""
    return calls_mode() if api == "calls" else {}


@pytest.mark.parametrize("api", ["tickets", "calls"])
@pytest.mark.parametrize("ticket_on", ["answer", "end"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recording_in_order(make_bridge: BridgeFactory, name: str, ticket_on: str, api: str) -> None:
    """Each recorded call, replayed as Twilio sent it, becomes the right ticket, call record and pops."""
    settings = {**api_settings(api), **EXPECTED[name].get("settings", {})}
    async with make_bridge(ticket_on=ticket_on, **settings) as bridge:
        report = await bridge.replay([recording(name)])
        assert report.ok, report.failures
        await bridge.settle()
        check(bridge.sandbox.snapshot(), name, EXPECTED[name], pops=True, ticket_on=ticket_on, api=api)


@pytest.mark.parametrize(("seed", "api"), [(1, "tickets"), (2, "tickets"), (3, "tickets"), (4, "calls"), (5, "calls")])
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recording_twice_and_shuffled(make_bridge: BridgeFactory, name: str, seed: int, api: str) -> None:
    """Every request delivered twice, in random order, still yields one ticket, one voice comment, one record."""
    async with make_bridge(**api_settings(api), **EXPECTED[name].get("settings", {})) as bridge:
        report = await bridge.replay([recording(name)], repeat=2, shuffle=True, seed=seed)
        assert report.ok, report.failures
        await bridge.settle()
        # Pops depend on order (a `ringing` that arrives after the answer pops nothing), tickets do not.
        check(bridge.sandbox.snapshot(), name, EXPECTED[name], pops=False, ticket_on="answer", api=api)


@pytest.mark.parametrize("api", ["tickets", "calls"])
async def test_every_recording_together_shuffled(make_bridge: BridgeFactory, database_url: str, api: str) -> None:
    """All recorded calls interleaved, duplicated and shuffled, on either store: one ticket (and record) per call."""
    names = sorted(name for name in EXPECTED if "settings" not in EXPECTED[name])
    async with make_bridge(database_url=database_url, **api_settings(api)) as bridge:
        report = await bridge.replay([recording(n) for n in names], repeat=2, shuffle=True, seed=7)
        assert report.ok, report.failures
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        deserving = [n for n in names if EXPECTED[n].get("ticket", True)]
        assert len(snapshot["tickets"]) == len(deserving)
        for name in deserving:
            (ticket,) = call_outcome(snapshot, parent_sid(recording(name)))
            if api == "calls":
                # One voice comment per call: the record's, or the one Zendesk requires of a voicemail ticket.
                voicemail = EXPECTED[name]["via"] == 44
                assert len(tpe_comments(ticket)) == (0 if voicemail else 1)
                assert len(voice_comments(ticket)) == (1 if voicemail else 0)
            else:
                assert len(voice_comments(ticket)) == (0 if EXPECTED[name].get("voice", {}) is None else 1)
        if api == "calls":
            assert sorted(r["external_id"] for r in snapshot["calls"].values()) == sorted(
                parent_sid(recording(n)) for n in names
            )


async def test_two_simultaneous_calls_from_one_unknown_number_create_one_user(make_bridge: BridgeFactory) -> None:
    """Two calls from the same unknown number at once make exactly one Zendesk user, used by both tickets."""
    async with make_bridge() as bridge:
        files = [recording("simultaneous_unknown_a"), recording("simultaneous_unknown_b")]
        report = await bridge.replay(files, concurrency=8)
        assert report.ok, report.failures
        await bridge.settle()
        snapshot = bridge.sandbox.snapshot()
        created = [user for user in snapshot["users"] if user["phone"] == "+14155550177"]
        assert len(created) == 1
        assert len(snapshot["tickets"]) == 2
        assert {ticket["requester_id"] for ticket in snapshot["tickets"]} == {created[0]["id"]}
        assert {ticket["assignee_id"] for ticket in snapshot["tickets"]} == {ALICE, BOB}


async def test_recording_that_never_arrives_goes_without_after_the_wait(make_bridge: BridgeFactory) -> None:
    """RECORDING_WAIT_SECONDS after hang-up, the voice comment goes without a recording (a durable timer)."""
    async with make_bridge(recording_wait_seconds=0.3) as bridge:
        name = "inbound_no_recording_callback"
        assert (await bridge.replay([recording(name)])).ok
        await bridge.settle()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(recording(name)))
        (comment,) = voice_comments(ticket)
        assert "recording_url" not in comment
        assert comment["call_duration"] == 95 or comment["call_duration"] > 0


async def test_late_transcription_becomes_a_private_comment(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """A transcription after TRANSCRIPTION_WAIT_SECONDS is added to the voicemail ticket as a private note."""
    path = recording("voicemail_transcription_late")
    lines = path.read_text().splitlines()
    head, tail = tmp_path / "head.jsonl", tmp_path / "tail.jsonl"
    head.write_text("\n".join(line for line in lines if "/transcription" not in line) + "\n")
    tail.write_text("\n".join(line for line in lines if "/transcription" in line) + "\n")
    async with make_bridge(transcription_wait_seconds=0.2) as bridge:
        assert (await bridge.replay([head])).ok
        await bridge.settle()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        assert "transcription_text" not in voice_comments(ticket)[0]
        assert (await bridge.replay([tail])).ok
        await bridge.settle()
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
        notes = [c for c in ticket["comments"] if c["type"] == "Comment"]
        assert len(notes) == 1
        assert not notes[0]["public"]
        assert notes[0]["body"].startswith("Voicemail transcription:")
        assert len(voice_comments(ticket)) == 1


async def test_outbox_is_empty_and_events_kept(bridge: Any) -> None:
    """After a call, nothing is pending and every webhook was stored once."""
    path = recording("inbound_answered")
    lines = len(path.read_text().splitlines())
    assert (await bridge.replay([path], repeat=3)).ok
    await bridge.settle()
    store = bridge.app[STORE]
    assert await store.count_events() == lines
    stats = await store.stats(0)
    assert stats.pending == 0
    assert stats.dead == 0


def test_every_recording_has_a_call_of_its_own() -> None:
    """No two files share a parent CallSid (tests/recordings/README.md): any of them may be replayed together."""
    sids = [parent_sid(path) for path in sorted(recording("inbound_answered").parent.glob("*.jsonl"))]
    assert len(sids) == len(set(sids))
