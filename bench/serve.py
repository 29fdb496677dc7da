"""The bridge as `bridge serve` runs it, plus one bench route to change an agent's status, on a shared port.

    python -m bench.serve --port P

Settings come from the environment, as for `bridge serve`. Two differences, both for the routing benchmarks:

- `POST /bench/agents/{identity}` with `status=available|away|offline` calls the bridge's own `Desk.choose`,
  what `bridge agents set` and the softphone call: the agent's row changes and the queue is matched again in
  one transaction, and the moves it decides wake this instance's mover. (`bridge agents set` runs in a
  process of its own with no mover, so its moves would wait for an instance's next poll.)
- The socket is bound with SO_REUSEPORT, so two instances can share one port: the kernel spreads connections
  between them as a load balancer in front of several instances would, and both keep one PUBLIC_URL.
"""

from __future__ import annotations

import argparse

from aiohttp import web

from bridge.app import create_app
from bridge.appkeys import DESK
from bridge.ops import logs
from bridge.ops.settings import load_settings


async def choose(request: web.Request) -> web.Response:
    """Set an agent's chosen status through the Desk, as an agent's click or a supervisor would."""
    form = await request.post()
    await request.app[DESK].choose(request.match_info["identity"], str(form["status"]), by="bench")
    return web.Response(status=204)


def main() -> None:
    """Serve the bridge with the bench route until terminated."""
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings(env_file=None)
    logs.configure(settings.log_level, settings.log_format)
    app = create_app(settings)
    app.router.add_post("/bench/agents/{identity}", choose)
    web.run_app(app, host=args.host, port=args.port, reuse_port=True, shutdown_timeout=3.0, print=None)


if __name__ == "__main__":
    main()
