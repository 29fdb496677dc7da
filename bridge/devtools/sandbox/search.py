"""Search: the part of Zendesk's search syntax the bridge uses, over an index that lags writes."""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from bridge.devtools.sandbox.comments import Comments
from bridge.devtools.sandbox.state import State


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


class Search:
    """Answer `GET /api/v2/search` over the account's users and tickets."""

    def __init__(self, state: State, comments: Comments) -> None:
        self._state = state
        self._comments = comments

    def search(self, query: str) -> dict[str, Any]:
        """Run the subset of Zendesk search syntax the bridge uses: role:, phone:[*]digits, type:, external_id:."""
        role: str | None = None
        phone: str | None = None
        external_id: str | None = None
        suffix_match = False
        kind = "user"
        terms: list[str] = []
        for token in query.split():
            key, sep, value = token.partition(":")
            key = key.lower()
            if sep and key == "role":
                role = value
            elif sep and key == "phone":
                # A leading * makes Zendesk match every stored format that ends with these digits.
                suffix_match = value.startswith("*")
                phone = _digits(value)
            elif sep and key == "type":
                kind = value.lower()
            elif sep and key == "external_id":
                external_id = value
            else:
                terms.append(token.lower())

        def phone_matches(user: dict[str, Any]) -> bool:
            assert phone is not None
            for stored in [user["phone"] or "", *self._state.identities.get(user["id"], [])]:
                number = _digits(stored)
                if number and (number.endswith(phone) if suffix_match else number == phone):
                    return True
            return False

        def matches(user: dict[str, Any]) -> bool:
            if role is not None and user["role"] != role:
                return False
            if phone is not None and not phone_matches(user):
                return False
            if external_id is not None and user.get("external_id") != external_id:
                return False
            text = f"{user['name']} {user['email'] or ''}".lower()
            return all(term in text for term in terms)

        # Zendesk's search index lags behind writes: new records stay unsearchable for the delay.
        horizon = time.time() - self._state.config.search_index_delay
        users, tickets = self._state.users, self._state.tickets
        results: list[dict[str, Any]] = []
        if kind == "user":
            indexed = [uid for uid in sorted(users) if self._state.user_created.get(uid, 0.0) <= horizon]
            hits = [users[uid] for uid in indexed if matches(users[uid])]
            hits.sort(key=lambda user: user["updated_at"], reverse=True)  # stable: ties stay in id order
            results = [{**copy.deepcopy(user), "result_type": "user"} for user in hits]
        elif kind == "ticket":
            for tid in sorted(tickets):
                ticket = tickets[tid]
                if self._state.ticket_created.get(tid, 0.0) > horizon:
                    continue
                if external_id is None or ticket["external_id"] == external_id:
                    results.append({**self._comments.public_ticket(ticket), "result_type": "ticket"})
        return {"results": results, "count": len(results), "next_page": None}
