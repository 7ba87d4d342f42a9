"""HDLC frame format type 3 (IEC 62056-46) as HAN ports send it.

HAN frames are not byte-stuffed: 0x7E and 0x7D occur raw inside the info field,
so a frame is delimited by the 11-bit length in its format field, never by the
next flag. A candidate is ``7E A?``; it is accepted only when the HCS, the FCS
and the closing flag agree with that length.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass, replace
from typing import Final

from ..crc import REFLECT_BYTES, X25_RAW_RESIDUE, crc16_x25
from ..errors import RejectReason
from ._base import APDU_TAGS, LLC, NOT_A_FRAME, Bad, Found, Skip

FLAG: Final = 0x7E
MAX_LENGTH: Final = 0x7FF
"""The format field's 11-bit length: bytes between the flags."""
MIN_LENGTH: Final = 7
"""Format (2) + one-byte addresses (2) + control (1) + HCS (2)."""
MAX_MESSAGE: Final = 16384
"""Cap on the info fields of one segmented message (meters send < 2 KiB)."""
MAX_ADDRESS: Final = 4

_SEGMENTED: Final = 0x0800
_HEAD: Final = 2 + 2 * MAX_ADDRESS + 1 + 2
"""Format, the longest addresses, control and HCS: all a header check needs."""
_REPAIR_WINDOW: Final = 2 * MAX_LENGTH + 2
"""Turning every LF into CRLF at most doubles a frame."""
_CRLF: Final = b"\r\n"
_GOOD_RESIDUE: Final = 0x0F47
"""CRC-16/X.25 over data followed by its own FCS (low byte first): the FCS holds."""


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    """One checked frame.

    ``raw`` is the frame as the meter sent it, both flags included (after an
    OSS-brikken repair, the repaired bytes: ``repaired`` is then True).
    """

    raw: bytes
    dest: bytes
    src: bytes
    control: int
    segmented: bool
    info: bytes
    repaired: bool = False


def _address_end(frame: bytes | bytearray, pos: int) -> int:
    """Index after an HDLC address (bytes up to the one with LSB 1), -1 if none."""
    for index in range(pos, min(pos + MAX_ADDRESS, len(frame))):
        if frame[index] & 1:
            return index + 1
    return -1


_ADDRESS_NOT_TERMINATED: Final = -1
_SHORTER_THAN_HEADER: Final = -2
_HCS_MISMATCH: Final = -3
_HEADER_ERRORS: Final = {
    _ADDRESS_NOT_TERMINATED: (RejectReason.HDLC_HEADER_CHECKSUM, "address field not terminated"),
    _SHORTER_THAN_HEADER: (RejectReason.HDLC_BAD_LENGTH, "frame shorter than its header"),
    _HCS_MISMATCH: (RejectReason.HDLC_HEADER_CHECKSUM, "HCS mismatch"),
}


def _check_header(head: bytes) -> int:
    """Size of format + addresses + control when the HCS holds, else a negative code.

    ``head`` is the frame from its format field on: ``_HEAD`` bytes of it, or all
    of it when shorter, so the answer never depends on how much has arrived.
    """
    dest_end = _address_end(head, 2)
    src_end = _address_end(head, dest_end) if dest_end > 0 else -1
    if src_end < 0:
        return _ADDRESS_NOT_TERMINATED
    header = src_end + 1
    if header + 2 > len(head):
        return _SHORTER_THAN_HEADER
    if crc16_x25(head[:header]) != head[header] | head[header + 1] << 8:
        return _HCS_MISMATCH
    return header


def header_within(buf: bytes | bytearray, start: int, end: int) -> bool:
    """Whether a frame header whose HCS holds starts at ``buf[start]`` and ends by ``end``.

    Strong evidence of a frame (the HCS is 16 bits): bytes holding one are no bare APDU.
    """
    if start + 3 > end or buf[start] != FLAG or buf[start + 1] & 0xF0 != 0xA0:
        return False
    length = (buf[start + 1] << 8 | buf[start + 2]) & MAX_LENGTH
    if length < MIN_LENGTH:
        return False
    head = bytes(buf[start + 1 : min(end, start + 1 + min(length, _HEAD))])
    return _check_header(head) >= 0


def _check(frame: bytes, raw: bytes, header: int, *, closing_ok: bool) -> HdlcFrame | Bad:
    """Check a frame (format field through FCS) whose header already passed."""
    if not closing_ok:
        detail = f"no closing flag after {len(frame)} bytes"
        return Bad(RejectReason.HDLC_BAD_LENGTH, detail, raw, True)
    if len(frame) == header + 2:
        info = b""  # a frame without an info field has only the one CRC
    elif len(frame) < header + 4:
        return Bad(RejectReason.HDLC_BAD_LENGTH, "no room for the FCS", raw, True)
    elif crc16_x25(frame) != _GOOD_RESIDUE:
        return Bad(RejectReason.HDLC_FRAME_CHECKSUM, "FCS mismatch", raw, True)
    else:
        info = frame[header + 2 : -2]
    dest_end = _address_end(frame, 2)
    return HdlcFrame(
        raw=raw,
        dest=frame[2:dest_end],
        src=frame[dest_end : header - 1],
        control=frame[header - 1],
        segmented=bool(frame[0] << 8 & _SEGMENTED),
        info=info,
    )


def parse_hdlc(buf: bytes | bytearray, start: int) -> Found[HdlcFrame] | Bad | Skip | None:
    """Check the frame whose opening flag is ``buf[start]``; ``None`` = need more bytes.

    A bad header (a false start in garbage) is rejected as soon as the header is
    in, without waiting for the length it claims. On any failed check an
    OSS-brikken repair is tried (see ``_repair``) when a CR LF could explain it;
    the original failure is returned when that does not yield a valid frame.
    """
    size = len(buf)
    if size - start < 3:
        return None
    if buf[start] != FLAG or buf[start + 1] & 0xF0 != 0xA0:
        return NOT_A_FRAME
    length = (buf[start + 1] << 8 | buf[start + 2]) & MAX_LENGTH
    if length < MIN_LENGTH:
        return Bad(
            RejectReason.HDLC_BAD_LENGTH,
            f"length {length} shorter than a header",
            bytes(buf[start : start + 3]),
        )
    seen = min(length + 1, _HEAD + 1)  # the header, its HCS and one more byte
    if size - start - 1 < seen:
        return None
    head = bytes(buf[start + 1 : start + 1 + seen])
    header = _check_header(head[: min(length, _HEAD)])
    if header < 0:
        # A CRLF-expanded header has a CR LF in these bytes (see _repair).
        if _CRLF in head:
            repaired = _repair(buf, start)
            if repaired is None or isinstance(repaired, Found):
                return repaired
        return Bad(*_HEADER_ERRORS[header], b"\x7e" + head[:length])
    closing = start + 1 + length
    if closing >= size:
        return None
    frame = bytes(buf[start + 1 : closing])
    raw = b"\x7e" + frame + bytes((buf[closing],))
    checked = _check(frame, raw, header, closing_ok=buf[closing] == FLAG)
    if isinstance(checked, HdlcFrame):
        return Found(checked, closing, 1)
    # A CRLF-expanded frame has a CR LF inside the first length+1 bytes (see _repair).
    if buf.find(_CRLF, start + 1, closing + 1) >= 0:
        repaired = _repair(buf, start)
        if repaired is None or isinstance(repaired, Found):
            return repaired
    return checked


def claimed_info(buf: bytes | bytearray, start: int) -> tuple[int, int]:
    """Where the frame at ``buf[start]`` says its info field starts and its FCS sits.

    Read from the format and address fields alone, whether or not they passed
    their checks (``-1`` for what they cannot tell): the reader uses it to
    recognise the APDU inside a frame whose header was damaged.
    """
    length = (buf[start + 1] << 8 | buf[start + 2]) & MAX_LENGTH
    if length < MIN_LENGTH:
        return -1, -1
    fcs = start + 1 + length - 2
    dest_end = _address_end(buf, start + 3)
    src_end = _address_end(buf, dest_end) if dest_end > 0 else -1
    return (src_end + 3 if src_end > 0 else -1), fcs


def whole_frame(buf: bytes | bytearray, start: int) -> tuple[int, bytes, bytes] | None:
    """Take the common case of ``parse_hdlc`` cheaply: ``(closing index, info, raw)`` or None.

    Only an unsegmented frame that is all there and passes every check of
    ``parse_hdlc`` (length, addresses, HCS, FCS, closing flag) comes back; for
    anything else (``None``) the reader calls ``parse_hdlc``, which decides it.
    Both checksums are checked by residue on the bit-reversed bytes, so neither
    needs its own slice or a reflected result.
    """
    if start + 3 > len(buf):
        return None
    fmt = buf[start + 1]
    length = (fmt << 8 | buf[start + 2]) & MAX_LENGTH
    closing = start + 1 + length
    if (
        fmt & 0xF8 != 0xA0  # not a type-3 format, or the segmentation bit is set
        or length < MIN_LENGTH
        or closing >= len(buf)
        or buf[closing] != FLAG
    ):
        return None
    frame = bytes(buf[start + 1 : closing])
    dest_end = 3 if frame[2] & 1 else _address_end(frame, 2)
    if dest_end < 0:
        return None
    src_end = dest_end + 1 if frame[dest_end] & 1 else _address_end(frame, dest_end)
    info_at = src_end + 3  # control, HCS
    if src_end < 0 or length < info_at:
        return None
    reflected = frame.translate(REFLECT_BYTES)
    if crc_hqx(reflected[:info_at], 0xFFFF) != X25_RAW_RESIDUE:
        return None
    if length == info_at:
        return closing, b"", b"\x7e" + frame + b"\x7e"
    if length < info_at + 2 or crc_hqx(reflected, 0xFFFF) != X25_RAW_RESIDUE:
        return None
    return closing, frame[info_at:-2], b"\x7e" + frame + b"\x7e"


def _repair(buf: bytes | bytearray, start: int) -> Found[HdlcFrame] | Skip | None:
    """Undo a reader that turned every 0x0A into 0x0D 0x0A (OSS-brikken).

    Delete each 0D before a 0A, re-derive the frame end from the repaired length
    field and accept only when the repaired HCS and FCS hold. The closing flag
    is not required: hass-AMS captures cut it, and in a stream the next frame's
    bytes may follow directly.
    """
    limit = min(len(buf), start + 1 + _REPAIR_WINDOW)
    window = bytes(buf[start + 1 : limit])
    fixed = window.replace(_CRLF, b"\n")
    if fixed[0] & 0xF0 != 0xA0:
        return NOT_A_FRAME
    length = (fixed[0] << 8 | fixed[1]) & MAX_LENGTH
    if length < MIN_LENGTH:
        return NOT_A_FRAME
    if len(fixed) < length:
        return None  # the window is never full here: it holds >= MAX_LENGTH repaired bytes
    # The 0x0D deleted at window index i, with k deleted before it, precedes the
    # repaired byte i - k; it belongs to the frame when that byte does.
    deleted = 0
    index = window.find(_CRLF)
    while index >= 0 and index - deleted < length:
        deleted += 1
        index = window.find(_CRLF, index + 2)
    if not deleted:
        return NOT_A_FRAME
    frame = fixed[:length]
    header = _check_header(frame[:_HEAD])
    if header < 0:
        return NOT_A_FRAME
    checked = _check(frame, b"\x7e" + frame + b"\x7e", header, closing_ok=True)
    if not isinstance(checked, HdlcFrame):
        return NOT_A_FRAME
    end = start + 1 + length + deleted
    trailer = 1 if end < len(buf) and buf[end] == FLAG else 0
    return Found(replace(checked, repaired=True), end, trailer)


def _starts_message(info: bytes) -> bool:
    """Whether an info field can be the first of a message (LLC or APDU tag first)."""
    return info[:3] == LLC or (bool(info) and info[0] in APDU_TAGS)


class HdlcReassembler:
    """Joins S-bit segments: info fields concatenated, the LLC only in the first.

    UI frames carry no sequence number, so a segment is taken as the next one
    only when it has the same addresses; a rejected frame in between (see
    ``abandon``) or a different sender drops the partial message, and the rest
    of a dropped message (frames that do not start one) is rejected too.
    """

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self._max_size = max_size
        self._infos: list[bytes] = []
        self._raws: list[bytes] = []
        self._size = 0
        self._addresses: tuple[bytes, bytes] = (b"", b"")
        self._orphans: tuple[bytes, bytes] | None = None  # sender of a dropped message

    @property
    def pending(self) -> bool:
        """True while a segmented message is incomplete."""
        return bool(self._infos)

    @property
    def idle(self) -> bool:
        """No partial message and no dropped one: an unsegmented frame is a whole message."""
        return not self._infos and self._orphans is None

    def reset(self) -> None:
        """Forget any partial message."""
        self._infos.clear()
        self._raws.clear()
        self._size = 0

    def _drop(self, detail: str) -> Bad:
        bad = Bad(RejectReason.HDLC_SEGMENT, detail, b"".join(self._raws))
        self._orphans = self._addresses
        self.reset()
        return bad

    def abandon(self, detail: str) -> Bad | None:
        """Drop a partial message (a segment may have been lost); report it."""
        return self._drop(detail) if self._infos else None

    def add(self, frame: HdlcFrame) -> tuple[tuple[bytes, bytes] | None, list[Bad]]:
        """Add a frame; return ``(info, raw frames)`` when a message is complete."""
        bads: list[Bad] = []
        addresses = (frame.dest, frame.src)
        if self._infos and addresses != self._addresses:
            bads.append(self._drop("segment from another address"))
        if not self._infos:
            starts = _starts_message(frame.info)
            if self._orphans == addresses and not starts:
                if not frame.segmented:
                    self._orphans = None
                detail = "rest of a dropped message"
                return None, [*bads, Bad(RejectReason.HDLC_SEGMENT, detail, frame.raw)]
            self._orphans = None
            if not frame.segmented:
                return (frame.info, frame.raw), bads
            if not starts:
                self._orphans = addresses
                bads.append(Bad(RejectReason.HDLC_SEGMENT, "segment without a start", frame.raw))
                return None, bads
            self._addresses = addresses
        self._size += len(frame.info)
        self._infos.append(frame.info)
        self._raws.append(frame.raw)
        if self._size > self._max_size:
            bads.append(
                Bad(
                    RejectReason.OVERSIZE,
                    f"segmented message over {self._max_size} bytes",
                    b"".join(self._raws),
                )
            )
            self.reset()
            return None, bads
        if frame.segmented:
            return None, bads
        message = (b"".join(self._infos), b"".join(self._raws))
        self.reset()
        return message, bads


def build_hdlc_frame(
    info: bytes,
    *,
    dest: bytes = b"\x41",
    src: bytes = b"\x08\x83",
    control: int = 0x13,
    segmented: bool = False,
) -> bytes:
    """One frame with flags, HCS and FCS (the inverse of ``parse_hdlc``).

    ``info`` includes the LLC header when wanted; an empty ``info`` gives a
    frame with the single CRC. Raises ``ValueError`` for an invalid address or a
    frame longer than the 11-bit length allows.
    """
    for name, address in (("dest", dest), ("src", src)):
        if not 1 <= len(address) <= MAX_ADDRESS or _address_end(address, 0) != len(address):
            raise ValueError(f"{name} must be 1-4 bytes with only the last one's LSB set")
    if not 0 <= control <= 0xFF:
        raise ValueError("control must be one byte")
    header_size = 2 + len(dest) + len(src) + 1
    length = header_size + 2 + (len(info) + 2 if info else 0)
    if length > MAX_LENGTH:
        raise ValueError(f"frame length {length} exceeds {MAX_LENGTH}")
    fmt = 0xA000 | (_SEGMENTED if segmented else 0) | length
    header = fmt.to_bytes(2, "big") + dest + src + bytes((control,))
    body = header + crc16_x25(header).to_bytes(2, "little")
    if info:
        body += info
        body += crc16_x25(body).to_bytes(2, "little")
    return b"\x7e" + body + b"\x7e"
