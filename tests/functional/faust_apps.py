"""A worker faust app for tests of the faust fixes: built in the running loop, never started."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import faust

from streamguard.worker.faust_fixes import create_app

# Every app built here stays referenced for the whole session: collecting a faust app whose
# consumer was built but never started raises inside its finalizers (KeyError on a cached
# property, then a recursion), which on CPython 3.11.7 leaves the interpreter's recursion
# count off and makes a later `ast.parse` fail with SystemError.
_KEEP: list[Any] = []


def unstarted_app(prefix: str, **options: Any) -> faust.App:
    """`create_app` bound to the running loop (its events and waits bind to it); nothing
    connects until something is started. `options`: more faust settings."""
    app = create_app(
        f"{prefix}-{uuid.uuid4().hex[:8]}",
        broker="kafka://localhost:1",
        loop=asyncio.get_running_loop(),
        **options,
    )
    _KEEP.append(app)
    return app
