"""The statute data as an auditor reads it: each provision of a state, what StreamGuard does with
it, its citation and whether its text was checked (`streamguard law STATE`).

Pure text from a `StatuteBook` loaded with every provision (unverified ones included), so that
a provision switched off by `--no-unverified` is still listed, marked as not enforced, instead of
silently missing from the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Final

from streamguard.core import codes
from streamguard.core.models import FEDERAL_STATE
from streamguard.core.registry import US_STATES
from streamguard.core.statutes import (
    LawDate,
    Provision,
    RecipientRule,
    StateRule,
    StatuteBook,
)
from streamguard.exceptions import StreamguardError

__all__ = ("describe_book", "describe_state", "state_code")

_REQUESTERS: Final = {"out_of_state": "out-of-state", "federal": "federal"}


def state_code(text: str) -> str:
    """The two-letter code of `text` (any case), or an error naming what was given."""
    code = text.strip().upper()
    if code not in US_STATES:
        msg = f"not a two-letter US state code: {text!r}"
        raise StreamguardError(msg)
    return code


def _marks(provision: Provision, enforceable: bool, enforce_unverified: bool) -> Iterator[str]:
    yield f"  citation: {provision.citation}"
    if provision.verified:
        yield "  verified: yes"
    elif not enforceable:
        yield "  verified: no"
    elif enforce_unverified:
        yield "  verified: no (enforced: StreamGuard fails closed)"
    else:
        yield "  verified: no (NOT enforced: --no-unverified)"


def _recipients(who: str, rule: RecipientRule, code: str) -> str:
    if rule.rule == "forbidden":
        return f"{who} recipients: forbidden -> {code}"
    if rule.rule == "allowed":
        return f"{who} recipients: allowed"
    declared = f"only with their written declaration on file -> {codes.NO_DECLARATION_ON_FILE}"
    if rule.allowed_states is None:
        return f"{who} recipients: {declared}"
    states = ", ".join(sorted(rule.allowed_states))
    return f"{who} recipients: from {states} {declared}; from any other state forbidden -> {code}"


def _date_line(label: str, date: LawDate, today: dt.date) -> str:
    days = (date.date - today).days
    if label == "in force":
        if days > 0:
            return f"in force: from {date.date} (in {days} days); StreamGuard enforces it already"
        return f"in force: since {date.date}"
    if days > 0:
        return f"repeal: set for {date.date} (in {days} days); enforced until the data changes"
    return f"repeal: set for {date.date}, which has passed; still enforced: update the data"


def _provisions(rule: StateRule, today: dt.date) -> Iterator[tuple[str, Provision, bool]]:
    """(what StreamGuard does, provision, enforceable) for each provision of `rule`.

    Dates are shown, never enforced, so `--no-unverified` leaves them as they are.
    """
    if rule.in_force is not None:
        yield _date_line("in force", rule.in_force, today), rule.in_force.provision, False
    if rule.sunset is not None:
        yield _date_line("repeal", rule.sunset, today), rule.sunset.provision, False
    for who, recipient, code in (
        ("out-of-state", rule.out_of_state, codes.OUT_OF_STATE_RECIPIENT),
        ("federal", rule.federal, codes.FEDERAL_RECIPIENT),
        ("private", rule.private, codes.PRIVATE_RECIPIENT),
    ):
        if recipient is not None:
            yield _recipients(who, recipient, code), recipient.provision, True
    if rule.eligible_kinds is not None:
        kinds = ", ".join(sorted(rule.eligible_kinds.kinds))
        yield (
            f"eligible recipient kinds: {kinds}; any other kind -> {codes.INELIGIBLE_RECIPIENT}",
            rule.eligible_kinds.provision,
            True,
        )
    for category, provision in rule.prohibited_purposes:
        yield (
            f"prohibited purpose: {category.replace('_', ' ')}, for every requester -> "
            f"{codes.CATEGORY_CODES[category]}",
            provision,
            True,
        )
    for shield in rule.shielded_purposes:
        who = " and ".join(_REQUESTERS[r] for r in sorted(shield.requesters, reverse=True))
        yield (
            f"prohibited purpose: {shield.category.replace('_', ' ')}, for {who} requesters "
            f"only -> {codes.CATEGORY_CODES[shield.category]}",
            shield.provision,
            True,
        )
    if rule.documented_purpose is not None:
        yield (
            f"documented purpose: a purpose naming no crime, case or person -> "
            f"{codes.VAGUE_PURPOSE}",
            rule.documented_purpose,
            True,
        )
    if rule.retention is not None:
        read = (
            "an older read that hit no hotlist"
            if rule.retention.hotlist_exempt
            else ("an older read")
        )
        yield (
            f"retention: {rule.retention.text}; {read}, or a search window starting earlier -> "
            f"{codes.RETENTION_EXCEEDED}",
            rule.retention.provision,
            True,
        )
    if rule.access_log is not None:
        yield (
            f"access log: {', '.join(rule.access_log.fields)} (checked by streamguard audit)",
            rule.access_log.provision,
            True,
        )


def describe_state(
    book: StatuteBook, state: str, *, enforce_unverified: bool, today: dt.date
) -> list[str]:
    """The rule in force for owners in `state`, one provision per block, baseline last."""
    code = state_code(state)
    rule = book.rule_for(code)
    policy = (
        "unverified provisions enforced"
        if enforce_unverified
        else "unverified provisions NOT enforced (--no-unverified)"
    )
    lines: list[str] = []
    if code == FEDERAL_STATE:
        lines.append(f"{code}: federal agencies; no state ALPR statute governs their own data")
    elif rule.state != code:
        lines.append(f"{code}: no ALPR sharing statute on file; only the owner's settings decide")
    else:
        lines.append(f"{code}: {rule.name}")
    lines.append(f"statute data {book.version}, read on {today}; {policy}")
    for what, provision, enforceable in _provisions(rule, today):
        lines.append("")
        lines.append(what)
        lines.extend(_marks(provision, enforceable, enforce_unverified))
    lines.append("")
    lines.append(
        f"every owner (StreamGuard baseline): a search must state a purpose -> "
        f"{codes.MISSING_PURPOSE}"
    )
    lines.extend(_marks(book.missing_purpose, True, enforce_unverified))
    return lines


def describe_book(book: StatuteBook, *, enforce_unverified: bool, today: dt.date) -> list[str]:
    """One line per state on file: its name and how many of its provisions were verified."""
    lines = [f"statute data {book.version}: {len(book.states)} states on file"]
    for code in sorted(book.states):
        rule = book.states[code]
        marks = [p.verified for _, p, enforceable in _provisions(rule, today) if enforceable]
        lines.append(f"{code}  {sum(marks)}/{len(marks)} verified  {rule.name}")
    if not enforce_unverified:
        lines.append("unverified provisions NOT enforced (--no-unverified)")
    lines.append("every other state: only the owner's settings decide (streamguard law STATE)")
    return lines
