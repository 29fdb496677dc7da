"""What the softphone tests share: a test RSA key for the Zendesk app, its JWTs, and a bridge configured for it."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = 42
INSTALLATION = 900042
AUDIENCE = f"https://acme.zendesk.com/api/v2/apps/installations/{INSTALLATION}.json"
ISSUER = "acme.zendesk.com"
ACCOUNT_SID = "AC" + "0" * 32
API_KEY_SID = "SK" + "1" * 32
API_KEY_SECRET = "test-api-key-secret-0123456789abcdef"
TWIML_APP_SID = "AP" + "2" * 32


@cache
def app_key() -> rsa.RSAPrivateKey:
    """Return the test's stand-in for the app's private key, which only Zendesk holds."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def other_key() -> rsa.RSAPrivateKey:
    """Return a key that is not the app's: what a forger signs with."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey | None = None) -> str:
    """Return the PEM of a key's public half (the app's by default)."""
    public = (key or app_key()).public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def zendesk_jwt(agent: int | str = 1001, *, key: rsa.RSAPrivateKey | None = None, expires_in: float = 300,
                **claims: Any) -> str:  # fmt: skip
    """Sign a token as Zendesk signs the app's signed-URL requests (RS256)."""
    now = int(time.time())
    sub = agent if isinstance(agent, str) else f"https://acme.zendesk.com/api/v2/users/{agent}.json"
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": int(now + expires_in), **claims}
    return jwt.encode(body, key or app_key(), algorithm="RS256")


def softphone_settings(**extra: Any) -> dict[str, Any]:
    """Return the settings that turn the softphone on, with the app's key given as a PEM."""
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_key_sid": API_KEY_SID,
        "twilio_api_key_secret": API_KEY_SECRET,
        "twilio_twiml_app_sid": TWIML_APP_SID,
        "zendesk_app_audience": AUDIENCE,
        "zendesk_app_public_key": public_pem(),
        **extra,
    }
