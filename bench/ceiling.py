"""The ceiling: a bare aiohttp app answering 204 on the status route, nothing else."""

from __future__ import annotations

import sys

from aiohttp import web


async def status(request: web.Request) -> web.Response:
    """Read the body (as the bridge must) and answer 204."""
    await request.read()
    return web.Response(status=204)


def main() -> None:
    """Serve on the port given as the only argument."""
    app = web.Application()
    app.router.add_post("/twilio/voice/status", status)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
