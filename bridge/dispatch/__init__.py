"""Routing at run time: the router bound to the settings, presence changes from outside calls, the queue's sweep.

The decisions themselves are pure (`bridge.core.routing`, `bridge.core.router`); the store takes them inside
its transactions. This package binds them to the settings and the clock, and keeps what time alone changes
(a wrap-up ends, an offer's hold runs out) from waiting for the next call to be noticed.
"""

from bridge.dispatch.desk import Desk, UnknownAgent
from bridge.dispatch.router import BoundRouter, Routes

__all__ = ["BoundRouter", "Desk", "Routes", "UnknownAgent"]
