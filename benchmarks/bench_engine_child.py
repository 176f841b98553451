"""One child run of `bench_engine.py --baseline-src`: decide the traffic written by the parent
with whatever `streamguard` the child's PYTHONPATH finds (this tree's or another commit's), so
it imports nothing of this tree but the engine's oldest public names. Not run by hand.

Prints one JSON line: the bare orjson loop's lines/s and the engine's decisions/s, once each, in
CPU time (the machine may be shared: CPU time is what another process takes least of).
"""

from __future__ import annotations

import gc
import io
import json
import sys
import time
from pathlib import Path

import orjson

import streamguard
from streamguard.core.engine import decide_read, decide_search
from streamguard.core.models import Agency, OwnerSettings
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes

NOW = 1_740_830_400.0 + 2_000.0  # bench_engine.NOW


def main(path: Path) -> None:
    data = orjson.loads(path.read_bytes())
    agencies = [Agency(*row) for row in data["agencies"]]
    settings = {
        owner: OwnerSettings(
            **{k: frozenset(v) if isinstance(v, list) else v for k, v in fields.items()}
        )
        for owner, fields in data["settings"].items()
    }
    raw = [line.encode() for line in data["lines"]]
    parsed = [orjson.loads(line) for line in raw]
    statutes = load_statutes()
    gc.freeze()

    start = time.process_time()
    out = io.BytesIO()
    for line in raw:
        out.write(orjson.dumps(orjson.loads(line)) + b"\n")
    t_bare = time.process_time() - start

    # A fresh snapshot, so the verdict cache starts cold as in a real run.
    state = PolicyState.create(statutes, agencies, settings)
    start = time.process_time()
    for body in parsed:
        if body["type"] == "search_request":
            decide_search(body, state, NOW)
        else:
            decide_read(body, state, NOW)
    t_engine = time.process_time() - start
    figures = {"bare": len(raw) / t_bare, "engine": len(parsed) / t_engine}
    print(json.dumps({**figures, "streamguard": streamguard.__file__}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
