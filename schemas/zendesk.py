"""Pydantic models of the Zendesk Talk Partner Edition bodies the bridge sends."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

OPTIONAL_VOICE_FIELDS = frozenset({"from", "to", "recording_url", "transcription_text", "location"})


class VoiceComment(BaseModel):
    """The `voice_comment` of a TPE ticket (Zendesk docs: Talk Partner Edition API, Voice comment)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    from_: str = Field("", alias="from")  # empty (withheld) is omitted on the wire, and stored rows may lack it
    to: str = ""
    recording_url: str | None = None
    started_at: str
    call_duration: int
    answered_by_id: int | None = None
    transcription_text: str | None = None
    location: str | None = None

    def wire(self) -> dict[str, object]:
        """Return the JSON object Zendesk receives (absent and empty fields omitted, `from` as Zendesk spells it)."""
        # An empty string is not "unknown" to Zendesk: it is a value, and a blank one may be refused.
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {k: v for k, v in body.items() if not (v == "" and k in OPTIONAL_VOICE_FIELDS)}


class Comment(BaseModel):
    """A plain ticket comment."""

    model_config = ConfigDict(frozen=True)

    body: str
    public: bool = False


class VoiceTicket(BaseModel):
    """The `ticket` of `POST /api/v2/channels/voice/tickets`, exactly as the outbox sends it."""

    model_config = ConfigDict(frozen=True)

    via_id: int = Field(ge=44, le=46)
    subject: str
    external_id: str
    requester_id: int | None = None
    assignee_id: int | None = None
    comment: Comment | None = None
    voice_comment: VoiceComment | None = None
    tags: list[str] | None = None

    def wire(self) -> dict[str, object]:
        """Return the JSON object Zendesk receives (absent fields omitted, `from` spelled as Zendesk spells it)."""
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.voice_comment is not None:
            body["voice_comment"] = self.voice_comment.wire()
        return body
