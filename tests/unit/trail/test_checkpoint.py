"""C2SP signed notes, checkpoints and cosignatures: the spec's vectors, round trips, forgeries."""

from __future__ import annotations

import base64
import struct

import pytest

from streamguard.trail.checkpoint import (
    COSIGNATURE,
    ED25519,
    Checkpoint,
    NoteError,
    SignedNote,
    SignerKey,
    VerifierKey,
    cosign,
    generate_key,
    parse_note,
    sign_note,
    verify_cosignatures,
    verify_note,
)
from streamguard.trail.merkle import EMPTY_ROOT

# c2sp.org/signed-note, "Verifier keys" example: this key verifies this note.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYj"
    "OBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_the_spec_example_note_verifies_with_the_spec_key() -> None:
    key = VerifierKey.parse(SPEC_VKEY)
    assert key.encode() == SPEC_VKEY
    note = parse_note(SPEC_NOTE)
    assert note.text == "This is an example message.\n"
    assert verify_note(note, [key]) == [key]
    assert note.encode() == SPEC_NOTE


def test_a_changed_text_fails_and_unknown_keys_are_ignored() -> None:
    key = VerifierKey.parse(SPEC_VKEY)
    forged = parse_note(SPEC_NOTE.replace("example message", "exemplary message"))
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(forged, [key])
    stranger = generate_key("example.com/bar").verifier()
    with pytest.raises(NoteError, match="no signature of a trusted key"):
        verify_note(parse_note(SPEC_NOTE), [stranger])
    # Same name, other key: an unknown key (its key id differs), so ignored, not failed.
    impostor = generate_key("example.com/foo").verifier()
    with pytest.raises(NoteError, match="no signature of a trusted key"):
        verify_note(parse_note(SPEC_NOTE), [impostor])


def test_key_ids_follow_the_spec_and_keys_round_trip() -> None:
    key = generate_key("alpr.example/audit")
    vkey = VerifierKey.parse(key.verifier().encode())
    assert vkey == key.verifier()
    again = SignerKey.parse(key.encode())
    assert again.public == key.public and again.key_id == key.key_id
    assert key.encode().startswith("PRIVATE+KEY+alpr.example/audit+")
    # The secret is everything after the name: base64 may itself hold "+", so splitting on it
    # could leave a short or empty piece, which any repr contains.
    secret = key.encode().removeprefix("PRIVATE+KEY+alpr.example/audit+")
    assert len(secret) > 20 and "PRIVATE" not in repr(key) and secret not in repr(key)
    import hashlib

    want = hashlib.sha256(b"alpr.example/audit\n\x01" + key.public).digest()[:4]
    assert key.key_id == int.from_bytes(want, "big")
    witness = generate_key("w.example/1", COSIGNATURE)
    want = hashlib.sha256(b"w.example/1\n\x04" + witness.public).digest()[:4]
    assert witness.key_id == int.from_bytes(want, "big")


@pytest.mark.parametrize(
    "text",
    [
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong id
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",  # bad base64
        "example.com/foo+530d903a",
        "exa mple.com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "",
    ],
)
def test_bad_verifier_keys_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        VerifierKey.parse(text)


@pytest.mark.parametrize(
    "raw",
    [
        "no signatures\n",
        "text\n\n- example.com/foo AAAA\n",  # hyphen, not em dash
        "text\n\n\u2014 example.com/foo !!!!\n",
        "text\n\n\u2014 example.com/foo AAA=\n",  # shorter than a key id
        "te\x01xt\n\n\u2014 example.com/foo AAAAAAAA\n",
        b"\xff\xfe\n\n",
    ],
)
def test_malformed_notes_are_refused(raw: str | bytes) -> None:
    with pytest.raises(NoteError):
        parse_note(raw)


def test_checkpoint_body_format() -> None:
    cp = Checkpoint(
        "alpr.example/audit/searches-0",
        20852163,
        base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    )
    assert cp.text() == (
        "alpr.example/audit/searches-0\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    assert Checkpoint.parse(cp.text()) == cp
    assert Checkpoint.parse("o\n0\n" + base64.b64encode(EMPTY_ROOT).decode() + "\next\n").size == 0
    for bad in (
        "o\n01\nAAAA\n",
        "o\n1\n",
        "\n1\nAAAA\n",
        "o\n-1\nAAAA\n",
        "o\n1\nAAAA\n",
        "o\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n\n",
    ):
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)


def test_sign_then_verify_a_checkpoint_and_a_cosignature() -> None:
    log = generate_key("alpr.example/audit")
    witness = generate_key("auditor.example/w", COSIGNATURE)
    cp = Checkpoint("alpr.example/audit/searches-0", 3, EMPTY_ROOT)
    note = sign_note(cp.text(), log)
    assert verify_note(parse_note(note.encode()), [log.verifier()]) == [log.verifier()]
    sig = cosign(note, witness, 1_700_000_000)
    assert sig.signature[:8] == struct.pack(">Q", 1_700_000_000) and len(sig.signature) == 72
    both = parse_note(note.with_signatures([sig]).encode())
    assert verify_note(both, [log.verifier()]) == [log.verifier()]  # the cosignature is ignored
    assert verify_cosignatures(both, [witness.verifier()]) == {"auditor.example/w": 1_700_000_000}
    # A cosignature over another checkpoint does not carry over.
    other = sign_note(Checkpoint(cp.origin, 4, EMPTY_ROOT).text(), log)
    moved = SignedNote(other.text, (*other.signatures, sig))
    with pytest.raises(NoteError, match="cosignature"):
        verify_cosignatures(moved, [witness.verifier()])
    # Nor does a changed timestamp.
    stamp = struct.pack(">Q", 1_600_000_000) + sig.signature[8:]
    restamped = SignedNote(note.text, (*note.signatures, type(sig)(sig.name, sig.key_id, stamp)))
    with pytest.raises(NoteError, match="cosignature"):
        verify_cosignatures(restamped, [witness.verifier()])


def test_keys_are_used_only_for_their_kind() -> None:
    log = generate_key("alpr.example/audit")
    witness = generate_key("auditor.example/w", COSIGNATURE)
    note = sign_note("x\n", log)
    with pytest.raises(NoteError):
        sign_note("x\n", witness)
    with pytest.raises(NoteError):
        cosign(note, log, 1)
    with pytest.raises(NoteError):
        cosign(note, witness, 0)
    assert log.kind == ED25519
