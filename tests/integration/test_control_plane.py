"""The attacks of issue #11 through the worker on a real broker: keys bound to agencies, no
replays (not even across a restart), a signed registry. Each attack is rejected, quarantined and
audited, and the search after it shows no effect; the same search after the lawful change shows
that it would have seen one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from streamguard.core.timeutil import format_ts
from streamguard.local.testing import (
    Collected,
    Deployment,
    TestRegistry,
    agency_record,
    policy_change,
    scrape,
    search_request,
    wait_for,
)
from tests.helpers import Deploy, by_field

REGISTRY = TestRegistry(
    b"control-plane-seed",
    [
        "ca-ventura-county-so",
        "ca-oxnard-pd",
        "fl-tampa-pd",
        "tx-houston-pd",
        "az-yuma-pd",
        "us-ice-ero",
    ],
)
KEYS = REGISTRY.keys
HOUSTON_KEY = KEYS.for_agency("tx-houston-pd")
WEB_PORT = 6510
RESTART_PORTS = (6511, 6512)
TIMEOUT = 90.0


@pytest.fixture(scope="module")
def deployment(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("control")
    deployment = Deployment.create(kafka_bootstrap, base, tag="sgc", registry=REGISTRY)
    process = deployment.add_worker(WEB_PORT)
    # Ventura opens statewide lookup (lawful in California): the registry attacks then try to
    # reach it from outside the state.
    setup = policy_change("ca-ventura-county-so", "statewide_lookup", True, keys=KEYS)
    deployment.send("policy", [("ca-ventura-county-so", setup)])
    got = deployment.collect(["audit"], lambda c: bool(_audit(c, setup["change_id"])), TIMEOUT)
    assert _audit(got, setup["change_id"])[0]["outcome"] == "applied", process.log_text()[-3000:]
    try:
        yield deployment
    finally:
        code = process.stop()
        assert code == 0, process.log_text()[-3000:]


def _audit(got: Collected, event_id: str) -> list[Any]:
    return by_field(got["audit"], "event_id", event_id)


def _decide(
    deployment: Deployment,
    role: str,
    records: list[tuple[str, dict[str, Any]]],
    ids: list[str],
    *,
    before: int = 0,
) -> Collected:
    """Send `records` to `role` and collect until every id has as many audit records as sent
    (plus `before`, the records it had already)."""
    wanted = {i: before + sum(1 for _, r in records if _id(r) == i) for i in ids}
    deployment.send(role, records)
    return deployment.collect(
        ["audit", "quarantine", "alerts", "searches.approved"],
        lambda c: all(len(_audit(c, i)) >= n for i, n in wanted.items()),
        TIMEOUT,
    )


def _id(record: dict[str, Any]) -> str:
    return str(record.get("change_id") or record.get("search_id") or record.get("agency_id"))


def _codes(got: Collected, event_id: str) -> list[set[str]]:
    return [set(r["codes"]) for r in _audit(got, event_id)]


def _search(
    deployment: Deployment, requester: str, scope: str, networks: list[str] | None = None
) -> tuple[list[str], set[str]]:
    """(allowed networks, every code) of one search decided now."""
    now = format_ts(time.time())
    search = search_request(
        requester, scope=scope, networks=networks or (), ts=now, query_window=(now, now)
    )
    got = _decide(deployment, "searches", [(requester, search)], [search["search_id"]])
    [record] = _audit(got, search["search_id"])
    return list(record["allowed"]), set(record["codes"])


def test_houston_key_cannot_open_tampa_to_ice(deployment: Deployment) -> None:
    """Houston's key signing Tampa's national_lookup and federal_sharing is KEY_NOT_AUTHORIZED;
    ICE's national search then gets nothing of Tampa's. Tampa's own key then opens it."""
    attacks = [
        policy_change("fl-tampa-pd", "national_lookup", True, signer=HOUSTON_KEY),
        policy_change("fl-tampa-pd", "federal_sharing", True, signer=HOUSTON_KEY),
    ]
    ids = [a["change_id"] for a in attacks]
    got = _decide(deployment, "policy", [("fl-tampa-pd", a) for a in attacks], ids)
    for change_id in ids:
        # the actor names Tampa, the key is Houston's: both codes apply
        assert _codes(got, change_id) == [{"KEY_NOT_AUTHORIZED", "ACTOR_NOT_AUTHORIZED"}]
        [q] = by_field(got["quarantine"], "event_id", change_id)
        assert q["kind"] == "policy_change"
    allowed, _ = _search(deployment, "us-ice-ero", "national")
    assert "fl-tampa-pd" not in allowed

    lawful = [
        policy_change("fl-tampa-pd", "national_lookup", True, keys=KEYS),
        policy_change("fl-tampa-pd", "federal_sharing", True, keys=KEYS),
    ]
    ids = [c["change_id"] for c in lawful]
    got = _decide(deployment, "policy", [("fl-tampa-pd", c) for c in lawful], ids)
    assert [_audit(got, i)[0]["outcome"] for i in ids] == ["applied", "applied"]
    widened = [
        a for key, a in got["alerts"] if a["kind"] == "policy_widened" and key == b"fl-tampa-pd"
    ]
    assert len(widened) >= 2, "an applied widening change alerts its owner"
    allowed, _ = _search(deployment, "us-ice-ero", "national")
    assert "fl-tampa-pd" in allowed


def test_houston_key_cannot_add_to_venturas_share_with(deployment: Deployment) -> None:
    """Houston's key adding an agency to Ventura's share_with is rejected; the agency named is
    still not shared with. An actor of another agency is ACTOR_NOT_AUTHORIZED too."""
    attack = policy_change(
        "ca-ventura-county-so", "share_with", ["ca-oxnard-pd"], signer=HOUSTON_KEY
    )
    actor = policy_change("ca-ventura-county-so", "share_with", ["ca-oxnard-pd"], keys=KEYS)
    actor["actor"] = {"user_id": "admin-1", "agency_id": "tx-houston-pd"}
    got = _decide(
        deployment,
        "policy",
        [("ca-ventura-county-so", attack), ("ca-ventura-county-so", actor)],
        [attack["change_id"], actor["change_id"]],
    )
    assert _codes(got, attack["change_id"]) == [{"KEY_NOT_AUTHORIZED", "ACTOR_NOT_AUTHORIZED"}]
    assert _codes(got, actor["change_id"]) == [{"ACTOR_NOT_AUTHORIZED"}]
    allowed, codes = _search(deployment, "ca-oxnard-pd", "networks", ["ca-ventura-county-so"])
    assert allowed == [] and "NOT_SHARED" in codes


def test_changes_dated_2099_or_1970_are_rejected(deployment: Deployment) -> None:
    """A change dated far ahead is FUTURE_DATED, one from 1970 a replay; neither applies."""
    future = policy_change(
        "az-yuma-pd", "national_lookup", True, keys=KEYS, ts="2099-01-01T00:00:00Z"
    )
    past = policy_change(
        "az-yuma-pd", "national_lookup", True, keys=KEYS, ts="1970-01-02T00:00:00Z"
    )
    got = _decide(
        deployment,
        "policy",
        [("az-yuma-pd", future), ("az-yuma-pd", past)],
        [future["change_id"], past["change_id"]],
    )
    assert _codes(got, future["change_id"]) == [{"FUTURE_DATED"}]
    assert _codes(got, past["change_id"]) == [{"REPLAYED_CHANGE"}]
    allowed, _ = _search(deployment, "tx-houston-pd", "national")
    assert "az-yuma-pd" not in allowed


def test_registry_records_need_the_registry_key(deployment: Deployment) -> None:
    """Relabelling Houston as Californian (unsigned, or signed by Houston), Ventura as Texan, or
    an unsigned new "Californian" agency: all rejected, quarantined as kind agency, audited;
    Houston's statewide search then still gets nothing of Ventura's, and Ventura's national
    lookup is still refused by California law."""
    relabels = [
        agency_record("tx-houston-pd", "Houston Police Department", "CA", "local"),
        agency_record(
            "tx-houston-pd", "Houston Police Department", "CA", "local", signer=HOUSTON_KEY
        ),
        agency_record("ca-ventura-county-so", "Ventura County Sheriff's Office", "TX", "county"),
        agency_record("ca-fake-pd", "Totally Real Police", "CA", "local"),
    ]
    deployment.send("agencies", [(r["agency_id"], r) for r in relabels])
    wanted = {"tx-houston-pd": 2, "ca-ventura-county-so": 1, "ca-fake-pd": 1}

    def done(c: Collected) -> bool:
        return all(
            len([r for r in _audit(c, i) if r["kind"] == "agency"]) >= n for i, n in wanted.items()
        )

    got = deployment.collect(["audit", "quarantine"], done, TIMEOUT)
    houston = [set(r["codes"]) for r in _audit(got, "tx-houston-pd") if r["kind"] == "agency"]
    assert houston == [{"UNSIGNED_CHANGE"}, {"KEY_NOT_AUTHORIZED"}]
    for agency_id in ("ca-ventura-county-so", "ca-fake-pd"):
        [record] = [r for r in _audit(got, agency_id) if r["kind"] == "agency"]
        assert (record["outcome"], record["codes"]) == ("rejected", ["UNSIGNED_CHANGE"])
    quarantined = [q for _, q in got["quarantine"] if q["kind"] == "agency"]
    assert {q["event_id"] for q in quarantined} >= set(wanted)

    allowed, codes = _search(deployment, "tx-houston-pd", "statewide")
    assert "ca-ventura-county-so" not in allowed
    _, codes = _search(deployment, "ca-fake-pd", "statewide")
    assert "UNKNOWN_REQUESTER" in codes
    flip = policy_change("ca-ventura-county-so", "national_lookup", True, keys=KEYS)
    got = _decide(deployment, "policy", [("ca-ventura-county-so", flip)], [flip["change_id"]])
    assert "STATUTE_FORBIDS_SETTING" in _codes(got, flip["change_id"])[0]


def test_a_registry_signed_relabel_applies_alerts_and_cannot_be_replayed(
    deployment: Deployment,
) -> None:
    """The registry key moves Yuma to Nevada (registry_changed for Yuma); the same record sent
    again, and an older one, are REPLAYED_CHANGE."""
    older = agency_record(
        "az-yuma-pd", "Yuma Police Department", "CA", "local", signer=KEYS.registry
    )
    moved = agency_record(
        "az-yuma-pd", "Yuma Police Department", "NV", "local", signer=KEYS.registry
    )
    deployment.send(
        "agencies", [("az-yuma-pd", moved), ("az-yuma-pd", moved), ("az-yuma-pd", older)]
    )

    def done(c: Collected) -> bool:
        return len([r for r in _audit(c, "az-yuma-pd") if r["kind"] == "agency"]) >= 3

    got = deployment.collect(["audit", "alerts"], done, TIMEOUT)
    records = [r for r in _audit(got, "az-yuma-pd") if r["kind"] == "agency"]
    assert [r["outcome"] for r in records] == ["upserted", "rejected", "rejected"]
    assert [set(r["codes"]) for r in records[1:]] == [{"REPLAYED_CHANGE"}, {"REPLAYED_CHANGE"}]
    alerts = [a for k, a in got["alerts"] if a["kind"] == "registry_changed" and k == b"az-yuma-pd"]
    assert len(alerts) == 1 and "AZ -> NV" in alerts[0]["detail"]


def test_metrics_count_the_new_codes_and_alerts(deployment: Deployment) -> None:
    """Every section 2a code and both new alert kinds are series on /metrics from the start."""
    page = scrape(WEB_PORT)
    for code in ("KEY_NOT_AUTHORIZED", "REPLAYED_CHANGE", "FUTURE_DATED", "ACTOR_NOT_AUTHORIZED"):
        assert f'streamguard_violations_total{{code="{code}"}}' in page
    for kind in ("policy_widened", "registry_changed"):
        assert f'streamguard_alerts_total{{kind="{kind}"}}' in page


def test_a_removed_key_signs_nothing_after_the_file_changes(deployment: Deployment) -> None:
    """Rewriting KEYS.json without Oxnard's key: from the reload on, its changes are invalid."""
    path = deployment.keys
    assert path is not None
    entries = KEYS.keys_json()
    del entries["k-ca-oxnard-pd"]
    path.write_text(json.dumps(entries), encoding="utf-8")
    worker = deployment.workers[0]
    assert wait_for(lambda: "reloaded" in worker.log_text(), 30.0), worker.log_text()[-3000:]
    change = policy_change("ca-oxnard-pd", "statewide_lookup", True, keys=KEYS)
    got = _decide(deployment, "policy", [("ca-oxnard-pd", change)], [change["change_id"]])
    assert _codes(got, change["change_id"]) == [{"INVALID_SIGNATURE"}]


def test_a_replay_after_a_worker_restart_is_still_refused(deploy: Deploy) -> None:
    """Tampa turns national lookup on, then off. The worker is replaced by a new one with an
    empty data directory (its state only from the changelog); the exact replay of the signed
    "on" is REPLAYED_CHANGE, and ICE's national search still gets nothing of Tampa's."""
    deployment = deploy(tag="sgr", registry=REGISTRY)
    first = deployment.add_worker(RESTART_PORTS[0], name="first")
    on = policy_change("fl-tampa-pd", "national_lookup", True, keys=KEYS)
    off = policy_change("fl-tampa-pd", "national_lookup", False, keys=KEYS)
    got = _decide(
        deployment,
        "policy",
        [("fl-tampa-pd", on), ("fl-tampa-pd", off)],
        [on["change_id"], off["change_id"]],
    )
    assert [_audit(got, c["change_id"])[0]["outcome"] for c in (on, off)] == ["applied", "applied"]
    assert first.stop() == 0, first.log_text()[-3000:]

    second = deployment.add_worker(RESTART_PORTS[1], name="second")
    got = _decide(deployment, "policy", [("fl-tampa-pd", on)], [on["change_id"]], before=1)
    original, replay = _audit(got, on["change_id"])
    assert original["decision_id"] != replay["decision_id"], "a replay is a decision of its own"
    assert (replay["outcome"], set(replay["codes"])) == ("rejected", {"REPLAYED_CHANGE"}), (
        second.log_text()[-3000:]
    )
    allowed, _ = _search(deployment, "tx-houston-pd", "national")
    assert "fl-tampa-pd" not in allowed
