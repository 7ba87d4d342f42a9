"""CRC-16/X.25 (HDLC) and CRC-16/ARC (P1): catalogue check values, bitwise references."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from custom_components.hanport.han.crc import crc16_arc, crc16_x25

CHECK = b"123456789"


def _x25_bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _arc_bitwise(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_check_values() -> None:
    assert crc16_x25(CHECK) == 0x906E
    assert crc16_arc(CHECK) == 0xBB3D
    assert crc16_x25(b"") == 0x0000
    assert crc16_arc(b"") == 0x0000


def test_accepts_every_bytes_like() -> None:
    for data in (CHECK, bytearray(CHECK), memoryview(CHECK)):
        assert crc16_x25(data) == 0x906E
        assert crc16_arc(data) == 0xBB3D


def test_odd_and_even_lengths() -> None:
    # crc16_arc works two bytes per step; the odd tail byte takes the other path
    for size in range(12):
        data = bytes(range(0xF0, 0xF0 + size))
        assert crc16_arc(data) == _arc_bitwise(data)
        assert crc16_x25(data) == _x25_bitwise(data)


@given(st.binary(max_size=300))
def test_match_bitwise_reference(data: bytes) -> None:
    assert crc16_x25(data) == _x25_bitwise(data)
    assert crc16_arc(data) == _arc_bitwise(data)


def test_x25_residue_over_frame_with_fcs() -> None:
    # the FCS appended low byte first makes the CRC over data+FCS the X.25 good residue
    data = b"\xa0\x07\x41\x21\x13"
    fcs = crc16_x25(data).to_bytes(2, "little")
    assert crc16_x25(data + fcs) == 0x0F47


def test_arc_at_every_fold_boundary() -> None:
    """crc16_arc folds the message as one integer 15m bits at a time (m = 2048 ... 1)."""
    rng = random.Random(7)
    widths = [15 * m // 8 for m in (2048, 512, 128, 32, 8, 2, 1)]  # in bytes
    sizes = {*range(70), *(w + d for w in widths for d in (-1, 0, 1, 2)), 708, 4096, 20000}
    for size in sorted(size for size in sizes if size >= 0):
        for data in (rng.randbytes(size), b"\xff" * size, bytes(size)):
            assert crc16_arc(data) == _arc_bitwise(data), size


def test_arc_single_bits_everywhere() -> None:
    # the CRC is linear: every bit of every position must flip it by its own pattern
    size = 4096
    for position in (0, 1, 7, 480, 481, size // 2, size - 2, size - 1):
        for bit in range(8):
            data = bytearray(size)
            data[position] = 1 << bit
            assert crc16_arc(data) == _arc_bitwise(bytes(data)), (position, bit)
