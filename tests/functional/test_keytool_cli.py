"""`streamguard keys` and `streamguard sign` as an administrator uses them: no code, files only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from streamguard.core.keys import load_keys

VENTURA = "ca-ventura-county-so"
UNSIGNED = {
    "type": "policy_change",
    "agency_id": VENTURA,
    "setting": "national_lookup",
    "value": False,
    "actor": {"user_id": "a"},
}


def run(
    *args: str | Path, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamguard", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        input=stdin,
        cwd=cwd,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    command = result.args[3]  # [python, -m, streamguard, COMMAND, ...]
    assert command in ("keys", "sign")
    assert len(lines) == 1 and lines[0].startswith(f"streamguard {command}: error: ")
    assert says in lines[0]


def test_keys_new_writes_a_private_file_and_prints_the_public_entry(tmp_path: Path) -> None:
    """The private key file is 0600; stdout is a KEYS.json object with the public key only."""
    result = run("keys", "new", "--agency", VENTURA, "--key-id", "k-ventura", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)
    assert entry == {
        "k-ventura": {
            "agency_id": VENTURA,
            "alg": "ed25519",
            "public_key": entry["k-ventura"]["public_key"],
        }
    }
    private = tmp_path / "k-ventura.key.json"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert json.loads(private.read_text())["private_key"] not in result.stdout
    # the same id again never replaces a private key
    _one_line_error(
        run("keys", "new", "--agency", VENTURA, "--key-id", "k-ventura", cwd=tmp_path),
        "never overwritten",
    )
    _one_line_error(
        run("keys", "new", "--agency", VENTURA, "--out", private, cwd=tmp_path),
        f"{private} exists; a key file is never overwritten",
    )
    nowhere = tmp_path / "missing" / "k.key.json"
    _one_line_error(
        run("keys", "new", "--agency", VENTURA, "--out", nowhere, cwd=tmp_path),
        f"cannot write key file {nowhere}: the directory {nowhere.parent} does not exist",
    )


def test_keys_new_adds_to_a_keys_file_that_check_then_lists(tmp_path: Path) -> None:
    """--keys adds the entry (the file is created or extended); `keys check` lists the bindings."""
    keys = tmp_path / "KEYS.json"
    assert (
        run(
            "keys", "new", "--agency", VENTURA, "--key-id", "k-v", "--keys", keys, cwd=tmp_path
        ).returncode
        == 0
    )
    assert (
        run("keys", "new", "--registry", "--key-id", "k-r", "--keys", keys, cwd=tmp_path).returncode
        == 0
    )
    loaded = load_keys(keys)
    assert loaded["k-v"].agency_id == VENTURA and loaded["k-r"].is_registry
    listed = run("keys", "check", keys)
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == [
        "k-r\ted25519\tthe registry role",
        f"k-v\ted25519\tagency {VENTURA}",
    ]
    _one_line_error(
        run("keys", "new", "--registry", "--key-id", "k-r", "--keys", keys, cwd=tmp_path),
        "already has a key",
    )


def test_sign_turns_unsigned_lines_into_signed_ones_that_verify(tmp_path: Path) -> None:
    """Lines from stdin come out completed and signed; the deployment's key verifies them."""
    keys = tmp_path / "KEYS.json"
    run("keys", "new", "--agency", VENTURA, "--key-id", "k-v", "--keys", keys, cwd=tmp_path)
    run("keys", "new", "--registry", "--key-id", "k-r", "--keys", keys, cwd=tmp_path)
    change = {
        "type": "policy_change",
        "agency_id": VENTURA,
        "setting": "national_lookup",
        "value": False,
        "ticket": "CHG-7",
    }
    result = run(
        "sign",
        "--key",
        tmp_path / "k-v.key.json",
        "--user",
        "admin-3",
        stdin=json.dumps(change) + "\n\n",
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    signed = json.loads(line)
    assert signed["key_id"] == "k-v" and signed["actor"] == {
        "user_id": "admin-3",
        "agency_id": VENTURA,
    }
    assert load_keys(keys)["k-v"].verifies("policy_change", signed)
    assert not load_keys(keys)["k-r"].verifies("policy_change", signed)

    records = tmp_path / "agencies.jsonl"
    records.write_text(
        json.dumps(
            {"agency_id": "tx-houston-pd", "name": "Houston PD", "state": "TX", "kind": "local"}
        )
    )
    keyed = run("sign", "--key", tmp_path / "k-r.key.json", "--with-key", records)
    assert keyed.returncode == 0, keyed.stderr
    message_key, value = keyed.stdout.rstrip("\n").split("\t")
    assert message_key == "tx-houston-pd"
    assert load_keys(keys)["k-r"].verifies("agency", json.loads(value))


def test_sign_refuses_what_the_key_may_not_sign_and_writes_nothing(tmp_path: Path) -> None:
    """A change of another agency anywhere in the input stops the whole batch with one line."""
    run("keys", "new", "--agency", VENTURA, "--key-id", "k-v", cwd=tmp_path)
    good = dict(UNSIGNED)
    foreign = {**good, "agency_id": "ca-tampa-pd"}
    lines = f"{json.dumps(good)}\n{json.dumps(foreign)}\n"
    _one_line_error(
        run("sign", "--key", tmp_path / "k-v.key.json", stdin=lines),
        "stdin line 2: key k-v is bound to",
    )
    _one_line_error(
        run("sign", "--key", tmp_path / "k-v.key.json", stdin="{oops\n"), "line 1 is not JSON"
    )
    _one_line_error(
        run("sign", "--key", tmp_path / "missing.key.json", stdin=""), "cannot read key file"
    )


def test_sign_warns_about_a_private_key_others_can_read(tmp_path: Path) -> None:
    """A key file with loose permissions still signs, with a warning on stderr."""
    run("keys", "new", "--agency", VENTURA, "--key-id", "k-v", cwd=tmp_path)
    private = tmp_path / "k-v.key.json"
    os.chmod(private, 0o644)
    result = run("sign", "--key", private, stdin=json.dumps(UNSIGNED))
    assert result.returncode == 0 and "chmod 600" in result.stderr


def test_a_v1_file_is_refused_and_convert_binds_each_key(tmp_path: Path) -> None:
    """check refuses v1 in one line naming convert; convert binds every key or refuses."""
    v1 = tmp_path / "old.json"
    v1.write_text(json.dumps({"k1": "a-long-v1-secret-value", "k2": "another-long-v1-secret"}))
    _one_line_error(run("keys", "check", v1), "keys convert")
    _one_line_error(run("keys", "convert", v1, "--bind", f"k1={VENTURA}"), "k2")
    _one_line_error(
        run("keys", "convert", v1, "--bind", "k1", "--bind", "k2=registry"), "KEY_ID=AGENCY_ID"
    )
    done = run("keys", "convert", v1, "--bind", f"k1={VENTURA}", "--bind", "k2=registry")
    assert done.returncode == 0, done.stderr
    converted = tmp_path / "new.json"
    converted.write_text(done.stdout)
    loaded = load_keys(converted)
    assert loaded["k1"].agency_id == VENTURA and loaded["k1"].alg == "hmac-sha256"
    assert loaded["k2"].is_registry


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _evaluate(events: Path) -> list[dict[str, object]]:
    result = run(
        "evaluate",
        events,
        "--agencies",
        EXAMPLES / "agencies.csv",
        "--keys",
        EXAMPLES / "keys.json",
        "--now",
        "2025-02-10T18:05:00Z",
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_readme_example_rejects_every_control_plane_attack() -> None:
    """The shipped example: signed changes apply; the other agency's key, the replay and the
    unsigned relabel are rejected; the search after them is denied on California data."""
    out = _evaluate(EXAMPLES / "events.jsonl")
    changes = [(o["event_id"], o["outcome"], o["codes"]) for o in out[:6]]
    assert changes == [
        ("chg-1", "applied", []),
        ("chg-2", "rejected", ["UNSIGNED_CHANGE", "STATUTE_FORBIDS_SETTING"]),
        ("chg-3", "applied", []),
        ("chg-4", "rejected", ["KEY_NOT_AUTHORIZED", "ACTOR_NOT_AUTHORIZED"]),
        ("chg-1", "rejected", ["REPLAYED_CHANGE"]),
        ("tx-houston-pd", "rejected", ["UNSIGNED_CHANGE"]),
    ]
    [houston] = [o for o in out if o["event_id"] == "s-2"]
    assert "ca-ventura-county-so" not in houston["allowed"]
    assert load_keys(EXAMPLES / "keys.json")  # public keys only, and a valid v1.1 file


def test_the_demo_only_example_key_signs_what_the_examples_verify(tmp_path: Path) -> None:
    """`streamguard sign` with the published example key yields a change evaluate applies."""
    change = {
        "type": "policy_change",
        "agency_id": VENTURA,
        "setting": "statewide_lookup",
        "value": True,
        "ticket": "CHG-9",
        "ts": "2025-02-10T18:00:00Z",
    }
    signed = run(
        "sign",
        "--key",
        EXAMPLES / "demo-only-k-ventura.key.json",
        "--user",
        "admin-3",
        stdin=json.dumps(change),
    )
    assert signed.returncode == 0, signed.stderr
    events = tmp_path / "events.jsonl"
    events.write_text(signed.stdout, encoding="utf-8")
    [decision] = _evaluate(events)
    assert (decision["outcome"], decision["codes"]) == ("applied", [])
