"""`bridge zendesk-app`: the private Zendesk app that puts the softphone in the top bar, as a zip to upload.

Zendesk docs, "Manifest reference" (framework 2.0): a `top_bar` location whose `url` is the bridge's page,
`signed: true` so Zendesk POSTs a JWT saying who the agent is, and a `background` location, always
running, that hands Zendesk's `voice.dialout` (click-to-call) to the top bar. A `nav_bar` location, signed
the same way, is the supervisors' live view (docs/live-view.md); Zendesk shows its icon to every agent, and
the bridge serves the page only to admins and SUPERVISOR_ROLES.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlsplit

from bridge.live.routes import PAGE_ROUTE as LIVE_ROUTE
from bridge.softphone.routes import PAGE_ROUTE

STATIC = Path(__file__).parent / "static"
APP_NAME = "Twilio Phone (bridge)"
TOP_BAR_SIZE = {"width": "320px", "height": "500px"}  # Zendesk's CTI guidelines: a console-sized popover
# A phone handset, one path, no script or external reference (the app validator rejects those in SVGs).
TOP_BAR_ICON = """<svg xmlns="http://www.w3.org/2000/svg" width="18" height="18" viewBox="0 0 18 18">
  <path fill="currentColor" d="M4.6 1.5 6.9 4a1 1 0 0 1 0 1.4L5.6 6.7a9.6 9.6 0 0 0 5.7 5.7l1.3-1.3a1 1 0 0 1 1.4 0l2.5
  2.3a1 1 0 0 1 0 1.4l-1.4 1.4c-.8.8-2 1-3 .6A16 16 0 0 1 1.2 5.9c-.4-1-.2-2.2.6-3l1.4-1.4a1 1 0 0 1 1.4 0z"/>
</svg>
"""

# Zendesk docs, "Styles and assets": a nav_bar location needs icon_nav_bar.svg. Bars of a chart, one path.
NAV_BAR_ICON = """<svg xmlns="http://www.w3.org/2000/svg" width="18" height="18" viewBox="0 0 18 18">
  <path fill="currentColor" d="M2 16h14v1.5H2zM3 9h3v6H3zm4.5-5h3v11h-3zM12 7h3v8h-3z"/>
</svg>
"""


class AppError(ValueError):
    """The app cannot be built as asked; the message says what to change."""


def manifest(public_url: str) -> dict[str, object]:
    """Return the app's manifest.json for a bridge at `public_url`."""
    return {
        "name": APP_NAME,
        "author": {
            "name": "twilio-zendesk-bridge",
            "email": "support@example.com",
            "url": public_url,
        },
        "defaultLocale": "en",
        "private": True,
        "location": {
            "support": {
                "top_bar": {"url": public_url + PAGE_ROUTE, "signed": True, "size": TOP_BAR_SIZE, "autoHide": False},
                "background": {"url": "assets/background.html"},
                "nav_bar": {"url": public_url + LIVE_ROUTE, "signed": True},
            }
        },
        "parameters": [],
        "version": "1.0.0",
        "frameworkVersion": "2.0",
    }


def translations() -> dict[str, object]:
    """Return translations/en.json: what the admin reads in Zendesk's app list."""
    return {
        "app": {
            "name": APP_NAME,
            "short_description": "A Twilio Voice phone in Zendesk's top bar",
            "long_description": "Answer and place Twilio calls in Zendesk. Calls become voice tickets through "
            "the twilio-zendesk-bridge; calls placed from a ticket are logged on it. Supervisors see the queue, "
            "the agents and the day's figures live in the navigation bar.",
            "installation_instructions": "Upload, install, then set ZENDESK_APP_ID and ZENDESK_APP_AUDIENCE on the "
            "bridge (bridge doctor prints the audience).",
        }
    }


def build(public_url: str) -> bytes:
    """Return the app's zip, ready to upload as a private app."""
    parts = urlsplit(public_url)
    # Zendesk loads only https locations (localhost excepted), and signs only what it loads.
    if parts.scheme != "https" and parts.hostname != "localhost":
        raise AppError(f"PUBLIC_URL {public_url!r} must be https:// for Zendesk to load the softphone")
    files = {
        "manifest.json": json.dumps(manifest(public_url), indent=2) + "\n",
        "translations/en.json": json.dumps(translations(), indent=2) + "\n",
        "assets/background.html": (STATIC / "background.html").read_text(),
        "assets/background.js": (STATIC / "background.js").read_text(),
        "assets/icon_top_bar.svg": TOP_BAR_ICON,
        "assets/icon_nav_bar.svg": NAV_BAR_ICON,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        # Zendesk docs, "Styles and assets": logo.png 320px and logo-small.png 128px square. Drawn here, so
        # that nothing binary is committed; the large one without transparency (Zendesk rounds its corners).
        archive.writestr("assets/logo.png", png_icon(320, background=(255, 255, 255, 255)))
        archive.writestr("assets/logo-small.png", png_icon(128))
    return buffer.getvalue()


def png_icon(size: int, background: tuple[int, int, int, int] = (0, 0, 0, 0)) -> bytes:
    """Draw the app's logo, a green disc, as an RGBA PNG of `size` pixels square."""
    rows = []
    centre, radius = (size - 1) / 2, size * 0.45
    disc, back = bytes((3, 129, 90, 255)), bytes(background)
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            row += disc if (x - centre) ** 2 + (y - centre) ** 2 <= radius**2 else back
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
