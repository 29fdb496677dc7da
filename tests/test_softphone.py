"""Who the agent is, and their Twilio token: Zendesk's signed request verified, nothing client-side trusted."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest

from bridge.devtools.demo import LocalBridge
from bridge.devtools.sandbox import SandboxConfig
from bridge.ops.settings import ConfigError, load_settings
from bridge.softphone.identity import (
    SESSION_MAX_AGE,
    SESSION_TTL,
    NotVerified,
    SessionSigner,
    agent_from_sub,
    verify_zendesk_token,
)
from bridge.softphone.routes import SDK_FILE
from tests.conftest import BridgeFactory
from tests.softphone_kit import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    APP_ID,
    AUDIENCE,
    ISSUER,
    TWIML_APP_SID,
    other_key,
    public_pem,
    softphone_settings,
    zendesk_jwt,
)

NOW = datetime.now(UTC)


def verify(token: str) -> int:
    return verify_zendesk_token(token, public_pem(), audience=AUDIENCE, issuer=ISSUER, now=datetime.now(UTC))


@pytest.mark.parametrize(
    ("sub", "agent"),
    [("1001", 1001), (1001, 1001), ("https://acme.zendesk.com/api/v2/users/1001.json", 1001),
     ("https://acme.zendesk.com/api/v2/users/1001", 1001), ("users/77/", 77), ("", None), ("abc", None),
     (None, None), (True, None), (0, None), ("0", None), ("1001x", None), (-5, None)],
)  # fmt: skip
def test_agent_from_sub_takes_a_bare_id_or_a_url_ending_in_it(sub: object, agent: int | None) -> None:
    """Zendesk's `sub` names the agent; any other shape names nobody."""
    assert agent_from_sub(sub) == agent


def test_a_token_signed_with_the_apps_key_names_its_agent() -> None:
    """RS256, right key, audience and issuer, not expired: the agent's id."""
    assert verify(zendesk_jwt(1002)) == 1002
    assert verify(zendesk_jwt("1003")) == 1003


def _unsigned(alg: str, key: bytes = b"") -> str:
    header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT"}).encode()).rstrip(b"=")
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "1001", "exp": int(NOW.timestamp()) + 300}
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(hmac.new(key, header + b"." + payload, hashlib.sha256).digest()).rstrip(b"=")
    return (header + b"." + payload + b"." + (signature if alg == "HS256" else b"")).decode()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: zendesk_jwt(key=other_key()), "signature"),
        (lambda: zendesk_jwt(expires_in=-120), "expired"),
        (lambda: zendesk_jwt(aud="https://evil.zendesk.com/api/v2/apps/installations/1.json"), "aud"),
        (lambda: zendesk_jwt(iss="evil.zendesk.com"), "iss"),
        (lambda: _unsigned("none"), "not RS256"),
        # The classic confusion: the public key, which anyone may have, used as an HMAC secret.
        (lambda: _unsigned("HS256", public_pem().encode()), "not RS256"),
        (lambda: "not-a-jwt", "not a JWT"),
        (lambda: zendesk_jwt("nobody"), "sub"),
    ],
)
def test_forged_expired_or_foreign_tokens_are_refused(token: Any, reason: str) -> None:
    """Every way a token can fail says why, and names no agent."""
    with pytest.raises(NotVerified, match=reason):
        verify(token())


def test_a_token_without_exp_is_refused() -> None:
    """A token that never expires is not one Zendesk sends."""
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "1001"}
    from tests.softphone_kit import app_key

    with pytest.raises(NotVerified, match="exp"):
        verify(jwt.encode(body, app_key(), algorithm="RS256"))


def test_sessions_are_the_bridges_own_and_short_lived() -> None:
    """A session verifies until it expires; renewals never outlive SESSION_MAX_AGE; a forged one fails."""
    signer = SessionSigner(b"secret")
    token = signer.issue("alice", 1001, NOW)
    session = signer.verify(token, NOW + timedelta(minutes=1))
    assert (session.identity, session.agent_id) == ("alice", 1001)
    with pytest.raises(NotVerified, match="expired"):
        signer.verify(token, NOW + SESSION_TTL)
    with pytest.raises(NotVerified, match="not the bridge's"):
        SessionSigner(b"other").verify(token, NOW)
    payload, _, signature = token.partition(".")
    with pytest.raises(NotVerified):
        signer.verify(payload[:-2] + "xx." + signature, NOW)
    late = NOW + SESSION_MAX_AGE - timedelta(minutes=5)
    renewed = signer.verify(signer.issue("alice", 1001, late, since=session.since), late)
    assert renewed.expires == datetime.fromtimestamp(int((NOW + SESSION_MAX_AGE).timestamp()), tz=UTC)


def test_settings_check_the_app_key_and_audience() -> None:
    """A PEM with escaped newlines is accepted; a wrong audience or key says what to set."""
    pem = public_pem().replace("\n", "\\n")
    settings = load_settings(zendesk_app_public_key=pem, zendesk_app_audience=AUDIENCE)
    assert settings.zendesk_app_public_key == public_pem().strip()
    assert settings.softphone_issuer == ISSUER
    with pytest.raises(ConfigError, match="ZENDESK_APP_AUDIENCE"):
        load_settings(zendesk_app_audience="https://acme.zendesk.com/")
    with pytest.raises(ConfigError, match="ZENDESK_APP_PUBLIC_KEY"):
        load_settings(zendesk_app_public_key="hello")


async def post_page(bridge: LocalBridge, token: str | None) -> tuple[int, str]:
    """POST the top-bar request as Zendesk does (a form with `token`)."""
    data = {"token": token} if token is not None else {}
    async with aiohttp.ClientSession() as session, session.post(bridge.url + "/zendesk/softphone", data=data) as r:
        return r.status, await r.text()


def session_of(page: str) -> str:
    match = re.search(r'<script id="softphone-config" type="application/json">(.*?)</script>', page)
    assert match, page
    return str(json.loads(match.group(1))["session"])


async def post_token(bridge: LocalBridge, session: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {session}"} if session is not None else {}
    async with aiohttp.ClientSession() as client, client.post(bridge.url + "/softphone/token", headers=headers) as r:
        return r.status, await r.json()


async def test_a_verified_agent_gets_the_page_and_a_voice_token(make_bridge: BridgeFactory) -> None:
    """The JWT names agent 1001 (client:alice): her page, then a one-hour Voice token for `alice`."""
    async with make_bridge(**softphone_settings()) as bridge:
        status, page = await post_page(bridge, zendesk_jwt(1001))
        assert status == 200
        assert "/softphone/sdk/twilio.min.js" in page
        status, body = await post_token(bridge, session_of(page))
        assert status == 200
        assert body["identity"] == "alice"
        # twilio-python's AccessToken: signed with the API key's secret, issued by the API key.
        claims = jwt.decode(body["token"], API_KEY_SECRET, algorithms=["HS256"])
        assert claims["iss"] == API_KEY_SID
        assert claims["sub"] == ACCOUNT_SID
        assert claims["exp"] - claims["nbf"] == 3600
        assert claims["grants"]["identity"] == "alice"
        voice = claims["grants"]["voice"]
        assert voice["incoming"] == {"allow": True}
        assert voice["outgoing"]["application_sid"] == TWIML_APP_SID
        status, _ = await post_token(bridge, body["session"])  # the renewed session works too
        assert status == 200


@pytest.mark.parametrize("kind", ["forged", "expired", "missing"])
async def test_a_forged_or_expired_jwt_gets_no_page_and_no_token(make_bridge: BridgeFactory, kind: str) -> None:
    """No page, no session in the answer, and the token route refuses anything but a session it issued."""
    tokens = {"forged": zendesk_jwt(key=other_key()), "expired": zendesk_jwt(expires_in=-300), "missing": None}
    async with make_bridge(**softphone_settings()) as bridge:
        status, page = await post_page(bridge, tokens[kind])
        assert status == 401
        assert "softphone-config" not in page
        assert "could not be verified" in page
        for session in [None, "", "forged.session", zendesk_jwt(1001)]:
            status, _ = await post_token(bridge, session)
            assert status == 401


async def test_an_agent_not_in_agents_gets_a_page_that_says_so(make_bridge: BridgeFactory) -> None:
    """A Zendesk user the bridge does not map (or maps only to a phone number) has no softphone."""
    async with make_bridge(**softphone_settings()) as bridge:
        for agent in (4242, 1003):  # 1003 is +16505550111: a phone agent, not a browser one
            status, page = await post_page(bridge, zendesk_jwt(agent))
            assert status == 200
            assert f"client:YOURNAME={agent}" in page
            assert "softphone-config" not in page


async def test_without_configuration_the_page_says_what_to_set(make_bridge: BridgeFactory) -> None:
    """An unconfigured softphone answers 503 and names the missing variables."""
    async with make_bridge() as bridge:
        status, page = await post_page(bridge, zendesk_jwt(1001))
        assert status == 503
        assert "TWILIO_TWIML_APP_SID" in page
        assert (await post_token(bridge, "x.y"))[0] == 401


async def test_the_apps_key_is_fetched_once_with_its_id(make_bridge: BridgeFactory) -> None:
    """Without a PEM, the bridge fetches /api/v2/apps/{id}/public_key.pem at start-up and verifies with it."""
    config = SandboxConfig(app_public_keys=((APP_ID, public_pem()),))
    settings = softphone_settings(zendesk_app_public_key=None, zendesk_app_id=APP_ID)
    async with make_bridge(sandbox_config=config, **settings) as bridge:
        assert (await post_page(bridge, zendesk_jwt(1001)))[0] == 200
        assert (await post_page(bridge, zendesk_jwt(1001, key=other_key())))[0] == 401
        fetched = [entry for entry in bridge.sandbox.requests if "public_key.pem" in entry["path"]]
        assert len(fetched) == 1


async def test_an_unfetchable_key_leaves_calls_working_and_says_why(make_bridge: BridgeFactory) -> None:
    """A wrong app id: the bridge starts (calls matter more), and the page says what to set."""
    settings = softphone_settings(zendesk_app_public_key=None, zendesk_app_id=7)
    async with make_bridge(**settings) as bridge:
        status, page = await post_page(bridge, zendesk_jwt(1001))
        assert status == 503
        assert "could not be fetched" in page


async def test_the_caller_lookup_answers_only_what_the_bridge_already_knows(make_bridge: BridgeFactory) -> None:
    """POST /softphone/caller needs a session, and reads the bridge's caller cache (no Zendesk request)."""
    from tests.conftest import recording

    async with make_bridge(**softphone_settings()) as bridge:
        await bridge.replay([recording("inbound_answered")])
        await bridge.settle_calls()
        _, page = await post_page(bridge, zendesk_jwt(1001))
        headers = {"Authorization": f"Bearer {session_of(page)}"}
        async with aiohttp.ClientSession() as client:
            url = bridge.url + "/softphone/caller"
            async with client.post(url, json={"number": "+14155550123"}, headers=headers) as response:
                assert (await response.json())["user_id"] == 2001
            async with client.post(url, json={"number": "+14155550000"}, headers=headers) as response:
                assert (await response.json())["user_id"] is None
            async with client.post(url, json={"nope": 1}, headers=headers) as response:
                assert response.status == 400
            async with client.post(url, json={"number": "+14155550123"}) as response:
                assert response.status == 401


async def test_the_page_assets_and_the_sdk_are_served(make_bridge: BridgeFactory) -> None:
    """The page's own files by name only; the SDK bundle npm installed, or a 503 saying to run npm ci."""
    async with make_bridge(**softphone_settings()) as bridge, aiohttp.ClientSession() as client:
        for name in ("softphone.js", "softphone.css", "background.js", "background.html", "ticker.js"):
            async with client.get(f"{bridge.url}/softphone/static/{name}") as response:
                assert response.status == 200, name
        async with client.get(f"{bridge.url}/softphone/static/..%2Froutes.py") as response:
            assert response.status == 404
        async with client.get(f"{bridge.url}/softphone/sdk/twilio.min.js") as response:
            if SDK_FILE.exists():
                assert response.status == 200
                assert "Twilio.Device" in await response.text()
            else:
                assert response.status == 503
