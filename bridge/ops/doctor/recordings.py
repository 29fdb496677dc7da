"""RECORDINGS: each mode checked end to end, Twilio's media API for proxy, a real upload for zendesk."""

from __future__ import annotations

import aiohttp

from bridge.devtools.twilio_media import silent_mp3
from bridge.ops.connections import authorization
from bridge.ops.doctor.check import Check
from bridge.ops.doctor.twilio import CREDENTIALS_FIX, RestProbe
from bridge.ops.settings import Settings
from bridge.zendesk.client import ZendeskClient, ZendeskError


async def recordings_check(settings: Settings, rest: RestProbe | None) -> Check:
    """Check the chosen RECORDINGS mode end to end: Twilio's media API for proxy, a Zendesk upload for zendesk."""
    name = f"RECORDINGS={settings.recordings}"
    if settings.recordings == "twilio":
        return Check(
            name, True, "links are Twilio's own URLs: they play only while Enforce HTTP Auth on Media URLs is off"
        )
    if settings.recordings == "zendesk":
        return await _upload_check(name, settings)
    if rest is None:
        return Check(
            name, True, "not checked end to end: set TWILIO_ACCOUNT_SID and the doctor asks Twilio's media API"
        )
    status = await rest.answer()
    if isinstance(status, str):
        return Check(name, False, f"Twilio's media API did not answer: {status}", "check TWILIO_API_URL")
    if status == 200:
        return Check(name, True, f"Twilio's media API accepts {rest.credentials}; links go to {settings.public_url}")
    return Check(
        name,
        False,
        f"Twilio's media API refused {rest.credentials} ({status}): recording links would answer 502",
        CREDENTIALS_FIX,
    )


async def _upload_check(name: str, settings: Settings) -> Check:
    """Upload a second of silence to Zendesk and delete it again: the token may upload attachments."""
    if settings.zendesk_base_url is None or not (settings.zendesk_oauth_token or settings.zendesk_api_token):
        return Check(name, False, "no Zendesk credentials to upload with", "set the Zendesk variables")
    async with aiohttp.ClientSession() as session:
        zendesk = ZendeskClient(session, settings.zendesk_base_url, authorization(settings), timeout=10)
        audio = silent_mp3(1.0)
        try:
            upload = await zendesk.upload("bridge-doctor.mp3", audio, content_type="audio/mpeg", length=len(audio))
            await zendesk.delete_upload(str(upload["token"]))
        except ZendeskError as exc:
            return Check(
                name,
                False,
                f"Zendesk refused an upload: {exc}",
                "let the integration agent add attachments (Admin Center > Objects and rules > Tickets > Settings > "
                "Attachments), or use RECORDINGS=proxy",
            )
    return Check(name, True, "Zendesk accepts uploads from these credentials")
