"""State ALPR statutes as data: loaded once from the package, read-only afterwards.

Each provision carries its citation and whether its text was checked against the primary source
(`verified`). Unverified provisions are enforced only when the caller asks for them, which is the
default: an unverified restriction that turns out wrong denies a lawful search, while a missing
one lets an unlawful search through, and StreamGuard fails closed.

The loader is strict: a key it does not know, a value of the wrong type, a category or agency
kind no rule reads, is an error naming where it is. A misspelt key that was silently dropped
would be a restriction that silently does not exist.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal, TypeVar, cast

from streamguard.core.codes import CATEGORY_CODES
from streamguard.core.models import AGENCY_KINDS, FEDERAL_STATE
from streamguard.core.registry import US_STATES

__all__ = (
    "NEUTRAL",
    "REQUESTER_CLASSES",
    "AccessLogRule",
    "KindRule",
    "LawDate",
    "Provision",
    "RecipientRule",
    "Retention",
    "ShieldRule",
    "StateRule",
    "StatuteBook",
    "load_statutes",
)

RecipientPolicy = Literal["allowed", "forbidden", "declaration"]
_RECIPIENT_POLICIES: Final = frozenset(("allowed", "forbidden", "declaration"))
# Who a shield law protects the data from: requesters of another state (any kind but federal)
# and federal agencies. The owner's own state's agencies are never in this list.
RequesterClass = Literal["out_of_state", "federal"]
REQUESTER_CLASSES: Final[frozenset[str]] = frozenset(("out_of_state", "federal"))


@dataclass(frozen=True, slots=True)
class Provision:
    citation: str
    verified: bool

    @property
    def cited(self) -> str:
        """The citation as shown to users, marked when its text was not checked."""
        return self.citation if self.verified else f"{self.citation} [unverified]"


@dataclass(frozen=True, slots=True)
class RecipientRule:
    rule: RecipientPolicy
    provision: Provision
    # For `declaration`: the only states whose recipients may qualify by a declaration; a
    # recipient of any other state is forbidden. None: every other state may qualify.
    allowed_states: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Retention:
    days: float
    text: str
    provision: Provision
    # Reads that matched a hotlist (wanted, missing, stolen) are kept past the limit: the
    # statute's purge exempts them. Searches are not exempt: a window past the limit asks for
    # every read of the period, not only the exempt ones.
    hotlist_exempt: bool = False


@dataclass(frozen=True, slots=True)
class KindRule:
    kinds: frozenset[str]
    provision: Provision


@dataclass(frozen=True, slots=True)
class AccessLogRule:
    fields: tuple[str, ...]
    provision: Provision


@dataclass(frozen=True, slots=True)
class ShieldRule:
    """A purpose the owner's law bars only for some requesters.

    A shield law such as Cal. Penal Code § 13778.2(b) forbids helping other states' and federal
    agencies with lawful health care, while the owner's own state may still investigate crimes
    near a clinic; barring the purpose for every requester would deny those lawful searches.
    """

    category: str
    provision: Provision
    requesters: frozenset[str]  # members of REQUESTER_CLASSES


@dataclass(frozen=True, slots=True)
class LawDate:
    """When a state's rule took (or takes) effect, or is set to lapse, and the source for it.

    Shown by `streamguard law`; the engine enforces every provision on file whatever the date,
    so a rule whose date passes is changed in the data, not by the clock.
    """

    date: dt.date
    provision: Provision


_P = TypeVar("_P", RecipientRule, Retention, KindRule, AccessLogRule)


@dataclass(frozen=True, slots=True)
class StateRule:
    """What one state's law says about sharing its agencies' ALPR data."""

    state: str
    name: str
    out_of_state: RecipientRule | None = None
    federal: RecipientRule | None = None
    private: RecipientRule | None = None
    eligible_kinds: KindRule | None = None
    # Purposes barred for every requester, as (classifier category, provision).
    prohibited_purposes: tuple[tuple[str, Provision], ...] = ()
    # Purposes barred for some requesters only (shield laws).
    shielded_purposes: tuple[ShieldRule, ...] = ()
    retention: Retention | None = None
    documented_purpose: Provision | None = None
    access_log: AccessLogRule | None = None
    in_force: LawDate | None = None
    sunset: LawDate | None = None

    def restricted(self, enforce_unverified: bool) -> StateRule:
        """This rule without the provisions the caller chose not to enforce."""
        if enforce_unverified:
            return self

        def keep(item: _P | None) -> _P | None:
            return item if item is not None and item.provision.verified else None

        return StateRule(
            state=self.state,
            name=self.name,
            out_of_state=keep(self.out_of_state),
            federal=keep(self.federal),
            private=keep(self.private),
            eligible_kinds=keep(self.eligible_kinds),
            prohibited_purposes=tuple(p for p in self.prohibited_purposes if p[1].verified),
            shielded_purposes=tuple(p for p in self.shielded_purposes if p.provision.verified),
            retention=keep(self.retention),
            documented_purpose=(
                self.documented_purpose
                if self.documented_purpose is not None and self.documented_purpose.verified
                else None
            ),
            access_log=keep(self.access_log),
            in_force=self.in_force,
            sunset=self.sunset,
        )


NEUTRAL: Final = StateRule(state="*", name="no ALPR sharing statute on file")


@dataclass(frozen=True, slots=True)
class StatuteBook:
    """All state rules plus the baseline every owner gets."""

    version: str
    states: dict[str, StateRule]
    missing_purpose: Provision

    def rule_for(self, state: str) -> StateRule:
        return self.states.get(state, NEUTRAL)


class _Reader:
    """Reads one JSON object of the data, failing with the path of anything it cannot use."""

    def __init__(
        self, raw: object, path: str, required: tuple[str, ...], optional: tuple[str, ...]
    ):
        if not isinstance(raw, Mapping):
            msg = f"statute data: {path} must be an object"
            raise ValueError(msg)
        unknown = sorted(set(raw) - set(required) - set(optional))
        if unknown:
            msg = (
                f"statute data: {path} has unknown key(s) {', '.join(map(repr, unknown))}; "
                f"expected {', '.join((*required, *optional))}"
            )
            raise ValueError(msg)
        missing = [key for key in required if key not in raw]
        if missing:
            msg = f"statute data: {path} lacks {', '.join(map(repr, missing))}"
            raise ValueError(msg)
        self.raw: Mapping[str, Any] = raw
        self.path = path

    def fail(self, key: str, expected: str) -> ValueError:
        return ValueError(f"statute data: {self.path}.{key} must be {expected}")

    def text(self, key: str) -> str:
        value = self.raw[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def number(self, key: str) -> float:
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self.fail(key, "a positive number")
        return float(value)

    def names(self, key: str, allowed: frozenset[str], what: str) -> frozenset[str]:
        value = self.raw[key]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v in allowed for v in value)
        ):
            raise self.fail(key, f"a non-empty list of {what} ({', '.join(sorted(allowed))})")
        return frozenset(value)

    def provision(self) -> Provision:
        return Provision(citation=self.text("citation"), verified=self.flag("verified"))


_PROVISION_KEYS: Final = ("citation", "verified")
_STATE_CODES: Final = US_STATES - {FEDERAL_STATE}


def _recipient(raw: object, path: str) -> RecipientRule:
    reader = _Reader(raw, path, ("rule", *_PROVISION_KEYS), ("allowed_states",))
    rule = reader.raw["rule"]
    if rule not in _RECIPIENT_POLICIES:
        msg = f"statute data: {path}: unknown recipient rule {rule!r}"
        raise ValueError(msg)
    allowed = None
    if "allowed_states" in reader.raw:
        if rule != "declaration":
            raise reader.fail("allowed_states", "set only with the rule 'declaration'")
        allowed = reader.names("allowed_states", _STATE_CODES, "state codes")
    return RecipientRule(
        rule=cast(RecipientPolicy, rule), provision=reader.provision(), allowed_states=allowed
    )


def _purposes(raw: object, path: str) -> tuple[list[tuple[str, Provision]], list[ShieldRule]]:
    if not isinstance(raw, list):
        msg = f"statute data: {path} must be a list"
        raise ValueError(msg)
    everyone: list[tuple[str, Provision]] = []
    some: list[ShieldRule] = []
    categories = frozenset(CATEGORY_CODES)
    for index, item in enumerate(raw):
        reader = _Reader(item, f"{path}[{index}]", ("category", *_PROVISION_KEYS), ("applies_to",))
        category = reader.text("category")
        if category not in categories:
            raise reader.fail("category", f"one of {', '.join(sorted(categories))}")
        if any(category == c for c, _ in everyone) or any(category == r.category for r in some):
            raise reader.fail("category", f"listed once ({category!r} is listed twice)")
        if "applies_to" in reader.raw:
            requesters = reader.names("applies_to", REQUESTER_CLASSES, "requester classes")
            some.append(ShieldRule(category, reader.provision(), requesters))
        else:
            everyone.append((category, reader.provision()))
    return everyone, some


def _date(raw: object, path: str) -> LawDate:
    reader = _Reader(raw, path, ("date", *_PROVISION_KEYS), ())
    try:
        date = dt.date.fromisoformat(reader.text("date"))
    except ValueError:
        raise reader.fail("date", "an ISO date (YYYY-MM-DD)") from None
    return LawDate(date, reader.provision())


_STATE_KEYS: Final = (
    "out_of_state",
    "federal",
    "private",
    "eligible_kinds",
    "prohibited_purposes",
    "retention",
    "documented_purpose",
    "access_log",
    "in_force",
    "sunset",
)
_LOG_FIELDS: Final = frozenset(("date_time", "query", "user", "organization", "purpose"))


def _state_rule(state: str, raw: object) -> StateRule:
    path = f"states.{state}"
    body = _Reader(raw, path, ("name",), _STATE_KEYS)
    fields = body.raw

    def recipient(key: str) -> RecipientRule | None:
        return _recipient(fields[key], f"{path}.{key}") if key in fields else None

    kinds = None
    if "eligible_kinds" in fields:
        reader = _Reader(
            fields["eligible_kinds"], f"{path}.eligible_kinds", ("kinds", *_PROVISION_KEYS), ()
        )
        kinds = KindRule(reader.names("kinds", AGENCY_KINDS, "agency kinds"), reader.provision())
    everyone, some = (
        _purposes(fields["prohibited_purposes"], f"{path}.prohibited_purposes")
        if "prohibited_purposes" in fields
        else ([], [])
    )
    retention = None
    if "retention" in fields:
        reader = _Reader(
            fields["retention"],
            f"{path}.retention",
            ("days", "text", *_PROVISION_KEYS),
            ("hotlist_exempt",),
        )
        retention = Retention(
            reader.number("days"),
            reader.text("text"),
            reader.provision(),
            hotlist_exempt=reader.flag("hotlist_exempt"),
        )
    documented = None
    if "documented_purpose" in fields:
        documented = _Reader(
            fields["documented_purpose"], f"{path}.documented_purpose", _PROVISION_KEYS, ()
        ).provision()
    log = None
    if "access_log" in fields:
        reader = _Reader(
            fields["access_log"], f"{path}.access_log", ("fields", *_PROVISION_KEYS), ()
        )
        reader.names("fields", _LOG_FIELDS, "access-log fields")
        # The data's order is the order reports list the fields in.
        log = AccessLogRule(tuple(dict.fromkeys(reader.raw["fields"])), reader.provision())
    rule = StateRule(
        state=state,
        name=body.text("name"),
        out_of_state=recipient("out_of_state"),
        federal=recipient("federal"),
        private=recipient("private"),
        eligible_kinds=kinds,
        prohibited_purposes=tuple(everyone),
        shielded_purposes=tuple(some),
        retention=retention,
        documented_purpose=documented,
        access_log=log,
        in_force=_date(fields["in_force"], f"{path}.in_force") if "in_force" in fields else None,
        sunset=_date(fields["sunset"], f"{path}.sunset") if "sunset" in fields else None,
    )
    if state not in _STATE_CODES:
        msg = f"statute data: {path}: {state!r} is not a two-letter US state code"
        raise ValueError(msg)
    return rule


def load_statutes(*, enforce_unverified: bool = True, text: str | None = None) -> StatuteBook:
    """Load the packaged statute data (or `text`, for tests of the loader itself)."""
    if text is None:
        text = resources.files("streamguard").joinpath("core/data/statutes.json").read_text("utf-8")
    top = _Reader(
        json.loads(text),
        "the top level",
        ("version", "baseline", "states"),
        ("sources", "months_as_days"),
    )
    baseline = _Reader(top.raw["baseline"], "baseline", ("missing_purpose",), ("name",))
    missing = _Reader(
        baseline.raw["missing_purpose"], "baseline.missing_purpose", _PROVISION_KEYS, ()
    )
    if "months_as_days" in top.raw and top.number("months_as_days") != 30:
        # Limits written in months were converted at 30 days a month; another figure would
        # mean the data's day counts no longer say what its texts say.
        raise top.fail("months_as_days", "30")
    states_raw = top.raw["states"]
    if not isinstance(states_raw, Mapping):
        msg = "statute data: states must be an object"
        raise ValueError(msg)
    states = {
        code: _state_rule(code, body).restricted(enforce_unverified)
        for code, body in states_raw.items()
    }
    return StatuteBook(
        version=top.text("version"),
        states=states,
        missing_purpose=missing.provision(),
    )
