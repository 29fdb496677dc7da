"""Ticket comments: each kind's stored form (Comment, VoiceComment, TpeVoiceComment) and how a read renders it."""

from __future__ import annotations

import copy
import html
import re
from typing import Any

from bridge.devtools.sandbox.errors import label
from bridge.devtools.sandbox.seed import APP_NAME, INTEGRATION_USER_ID
from bridge.devtools.sandbox.state import State
from bridge.devtools.sandbox.uploads import Uploads

INBOUND_VIA_ID, OUTBOUND_VIA_ID = 45, 46
_E164 = re.compile(r"^\+(1\d{10}|[2-9]\d{7,14})$")


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _formatted_line(line: Any) -> str:
    # The recorded TpeVoiceComment shows "Unknown" for "+183808333456" (twelve digits after +1: not a number).
    return line if isinstance(line, str) and _E164.match(line) else "Unknown"


class Comments:
    """Parse, store and render the comments on the account's tickets."""

    def __init__(self, state: State, uploads: Uploads) -> None:
        self._state = state
        self._uploads = uploads

    def parse(self, src: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
        """Return the comments a ticket body's `comment` and `voice_comment` make, noting what is wrong."""
        comments: list[dict[str, Any]] = []
        comment = src.get("comment")
        if comment is not None:
            fields = comment if isinstance(comment, dict) else {}
            text, public = fields.get("body"), fields.get("public", True)
            if not isinstance(text, str) or not text.strip():
                errors["comment"] = "Comment: body cannot be blank"
            elif not isinstance(public, bool):
                errors["comment"] = "Comment: public must be true or false"
            else:
                made: dict[str, Any] = {"type": "Comment", "body": text, "public": public}
                if "uploads" in fields:
                    made["attachments"] = self._uploads.attach(fields["uploads"], errors)
                comments.append(made)
        voice = src.get("voice_comment")
        blank = [key for key, value in voice.items() if value == ""] if isinstance(voice, dict) else []
        if blank:
            errors["voice_comment"] = f"Voice comment: {', '.join(sorted(blank))} cannot be blank"
        elif voice is not None:
            if isinstance(voice, dict):
                comments.append(
                    {
                        "type": "VoiceComment",
                        "public": False,
                        "data": copy.deepcopy(voice),
                        "body": self._voice_comment_body(voice),
                    }
                )
            else:
                errors["voice_comment"] = "Voice comment: must be an object"
        return comments

    def _voice_comment_body(self, voice: dict[str, Any]) -> str:
        parts = [f"Call from: {_one_line(voice.get('from') or 'unknown')}"]
        parts.append(f"To: {_one_line(voice.get('to') or 'unknown')}")
        answered_by = voice.get("answered_by_id")
        if answered_by is not None:
            agent = self._state.users.get(answered_by) if isinstance(answered_by, int) else None
            parts.append(f"Answered by: {_one_line(agent['name'] if agent else answered_by)}")
        labels = (
            ("started_at", "Time of call: {}"),
            ("call_duration", "Length of phone call: {} seconds"),
            ("location", "Location: {}"),
            ("transcription_text", "Transcription: {}"),
            ("recording_url", "Recording: {}"),
        )
        parts.extend(template.format(_one_line(voice[key])) for key, template in labels if voice.get(key))
        return " | ".join(parts)

    def append(self, ticket: dict[str, Any], comments: list[dict[str, Any]], now: str) -> None:
        """Add parsed comments to a ticket, written by the token's user."""
        for comment in comments:
            stored = {"id": next(self._state.comment_ids), **comment, "author_id": INTEGRATION_USER_ID}
            ticket["comments"].append({**stored, "created_at": now})

    def add_tpe_voice_comment(
        self, ticket: dict[str, Any], call_id: int, comment: dict[str, Any], now: str
    ) -> dict[str, Any]:
        """Store a TpeVoiceComment of a call record on a ticket and return it as rendered."""
        author_id = comment.get("author_id")
        stored = {
            "id": next(self._state.comment_ids),
            "type": "TpeVoiceComment",
            "public": False,  # recorded: TPE voice comments are internal
            "call_id": call_id,
            "title": comment["title"],
            "call_fields": list(comment.get("call_fields", [])),
            "data_author_id": author_id,
            "author_id": INTEGRATION_USER_ID if author_id is None else author_id,
            "audit_id": next(self._state.audit_ids),
            "created_at": now,
        }
        ticket["comments"].append(stored)
        ticket["updated_at"] = now
        return self.render(stored)

    def public_ticket(self, ticket: dict[str, Any]) -> dict[str, Any]:
        """Return a copy of a ticket as the API shows it, its comments rendered."""
        return self.render_all(copy.deepcopy(ticket))

    def render_all(self, ticket: dict[str, Any]) -> dict[str, Any]:
        """Render a ticket's comments in place and return the ticket."""
        ticket["comments"] = [self.render(comment) for comment in ticket["comments"]]
        return ticket

    def render(self, comment: dict[str, Any]) -> dict[str, Any]:
        """Render a TpeVoiceComment from the call record as it is now; other comments are returned as stored."""
        if comment.get("type") != "TpeVoiceComment":
            return copy.deepcopy(comment)
        # Docs, "Creating a voice comment in a ticket": the data "is directly retrieved from the call record",
        # so a later PATCH (a recording, a transcript) shows in the comment. Keys and order as recorded
        # (zenpy cassette TestCallPE.test_add_comment).
        call = self._state.calls[comment["call_id"]]
        title, call_fields = comment["title"], comment["call_fields"]
        data = {
            "app_id": call["app_id"],
            "app_name": APP_NAME,
            "author_id": comment["data_author_id"],
            "call_id": call["id"],
            "direction": call["direction"],
            "external_id": call["external_id"],
            "title": title,
            "via_id": INBOUND_VIA_ID if call["direction"] == "inbound" else OUTBOUND_VIA_ID,
            "recording_url": call["recording_url"] or "",
        }
        data.update({field: copy.deepcopy(call.get(field)) for field in call_fields})
        summary = [f"{label(field)}: {call.get(field)}" for field in call_fields if call.get(field) is not None]
        body = title + ("\n\nSummary\n" + "\n".join(summary) if summary else "")
        paragraphs = [f'<p dir="auto">{html.escape(title)}</p>']
        if summary:
            lines = "<br>\n".join(html.escape(line) for line in ["Summary", *summary])
            paragraphs.append(f'<p dir="auto">{lines}</p>')
        return {
            "id": comment["id"],
            "type": "TpeVoiceComment",
            "public": False,
            "data": data,
            "formatted_from": _formatted_line(call["from_line"]),
            "formatted_to": _formatted_line(call["to_line"]),
            "transcription_visible": False,
            "author_id": comment["author_id"],
            "body": body,
            "html_body": '<div class="zd-comment" dir="auto">' + "\n".join(paragraphs) + "</div>",
            "trusted": True,
            "attachments": [],
            "created_at": comment["created_at"],
            "audit_id": comment["audit_id"],
            "title": title,
        }
