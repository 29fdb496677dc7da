"""Zendesk: the async client and the outbox worker that delivers actions to it."""
