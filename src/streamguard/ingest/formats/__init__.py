"""The vendor body layouts StreamGuard maps to `plate_read`, by the name used in URLs and flags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from streamguard.ingest.formats import axis, genetec, openalpr
from streamguard.ingest.types import VendorFormat

__all__ = ("FORMATS", "FORMAT_NAMES")

FORMATS: Final[Mapping[str, VendorFormat]] = {
    f.name: f for f in (openalpr.FORMAT, axis.FORMAT, genetec.FORMAT)
}
FORMAT_NAMES: Final = tuple(FORMATS)
