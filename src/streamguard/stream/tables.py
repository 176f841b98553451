"""Registry and owner settings as plain table values, and the PolicyState built from them. Pure.

Tables hold JSON-able dicts, not engine objects: the changelog then stays readable with any
Kafka tool, and a later version of the engine can still read what an older worker wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

from streamguard.core.models import Agency, OwnerSettings
from streamguard.core.policy import PolicyState
from streamguard.core.registry import agency_from_record
from streamguard.core.replay import Decided, ReplayLedger
from streamguard.core.statutes import StatuteBook

__all__ = (
    "DELETED",
    "TableReplayMemory",
    "agency_to_value",
    "build_state",
    "replay_writes",
    "settings_from_value",
    "settings_to_value",
)

# Registry value of an agency deleted by a tombstone on the agencies topic. Kept (rather than
# deleting the key) so that the deletion also hides an entry of the STREAMGUARD_AGENCIES file.
DELETED: Final = {"deleted": True}
_SET_FIELDS: Final = ("share_with", "declaration_on_file")


def agency_to_value(agency: Agency) -> dict[str, Any]:
    return {
        "agency_id": agency.agency_id,
        "name": agency.name,
        "state": agency.state,
        "kind": agency.kind,
        "aliases": list(agency.aliases),
    }


def settings_to_value(settings: OwnerSettings) -> dict[str, Any]:
    value = dataclasses.asdict(settings)
    for name in _SET_FIELDS:
        value[name] = sorted(value[name])
    return value


def settings_from_value(value: Mapping[str, Any]) -> OwnerSettings | None:
    """OwnerSettings from a table value; None when it is not one (never half-applied)."""
    try:
        kwargs = {f.name: value[f.name] for f in dataclasses.fields(OwnerSettings)}
        for name in _SET_FIELDS:
            kwargs[name] = frozenset(kwargs[name])
        return OwnerSettings(**kwargs)
    except (KeyError, TypeError):
        return None


def build_state(
    statutes: StatuteBook,
    file_agencies: Iterable[Agency],
    registry: Iterable[tuple[str, Any]],
    settings: Iterable[tuple[str, Any]],
    revision: int,
) -> PolicyState:
    """The snapshot decisions read: file agencies, overridden by the registry table, plus settings.

    An unreadable table value fails closed: an unreadable agency is left out (its searches get
    UNKNOWN_* codes) and unreadable settings fall back to the default, which shares nothing.
    """
    agencies = {a.agency_id: a for a in file_agencies}
    for agency_id, value in registry:
        if not isinstance(value, Mapping) or value.get("deleted"):
            agencies.pop(agency_id, None)
            continue
        parsed = agency_from_record(value)
        if isinstance(parsed, Agency) and parsed.agency_id == agency_id:
            agencies[agency_id] = parsed
        else:
            agencies.pop(agency_id, None)
    owner_settings: dict[str, OwnerSettings] = {}
    for agency_id, value in settings:
        parsed_settings = settings_from_value(value) if isinstance(value, Mapping) else None
        if parsed_settings is not None:
            owner_settings[agency_id] = parsed_settings
    state = PolicyState.create(statutes, agencies.values(), owner_settings)
    return dataclasses.replace(state, revision=revision)


class TableReplayMemory:
    """The replay memory (`streamguard.core.replay.ReplayMemory`) over two table mappings:
    decided-record key -> `Decided.to_value()`, and subject -> {setting group: last applied ts}.

    A decided value that cannot be read still counts as decided (fail closed: the record is
    refused again). An unreadable last-applied value is skipped: exact replays are still
    refused by the decided-record table.
    """

    __slots__ = ("_applied", "_decided")

    def __init__(self, decided: Mapping[str, Any], applied: Mapping[str, Any]) -> None:
        self._decided = decided
        self._applied = applied

    def decided(self, key: str) -> Decided | None:
        value = self._decided.get(key)
        if value is None:
            return None
        return Decided.from_value(value) or Decided(applied=False, decided_at=0.0)

    def last_applied(self, subject: str, group: str) -> float | None:
        groups = self.applied_value(subject)
        return groups.get(group)

    def applied_value(self, subject: str) -> dict[str, float]:
        """The readable part of `subject`'s last-applied table value."""
        value = self._applied.get(subject)
        if not isinstance(value, Mapping):
            return {}
        return {
            str(group): float(ts)
            for group, ts in value.items()
            if isinstance(ts, int | float) and not isinstance(ts, bool)
        }


def replay_writes(
    ledger: ReplayLedger,
    base: TableReplayMemory | None,
    keys: Iterable[str],
    subjects: Iterable[str],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
    """The table values to write for the decided `keys` and the `subjects` whose last-applied
    ts moved, as `ledger` (over `base`) holds them now."""
    decided = {k: ledger.decided_writes[k].to_value() for k in keys}
    applied: dict[str, dict[str, float]] = {}
    for subject in subjects:
        groups = base.applied_value(subject) if base is not None else {}
        groups.update(ledger.applied_writes_of(subject))
        applied[subject] = groups
    return decided, applied
