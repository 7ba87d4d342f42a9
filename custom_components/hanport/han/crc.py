"""CRC-16/X.25 (HDLC HCS/FCS) and CRC-16/ARC (P1), fast enough to run on every byte.

X.25 is the reflected form of CRC-CCITT. ``binascii.crc_hqx`` computes the
non-reflected CCITT CRC in C, so reflecting each input byte (a ``translate``,
also in C) and the 16-bit result gives X.25 without a Python-level loop.
"""

from __future__ import annotations

import binascii
import sys
from array import array
from typing import Final


def _reflect8(value: int) -> int:
    return int(f"{value:08b}"[::-1], 2)


_REFLECT_BYTES: Final = bytes(_reflect8(i) for i in range(256))
_REFLECT_HIGH: Final = tuple(_reflect8(i) for i in range(256))


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25: poly 0x1021 reflected, init 0xFFFF, xorout 0xFFFF."""
    crc = binascii.crc_hqx(bytes(data).translate(_REFLECT_BYTES), 0xFFFF)
    # reflect the 16-bit result: swap the bytes and reflect each
    reflected = (_REFLECT_HIGH[crc & 0xFF] << 8) | _REFLECT_HIGH[crc >> 8]
    return reflected ^ 0xFFFF


def _arc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_ARC_TABLE: Final = _arc_table()
# Slicing-by-2: the CRC after two more bytes, indexed by the low byte of crc ^ word.
_ARC_TABLE_2: Final = tuple(
    (_ARC_TABLE[i] >> 8) ^ _ARC_TABLE[_ARC_TABLE[i] & 0xFF] for i in range(256)
)
_BIG_ENDIAN: Final = sys.byteorder == "big"


def crc16_arc(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/ARC (P1 telegrams): poly 0x8005 reflected, init 0, no xorout.

    Two bytes per step (slicing-by-2) halves the Python-level loop.
    """
    raw = bytes(data)
    even = len(raw) & ~1
    words = array("H", raw[:even])
    if _BIG_ENDIAN:  # pragma: no cover - the words are little-endian pairs
        words.byteswap()
    crc = 0
    low, high = _ARC_TABLE_2, _ARC_TABLE
    for word in words:
        mixed = crc ^ word
        crc = low[mixed & 0xFF] ^ high[mixed >> 8]
    if even != len(raw):
        crc = (crc >> 8) ^ high[(crc ^ raw[-1]) & 0xFF]
    return crc
