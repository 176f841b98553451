"""Reason codes (docs/contract.md, section 3), spelled once."""

from __future__ import annotations

from typing import Final

__all__ = (
    "CATEGORY_CODES",
    "CHANGE_CODES",
    "INPUT_CODES",
    "NETWORK_CODES",
    "SEARCH_CODES",
)

# search level
UNKNOWN_REQUESTER: Final = "UNKNOWN_REQUESTER"
MISSING_PURPOSE: Final = "MISSING_PURPOSE"
VAGUE_PURPOSE: Final = "VAGUE_PURPOSE"
MISSING_CASE_NUMBER: Final = "MISSING_CASE_NUMBER"
PROHIBITED_PURPOSE_IMMIGRATION: Final = "PROHIBITED_PURPOSE_IMMIGRATION"
PROHIBITED_PURPOSE_HEALTH_CARE: Final = "PROHIBITED_PURPOSE_HEALTH_CARE"
PROTECTED_ACTIVITY: Final = "PROTECTED_ACTIVITY"
PROFILING: Final = "PROFILING"
RATE_LIMIT_EXCEEDED: Final = "RATE_LIMIT_EXCEEDED"
# per owner network or recipient
UNKNOWN_OWNER: Final = "UNKNOWN_OWNER"
NOT_SHARED: Final = "NOT_SHARED"
OUT_OF_STATE_RECIPIENT: Final = "OUT_OF_STATE_RECIPIENT"
FEDERAL_RECIPIENT: Final = "FEDERAL_RECIPIENT"
PRIVATE_RECIPIENT: Final = "PRIVATE_RECIPIENT"
NO_DECLARATION_ON_FILE: Final = "NO_DECLARATION_ON_FILE"
RETENTION_EXCEEDED: Final = "RETENTION_EXCEEDED"
# Additive extension: a recipient of a kind the owner's law does not count as eligible
# (a tribal agency under California's "public agency" definition), not covered by the codes above.
INELIGIBLE_RECIPIENT: Final = "INELIGIBLE_RECIPIENT"
# policy changes
UNSIGNED_CHANGE: Final = "UNSIGNED_CHANGE"
INVALID_SIGNATURE: Final = "INVALID_SIGNATURE"
UNKNOWN_AGENCY: Final = "UNKNOWN_AGENCY"
STATUTE_FORBIDS_SETTING: Final = "STATUTE_FORBIDS_SETTING"
# A contract code from v1.1 (section 2a); raised here only for an actor of another agency than
# the one changed, because keys are not bound to agencies yet (docs/contract.md, section 2a).
ACTOR_NOT_AUTHORIZED: Final = "ACTOR_NOT_AUTHORIZED"
# v1.1 (section 2a): the key may not sign this record, it was decided before or is stale, or it
# is dated ahead of the deciding clock.
KEY_NOT_AUTHORIZED: Final = "KEY_NOT_AUTHORIZED"
REPLAYED_CHANGE: Final = "REPLAYED_CHANGE"
FUTURE_DATED: Final = "FUTURE_DATED"
# any input
MALFORMED_EVENT: Final = "MALFORMED_EVENT"
SCHEMA_INVALID: Final = "SCHEMA_INVALID"

SEARCH_CODES: Final = (
    UNKNOWN_REQUESTER,
    MISSING_PURPOSE,
    VAGUE_PURPOSE,
    MISSING_CASE_NUMBER,
    PROHIBITED_PURPOSE_IMMIGRATION,
    PROHIBITED_PURPOSE_HEALTH_CARE,
    PROTECTED_ACTIVITY,
    PROFILING,
    RATE_LIMIT_EXCEEDED,
)
NETWORK_CODES: Final = (
    UNKNOWN_OWNER,
    NOT_SHARED,
    OUT_OF_STATE_RECIPIENT,
    FEDERAL_RECIPIENT,
    PRIVATE_RECIPIENT,
    NO_DECLARATION_ON_FILE,
    RETENTION_EXCEEDED,
    INELIGIBLE_RECIPIENT,
)
CHANGE_CODES: Final = (
    UNSIGNED_CHANGE,
    INVALID_SIGNATURE,
    UNKNOWN_AGENCY,
    STATUTE_FORBIDS_SETTING,
    ACTOR_NOT_AUTHORIZED,
    KEY_NOT_AUTHORIZED,
    REPLAYED_CHANGE,
    FUTURE_DATED,
)
INPUT_CODES: Final = (MALFORMED_EVENT, SCHEMA_INVALID)

# Classifier category -> the code it raises where the owner's state prohibits that purpose.
CATEGORY_CODES: Final = {
    "immigration": PROHIBITED_PURPOSE_IMMIGRATION,
    "health_care": PROHIBITED_PURPOSE_HEALTH_CARE,
    "protected_activity": PROTECTED_ACTIVITY,
    "profiling": PROFILING,
}
