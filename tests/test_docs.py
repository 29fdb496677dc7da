"""The documentation stands alone: its links resolve, it cites nothing outside the repository, and it
documents every route and command the code has."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bridge.app import create_app
from bridge.cli import build_parser
from bridge.ops.settings import Settings

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "tests" / "recordings" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Split so that this file does not cite them itself.
OUTSIDE = ("DESIGN" + ".md", "../" + "shared", "shared/" + "reference", "reference" + "/")


def slug(heading: str) -> str:
    """Return the anchor a Markdown heading gets (lowercase; punctuation but `-` and `_` dropped; spaces to `-`)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Return the anchors of a page's headings."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


def test_every_link_between_pages_resolves() -> None:
    """Each relative link names a file of the repository, and a heading of it when it has a #fragment."""
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.relative_to(ROOT)} links to a missing {target}"
            if fragment:
                assert fragment in anchors(linked), f"{page.relative_to(ROOT)} links to a missing heading {target}"


def test_nothing_cites_a_file_outside_the_repository() -> None:
    """A clone must be able to follow every pointer: no page, example or comment cites a file it does not hold."""
    files = [*PAGES, ROOT / ".env.example", ROOT / "fly.toml", ROOT / "app.json"]
    for folder in ("bridge", "webhooks", "schemas", "tests", "bench"):
        files += [path for path in (ROOT / folder).rglob("*") if path.suffix in (".py", ".md", ".js", ".html")]
    for path in files:
        if path == Path(__file__):
            continue
        text = path.read_text()
        for outside in OUTSIDE:
            assert outside not in text, f"{path.relative_to(ROOT)} cites {outside}"


def test_every_route_is_documented() -> None:
    """docs/twilio.md lists every path the bridge serves (a {name} in a path stands for any text)."""
    page = (ROOT / "docs" / "twilio.md").read_text()
    settings = Settings(zendesk_url="http://zendesk.invalid", zendesk_email="e", **secrets())
    paths = {route.resource.canonical for route in create_app(settings).router.routes() if route.resource}
    for path in paths:
        pattern = re.sub(r"\\\{\w+\\\}", r"[^\\s`]*", re.escape(path))
        assert re.search(rf"`(GET |POST )?{pattern}[`?]", page), path


def secrets() -> dict[str, str]:
    """Return placeholder credentials the app needs to be built."""
    return {"twilio_auth_token": "t", "zendesk_api_token": "t"}


def test_every_command_and_option_is_documented() -> None:
    """docs/commands.md names every `bridge` command and each of its options."""
    page = (ROOT / "docs" / "commands.md").read_text()
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        assert f"bridge {name}" in page, name
        subparsers = [command]
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                subparsers += action.choices.values()
                assert all(sub in page for sub in action.choices), (name, list(action.choices))
        for sub in subparsers:
            for action in sub._actions:
                for option in action.option_strings:
                    assert option in ("-h", "--help") or option in page, f"bridge {name} {option}"
