"""Zendesk: the credentials and what their role may do, the group and brand, the agents, and their availability."""

from __future__ import annotations

import aiohttp

from bridge.core.phones import is_client
from bridge.core.presence import Chosen
from bridge.ops.connections import authorization
from bridge.ops.doctor.check import Check
from bridge.ops.settings import Settings
from bridge.zendesk.availability import endpoint_missing, pace, read_status
from bridge.zendesk.client import AuthFailed, NotFound, ZendeskClient, ZendeskError

AVAILABILITY = "agent availability"  # in Zendesk


async def zendesk_checks(settings: Settings) -> list[Check]:
    """Check Zendesk is reachable, the credentials work, every AGENTS id is an agent, and their availability."""
    assert settings.zendesk_base_url is not None
    async with aiohttp.ClientSession() as session:
        zendesk = ZendeskClient(session, settings.zendesk_base_url, authorization(settings), timeout=10)
        try:
            me = await zendesk.me()
        except AuthFailed as exc:
            return [
                Check(
                    "Zendesk credentials",
                    False,
                    f"{settings.zendesk_base_url} refused them ({exc.status})",
                    "check ZENDESK_EMAIL/ZENDESK_API_TOKEN, and that Admin Center > Apps and integrations > "
                    "Zendesk API has token access on",
                )
            ]
        except ZendeskError as exc:
            return [Check("Zendesk", False, f"{settings.zendesk_base_url}: {exc}", "check ZENDESK_SUBDOMAIN/URL")]
        checks = []
        if me.get("role") in ("agent", "admin"):
            checks.append(Check("Zendesk credentials", True, f"act as {me.get('name')} ({me.get('role')})"))
            checks += await _permission_checks(zendesk, int(me["id"]), str(me.get("role")))
            checks += await _placement_checks(zendesk, settings)
        else:
            checks.append(
                Check(
                    "Zendesk credentials",
                    False,
                    f"act as {me.get('name')}, role {me.get('role')}",
                    "use the token of an agent or admin (a dedicated integration agent)",
                )
            )
        for identity, user_id in settings.agents.items():
            checks.append(await _agent_check(zendesk, identity, user_id))
        if settings.agents:
            checks.append(await availability_check(zendesk, settings))
        return checks


async def _permission_checks(zendesk: ZendeskClient, me: int, role: str) -> list[Check]:
    """Say what the token's role may and may not do, and why the bridge needs no more than an agent's."""
    checks = []
    probes = [
        (
            "may search callers",
            zendesk.search_users_by_phone("0000000000"),
            "finds the caller's user by phone (Search API, allowed for agents)",
        ),
        (
            "may read identities",
            zendesk.user_phones(me),
            "reads the extra phone numbers of a candidate user (User Identities, allowed for agents)",
        ),
        (
            "may list requested",
            zendesk.user_tickets(me, "requested"),
            "finds a ticket an attempt created when its answer was lost (a user's requested tickets, allowed "
            "for agents)",
        ),
    ]
    for name, probe, why in probes:
        try:
            await probe
        except ZendeskError as exc:
            checks.append(Check(name, False, f"refused ({exc.status or exc}): {why}", _PERMISSION_FIX))
        else:
            checks.append(Check(name, True, why))
    try:
        await zendesk.tickets_by_external_id("bridge-doctor-probe")
    except AuthFailed:
        checks.append(
            Check("List Tickets", True, f"refused to this {role}, as Zendesk allows it for admins only; not needed")
        )
    except ZendeskError as exc:
        checks.append(Check("List Tickets", True, f"not usable ({exc.status or exc}); not needed"))
    else:
        checks.append(
            Check(
                "List Tickets",
                True,
                f"allowed to this {role}; not needed: an agent's token is enough (least privilege)",
            )
        )
    checks.append(
        Check(
            "creates end-users",
            True,
            "the bridge creates a user for an unknown caller: agents may unless Admin Center > People > Roles "
            "forbids adding end-users",
        )
    )
    return checks


_PERMISSION_FIX = (
    "give the integration user an agent role that may view all tickets and add end-users "
    "(Admin Center > People > Team > Roles)"
)


async def _placement_checks(zendesk: ZendeskClient, settings: Settings) -> list[Check]:
    """Check ZENDESK_GROUP_ID, ZENDESK_BRAND_ID and each line's group and brand name ones the token can see.

    Zendesk allows agents to show a group and a brand (Groups API, "Show Group"; Brands API, "Show a Brand"):
    one the token cannot read is one Zendesk would refuse on a ticket.
    """
    checks = []
    wanted = [
        ("ZENDESK_GROUP_ID", settings.zendesk_group_id, zendesk.group),
        ("ZENDESK_BRAND_ID", settings.zendesk_brand_id, zendesk.brand),
    ]
    for line in settings.phone_lines.all if settings.phone_lines.configured else ():
        wanted += [
            (f"line {line.label()} group_id", line.group_id, zendesk.group),
            (f"line {line.label()} brand_id", line.brand_id, zendesk.brand),
        ]
    for name, value, read in wanted:
        if value is None:
            continue
        try:
            found = await read(value)
        except ZendeskError as exc:
            checks.append(Check(name, False, f"{value}: {exc}", "use the id from Admin Center (it is in the URL)"))
        else:
            checks.append(Check(name, True, f"{found.get('name')} ({value})"))
    return checks


async def _agent_check(zendesk: ZendeskClient, identity: str, user_id: int) -> Check:
    """Check one AGENTS entry names a Zendesk agent."""
    name = f"agent {identity}"
    try:
        user = await zendesk.user(user_id)
    except NotFound:
        return Check(name, False, f"Zendesk has no user {user_id}", "use the id from the agent's profile URL")
    except ZendeskError as exc:
        return Check(name, False, f"user {user_id}: {exc}", "check the Zendesk credentials")
    if user.get("role") not in ("agent", "admin"):
        return Check(
            name,
            False,
            f"user {user_id} ({user.get('name')}) is an {user.get('role')}, not an agent",
            "map the identity to the agent's own Zendesk user id",
        )
    kind = "browser client" if is_client(identity) else "phone"
    return Check(name, True, f"{user.get('name')} ({user_id}), {kind}")


async def availability_check(zendesk: ZendeskClient, settings: Settings) -> Check:
    """Read every agent's availability in Zendesk as routing will, and say what routing makes of it."""
    if not settings.zendesk_availability_seconds:
        return Check(
            AVAILABILITY, True, "not read (ZENDESK_AVAILABILITY_SECONDS=0): routing uses the bridge's presence"
        )
    statuses: dict[str, Chosen | None] = {}
    for identity, user_id in settings.agents.items():
        try:
            statuses[identity] = await read_status(zendesk, user_id)
        except AuthFailed as exc:
            return Check(
                AVAILABILITY,
                True,
                f"refused ({exc.status}): Zendesk shows it to admins only, so routing uses the bridge's own presence "
                "and an agent away in Zendesk may still be offered calls (an admin's token would let it read it)",
            )
        except NotFound as exc:
            if endpoint_missing(exc):
                return Check(
                    AVAILABILITY, True, "this account has no Agent Availability API: routing uses the bridge's presence"
                )
            statuses[identity] = None
        except ZendeskError as exc:
            return Check(
                AVAILABILITY,
                False,
                f"could not be read: {exc}",
                "check Zendesk's status; meanwhile routing uses the bridge's own presence",
            )
    said = ", ".join(f"{identity} {status or 'unknown'}" for identity, status in statuses.items())
    if all(status in ("away", "offline") for status in statuses.values()):
        return Check(
            AVAILABILITY,
            False,
            f"every agent is away or offline in Zendesk for Talk ({said}): no call would be offered now",
            "if your agents keep no status in Zendesk, set ZENDESK_AVAILABILITY_SECONDS=0; else have one go online",
        )
    every = pace(len(settings.agents), settings.zendesk_availability_seconds, settings.zendesk_rate_limit)
    return Check(AVAILABILITY, True, f"read every {every:g} s; for Talk now: {said} (away or offline get no calls)")
