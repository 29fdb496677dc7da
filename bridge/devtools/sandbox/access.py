"""Who may call and how often: credentials, the token user's role, and Zendesk's rate limit and its headers."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import time
from collections import deque
from collections.abc import Callable

from aiohttp import hdrs, web

from bridge.devtools.sandbox.config import RATE_WINDOW_SECONDS
from bridge.devtools.sandbox.errors import forbidden
from bridge.devtools.sandbox.seed import INTEGRATION_USER_ID
from bridge.devtools.sandbox.state import State

DEFAULT_RATE_LIMIT = 700  # the X-Rate-Limit the recorded TPE cassettes report (Enterprise plan)
RATE_LIMIT_TEXT = "Number of allowed API requests per minute exceeded"


class Access:
    """Check credentials and roles, and count requests against the account's rolling rate-limit window."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._config = state.config
        # Replaceable so tests can move the rolling rate-limit window without sleeping.
        self.clock: Callable[[], float] = time.monotonic
        self._hits: deque[float] = deque()

    def reset(self) -> None:
        """Forget every request counted in the window."""
        self._hits.clear()

    def authenticate(self, authorization: str | None) -> bool:
        """Check an Authorization header against the API token (Basic) or OAuth token (Bearer)."""
        scheme, _, credentials = (authorization or "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True)
            except binascii.Error:
                return False
            expected = f"{self._config.email}/token:{self._config.api_token}".encode()
            return hmac.compare_digest(decoded, expected)
        if scheme.lower() == "bearer" and self._config.oauth_token:
            return hmac.compare_digest(credentials.encode(), self._config.oauth_token.encode())
        return False

    def require_admin(self) -> None:
        """Raise 403 unless the token's user is an admin."""
        if self._state.users[INTEGRATION_USER_ID]["role"] != "admin":
            raise forbidden()

    @property
    def rate_limit(self) -> int:
        """Return the per-minute limit advertised in `X-Rate-Limit`."""
        limit = self._config.rate_limit_per_minute
        return DEFAULT_RATE_LIMIT if limit is None else limit

    def rate_limit_remaining(self) -> int:
        """Return how many requests the rolling 60 s window still allows."""
        return max(0, self.rate_limit - self._window_hits())

    def rate_limit_reset(self) -> float:
        """Return the seconds until the oldest request counted in the window leaves it (`ratelimit-reset`).

        Zendesk says whole seconds of its minute; a window shrunk for a benchmark keeps that precision in
        proportion (1/60 of the window), or rounding alone would idle up to half of a 2 s window.
        """
        if not self._window_hits():
            return 0
        step = self._config.rate_window_seconds / RATE_WINDOW_SECONDS
        left = max(0.0, self._hits[0] + self._config.rate_window_seconds - self.clock())
        return math.ceil(left / step) * step if step < 1 else math.ceil(left)

    def consume_rate_limit(self) -> int | None:
        """Count one request against the limit, or return the `Retry-After` seconds when over it."""
        used = self._window_hits()
        limit = self._config.rate_limit_per_minute
        if limit is not None and used >= limit:
            oldest = self._hits[0] if self._hits else self.clock()
            return max(1, math.ceil(oldest + self._config.rate_window_seconds - self.clock()))
        self._hits.append(self.clock())
        return None

    def _window_hits(self) -> int:
        horizon = self.clock() - self._config.rate_window_seconds
        while self._hits and self._hits[0] <= horizon:
            self._hits.popleft()
        return len(self._hits)


def too_many_requests(retry_after: int) -> web.Response:
    """Return Zendesk's 429: text/plain, with `Retry-After`."""
    # Real Zendesk 429 bodies are text/plain, so clients must not assume JSON here.
    return web.Response(status=429, text=RATE_LIMIT_TEXT, headers={hdrs.RETRY_AFTER: str(retry_after)})


def set_rate_headers(response: web.StreamResponse, access: Access) -> None:
    """Put the rate-limit headers every Zendesk answer carries on a response."""
    response.headers["X-Rate-Limit"] = str(access.rate_limit)
    response.headers["X-Rate-Limit-Remaining"] = str(access.rate_limit_remaining())
    # Zendesk sends this on list endpoints (developer docs, "Best practices for avoiding rate limiting").
    response.headers["ratelimit-reset"] = f"{access.rate_limit_reset():g}"
