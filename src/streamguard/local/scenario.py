"""The demo's scenario: a morning of ALPR traffic modelled on the Ventura County audit. Pure.

In February-March 2025 out-of-state and federal agencies searched the Ventura County Sheriff's
data 364,000 times; 299 justifications (under 1%) referenced immigration enforcement; the
vendor's "National Lookup", switched off in 2023, had been switched back on without anyone at
the sheriff's office doing it (docs/law.md, section 0). This module rebuilds that situation as
plain data: a registry signed by the registry key, lawful sharing settings each signed by its
owner's key, the unsigned National Lookup flip, a forged change, the replay of a signed change
its owner had revoked, a registry record relabelling Houston as Californian signed with
Houston's own key (docs/contract.md section 2a), and a time-ordered stream of searches, plate
reads and a few broken messages.

Everything is a function of (`now`, `events`, `seed`): no clock, no files, no network, so a test
can replay exactly what the demo sends. Agency names are real places; people, plates, case
numbers and keys are synthetic.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from streamguard import serde
from streamguard.core.control import replay_entry_for
from streamguard.core.engine import decide_event
from streamguard.core.keys import ED25519, parse_keys
from streamguard.core.models import Decision
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.signer import SigningKey
from streamguard.core.statutes import StatuteBook
from streamguard.core.timeutil import format_ts
from streamguard.stream.intake import Unreadable, decode

__all__ = (
    "DEMO_KEYS",
    "MIN_EVENTS",
    "Message",
    "Scenario",
    "build_scenario",
    "decide_scenario",
    "demo_signer",
)

MINUTE: Final = 60.0
HOUR: Final = 3600.0
DAY: Final = 86_400.0
MIN_EVENTS: Final = 60
# Demo keys, published on purpose: every agency's Ed25519 key is derived from this seed, so
# anyone may rerun the demo (and anyone can sign as any demo agency: the keys sign nothing
# outside the demo's own topics).
_DEMO_SEED: Final = b"streamguard-demo-keys-not-for-production"
_FORGER_SEED: Final = b"a-key-the-worker-has-never-seen"
_REGISTRY: Final = "k-registry"


def _derived(seed: bytes, key_id: str, agency_id: str | None) -> SigningKey:
    material = hashlib.sha256(seed + b"/" + key_id.encode()).digest()
    return SigningKey(key_id, ED25519, agency_id, material)


def demo_signer(agency_id: str | None) -> SigningKey:
    """The demo key of `agency_id` (`k-<agency_id>`), or the registry key for None."""
    key_id = f"k-{agency_id}" if agency_id is not None else _REGISTRY
    return _derived(_DEMO_SEED, key_id, agency_id)


# The stream covers this span, ending a minute before `now`: recent enough that the worker's
# event-time windows are open and its hourly alerts can fire.
_SPAN: Final = 100 * MINUTE
_END_GAP: Final = 1 * MINUTE


class Message(NamedTuple):
    """One Kafka message: topic suffix (after the prefix), key, value, and the event id the
    worker's audit record will carry (None when the message has no readable id)."""

    topic: str
    key: str | None
    value: bytes
    event_id: str | None


@dataclass(frozen=True, slots=True)
class Scenario:
    """What the demo sends, in order: registry, lawful settings, then the stream."""

    now: float
    seed: int
    agencies: tuple[dict[str, str], ...]
    keys: Mapping[str, Mapping[str, str]]  # KEYS.json (public keys)
    registry: tuple[Message, ...]  # agencies topic, signed by the registry key
    policy: tuple[Message, ...]  # signed, lawful setup changes (they must land first)
    stream: tuple[Message, ...]  # time-ordered searches, reads, rejected changes, malformed
    flip_id: str  # the unsigned National Lookup re-activation for Ventura County
    forged_id: str  # a change signed with a key the worker does not hold
    replay_id: str  # the change_id of a signed change sent again after its owner revoked it
    relabel_id: str  # the agency a registry record signed with an agency key relabels

    @property
    def messages(self) -> tuple[Message, ...]:
        return self.registry + self.policy + self.stream


# --- the registry ------------------------------------------------------------------------------

_AGENCIES: Final = (
    # California owners: the Ventura County area first (they share with each other)
    ("ca-ventura-county-so", "Ventura County Sheriff's Office", "CA", "county"),
    ("ca-oxnard-pd", "Oxnard Police Department", "CA", "local"),
    ("ca-ventura-pd", "Ventura Police Department", "CA", "local"),
    ("ca-simi-valley-pd", "Simi Valley Police Department", "CA", "local"),
    ("ca-santa-paula-pd", "Santa Paula Police Department", "CA", "local"),
    ("ca-port-hueneme-pd", "Port Hueneme Police Department", "CA", "local"),
    ("ca-santa-barbara-county-so", "Santa Barbara County Sheriff's Office", "CA", "county"),
    ("ca-los-angeles-county-sd", "Los Angeles County Sheriff's Department", "CA", "county"),
    ("ca-los-angeles-pd", "Los Angeles Police Department", "CA", "local"),
    ("ca-chp", "California Highway Patrol", "CA", "state"),
    ("ca-ucsb-pd", "UC Santa Barbara Police Department", "CA", "campus"),
    ("ca-mountain-view-pd", "Mountain View Police Department", "CA", "local"),
    ("ca-coastal-recovery", "Coastal Vehicle Recovery LLC", "CA", "private"),
    # out of state
    ("tx-houston-pd", "Houston Police Department", "TX", "local"),
    ("tx-harris-county-so", "Harris County Sheriff's Office", "TX", "county"),
    ("tx-dallas-pd", "Dallas Police Department", "TX", "local"),
    ("tx-el-paso-county-so", "El Paso County Sheriff's Office", "TX", "county"),
    ("tx-dps", "Texas Department of Public Safety", "TX", "state"),
    ("fl-miami-dade-so", "Miami-Dade Sheriff's Office", "FL", "county"),
    ("fl-jacksonville-so", "Jacksonville Sheriff's Office", "FL", "county"),
    ("ga-atlanta-pd", "Atlanta Police Department", "GA", "local"),
    ("ga-cobb-county-so", "Cobb County Sheriff's Office", "GA", "county"),
    ("az-maricopa-county-so", "Maricopa County Sheriff's Office", "AZ", "county"),
    ("az-phoenix-pd", "Phoenix Police Department", "AZ", "local"),
    ("nv-las-vegas-metro-pd", "Las Vegas Metropolitan Police Department", "NV", "local"),
    ("ok-tulsa-pd", "Tulsa Police Department", "OK", "local"),
    # federal
    ("us-ice-ero", "U.S. Immigration and Customs Enforcement - ERO", "US", "federal"),
    ("us-hsi", "Homeland Security Investigations", "US", "federal"),
    ("us-cbp-usbp", "U.S. Border Patrol", "US", "federal"),
    ("us-fbi", "Federal Bureau of Investigation", "US", "federal"),
    ("us-atf", "Bureau of Alcohol, Tobacco, Firearms and Explosives", "US", "federal"),
    ("us-dea", "Drug Enforcement Administration", "US", "federal"),
    # Illinois: out-of-state sharing needs a written declaration (625 ILCS 5/2-130(c))
    ("il-mount-prospect-pd", "Mount Prospect Police Department", "IL", "local"),
    ("il-naperville-pd", "Naperville Police Department", "IL", "local"),
    ("il-cook-county-so", "Cook County Sheriff's Office", "IL", "county"),
    # 21-day retention states
    ("va-fairfax-county-pd", "Fairfax County Police Department", "VA", "county"),
    ("va-richmond-pd", "Richmond Police Department", "VA", "local"),
    ("wa-seattle-pd", "Seattle Police Department", "WA", "local"),
    ("wa-king-county-so", "King County Sheriff's Office", "WA", "county"),
)

# KEYS.json of the demo: every agency's public key and the registry's.
DEMO_KEYS: Final[Mapping[str, Mapping[str, str]]] = {
    signer.key_id: signer.keys_entry()
    for signer in (*(demo_signer(a[0]) for a in _AGENCIES), demo_signer(None))
}

_VENTURA_AREA: Final = (
    "ca-ventura-county-so",
    "ca-oxnard-pd",
    "ca-ventura-pd",
    "ca-simi-valley-pd",
    "ca-santa-paula-pd",
    "ca-port-hueneme-pd",
)
# Mountain View switched statewide lookup off after its own audit (docs/law.md section 0).
_CA_STATEWIDE: Final = (
    *_VENTURA_AREA,
    "ca-santa-barbara-county-so",
    "ca-los-angeles-county-sd",
    "ca-los-angeles-pd",
    "ca-chp",
    "ca-ucsb-pd",
)
_CA_PUBLIC: Final = (*_CA_STATEWIDE, "ca-mountain-view-pd")
# owner -> the in-state agencies it shares its network and reads with
_CA_SHARING: Final[Mapping[str, tuple[str, ...]]] = {
    **{owner: tuple(a for a in _VENTURA_AREA if a != owner) for owner in _VENTURA_AREA},
    "ca-santa-barbara-county-so": ("ca-ventura-county-so", "ca-ucsb-pd", "ca-chp"),
    "ca-los-angeles-county-sd": ("ca-los-angeles-pd", "ca-chp", "ca-ventura-county-so"),
    "ca-los-angeles-pd": ("ca-los-angeles-county-sd", "ca-chp"),
}
_OUT_OF_STATE: Final = (
    "tx-houston-pd",
    "tx-harris-county-so",
    "tx-dallas-pd",
    "tx-el-paso-county-so",
    "tx-dps",
    "fl-miami-dade-so",
    "fl-jacksonville-so",
    "ga-atlanta-pd",
    "ga-cobb-county-so",
    "az-maricopa-county-so",
    "az-phoenix-pd",
    "nv-las-vegas-metro-pd",
    "ok-tulsa-pd",
)
_NATIONAL: Final = (
    "tx-houston-pd",
    "tx-harris-county-so",
    "tx-dallas-pd",
    "tx-el-paso-county-so",
    "ga-atlanta-pd",
    "ga-cobb-county-so",
    "az-maricopa-county-so",
    "fl-miami-dade-so",
)
_FEDERAL_SHARING: Final = ("tx-el-paso-county-so", "az-maricopa-county-so")
_FEDERAL: Final = ("us-ice-ero", "us-hsi", "us-cbp-usbp", "us-fbi", "us-atf", "us-dea")
_IL: Final = ("il-mount-prospect-pd", "il-naperville-pd", "il-cook-county-so")
# Illinois owners on National Lookup hold declarations from some out-of-state agencies only.
_IL_DECLARATIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "il-mount-prospect-pd": ("tx-houston-pd", "ga-atlanta-pd", "az-phoenix-pd"),
    "il-naperville-pd": ("tx-houston-pd", "fl-jacksonville-so", "us-fbi", "us-atf"),
}
_IL_SHARE_OUT: Final[Mapping[str, tuple[str, ...]]] = {
    "il-mount-prospect-pd": ("tx-houston-pd", "tx-dallas-pd", "ga-atlanta-pd"),
}
_VA_WA: Final[Mapping[str, tuple[str, ...]]] = {
    "va-fairfax-county-pd": ("va-richmond-pd",),
    "va-richmond-pd": ("va-fairfax-county-pd",),
    "wa-seattle-pd": ("wa-king-county-so",),
    "wa-king-county-so": ("wa-seattle-pd",),
}

# --- purposes as officers type them --------------------------------------------------------------

_SPECIFIC: Final = (
    "stolen vehicle",
    "armed robbery",
    "residential burglary",
    "homicide - suspect vehicle",
    "hit and run - felony",
    "carjacking",
    "missing person (endangered juvenile)",
    "Amber Alert - abducted child",
    "wanted subject - felony warrant",
    "auto theft",
    "catalytic converter theft",
    "organized retail theft",
    "assault with a deadly weapon",
    "narcotics trafficking",
    "shooting",
    "kidnapping",
    "missing at-risk adult",
    "grand theft auto",
    "gang shooting - suspect vehicle",
    "stolen vehicle recovery",
    "attempted murder",
    "DUI hit and run",
    "bank robbery suspect vehicle",
    "human trafficking",
)
_FEDERAL_SPECIFIC: Final = (
    "firearms trafficking",
    "straw purchase - firearms",
    "fugitive apprehension",
    "narcotics trafficking",
    "bank robbery suspect vehicle",
    "counterfeit currency",
    "human trafficking",
    "kidnapping",
)
_VAGUE: Final = (
    "investigation",
    "Investigation",
    "inv",
    "inv.",
    "investigative lead",
    "follow up",
    "intel",
    "suspicious",
    "BOLO",
    "check plate",
)
_MISSING: Final = (None, "", "N/A", "-", "na")
# Spellings seen in real audit logs (docs/law.md section 0 and the classifier's documentation).
_IMMIGRATION: Final = (
    "ICE+ERO",
    "assist HSI",
    "locate alien",
    "Immigration (civil/administrative) - locate subject",
    "ICE ERO assist",
    "HSI - immigration",
    "ERO fugitive operations",
    "DHS/ICE detainer",
    "Immigration violation",
    "287(g) - removal",
    "immigration",
    "CBP request - border crossing",
)
_PLATE_LETTERS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ"


@dataclass
class _Builder:
    """Seeded generator of events; every id and choice comes from `rng`."""

    rng: random.Random
    now: float

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def plate(self) -> str:
        # California's 1ABC234 pattern; synthetic, drawn from the seed.
        letters = "".join(self.rng.choice(_PLATE_LETTERS) for _ in range(3))
        return f"{self.rng.randint(1, 9)}{letters}{self.rng.randint(0, 999):03d}"

    def case(self, ts: float) -> str:
        return f"{format_ts(ts)[2:4]}-{self.rng.randint(1000, 99999):06d}"

    def user(self, agency_id: str) -> str:
        return f"{agency_id.split('-', 1)[1][:12]}-u{self.rng.randint(100, 999)}"

    def pick(self, options: tuple[Any, ...]) -> Any:
        return self.rng.choice(options)

    def search(
        self,
        ts: float,
        requester: str,
        scope: str,
        networks: tuple[str, ...] = (),
        reason: str | None = "stolen vehicle",
        *,
        case: bool = True,
        window_days: float = 7.0,
    ) -> dict[str, Any]:
        return {
            "type": "search_request",
            "search_id": self.uid(),
            "ts": format_ts(ts),
            "requester": {"agency_id": requester, "user_id": self.user(requester)},
            "reason": reason,
            "case_number": self.case(ts) if case else None,
            "offense_type": None,
            "search_type": "lookup",
            "query": {
                "plate": self.plate(),
                "from": format_ts(ts - window_days * DAY),
                "to": format_ts(ts),
            },
            "scope": scope,
            "networks": list(networks),
        }

    def read(self, ts: float, owner: str, share_to: tuple[str, ...]) -> dict[str, Any]:
        return {
            "type": "plate_read",
            "read_id": self.uid(),
            "ts": format_ts(ts),
            "agency_id": owner,
            "camera_id": f"cam-{self.rng.randint(1, 60)}",
            "plate": self.plate(),
            "plate_state": "CA" if owner.startswith("ca-") else owner[:2].upper(),
            "confidence": round(self.rng.uniform(0.71, 0.99), 2),
            "location": {
                "lat": round(self.rng.uniform(34.1, 34.5), 4),
                "lon": round(self.rng.uniform(-119.4, -118.8), 4),
            },
            "hotlist_hit": self.rng.random() < 0.03,
            "share_to": list(share_to),
        }

    def change(
        self,
        ts: float,
        owner: str,
        setting: str,
        value: Any,
        reason: str,
        *,
        signer: SigningKey | None,
        actor: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "policy_change",
            "change_id": self.uid(),
            "ts": format_ts(ts),
            "agency_id": owner,
            "setting": setting,
            "value": value,
            "actor": dict(actor)
            if actor is not None
            else {"user_id": f"admin-{self.rng.randint(1, 9)}", "agency_id": owner},
            "reason": reason,
            "ticket": f"CHG-{self.rng.randint(1000, 9999)}",
        }
        return event if signer is None else signed(event, signer)

    def some(self, options: tuple[str, ...], most: int) -> tuple[str, ...]:
        return tuple(self.rng.sample(options, self.rng.randint(1, min(most, len(options)))))


# --- lawful setup: what the owners really configured -------------------------------------------


def signed(record: dict[str, Any], signer: SigningKey) -> dict[str, Any]:
    """`record` (a policy_change or an agency record) signed by `signer`, whatever it may sign."""
    kind = "policy_change" if record.get("type") == "policy_change" else "agency"
    out = {**record, "key_id": signer.key_id}
    out["signature"] = signer.signature(kind, out)
    return out


def _setup(b: _Builder) -> list[dict[str, Any]]:
    start = b.now - _SPAN - _END_GAP - 2 * HOUR
    plan: list[tuple[str, str, Any, str]] = [
        (
            "ca-ventura-county-so",
            "national_lookup",
            False,
            "disable National Lookup to comply with SB 34 (June 2023)",
        ),
        ("ca-ventura-county-so", "retention_days", 365, "one-year retention per county policy"),
        ("ca-ventura-pd", "retention_days", 30, "30-day retention per city policy"),
        (
            "ca-los-angeles-county-sd",
            "require_case_number",
            True,
            "every search needs a case number (department policy)",
        ),
    ]
    plan += [
        (a, "statewide_lookup", True, "California agencies may search statewide")
        for a in _CA_STATEWIDE
    ]
    plan += [
        (owner, "share_with", list(peers), "mutual aid within California")
        for owner, peers in _CA_SHARING.items()
    ]
    plan += [(a, "national_lookup", True, "join the national network") for a in _NATIONAL]
    plan += [(a, "federal_sharing", True, "task force participation") for a in _FEDERAL_SHARING]
    plan += [(a, "statewide_lookup", True, "Illinois agencies may search statewide") for a in _IL]
    plan += [
        ("il-mount-prospect-pd", "national_lookup", True, "join the national network"),
        ("il-naperville-pd", "national_lookup", True, "join the national network"),
        ("il-naperville-pd", "federal_sharing", True, "federal task force (declarations held)"),
    ]
    plan += [
        (owner, "declaration_on_file", list(held), "written declarations received")
        for owner, held in _IL_DECLARATIONS.items()
    ]
    plan += [
        (owner, "share_with", list(peers), "regional partners out of state")
        for owner, peers in _IL_SHARE_OUT.items()
    ]
    plan += [(owner, "statewide_lookup", True, "in-state lookup") for owner in _VA_WA]
    plan += [
        (owner, "share_with", list(peers), "in-state partners") for owner, peers in _VA_WA.items()
    ]
    # A mutual-aid agreement that ended: its signed share_with is what the replay act re-sends.
    plan += [
        (_REVOKED[0], "share_with", [_REVOKED[1]], "mutual aid during the Mountain fire"),
        (_REVOKED[0], "unshare_with", [_REVOKED[1]], "mutual aid ended"),
    ]
    return [
        b.change(start + i * MINUTE, owner, setting, value, why, signer=demo_signer(owner))
        for i, (owner, setting, value, why) in enumerate(plan)
    ]


# (owner, recipient) of the revoked agreement whose signed change the replay act sends again.
_REVOKED: Final = ("ca-ventura-county-so", "ca-los-angeles-pd")


# --- the stream -----------------------------------------------------------------------------------

_Make = Callable[[_Builder, float], dict[str, Any]]


def _reason(b: _Builder, options: tuple[str, ...] = _SPECIFIC) -> str:
    return str(b.pick(options))


def _ca_networks(b: _Builder, ts: float) -> dict[str, Any]:
    owner = b.pick(tuple(_CA_SHARING))
    requester = b.pick(_CA_SHARING[owner])
    return b.search(
        ts, requester, "networks", (requester, owner), _reason(b), case=b.rng.random() < 0.9
    )


def _ca_statewide(b: _Builder, ts: float) -> dict[str, Any]:
    # Without a case number the Los Angeles County network (which requires one) drops out.
    return b.search(
        ts,
        b.pick(_CA_PUBLIC),
        "statewide",
        (),
        _reason(b),
        case=b.rng.random() < 0.92,
        window_days=b.rng.uniform(1, 14),
    )


def _ca_not_shared(b: _Builder, ts: float) -> dict[str, Any]:
    requester = b.pick(("ca-los-angeles-pd", "ca-mountain-view-pd", "ca-chp", "ca-ucsb-pd"))
    return b.search(ts, requester, "networks", (requester, "ca-ventura-county-so"), _reason(b))


def _ca_long_window(b: _Builder, ts: float) -> dict[str, Any]:
    # Asks for 45 days; the City of Ventura keeps 30.
    return b.search(ts, b.pick(_VENTURA_AREA), "statewide", (), _reason(b), window_days=45)


def _ca_vague(b: _Builder, ts: float) -> dict[str, Any]:
    return b.search(
        ts, b.pick(_CA_PUBLIC), "statewide", (), _reason(b, _VAGUE), case=b.rng.random() < 0.3
    )


def _missing_reason(b: _Builder, ts: float) -> dict[str, Any]:
    requester = b.pick((*_CA_PUBLIC, *_OUT_OF_STATE))
    return b.search(ts, requester, "statewide", (), b.pick(_MISSING), case=False)


def _out_of_state_on_ca(b: _Builder, ts: float) -> dict[str, Any]:
    # The re-activated National Lookup put Ventura County's network in out-of-state results.
    requester = b.pick(_OUT_OF_STATE)
    networks = ("ca-ventura-county-so", *b.some(_CA_PUBLIC[1:], 2))
    if b.rng.random() < 0.4:
        networks = (requester, *networks)
    reason = _reason(b, _VAGUE) if b.rng.random() < 0.15 else _reason(b)
    return b.search(ts, requester, "networks", networks, reason, case=b.rng.random() < 0.7)


def _federal_on_ca(b: _Builder, ts: float) -> dict[str, Any]:
    requester = b.pick(_FEDERAL[2:])  # the immigration agencies come in separately
    networks = ("ca-ventura-county-so", *b.some(_CA_PUBLIC[1:], 2))
    if b.rng.random() < 0.5:
        networks = (*networks, b.pick(_FEDERAL_SHARING))
    return b.search(ts, requester, "networks", networks, _reason(b, _FEDERAL_SPECIFIC))


def _national_out_of_state(b: _Builder, ts: float) -> dict[str, Any]:
    # Illinois owners in the pool admit only requesters whose declaration they hold.
    return b.search(ts, b.pick(_NATIONAL), "national", (), _reason(b))


def _federal_national(b: _Builder, ts: float) -> dict[str, Any]:
    return b.search(
        ts, b.pick(("us-fbi", "us-atf", "us-dea")), "national", (), _reason(b, _FEDERAL_SPECIFIC)
    )


def _illinois(b: _Builder, ts: float) -> dict[str, Any]:
    return b.search(ts, b.pick(_IL), "statewide", (), _reason(b))


def _va_wa(b: _Builder, ts: float) -> dict[str, Any]:
    roll = b.rng.random()
    reason = _reason(b, _VAGUE) if roll < 0.15 else _reason(b)
    window = 30.0 if roll > 0.8 else b.rng.uniform(1, 14)  # past the 21-day limit
    return b.search(ts, b.pick(tuple(_VA_WA)), "statewide", (), reason, window_days=window)


def _immigration(b: _Builder, ts: float) -> dict[str, Any]:
    requester = b.pick(
        (
            "us-ice-ero",
            "us-hsi",
            "us-cbp-usbp",
            "tx-harris-county-so",
            "tx-el-paso-county-so",
            "ca-ventura-county-so",
        )
    )
    if requester.startswith("ca-"):  # asked in-state for ICE: California forbids the purpose
        return b.search(ts, requester, "statewide", (), _reason(b, _IMMIGRATION))
    if b.rng.random() < 0.5:
        return b.search(ts, requester, "national", (), _reason(b, _IMMIGRATION))
    networks = ("ca-ventura-county-so", *b.some(("ca-oxnard-pd", "il-mount-prospect-pd"), 2))
    return b.search(ts, requester, "networks", networks, _reason(b, _IMMIGRATION))


def _ca_read(b: _Builder, ts: float) -> dict[str, Any]:
    owner = b.pick(tuple(_CA_SHARING))
    share_to = b.some(_CA_SHARING[owner], 3) if b.rng.random() < 0.85 else ()
    return b.read(ts, owner, share_to)


def _ca_read_foreign(b: _Builder, ts: float) -> dict[str, Any]:
    owner = b.pick(_VENTURA_AREA)
    foreign = b.some((*_OUT_OF_STATE[:4], "us-cbp-usbp", "us-hsi", "us-fbi"), 2)
    local = b.some(_CA_SHARING[owner], 1) if b.rng.random() < 0.6 else ()
    return b.read(ts, owner, (*local, *foreign))


def _ca_read_private(b: _Builder, ts: float) -> dict[str, Any]:
    owner = b.pick(_VENTURA_AREA)
    return b.read(ts, owner, ("ca-coastal-recovery",))


def _il_read(b: _Builder, ts: float) -> dict[str, Any]:
    # Dallas is in Mount Prospect's share list but has filed no declaration.
    return b.read(ts, "il-mount-prospect-pd", b.some(_IL_SHARE_OUT["il-mount-prospect-pd"], 2))


def _va_wa_read(b: _Builder, ts: float) -> dict[str, Any]:
    owner = b.pick(tuple(_VA_WA))
    return b.read(ts, owner, _VA_WA[owner])


def _stale_read(b: _Builder, ts: float) -> dict[str, Any]:
    # A camera that uploads weeks late, or a backfill: older than the 21-day limit.
    owner = b.pick(tuple(_VA_WA))
    return b.read(ts - b.rng.uniform(23, 60) * DAY, owner, _VA_WA[owner])


def _tx_read(b: _Builder, ts: float) -> dict[str, Any]:
    return b.read(ts, "tx-el-paso-county-so", b.some(("tx-dps", "us-cbp-usbp", "tx-houston-pd"), 2))


# (generator, weight): about two thirds searches, the rest reads, as in a busy network.
_MIX: Final[tuple[tuple[_Make, int], ...]] = (
    (_ca_networks, 22),
    (_ca_statewide, 18),
    (_ca_not_shared, 5),
    (_ca_long_window, 3),
    (_ca_vague, 4),
    (_missing_reason, 1),
    (_out_of_state_on_ca, 20),
    (_federal_on_ca, 6),
    (_national_out_of_state, 8),
    (_federal_national, 3),
    (_illinois, 3),
    (_va_wa, 3),
    (_ca_read, 25),
    (_ca_read_foreign, 4),
    (_ca_read_private, 1),
    (_il_read, 3),
    (_va_wa_read, 3),
    (_stale_read, 2),
    (_tx_read, 3),
)


def _malformed(b: _Builder, ts: float) -> list[tuple[str, bytes, str | None, str | None]]:
    """(topic, value, key, event id) of broken messages: what real producers get wrong."""
    missing_requester = b.search(ts, "ca-oxnard-pd", "statewide")
    del missing_requester["requester"]
    bad_scope = b.search(ts, "tx-dallas-pd", "galaxy")
    bad_read = b.read(ts, "ca-oxnard-pd", ("ca-ventura-pd",))
    bad_read["confidence"] = "high"
    return [
        ("searches", b'{"type": "search_request", "search_id": "trunc', None, None),
        ("reads", b"\xff\xfe\x00garbled camera frame", None, None),
        ("searches", b"[1, 2, 3]", None, None),
        ("reads", b'"plate_read"', None, None),
        ("searches", serde.dumps(missing_requester), None, missing_requester["search_id"]),
        ("searches", serde.dumps(bad_scope), "tx-dallas-pd", bad_scope["search_id"]),
        ("reads", serde.dumps(bad_read), "ca-oxnard-pd", bad_read["read_id"]),
    ]


def _message(topic: str, event: dict[str, Any]) -> Message:
    if topic == "searches":
        return Message(
            topic, event["requester"]["agency_id"], serde.dumps(event), event["search_id"]
        )
    if topic == "reads":
        return Message(topic, event["agency_id"], serde.dumps(event), event["read_id"])
    return Message(topic, event["agency_id"], serde.dumps(event), event["change_id"])


def _topic_of(event: Mapping[str, Any]) -> str:
    return "searches" if event["type"] == "search_request" else "reads"


def _immigration_hour(now: float) -> tuple[float, float]:
    """A stretch of at least 10 minutes inside one clock hour, before `now` and in the span.

    The worker counts immigration searches per requester per clock hour (event time), so a
    cluster spread over an hour boundary would be split in two and might alert in neither.
    """
    start = (now - 10 * MINUTE) // HOUR * HOUR
    end = min(start + HOUR, now - _END_GAP)
    return max(start, now - _END_GAP - _SPAN), end


def build_scenario(now: float, events: int = 4000, seed: int = 2025) -> Scenario:
    """The scenario for `now` (POSIX seconds): `events` stream messages after the setup."""
    if events < MIN_EVENTS:
        msg = f"a scenario needs at least {MIN_EVENTS} events, got {events}"
        raise ValueError(msg)
    # Reproducible on purpose (not a security use): the same (now, seed) gives the same demo.
    # `now` is in the seed so that two runs never share event ids: consumers drop a repeated
    # id as an at-least-once replay, and a rerun against the same topics is not a replay.
    b = _Builder(random.Random(f"{seed}/{now:.0f}"), now)  # noqa: S311
    agencies = tuple(
        {"agency_id": a, "name": name, "state": state, "kind": kind}
        for a, name, state, kind in _AGENCIES
    )
    registered_at = format_ts(now - _SPAN - _END_GAP - 3 * HOUR)
    registry = tuple(
        Message(
            "agencies",
            a["agency_id"],
            serde.dumps(signed({**a, "ts": registered_at}, demo_signer(None))),
            a["agency_id"],
        )
        for a in agencies
    )
    setup = _setup(b)
    policy = tuple(_message("policy", c) for c in setup)

    first, last = now - _END_GAP - _SPAN, now - _END_GAP
    timed: list[tuple[float, Message]] = []

    def at(fraction: float) -> float:
        return first + fraction * (last - first)

    # The rejected changes, each at its moment in the story.
    flip = b.change(
        at(0.35),
        "ca-ventura-county-so",
        "national_lookup",
        True,
        "re-enable National Lookup (vendor configuration sync)",
        signer=None,
        actor={"user_id": "svc-vendor-sync"},
    )
    forged = b.change(
        at(0.55),
        "il-mount-prospect-pd",
        "declaration_on_file",
        [*_IL_DECLARATIONS["il-mount-prospect-pd"], "us-ice-ero"],
        "declaration received",
        signer=_derived(_FORGER_SEED, "k-il-mount-prospect-pd", "il-mount-prospect-pd"),
    )
    forbidden = b.change(
        at(0.7),
        "ca-santa-barbara-county-so",
        "federal_sharing",
        True,
        "join federal task force",
        signer=demo_signer("ca-santa-barbara-county-so"),
    )
    for fraction, change in ((0.35, flip), (0.55, forged), (0.7, forbidden)):
        timed.append((at(fraction), _message("policy", change)))

    # Act: the exact bytes of Ventura's signed share_with with LAPD, sent again after Ventura
    # revoked it; then LAPD searches Ventura's network.
    [revoked] = [c for c in setup if c["setting"] == "share_with" and c["value"] == [_REVOKED[1]]]
    timed.append((at(0.6), _message("policy", revoked)))
    lapd = b.search(at(0.61), _REVOKED[1], "networks", (_REVOKED[0],), _reason(b))
    timed.append((at(0.61), _message("searches", lapd)))
    # Act: a registry record relabelling Houston as Californian, signed with Houston's own key
    # (not the registry's); then Houston searches statewide, where California data would be.
    relabel = signed(
        {
            "agency_id": "tx-houston-pd",
            "name": "Houston Police Department",
            "state": "CA",
            "kind": "local",
            "ts": format_ts(at(0.65)),
        },
        demo_signer("tx-houston-pd"),
    )
    timed.append(
        (at(0.65), Message("agencies", "tx-houston-pd", serde.dumps(relabel), "tx-houston-pd"))
    )
    houston = b.search(at(0.66), "tx-houston-pd", "statewide", (), _reason(b))
    timed.append((at(0.66), _message("searches", houston)))

    # A producer deploys a bug mid-morning: a burst of broken messages at once.
    for topic, value, key, event_id in _malformed(b, at(0.5)):
        timed.append((at(0.5), Message(topic, key, value, event_id)))

    # Immigration: about 1% of the stream, at least 8; six from Border Patrol in one clock hour
    # so that the hourly prohibited-purpose alert (more than 5) fires even in a short run.
    immigration = max(8, round(events * 0.01))
    lo, hi = _immigration_hour(now)
    for i in range(6):
        ts = lo + (i + 0.5) * (hi - lo) / 6
        event = b.search(
            ts,
            "us-cbp-usbp",
            "networks",
            ("ca-ventura-county-so", "ca-oxnard-pd"),
            _reason(b, _IMMIGRATION),
        )
        timed.append((ts, _message("searches", event)))
    for _ in range(immigration - 6):
        ts = b.rng.uniform(first, last)
        timed.append((ts, _message("searches", _immigration(b, ts))))

    # One of every kind first, so that even a short run shows every outcome; then the mix.
    for make, _ in _MIX:
        ts = b.rng.uniform(first, last)
        event = make(b, ts)
        timed.append((ts, _message(_topic_of(event), event)))
    makers = [make for make, _ in _MIX]
    weights = [weight for _, weight in _MIX]
    while len(timed) < events:
        ts = b.rng.uniform(first, last)
        event = b.rng.choices(makers, weights)[0](b, ts)
        timed.append((ts, _message(_topic_of(event), event)))
    timed.sort(key=lambda item: item[0])
    return Scenario(
        now=now,
        seed=seed,
        agencies=agencies,
        keys=dict(DEMO_KEYS),
        registry=registry,
        policy=policy,
        stream=tuple(m for _, m in timed),
        flip_id=flip["change_id"],
        forged_id=forged["change_id"],
        replay_id=revoked["change_id"],
        relabel_id=relabel["agency_id"],
    )


def decide_scenario(
    scenario: Scenario, statutes: StatuteBook
) -> Iterator[tuple[Message, Decision]]:
    """Every message of the scenario decided by the pure engine, in the order the demo sends.

    Each message goes through the worker's front door (`streamguard.stream.intake`, with its
    topic and key), so this is what the worker should decide too (its clock is later than
    `now`, but no retention limit in the scenario sits within hours of an event), and the demo
    can compare the two.
    """
    state = PolicyState.create(statutes, ())
    keys = parse_keys(scenario.keys, "the demo keys")
    memory = ReplayLedger()
    for message in scenario.messages:
        key = message.key.encode() if message.key is not None else None
        event = decode(message.value, state.version, role=message.topic, key=key)
        if isinstance(event, Unreadable):
            yield message, event.decision
            continue
        state, decision = decide_event(event, state, scenario.now, keys, memory=memory)
        entry = replay_entry_for(event, decision, scenario.now)
        if entry is not None:
            memory.remember(entry)
        yield message, decision
