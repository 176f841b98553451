"""The values vendor mappers take and return. Plain frozen data, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from streamguard.core.codes import MALFORMED_EVENT, SCHEMA_INVALID

__all__ = (
    "Ignored",
    "MapResult",
    "Mapped",
    "Mapper",
    "MappingError",
    "Owner",
    "VendorFormat",
)


@dataclass(frozen=True, slots=True)
class Owner:
    """The camera owner a body is posted for: known from its credential, never from the body."""

    agency_id: str
    share_to: tuple[str, ...] = ()
    # Zone of camera-local times (Axis `datetime`); None: such times are refused.
    zone: tzinfo | None = None


@dataclass(frozen=True, slots=True)
class Mapped:
    """A body mapped to one or more contract `plate_read` events."""

    reads: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Ignored:
    """A body that is well formed but is not a read (a heartbeat, a preview of a later read)."""

    reason: str


@dataclass(frozen=True, slots=True)
class MappingError:
    """Why a body cannot be mapped; `detail` never quotes a value of the body."""

    code: str
    detail: str
    # The read_id the body would have had, when its vendor ids could be read.
    event_id: str | None = None

    @classmethod
    def malformed(cls, detail: str) -> MappingError:
        return cls(MALFORMED_EVENT, detail)

    @classmethod
    def invalid(cls, detail: str, event_id: str | None = None) -> MappingError:
        return cls(SCHEMA_INVALID, detail, event_id)


MapResult = Mapped | Ignored | MappingError
Mapper = Callable[[Mapping[str, Any], Owner], MapResult]


@dataclass(frozen=True, slots=True)
class VendorFormat:
    """One vendor's body layout: its mapper and which of its keys hold images."""

    name: str
    mapper: Mapper
    is_image_key: Callable[[str], bool]
