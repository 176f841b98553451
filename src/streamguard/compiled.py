"""Which build is running: the pure-Python reference or the opt-in mypyc build (docs/compiled.md).

`COMPILED_MODULES` is the one list of modules the compiled build compiles (read by
`scripts/build_compiled.py`); `build_label()` says, for `streamguard --version`, which of them
the running interpreter imports as extension modules. Nothing here imports those modules.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from typing import Final

__all__ = ("COMPILED_MODULES", "build_label", "compiled_modules")

# The per-event path: the engine and what it decides with, the batch processor and its parts.
# Modules that talk to Kafka, faust, files or the network stay pure: compiling them buys
# nothing per event and would only make them harder to patch (docs/faust-fixes.md).
COMPILED_MODULES: Final = (
    "streamguard.core.classifier",
    "streamguard.core.codes",
    "streamguard.core.control",
    "streamguard.core.engine",
    "streamguard.core.models",
    "streamguard.core.policy",
    "streamguard.core.replay",
    "streamguard.core.textnorm",
    "streamguard.core.timeutil",
    "streamguard.core.verdicts",
    "streamguard.core.wordfold",
    "streamguard.serde",
    "streamguard.stream.alerts",
    "streamguard.stream.attempts",
    "streamguard.stream.audit",
    "streamguard.stream.counters",
    "streamguard.stream.evaluate",
    "streamguard.stream.gauges",
    "streamguard.stream.intake",
    "streamguard.stream.outputs",
    "streamguard.stream.processor",
    "streamguard.stream.revisions",
    "streamguard.stream.tables",
    "streamguard.stream.windows",
    "streamguard.trail.chain",
    # Not per event, but it subclasses BatchProcessor, and an interpreted class cannot inherit
    # from a compiled one.
    "streamguard.worker.purges",
)


def compiled_modules() -> tuple[str, ...]:
    """The modules of `COMPILED_MODULES` that would be imported from an extension module."""
    found: list[str] = []
    for name in COMPILED_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            found.append(name)
    return tuple(found)


def build_label() -> str:
    """`pure Python`, or `compiled (mypyc, N of M modules)`."""
    count = len(compiled_modules())
    if count == 0:
        return "pure Python"
    return f"compiled (mypyc, {count} of {len(COMPILED_MODULES)} modules)"
