"""Twilio: the account's credentials, CALLER_ID, the REST API the bridge's own requests use, and the queue."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bridge.ops.doctor.check import Check
from bridge.ops.settings import Settings
from bridge.twilio.rest import TwilioApi, TwilioError

CREDENTIALS_FIX = (
    "set TWILIO_AUTH_TOKEN of TWILIO_ACCOUNT_SID, or a valid TWILIO_API_KEY_SID/TWILIO_API_KEY_SECRET pair"
)


async def twilio_checks(settings: Settings) -> list[Check]:
    """Check the Twilio account SID and auth token work together, and that CALLER_ID is the account's."""
    assert settings.twilio_account_sid is not None
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    http = AsyncTwilioHttpClient()
    client = Client(settings.twilio_account_sid, token, http_client=http)
    if settings.twilio_api_url:
        client.api.base_url = settings.twilio_api_url.rstrip("/")
    try:
        try:
            account = await client.api.accounts(settings.twilio_account_sid).fetch_async()
        except Exception as exc:
            return [
                Check(
                    "Twilio credentials",
                    False,
                    f"{settings.twilio_account_sid}: {str(exc).splitlines()[0][:200]}",
                    "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN belong to the same account",
                )
            ]
        checks = [Check("Twilio credentials", True, f"account {account.friendly_name}")]
        if settings.caller_id:
            checks.append(await _caller_id_check(client, settings.caller_id))
        return checks
    finally:
        await http.close()


async def _caller_id_check(client: Client, caller_id: str) -> Check:
    """Check CALLER_ID is one of the account's numbers or verified caller ids, as Twilio requires.

    Twilio refuses a <Dial callerId> that is neither (Twilio docs: TwiML <Dial>, callerId), so every
    outbound call would fail with an error the agent only hears as a hang-up.
    """
    try:
        owned = await client.incoming_phone_numbers.list_async(phone_number=caller_id, limit=1)
        verified = [] if owned else await client.outgoing_caller_ids.list_async(phone_number=caller_id, limit=1)
    except Exception as exc:
        detail = f"could not list the account's numbers: {exc}"[:200]
        return Check("CALLER_ID at Twilio", False, detail, "check the credentials can read Phone Numbers")
    if owned or verified:
        kind = "a number of the account" if owned else "a verified caller id"
        return Check("CALLER_ID at Twilio", True, f"{caller_id} is {kind}")
    return Check(
        "CALLER_ID at Twilio",
        False,
        f"{caller_id} is neither a number of this account nor a verified caller id: outbound calls would fail",
        "set CALLER_ID to one of the account's numbers (Phone Numbers > Manage > Active numbers)",
    )


class RestProbe:
    """Ask Twilio's REST API, once, whether it takes the credentials of the bridge's own requests.

    Recording links (RECORDINGS=proxy) and moves of waiting callers (the queue) both send the API key when
    there is one, else the account SID and auth token (`Settings.twilio_media_auth`).
    """

    def __init__(self, settings: Settings) -> None:
        """Bind the settings; nothing is sent until `answer`."""
        self._settings = settings
        self._answer: int | str | None = None

    @property
    def credentials(self) -> str:
        """Name the credentials sent, as the checks' lines say them."""
        return "the API key" if self._settings.twilio_api_key_sid else "the auth token"

    async def answer(self) -> int | str:
        """Return Twilio's HTTP status (200: accepted), or the name of the error when nothing answered."""
        if self._answer is None:
            account = self._settings.twilio_account_sid
            assert account is not None
            async with aiohttp.ClientSession() as session:
                # The client and credentials the bridge's own requests use (moves; recordings alike).
                api = TwilioApi(
                    session, account, self._settings.twilio_media_auth(account), self._settings.twilio_api_url
                )
                answer = await answer_of(api.get("/Recordings.json", {"PageSize": "1"}))
                self._answer = answer if isinstance(answer, str) else answer[0]
        return self._answer


async def queueing_check(settings: Settings, rest: RestProbe | None) -> Check:
    """Say whether callers may wait in the queue; if not, what it needs; if so, that Twilio takes the moves."""
    name = "queueing"
    if not settings.twilio_account_sid or rest is None:
        return Check(
            name,
            True,
            "off: without TWILIO_ACCOUNT_SID a caller nobody can take goes to voicemail at once; to let callers "
            "wait, set TWILIO_ACCOUNT_SID (with TWILIO_AUTH_TOKEN, or TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)",
        )
    if not settings.queueing:
        why = "QUEUE_MAX_SIZE" if settings.queue_max_size == 0 else "QUEUE_MAX_WAIT_SECONDS"
        return Check(name, True, f"off ({why}=0): a caller nobody can take goes to voicemail at once")
    answer = await rest.answer()
    if isinstance(answer, str):
        detail = f"Twilio's REST API did not answer ({answer}): waiting callers could not be moved to agents"
        return Check(name, False, detail, "check TWILIO_API_URL and the way out to api.twilio.com")
    if answer != 200:
        return Check(
            name,
            False,
            f"Twilio's REST API refused {rest.credentials} ({answer}): waiting callers could not be moved to agents "
            "and would go to voicemail after QUEUE_MAX_WAIT_SECONDS",
            CREDENTIALS_FIX,
        )
    wait = f"{settings.queue_max_wait_seconds:g}"
    return Check(
        name,
        True,
        f"on: up to {settings.queue_max_size} callers wait, {wait} s at most; Twilio's REST API accepts "
        f"{rest.credentials}, so they are moved to agents as agents free up",
    )


async def answer_of(request: Awaitable[dict[str, Any]]) -> tuple[int, dict[str, Any]] | str:
    """Return Twilio's HTTP status and body (200 when it accepted), or the name of the error when nothing answered."""
    try:
        return 200, await request
    except TwilioError as exc:
        if exc.status:
            return exc.status, {}
        return type(exc.__cause__ or exc).__name__
