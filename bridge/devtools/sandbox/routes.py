"""The Zendesk API routes: one thin handler per endpoint, each calling its resource's store."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from bridge.devtools.sandbox.account import SANDBOX
from bridge.devtools.sandbox.calls import strip_unknown_call_keys, strip_unknown_comment_keys
from bridge.devtools.sandbox.config import installation_id
from bridge.devtools.sandbox.errors import SandboxError, is_int, not_found, record_invalid
from bridge.devtools.sandbox.seed import INTEGRATION_USER_ID


def json_reply(payload: Any, status: int = 200) -> web.Response:
    """Answer with a JSON body."""
    return web.json_response(payload, status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    """Return a request's JSON object ({} when empty), or raise 400 InvalidJSON."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SandboxError(400, {"error": "InvalidJSON"}) from exc
    if not isinstance(data, dict):
        raise SandboxError(400, {"error": "InvalidJSON"})
    return data


def _warned(response: web.Response, dropped: list[str]) -> web.Response:
    if dropped:
        response.headers["X-Zendesk-API-Warn"] = f"Removed restricted keys {json.dumps(dropped)} from parameters"
    return response


# -- users and search ------------------------------------------------------------------------------


async def _show_me(request: web.Request) -> web.Response:
    return json_reply({"user": request.app[SANDBOX].users_api.get(INTEGRATION_USER_ID)})


async def _show_user(request: web.Request) -> web.Response:
    return json_reply({"user": request.app[SANDBOX].users_api.get(int(request.match_info["id"]))})


async def _search(request: web.Request) -> web.Response:
    return json_reply(request.app[SANDBOX].search_api.search(request.query.get("query", "")))


async def _users_search(request: web.Request) -> web.Response:
    users = request.app[SANDBOX].users_api.by_external_id(request.query.get("external_id", ""))
    return json_reply({"users": users, "count": len(users), "next_page": None})


async def _create_user(request: web.Request) -> web.Response:
    body = await json_body(request)
    return json_reply({"user": request.app[SANDBOX].users_api.create(body)}, 201)


async def _user_tickets(request: web.Request) -> web.Response:
    tickets_api = request.app[SANDBOX].tickets_api
    tickets = tickets_api.user_tickets(int(request.match_info["id"]), request.match_info["relation"])
    return json_reply({"tickets": tickets, "count": len(tickets), "next_page": None})


async def _user_identities(request: web.Request) -> web.Response:
    identities = request.app[SANDBOX].users_api.identities(int(request.match_info["id"]))
    return json_reply({"identities": identities, "count": len(identities), "next_page": None})


# -- tickets, merges, pops, uploads ----------------------------------------------------------------


async def _create_voice_ticket(request: web.Request) -> web.Response:
    body = await json_body(request)
    tickets_api = request.app[SANDBOX].tickets_api
    dropped = tickets_api.strip_unknown(body)
    return _warned(json_reply({"ticket": tickets_api.create_voice_ticket(body)}, 201), dropped)


async def _list_tickets(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    sandbox.access.require_admin()  # "Listing Tickets: Allowed for Admins" (Zendesk docs, Tickets)
    tickets = sandbox.tickets_api.list_tickets(request.query.get("external_id"))
    return json_reply({"tickets": tickets, "count": len(tickets)})


async def _show_ticket(request: web.Request) -> web.Response:
    return json_reply({"ticket": request.app[SANDBOX].tickets_api.get(int(request.match_info["id"]))})


async def _ticket_comments(request: web.Request) -> web.Response:
    comments = request.app[SANDBOX].tickets_api.get(int(request.match_info["id"]))["comments"]
    return json_reply({"comments": comments, "count": len(comments), "next_page": None})


async def _update_ticket(request: web.Request) -> web.Response:
    ticket_id = int(request.match_info["id"])
    sandbox = request.app[SANDBOX]
    if ticket_id not in sandbox.tickets:
        raise not_found()  # 404 wins over a malformed body, as on Zendesk
    body = await json_body(request)
    dropped = sandbox.tickets_api.strip_unknown(body)
    return _warned(json_reply({"ticket": sandbox.tickets_api.update(ticket_id, body)}), dropped)


async def _merge(request: web.Request) -> web.Response:
    body = await json_body(request)
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(is_int(i) for i in ids):
        raise record_invalid({"ids": "Ids: give the source ticket ids"})
    request.app[SANDBOX].tickets_api.merge(int(request.match_info["id"]), ids)
    return json_reply({"job_status": {"status": "completed"}})


async def _display_user(request: web.Request) -> web.Response:
    agent_id, user_id = int(request.match_info["agent_id"]), int(request.match_info["target_id"])
    request.app[SANDBOX].tickets_api.display(agent_id, "user", user_id)
    return json_reply({})


async def _display_ticket(request: web.Request) -> web.Response:
    agent_id, ticket_id = int(request.match_info["agent_id"]), int(request.match_info["target_id"])
    request.app[SANDBOX].tickets_api.display(agent_id, "ticket", ticket_id)
    return json_reply({})


async def _upload(request: web.Request) -> web.Response:
    data = await request.read()
    content_type = request.headers.get(hdrs.CONTENT_TYPE, "application/binary")
    base = f"{request.scheme}://{request.host}"
    upload = request.app[SANDBOX].uploads_api.upload(request.query.get("filename", ""), content_type, data, base)
    return json_reply({"upload": upload}, 201)


async def _delete_upload(request: web.Request) -> web.Response:
    request.app[SANDBOX].uploads_api.delete(request.match_info["token"])
    return web.Response(status=204)


async def download_attachment(request: web.Request) -> web.Response:
    """Serve an attachment's bytes at its content_url (outside /api, so without credentials)."""
    attachment, data = request.app[SANDBOX].uploads_api.attachment(request.match_info["token"])
    return web.Response(body=data, content_type=attachment["content_type"])


# -- groups, brands, apps --------------------------------------------------------------------------


async def _show_group(request: web.Request) -> web.Response:
    return json_reply({"group": request.app[SANDBOX].groups_api.show_group(int(request.match_info["id"]))})


async def _show_brand(request: web.Request) -> web.Response:
    return json_reply({"brand": request.app[SANDBOX].groups_api.show_brand(int(request.match_info["id"]))})


async def _app_public_key(request: web.Request) -> web.Response:
    # Zendesk docs, "Authenticating Zendesk in your server-side app": GET /api/v2/apps/{id}/public_key.pem.
    keys = dict(request.app[SANDBOX].config.app_public_keys)
    pem = keys.get(int(request.match_info["id"]))
    if pem is None:
        raise not_found()
    return web.Response(text=pem, content_type="application/x-pem-file")


async def _app_installations(request: web.Request) -> web.Response:
    # Zendesk docs, "Apps": GET /api/v2/apps/installations.json lists the account's installed apps.
    apps = request.app[SANDBOX].calls_api.installed_apps()
    installations = [{"id": installation_id(app_id), "app_id": app_id, "enabled": True} for app_id in apps]
    return json_reply({"installations": installations})


# -- agents' availability ---------------------------------------------------------------------------


async def _show_availability(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    if not sandbox.config.agent_availability:
        await unknown_endpoint(request)
    sandbox.access.require_admin()  # "Get an agent's availability: Allowed For Admins" (Agent Availability API)
    base = f"{request.scheme}://{request.host}"
    return json_reply(sandbox.availability_api.show(int(request.match_info["id"]), base))


# -- Talk Partner Edition calls --------------------------------------------------------------------


async def _create_call(request: web.Request) -> web.Response:
    body = await json_body(request)
    dropped = strip_unknown_call_keys(body)
    return _warned(json_reply({"call": request.app[SANDBOX].calls_api.create(body)}, 201), dropped)


async def _show_call(request: web.Request) -> web.Response:
    return json_reply({"call": request.app[SANDBOX].calls_api.get(int(request.match_info["id"]))})


async def _update_call(request: web.Request) -> web.Response:
    call_id = int(request.match_info["id"])
    sandbox = request.app[SANDBOX]
    if call_id not in sandbox.calls:
        raise not_found()  # 404 wins over a malformed body, as for tickets
    body = await json_body(request)
    dropped = strip_unknown_call_keys(body)
    if "comment" in body:  # a comment section belongs to a create only
        del body["comment"]
        dropped.append("comment")
    return _warned(json_reply({"call": sandbox.calls_api.update(call_id, body)}), dropped)


async def _add_call_comment(request: web.Request) -> web.Response:
    call_id = int(request.match_info["id"])
    sandbox = request.app[SANDBOX]
    if call_id not in sandbox.calls:
        raise not_found()
    body = await json_body(request)
    dropped = strip_unknown_comment_keys(body)
    # Recorded: the comment itself is the body of the answer, not wrapped in {"comment": ...}.
    return _warned(json_reply(sandbox.calls_api.add_comment(call_id, body), 201), dropped)


async def unknown_endpoint(request: web.Request) -> web.Response:
    """Answer an `/api` path the sandbox does not serve as Zendesk does."""
    raise SandboxError(404, {"error": "InvalidEndpoint", "description": "Not found"})


# Zendesk serves every endpoint both with and without the .json suffix; create_sandbox_app adds both.
API_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/api/v2/users/me", _show_me),
    ("GET", "/api/v2/users/search", _users_search),
    ("GET", r"/api/v2/users/{id:\d+}", _show_user),
    ("GET", r"/api/v2/users/{id:\d+}/identities", _user_identities),
    ("GET", r"/api/v2/users/{id:\d+}/tickets/{relation:requested|assigned}", _user_tickets),
    ("POST", r"/api/v2/tickets/{id:\d+}/merge", _merge),
    ("GET", r"/api/v2/groups/{id:\d+}", _show_group),
    ("GET", r"/api/v2/brands/{id:\d+}", _show_brand),
    ("POST", "/api/v2/users", _create_user),
    ("GET", "/api/v2/search", _search),
    ("POST", "/api/v2/channels/voice/tickets", _create_voice_ticket),
    ("POST", "/api/v2/uploads", _upload),
    ("DELETE", "/api/v2/uploads/{token:[A-Za-z0-9]+}", _delete_upload),
    ("GET", r"/api/v2/apps/{id:\d+}/public_key.pem", _app_public_key),
    ("GET", "/api/v2/apps/installations", _app_installations),
    ("GET", r"/api/v2/agent_availabilities/{id:\d+}", _show_availability),
    ("GET", "/api/v2/tickets", _list_tickets),
    ("GET", r"/api/v2/tickets/{id:\d+}", _show_ticket),
    ("GET", r"/api/v2/tickets/{id:\d+}/comments", _ticket_comments),
    ("PUT", r"/api/v2/tickets/{id:\d+}", _update_ticket),
    # Talk Partner Edition Calls: create, show, update, comment. No list or search: none is documented.
    ("POST", "/api/v2/calls", _create_call),
    ("GET", r"/api/v2/calls/{id:\d+}", _show_call),
    ("PATCH", r"/api/v2/calls/{id:\d+}", _update_call),
    ("POST", r"/api/v2/calls/{id:\d+}/comments", _add_call_comment),
    ("POST", r"/api/v2/channels/voice/agents/{agent_id:\d+}/users/{target_id:\d+}/display", _display_user),
    (
        "POST",
        r"/api/v2/channels/voice/agents/{agent_id:\d+}/tickets/{target_id:\d+}/display",
        _display_ticket,
    ),
]
