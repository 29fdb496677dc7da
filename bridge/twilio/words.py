"""Twilio's words turned into the core's neutral facts: the state machine never reads Twilio's vocabulary."""

from __future__ import annotations

from bridge.core.events import RecordingOf

# Twilio docs, "Recordings: RecordingStatusCallback parameters", RecordingSource: a <Record> verb made the
# voicemail, a <Dial record=…> the conversation, a <Conference record=…> the conversation in the call's room.
# Its other sources (OutboundAPI, Trunking, StartCallRecordingAPI…) say nothing the bridge can use: the call's
# own state decides.
_RECORDING_SOURCES: dict[str, RecordingOf] = {
    "RecordVerb": "voicemail",
    "DialVerb": "conversation",
    "Conference": "room",
}


def recording_of(source: str | None) -> RecordingOf | None:
    """Say what a recording holds, by Twilio's RecordingSource; None when the source does not tell."""
    return _RECORDING_SOURCES.get(source or "")


def media_url(url: str | None) -> str | None:
    """Return where a recording plays as MP3: its RecordingUrl with `.mp3` (Twilio docs: Recording resource)."""
    if not url:
        return url
    return url if url.endswith((".mp3", ".wav")) else url + ".mp3"
