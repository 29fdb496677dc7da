"""Emulate, over real HTTP, the Zendesk Support and Talk Partner Edition endpoints the bridge calls.

Where the sandbox and real Zendesk could differ, it models the stricter one. Every behaviour it models, with
its source, is listed in BEHAVIOURS.md beside this file, which also says where a new resource goes.

One module a job: `config` (SandboxConfig) and `seed` (the account as it starts); `state` (the records every
store shares); a store per resource: `users`, `search`, `tickets`, `comments`, `uploads`, `calls`,
`availability`; `access` (credentials, roles, rate limits) and `faults` (FaultRule, what each fault does on
the wire); `account` (Sandbox: the stores wired together, and the Python API tests use); `routes` (one
handler per endpoint) and `server` (the middleware, the /sandbox control endpoints, create_sandbox_app).
"""

from bridge.devtools.sandbox.account import SANDBOX, Sandbox
from bridge.devtools.sandbox.calls import CALL_RESPONSE_KEYS
from bridge.devtools.sandbox.config import SandboxConfig, installation_id
from bridge.devtools.sandbox.errors import SandboxError
from bridge.devtools.sandbox.faults import FAULT_KINDS, FaultRule
from bridge.devtools.sandbox.seed import INTEGRATION_USER_ID
from bridge.devtools.sandbox.server import create_sandbox_app
from bridge.devtools.sandbox.tickets import CLOSED_TEXT, MAX_COMMENTS

__all__ = [
    "CALL_RESPONSE_KEYS",
    "CLOSED_TEXT",
    "FAULT_KINDS",
    "INTEGRATION_USER_ID",
    "MAX_COMMENTS",
    "SANDBOX",
    "FaultRule",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "create_sandbox_app",
    "installation_id",
]
