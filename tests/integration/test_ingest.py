"""Camera posts through `streamguard ingest serve` to a real broker, decided by a real worker:
one body of each vendor format ends as a worker decision on `reads.shared` (and its partial
copy on quarantine); a retried post is decided under the same decision_id; a body that cannot be
mapped is quarantined by ingest itself; unauthenticated posts write nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from streamguard import serde
from streamguard.local.testing import (
    Collected,
    TestKeys,
    WorkerProcess,
    agency_ids,
    collect,
    contract_topics,
    create_topics,
    policy_change,
    produce,
    run,
    worker_env,
)
from tests.unit.ingest import samples

AGENCIES = """agency_id,name,state,kind
ca-ventura-county-so,Ventura County Sheriff's Office,CA,county
ca-oxnard-pd,Oxnard Police Department,CA,local
tx-houston-pd,Houston Police Department,TX,local
"""
# One Ed25519 key per agency (and the registry's), derived from a seed.
KEYS = TestKeys(b"integration-ingest-secret-1", agency_ids(AGENCIES))
INGEST_PORT = 6450
INGEST_METRICS_PORT = 6451
WORKER_WEB_PORT = 6452
TIMEOUT = 90.0
SHARE_TO = ["ca-oxnard-pd", "tx-houston-pd"]


class Stack:
    """The module's broker prefix, worker and ingest process."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix

    def wait(self, names: list[str], until: Any) -> Collected:
        got = run(
            collect(
                self.bootstrap,
                [self.prefix + n for n in names],
                lambda c: until({k.removeprefix(self.prefix): v for k, v in c.items()}),
                TIMEOUT,
            )
        )
        return {k.removeprefix(self.prefix): v for k, v in got.items()}


def post(name: str, body: Any, token: str | None = samples.TOKEN) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else serde.dumps(body)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{INGEST_PORT}/v1/reads/{name}", data=data, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            text: str = reply.read().decode()
            return text
    except OSError:
        return None


def _by(records: list[tuple[bytes | None, Any]], field: str, value: str) -> list[Any]:
    return [v for _, v in records if isinstance(v, dict) and v.get(field) == value]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("ingest")
    (base / "agencies.csv").write_text(AGENCIES, encoding="utf-8")
    (base / "keys.json").write_text(json.dumps(KEYS.keys_json()), encoding="utf-8")
    owners = samples.write_owners_file(base / "owners.json")
    data = json.loads(owners.read_text(encoding="utf-8"))
    data[samples.OWNER_ID]["share_to"] = SHARE_TO
    owners.write_text(json.dumps(data), encoding="utf-8")
    prefix = f"sgi{uuid.uuid4().hex[:8]}."
    run(create_topics(kafka_bootstrap, contract_topics(prefix), 2))
    worker = WorkerProcess(
        worker_env(
            kafka_bootstrap,
            prefix,
            base / "data",
            agencies=base / "agencies.csv",
            keys=base / "keys.json",
            web_port=WORKER_WEB_PORT,
        ),
        base / "worker.log",
    )
    ingest_env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMGUARD_")} | {
        "STREAMGUARD_BROKER": f"kafka://{kafka_bootstrap}",
        "STREAMGUARD_TOPIC_PREFIX": prefix,
        "STREAMGUARD_INGEST_OWNERS": str(owners),
        "STREAMGUARD_INGEST_PORT": str(INGEST_PORT),
        "STREAMGUARD_INGEST_METRICS_BIND": "127.0.0.1",
        "STREAMGUARD_INGEST_METRICS_PORT": str(INGEST_METRICS_PORT),
        "STREAMGUARD_INGEST_LOG_LEVEL": "warning",
    }
    log = (base / "ingest.log").open("ab")
    ingest = subprocess.Popen(
        [sys.executable, "-m", "streamguard", "ingest", "serve"],
        env=ingest_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    worker.start()
    stack = Stack(kafka_bootstrap, prefix)
    try:
        # The owner shares with Oxnard (signed); Houston is out of state and stays denied.
        change = policy_change(samples.OWNER_ID, "share_with", ["ca-oxnard-pd"], keys=KEYS)
        run(produce(kafka_bootstrap, prefix + "policy", [(samples.OWNER_ID, change)]))
        got = stack.wait(
            ["audit"], lambda c: bool(_by(c["audit"], "event_id", change["change_id"]))
        )
        [applied] = _by(got["audit"], "event_id", change["change_id"])
        assert applied["outcome"] == "applied", worker.log_text()[-3000:]
        deadline = time.monotonic() + 60
        while _get(INGEST_METRICS_PORT, "/healthz") is None and time.monotonic() < deadline:
            assert ingest.poll() is None, (base / "ingest.log").read_text()[-3000:]
            time.sleep(0.2)
        assert _get(INGEST_METRICS_PORT, "/healthz") is not None, "ingest did not start"
        yield stack
    finally:
        ingest.terminate()
        code = ingest.wait(30)
        assert code == 0, (base / "ingest.log").read_text()[-3000:]
        assert worker.stop() == 0, worker.log_text()[-3000:]


BODIES = {
    "openalpr": (samples.openalpr_group, samples.OPENALPR_READ),
    "axis": (samples.axis_event, samples.AXIS_READ),
    "genetec": (samples.genetec_visits, samples.GENETEC_READ),
}


def test_one_post_of_each_format_is_decided_by_the_worker(stack: Stack) -> None:
    """Oxnard receives each read; Houston is denied (not shared, out of state), so the worker
    also quarantines the partial decision. A retried post is the same decision."""
    read_ids = {}
    for name, (body, golden) in BODIES.items():
        status, answer = post(name, body())
        assert (status, answer) == (202, {"accepted": 1, "read_ids": [golden["read_id"]]})
        read_ids[name] = golden["read_id"]
    assert post("axis", samples.axis_event())[0] == 202  # the camera retries

    def decided(c: Collected) -> bool:
        shared = c["reads.shared"]
        return all(_by(shared, "read_id", i) for i in read_ids.values()) and (
            len(_by(shared, "read_id", read_ids["axis"])) == 2
        )

    got = stack.wait(["reads", "reads.shared", "quarantine"], decided)
    for name, read_id in read_ids.items():
        [sent, *_] = _by(got["reads"], "read_id", read_id)
        expected = {**BODIES[name][1], "share_to": SHARE_TO}
        assert sent == expected
        decisions = _by(got["reads.shared"], "read_id", read_id)
        assert decisions, f"{name}: no decision"
        out = decisions[0]
        assert out["recipients"] == ["ca-oxnard-pd"]
        [denied] = out["denied_recipients"]
        assert denied["agency_id"] == "tx-houston-pd"
        assert {"NOT_SHARED", "OUT_OF_STATE_RECIPIENT"} <= set(denied["codes"])
        assert (out["source_format"], out["images_dropped"]) == (name, expected["images_dropped"])
        assert _by(got["quarantine"], "event_id", read_id), f"{name}: partial not quarantined"
    keys = {
        k for k, v in got["reads"] if isinstance(v, dict) and v.get("read_id") in read_ids.values()
    }
    assert keys == {samples.OWNER_ID.encode()}
    retried = _by(got["reads.shared"], "read_id", read_ids["axis"])
    assert len({d["decision_id"] for d in retried}) == 1


def test_an_unmappable_body_is_quarantined_by_ingest_and_strangers_write_nothing(
    stack: Stack,
) -> None:
    marker = f"cam-{uuid.uuid4().hex[:8]}"
    # Refused posts first: anything they wrote would be acknowledged before their answer, so on
    # the topics before the quarantine record that is waited for below.
    stranger = samples.openalpr_group(best_uuid=f"{marker}-stranger")
    assert post("openalpr", stranger, token="wrong-token")[0] == 401
    assert post("openalpr", stranger, token=None)[0] == 401
    bad = samples.openalpr_group(best_uuid=marker, best_plate_number="8AB*123")
    status, answer = post("openalpr", bad)
    assert status == 422 and answer["error"] == "SCHEMA_INVALID"

    got = stack.wait(
        ["reads", "quarantine"],
        lambda c: bool(_by(c["quarantine"], "event_id", answer["quarantine_id"])),
    )
    [record] = _by(got["quarantine"], "event_id", answer["quarantine_id"])
    assert (record["kind"], record["source_format"], record["owner"]) == (
        "raw",
        "openalpr",
        samples.OWNER_ID,
    )
    assert record["reasons"][0]["code"] == "SCHEMA_INVALID"
    assert record["original"]["best_uuid"] == marker
    assert record["original"]["vehicle_crop_jpeg"] == "[image dropped]"
    assert f"{marker}-stranger" not in json.dumps([v for _, v in got["reads"] + got["quarantine"]])
    page = _get(INGEST_METRICS_PORT, "/metrics") or ""
    assert 'streamguard_ingest_auth_failures_total{reason="invalid"} 1.0' in page
    assert 'streamguard_ingest_auth_failures_total{reason="missing"} 1.0' in page
    assert "8AB*123" not in page
