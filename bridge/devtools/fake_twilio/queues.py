"""Call queues: <Enqueue> with its waitUrl loop and action, <Leave>, <Dial><Queue>, and the Queue/Member REST API.

Twilio docs: TwiML <Enqueue> (action, method, waitUrl, waitUrlMethod; QueueResult), <Leave>, <Queue>;
Queue resource (MaxSize default 1000, at most 5000) and Member resource (Front, dequeue with Url).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from bridge.devtools.fake_twilio.interpreter import END, FALL, Context, Fetch, Flow, Interpreter, Interrupt
from bridge.devtools.fake_twilio.state import Call, rfc2822
from bridge.devtools.fake_twilio.twiml import TwimlError, Verb
from bridge.devtools.fake_twilio.webhooks import FetchError

DEFAULT_MAX_SIZE = 1000  # Twilio docs: <Enqueue>: "the default maximum length of the queue is 1000"
MAX_MAX_SIZE = 5000
WAIT_VERBS = frozenset({"Play", "Say", "Pause", "Gather", "Redirect", "Leave", "Hangup"})  # Twilio docs: waitUrl
QUEUE_URL_VERBS = frozenset({"Play", "Say", "Pause", "Redirect"})  # Twilio docs: <Queue url>
DEFAULT_PLAYLIST = "https://s3.amazonaws.com/com.twilio.sounds.music/index.xml"  # played, never fetched here


class Left(Exception):
    """<Leave> ran in a wait document."""


@dataclass
class Queue:
    """A named call queue."""

    sid: str
    name: str
    created: datetime
    max_size: int = DEFAULT_MAX_SIZE
    members: list[Membership] = field(default_factory=list)

    def position(self, membership: Membership) -> int:
        """Return a member's 1-based position."""
        return self.members.index(membership) + 1

    def average_wait(self, now: datetime) -> int:
        """Return the average wait, in seconds, of the callers now in the queue."""
        if not self.members:
            return 0
        return int(sum((now - m.enqueued).total_seconds() for m in self.members) / len(self.members))

    def resource(self, account_sid: str, now: datetime) -> dict[str, Any]:
        """Return the Queue resource (Twilio docs: Queue resource)."""
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "friendly_name": self.name,
            "current_size": len(self.members),
            "max_size": self.max_size,
            "average_wait_time": self.average_wait(now),
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.created),
            "uri": f"/2010-04-01/Accounts/{account_sid}/Queues/{self.sid}.json",
        }


@dataclass
class Membership:
    """A call waiting in a queue."""

    queue: Queue
    call: Call
    enqueued: datetime

    def left(self, call: Call) -> None:
        """Take the call out of the queue."""
        if self in self.queue.members:
            self.queue.members.remove(self)
        call.queue = None

    def resource(self, account_sid: str, now: datetime) -> dict[str, Any]:
        """Return the Member resource (Twilio docs: Member resource)."""
        return {
            "call_sid": self.call.sid,
            "queue_sid": self.queue.sid,
            "position": self.queue.position(self),
            "wait_time": int((now - self.enqueued).total_seconds()),
            "date_enqueued": rfc2822(self.enqueued),
            "uri": f"/2010-04-01/Accounts/{account_sid}/Queues/{self.queue.sid}/Members/{self.call.sid}.json",
        }


def queue_named(rt: Interpreter, name: str) -> Queue:
    """Return the queue called `name`, made on demand (Twilio docs: <Enqueue>)."""
    for queue in rt.account.queues.values():
        if queue.name == name:
            return queue
    queue = Queue(rt.account.sids.make("QU"), name, rt.account.now)
    rt.account.queues[queue.sid] = queue
    return queue


def wait_params(rt: Interpreter, membership: Membership) -> dict[str, str]:
    """Return the waitUrl request's queue parameters (Twilio docs: <Enqueue>, waitUrl parameters)."""
    queue, now = membership.queue, rt.account.now
    return {
        "QueuePosition": str(queue.position(membership)),
        "QueueSid": queue.sid,
        "QueueTime": str(int((now - membership.enqueued).total_seconds())),
        "AvgQueueTime": str(queue.average_wait(now)),
        "CurrentQueueSize": str(len(queue.members)),
        "MaxQueueSize": str(queue.max_size),
    }


async def enqueue(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Wait in a queue until dequeued, bridged, left or hung up; then request the action with QueueResult."""
    await rt.answer(call)
    queue = queue_named(rt, verb.text)
    if len(queue.members) >= queue.max_size:
        return await _result(rt, call, verb, url, "queue-full", None)  # no QueueSid/QueueTime: never enqueued
    membership = Membership(queue, call, rt.account.now)
    queue.members.append(membership)
    call.queue = membership
    try:
        await _wait_loop(rt, call, verb, url, membership)
    except Left:
        return await _result(rt, call, verb, url, "leave", membership)
    except (FetchError, TwimlError) as exc:
        call.errors.append(str(exc.code))
        return await _result(rt, call, verb, url, "error", membership)  # inferred: a broken waitUrl
    except Interrupt as interrupt:
        if interrupt.kind == "hangup":
            rt.account.close(call)
            flow = await _result(rt, call, verb, url, "hangup", membership)
            await rt.account.report_end(call)
            return flow
        if interrupt.kind == "bridge":
            return await _bridged(rt, call, verb, url, membership, interrupt.value)
        # A REST redirect or a Member dequeue: the action hears `redirected` at once, and the new TwiML runs.
        reply = await _result(rt, call, verb, url, "redirected", membership, ignore_reply=True)
        if rt.account.script.keep_enqueue_action_reply and isinstance(reply, Fetch):
            return reply  # test switch: prove the bridge's reply to `redirected` would be harmless
        return interrupt.value  # type: ignore[no-any-return]
    return END  # pragma: no cover - the wait loop only ends by raising


async def _wait_loop(rt: Interpreter, call: Call, verb: Verb, url: str, membership: Membership) -> None:
    """Run the wait document, requesting waitUrl again each time it runs out (Twilio docs: <Enqueue>, waitUrl)."""
    context = Context(allowed=WAIT_VERBS, nested=True, queue=membership)
    wait_url = verb.attributes.get("waitUrl")
    while True:
        if wait_url is None:
            await rt.prompt(call, Verb("Play", {}, DEFAULT_PLAYLIST))
            continue
        if wait_url == "":
            await rt.wait(call, None)  # '' plays nothing: silence until something happens
            continue
        flow: Flow = Fetch(urljoin(url, wait_url), verb.get("waitUrlMethod", "POST"))
        while isinstance(flow, Fetch):
            flow.params = {**wait_params(rt, membership), **flow.params}
            verbs = await rt.load(call, flow)
            flow = await rt.execute(call, verbs, context, flow.url)
        if flow is END or call.over:
            raise Interrupt("hangup")  # <Hangup> in the wait document: the caller leaves the queue and the call
        assert flow is FALL


async def _leave(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Leave the queue; the verb after <Enqueue>, or its action, runs next (Twilio docs: TwiML <Leave>)."""
    if context.queue is None:
        raise TwimlError(12200, "<Leave> outside a queue's wait document")
    raise Left


async def _result(
    rt: Interpreter,
    call: Call,
    verb: Verb,
    url: str,
    result: str,
    membership: Membership | None,
    ignore_reply: bool = False,
) -> Flow:
    """Request the <Enqueue action> with QueueResult (and QueueSid/QueueTime when enqueued), or go on."""
    if membership is not None:
        waited = int((rt.account.now - membership.enqueued).total_seconds())
        membership.left(call)
    if not verb.get("action"):
        return None if not call.over else END  # Twilio docs: without action, the next verb runs
    params = {"QueueResult": result}
    if membership is not None:
        params.update(QueueSid=membership.queue.sid, QueueTime=str(waited))
    action = urljoin(url, verb.get("action"))
    method = verb.get("method", "POST")
    if ignore_reply or call.over:
        root = call.root
        try:
            body = await rt.account.sender.fetch(root.sid, root.created, action, method, {**call.params(), **params})
        except FetchError as exc:
            call.errors.append(str(exc.code))
            return END if call.over else None
        return END if call.over else Fetch("", twiml=body)
    return Fetch(action, method, params)


async def _bridged(rt: Interpreter, call: Call, verb: Verb, url: str, membership: Membership, value: Any) -> Flow:
    """Be bridged to the agent leg that dialed the queue: run its <Queue url> first, then talk."""
    agent, queue_url, method = value
    waited = int((rt.account.now - membership.enqueued).total_seconds())
    membership.left(call)
    talking = False
    try:
        if queue_url:
            extra = {"QueueSid": membership.queue.sid, "QueueTime": str(waited), "DequeingCallSid": agent.sid}
            flow: Flow = Fetch(queue_url, method, extra)
            while isinstance(flow, Fetch):
                verbs = await rt.load(call, flow)
                flow = await rt.execute(call, verbs, Context(allowed=QUEUE_URL_VERBS, nested=True), flow.url)
        agent.post("peer", (call, "bridged"))
        talking = True
        await rt.wait(call, None, frozenset({"peer-gone"}))
    except Interrupt as interrupt:
        agent.post("peer", (call, "gone"))
        if interrupt.kind == "redirect":
            # Twilio docs: <Enqueue>, QueueResult `redirected-from-bridged`: transferred out after the bridge.
            await _queue_action(rt, call, verb, url, "redirected-from-bridged", membership, waited, ignore=True)
            return interrupt.value  # type: ignore[no-any-return]
        rt.account.close(call)
        # Twilio docs: <Enqueue>, QueueResult: `bridging-in-process` when the call ends while being bridged.
        await _queue_action(rt, call, verb, url, "bridged" if talking else "bridging-in-process", membership, waited)
        await rt.account.report_end(call)
        return END
    return await _queue_action(rt, call, verb, url, "bridged", membership, waited)


async def _queue_action(
    rt: Interpreter,
    call: Call,
    verb: Verb,
    url: str,
    result: str,
    membership: Membership,
    waited: int,
    ignore: bool = False,
) -> Flow:
    """Request the action after a bridge: sent once the bridged parties disconnect (Twilio docs: <Enqueue>)."""
    if not verb.get("action"):
        return None
    params = {"QueueResult": result, "QueueSid": membership.queue.sid, "QueueTime": str(waited)}
    action, method = urljoin(url, verb.get("action")), verb.get("method", "POST")
    if ignore:
        root = call.root
        try:
            await rt.account.sender.fetch(root.sid, root.created, action, method, {**call.params(), **params})
        except FetchError as exc:
            call.errors.append(str(exc.code))
        return None
    return await rt.action(call, action, method, params)


async def dial_queue(rt: Interpreter, call: Call, verb: Verb, context: Context, url: str) -> Flow:
    """Connect this call to the first caller waiting in the queue (Twilio docs: TwiML <Queue>)."""
    await rt.answer(call)
    noun = verb.children[0]
    queue = next((q for q in rt.account.queues.values() if q.name == noun.text), None)
    status, peer, started = "failed", None, None  # inferred: a queue that does not exist fails the Dial
    token = object()
    if queue is not None:
        rt.account.clock.after(verb.number("timeout", 30), lambda: call.post("dial-timeout", token))
        status = "no-answer"
        try:
            while peer is None:
                if queue.members:
                    head = queue.members[0]
                    head.left(head.call)
                    peer = head.call
                    target = urljoin(url, noun.get("url")) if noun.get("url") else None
                    peer.post("bridge", (call, target, noun.get("method", "POST")))
                    break
                kind, value = await rt.wait(call, 1.0, frozenset({"dial-timeout"}))  # look for a caller each second
                if kind == "dial-timeout" and value is token:
                    break
            while peer is not None:
                kind, value = await rt.wait(call, None, frozenset({"peer"}))
                if value[0] is not peer:
                    continue
                if value[1] == "bridged":
                    started, status = rt.account.now, "completed"
                    continue
                break
        except Interrupt as interrupt:
            if peer is not None:
                peer.post("peer-gone")
            if interrupt.kind == "redirect":
                return interrupt.value  # type: ignore[no-any-return]
            rt.account.close(call)
    duration = int((rt.account.now - started).total_seconds()) if started else 0
    params = {"DialCallStatus": status, "DialCallDuration": str(duration), "DialBridged": str(bool(started)).lower()}
    if peer is not None:
        params["DialCallSid"] = peer.sid  # inferred: the dequeued caller's leg
    flow: Flow = None
    if verb.get("action"):
        flow = await rt.action(call, urljoin(url, verb.get("action")), verb.get("method", "POST"), params)
    if call.over:
        await rt.account.report_end(call)
        return END
    return flow


def register(rt: Interpreter) -> None:
    """Teach the interpreter <Enqueue>, <Leave> and <Dial><Queue>."""
    rt.verbs["Enqueue"] = enqueue
    rt.verbs["Leave"] = _leave
    rt.verbs["DialQueue"] = dial_queue
