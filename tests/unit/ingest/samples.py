"""Vendor bodies for the ingest tests, written for them from the vendors' documented layouts.

Plates, ids, places and images are invented; every body maps to a read of the same instant,
2026-01-01T00:00:00.x UTC (2025-12-31 16:00 in Los Angeles), so the tests can compare times.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from streamguard.ingest.types import Owner

OWNER_ID = "ca-ventura-county-so"
SHARE_TO = ("ca-oxnard-pd", "ca-simi-valley-pd")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
OWNER = Owner(OWNER_ID, SHARE_TO, LOS_ANGELES)
# Base64 of the first bytes of a JPEG: enough to be recognisably an image field.
FAKE_JPEG = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U"

AGENT_UID = "TESTAGENT0000000000000000000000000000001"
OPENALPR_PLATE = "8ABC123"


def openalpr_group(**overrides: Any) -> dict[str, Any]:
    """A Rekor Scout `alpr_group` webhook body (docs.rekor.ai, JSON Group Results)."""
    body: dict[str, Any] = {
        "data_type": "alpr_group",
        "version": 2,
        "epoch_start": 1767225600123,
        "epoch_end": 1767225601456,
        "frame_start": 1200,
        "frame_end": 1236,
        "company_id": "00000000-0000-4000-8000-000000000001",
        "agent_uid": AGENT_UID,
        "agent_version": "4.1.1",
        "agent_type": "alprd",
        "camera_id": 1234567,
        "gps_latitude": 34.2746,
        "gps_longitude": -119.229,
        "country": "us",
        "uuids": [f"{AGENT_UID}-1234567-1767225600123", f"{AGENT_UID}-1234567-1767225600500"],
        "plate_indexes": [0, 0],
        "candidates": [{"plate": "8ABC123", "confidence": 94.12, "matches_template": 0}],
        "vehicle_crop_jpeg": FAKE_JPEG,
        "best_plate": {
            "plate": "8ABC123",
            "confidence": 94.12,
            "matches_template": 0,
            "plate_index": 0,
            "region": "us-ca",
            "region_confidence": 97,
            "processing_time_ms": 18.5,
            "requested_topn": 10,
            "coordinates": [{"x": 600, "y": 400}, {"x": 700, "y": 398}],
            "plate_crop_jpeg": FAKE_JPEG,
            "vehicle_region": {"x": 300, "y": 120, "width": 800, "height": 600},
            "vehicle_detected": True,
            "candidates": [{"plate": "8ABC123", "confidence": 94.12, "matches_template": 0}],
        },
        "best_confidence": 94.12,
        "best_uuid": f"{AGENT_UID}-1234567-1767225600500",
        "best_plate_number": OPENALPR_PLATE,
        "best_region": "us-ca",
        "best_region_confidence": 97.0,
        "matches_template": False,
        "best_image_width": 1920,
        "best_image_height": 1080,
        "travel_direction": 270.5,
        "is_parked": False,
        "is_preview": False,
        "vehicle": {
            "color": [{"name": "silver", "confidence": 71.2}],
            "make": [{"name": "toyota", "confidence": 66.0}],
            "body_type": [{"name": "sedan-standard", "confidence": 90.1}],
        },
        "web_server_config": {"camera_label": "harbor-blvd-nb", "agent_label": "site-1"},
        "direction_of_travel_id": 2,
    }
    body.update(overrides)
    return body


OPENALPR_READ: dict[str, Any] = {
    "type": "plate_read",
    "read_id": "446cc5d3-80de-588d-91df-71469c38ca44",
    "ts": "2026-01-01T00:00:00.123Z",
    "agency_id": OWNER_ID,
    "camera_id": "1234567",
    "plate": "8ABC123",
    "plate_state": "CA",
    "confidence": 0.9412,
    "location": {"lat": 34.2746, "lon": -119.229},
    "hotlist_hit": False,
    "share_to": list(SHARE_TO),
    "source_format": "openalpr",
    "images_dropped": 2,
}

AXIS_SERIAL = "B8A44F000001"


def axis_event(**overrides: Any) -> dict[str, Any]:
    """An AXIS License Plate Verifier HTTP push event (a `lost` event, strings as sent)."""
    body: dict[str, Any] = {
        "packetCounter": "20931",
        "capture_timestamp": "1767225600252",
        "frame_timestamp": "0",
        "capture_ts": "1767225600252000000",
        "datetime": "20251231 160000252",
        "plateText": "7xyz 890",
        "plateUnicode": "7xyz 890",
        "plateUTF8": "7xyz 890",
        "plateASCII": "7xyz 890",
        "plateCountry": "USA",
        "plateRegion": "CA",
        "plateConfidence": "0.871234",
        "carState": "lost",
        "roiID": "1",
        "geotag": {"lat": 34.2801, "lon": -119.2945},
        "imageType": "plate",
        "plateImageType": "jpg",
        "plateImageSize": "0",
        "carMoveDirection": "out",
        "timeProcessing": "0",
        "plateCoordinates": [900, 540, 160, 34],
        "plateCoordinatesRelative": [880, 200, 160, 34],
        "carID": "52211",
        "GEOtarget": "Camera",
        "imagesURI": [
            "/local/fflprapp/tools.cgi?action=getImage&name=52211_lp.jpg",
            "/local/fflprapp/tools.cgi?action=getImage&name=52211_car.jpg",
        ],
        "camera_info": {
            "SerialNumber": AXIS_SERIAL,
            "ProdShortName": "AXIS P1455-LE-3",
            "MACAddress": "B8:A4:4F:00:00:01",
        },
        "sensorProviderID": "defaultID_1",
    }
    body.update(overrides)
    return body


AXIS_READ: dict[str, Any] = {
    "type": "plate_read",
    "read_id": "b99a8974-d660-5a0f-bc40-bacdbc871b48",
    "ts": "2026-01-01T00:00:00.252Z",
    "agency_id": OWNER_ID,
    "camera_id": AXIS_SERIAL,
    "plate": "7XYZ890",
    "plate_state": "CA",
    "confidence": 0.8712,
    "location": {"lat": 34.2801, "lon": -119.2945},
    "hotlist_hit": False,
    "share_to": list(SHARE_TO),
    "source_format": "axis",
    "images_dropped": 2,
}

GENETEC_CAMERA = "AUTOVU-0042 - Camera"


def genetec_record(visit_id: int = 4410021, **overrides: Any) -> dict[str, Any]:
    """One AutoVu read as ParkPow records the visit it opened."""
    record: dict[str, Any] = {
        "id": visit_id,
        "vehicle": {"license_plate": "6trj-244"},
        "start_cam": {
            "code": GENETEC_CAMERA,
            "name": GENETEC_CAMERA,
            "type": 0,
            "latitude": 34.2832,
            "longitude": -119.2901,
        },
        "start_data": {
            "direction": 90,
            "region": "us-ca",
            "plate": "6trj-244",
            "dscore": 0.98,
            "score": 0.912,
            "orientation": [{"orientation": "Rear", "score": 0.9}],
        },
        "status": "Created - New visit created",
        "score": 0.912,
        "start_date": "2025-12-31T16:00:00.400-08:00",
        "last_spotted": "2025-12-31T16:00:03-08:00",
    }
    record.update(overrides)
    return record


def genetec_visits(*records: dict[str, Any]) -> dict[str, Any]:
    """A ParkPow visits body: `{"records": [...]}`."""
    return {"records": list(records) if records else [genetec_record()]}


GENETEC_READ: dict[str, Any] = {
    "type": "plate_read",
    "read_id": "33f8a7a9-69b6-53ae-8c58-b6785e057f65",
    "ts": "2026-01-01T00:00:00.400Z",
    "agency_id": OWNER_ID,
    "camera_id": GENETEC_CAMERA,
    "plate": "6TRJ244",
    "plate_state": "CA",
    "confidence": 0.912,
    "location": {"lat": 34.2832, "lon": -119.2901},
    "hotlist_hit": False,
    "share_to": list(SHARE_TO),
    "source_format": "genetec",
    "images_dropped": 0,
}


TOKEN = "test-token-of-the-ventura-cameras-0001"
SECRET = "test-secret-of-the-ventura-gateway-0123456789"


def write_owners_file(path: Path) -> Path:
    """The owners file of OWNER: its recipients and zone, a bearer TOKEN and an HMAC SECRET."""
    entry = {
        "share_to": list(SHARE_TO),
        "timezone": "America/Los_Angeles",
        "credentials": [
            {"id": "ventura-cam", "bearer_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()},
            {"id": "ventura-gw", "hmac_sha256_secret": SECRET},
        ],
    }
    path.write_text(json.dumps({OWNER_ID: entry}), encoding="utf-8")
    return path


def deep_copy(value: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(value)
