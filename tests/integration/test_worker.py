"""The worker against a real Kafka broker: every contract topic and outcome, the Ventura flip,
windowed alerts, registry upserts and malformed input. One worker subprocess per module.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamguard.local.testing import (
    Collected,
    Deployment,
    TestRegistry,
    WorkerProcess,
    agency_record,
    plate_read,
    policy_change,
    scrape,
    search_request,
    worker_env,
)
from tests.helpers import by_field

REGISTRY = TestRegistry(
    b"integration-secret-1",
    [
        "ca-ventura-county-so",
        "ca-oxnard-pd",
        "ca-simi-valley-pd",
        "tx-houston-pd",
        "tx-dallas-pd",
        "us-ice-ero",
    ],
)
KEYS = REGISTRY.keys
WEB_PORT = 6121
TIMEOUT = 90.0


@pytest.fixture(scope="module")
def deployment(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A worker with low alert thresholds on a fresh topic prefix."""
    base = tmp_path_factory.mktemp("worker")
    deployment = Deployment.create(kafka_bootstrap, base, tag="sgw", registry=REGISTRY)
    process = deployment.add_worker(
        WEB_PORT,
        rate_limit_per_minute="3",
        alert_immigration_per_hour="1",
        alert_out_of_state_per_hour="2",
        alert_denied_networks_per_hour="1000",
    )
    probe = search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"], ts="2026-01-10T09:00:00Z")
    deployment.send("searches", [("ca-oxnard-pd", probe)])
    got = deployment.collect(["audit"], lambda c: bool(_audit_for(c, probe["search_id"])), TIMEOUT)
    assert _audit_for(got, probe["search_id"]), process.log_text()[-3000:]
    try:
        yield deployment
    finally:
        code = process.stop()
        assert code == 0, process.log_text()[-3000:]


def _audit_for(got: Collected, event_id: str) -> list[Any]:
    return by_field(got["audit"], "event_id", event_id)


def test_search_outcomes_reach_their_topics(deployment: Deployment) -> None:
    """Approved → approved topic; partial → both; denied → quarantine only; all audited."""
    minute = "2026-01-10T10:01:00Z"
    approved = search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"], ts=minute)
    partial = search_request(
        "ca-oxnard-pd", networks=["ca-oxnard-pd", "ca-ventura-county-so"], ts=minute
    )
    denied = search_request("tx-dallas-pd", networks=["ca-ventura-county-so"], ts=minute)
    deployment.send(
        "searches", [(s["requester"]["agency_id"], s) for s in (approved, partial, denied)]
    )
    ids = [approved["search_id"], partial["search_id"], denied["search_id"]]
    got = deployment.collect(
        ["searches.approved", "quarantine", "audit"],
        lambda c: all(_audit_for(c, i) for i in ids),
        TIMEOUT,
    )

    [out] = by_field(got["searches.approved"], "search_id", approved["search_id"])
    assert out["allowed_networks"] == ["ca-oxnard-pd"]
    assert out["denied_networks"] == []
    assert {"decision_id", "decided_at", "policy_version"} <= out.keys()
    assert by_field(got["quarantine"], "event_id", approved["search_id"]) == []

    [out] = by_field(got["searches.approved"], "search_id", partial["search_id"])
    assert out["allowed_networks"] == ["ca-oxnard-pd"]
    assert out["denied_networks"] == [
        {"agency_id": "ca-ventura-county-so", "codes": ["NOT_SHARED"]}
    ]
    [q] = by_field(got["quarantine"], "event_id", partial["search_id"])
    assert q["kind"] == "search_request"
    assert q["original"] == partial
    assert q["decision_id"] == out["decision_id"]

    assert by_field(got["searches.approved"], "search_id", denied["search_id"]) == []
    [q] = by_field(got["quarantine"], "event_id", denied["search_id"])
    codes = {r["code"] for r in q["reasons"]}
    assert {"NOT_SHARED", "OUT_OF_STATE_RECIPIENT"} <= codes
    assert [key for key, v in got["quarantine"] if v == q] == [denied["search_id"].encode()]

    outcomes = {i: _audit_for(got, i)[0]["outcome"] for i in ids}
    assert outcomes == dict(zip(ids, ["approved", "partial", "denied"], strict=True))
    audit_text = json.dumps([v for _, v in got["audit"]])
    assert "8ABC123" not in audit_text  # plates only as salted hashes


def test_signed_change_applies_and_reads_follow_it(deployment: Deployment) -> None:
    """A signed share_with is applied; reads are then shared, partial or denied accordingly."""
    change = policy_change("ca-simi-valley-pd", "share_with", ["ca-oxnard-pd"], keys=KEYS)
    deployment.send("policy", [("ca-simi-valley-pd", change)])
    got = deployment.collect(["audit"], lambda c: bool(_audit_for(c, change["change_id"])), TIMEOUT)
    [record] = _audit_for(got, change["change_id"])
    assert (record["outcome"], record["owner"]) == ("applied", "ca-simi-valley-pd")

    shared = plate_read("ca-simi-valley-pd", ["ca-oxnard-pd"])
    partial = plate_read("ca-simi-valley-pd", ["ca-oxnard-pd", "tx-houston-pd"])
    denied = plate_read("ca-simi-valley-pd", ["us-ice-ero"])
    deployment.send("reads", [("ca-simi-valley-pd", r) for r in (shared, partial, denied)])
    ids = [shared["read_id"], partial["read_id"], denied["read_id"]]
    got = deployment.collect(
        ["reads.shared", "quarantine", "audit"],
        lambda c: all(_audit_for(c, i) for i in ids),
        TIMEOUT,
    )

    [out] = by_field(got["reads.shared"], "read_id", shared["read_id"])
    assert (out["recipients"], out["denied_recipients"]) == (["ca-oxnard-pd"], [])
    [out] = by_field(got["reads.shared"], "read_id", partial["read_id"])
    assert out["recipients"] == ["ca-oxnard-pd"]
    assert [d["agency_id"] for d in out["denied_recipients"]] == ["tx-houston-pd"]
    assert by_field(got["quarantine"], "event_id", partial["read_id"])
    assert by_field(got["reads.shared"], "read_id", denied["read_id"]) == []
    [q] = by_field(got["quarantine"], "event_id", denied["read_id"])
    assert "FEDERAL_RECIPIENT" in {r["code"] for r in q["reasons"]}
    assert [_audit_for(got, i)[0]["outcome"] for i in ids] == ["shared", "partial", "denied"]


def test_ventura_flip_is_rejected_and_has_no_effect(deployment: Deployment) -> None:
    """An unsigned national_lookup for a CA owner is rejected, quarantined, alerted, audited,
    and a later national search from Texas does not reach that owner."""
    flip = policy_change("ca-ventura-county-so", "national_lookup", True)
    signed = policy_change("ca-ventura-county-so", "national_lookup", True, keys=KEYS)
    deployment.send("policy", [("ca-ventura-county-so", flip), ("ca-ventura-county-so", signed)])
    ids = [flip["change_id"], signed["change_id"]]
    got = deployment.collect(
        ["quarantine", "alerts", "audit"],
        lambda c: (
            all(_audit_for(c, i) for i in ids)
            and len(
                [
                    a
                    for _, a in c["alerts"]
                    if a["kind"] == "policy_rejected" and a["detail"].split()[2] in ids
                ]
            )
            == 2
        ),
        TIMEOUT,
    )
    for change_id, code in (
        (flip["change_id"], "UNSIGNED_CHANGE"),
        (signed["change_id"], "STATUTE_FORBIDS_SETTING"),
    ):
        [q] = by_field(got["quarantine"], "event_id", change_id)
        assert q["kind"] == "policy_change"
        codes = {r["code"] for r in q["reasons"]}
        assert code in codes and "STATUTE_FORBIDS_SETTING" in codes
        assert _audit_for(got, change_id)[0]["outcome"] == "rejected"
    alerts = [
        a
        for key, a in got["alerts"]
        if a["kind"] == "policy_rejected" and key == b"ca-ventura-county-so"
    ]
    assert len(alerts) >= 2

    search = search_request("tx-houston-pd", scope="national", ts="2026-01-10T11:00:00Z")
    deployment.send("searches", [("tx-houston-pd", search)])
    got = deployment.collect(
        ["searches.approved", "audit"], lambda c: bool(_audit_for(c, search["search_id"])), TIMEOUT
    )
    [out] = by_field(got["searches.approved"], "search_id", search["search_id"])
    assert "ca-ventura-county-so" not in out["allowed_networks"]
    assert "ca-ventura-county-so" not in _audit_for(got, search["search_id"])[0]["allowed"]


def test_malformed_and_schema_invalid_are_quarantined(deployment: Deployment) -> None:
    """Non-JSON keeps its bytes (base64); a JSON event missing fields is SCHEMA_INVALID; the
    worker keeps deciding afterwards."""
    raw = b"\xff\xfe definitely not json " + uuid.uuid4().hex.encode()
    invalid = {"type": "search_request", "search_id": f"bad-{uuid.uuid4()}", "ts": "nope"}
    after = search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"], ts="2026-01-10T12:00:00Z")
    deployment.send("searches", [(b"x", raw), (b"y", invalid), ("ca-oxnard-pd", after)])
    deployment.send("reads", [(b"z", b"[1, 2, 3]")])
    encoded = base64.b64encode(raw).decode()

    def done(c: Collected) -> bool:
        return bool(_audit_for(c, after["search_id"])) and any(
            v["original"] == {"raw_base64": base64.b64encode(b"[1, 2, 3]").decode()}
            for _, v in c["quarantine"]
        )

    got = deployment.collect(["quarantine", "audit", "searches.approved"], done, TIMEOUT)
    [q] = [v for _, v in got["quarantine"] if v["original"] == {"raw_base64": encoded}]
    assert (q["event_id"], q["kind"], q["reasons"][0]["code"]) == (None, "raw", "MALFORMED_EVENT")
    [q] = by_field(got["quarantine"], "event_id", invalid["search_id"])
    assert q["reasons"][0]["code"] == "SCHEMA_INVALID"
    assert q["original"] == invalid
    assert by_field(got["searches.approved"], "search_id", after["search_id"])


def test_windows_rate_limit_and_alerts(deployment: Deployment) -> None:
    """Event-time windows: the 4th search in a minute is RATE_LIMIT_EXCEEDED (limit 3) with one
    search_rate alert; immigration bursts and out-of-state attempts on an owner alert once."""
    minute = "2026-01-10T13:05:{:02d}Z"
    searches = [
        search_request("ca-oxnard-pd", networks=["ca-oxnard-pd"], ts=minute.format(i))
        for i in range(5)
    ]
    ice = [
        search_request(
            "tx-houston-pd",
            networks=["ca-ventura-county-so"],
            reason="ICE detainer request",
            ts=minute.format(i),
        )
        for i in range(3)
    ]
    deployment.send("searches", [(s["requester"]["agency_id"], s) for s in searches + ice])
    ids = [s["search_id"] for s in searches + ice]

    def done(c: Collected) -> bool:
        kinds = {(a["kind"], a["agency_id"]) for _, a in c["alerts"]}
        return (
            all(_audit_for(c, i) for i in ids)
            and {
                ("search_rate", "ca-oxnard-pd"),
                ("prohibited_purpose", "tx-houston-pd"),
                ("out_of_state_attempts", "ca-ventura-county-so"),
            }
            <= kinds
        )

    got = deployment.collect(["audit", "alerts", "quarantine"], done, TIMEOUT)
    outcomes = [_audit_for(got, s["search_id"])[0] for s in searches]
    assert [o["outcome"] for o in outcomes] == ["approved"] * 3 + ["denied"] * 2
    assert all("RATE_LIMIT_EXCEEDED" in o["codes"] for o in outcomes[3:])
    rate = [
        a
        for _, a in got["alerts"]
        if a["kind"] == "search_rate"
        and a["agency_id"] == "ca-oxnard-pd"
        and a["window_start"] == "2026-01-10T13:05:00Z"
    ]
    assert len(rate) == 1
    assert (rate[0]["window_end"], rate[0]["threshold"]) == ("2026-01-10T13:06:00Z", 3)
    # The count when the alert was raised: past the threshold, at most every search sent.
    assert 4 <= rate[0]["value"] <= 5
    burst = [
        a
        for _, a in got["alerts"]
        if a["kind"] == "prohibited_purpose" and a["window_start"] == "2026-01-10T13:00:00Z"
    ]
    assert len(burst) == 1
    attempts = [
        a
        for _, a in got["alerts"]
        if a["kind"] == "out_of_state_attempts" and a["window_start"] == "2026-01-10T13:00:00Z"
    ]
    assert len(attempts) == 1
    assert attempts[0]["agency_id"] == "ca-ventura-county-so"


def test_agency_topic_upserts_and_tombstones(deployment: Deployment) -> None:
    """A registry upsert on the agencies topic (signed by the registry key) takes effect; a
    null value deletes it again."""
    agency_id = f"ca-new-{uuid.uuid4().hex[:6]}"
    record = agency_record(agency_id, "New PD", "CA", "local", signer=KEYS.registry)
    deployment.send("agencies", [(agency_id, record)])
    got = deployment.collect(["audit"], lambda c: bool(_audit_for(c, agency_id)), TIMEOUT)
    assert _audit_for(got, agency_id)[0]["outcome"] == "upserted"
    first = search_request(agency_id, networks=[agency_id], ts="2026-01-10T14:00:00Z")
    deployment.send("searches", [(agency_id, first)])
    got = deployment.collect(["audit"], lambda c: bool(_audit_for(c, first["search_id"])), TIMEOUT)
    assert _audit_for(got, first["search_id"])[0]["outcome"] == "approved"

    deployment.send("agencies", [(agency_id, None)])
    got = deployment.collect(["audit"], lambda c: len(_audit_for(c, agency_id)) == 2, TIMEOUT)
    assert _audit_for(got, agency_id)[1]["outcome"] == "deleted"
    second = search_request(agency_id, networks=[agency_id], ts="2026-01-10T14:00:00Z")
    deployment.send("searches", [(agency_id, second)])
    got = deployment.collect(["audit"], lambda c: bool(_audit_for(c, second["search_id"])), TIMEOUT)
    record = _audit_for(got, second["search_id"])[0]
    assert record["outcome"] == "denied"
    assert "UNKNOWN_REQUESTER" in record["codes"]


def test_metrics_page(deployment: Deployment) -> None:
    """/metrics on STREAMGUARD_WEB_PORT serves the contract metrics, without plates."""
    text = scrape(WEB_PORT)
    assert "streamguard_events_total" in text
    assert "streamguard_decision_seconds_bucket" in text
    assert "8ABC123" not in text


def test_bad_keys_file_fails_before_connecting(tmp_path: Path) -> None:
    """A broken KEYS file: one-line error and a non-zero exit, with no broker at all."""
    (tmp_path / "keys.json").write_text("{not json", encoding="utf-8")
    env = worker_env("127.0.0.1:1", "bad.", tmp_path / "data", keys=tmp_path / "keys.json")
    worker = WorkerProcess(env, tmp_path / "log")
    worker.start()
    code = worker.wait(60)
    lines = [line for line in worker.log_text().splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1
    assert "keys file" in lines[0]
