"""C2SP signed notes, tlog checkpoints and Ed25519 cosignatures (docs/transparency.md).

Formats, byte for byte as in c2sp.org/signed-note@v1.0.0, c2sp.org/tlog-checkpoint@v1.0.0 and
c2sp.org/tlog-cosignature (Ed25519, `cosignature/v1`):

- a note is UTF-8 text ending in a newline, a blank line, then signature lines
  `— <key name> base64(4-byte key ID || signature)`;
- key ID = SHA-256(key name || 0x0A || type || 32-byte public key)[:4], type 0x01 for a log's
  Ed25519 note signature, 0x04 for a witness's timestamped cosignature;
- verifier key (public, shareable): `<name>+<hex key ID>+base64(type || public key)`;
  signer key (secret): `PRIVATE+KEY+<name>+<hex key ID>+base64(type || 32-byte seed)`, the
  encoding of Go's golang.org/x/mod/sumdb/note, so keys work with the Go tooling too;
- a checkpoint's text is origin, tree size, base64 root hash, one per line;
- a cosignature signs `cosignature/v1\\ntime <T>\\n` followed by the checkpoint text, and its
  signature bytes are the 8-byte big-endian timestamp T followed by the Ed25519 signature.

The Ed25519 primitives are the `cryptography` package's; nothing here is hand-rolled crypto.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from streamguard.trail.merkle import HASH_SIZE

__all__ = (
    "COSIGNATURE",
    "ED25519",
    "Checkpoint",
    "NoteError",
    "NoteSignature",
    "SignedNote",
    "SignerKey",
    "VerifierKey",
    "cosign",
    "generate_key",
    "parse_note",
    "sign_note",
    "verify_cosignatures",
    "verify_note",
)

ED25519: Final = 0x01
COSIGNATURE: Final = 0x04
_TYPES: Final = {ED25519: "Ed25519 note signature", COSIGNATURE: "Ed25519 cosignature/v1"}
_DASH: Final = "\u2014 "
_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
# signed-note: verifiers must accept at least 16 signatures; more is a note built to be slow.
MAX_SIGNATURES: Final = 100
MAX_NOTE_BYTES: Final = 1 << 20


class NoteError(ValueError):
    """A malformed note, key or checkpoint, or a signature that does not verify."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        msg = f"{what} is not standard base64"
        raise NoteError(msg) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or _has_control(name):
        msg = f"key name {name!r} must be non-empty, without spaces or '+'"
        raise NoteError(msg)


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 and c != "\n" for c in text)


def key_id(name: str, kind: int, public: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key with its name and type (0x01 log key, 0x04 witness cosigner key)."""

    name: str
    kind: int
    public: bytes

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.kind, self.public)

    def encode(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([self.kind]) + self.public)}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        name, hex_id, kind, material = _split_key(text.strip(), "verifier key")
        key = cls(name, kind, material)
        _check_key_id(key.key_id, hex_id, name)
        return key

    def _ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self._ed25519().verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SignerKey:
    """A secret key with its name and type; `repr` never shows the seed."""

    name: str
    kind: int
    _private: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"SignerKey(name={self.name!r}, kind={self.kind:#04x}, key_id={self.key_id:08x})"

    @property
    def public(self) -> bytes:
        return self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.kind, self.public)

    def verifier(self) -> VerifierKey:
        return VerifierKey(self.name, self.kind, self.public)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def encode(self) -> str:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{_b64(bytes([self.kind]) + seed)}"

    @classmethod
    def parse(cls, text: str) -> SignerKey:
        text = text.strip()
        if not text.startswith(_PRIVATE_PREFIX):
            msg = "a signer key starts with PRIVATE+KEY+"
            raise NoteError(msg)
        name, hex_id, kind, seed = _split_key(text.removeprefix(_PRIVATE_PREFIX), "signer key")
        key = cls(name, kind, Ed25519PrivateKey.from_private_bytes(seed))
        _check_key_id(key.key_id, hex_id, name)
        return key


def _split_key(text: str, what: str) -> tuple[str, str, int, bytes]:
    """<name>+<hex key id>+base64(type || 32 bytes): name, hex id, type, key bytes."""
    parts = text.split("+", 2)  # base64 may itself hold '+'; names may not
    if len(parts) != 3:
        msg = f"a {what} is <name>+<hex key id>+<base64 key>"
        raise NoteError(msg)
    name, hex_id, material = parts
    _check_name(name)
    raw = _b64decode(material, f"the {what}")
    if len(raw) != 33 or raw[0] not in _TYPES:
        msg = f"the {what} is not an Ed25519 (0x01) or cosignature (0x04) key"
        raise NoteError(msg)
    return name, hex_id, raw[0], raw[1:]


def _check_key_id(computed: int, hex_id: str, name: str) -> None:
    if hex_id != f"{computed:08x}":
        msg = f"the key id {hex_id!r} does not match the key {name!r}"
        raise NoteError(msg)


def generate_key(name: str, kind: int = ED25519) -> SignerKey:
    _check_name(name)
    if kind not in _TYPES:
        msg = f"unknown key type {kind:#04x}"
        raise NoteError(msg)
    return SignerKey(name, kind, Ed25519PrivateKey.generate())


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {_b64(self.key_id.to_bytes(4, 'big') + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, extra: Iterable[NoteSignature]) -> SignedNote:
        seen = {(s.name, s.key_id, s.signature) for s in self.signatures}
        added = [s for s in extra if (s.name, s.key_id, s.signature) not in seen]
        return SignedNote(self.text, self.signatures + tuple(added))


def parse_note(raw: str | bytes) -> SignedNote:
    """Split a signed note into its text and signature lines (no signature checked yet)."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_NOTE_BYTES:
            msg = "the note is too large"
            raise NoteError(msg)
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            msg = "the note is not UTF-8"
            raise NoteError(msg) from None
    if len(raw) > MAX_NOTE_BYTES:
        msg = "the note is too large"
        raise NoteError(msg)
    if _has_control(raw):
        msg = "the note contains control characters"
        raise NoteError(msg)
    split = raw.rfind("\n\n")
    if split < 0 or not raw.endswith("\n"):
        msg = "the note has no signature block (a blank line, then signature lines)"
        raise NoteError(msg)
    text, block = raw[: split + 1], raw[split + 2 :]
    signatures: list[NoteSignature] = []
    for line in block.removesuffix("\n").split("\n"):
        if not line.startswith(_DASH):
            msg = "a signature line must start with an em dash and a space"
            raise NoteError(msg)
        name, _, encoded = line.removeprefix(_DASH).partition(" ")
        _check_name(name)
        payload = _b64decode(encoded, "a note signature")
        if len(payload) < 5:
            msg = "a note signature is shorter than its key id"
            raise NoteError(msg)
        signatures.append(NoteSignature(name, int.from_bytes(payload[:4], "big"), payload[4:]))
        if len(signatures) > MAX_SIGNATURES:
            msg = f"the note has more than {MAX_SIGNATURES} signatures"
            raise NoteError(msg)
    return SignedNote(text, tuple(signatures))


def sign_note(text: str, key: SignerKey) -> SignedNote:
    """Sign a note text with a log key (type 0x01)."""
    if key.kind != ED25519:
        msg = "a note is signed with an Ed25519 (0x01) key, not a cosigner key"
        raise NoteError(msg)
    if not text.endswith("\n") or _has_control(text):
        msg = "a note text ends with a newline and has no control characters"
        raise NoteError(msg)
    signature = key.sign(text.encode())
    return SignedNote(text, (NoteSignature(key.name, key.key_id, signature),))


def verify_note(note: SignedNote, keys: Sequence[VerifierKey]) -> list[VerifierKey]:
    """The log keys (type 0x01) whose signatures verify; NoteError if none does or one fails.

    Signatures of unknown keys (other names or IDs, witnesses' cosignatures) are ignored, as
    the signed-note spec requires; a known key's bad signature rejects the whole note.
    """
    known = {(k.name, k.key_id): k for k in keys if k.kind == ED25519}
    good: list[VerifierKey] = []
    for sig in note.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            continue
        if not key.verify(sig.signature, note.text.encode()):
            msg = f"the signature of {sig.name} ({sig.key_id:08x}) does not verify"
            raise NoteError(msg)
        good.append(key)
    if not good:
        msg = "the note carries no signature of a trusted key"
        raise NoteError(msg)
    return good


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(note: SignedNote, key: SignerKey, timestamp: int) -> NoteSignature:
    """A witness's timestamped cosignature (type 0x04) over a checkpoint note's text."""
    if key.kind != COSIGNATURE:
        msg = "a cosignature needs a cosigner (0x04) key"
        raise NoteError(msg)
    if not 0 < timestamp < 1 << 63:
        msg = "a cosignature timestamp is a positive POSIX time below 2^63"
        raise NoteError(msg)
    signature = key.sign(_cosigned_message(note.text, timestamp))
    return NoteSignature(key.name, key.key_id, struct.pack(">Q", timestamp) + signature)


def verify_cosignatures(note: SignedNote, keys: Sequence[VerifierKey]) -> dict[str, int]:
    """Witness name -> cosignature timestamp, for each trusted cosigner key that cosigned.

    A known key's cosignature that fails raises NoteError; unknown ones are ignored.
    """
    known = {(k.name, k.key_id): k for k in keys if k.kind == COSIGNATURE}
    out: dict[str, int] = {}
    for sig in note.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            continue
        if len(sig.signature) != 8 + 64:
            msg = f"the cosignature of {sig.name} is not 8 + 64 bytes"
            raise NoteError(msg)
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        if not key.verify(sig.signature[8:], _cosigned_message(note.text, timestamp)):
            msg = f"the cosignature of {sig.name} ({sig.key_id:08x}) does not verify"
            raise NoteError(msg)
        out[sig.name] = max(timestamp, out.get(sig.name, 0))
    return out


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The body of a tlog checkpoint: origin, tree size and root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            msg = "a checkpoint has an origin, a tree size and a root hash line"
            raise NoteError(msg)
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not origin:
            msg = "the checkpoint origin is empty"
            raise NoteError(msg)
        if any(not line for line in lines[3:-1]):
            msg = "a checkpoint extension line is empty"
            raise NoteError(msg)
        if (
            not size_text.isascii()
            or not size_text.isdigit()
            or (size_text != "0" and size_text.startswith("0"))
        ):
            msg = f"the checkpoint tree size {size_text!r} is not a decimal without leading zeros"
            raise NoteError(msg)
        root = _b64decode(root_text, "the checkpoint root hash")
        if len(root) != HASH_SIZE:
            msg = "the checkpoint root hash is not 32 bytes"
            raise NoteError(msg)
        return cls(origin, int(size_text), root)
