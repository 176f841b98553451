"""The local broker's storage format command: cluster ids that begin with '-' must survive it.

URL-safe base64 uses '-' for 62, so one random 16-byte id in 64 begins with '-'. kafka-storage
parses its arguments with argparse4j, which (like Python's argparse) takes a separate value
that begins with '-' for an option: `format -t -5y8p...` failed with "argument
--cluster-id/-t: expected one argument" and `streamguard kafka start` with it.
"""

from __future__ import annotations

import argparse
import base64
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamguard.local.broker import format_command, new_cluster_id

# Ids that begin with '-' (their first six bits are 62: a first byte 0xF8-0xFB).
DASH_IDS = ("-5y8pHcZS4eoWXEOH9plQw", "--8PXh0xRNm4C3RAhWCtRA", "-_zeJ3N7QbKp0kZHnqcz9g")


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgumentError(message)


def storage_format_parser() -> _Parser:
    """The options of `kafka-storage format` the local broker passes, as argparse4j reads them."""
    parser = _Parser(prog="kafka-storage", add_help=False)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = sub.add_parser("format", add_help=False)
    fmt.add_argument("--config", "-c", required=True)
    fmt.add_argument("--cluster-id", "-t", required=True)
    fmt.add_argument("--ignore-formatted", "-g", action="store_true")
    return parser


def storage_args(command: list[str], storage_class: str) -> list[str]:
    """What follows the main class: the storage tool's own arguments."""
    return command[command.index(storage_class) + 1 :]


@pytest.mark.parametrize("cluster_id", DASH_IDS)
def test_a_cluster_id_that_begins_with_a_dash_reaches_the_storage_tool(cluster_id: str) -> None:
    command = format_command(
        "/usr/bin/java",
        Path("/cache/libs"),
        "kafka.tools.StorageTool",
        cluster_id,
        config=Path("/data/server.properties"),
        log4j=Path("/data/log4j2.properties"),
    )
    parsed = storage_format_parser().parse_args(storage_args(command, "kafka.tools.StorageTool"))
    assert parsed.cluster_id == cluster_id
    assert parsed.config == "/data/server.properties"
    assert parsed.ignore_formatted


def test_the_reference_parser_rejects_a_dash_id_given_as_a_separate_value() -> None:
    """The parser above reproduces the bug, so the test above can tell the two forms apart."""
    with pytest.raises(_ArgumentError, match="expected one argument"):
        storage_format_parser().parse_args(["format", "-t", DASH_IDS[0], "-c", "x.properties"])


def _bytes_from(chunks: list[bytes]) -> Iterator[bytes]:
    yield from chunks
    yield from itertools.repeat(bytes(range(16)))


def test_new_cluster_ids_never_begin_with_a_dash() -> None:
    # 0xF8 first: base64 of it begins with '-'; the generator must draw again.
    source = _bytes_from([b"\xf8" + bytes(15), b"\xfb" + bytes(15)])
    cluster_id = new_cluster_id(lambda n: next(source)[:n])
    assert base64.urlsafe_b64encode(b"\xf8" + bytes(15)).decode().startswith("-")
    assert cluster_id == base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()


def test_new_cluster_ids_are_16_bytes_in_url_safe_base64() -> None:
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
