"""Read ../shared/han/frames.json at run time (never copied into the repo) for DLMS tests.

The transport is unwrapped here by hand from the spec, so these tests do not depend
on the framing layer.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

FRAMES_JSON = Path(__file__).resolve().parents[3] / "shared" / "han" / "frames.json"


@cache
def _vectors() -> dict[str, dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(FRAMES_JSON.read_text())
    return {v["id"]: v for v in data}


def vector(vector_id: str) -> dict[str, Any]:
    """The vector with ``vector_id``; skips the test when frames.json is absent."""
    if not FRAMES_JSON.is_file():
        pytest.skip("../shared/han/frames.json not present")
    return _vectors()[vector_id]


def all_vectors() -> list[dict[str, Any]]:
    """Every vector, or none when frames.json is absent (parametrize then skips)."""
    if not FRAMES_JSON.is_file():
        return []
    return list(_vectors().values())


def hdlc_apdu(frame: bytes) -> bytes:
    """The APDU of one unsegmented HDLC frame: skip flag, format, addresses, control,
    HCS and the LLC header ``E6 E7 00``; drop FCS and the closing flag."""
    pos = 3  # 7E + 2-byte format
    for _ in range(2):  # destination, then source address: until a byte with LSB 1
        while not frame[pos] & 1:
            pos += 1
        pos += 1
    pos += 1 + 2  # control, HCS
    assert frame[pos : pos + 3] == b"\xe6\xe7\x00"
    return frame[pos + 3 : -3]


def mbus_apdu(frames: bytes) -> bytes:
    """Concatenate the data fields of consecutive M-Bus long frames
    (``68 L L 68 C A CI STSAP DTSAP data CS 16``)."""
    out = bytearray()
    pos = 0
    while pos < len(frames):
        assert frames[pos] == 0x68
        length = frames[pos + 1]
        out += frames[pos + 9 : pos + 4 + length]
        pos += 4 + length + 2
    return bytes(out)
