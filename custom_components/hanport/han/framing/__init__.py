"""Framing: a byte stream of any mix of formats -> checked, reassembled messages.

``FrameReader`` keeps one bounded buffer and hunts it for the earliest start of
any format it handles (one compiled regex, C speed): HDLC ``7E A?``, M-Bus
``68 L L 68``, P1 ``/XXX`` and, when enabled, bare APDUs (``E6 E7 00``, ``0F``,
``DB 08 XXX``).
Each candidate is checked by its format's parser; a failed one is counted and
the hunt resumes one byte after its start, so a frame hidden behind a false
start is still found. Bytes are never re-scanned: a candidate waiting for more
data is re-checked in O(1) (HDLC/M-Bus) or from its start (P1, bare APDU, both
capped at 4 KiB). A frame still waiting for its claimed length is given up as cut
short as soon as a whole frame that passes its own checks starts inside it, so a
truncated frame never holds back the intact ones after it.

Bare APDUs carry no checksum. They are hunted only while no checksummed frame
(or a header whose checksum held) has been seen in the last ``LOCK_WINDOW``
bytes, so the inside of a corrupted HDLC frame is never taken for a bare APDU.
On a cold stream (or after a checksummed frame) that lock cannot help: a
connection may open exactly at the APDU inside a damaged frame. So a bare APDU
is withheld until the next starts exactly at its end (a bridge sends them back
to back); then both are taken. Two back to back make the stream a bare one:
later APDUs are taken at once, after any bytes, and across reconnects (the
same port). ``flush`` releases a withheld one when the input is known to end
(a capture). The APDU inside a frame whose header was damaged follows that
header and is followed by FCS and flag, so it is never confirmed. Nor is a
candidate taken that holds a whole HDLC header whose HCS holds (a frame cut
short runs into the next frame's header, and that frame's info field would
follow it "back to back"), nor the inside of a refused HDLC or M-Bus frame: an
APDU that starts where that frame's header put the info field (the data), or
ends where it put the FCS (the CS), is skipped (with a frame end after it,
``parse_bare_apdu`` refuses it too).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from ..errors import Rejected, RejectReason
from ..reading import Protocol
from ._base import APDU_TAGS, LLC, NOT_A_FRAME, Bad, Found, Skip, StreamCounters
from .apdu import MAX_APDU, parse_bare_apdu
from .hdlc import (
    HdlcFrame,
    HdlcReassembler,
    build_hdlc_frame,
    claimed_info,
    header_within,
    parse_hdlc,
    whole_frame,
)
from .mbus import MbusFrame, MbusReassembler, build_mbus_frames, claimed_data, parse_mbus
from .p1 import MAX_TELEGRAM, build_p1_telegram, parse_p1

__all__ = [
    "APDU_TAGS",
    "CHECKSUMMED",
    "LLC",
    "LOCK_WINDOW",
    "MAX_APDU",
    "MAX_TELEGRAM",
    "NOT_A_FRAME",
    "Bad",
    "Found",
    "FrameReader",
    "HdlcFrame",
    "MbusFrame",
    "Message",
    "Skip",
    "StreamCounters",
    "build_hdlc_frame",
    "build_mbus_frames",
    "build_p1_telegram",
    "parse_bare_apdu",
    "parse_hdlc",
    "parse_mbus",
    "parse_p1",
]

_LOGGER = logging.getLogger(__name__)

LOCK_WINDOW: Final = 16384
"""Bytes after a checksummed frame during which bare APDUs are not hunted."""
CHECKSUMMED: Final = frozenset({Protocol.HDLC, Protocol.MBUS, Protocol.P1})

_PATTERNS: Final = {
    Protocol.HDLC: rb"\x7e[\xa0-\xaf]",
    Protocol.MBUS: rb"\x68(?P<l>.)(?P=l)\x68",
    Protocol.P1: rb"/[A-Za-z]{3}",
    Protocol.APDU: rb"\xe6\xe7\x00|\x0f|[\xdb\xdc]\x08[A-Z]{3}",
}
_TAIL: Final = 4
"""Bytes kept at the end of the buffer: a start pattern may continue in the next chunk."""
_NEVER: Final = re.compile(rb"(?!)")

_HDLC_LEAD: Final = 0x7E
_MBUS_LEAD: Final = 0x68
_P1_LEAD: Final = 0x2F


@dataclass(frozen=True, slots=True)
class Message:
    """A complete message that passed every framing check.

    ``payload``: HDLC the (reassembled) info field, LLC included; M-Bus the
    (reassembled) data after DTSAP; P1 the telegram; bare APDU the APDU as sent.
    ``frame`` is the raw frame bytes (all segments). ``result`` is what the
    bare-APDU check returned.
    """

    protocol: Protocol
    payload: bytes
    frame: bytes
    result: object = None


type _Parsed = Found[HdlcFrame] | Found[MbusFrame] | Found[bytes] | Bad | Skip | None


class FrameReader:
    """Bytes in, checked messages out; every rejected frame is counted and reported.

    ``apdu_check`` decides bare APDUs (they have no checksum): it gets the
    delimited APDU and returns something (kept as ``Message.result``) to accept
    it or ``None`` to treat it as garbage. Bare APDUs are hunted only when
    ``Protocol.APDU`` is in ``formats`` and ``apdu_check`` is given.
    """

    def __init__(
        self,
        *,
        formats: Collection[Protocol] = CHECKSUMMED,
        counters: StreamCounters | None = None,
        on_reject: Callable[[Rejected], None] | None = None,
        apdu_check: Callable[[bytes], object | None] | None = None,
    ) -> None:
        if not formats:
            raise ValueError("no format to hunt for")
        self.counters = counters if counters is not None else StreamCounters()
        self._on_reject = on_reject
        self._apdu_check = apdu_check
        framed = [_PATTERNS[p] for p in (Protocol.HDLC, Protocol.MBUS, Protocol.P1) if p in formats]
        self._framed_re = re.compile(b"|".join(framed), re.DOTALL) if framed else _NEVER
        self._all_re: re.Pattern[bytes] | None = None
        if Protocol.APDU in formats and apdu_check is not None:
            self._all_re = re.compile(b"|".join([*framed, _PATTERNS[Protocol.APDU]]), re.DOTALL)
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self._free_end = 0  # stream offset up to which bytes are a frame's trailer
        self._unlock_at = 0  # stream offset from which bare APDUs may be hunted
        self._refused_end = -1  # stream offset where the last refused bare APDU ended
        self._bare_end = -1  # stream offset a bare APDU may start at to be taken at once
        self._bare_stream = False  # bare APDUs back to back, no checksummed frame since
        self._withheld: Message | None = None  # a bare APDU after other bytes
        self._confirmed: Message | None = None  # ... whose successor started at its end
        # where the last refused HDLC or M-Bus frame said its APDU starts and ends
        self._damaged_info = -1
        self._damaged_end = -1
        # a frame waiting for its claimed length, and how far its inside was searched
        self._waiting = -1
        self._searched = 0
        self._hdlc = HdlcReassembler()
        self._mbus = MbusReassembler()

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame (bounded by the format caps)."""
        return len(self._buf)

    def reset(self) -> None:
        """Drop buffered bytes and partial messages (after a reconnect)."""
        self._discard(0, len(self._buf))
        self._base += len(self._buf)
        self._buf.clear()
        self._bare_end = -1  # a reconnect starts a new stream: nothing to follow
        self._withheld = None
        self._hdlc.reset()
        self._mbus.reset()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add bytes; return the messages completed by them."""
        return list(self.frames(data))

    def flush(self) -> list[Message]:
        """End the input (a capture, not a live port): release a withheld bare APDU.

        On a live port nothing ends, so a bare APDU nothing confirmed is never taken;
        a capture given whole may hold a single one, and the caller knows it is whole.
        """
        withheld, self._withheld = self._withheld, None
        return [withheld] if withheld is not None else []

    def frames(self, data: bytes | bytearray | memoryview) -> Iterator[Message]:
        """Add bytes; iterate the messages completed by them, in stream order.

        The bytes are buffered at once; exhaust the iterator before the next call.
        """
        before = len(self._buf)
        self._buf += data
        self.counters.bytes_received += len(self._buf) - before
        return self._scan()

    def _scan(self) -> Iterator[Message]:
        buf = self._buf
        pos = 0
        try:
            while True:
                size = len(buf)
                if pos >= size:
                    return  # all taken (what the hunt below would find: nothing to keep)
                # Shortcuts for a stream of HDLC frames, each what the hunt below finds:
                # a frame right here is the earliest match of any pattern; a lone 7E
                # (the last frame's closing flag) starts none (all patterns start
                # otherwise), so the frame after it is, and at the end it waits.
                lead = buf[pos]
                if lead == _HDLC_LEAD and pos + 1 < size and buf[pos + 1] & 0xF0 == 0xA0:
                    start = pos
                elif lead == _HDLC_LEAD and pos + 1 == size:
                    return
                elif (
                    lead == _HDLC_LEAD
                    and pos + 2 < size
                    and buf[pos + 1] == _HDLC_LEAD
                    and buf[pos + 2] & 0xF0 == 0xA0
                ):
                    self._discard(pos, pos + 1)
                    pos = start = pos + 1
                else:
                    unlock = self._unlock_at - self._base
                    if self._all_re is not None and pos >= unlock:
                        match = self._all_re.search(buf, pos)
                    else:
                        stop = size if self._all_re is None else min(size, unlock)
                        match = self._framed_re.search(buf, pos, min(size, stop + _TAIL))
                        if match is not None and match.start() >= stop:
                            match = None
                        if match is None and stop < size - _TAIL:
                            self._discard(pos, stop)  # the lock ends here: hunt APDUs too
                            pos = stop
                            continue
                    if match is None:
                        keep = max(pos, size - _TAIL)
                        self._discard(pos, keep)
                        pos = keep
                        return
                    start = match.start()
                    if start > pos:
                        self._discard(pos, start)
                        pos = start
                lead = buf[start]
                parsed: _Parsed
                if lead == _HDLC_LEAD:
                    whole = whole_frame(buf, start) if self._hdlc.idle else None
                    if whole is not None:
                        # the common case, exactly as parse_hdlc + _accept would take it
                        pos, info, raw = whole
                        self._lock(start)
                        self._free_end = self._base + pos + 1
                        yield Message(Protocol.HDLC, info, raw)
                        continue
                    parsed = parse_hdlc(buf, start)
                elif lead == _MBUS_LEAD:
                    parsed = parse_mbus(buf, start)
                elif lead == _P1_LEAD:
                    parsed = parse_p1(buf, start)
                else:
                    parsed = parse_bare_apdu(buf, start)
                if parsed is None:
                    inner = self._overtaken(lead, start) if lead != _P1_LEAD else -1
                    if inner < 0:
                        return  # wait for more bytes
                    # a whole frame starts inside this one's claimed length: it was cut
                    # (a bare APDU candidate waiting for its length was never a frame)
                    if lead in {_HDLC_LEAD, _MBUS_LEAD}:
                        self._rejected(self._cut(lead, start, inner), lead, start)
                    self._discard(start, inner)
                    pos = inner
                    continue
                if isinstance(parsed, Found):
                    message = self._accept(parsed, lead, start)
                    if message is not False:
                        pos = parsed.end
                        self._free_end = self._base + pos + parsed.trailer
                        if message is not None:
                            if self._confirmed is not None:
                                yield self._confirmed
                                self._confirmed = None
                            yield message
                        continue
                if isinstance(parsed, Bad):
                    self._rejected(parsed, lead, start)
                self._discard(start, start + 1)
                pos = start + 1
        finally:
            if pos:
                del buf[:pos]
                self._base += pos

    def _accept(
        self, found: Found[object], lead: int, start: int
    ) -> Message | Literal[False] | None:
        """Turn a found frame into a message; None = a segment was stored.

        False = a bare APDU the check refused: the hunt goes on one byte later,
        but not with a shorter candidate ending at the same byte (the same APDU
        without its LLC would only be refused, and counted, again).
        """
        item = found.item
        if isinstance(item, HdlcFrame):
            self._lock(start)
            complete, bads = self._hdlc.add(item)
            protocol = Protocol.HDLC
        elif isinstance(item, MbusFrame):
            self._lock(start)
            complete, bads = self._mbus.add(item)
            protocol = Protocol.MBUS
        elif isinstance(item, bytes) and lead == _P1_LEAD:
            self._lock(start)
            return Message(Protocol.P1, item, item)
        elif isinstance(item, bytes) and self._apdu_check is not None:
            end = self._base + found.end
            if end == self._refused_end:
                return False  # the tail of an APDU just refused (it without its LLC)
            if self._base + start == self._damaged_info or end == self._damaged_end:
                # exactly the info field or data of a refused frame: not bare
                self._refused_end = end
                return False
            if self._holds_a_header(start, found.end):
                return False  # a cut frame's bytes run into the next frame's header
            contiguous = self._base + start == self._bare_end
            verdict = self._apdu_check(item)
            if verdict is None:
                self._refused_end = end
                if contiguous:
                    self._bare_end = end
                return False
            self._bare_end = end
            message = Message(Protocol.APDU, item, item, verdict)
            if not (self._bare_stream or contiguous):
                self._withheld = message  # no checksum, and other bytes before it
                return None
            # taken at the stream's start, or right after the previous: then a bare stream
            self._bare_stream = True
            self._confirmed, self._withheld = self._withheld, None
            return message
        else:  # pragma: no cover - parsers return only the types above
            return False
        for bad in bads:
            self._report(bad)
        if complete is None:
            return None
        return Message(protocol, complete[0], complete[1])

    def _holds_a_header(self, start: int, end: int) -> bool:
        """Whether ``buf[start:end]`` holds a whole HDLC header whose HCS holds."""
        buf = self._buf
        at = buf.find(_HDLC_LEAD, start + 1, end)
        while at >= 0:
            if header_within(buf, at, end):
                return True
            at = buf.find(_HDLC_LEAD, at + 1, end)
        return False

    def _overtaken(self, lead: int, start: int) -> int:
        """Index of a whole checked frame inside the waiting one at ``start``, or -1.

        A frame cut short (a reset meter, a lost USB read) leaves a header that claims
        bytes that never come; the frames after it would wait until they fill its
        length. A frame that passes its own checks inside proves the cut: read it now.
        HDLC, M-Bus and bare APDU candidates wait on a length (P1 on its end line); each
        byte is searched once per waiting candidate (a frame inside still incomplete is
        re-checked when more bytes come).
        """
        buf = self._buf
        if self._waiting != self._base + start:
            self._waiting, self._searched = self._base + start, self._base + start + 1
        for match in self._framed_re.finditer(buf, self._searched - self._base):
            at = match.start()
            inner = buf[at]
            parsed = (
                parse_hdlc(buf, at)
                if inner == _HDLC_LEAD
                else parse_mbus(buf, at)
                if inner == _MBUS_LEAD
                else parse_p1(buf, at)
            )
            if parsed is None:
                self._searched = self._base + at
                return -1
            if isinstance(parsed, Found):
                return at
        self._searched = self._base + max(self._searched - self._base, len(buf) - _TAIL)
        return -1

    def _cut(self, lead: int, start: int, inner: int) -> Bad:
        reason = RejectReason.HDLC_BAD_LENGTH if lead == _HDLC_LEAD else RejectReason.MBUS_BAD_FRAME
        detail = f"cut short: a whole frame starts {inner - start} bytes in"
        return Bad(reason, detail, bytes(self._buf[start:inner]), True)

    def _rejected(self, bad: Bad, lead: int, start: int) -> None:
        self._report(bad)
        if lead == _HDLC_LEAD:
            info, fcs = claimed_info(self._buf, start)
            self._damaged_info = self._base + info if info >= 0 else -1
            self._damaged_end = self._base + fcs if fcs >= 0 else -1
        elif lead == _MBUS_LEAD:
            data, checksum = claimed_data(self._buf, start)
            self._damaged_info = self._base + data
            self._damaged_end = self._base + checksum
        if bad.evidence:
            self._lock(start)
            if lead == _HDLC_LEAD:
                dropped = self._hdlc.abandon("a frame between segments was rejected")
                if dropped is not None:
                    self._report(dropped)

    def _lock(self, start: int) -> None:
        self._bare_stream = False  # after the lock, bare APDUs must show themselves again
        self._unlock_at = max(self._unlock_at, self._base + start + LOCK_WINDOW)

    def _discard(self, start: int, end: int) -> None:
        """Count bytes skipped over, except a previous frame's trailer."""
        span = end - start
        if span <= 0:
            return
        free = min(span, self._free_end - self._base - start)
        self.counters.bytes_discarded += span - max(0, free)

    def _report(self, bad: Bad) -> None:
        self.counters.count_reject(bad.reason)
        _LOGGER.debug("rejected %s: %s", bad.reason, bad.detail)
        if self._on_reject is not None:
            try:
                self._on_reject(Rejected(bad.reason, bad.detail, bad.frame))
            except Exception:
                _LOGGER.exception("on_reject callback failed")
