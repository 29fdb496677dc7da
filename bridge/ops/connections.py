"""What every command opens from the settings: the store DATABASE_URL names, and Zendesk's Authorization header.

Kept apart from the application (bridge.app) so the tools that only check or inspect, such as
`bridge doctor`, open the same things without building the server.
"""

from __future__ import annotations

from bridge.ops.settings import ConfigError, Settings
from bridge.store import Store
from bridge.store.postgres import PostgresStore
from bridge.store.sqlite import SqliteStore
from bridge.zendesk.client import basic_auth


async def open_store(settings: Settings) -> Store:
    """Open the store DATABASE_URL names, applying migrations."""
    url = settings.database_url
    if url.startswith("sqlite:"):
        return await SqliteStore.open(settings.sqlite_path)
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresStore.open(url)
    raise ConfigError(f"DATABASE_URL {url!r}: use sqlite:///file.db or postgresql://user@host/db")


def authorization(settings: Settings) -> str:
    """Return the Zendesk Authorization header: OAuth when given, else API token."""
    if settings.zendesk_oauth_token is not None:
        return f"Bearer {settings.zendesk_oauth_token.get_secret_value()}"
    if settings.zendesk_email is None or settings.zendesk_api_token is None:
        raise ConfigError("set ZENDESK_EMAIL and ZENDESK_API_TOKEN, or ZENDESK_OAUTH_TOKEN")
    return basic_auth(settings.zendesk_email, settings.zendesk_api_token.get_secret_value())
