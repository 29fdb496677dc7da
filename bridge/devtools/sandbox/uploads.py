"""Uploads: files stored by `POST /api/v2/uploads`, attached to a comment once by their token, then served."""

from __future__ import annotations

import copy
import random
from typing import Any

from bridge.devtools.sandbox.errors import not_found, record_invalid
from bridge.devtools.sandbox.state import State


class Uploads:
    """Apply the Attachments API operations (Zendesk docs: Attachments, "Upload Files") to the account's uploads."""

    def __init__(self, state: State) -> None:
        self._state = state

    def upload(self, filename: str, content_type: str, data: bytes, base_url: str) -> dict[str, Any]:
        """Store a file as `POST /api/v2/uploads` does and return its `upload` (token and attachment)."""
        uploads = self._state.uploads
        if not filename:
            raise record_invalid({"filename": "Filename: is required"})
        token = f"tok{len(uploads) + 1:04d}{random.Random(len(uploads)).getrandbits(40):010x}"
        attachment = {
            "id": 9000 + len(uploads) + 1,
            "file_name": filename,
            "content_type": content_type,
            "size": len(data),
            "content_url": f"{base_url}/attachments/token/{token}/?name={filename}",
        }
        uploads[token] = {"attachment": attachment, "data": data, "attached": False}
        return {"token": token, "attachment": copy.deepcopy(attachment), "attachments": [copy.deepcopy(attachment)]}

    def delete(self, token: str) -> None:
        """Delete an upload no comment uses yet, or raise 404."""
        upload = self._state.uploads.get(token)
        if upload is None or upload["attached"]:
            raise not_found()
        del self._state.uploads[token]

    def attachment(self, token: str) -> tuple[dict[str, Any], bytes]:
        """Return an attachment and its bytes by the token in its content_url."""
        upload = self._state.uploads.get(token)
        if upload is None:
            raise not_found()
        return upload["attachment"], upload["data"]

    def attach(self, tokens: Any, errors: dict[str, str]) -> list[dict[str, Any]]:
        """Resolve a comment's upload tokens; Zendesk refuses an unknown or already used one."""
        found = []
        for token in tokens if isinstance(tokens, list) else [tokens]:
            upload = self._state.uploads.get(token) if isinstance(token, str) else None
            if upload is None or upload["attached"]:
                errors["uploads"] = f"Uploads: {token!r} is not a valid upload token"
                continue
            found.append(upload)
        if "uploads" in errors:
            return []
        for upload in found:
            upload["attached"] = True
        return [copy.deepcopy(upload["attachment"]) for upload in found]
