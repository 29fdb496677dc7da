"""`bridge zendesk-app`: the zip passes the manifest rules Zendesk's app validator applies."""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bridge.cli import main
from bridge.softphone.zendesk_app import AppError, build

# The rules below follow zendesk/zendesk_apps_support (the gem behind `zcli apps:validate` and the upload
# check): lib/zendesk_apps_support/validations/manifest.rb, manifest/location_options.rb, manifest/parameter.rb.
PARAMETER_TYPES = {"text", "password", "checkbox", "url", "number", "multiline", "hidden", "oauth"}
LOCATION_OPTIONS = {"legacy", "autoLoad", "autoHide", "flexible", "signed", "url", "size"}
SUPPORT_LOCATIONS = {"top_bar", "nav_bar", "ticket_sidebar", "new_ticket_sidebar", "user_sidebar",
                     "organization_sidebar", "background", "modal", "ticket_editor"}  # fmt: skip
FRAMEWORK_VERSIONS = {"2.0"}
VALID_LOCALE = re.compile(r"^[a-z]{2,3}(-[a-z]{2,3})?$", re.IGNORECASE)


def validate(files: dict[str, bytes]) -> list[str]:
    """Return every rule the package breaks (empty: Zendesk accepts it)."""
    errors: list[str] = []
    if "manifest.json" not in files:
        return ["missing manifest.json at the root"]
    manifest: dict[str, Any] = json.loads(files["manifest.json"])
    for key in ("author", "defaultLocale", "frameworkVersion", "location"):
        if key not in manifest:
            errors.append(f"missing {key}")
    author = manifest.get("author") or {}
    errors += [f"author {field} must be a string" for field in ("name", "email", "url")
               if not isinstance(author.get(field), str | None)]  # fmt: skip
    if author.get("url") and urlsplit(author["url"]).scheme not in ("http", "https"):
        errors.append("author url is not a URL")
    for key in ("defaultLocale", "version", "frameworkVersion"):
        if not isinstance(manifest.get(key), str | None):
            errors.append(f"{key} must be a string")
    for key in ("private", "singleInstall", "signedUrls", "requirementsOnly", "marketingOnly"):
        if key in manifest and not isinstance(manifest[key], bool):
            errors.append(f"{key} must be a boolean")
    locale = manifest.get("defaultLocale", "")
    if not VALID_LOCALE.match(locale):
        errors.append(f"invalid defaultLocale {locale!r}")
    elif f"translations/{locale}.json" not in files:
        errors.append(f"missing translations/{locale}.json")
    if manifest.get("frameworkVersion") not in FRAMEWORK_VERSIONS:
        errors.append(f"frameworkVersion {manifest.get('frameworkVersion')!r} is not served")
    parameters = manifest.get("parameters", [])
    if not isinstance(parameters, list):
        errors.append("parameters must be an array")
    else:
        names = [p.get("name") for p in parameters]
        errors += [f"duplicate parameter {n}" for n in set(names) if names.count(n) > 1]
        for parameter in parameters:
            if parameter.get("type", "text") not in PARAMETER_TYPES:
                errors.append(f"parameter type {parameter.get('type')!r}")
            if parameter.get("name") == "name":
                errors.append("a parameter may not be called name")
            for flag in ("required", "secure"):
                if flag in parameter and not isinstance(parameter[flag], bool):
                    errors.append(f"parameters.{parameter.get('name')}.{flag} must be a boolean")
            if parameter.get("type") == "hidden" and parameter.get("required"):
                errors.append("a hidden parameter cannot be required")
    locations = manifest.get("location") or {}
    if not locations:
        errors.append("missing location")
    for host, places in locations.items():
        if host not in ("support", "chat", "sell"):
            errors.append(f"unknown host {host}")
            continue
        for name, options in places.items():
            if name not in SUPPORT_LOCATIONS:
                errors.append(f"unknown location {name}")
            options = {"url": options} if isinstance(options, str) else options
            errors += [f"{name}: unknown option {key}" for key in set(options) - LOCATION_OPTIONS]
            url = options.get("url")
            if isinstance(url, str) and url:
                parts = urlsplit(url)
                if parts.scheme:
                    if parts.scheme != "https" and parts.hostname != "localhost":
                        errors.append(f"{name}: {url} is not https")
                elif not (parts.path.startswith("assets/") and parts.path in files):
                    errors.append(f"{name}: {url} is not a file in assets/")
            elif options.get("autoLoad", True):
                errors.append(f"{name}: blank location url")
            if "flexible" in options and not isinstance(options["flexible"], bool):
                errors.append(f"{name}: flexible must be a boolean")
            if "signed" in options and not isinstance(options["signed"], bool):
                errors.append(f"{name}: signed must be a boolean")
            size = options.get("size")
            if size is not None and not all(
                re.fullmatch(r"\d+(px|%)", str(size.get(k, ""))) for k in ("width", "height")
            ):
                errors.append(f"{name}: size needs width and height in px or %")
    for bar in ("top_bar", "nav_bar"):  # Zendesk docs, "Styles and assets": each bar location has its icon
        if bar in locations.get("support", {}) and f"assets/icon_{bar}.svg" not in files:
            errors.append(f"a {bar} app needs assets/icon_{bar}.svg")
    for logo in ("assets/logo.png", "assets/logo-small.png"):
        if logo not in files:
            errors.append(f"missing {logo}")
    for name, data in files.items():
        if name.endswith(".svg") and re.search(rb"<script|javascript:|xlink:href=\"http|onload=", data, re.I):
            errors.append(f"{name}: scripts or external references are not allowed in SVGs")
        if name.startswith("translations/"):
            translation = json.loads(data)
            if not isinstance(translation.get("app", {}).get("name", ""), str):
                errors.append(f"{name}: app.name must be a string")
    return errors


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def png_size(data: bytes) -> tuple[int, int]:
    """Return a PNG's width and height, after checking its chunks' CRCs."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind_and_body = data[offset + 4 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind_and_body) == crc
        offset += 12 + length
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_zip_passes_zendesks_manifest_rules() -> None:
    """framework 2.0, a signed top bar of 320x500 at the bridge's page, a background location, icons, en.json."""
    files = unzip(build("https://bridge.example.com"))
    assert validate(files) == []
    manifest = json.loads(files["manifest.json"])
    top_bar = manifest["location"]["support"]["top_bar"]
    assert top_bar["url"] == "https://bridge.example.com/zendesk/softphone"
    assert top_bar["signed"] is True
    assert top_bar["size"] == {"width": "320px", "height": "500px"}
    assert manifest["location"]["support"]["background"]["url"] == "assets/background.html"
    # The supervisors' live view: the nav bar, signed the same way (docs/live-view.md).
    assert manifest["location"]["support"]["nav_bar"] == {"url": "https://bridge.example.com/zendesk/live",
                                                          "signed": True}  # fmt: skip
    assert b'viewBox="0 0 18 18"' in files["assets/icon_nav_bar.svg"]
    assert png_size(files["assets/logo.png"]) == (320, 320)  # Zendesk docs, "Styles and assets"
    assert png_size(files["assets/logo-small.png"]) == (128, 128)
    assert b'viewBox="0 0 18 18"' in files["assets/icon_top_bar.svg"]  # resized to 18x18 by Zendesk
    assert b"voice.dialout" in files["assets/background.js"]
    assert json.loads(files["translations/en.json"])["app"]["name"]


def test_the_validator_catches_what_zendesk_refuses() -> None:
    """The check is not vacuous: each broken rule is reported."""
    files = unzip(build("https://bridge.example.com"))
    manifest = json.loads(files["manifest.json"])
    manifest.pop("author")
    manifest["frameworkVersion"] = "1.0"
    manifest["parameters"] = [{"name": "name", "type": "colour"}, {"name": "x", "type": "hidden", "required": True}]
    top_bar = manifest["location"]["support"]["top_bar"]
    top_bar.update({"url": "http://bridge.example.com/zendesk/softphone", "signed": "yes", "colour": 1})
    manifest["location"]["support"]["background"]["url"] = "assets/missing.html"
    manifest["location"]["support"]["pager"] = {"url": "assets/background.html"}
    broken = {**files, "manifest.json": json.dumps(manifest).encode()}
    del broken["assets/icon_top_bar.svg"]
    errors = "\n".join(validate(broken))
    for expected in ("missing author", "frameworkVersion", "parameter type 'colour'", "called name",
                     "hidden parameter", "is not https", "signed must be a boolean", "unknown option colour",
                     "missing.html is not a file", "unknown location pager", "icon_top_bar.svg"):  # fmt: skip
        assert expected in errors, expected


def test_the_app_needs_an_https_public_url() -> None:
    """Zendesk loads only https locations, so an http PUBLIC_URL is refused, naming the fix."""
    with pytest.raises(AppError, match="https"):
        build("http://bridge.example.com")
    assert validate(unzip(build("https://localhost:8443"))) == []


def test_the_command_writes_the_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """`bridge zendesk-app --out FILE` writes the zip for PUBLIC_URL and says what to do next."""
    out = tmp_path / "phone.zip"
    monkeypatch.setenv("PUBLIC_URL", "https://bridge.example.com")
    assert main(["zendesk-app", "--out", str(out)]) == 0
    assert validate(unzip(out.read_bytes())) == []
    assert "ZENDESK_APP_ID" in capsys.readouterr().out
    monkeypatch.setenv("PUBLIC_URL", "http://bridge.example.com")
    assert main(["zendesk-app", "--out", str(out)]) == 2
    assert "must be https" in capsys.readouterr().err
