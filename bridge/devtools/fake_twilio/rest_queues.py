"""REST: the Queue and Member resources (Twilio docs: Queue resource, Member resource)."""

from __future__ import annotations

from aiohttp import web

from bridge.devtools.fake_twilio.interpreter import Fetch
from bridge.devtools.fake_twilio.queues import DEFAULT_MAX_SIZE, MAX_MAX_SIZE, Membership, Queue
from bridge.devtools.fake_twilio.rest import BASE, RestError, fake_of, form, page


def _queue(request: web.Request) -> Queue:
    """Return the queue named in the path, or Twilio's 20404."""
    queue = fake_of(request).account.queues.get(request.match_info["queue"])
    if queue is None:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return queue


def _size(raw: str | None, default: int) -> int:
    """Read MaxSize: a whole number up to 5000."""
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_MAX_SIZE:
        raise RestError(400, 20001, f"MaxSize must be between 1 and {MAX_MAX_SIZE}")
    return int(raw)


async def create_queue(request: web.Request) -> web.Response:
    """POST /Queues.json: FriendlyName (at most 64 characters), MaxSize; 201."""
    fake = fake_of(request)
    body = await form(request)
    name = body.get("FriendlyName", "")
    if not name or len(name) > 64:
        raise RestError(400, 20001, "FriendlyName is required and has at most 64 characters")
    if any(queue.name == name for queue in fake.account.queues.values()):
        raise RestError(400, 22003, "A queue with this FriendlyName already exists")  # inferred code
    queue = Queue(fake.account.sids.make("QU"), name, fake.account.now, _size(body.get("MaxSize"), DEFAULT_MAX_SIZE))
    fake.account.queues[queue.sid] = queue
    return web.json_response(queue.resource(fake.account.sid, fake.account.now), status=201)


async def list_queues(request: web.Request) -> web.Response:
    """GET /Queues.json."""
    fake = fake_of(request)
    items = [q.resource(fake.account.sid, fake.account.now) for q in fake.account.queues.values()]
    return page(request, "queues", items)


async def fetch_queue(request: web.Request) -> web.Response:
    """GET /Queues/{QU}.json: average_wait_time computed now."""
    fake = fake_of(request)
    return web.json_response(_queue(request).resource(fake.account.sid, fake.account.now))


async def update_queue(request: web.Request) -> web.Response:
    """POST /Queues/{QU}.json: FriendlyName, MaxSize."""
    fake = fake_of(request)
    queue = _queue(request)
    body = await form(request)
    queue.max_size = _size(body.get("MaxSize"), queue.max_size)
    queue.name = body.get("FriendlyName", queue.name)
    return web.json_response(queue.resource(fake.account.sid, fake.account.now))


async def delete_queue(request: web.Request) -> web.Response:
    """DELETE /Queues/{QU}.json: only an empty queue (Twilio docs: "Remove an empty queue"); 204."""
    fake = fake_of(request)
    queue = _queue(request)
    if queue.members:
        raise RestError(400, 20001, "The queue is not empty")  # inferred code
    del fake.account.queues[queue.sid]
    return web.Response(status=204)


def _member(request: web.Request) -> Membership:
    """Return the member named by CallSid or `Front` (Twilio docs: Member resource), or 20404."""
    queue = _queue(request)
    sid = request.match_info["member"]
    members = queue.members[:1] if sid == "Front" else [m for m in queue.members if m.call.sid == sid]
    if not members:
        raise RestError(404, 20404, f"The requested resource {request.path} was not found")
    return members[0]


async def list_members(request: web.Request) -> web.Response:
    """GET /Queues/{QU}/Members.json."""
    fake = fake_of(request)
    items = [m.resource(fake.account.sid, fake.account.now) for m in _queue(request).members]
    return page(request, "queue_members", items)


async def fetch_member(request: web.Request) -> web.Response:
    """GET /Queues/{QU}/Members/{CA|Front}.json."""
    fake = fake_of(request)
    return web.json_response(_member(request).resource(fake.account.sid, fake.account.now))


async def dequeue_member(request: web.Request) -> web.Response:
    """POST /Queues/{QU}/Members/{CA|Front}.json with Url: the call leaves and runs that TwiML."""
    fake = fake_of(request)
    member = _member(request)
    body = await form(request)
    url = body.get("Url", "")
    if not url.startswith(("http://", "https://")):
        raise RestError(400, 21205, "Url must be an absolute URL")  # Twilio docs: Member update, Url required
    shown = member.resource(fake.account.sid, fake.account.now)
    member.call.post("dequeue", Fetch(url, body.get("Method", "POST")))
    await fake.settle()
    return web.json_response(shown)


def add_routes(app: web.Application) -> None:
    """Serve the Queue and Member resources."""
    queue, member = "{queue:QU[0-9a-f]{32}}", "{member:(CA[0-9a-f]{32}|Front)}"
    app.router.add_post(f"{BASE}/Queues.json", create_queue)
    app.router.add_get(f"{BASE}/Queues.json", list_queues)
    app.router.add_get(f"{BASE}/Queues/{queue}.json", fetch_queue)
    app.router.add_post(f"{BASE}/Queues/{queue}.json", update_queue)
    app.router.add_delete(f"{BASE}/Queues/{queue}.json", delete_queue)
    app.router.add_get(f"{BASE}/Queues/{queue}/Members.json", list_members)
    app.router.add_get(f"{BASE}/Queues/{queue}/Members/{member}.json", fetch_member)
    app.router.add_post(f"{BASE}/Queues/{queue}/Members/{member}.json", dequeue_member)
