"""The three vendor mappers: golden mappings (body -> exact plate_read), stable read ids, what
is ignored, what is refused, and that whatever a body holds, a mapper answers with a value the
engine accepts or a typed error, never an exception."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from streamguard import serde
from streamguard.core.codes import SCHEMA_INVALID
from streamguard.core.engine import decide_event
from streamguard.core.models import Agency, Decision, MalformedDecision, ReadDecision
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.statutes import load_statutes
from streamguard.ingest.formats import FORMATS, axis, genetec, openalpr
from streamguard.ingest.types import Ignored, Mapped, MappingError, Owner
from streamguard.stream.intake import Unreadable, decode
from tests.unit.ingest import samples
from tests.unit.ingest.samples import OWNER

GOLDEN: list[tuple[str, Callable[[], dict[str, Any]], dict[str, Any]]] = [
    ("openalpr", samples.openalpr_group, samples.OPENALPR_READ),
    ("axis", samples.axis_event, samples.AXIS_READ),
    ("genetec", samples.genetec_visits, samples.GENETEC_READ),
]


def _decide(read: dict[str, Any], state: PolicyState) -> tuple[PolicyState, Decision]:
    """A mapped read through the worker's front door (the reads topic), then the engine."""
    event = decode(serde.dumps(read), state.version, role="reads")
    if isinstance(event, Unreadable):
        return state, event.decision
    return decide_event(event, state, 1.77e9, {}, memory=ReplayLedger())


def _one_read(result: object) -> dict[str, Any]:
    assert isinstance(result, Mapped), result
    assert len(result.reads) == 1
    return result.reads[0]


def _error(result: object) -> MappingError:
    assert isinstance(result, MappingError), result
    return result


@pytest.mark.parametrize(("name", "body", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_mapping(name: str, body: Callable[[], dict[str, Any]], expected: dict) -> None:
    """Each fixture maps to exactly this plate_read, field for field and in this order."""
    read = _one_read(FORMATS[name].mapper(body(), OWNER))
    assert read == expected
    assert list(read) == list(expected)


@pytest.mark.parametrize(("name", "body", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_mapped_reads_are_reads_the_engine_decides(
    name: str, body: Callable[[], dict[str, Any]], expected: dict
) -> None:
    """Not malformed for the worker's own schema check: decided per recipient."""
    agencies = [
        Agency(samples.OWNER_ID, "Ventura County Sheriff's Office", "CA", "county"),
        Agency("ca-oxnard-pd", "Oxnard Police Department", "CA", "local"),
        Agency("ca-simi-valley-pd", "Simi Valley Police Department", "CA", "local"),
    ]
    state = PolicyState.create(load_statutes(), agencies)
    _, decision = _decide(_one_read(FORMATS[name].mapper(body(), OWNER)), state)
    assert isinstance(decision, ReadDecision), decision
    assert not isinstance(decision, MalformedDecision)
    assert [v.agency_id for v in decision.verdicts] == list(samples.SHARE_TO)


@pytest.mark.parametrize(("name", "body", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_a_retried_body_is_the_same_read(
    name: str, body: Callable[[], dict[str, Any]], expected: dict
) -> None:
    """Same body twice -> same read_id; another owner posting it -> another read."""
    mapper = FORMATS[name].mapper
    first = _one_read(mapper(body(), OWNER))
    again = _one_read(mapper(body(), OWNER))
    other = _one_read(mapper(body(), Owner("ca-oxnard-pd")))
    assert first["read_id"] == again["read_id"]
    assert other["read_id"] != first["read_id"]
    assert other["agency_id"] == "ca-oxnard-pd"
    assert other["share_to"] == []


def test_no_image_reaches_a_read() -> None:
    """Crops are counted, never copied: no read holds any image value of its body."""
    for name, body, _ in GOLDEN:
        read = _one_read(FORMATS[name].mapper(body(), OWNER))
        assert samples.FAKE_JPEG not in str(read)
        assert "imagesURI" not in str(read) and "getImage" not in str(read)


# --- OpenALPR ---------------------------------------------------------------------------------


def test_openalpr_read_id_comes_from_agent_camera_and_best_uuid() -> None:
    base = _one_read(openalpr.map_openalpr(samples.openalpr_group(), OWNER))["read_id"]
    # The plate text is not part of the id: a corrected plate in a retry is the same read.
    same = openalpr.map_openalpr(samples.openalpr_group(best_plate_number="8ABC124"), OWNER)
    assert _one_read(same)["read_id"] == base
    other_frame = samples.openalpr_group(best_uuid=f"{samples.AGENT_UID}-1234567-1767225600999")
    assert _one_read(openalpr.map_openalpr(other_frame, OWNER))["read_id"] != base


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"data_type": "heartbeat"}, "heartbeat"), ({"is_preview": True}, "preview")],
)
def test_openalpr_heartbeats_and_previews_are_not_reads(overrides: dict, reason: str) -> None:
    assert openalpr.map_openalpr(samples.openalpr_group(**overrides), OWNER) == Ignored(reason)


def test_openalpr_falls_back_to_best_plate_fields() -> None:
    body = samples.openalpr_group()
    for key in ("best_plate_number", "best_region", "best_confidence"):
        del body[key]
    read = _one_read(openalpr.map_openalpr(body, OWNER))
    assert (read["plate"], read["plate_state"], read["confidence"]) == ("8ABC123", "CA", 0.9412)


def test_openalpr_without_gps_has_no_location() -> None:
    body = samples.openalpr_group(gps_latitude=0, gps_longitude=0)
    assert _one_read(openalpr.map_openalpr(body, OWNER))["location"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"data_type": "alpr_results"}, "data_type"),
        ({"data_type": None}, "data_type"),
        ({"best_uuid": None}, "best_uuid"),
        ({"agent_uid": ""}, "agent_uid"),
        ({"epoch_start": 1609433731}, "epoch_start"),
        ({"best_plate_number": "8AB*123"}, "best_plate_number"),
        ({"best_confidence": 250}, "best_confidence"),
        ({"best_region": "california"}, "best_region"),
        ({"gps_latitude": 123.0}, "gps_latitude"),
    ],
)
def test_openalpr_refusals_name_the_field(overrides: dict, field: str) -> None:
    error = _error(openalpr.map_openalpr(samples.openalpr_group(**overrides), OWNER))
    assert error.code == SCHEMA_INVALID
    assert field in error.detail
    assert "8AB" not in error.detail


def test_openalpr_refusal_after_the_ids_carries_the_read_id() -> None:
    """A refused body is named by the read it would have been, so its retry names it too."""
    good = _one_read(openalpr.map_openalpr(samples.openalpr_group(), OWNER))
    bad = _error(openalpr.map_openalpr(samples.openalpr_group(epoch_start="soon"), OWNER))
    assert bad.event_id == good["read_id"]
    assert (
        _error(openalpr.map_openalpr(samples.openalpr_group(best_uuid=7.5), OWNER)).event_id is None
    )


# --- Axis -------------------------------------------------------------------------------------


def test_axis_falls_back_to_local_time_in_the_owners_zone() -> None:
    """Without capture_timestamp, `datetime` (camera-local) gives the same instant."""
    body = samples.axis_event()
    del body["capture_timestamp"]
    read = _one_read(axis.map_axis(body, OWNER))
    assert read["ts"] == samples.AXIS_READ["ts"]
    refused = _error(axis.map_axis(body, Owner(samples.OWNER_ID)))
    assert "time zone" in refused.detail


def test_axis_new_update_and_lost_events_of_one_car_are_separate_reads() -> None:
    ids = {
        _one_read(axis.map_axis(samples.axis_event(carState=state, capture_timestamp=ts), OWNER))[
            "read_id"
        ]
        for state, ts in (("new", "1767225599100"), ("update", "1767225599400"), ("lost", None))
        if ts is not None
    } | {_one_read(axis.map_axis(samples.axis_event(), OWNER))["read_id"]}
    assert len(ids) == 3


def test_axis_plate_falls_back_to_utf8_and_unicode_fields() -> None:
    body = samples.axis_event(plateText="")
    assert _one_read(axis.map_axis(body, OWNER))["plate"] == "7XYZ890"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"camera_info": None}, "SerialNumber"),
        ({"camera_info": {"SerialNumber": ""}}, "SerialNumber"),
        ({"carID": None}, "carID"),
        ({"plateText": "----/----", "plateUTF8": "", "plateUnicode": ""}, "plateText"),
        ({"plateConfidence": "93.4"}, "plateConfidence"),
        ({"capture_timestamp": "later"}, "capture_timestamp"),
        ({"geotag": [50.4, 30.4]}, "geotag"),
        ({"plateRegion": "Californ"}, "plateRegion"),
    ],
)
def test_axis_refusals_name_the_field(overrides: dict, field: str) -> None:
    error = _error(axis.map_axis(samples.axis_event(**overrides), OWNER))
    assert error.code == SCHEMA_INVALID
    assert field in error.detail


# --- Genetec (ParkPow) ------------------------------------------------------------------------


def test_genetec_maps_every_record_of_a_body() -> None:
    body = samples.genetec_visits(
        samples.genetec_record(4410021),
        samples.genetec_record(4410022, vehicle={"license_plate": "5KLM001"}),
    )
    result = genetec.map_genetec(body, OWNER)
    assert isinstance(result, Mapped)
    assert [r["plate"] for r in result.reads] == ["6TRJ244", "5KLM001"]
    assert len({r["read_id"] for r in result.reads}) == 2


def test_genetec_accepts_one_visit_posted_alone() -> None:
    read = _one_read(genetec.map_genetec(samples.genetec_record(), OWNER))
    assert read == samples.GENETEC_READ


def test_genetec_one_bad_record_refuses_the_whole_body() -> None:
    """Half a body on the topic and half refused would leave the sender nothing to retry."""
    body = samples.genetec_visits(
        samples.genetec_record(4410021), samples.genetec_record(4410022, start_date="today")
    )
    error = _error(genetec.map_genetec(body, OWNER))
    assert error.detail.startswith("records[1]: ")
    assert "start_date" in error.detail
    assert error.event_id is None  # the quarantine copy holds two records, not one read


def test_genetec_counts_images_of_autovu_records() -> None:
    record = samples.genetec_record(ContextImage=samples.FAKE_JPEG, PlateImage=samples.FAKE_JPEG)
    read = _one_read(genetec.map_genetec(samples.genetec_visits(record), OWNER))
    assert read["images_dropped"] == 2
    assert samples.FAKE_JPEG not in str(read)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"records": []}, "records"),
        ({"records": "x"}, "records"),
        ({"records": [samples.genetec_record()] * (genetec.MAX_RECORDS + 1)}, "records"),
        (samples.genetec_visits(samples.genetec_record(start_cam={"code": None})), "start_cam"),
        (samples.genetec_visits(samples.genetec_record(id=None)), "id"),
        (
            samples.genetec_visits(samples.genetec_record(start_date="2025-12-31T16:00:00")),
            "offset",
        ),
        (samples.genetec_visits(samples.genetec_record(vehicle="6TRJ244")), "vehicle"),
    ],
)
def test_genetec_refusals_name_the_field(body: dict, field: str) -> None:
    error = _error(genetec.map_genetec(body, OWNER))
    assert error.code == SCHEMA_INVALID
    assert field in error.detail
    assert "6TRJ244" not in error.detail


# --- any body ---------------------------------------------------------------------------------

_JUNK: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], {}, [None], {"a": None}, "9" * 40]


def _mutations(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """`body` with a few values, anywhere in it, replaced by junk or deleted."""
    mutated = samples.deep_copy(body)
    for _ in range(rng.randint(1, 4)):
        node: Any = mutated
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = rng.choice(keys)
            child = node[key]
            if isinstance(child, dict | list) and child and rng.random() < 0.5:
                node = child
                continue
            if isinstance(node, dict) and rng.random() < 0.3:
                del node[key]
            else:
                node[key] = rng.choice(_JUNK)
            break
    return mutated


@pytest.mark.parametrize(("name", "body", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_any_mutation_of_a_body_maps_or_is_refused_never_raises(
    name: str, body: Callable[[], dict[str, Any]], expected: dict
) -> None:
    """2,000 random mutations per vendor: each yields a read the engine decides, or an error."""
    rng = random.Random(f"ingest-{name}")
    mapper = FORMATS[name].mapper
    state = PolicyState.create(load_statutes(), [])
    seen = {"mapped": 0, "error": 0}
    for _ in range(2000):
        result = mapper(_mutations(body(), rng), OWNER)
        if isinstance(result, Mapped):
            seen["mapped"] += 1
            for read in result.reads:
                _, decision = _decide(read, state)
                assert isinstance(decision, ReadDecision), (read, decision)
        elif isinstance(result, MappingError):
            seen["error"] += 1
            assert result.code == SCHEMA_INVALID and result.detail
        else:
            assert isinstance(result, Ignored)
    # Both branches are exercised, or the test would prove nothing.
    assert seen["mapped"] > 50 and seen["error"] > 100, seen
