"""Recording links play in a plain HTTP client, in every RECORDINGS mode, and nothing else is served.

Twilio's media API is a fake that behaves as an account with "Enforce HTTP Auth on Media URLs" on: Basic
auth on the API host, then a redirect to a media host that refuses a request still carrying credentials.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from bridge.devtools.demo import LocalBridge
from bridge.devtools.sandbox import FaultRule
from bridge.devtools.twilio_media import silent_mp3
from bridge.ops.clients import ClientLimiter
from bridge.ops.recordings import BURST, CHUNK
from bridge.ops.settings import Settings
from bridge.resources import LINK_SIGNER
from bridge.store import DEAD, FiledRecording
from bridge.twilio.media import TwilioMedia, parse_recording_url
from tests.conftest import (
    BridgeFactory,
    ManualClock,
    call_outcome,
    free_port,
    parent_sid,
    recording,
    voice_comments,
)

ANSWERED, VOICEMAIL = "inbound_answered", "voicemail_transcribed"
ANSWERED_REC = "RE5eab47b37ef27c0e5986cfffd23c1ff1"
ACCOUNT = "AC455c03f9e322135d9c681cabb529d68e"


async def filed_link(bridge: LocalBridge, name: str = ANSWERED) -> str:
    """Replay a recorded call and return its voice comment's recording link."""
    path = recording(name)
    assert (await bridge.replay([path])).ok
    await bridge.settle()
    (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(path))
    (comment,) = voice_comments(ticket)
    return str(comment["recording_url"])


async def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET a URL as a browser would: no credentials of any kind."""
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def test_the_link_plays_without_credentials_as_one_stereo_file(bridge: LocalBridge) -> None:
    """The voice comment links to the bridge, which streams the dual-channel recording from Twilio with auth."""
    link = await filed_link(bridge)
    assert link.startswith(f"{bridge.url}/recordings/{ANSWERED_REC}.mp3?sig=")
    assert "twilio" not in link.lower()
    status, headers, body = await fetch(link)
    assert status == 200
    assert body == bridge.twilio.audio[2] == silent_mp3(3, 2)  # asked for RequestedChannels=2: stereo
    assert headers["Content-Type"] == "audio/mpeg"
    assert headers["Cache-Control"].startswith("private")
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Length"] == str(len(body))
    # The fake API host answered only because the bridge authenticated, and its media host only because
    # the credentials were not carried across the redirect.
    assert bridge.twilio.api_requests == [f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{ANSWERED_REC}.mp3"]
    assert bridge.twilio.media_requests == [{"path": f"/media/{ANSWERED_REC}/2.mp3", "range": ""}]


async def test_a_voicemail_plays_too(bridge: LocalBridge) -> None:
    """A voicemail (mono, on a via 44 ticket created with its voice comment) links and plays the same way."""
    link = await filed_link(bridge, VOICEMAIL)
    status, _, body = await fetch(link)
    assert (status, body) == (200, bridge.twilio.audio[1])


async def test_range_requests_seek(bridge: LocalBridge) -> None:
    """Range passes through: 206 with Content-Range, a suffix range, and 416 past the end."""
    link = await filed_link(bridge)
    audio = bridge.twilio.audio[2]
    status, headers, body = await fetch(link, Range="bytes=100-199")
    assert (status, body) == (206, audio[100:200])
    assert headers["Content-Range"] == f"bytes 100-199/{len(audio)}"
    status, _, body = await fetch(link, Range="bytes=-50")
    assert (status, body) == (206, audio[-50:])
    status, headers, _ = await fetch(link, Range=f"bytes={len(audio) + 10}-")
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(audio)}"


async def test_nothing_else_is_served_and_twilio_is_not_asked(
    bridge: LocalBridge, caplog: pytest.LogCaptureFixture
) -> None:
    """A changed signature, another recording's id, a recording never filed: refused without contacting Twilio."""
    caplog.set_level(logging.INFO, logger="bridge.recordings")
    link = await filed_link(bridge)
    base, sig = link.split("?sig=")
    other = "RE" + "0" * 32
    forged = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    never_filed = f"{bridge.url}/recordings/{other}.mp3?sig={bridge.app[LINK_SIGNER].signature(other)}"
    cases = {
        f"{base}?sig={forged}": 403,  # a changed signature
        f"{base}": 403,  # none
        f"{bridge.url}/recordings/{other}.mp3?sig={sig}": 403,  # another recording's id with this signature
        never_filed: 404,  # correctly signed (the secret leaked?) but never filed by the bridge
        f"{bridge.url}/recordings/..%2F..%2Fetc.mp3?sig={sig}": 404,
        f"{bridge.url}/recordings/{ANSWERED_REC}.wav?sig={sig}": 404,
    }
    for url, expected in cases.items():
        status, headers, _ = await fetch(url)
        assert status == expected, url
        assert headers.get("Cache-Control") == "no-store" or status == 404
    assert bridge.twilio.api_requests == []
    status, _, _ = await fetch(link)
    assert status == 200
    status, _, metrics = await fetch(f"{bridge.url}/metrics")
    assert 'bridge_recording_requests_total{status="403"} 3.0' in metrics.decode()
    assert 'bridge_recording_requests_total{status="200"} 1.0' in metrics.decode()
    assert "invalid signature" in caplog.text
    assert "RE5eab47b37ef27c0e5986cfffd23c1ff1 of call" in caplog.text
    assert sig not in caplog.text  # requests are logged, signatures never
    assert forged not in caplog.text


async def test_the_bridge_streams_instead_of_buffering(bridge: LocalBridge) -> None:
    """The first bytes reach the player while Twilio's media host still holds back the rest."""
    link = await filed_link(bridge)
    bridge.twilio.audio[2] = silent_mp3(60, 2)  # about 270 KB: several chunks
    bridge.twilio.gate = asyncio.Event()
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert response.status == 200
        first = await asyncio.wait_for(response.content.readexactly(CHUNK), timeout=20)
        bridge.twilio.gate.set()
        rest = await response.read()
    assert first + rest == bridge.twilio.audio[2]


async def test_links_survive_a_restart_and_a_rotated_auth_token(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    """The signing secret is in the database: after a restart with a new Twilio auth token, old links still play."""
    database = tmp_path / "restart.db"
    from bridge.devtools.demo import local_bridge
    from tests.conftest import FAST_RETRY

    async with local_bridge(database, retry=FAST_RETRY) as first:
        link = await filed_link(first)
        old_url = first.url
    async with local_bridge(database, retry=FAST_RETRY, twilio_auth_token="rotated-token") as second:
        status, _, body = await fetch(link.replace(old_url, second.url))
        assert (status, body) == (200, second.twilio.audio[2])


async def test_links_expire_after_the_ttl(make_bridge: BridgeFactory) -> None:
    """With RECORDING_LINK_TTL_DAYS, a link stops working that many days after it was filed."""
    clock = ManualClock()
    async with make_bridge(recording_link_ttl_days=7, clock=clock) as bridge:
        link = await filed_link(bridge)
        clock.advance(6 * 86400)
        assert (await fetch(link))[0] == 200
        clock.advance(2 * 86400)
        status, _, body = await fetch(link)
        assert status == 403
        assert b"expired" in body


async def test_an_api_key_is_used_when_set(make_bridge: BridgeFactory) -> None:
    """TWILIO_API_KEY_SID/SECRET authenticate instead of the account SID and auth token."""
    async with make_bridge(twilio_api_key_sid="SK" + "1" * 32, twilio_api_key_secret="key-secret") as bridge:
        link = await filed_link(bridge)
        bridge.twilio.auth_token = "no longer accepted"
        bridge.twilio.api_keys["SK" + "1" * 32] = "key-secret"
        assert (await fetch(link))[0] == 200


async def test_twilio_failures_are_reported_plainly(bridge: LocalBridge) -> None:
    """Refused credentials are a 502 (and logged for the operator); a recording deleted at Twilio is a 404."""
    link = await filed_link(bridge)
    bridge.twilio.auth_token = "rotated at Twilio, not here"
    status, _, body = await fetch(link)
    assert status == 502
    assert b"credentials" in body
    bridge.twilio.auth_token = bridge.auth_token
    bridge.twilio.missing.add(ANSWERED_REC)
    assert (await fetch(link))[0] == 404


async def test_recording_requests_are_rate_limited_per_client(make_bridge: BridgeFactory) -> None:
    """One address gets a burst, then 429; Twilio is never asked on its behalf."""
    async with make_bridge(forwarded_allow_ips="*") as bridge:
        url = f"{bridge.url}/recordings/RE{'1' * 32}.mp3?sig=guess"
        statuses = [(await fetch(url))[0] for _ in range(BURST + 1)]
        assert statuses[:BURST] == [403] * BURST
        assert statuses[BURST] == 429
        other = await fetch(url, **{"X-Forwarded-For": "203.0.113.9"})
        assert other[0] == 403  # another client (as the platform's proxy names it) has its own bucket
        assert bridge.twilio.api_requests == []


def test_the_limiter_refills_with_time() -> None:
    """The bucket refills at its rate, and each client has its own."""
    now = [0.0]
    limiter = ClientLimiter(burst=2, per_second=1.0, clock=lambda: now[0])
    assert [limiter.allow("a"), limiter.allow("a"), limiter.allow("a"), limiter.allow("b")] == [True, True, False, True]
    now[0] = 1.0
    assert limiter.allow("a")


def test_only_twilio_recording_urls_are_filed() -> None:
    """Credentials only ever go to Twilio: a RecordingUrl on another host is not a recording the bridge fetches."""
    good = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{ANSWERED_REC}"
    assert parse_recording_url(good + ".mp3") == parse_recording_url(good)
    parsed = parse_recording_url(good)
    assert parsed is not None
    assert (parsed.account_sid, parsed.sid) == (ACCOUNT, ANSWERED_REC)
    assert parse_recording_url(good.replace("api.twilio.com", "evil.example.com")) is None
    assert parse_recording_url(good.replace("api.twilio.com", "api.twilio.com.evil.example")) is None
    assert parse_recording_url(good.replace("https", "http")) is None
    assert parse_recording_url(None) is None


async def test_twilio_mode_keeps_twilios_url(make_bridge: BridgeFactory) -> None:
    """RECORDINGS=twilio: today's behaviour, for accounts whose media is public."""
    async with make_bridge(recordings="twilio") as bridge:
        link = await filed_link(bridge)
    assert link == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{ANSWERED_REC}.mp3"


@pytest.mark.parametrize("ticket_on", ["answer", "end"])
async def test_zendesk_mode_attaches_the_file(make_bridge: BridgeFactory, ticket_on: str) -> None:
    """RECORDINGS=zendesk: the MP3 is uploaded, attached to the ticket, and the voice comment links it."""
    async with make_bridge(recordings="zendesk", ticket_on=ticket_on) as bridge:
        link = await filed_link(bridge)
        voicemail = await filed_link(bridge, VOICEMAIL)
        snapshot = bridge.sandbox.snapshot()
        for url, channels in ((link, 2), (voicemail, 1)):
            assert url.startswith(f"{bridge.zendesk_url}/attachments/token/")
            status, headers, body = await fetch(url)  # the sandbox serves attachments as Zendesk does to agents
            assert (status, body) == (200, bridge.twilio.audio[channels])
            assert headers["Content-Type"] == "audio/mpeg"
        (ticket,) = call_outcome(snapshot, parent_sid(recording(ANSWERED)))
        attached = [a for c in ticket["comments"] for a in c.get("attachments", [])]
        assert [a["content_url"] for a in attached] == [link]
        assert attached[0]["file_name"] == f"{ANSWERED_REC}.mp3"
        assert all(not c["public"] for c in ticket["comments"])


async def test_zendesk_mode_retries_a_failed_upload_and_attaches_once(make_bridge: BridgeFactory) -> None:
    """An upload that fails, or whose answer is lost, is retried like any action; the file is attached once."""
    async with make_bridge(recordings="zendesk") as bridge:
        bridge.sandbox.add_faults(
            [
                FaultRule(method="POST", path_prefix="/api/v2/uploads", kind="503", times=1),
                FaultRule(method="POST", path_prefix="/api/v2/uploads", kind="drop_after", times=1),
                FaultRule(method="PUT", path_prefix="/api/v2/tickets", kind="drop_after", times=1),
            ]
        )
        link = await filed_link(bridge)
        (ticket,) = call_outcome(bridge.sandbox.snapshot(), parent_sid(recording(ANSWERED)))
        attached = [a["content_url"] for c in ticket["comments"] for a in c.get("attachments", [])]
        assert attached == [link]
        assert len(voice_comments(ticket)) == 1
        assert (await fetch(link))[0] == 200


async def test_zendesk_mode_without_the_twilio_copy_is_a_dead_letter(make_bridge: BridgeFactory) -> None:
    """A recording already deleted at Twilio cannot be uploaded: the voice comment says so as a dead letter."""
    async with make_bridge(recordings="zendesk") as bridge:
        bridge.twilio.missing.add(ANSWERED_REC)
        assert (await bridge.replay([recording(ANSWERED)])).ok
        await bridge.settle()
        (dead,) = await bridge.store.list_actions([DEAD])
        assert dead.kind == "add_voice_comment"
        assert dead.last_error is not None
        assert "no longer at Twilio" in dead.last_error


async def test_head_answers_without_a_body(bridge: LocalBridge) -> None:
    """HEAD tells a player the type and length without sending the audio."""
    link = await filed_link(bridge)
    async with aiohttp.ClientSession() as session, session.head(link) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert await response.read() == b""


async def test_an_unreachable_twilio_is_a_502(make_bridge: BridgeFactory) -> None:
    """When Twilio's media API does not answer, the player gets a 502 at once rather than a hang."""
    async with make_bridge() as bridge:
        link = await filed_link(bridge)
    async with make_bridge(twilio_api_url=f"http://127.0.0.1:{free_port()}") as other:
        filed = await bridge_filed(other, link)
        status, _, body = await fetch(f"{other.url}/recordings/{filed}")
        assert status == 502
        assert b"media API failed" in body


async def bridge_filed(bridge: LocalBridge, link: str) -> str:
    """File the recording of `link` in another bridge and return its path and signature there."""
    sid = link.split("/recordings/")[1].split(".mp3")[0]
    media_url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}"
    filed = FiledRecording(sid, ACCOUNT, "CA" + "9" * 32, media_url, 2, bridge.clock())
    await bridge.store.file_recording(filed)
    return f"{sid}.mp3?sig={bridge.app[LINK_SIGNER].signature(sid)}"


async def test_media_is_fetched_from_twilio_unless_told_otherwise() -> None:
    """Without TWILIO_API_URL the MP3 comes from the host Twilio named, always with the .mp3 rendition."""
    media_url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{ANSWERED_REC}"
    filed = FiledRecording(ANSWERED_REC, ACCOUNT, "CA1", media_url, 1, ManualClock()())
    async with aiohttp.ClientSession() as session:
        assert TwilioMedia(session, Settings()).url(filed) == media_url + ".mp3"
        proxied = TwilioMedia(session, Settings(twilio_api_url="https://proxy.example.com/"))
        assert (
            proxied.url(filed)
            == f"https://proxy.example.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{ANSWERED_REC}.mp3"
        )
