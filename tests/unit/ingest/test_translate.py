"""A posted body to its records: reads keyed by owner, quarantine records in the contract's
shape (section 4) without images, multipart forms, and answers that never quote a plate."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from streamguard import serde
from streamguard.core.codes import MALFORMED_EVENT, SCHEMA_INVALID
from streamguard.ingest.body import parse_body
from streamguard.ingest.formats import FORMATS
from streamguard.ingest.images import DROPPED, count_images, without_images
from streamguard.ingest.quarantine import MAPPING_VERSION, RAW_KEEP_BYTES
from streamguard.ingest.translate import Translation, translate
from streamguard.ingest.types import MappingError, VendorFormat
from tests.unit.ingest import samples
from tests.unit.ingest.samples import OWNER

DECIDED_AT = "2026-01-01T00:00:05Z"
QUARANTINE_KEYS = [
    "event_id",
    "kind",
    "reasons",
    "decision_id",
    "decided_at",
    "policy_version",
    "original",
    "owner",
    "source_format",
]


def _translate(name: str, body: Any, content_type: str | None = None) -> Translation:
    raw = body if isinstance(body, bytes) else serde.dumps(body)
    return translate(FORMATS[name], OWNER, raw, content_type, DECIDED_AT)


def _quarantine(result: Translation) -> dict[str, Any]:
    assert [m.topic for m in result.messages] == ["quarantine"]
    record = result.messages[0].value
    assert result.messages[0].key == record["event_id"]
    return record


def test_a_mapped_body_becomes_reads_keyed_by_owner() -> None:
    result = _translate("openalpr", samples.openalpr_group())
    assert (result.outcome, result.status) == ("accepted", 202)
    assert [(m.topic, m.key) for m in result.messages] == [("reads", samples.OWNER_ID)]
    assert result.reads == (samples.OPENALPR_READ,)
    assert result.answer == {"accepted": 1, "read_ids": [samples.OPENALPR_READ["read_id"]]}
    assert result.images_dropped == 2


def test_a_heartbeat_is_answered_and_sends_nothing() -> None:
    result = _translate("openalpr", {"data_type": "heartbeat", "agent_uid": samples.AGENT_UID})
    assert (result.outcome, result.status, result.messages) == ("ignored", 200, ())
    assert result.answer == {"ignored": "heartbeat"}


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"plate=8ABC123", "not JSON"),
        (b"\xff\xd8\xff\xe0 a jpeg", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'"8ABC123"', "not an object"),
        (b"", "not JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_malformed(raw: bytes, detail: str) -> None:
    result = _translate("axis", raw)
    assert (result.outcome, result.status, result.code) == ("malformed", 400, MALFORMED_EVENT)
    record = _quarantine(result)
    assert record["kind"] == "raw"
    assert record["reasons"][0]["code"] == MALFORMED_EVENT
    assert detail in record["reasons"][0]["detail"]
    assert record["original"] == {
        "raw_base64": base64.b64encode(raw).decode(),
        "raw_size": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
    }
    assert "8ABC123" not in json.dumps(result.answer)


def test_a_large_unreadable_body_keeps_only_its_first_bytes() -> None:
    """Enough to tell what it was, never enough to hold a picture."""
    raw = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 400
    original = _quarantine(_translate("axis", raw))["original"]
    assert base64.b64decode(original["raw_base64"]) == raw[:RAW_KEEP_BYTES]
    assert original["truncated"] is True
    assert original["raw_size"] == len(raw)
    assert original["raw_sha256"] == hashlib.sha256(raw).hexdigest()


def test_an_unmappable_body_is_a_contract_quarantine_record_without_its_images() -> None:
    body = samples.openalpr_group(best_plate_number="8AB*123")
    result = _translate("openalpr", body)
    assert (result.outcome, result.status, result.code) == ("schema_invalid", 422, SCHEMA_INVALID)
    record = _quarantine(result)
    assert list(record) == QUARANTINE_KEYS
    assert record["kind"] == "raw"
    assert record["event_id"] == samples.OPENALPR_READ["read_id"]
    assert record["decided_at"] == DECIDED_AT
    assert record["policy_version"] == MAPPING_VERSION
    assert (record["owner"], record["source_format"]) == (samples.OWNER_ID, "openalpr")
    [reason] = record["reasons"]
    assert set(reason) == {"code", "citation", "detail"}
    assert reason["code"] == SCHEMA_INVALID and "best_plate_number" in reason["detail"]
    # The original is the body, images replaced: every other field is kept for the operator.
    assert record["original"]["vehicle_crop_jpeg"] == DROPPED
    assert record["original"]["best_plate"]["plate_crop_jpeg"] == DROPPED
    assert samples.FAKE_JPEG not in json.dumps(record)
    assert record["original"]["camera_id"] == body["camera_id"]
    assert result.answer == {
        "error": SCHEMA_INVALID,
        "detail": reason["detail"],
        "quarantine_id": record["event_id"],
    }


def test_a_retried_bad_body_names_the_same_quarantine_record() -> None:
    """Consumers drop the copy by event_id / decision_id, as for worker records."""
    for raw in (b"not json", serde.dumps(samples.genetec_visits(samples.genetec_record(id=None)))):
        first = _quarantine(_translate("genetec", raw))
        again = _quarantine(translate(FORMATS["genetec"], OWNER, raw, None, "2027-01-01T00:00:00Z"))
        assert (first["event_id"], first["decision_id"]) == (
            again["event_id"],
            again["decision_id"],
        )
    other = _quarantine(_translate("genetec", b"not json either"))
    assert other["event_id"] != first["event_id"]


def test_a_mapper_fault_refuses_the_body_and_logs_no_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(body: Any, owner: Any) -> Any:
        raise ValueError(f"bad plate {body['plate']}")

    fmt = VendorFormat("openalpr", broken, lambda key: False)
    result = translate(fmt, OWNER, b'{"plate": "8ABC123"}', None, DECIDED_AT)
    assert (result.outcome, result.code) == ("schema_invalid", SCHEMA_INVALID)
    assert "ValueError" in caplog.text
    assert "8ABC123" not in caplog.text


def _multipart(parts: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = "sgboundary42"
    chunks = []
    for name, kind, data in parts:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            f"Content-Type: {kind}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def test_an_axis_multipart_post_keeps_the_json_and_counts_its_images() -> None:
    raw, content_type = _multipart(
        [
            ("json", "application/json", serde.dumps(samples.axis_event())),
            ("plate", "image/jpeg", base64.b64decode(samples.FAKE_JPEG)),
            ("car", "image/jpeg", base64.b64decode(samples.FAKE_JPEG)),
        ]
    )
    result = _translate("axis", raw, content_type)
    assert result.outcome == "accepted"
    [read] = result.reads
    assert read == {**samples.AXIS_READ, "images_dropped": 4}  # 2 URIs + 2 image parts
    assert result.images_dropped == 4


def test_a_multipart_post_without_a_json_part_is_malformed() -> None:
    raw, content_type = _multipart([("plate", "image/jpeg", b"\xff\xd8\xff")])
    result = _translate("axis", raw, content_type)
    assert (result.outcome, result.code) == ("malformed", MALFORMED_EVENT)
    assert "no JSON object part" in result.answer["detail"]


def test_parse_body_reads_json_whatever_the_content_type_says() -> None:
    """Cameras send JSON as text/plain or application/x-www-form-urlencoded."""
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        parsed = parse_body(b'{"a": 1}', content_type)
        assert not isinstance(parsed, MappingError)
        assert parsed.value == {"a": 1}


def test_parse_body_refuses_a_broken_multipart_header() -> None:
    parsed = parse_body(b"--x\r\n\r\n{}", "multipart/form-data; boundary=\u2603")
    assert isinstance(parsed, MappingError) and parsed.code == MALFORMED_EVENT


def test_images_are_counted_and_stripped_at_any_depth() -> None:
    body = {
        "a_jpeg": "x",
        "empty_jpeg": "",
        "list": [{"b_jpeg": "y"}, {"c": {"d_jpeg": "z"}}],
        "keep": "w",
    }
    assert count_images(body, lambda k: k.endswith("_jpeg")) == 3
    assert without_images(body, lambda k: k.endswith("_jpeg")) == {
        "a_jpeg": DROPPED,
        "empty_jpeg": "",
        "list": [{"b_jpeg": DROPPED}, {"c": {"d_jpeg": DROPPED}}],
        "keep": "w",
    }
