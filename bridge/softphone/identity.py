"""Who the agent is: Zendesk's signed app request verified, then a short-lived session of the bridge's own.

Nothing here does I/O or reads a clock: `now` is passed in, like the pure core's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

SESSION_TTL = timedelta(minutes=75)  # outlives one Twilio token (1 h), so the page can refresh it
SESSION_MAX_AGE = timedelta(hours=12)  # a shift: past it the agent reloads Zendesk and signs in afresh
CLOCK_SKEW = timedelta(seconds=30)
# Expiry is checked against the `now` we are given, not PyJWT's own clock; the claims must all be there.
_OPTIONS: jwt.types.Options = {"require": ["exp", "sub", "aud", "iss"], "verify_exp": False, "verify_iat": False,
                               "verify_nbf": False}  # fmt: skip
_SUB = re.compile(r"(?:^|/)(\d{1,19})(?:\.json)?/?$")


class NotVerified(Exception):
    """A request that does not prove who sent it; the message says why (never the token itself)."""


def agent_from_sub(sub: object) -> int | None:
    """Return the Zendesk user id in a JWT `sub`: a bare id, or a URL ending in it (…/users/1001.json)."""
    if isinstance(sub, int) and not isinstance(sub, bool):
        return sub if sub > 0 else None
    if not isinstance(sub, str):
        return None
    match = _SUB.search(sub.strip())
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def verify_zendesk_token(token: str, public_key: str, *, audience: str, issuer: str, now: datetime) -> int:
    """Verify the app's signed-URL JWT and return the agent's Zendesk user id.

    Zendesk docs, "Building a server-side app, Part 5: Securing the app" and "Authenticating Zendesk in your
    server-side app": Zendesk POSTs `token`, an RS256 JWT signed with the app's private key; `aud` is the
    installation's URL, `iss` the account's host, `sub` the agent. Only RS256 is accepted: a token naming
    HS256 or none must never be checked against the public key as if it were a shared secret.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise NotVerified("token is not a JWT") from exc
    if header.get("alg") != "RS256":
        raise NotVerified(f"token is signed with {header.get('alg')!r}, not RS256")
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            options=_OPTIONS,
        )
    except jwt.InvalidSignatureError as exc:
        raise NotVerified("signature does not verify with the app's public key") from exc
    except jwt.InvalidAudienceError as exc:
        raise NotVerified("aud is not this app installation (ZENDESK_APP_AUDIENCE)") from exc
    except jwt.InvalidIssuerError as exc:
        raise NotVerified("iss is not the Zendesk account of ZENDESK_APP_AUDIENCE") from exc
    except jwt.InvalidTokenError as exc:
        raise NotVerified(f"token refused: {exc}") from exc
    exp = claims["exp"]
    if not isinstance(exp, int | float) or now.timestamp() > exp + CLOCK_SKEW.total_seconds():
        raise NotVerified("token has expired")
    agent = agent_from_sub(claims["sub"])
    if agent is None:
        raise NotVerified("sub names no Zendesk user")
    return agent


@dataclass(frozen=True)
class Session:
    """A verified agent, as the page proves it on each call to the bridge."""

    identity: str  # the Twilio Client identity, without `client:`
    agent_id: int
    expires: datetime
    since: datetime  # when Zendesk's token was verified; renewals never reach past SESSION_MAX_AGE from it


class SessionSigner:
    """Issue and check the page's session tokens (HMAC-SHA256 over a small JSON body)."""

    def __init__(self, secret: bytes, purpose: bytes = b"bridge softphone session v1") -> None:
        """Sign with a key derived from `secret` for `purpose`: one purpose's sessions are no other's."""
        self._key = hmac.new(secret, purpose, hashlib.sha256).digest()

    def issue(self, identity: str, agent_id: int, now: datetime, since: datetime | None = None) -> str:
        """Return a session token for a verified agent, valid for SESSION_TTL (capped by SESSION_MAX_AGE)."""
        start = since or now
        expires = min(now + SESSION_TTL, start + SESSION_MAX_AGE)
        body = {"i": identity, "a": agent_id, "e": int(expires.timestamp()), "s": int(start.timestamp())}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, now: datetime) -> Session:
        """Return the session a token carries, or raise NotVerified."""
        payload, _, signature = token.strip().partition(".")
        # Compared as text only when ASCII: hmac.compare_digest refuses other text, and a header may hold any.
        if not payload or not token.isascii() or not hmac.compare_digest(signature, self._sign(payload)):
            raise NotVerified("session token is not the bridge's")
        try:
            body = json.loads(_unb64(payload))
            expires = datetime.fromtimestamp(int(body["e"]), tz=now.tzinfo)
            since = datetime.fromtimestamp(int(body["s"]), tz=now.tzinfo)
            session = Session(identity=str(body["i"]), agent_id=int(body["a"]), expires=expires, since=since)
        except (ValueError, KeyError, TypeError, OverflowError, OSError) as exc:
            raise NotVerified("session token is not the bridge's") from exc
        if now >= expires:
            raise NotVerified("session has expired")
        return session

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
