"""Organization names in vendor exports, resolved to agencies whose state and kind drive the law.

Order (docs/contract.md section 5): the registry's `name` or `aliases`, then the `[Federal]`
marker, then a US state named or abbreviated in the name. A name resolved only to a state or to
"federal" becomes a synthetic requester: it has no registry id, but its state and kind are enough
for the owner's law. A name that gives none of these is unresolved; the audit counts it rather
than guessing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from streamguard.core.models import FEDERAL_STATE, Agency

__all__ = (
    "OrgResolver",
    "Resolution",
    "clean_org_name",
    "guess_kind",
    "normalize_org_name",
    "state_in_name",
)

# `[Federal]` appears as a prefix and, in newer Flock org lists, as a suffix; sharing lists
# also spell it `(Federal)`.
_FEDERAL_MARK: Final = re.compile(r"[\[(]\s*federal\s*[\])]", re.IGNORECASE)
_INACTIVE_MARK: Final = re.compile(r"[\[(]\s*inactive\s*[\])]", re.IGNORECASE)
_PARENTHETICAL: Final = re.compile(r"\([^)]*\)")

# Long forms folded to the short forms Flock names use, so "Ventura County Sheriff's Office"
# and "Ventura County CA SO" differ only by the state token.
_FOLDS: Final = (
    (re.compile(r"\bpolice (?:department|dept)\b"), "pd"),
    (re.compile(r"\bsheriffs? (?:office|ofc)\b"), "so"),
    (re.compile(r"\bsheriffs? (?:department|dept)\b"), "sd"),
    (re.compile(r"\bdepartment of public safety\b"), "dps"),
    (re.compile(r"\bdistrict attorneys? office\b"), "da"),
    (re.compile(r"\bdepartment\b"), "dept"),
    (re.compile(r"\bsaint\b"), "st"),
    (re.compile(r"\btownship\b"), "twp"),
)
_NON_WORD: Final = re.compile(r"[^a-z0-9]+")


def clean_org_name(name: str) -> tuple[str, bool]:
    """The name without `[Federal]`/`[Inactive]` markers, and whether it was marked federal."""
    federal = _FEDERAL_MARK.search(name) is not None
    text = _INACTIVE_MARK.sub(" ", _FEDERAL_MARK.sub(" ", name))
    return " ".join(text.split()).strip(" -"), federal


def normalize_org_name(name: str) -> str:
    """A comparison key: case, accents, punctuation and common long forms folded away."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ").replace("'", "").replace("\u2019", "")
    text = " ".join(_NON_WORD.sub(" ", text).split())
    for pattern, short in _FOLDS:
        text = pattern.sub(short, text)
    text = text.removeprefix("the ")
    return text


# --- states in names -----------------------------------------------------------------------------

_STATE_NAMES: Final = {
    "alabama": "AL",
    "alaska": "AK",
    "arizona": "AZ",
    "arkansas": "AR",
    "california": "CA",
    "colorado": "CO",
    "connecticut": "CT",
    "delaware": "DE",
    "florida": "FL",
    "georgia": "GA",
    "hawaii": "HI",
    "idaho": "ID",
    "illinois": "IL",
    "indiana": "IN",
    "iowa": "IA",
    "kansas": "KS",
    "kentucky": "KY",
    "louisiana": "LA",
    "maine": "ME",
    "maryland": "MD",
    "massachusetts": "MA",
    "michigan": "MI",
    "minnesota": "MN",
    "mississippi": "MS",
    "missouri": "MO",
    "montana": "MT",
    "nebraska": "NE",
    "nevada": "NV",
    "new hampshire": "NH",
    "new jersey": "NJ",
    "new mexico": "NM",
    "new york": "NY",
    "north carolina": "NC",
    "north dakota": "ND",
    "ohio": "OH",
    "oklahoma": "OK",
    "oregon": "OR",
    "pennsylvania": "PA",
    "rhode island": "RI",
    "south carolina": "SC",
    "south dakota": "SD",
    "tennessee": "TN",
    "texas": "TX",
    "utah": "UT",
    "vermont": "VT",
    "virginia": "VA",
    "washington": "WA",
    "west virginia": "WV",
    "wisconsin": "WI",
    "wyoming": "WY",
    "district of columbia": "DC",
    "puerto rico": "PR",
    "guam": "GU",
}
# Two-letter codes matched only as upper-case tokens: in Flock names the state code is always
# upper case, while "Co" (county) or "In" in prose are not. AS, MP and VI are left out: as
# tokens they are far more often a word or a Roman numeral than a territory.
_STATE_CODES: Final = frozenset(_STATE_NAMES.values()) | {FEDERAL_STATE}
# Codes that also abbreviate an agency type or a place ("San Diego County CA SD" = sheriff's
# department, "LA County", "Winston County MS CO"): dropped when another code is in the name.
_OVERLOADED_CODES: Final = frozenset(("SD", "CO", "LA", "ME", "PA", "DE"))
_STATE_NAME_PATTERN: Final = re.compile(
    r"\b(" + "|".join(sorted(_STATE_NAMES, key=len, reverse=True)) + r")\b"
    # "Washington County", "Kansas City", "Nevada City" name places in many other states.
    r"(?!\s+(?:county|co|city|parish|township|twp|borough|village)\b)"
)
_DOTTED_CODE: Final = re.compile(r"\b([A-Z])\.\s?([A-Z])\.?(?![A-Za-z])")
_TOKEN: Final = re.compile(r"[A-Za-z]+")


def state_in_name(name: str) -> str | None:
    """The one US state (or `US` for federal) a name names or abbreviates, None if none or several.

    Upper-case two-letter codes win over spelled-out names ("Kansas City MO PD" is in Missouri).
    Several distinct codes are ambiguous unless all but one are also agency-type abbreviations.
    """
    joined = _DOTTED_CODE.sub(r"\1\2", name)
    codes = {t for t in _TOKEN.findall(joined) if len(t) == 2 and t.isupper() and t in _STATE_CODES}
    if len(codes) > 1:
        codes -= _OVERLOADED_CODES
    if codes:
        return codes.pop() if len(codes) == 1 else None
    spelled = {_STATE_NAMES[m.group(1)] for m in _STATE_NAME_PATTERN.finditer(joined.casefold())}
    if len(spelled) == 1:
        return spelled.pop()
    return None


def _without_state(key: str, state: str) -> str:
    """A normalized key with the tokens naming `state` removed."""
    names = {n for n, code in _STATE_NAMES.items() if code == state}
    drop = {state.lower()}
    text = f" {key} "
    for spelled in names:
        text = text.replace(f" {spelled} ", " ")
    return " ".join(t for t in text.split() if t not in drop)


_KIND_PATTERNS: Final = (
    ("tribal", re.compile(r"\b(?:tribal|tribe|nation|band of|pueblo|rancheria)\b")),
    ("campus", re.compile(r"\b(?:university|college|campus|school|schools|isd|usd)\b")),
    (
        "state",
        re.compile(
            r"\b(?:state police|state patrol|highway patrol|dps|state troopers?|attorney general|"
            r"bureau of investigation|department of justice|doj|dot|dotd)\b"
        ),
    ),
    ("county", re.compile(r"\b(?:county|parish|so|sd|sheriff|sheriffs|da|constable)\b")),
    (
        "private",
        re.compile(
            r"\b(?:inc|llc|corp|corporation|company|hoa|homeowners|apartments|mall|"
            r"property management|properties|retail|store|stores|hospital)\b"
        ),
    ),
)


def guess_kind(key: str) -> str:
    """The kind of a synthetic requester from its normalized name; `local` when nothing says.

    Only the owner's law reads the kind (eligible recipients, private entities); a name that
    gives no hint is taken for a city agency, the most common Flock customer.
    """
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(key):
            return kind
    return "local"


# --- resolution ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """Who an organization name is, and how we know.

    `via` is `registry`, `federal` (the `[Federal]` marker), `state` (a state in the name),
    `owner` (no organization column: the owner's own users) or `unresolved`.
    """

    name: str
    via: str
    agency: Agency | None = None

    @property
    def agency_id(self) -> str | None:
        """The registry id; None for synthetic and unresolved requesters."""
        if self.agency is None or self.via not in ("registry", "owner"):
            return None
        return self.agency.agency_id

    @property
    def resolved(self) -> bool:
        return self.agency is not None


_CACHE_LIMIT: Final = 65_536


class OrgResolver:
    """Resolve organization names against one registry; answers are cached per name.

    The cache stops growing at a fixed size: a pathological export with millions of distinct
    names is still resolved, only more slowly.
    """

    def __init__(self, agencies: Iterable[Agency]) -> None:
        exact: dict[str, set[str]] = {}
        by_state: dict[tuple[str, str], set[str]] = {}
        self._agencies: dict[str, Agency] = {}
        for agency in agencies:
            self._agencies[agency.agency_id] = agency
            for label in (agency.name, *agency.aliases):
                key = normalize_org_name(clean_org_name(label)[0])
                if not key:
                    continue
                exact.setdefault(key, set()).add(agency.agency_id)
                bare = _without_state(key, agency.state)
                if bare:
                    by_state.setdefault((agency.state, bare), set()).add(agency.agency_id)
        # A key two agencies share says nothing about which one searched: it is not used.
        self._exact = {k: ids.pop() for k, ids in exact.items() if len(ids) == 1}
        self._by_state = {k: ids.pop() for k, ids in by_state.items() if len(ids) == 1}
        self._cache: dict[str, Resolution] = {}

    def resolve(self, name: str) -> Resolution:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        result = self._resolve(name)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[name] = result
        return result

    def _registry(self, cleaned: str) -> Agency | None:
        for candidate in (cleaned, _PARENTHETICAL.sub(" ", cleaned)):
            key = normalize_org_name(candidate)
            agency_id = self._exact.get(key)
            if agency_id is not None:
                return self._agencies[agency_id]
            state = state_in_name(candidate)
            if state is not None:
                agency_id = self._by_state.get((state, _without_state(key, state)))
                if agency_id is not None:
                    return self._agencies[agency_id]
        return None

    def _resolve(self, name: str) -> Resolution:
        cleaned, federal = clean_org_name(name)
        if not cleaned:
            return Resolution(name, "unresolved")
        agency = self._registry(cleaned)
        if agency is not None:
            return Resolution(name, "registry", agency)
        if federal:
            return Resolution(name, "federal", Agency(cleaned, cleaned, FEDERAL_STATE, "federal"))
        state = state_in_name(cleaned)
        if state == FEDERAL_STATE:
            return Resolution(name, "federal", Agency(cleaned, cleaned, FEDERAL_STATE, "federal"))
        if state is not None:
            kind = guess_kind(normalize_org_name(cleaned))
            return Resolution(name, "state", Agency(cleaned, cleaned, state, kind))
        return Resolution(name, "unresolved")
