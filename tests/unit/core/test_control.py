"""Control records (docs/contract.md section 2a): every attack of issue #11 on the pure engine.

Each attack is decided, rejected with its code, and the search after it shows no effect; where
it matters, the lawful version of the same change is shown to have one.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamguard.core.control import (
    apply_agency_record,
    apply_change,
    registry_change,
    replay_entry_for,
    widened,
)
from streamguard.core.engine import decide_event
from streamguard.core.models import (
    Agency,
    ChangeDecision,
    Event,
    MalformedDecision,
    OwnerSettings,
    SearchDecision,
    UpsertDecision,
)
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.statutes import load_statutes
from streamguard.core.timeutil import format_ts
from tests.helpers import AGENCIES, KEYS, NOW, SIGNERS, change, search

TAMPA = Agency("fl-tampa-pd", "Tampa Police Department", "FL", "local")
HOUSTON_KEY = SIGNERS.for_agency("tx-houston-pd")


@pytest.fixture
def state() -> PolicyState:
    return PolicyState.create(load_statutes(), (*AGENCIES, TAMPA))


class World:
    """A snapshot and the replay memory, decided through the engine like evaluate does."""

    def __init__(self, state: PolicyState) -> None:
        self.state = state
        self.memory = ReplayLedger()

    def decide(self, body: dict[str, Any], *, now: float = NOW, source: str | None = None) -> Any:
        kind = "policy_change" if body.get("type") == "policy_change" else "agency"
        event_id = body.get("change_id") if kind == "policy_change" else body.get("agency_id")
        event = Event(kind, event_id, body)
        self.state, decision = decide_event(
            event, self.state, now, KEYS, memory=self.memory, source=source
        )
        entry = replay_entry_for(event, decision, now, source=source)
        if entry is not None:
            self.memory.remember(entry)
        return decision

    def search(
        self, requester: str, scope: str, networks: list[str] | None = None
    ) -> SearchDecision:
        event = search(requester, scope=scope, networks=networks)
        _, decision = decide_event(
            Event("search_request", event["search_id"], event),
            self.state,
            NOW,
            KEYS,
            memory=self.memory,
        )
        assert isinstance(decision, SearchDecision)
        return decision


def _codes(decision: Any) -> set[str]:
    return set(decision.codes)


def test_houston_key_cannot_turn_on_tampas_sharing(state: PolicyState) -> None:
    """Signed by Houston, Tampa's national_lookup and federal_sharing are KEY_NOT_AUTHORIZED:
    ICE's national search gets nothing of Tampa's. Signed by Tampa, the same changes open it."""
    world = World(state)
    for setting in ("national_lookup", "federal_sharing"):
        decision = world.decide(change("fl-tampa-pd", setting, True, signer=HOUSTON_KEY))
        assert isinstance(decision, ChangeDecision) and not decision.applied
        # The actor names Tampa, the key is Houston's: both codes apply.
        assert decision.codes == ("KEY_NOT_AUTHORIZED", "ACTOR_NOT_AUTHORIZED")
    assert "fl-tampa-pd" not in world.search("us-ice-ero", "national").allowed
    for setting in ("national_lookup", "federal_sharing"):
        assert world.decide(change("fl-tampa-pd", setting, True)).applied
    assert "fl-tampa-pd" in world.search("us-ice-ero", "national").allowed


def test_houston_key_cannot_add_to_venturas_share_with(state: PolicyState) -> None:
    """Houston's key naming a California agency in Ventura's share_with changes nothing."""
    world = World(state)
    decision = world.decide(
        change("ca-ventura-county-so", "share_with", ["ca-oxnard-pd"], signer=HOUSTON_KEY)
    )
    assert "KEY_NOT_AUTHORIZED" in _codes(decision) and not decision.applied
    search = world.search("ca-oxnard-pd", "networks", ["ca-ventura-county-so"])
    assert search.allowed == () and "NOT_SHARED" in search.codes


@pytest.mark.parametrize(
    ("actor", "codes"),
    [
        # the key's agency and the changed agency, but another actor agency
        ({"user_id": "a", "agency_id": "tx-houston-pd"}, {"ACTOR_NOT_AUTHORIZED"}),
        # left out: the key's binding says who acted
        ({"user_id": "a"}, set()),
    ],
)
def test_actor_agency_must_be_the_keys_agency(
    state: PolicyState, actor: dict[str, str], codes: set[str]
) -> None:
    """actor.agency_id is not signed; when given, it must be the key's (and owner's) agency."""
    world = World(state)
    decision = world.decide(change("fl-tampa-pd", "statewide_lookup", True, actor=actor))
    assert _codes(decision) == codes


def test_registry_key_cannot_sign_policy_changes(state: PolicyState) -> None:
    """The registry role signs agency records only."""
    world = World(state)
    decision = world.decide(
        change(
            "fl-tampa-pd", "national_lookup", True, signer=SIGNERS.registry, actor={"user_id": "a"}
        )
    )
    assert _codes(decision) == {"KEY_NOT_AUTHORIZED"}


def test_an_exact_replay_after_the_owner_turned_it_off_is_refused(state: PolicyState) -> None:
    """Tampa: national_lookup on, then off; the exact signed "on" sent again is a replay and
    Houston's national search still gets nothing of Tampa's."""
    world = World(state)
    on = change("fl-tampa-pd", "national_lookup", True)
    assert world.decide(on).applied
    assert "fl-tampa-pd" in world.search("tx-houston-pd", "national").allowed
    assert world.decide(change("fl-tampa-pd", "national_lookup", False)).applied
    replay = world.decide(on)
    assert not replay.applied and replay.codes == ("REPLAYED_CHANGE",)
    assert [r.code for r in replay.reasons] == ["REPLAYED_CHANGE", "REPLAYED_CHANGE"]
    assert "fl-tampa-pd" not in world.search("tx-houston-pd", "national").allowed


@pytest.mark.parametrize(
    ("ts", "code"),
    [("2099-01-01T00:00:00Z", "FUTURE_DATED"), ("1970-01-02T00:00:00Z", "REPLAYED_CHANGE")],
)
def test_changes_dated_2099_or_1970_are_refused(state: PolicyState, ts: str, code: str) -> None:
    """Far from the deciding clock either way, a validly signed change does not apply."""
    world = World(state)
    decision = world.decide(change("fl-tampa-pd", "national_lookup", True, ts=ts))
    assert decision.codes == (code,)
    assert "fl-tampa-pd" not in world.search("tx-houston-pd", "national").allowed


def test_a_rejected_change_stays_decided(state: PolicyState) -> None:
    """A change rejected once (here: its key unknown) is a replay when sent again."""
    world = World(state)
    body = change("fl-tampa-pd", "national_lookup", True, key_id="k-not-installed")
    assert world.decide(body).codes == ("INVALID_SIGNATURE",)
    assert "REPLAYED_CHANGE" in world.decide(body).codes


def test_a_redelivery_is_decided_as_before(state: PolicyState) -> None:
    """The same message (same source position) after a crash is not its own replay."""
    world = World(state)
    body = change("fl-tampa-pd", "national_lookup", True)
    assert world.decide(body, source="policy-0@5").applied
    assert world.decide(body, source="policy-0@5").applied
    assert world.decide(body, source="policy-1@9").codes == ("REPLAYED_CHANGE",)


def test_a_redelivery_after_a_later_change_keeps_its_first_decision(state: PolicyState) -> None:
    """A crash after two changes of one setting were decided but before their offsets were
    committed redelivers both: the first is still applied (its decision, not a replay's), and
    the second, later one is what stays in force."""
    world = World(state)
    on = change("fl-tampa-pd", "national_lookup", True)
    off = change("fl-tampa-pd", "national_lookup", False)
    assert world.decide(on, source="policy-0@5").applied
    assert world.decide(off, source="policy-0@6").applied
    again = world.decide(on, source="policy-0@5")
    assert (again.applied, again.codes) == (True, ())
    assert world.state.settings_for("fl-tampa-pd").national_lookup is False
    assert "fl-tampa-pd" not in world.search("tx-houston-pd", "national").allowed
    assert world.decide(off, source="policy-0@6").applied
    assert world.state.settings_for("fl-tampa-pd").national_lookup is False


def test_a_redelivered_rejection_is_never_applied(state: PolicyState) -> None:
    """A change rejected once stays rejected when redelivered, even where the state would let
    it apply now (here the agency it shares with was registered in between)."""
    world = World(state)
    share = change("fl-tampa-pd", "share_with", ["fl-miami-pd"])
    first = world.decide(share, source="policy-0@5")
    assert first.codes == ("UNKNOWN_AGENCY",)
    miami = _signed_agency(_agency("fl-miami-pd", "Miami Police Department", "FL", "local"))
    assert world.decide(miami, source="agencies-0@1").applied
    again = world.decide(share, source="policy-0@5")
    assert not again.applied and again.codes == ("REPLAYED_CHANGE",)
    assert "fl-miami-pd" not in world.state.settings_for("fl-tampa-pd").share_with


def test_a_redelivered_agency_record_keeps_its_first_decision(state: PolicyState) -> None:
    """As for policy changes: a later record of the agency applied since stays in force."""
    world = World(state)
    first = _signed_agency(_agency("fl-tampa-pd", "Tampa PD", "FL", "local"))
    later = _signed_agency(
        {**_agency("fl-tampa-pd", "Tampa Police", "FL", "local"), "ts": format_ts(NOW - 30)}
    )
    assert world.decide(first, source="agencies-0@1").applied
    assert world.decide(later, source="agencies-0@2").applied
    again = world.decide(first, source="agencies-0@1")
    assert (again.applied, again.codes) == (True, ())
    assert world.state.agencies["fl-tampa-pd"].name == "Tampa Police"
    assert world.decide(first, source="agencies-3@1").codes == ("REPLAYED_CHANGE",)


def _agency(agency_id: str, name: str, state: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "agency_id": agency_id,
        "name": name,
        "state": state,
        "kind": kind,
        "ts": format_ts(NOW - 60),
        **extra,
    }


def _signed_agency(record: dict[str, Any], signer: Any = None) -> dict[str, Any]:
    from streamguard.local.testing import signed

    return signed(record, signer or SIGNERS.registry)


@pytest.mark.parametrize(
    ("record", "codes"),
    [
        # unsigned
        (_agency("tx-houston-pd", "Houston PD", "CA", "local"), ("UNSIGNED_CHANGE",)),
        # signed with an agency's key
        (
            _signed_agency(_agency("tx-houston-pd", "Houston PD", "CA", "local"), HOUSTON_KEY),
            ("KEY_NOT_AUTHORIZED",),
        ),
        # signed by the registry, then edited
        (
            {
                **_signed_agency(_agency("tx-houston-pd", "Houston PD", "TX", "local")),
                "state": "CA",
            },
            ("INVALID_SIGNATURE",),
        ),
    ],
)
def test_relabelling_houston_as_californian_is_refused(
    state: PolicyState, record: dict[str, Any], codes: tuple[str, ...]
) -> None:
    """Houston stays Texan: its statewide search still gets nothing of Ventura's."""
    world = World(state)
    assert world.decide(change("ca-ventura-county-so", "statewide_lookup", True)).applied
    decision = world.decide(record)
    assert isinstance(decision, UpsertDecision)
    assert (decision.outcome, decision.codes) == ("rejected", codes)
    assert world.state.agencies["tx-houston-pd"].state == "TX"
    assert "ca-ventura-county-so" not in world.search("tx-houston-pd", "statewide").allowed


def test_relabelling_ventura_as_texan_is_refused(state: PolicyState) -> None:
    """Ventura stays Californian: national_lookup and federal_sharing stay forbidden."""
    world = World(state)
    decision = world.decide(_agency("ca-ventura-county-so", "Ventura County SO", "TX", "county"))
    assert decision.codes == ("UNSIGNED_CHANGE",)
    for setting in ("national_lookup", "federal_sharing"):
        after = world.decide(change("ca-ventura-county-so", setting, True))
        assert "STATUTE_FORBIDS_SETTING" in after.codes


def test_an_unsigned_new_californian_agency_is_refused(state: PolicyState) -> None:
    """An agency nobody signed for stays unknown, which only denies."""
    world = World(state)
    decision = world.decide(_agency("ca-fake-pd", "Fake PD", "CA", "local"))
    assert decision.codes == ("UNSIGNED_CHANGE",)
    assert "ca-fake-pd" not in world.state.agencies
    assert "UNKNOWN_REQUESTER" in world.search("ca-fake-pd", "statewide").codes


def test_registry_signed_records_apply_only_signed_fields_and_once(state: PolicyState) -> None:
    """A registry-signed relabel applies (aliases left out), its replay and an older one do not."""
    world = World(state)
    older = _signed_agency(
        {**_agency("tx-houston-pd", "Houston PD", "TX", "local"), "ts": format_ts(NOW - 120)}
    )
    record = _signed_agency(_agency("tx-houston-pd", "Houston PD", "NM", "local", aliases="HPD"))
    assert world.decide(record).outcome == "upserted"
    assert world.state.agencies["tx-houston-pd"] == Agency(
        "tx-houston-pd", "Houston PD", "NM", "local"
    )
    assert world.decide(record).codes == ("REPLAYED_CHANGE",)
    assert world.decide(older).codes == ("REPLAYED_CHANGE",)
    assert world.decide(
        {
            **_signed_agency(_agency("tx-houston-pd", "Houston PD", "TX", "local")),
            "ts": format_ts(NOW + 3600),
        }
    ).codes == ("INVALID_SIGNATURE", "FUTURE_DATED")


def test_a_signed_agency_record_without_ts_is_malformed_and_tombstones_need_no_key(
    state: PolicyState,
) -> None:
    """A signature without its ts cannot be checked; a tombstone deletes, which only denies."""
    world = World(state)
    body = _signed_agency(_agency("tx-houston-pd", "Houston PD", "TX", "local"))
    del body["ts"]
    assert isinstance(world.decide(body), MalformedDecision)
    event = Event("agency", "tx-houston-pd", {"agency_id": "tx-houston-pd"}, deleted=True)
    world.state, decision = apply_agency_record(world.state, event, KEYS, world.memory, NOW)
    assert isinstance(decision, UpsertDecision) and decision.deleted
    assert "tx-houston-pd" not in world.state.agencies


def test_malformed_changes_are_not_remembered(state: PolicyState) -> None:
    """A change that is no change (bad schema) was never decided: nothing to replay."""
    world = World(state)
    body = change("fl-tampa-pd", "national_lookup", "yes")
    _, decision = apply_change(world.state, body, KEYS, world.memory, NOW)
    assert isinstance(decision, MalformedDecision)
    assert replay_entry_for(Event("policy_change", body["change_id"], body), decision, NOW) is None


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (OwnerSettings(), OwnerSettings(national_lookup=True), ("national_lookup turned on",)),
        (OwnerSettings(national_lookup=True), OwnerSettings(national_lookup=True), ()),
        (OwnerSettings(national_lookup=True), OwnerSettings(), ()),
        (
            OwnerSettings(share_with=frozenset({"a"})),
            OwnerSettings(share_with=frozenset({"a", "b"})),
            ("share_with added b",),
        ),
        (
            OwnerSettings(),
            OwnerSettings(declaration_on_file=frozenset({"us-fbi"})),
            ("declaration_on_file added us-fbi",),
        ),
        (
            OwnerSettings(retention_days=30),
            OwnerSettings(retention_days=60),
            ("retention_days raised from 30 to 60",),
        ),
        (OwnerSettings(), OwnerSettings(retention_days=60), ()),  # a first own limit narrows
        (
            OwnerSettings(require_case_number=True),
            OwnerSettings(),
            ("require_case_number turned off",),
        ),
    ],
)
def test_what_counts_as_widening(
    before: OwnerSettings, after: OwnerSettings, expected: tuple[str, ...]
) -> None:
    """policy_widened is raised exactly for changes that open access."""
    assert widened(before, after) == expected


def test_what_counts_as_a_registry_change() -> None:
    """registry_changed: an existing agency moved to another state or kind, or deleted."""
    houston = Agency("tx-houston-pd", "Houston PD", "TX", "local")
    assert registry_change(None, houston) is None
    assert registry_change(houston, Agency("tx-houston-pd", "HPD", "TX", "local")) is None
    moved = registry_change(houston, Agency("tx-houston-pd", "Houston PD", "CA", "county"))
    assert moved is not None and "state TX -> CA" in moved and "kind local -> county" in moved
    deleted = registry_change(houston, None)
    assert deleted is not None and "deleted" in deleted
