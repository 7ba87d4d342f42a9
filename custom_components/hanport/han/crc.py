"""CRC-16/X.25 (HDLC HCS/FCS) and CRC-16/ARC (P1), fast enough to run on every byte.

X.25 is the reflected form of CRC-CCITT. ``binascii.crc_hqx`` computes the
non-reflected CCITT CRC in C, so reflecting each input byte (a ``translate``,
also in C) and the 16-bit result gives X.25 without a Python-level loop.
The standard library has no CRC with ARC's polynomial; ``crc16_arc`` treats the
whole message as one big integer instead (polynomial folding, see below).
"""

from __future__ import annotations

import binascii
from typing import Final


def _reflect8(value: int) -> int:
    return int(f"{value:08b}"[::-1], 2)


_REFLECT_BYTES: Final = bytes(_reflect8(i) for i in range(256))
_REFLECT_HIGH: Final = tuple(_reflect8(i) for i in range(256))


REFLECT_BYTES: Final = _REFLECT_BYTES
"""``bytes.translate`` table that reverses the bits of every byte (for ``X25_RAW_RESIDUE``)."""
X25_RAW_RESIDUE: Final = int(f"{0x0F47 ^ 0xFFFF:016b}"[::-1], 2)
"""``binascii.crc_hqx(data.translate(REFLECT_BYTES), 0xFFFF)`` when ``data`` ends in its own
X.25 FCS (low byte first): the good residue 0x0F47 before reflection and xorout. Checking
a frame this way needs no reflection of the result (the HDLC hot path)."""


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25: poly 0x1021 reflected, init 0xFFFF, xorout 0xFFFF."""
    crc = binascii.crc_hqx(bytes(data).translate(_REFLECT_BYTES), 0xFFFF)
    # reflect the 16-bit result: swap the bytes and reflect each
    reflected = (_REFLECT_HIGH[crc & 0xFF] << 8) | _REFLECT_HIGH[crc >> 8]
    return reflected ^ 0xFFFF


# CRC-16/ARC without a Python loop over the data. ARC is the reflected CRC with
# P = x^16 + x^15 + x^2 + 1 = (x + 1)(x^15 + x + 1), init 0, no xorout: with X the
# message as one polynomial (coefficient of x^d = the bit processed d bits before
# the end: each byte bit-reversed, read big-endian), the result is
# reflect16(X * x^16 mod P). X mod (x + 1) is the parity of X. X mod T, T = x^15 + x + 1,
# comes from big-integer shifts and xors: T^m = x^15m + x^m + 1 for m a power of
# two (squaring is linear over GF(2)), so x^15m = x^m + 1 (mod T) and each fold
# X = H x^15m + L -> L + H x^m + H removes 14m bits, with m shrinking to 1. The
# two remainders give X mod P (Chinese remainder: T(1) = 1), and two 256-entry
# tables multiply by x^16 and reflect.
_T: Final = 0x8003
_FOLDS: Final = tuple((15 * m, m, (1 << 15 * m) - 1) for m in (2048, 512, 128, 32, 8, 2, 1))


def _times_x16_reflected(byte: int, shift: int) -> int:
    """reflect16((byte * x^shift) * x^16 mod P), the byte given as 8 coefficients."""
    value = byte << shift
    for _ in range(16):
        value <<= 1
        if value & 0x10000:
            value ^= 0x18005
    return int(f"{value:016b}"[::-1], 2)


_ARC_LOW: Final = tuple(_times_x16_reflected(byte, 0) for byte in range(256))
_ARC_HIGH: Final = tuple(_times_x16_reflected(byte, 8) for byte in range(256))


def crc16_arc(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/ARC (P1 telegrams): poly 0x8005 reflected, init 0, no xorout.

    Computed by folding the whole message as one integer (see above): a few dozen
    big-integer operations in C instead of a table step per byte.
    """
    x = int.from_bytes(bytes(data).translate(_REFLECT_BYTES), "big")
    parity = x.bit_count() & 1
    for width, m, low in _FOLDS:
        while x.bit_length() > width:
            high = x >> width
            x = (x & low) ^ high ^ (high << m)
    # x = X mod T (below x^15); add T once when needed to get X's parity back.
    if parity != x.bit_count() & 1:
        x ^= _T
    return _ARC_HIGH[x >> 8] ^ _ARC_LOW[x & 0xFF]
