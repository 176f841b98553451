"""The StreamGuard Faust worker: `main_worker` runs it, `build_worker` wires it for tests."""

from __future__ import annotations

from streamguard.worker.main import main_worker

__all__ = ("main_worker",)
