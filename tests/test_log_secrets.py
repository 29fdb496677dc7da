"""No secret in any log at any level: a real `bridge serve` at LOG_LEVEL=debug, a whole call, then its log read."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import sys
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bridge.devtools.replay import replay_files
from bridge.devtools.sandbox import SANDBOX, Sandbox, create_sandbox_app
from bridge.devtools.twilio_media import FakeTwilio, create_fake_twilio_apps
from tests.conftest import call_outcome, eventually, free_port, parent_sid, recording, serve_env, voice_comments
from tests.hostile_kit import raw_request
from webhooks.names import Route, route_path

TOKEN = "debug-log-auth-token-0123456789"
CALLER = "+14155550123"  # the caller's number in the recording: only its last four digits may show


async def test_a_call_at_debug_level_logs_no_secret_and_no_full_number(tmp_path: Path) -> None:
    """The link secret, the signatures, Twilio's and Zendesk's credentials and the caller's number stay out."""
    sandbox_app = create_sandbox_app()
    sandbox: Sandbox = sandbox_app[SANDBOX]
    twilio = FakeTwilio(TOKEN)
    api, media = create_fake_twilio_apps(twilio)
    database, log_file = tmp_path / "bridge.db", tmp_path / "serve.log"
    async with (
        TestServer(sandbox_app, host="127.0.0.1") as zendesk,
        TestServer(api, host="127.0.0.1") as twilio_api,
        TestServer(media, host="127.0.0.1") as twilio_media,
    ):
        twilio.media_base = str(twilio_media.make_url("")).rstrip("/")
        env = serve_env(str(zendesk.make_url("")), database, free_port(), TOKEN, LOG_LEVEL="debug",
                        LOG_FORMAT="text", TWILIO_API_URL=str(twilio_api.make_url("")).rstrip("/"))  # fmt: skip
        url = env["PUBLIC_URL"]
        with log_file.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bridge", "serve", "--host", "127.0.0.1", env=env, stderr=stderr
            )
        try:
            async with aiohttp.ClientSession() as session:

                async def healthy() -> bool:
                    try:
                        async with session.get(url + "/healthz") as response:
                            return response.status == 200
                    except aiohttp.ClientConnectionError:
                        return False

                await eventually(healthy)
                path = recording("inbound_answered")
                assert (await replay_files([path], base_url=url, auth_token=TOKEN, session=session)).ok

                def commented() -> bool:
                    tickets = call_outcome(sandbox.snapshot(), parent_sid(path))
                    return bool(tickets) and bool(voice_comments(tickets[0]))

                await eventually(commented)
                (ticket,) = call_outcome(sandbox.snapshot(), parent_sid(path))
                link = str(voice_comments(ticket)[0]["recording_url"])
                async with session.get(link) as response:  # the recording plays, fetched from Twilio with auth
                    assert response.status == 200
                    await response.read()
                async with session.get(link.replace("sig=", "sig=x")) as response:
                    assert response.status == 403
            # A client that goes away mid-body is a debug line: debug lines do reach this log.
            _, writer = await asyncio.open_connection("127.0.0.1", int(env["PORT"]))
            writer.write(raw_request("POST", route_path(Route.STATUS), {}).replace(b"Length: 0", b"Length: 9") + b"a")
            await writer.drain()
            writer.close()
            await eventually(lambda: b" DEBUG " in log_file.read_bytes())
        finally:
            process.terminate()
            await process.wait()
    log = log_file.read_text()
    with sqlite3.connect(database) as db:
        (secret,) = db.execute("SELECT value FROM secrets WHERE name = 'recording_links'").fetchone()
    signature = link.split("sig=", 1)[1]
    zendesk_auth = base64.b64encode(b"bridge@example.com/token:sandbox-token").decode()
    account = "AC455c03f9e322135d9c681cabb529d68e"  # the recording's account
    twilio_auth = base64.b64encode(f"{account}:{TOKEN}".encode()).decode()
    for needle in [secret, bytes.fromhex(secret).hex().upper(), signature, TOKEN, "sandbox-token", zendesk_auth,
                   twilio_auth, CALLER, CALLER[2:]]:  # fmt: skip
        assert needle not in log, needle
    assert "…0123" in log  # the caller's number appears masked to its last four digits
    assert " DEBUG bridge.rejected: POST /twilio/voice/status: the client went away mid-body" in log
