"""The account as it starts: its users and their phones, groups, brands, and the facts of the account itself."""

from __future__ import annotations

from typing import Any

INTEGRATION_USER_ID = 1000  # the token's user
SEED_TIMESTAMP = "2024-01-01T00:00:00Z"
SANDBOX_ACCOUNT_ID = 850001
APP_NAME = "Bridge softphone"  # what `data.app_name` shows for an installed app (cassette: "3CX calls")
GROUPS = {5001: "Support", 5002: "Phones"}  # id -> name; the records are seed_groups()'s
BRANDS = {6001: "Acme", 6002: "Acme Outlet"}  # id -> name; the records are seed_brands()'s


def _user(uid: int, name: str, mail: str | None, phone: str | None, role: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": uid,
        "name": name,
        "email": mail,
        "phone": phone,
        "shared_phone_number": extra.get("shared", False),
        "role": role,
        "custom_role_id": extra.get("custom_role_id"),  # Zendesk docs, Users JSON format: null without one
        "suspended": extra.get("suspended", False),
        "external_id": None,
        # Zendesk docs: Users, "organization_id" (the user's default organization) and "tags" (user tags).
        "organization_id": extra.get("organization_id"),
        "tags": list(extra.get("tags", [])),
        "created_at": SEED_TIMESTAMP,
        "updated_at": extra.get("updated_at", SEED_TIMESTAMP),
    }


def seed_users(email: str, token_role: str) -> dict[int, dict[str, Any]]:
    """Return the seed users by id: the token's user, agents, and callers whose phones come in every format."""
    users = [
        _user(INTEGRATION_USER_ID, "Bridge Integration", email, None, token_role),
        _user(1001, "Alice Agent", "alice@example.com", None, "agent"),
        _user(1002, "Bob Agent", "bob@example.com", None, "agent"),
        _user(1003, "Carol Agent", "carol@example.com", "+16505550111", "agent"),
        _user(1004, "Sam Suspended", "sam@example.com", None, "agent", suspended=True),
        _user(2001, "Dana Customer", "dana@example.net", "+14155550123", "end-user"),
        _user(2002, "Erin Customer", "erin@example.net", "+14155550199", "end-user"),
        # Real profiles hold numbers in every format (national, dashed, digits only).
        _user(2003, "Frank National", "frank@example.net", "(503) 555-0147", "end-user"),
        _user(2004, "Gwen Dashes", "gwen@example.net", "+1 503-555-0148", "end-user"),
        _user(2005, "Hal Digits", "hal@example.net", "5035550149", "end-user"),
        # Only an extra phone identity holds this number; the primary phone is another one.
        _user(2006, "Iris Identity", "iris@example.net", "+1 503 555 0190", "end-user"),
        # A shared office line (shared_phone_number) and a person whose direct line is the same number.
        _user(2007, "Front Desk", "desk@example.net", "503-555-0170", "end-user", shared=True),
        _user(2008, "Jack Direct", "jack@example.net", "(503) 555-0170", "end-user", updated_at="2023-06-01T00:00:00Z"),
        # Two people on one shared number, nobody with it as a direct line.
        _user(2009, "Kim Shared", "kim@example.net", "+1 (503) 555-0180", "end-user", shared=True),
        _user(2010, "Lee Shared", "lee@example.net", "5035550180", "end-user", shared=True),
        # A foreign number whose digits end with a US caller's ten digits: a suffix match, not the same number.
        _user(2011, "Mia Abroad", "mia@example.net", "+44 15035550147", "end-user"),
        _user(2012, "Ned Suspended", "ned@example.net", "+1 503-555-0199", "end-user", suspended=True),
    ]
    return {user["id"]: user for user in users}


def seed_identities() -> dict[int, list[str]]:
    """Return the extra phone identities by user id (beyond each user's primary phone)."""
    return {2006: ["(503) 555-0160"]}


def seed_groups() -> dict[int, dict[str, Any]]:
    """Return the groups by id, as Zendesk's Groups API shows them (Zendesk docs: Groups, JSON format)."""
    return {
        group_id: {
            "id": group_id,
            "name": name,
            "description": "",
            "default": group_id == min(GROUPS),
            "deleted": False,
            "is_public": True,
            "created_at": SEED_TIMESTAMP,
            "updated_at": SEED_TIMESTAMP,
        }
        for group_id, name in GROUPS.items()
    }


def seed_brands() -> dict[int, dict[str, Any]]:
    """Return the brands by id, as Zendesk's Brands API shows them (Zendesk docs: Brands, JSON format)."""
    brands = {}
    for brand_id, name in BRANDS.items():
        subdomain = name.lower().replace(" ", "")
        brands[brand_id] = {
            "id": brand_id,
            "name": name,
            "active": True,
            "default": brand_id == min(BRANDS),
            "subdomain": subdomain,
            "brand_url": f"https://{subdomain}.zendesk.com",
            "host_mapping": f"support.{subdomain}.example.com",  # "Only admins view this property"
            "has_help_center": False,
            "help_center_state": "disabled",
            "is_deleted": False,
            "ticket_form_ids": [],
            "created_at": SEED_TIMESTAMP,
            "updated_at": SEED_TIMESTAMP,
        }
    return brands


# A schedule as Admin Center makes one: Monday to Friday, 9 to 5 in Chicago (Zendesk's time zone name for it), and
# its holidays. Zendesk docs, Schedules: intervals count minutes from Sunday midnight (Monday 9:00 is 1980).
SCHEDULE_ID = 7001
WEEKDAYS_9_TO_5 = [(1440 * day + 540, 1440 * day + 1020) for day in range(1, 6)]


def seed_schedules() -> dict[int, dict[str, Any]]:
    """Return the schedules by id, as the Business Hours API shows them (Zendesk docs, Schedules, JSON format)."""
    return {
        SCHEDULE_ID: {
            "id": SCHEDULE_ID,
            "name": "North America",
            "time_zone": "Central Time (US & Canada)",
            "intervals": [{"start_time": start, "end_time": end} for start, end in WEEKDAYS_9_TO_5],
            "created_at": SEED_TIMESTAMP,
            "updated_at": SEED_TIMESTAMP,
        }
    }


def seed_holidays() -> dict[int, list[dict[str, Any]]]:
    """Return each schedule's holidays (Zendesk docs, Schedules, Holidays: single days or several)."""
    return {
        SCHEDULE_ID: [
            {"id": 8001, "name": "Christmas", "start_date": "2026-12-25", "end_date": "2026-12-25"},
            {"id": 8002, "name": "New Year", "start_date": "2026-12-31", "end_date": "2027-01-01"},
        ]
    }
