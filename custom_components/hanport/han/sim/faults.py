"""Line faults a simulated meter can suffer, and the byte transformations behind them.

Each fault reproduces something real readers meet (lessons.md): noise bursts,
flipped bits, cut-off frames, a silent line, a dropped TCP bridge, a reader
set to the wrong parity, the OSS-brikken CRLF expansion, Aidon re-sending the
previous hour's list, a meter clock that jumps, a USB adapter unplugged.

The transformations are pure functions so tests can apply them to any bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Fault(StrEnum):
    """Every fault the simulator can inject (names used by ``--faults``)."""

    GARBAGE = "garbage"  # random bytes between frames
    BITFLIP = "bitflip"  # one to three flipped bits inside a frame
    TRUNCATE = "truncate"  # a frame cut short, the next frame follows at once
    SILENCE = "silence"  # the meter sends nothing for a while
    DISCONNECT = "disconnect"  # the TCP bridge drops its clients (mid-frame when scheduled)
    PARITY = "parity"  # a period read with the wrong parity setting (8E1 vs 8N1)
    CRLF = "crlf"  # a period of OSS-brikken LF -> CRLF expansion
    REPEAT_HOURLY = "repeat_hourly"  # the next hourly list repeats the previous one (Aidon)
    CLOCK_GAP = "clock_gap"  # the meter's clock jumps
    UNPLUG = "unplug"  # the serial device disappears and comes back (pty) / bridge restarts


CORRUPTING: Final = frozenset(
    {Fault.BITFLIP, Fault.TRUNCATE, Fault.PARITY, Fault.CRLF, Fault.DISCONNECT}
)
"""Faults that change a frame's bytes: such a frame must never become a reading ..."""

REPAIRABLE: Final = frozenset({Fault.CRLF})
"""... except one a decoder may legitimately repair (then it must read the clean values)."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Random faults while the meter runs: each frame starts one with probability ``rate``.

    The kind is drawn from ``faults``; durations (silence, parity or CRLF
    periods, unplug time, clock jumps) are drawn too, all from a random stream
    of their own so a plan never changes the household's power curve.
    """

    faults: frozenset[Fault]
    rate: float = 0.02

    def __post_init__(self) -> None:
        """Reject rates outside 0..1."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")


def parse_faults(text: str) -> frozenset[Fault]:
    """``"garbage,bitflip"`` (or ``"all"``) -> the set of faults; ValueError names a bad one."""
    if text.strip().lower() == "all":
        return frozenset(Fault)
    out: set[Fault] = set()
    for part in text.split(","):
        name = part.strip().lower().replace("-", "_")
        if not name:
            continue
        try:
            out.add(Fault(name))
        except ValueError:
            known = ", ".join(fault.value for fault in Fault)
            raise ValueError(f"unknown fault {part.strip()!r} (known: {known}, all)") from None
    return frozenset(out)


def flip_bits(data: bytes, rng: random.Random, count: int = 1, *, protect_tail: int = 0) -> bytes:
    """Flip ``count`` distinct bits, never in the last ``protect_tail`` bytes.

    ``protect_tail`` keeps a P1 telegram's CRLF after the checksum intact: a
    flip there changes no checked byte, so the frame would not be corrupt.
    """
    if not data:
        return data
    span = max(len(data) - protect_tail, 1) * 8
    out = bytearray(data)
    for bit in rng.sample(range(span), min(count, span)):
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random, *, protect_tail: int = 0) -> bytes:
    """Keep a random non-empty prefix that ends before the last ``protect_tail`` bytes.

    At least one byte before the tail is lost. The tail is what a frame may
    lose without harm: an HDLC frame without its closing flag is still closed
    by the next frame's opening flag, and a P1 telegram does not need its
    final CRLF, so cutting only those would not corrupt anything.
    """
    keep_max = len(data) - protect_tail - 1
    if keep_max < 1:
        return data[:1] if len(data) > 1 else b""
    return data[: rng.randrange(1, keep_max + 1)]


def expand_crlf(data: bytes) -> bytes:
    """OSS-brikken's damage: every 0x0A becomes 0x0D 0x0A."""
    return data.replace(b"\n", b"\r\n")


def _uart_bits(data: bytes, parity: str) -> list[int]:
    bits: list[int] = []
    for byte in data:
        bits.append(0)
        bits.extend((byte >> shift) & 1 for shift in range(8))
        if parity == "E":
            bits.append(byte.bit_count() & 1)
        bits.append(1)
    bits.extend([1] * 12)  # idle line after the frame
    return bits


def uart_misread(data: bytes, sent: str, read: str) -> bytes:
    """Return what a UART set to ``read`` parity receives from a meter sending ``sent``.

    Both are "E" (8E1) or "N" (8N1). The line is emulated bit by bit: the
    receiver waits for a start bit, samples 8 data bits (and a parity bit it
    does not check, as Linux does without INPCK), then expects a stop bit;
    a missing stop bit is a framing error, which Linux delivers as 0x00.
    8E1 read as 8N1 zeroes every byte whose parity bit is 0; 8N1 read as
    8E1 loses character sync and yields garbage.
    """
    bits = _uart_bits(data, sent)
    width = 8 + (1 if read == "E" else 0)
    out = bytearray()
    index = 0
    end = len(bits)
    while index < end:
        if bits[index]:
            index += 1
            continue
        stop = index + 1 + width
        if stop >= end:
            break
        value = 0
        for shift in range(8):
            value |= bits[index + 1 + shift] << shift
        out.append(value if bits[stop] else 0)
        index = stop + 1
    return bytes(out)


def other_parity(parity: str) -> str:
    """Return the wrong setting a reader may have: 8N1 for an 8E1 meter and vice versa."""
    return "N" if parity == "E" else "E"
