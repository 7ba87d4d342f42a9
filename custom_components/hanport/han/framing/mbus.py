"""Wired M-Bus long frames carrying DLMS (EN 13757-2, as Austrian/Polish meters send).

``68 L L 68 | C | A | CI | STSAP | DTSAP | data | CS | 16``: L counts C through
the end of the data, CS is their byte sum mod 256. CI bit 4 (FIN) marks the
last segment of a message and bits 0-3 number the segments from 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..errors import RejectReason
from ._base import NOT_A_FRAME, Bad, Found, Skip

START: Final = 0x68
STOP: Final = 0x16
HEADER: Final = 5
"""C, A, CI, STSAP, DTSAP: the bytes L counts before the data."""
MAX_SEGMENT: Final = 0xFF - HEADER
MAX_MESSAGE: Final = 16384
"""Cap on the data of one segmented message."""

_FIN: Final = 0x10
_SEQUENCE: Final = 0x0F
_CI_RESERVED: Final = 0xE0


@dataclass(frozen=True, slots=True)
class MbusFrame:
    """One checked long frame; ``data`` is what follows DTSAP."""

    raw: bytes
    c: int
    a: int
    ci: int
    stsap: int
    dtsap: int
    data: bytes

    @property
    def fin(self) -> bool:
        """Last segment of its message."""
        return bool(self.ci & _FIN)

    @property
    def sequence(self) -> int:
        """Segment number (0-15, wrapping)."""
        return self.ci & _SEQUENCE


def parse_mbus(buf: bytes | bytearray, start: int) -> Found[MbusFrame] | Bad | Skip | None:
    """Check the long frame starting at ``buf[start]``; ``None`` = need more bytes.

    Sagemcom meters send ``68 01 01 68`` for a frame with L = 257 (the L byte
    overflows): an L smaller than the fixed header cannot be real, so 256 is
    added; the checksum and stop byte still decide.
    """
    size = len(buf)
    if size - start < 4:
        return None
    count = buf[start + 1]
    if buf[start] != START or buf[start + 3] != START or buf[start + 2] != count:
        return NOT_A_FRAME
    if count < HEADER:
        count += 0x100
    end = start + count + 6
    if end > size:
        return None
    raw = bytes(buf[start:end])
    if raw[-1] != STOP:
        return Bad(RejectReason.MBUS_BAD_FRAME, f"no stop byte after L={count}", raw)
    body = raw[4 : 4 + count]
    if sum(body) & 0xFF != raw[-2]:
        return Bad(RejectReason.MBUS_CHECKSUM, "checksum mismatch", raw, True)
    c, a, ci, stsap, dtsap = body[:HEADER]
    if ci & _CI_RESERVED:
        return Bad(RejectReason.MBUS_BAD_FRAME, f"CI 0x{ci:02X} is not a DLMS segment", raw, True)
    return Found(MbusFrame(raw, c, a, ci, stsap, dtsap, body[HEADER:]), end)


def claimed_data(buf: bytes | bytearray, start: int) -> tuple[int, int]:
    """Where the frame at ``buf[start]`` says its data starts and ends (the CS's index).

    Read from the L field alone, whether or not the frame passed its checks: the
    reader uses it to recognise the APDU inside a frame that was refused.
    """
    count = buf[start + 1]
    if count < HEADER:
        count += 0x100
    return start + 4 + HEADER, start + 4 + count


class MbusReassembler:
    """Joins segments by CI: numbered from 0, FIN on the last; a gap drops the message."""

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self._max_size = max_size
        self._datas: list[bytes] = []
        self._raws: list[bytes] = []
        self._size = 0
        self._next = 0
        self._route: tuple[int, int, int] = (0, 0, 0)

    @property
    def pending(self) -> bool:
        """True while a segmented message is incomplete."""
        return bool(self._datas)

    def reset(self) -> None:
        """Forget any partial message."""
        self._datas.clear()
        self._raws.clear()
        self._size = 0

    def add(self, frame: MbusFrame) -> tuple[tuple[bytes, bytes] | None, list[Bad]]:
        """Add a frame; return ``(data, raw frames)`` when a message is complete."""
        bads: list[Bad] = []
        route = (frame.a, frame.stsap, frame.dtsap)
        if self._datas and (frame.sequence != self._next or route != self._route):
            detail = f"expected segment {self._next}, got {frame.sequence}"
            bads.append(Bad(RejectReason.MBUS_SEGMENT, detail, b"".join(self._raws)))
            self.reset()
        if not self._datas:
            if frame.sequence != 0:
                detail = f"segment {frame.sequence} without segment 0"
                bads.append(Bad(RejectReason.MBUS_SEGMENT, detail, frame.raw))
                return None, bads
            if frame.fin:
                return (frame.data, frame.raw), bads
            self._route = route
        self._datas.append(frame.data)
        self._raws.append(frame.raw)
        self._size += len(frame.data)
        self._next = (frame.sequence + 1) & _SEQUENCE
        if self._size > self._max_size:
            detail = f"segmented message over {self._max_size} bytes"
            bads.append(Bad(RejectReason.OVERSIZE, detail, b"".join(self._raws)))
            self.reset()
            return None, bads
        if not frame.fin:
            return None, bads
        message = (b"".join(self._datas), b"".join(self._raws))
        self.reset()
        return message, bads


def build_mbus_frames(
    data: bytes,
    *,
    max_segment: int = 250,
    c: int = 0x53,
    a: int = 0xFF,
    stsap: int = 0x01,
    dtsap: int = 0x67,
) -> bytes:
    """One or more long frames carrying ``data`` (the inverse of parsing + reassembly).

    Segments are numbered from 0 (wrapping after 15) and the last has FIN set.
    Raises ``ValueError`` when ``max_segment`` is not 1-250.
    """
    if not 1 <= max_segment <= MAX_SEGMENT:
        raise ValueError(f"max_segment must be 1-{MAX_SEGMENT}")
    chunks = [data[i : i + max_segment] for i in range(0, len(data), max_segment)] or [b""]
    out = bytearray()
    last = len(chunks) - 1
    for number, chunk in enumerate(chunks):
        ci = (number & _SEQUENCE) | (_FIN if number == last else 0)
        body = bytes((c, a, ci, stsap, dtsap)) + chunk
        out += bytes((START, len(body), len(body), START)) + body
        out += bytes((sum(body) & 0xFF, STOP))
    return bytes(out)
