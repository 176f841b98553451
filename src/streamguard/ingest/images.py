"""Images and crops in vendor bodies: counted, never forwarded, never stored. Pure.

Mappers build each plate_read from named fields only, so an image can never reach the reads
topic; these helpers count what was dropped (the read says how many) and take images out of a
body before it is kept as a quarantine copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ("DROPPED", "count_images", "without_images")

DROPPED: Final = "[image dropped]"
# Bodies are parsed JSON from cameras: a pathological nesting depth must not recurse forever.
_MAX_DEPTH: Final = 32


def _images_in(value: Any) -> int:
    if isinstance(value, list):
        return sum(1 for item in value if item not in (None, "", [], {}))
    return 0 if value in (None, "", [], {}) else 1


def count_images(value: Any, is_image_key: Callable[[str], bool], _depth: int = 0) -> int:
    """How many images (or image URIs) the body holds under keys `is_image_key` accepts."""
    if _depth > _MAX_DEPTH or not isinstance(value, dict | list):
        return 0
    found = 0
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and is_image_key(key):
            found += _images_in(item)
        elif isinstance(item, dict | list) and item:
            # Only containers are walked: most values are scalars, and a call each is the cost.
            found += count_images(item, is_image_key, _depth + 1)
    return found


def without_images(value: Any, is_image_key: Callable[[str], bool], _depth: int = 0) -> Any:
    """A copy of the body with every image value replaced by `DROPPED`."""
    if _depth > _MAX_DEPTH:
        # Deeper than any vendor body: kept out rather than copied unchecked.
        return DROPPED
    if isinstance(value, dict):
        return {
            key: (
                DROPPED
                if isinstance(key, str) and is_image_key(key) and _images_in(item)
                else without_images(item, is_image_key, _depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [without_images(item, is_image_key, _depth + 1) for item in value]
    return value
