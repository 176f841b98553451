"""State ALPR statutes as data: loaded once from the package, read-only afterwards.

Each provision carries its citation and whether its text was checked against the primary source
(`verified`). Unverified provisions are enforced only when the caller asks for them, which is the
default: an unverified restriction that turns out wrong denies a lawful search, while a missing
one lets an unlawful search through, and StreamGuard fails closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal, TypeVar

__all__ = (
    "NEUTRAL",
    "Provision",
    "RecipientRule",
    "StateRule",
    "StatuteBook",
    "load_statutes",
)

RecipientPolicy = Literal["allowed", "forbidden", "declaration"]
_RECIPIENT_POLICIES: Final = frozenset(("allowed", "forbidden", "declaration"))


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


@dataclass(frozen=True, slots=True)
class Retention:
    days: float
    text: str
    provision: Provision


@dataclass(frozen=True, slots=True)
class KindRule:
    kinds: frozenset[str]
    provision: Provision


@dataclass(frozen=True, slots=True)
class AccessLogRule:
    fields: tuple[str, ...]
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
    prohibited_purposes: tuple[tuple[str, Provision], ...] = ()
    retention: Retention | None = None
    documented_purpose: Provision | None = None
    access_log: AccessLogRule | None = None

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
            retention=keep(self.retention),
            documented_purpose=(
                self.documented_purpose
                if self.documented_purpose is not None and self.documented_purpose.verified
                else None
            ),
            access_log=keep(self.access_log),
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


def _provision(raw: dict[str, Any]) -> Provision:
    return Provision(citation=str(raw["citation"]), verified=bool(raw["verified"]))


def _recipient(raw: dict[str, Any] | None) -> RecipientRule | None:
    if raw is None:
        return None
    rule = raw["rule"]
    if rule not in _RECIPIENT_POLICIES:
        msg = f"unknown recipient rule {rule!r}"
        raise ValueError(msg)
    return RecipientRule(rule=rule, provision=_provision(raw))


def _state_rule(state: str, raw: dict[str, Any]) -> StateRule:
    retention = raw.get("retention")
    kinds = raw.get("eligible_kinds")
    log = raw.get("access_log")
    purpose = raw.get("documented_purpose")
    return StateRule(
        state=state,
        name=str(raw["name"]),
        out_of_state=_recipient(raw.get("out_of_state")),
        federal=_recipient(raw.get("federal")),
        private=_recipient(raw.get("private")),
        eligible_kinds=(
            KindRule(frozenset(kinds["kinds"]), _provision(kinds)) if kinds is not None else None
        ),
        prohibited_purposes=tuple(
            (str(p["category"]), _provision(p)) for p in raw.get("prohibited_purposes", ())
        ),
        retention=(
            Retention(float(retention["days"]), str(retention["text"]), _provision(retention))
            if retention is not None
            else None
        ),
        documented_purpose=_provision(purpose) if purpose is not None else None,
        access_log=(
            AccessLogRule(tuple(log["fields"]), _provision(log)) if log is not None else None
        ),
    )


def load_statutes(*, enforce_unverified: bool = True, text: str | None = None) -> StatuteBook:
    """Load the packaged statute data (or `text`, for tests of the loader itself)."""
    if text is None:
        text = resources.files("streamguard").joinpath("core/data/statutes.json").read_text("utf-8")
    raw = json.loads(text)
    states = {
        code: _state_rule(code, body).restricted(enforce_unverified)
        for code, body in raw["states"].items()
    }
    return StatuteBook(
        version=str(raw["version"]),
        states=states,
        missing_purpose=_provision(raw["baseline"]["missing_purpose"]),
    )
