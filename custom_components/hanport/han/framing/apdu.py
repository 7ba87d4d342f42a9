"""Bare DLMS APDUs, as some bridges forward them without HDLC or M-Bus around.

A bare APDU has no checksum and no length field of its own, so it is delimited
by parsing it: a data-notification (``0F``) to the end of its A-XDR body, a
ciphered APDU (``DB``/``DC``) or general block transfer (``E0``) by its length.
Without the LLC header ``E6 E7 00`` only a data-notification or a ciphered APDU
whose system title starts with a maker's three letters (Luxembourg's Smarty
sends ``DB 08 SAG...``) is taken. A lone ``0F`` byte is common, so the stream
also requires a layout to decode the result before it accepts one.
"""

from __future__ import annotations

import re
from typing import Final

from ._base import LLC, NOT_A_FRAME, Found, Skip

MAX_APDU: Final = 4096
"""Cap on one bare APDU (push lists are under 1 KiB)."""
MAX_DEPTH: Final = 16

_NOTIFICATION: Final = 0x0F
_CIPHERED: Final = frozenset({0xDB, 0xDC})
_BLOCK_TRANSFER: Final = 0xE0
_LAST_BLOCK: Final = 0x80
_SYSTEM_TITLE: Final = 8
_FIXED_SIZES: Final = {
    0x03: 1,  # boolean
    0x05: 4,  # int32
    0x06: 4,  # uint32
    0x0D: 1,  # bcd
    0x0F: 1,  # int8
    0x10: 2,  # int16
    0x11: 1,  # uint8
    0x12: 2,  # uint16
    0x14: 8,  # int64
    0x15: 8,  # uint64
    0x16: 1,  # enum
    0x17: 4,  # float32
    0x18: 8,  # float64
    0x19: 12,  # date-time
    0x1A: 5,  # date
    0x1B: 4,  # time
}
_CONTAINERS: Final = frozenset({0x01, 0x02})  # array, structure
_STRINGS: Final = frozenset({0x09, 0x0A, 0x0C})  # octet-, visible-, utf8-string
_BIT_STRING: Final = 0x04
_NULL: Final = 0x00
_HDLC_FLAG: Final = 0x7E
_HDLC_FORMAT: Final = 0xA0
_MBUS_START: Final = 0x68
_MBUS_STOP: Final = 0x16
_STARTS: Final = frozenset({LLC[0], _NOTIFICATION, *_CIPHERED})
_TITLE_START: Final = re.compile(rb"(?:\x08[A-Z]{0,3})?")
"""Title length 8, then the maker's three-letter FLAG id (as far as it has arrived)."""


class _NeedMoreError(Exception):
    """The APDU continues past the bytes received so far."""


class _InvalidError(Exception):
    """Not an APDU (or longer than the cap)."""


class _Cursor:
    """Reads forward through ``buf`` within ``limit``; tells 'need more' from 'invalid'."""

    __slots__ = ("buf", "limit", "pos", "size")

    def __init__(self, buf: bytes | bytearray, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.size = len(buf)
        self.limit = pos + MAX_APDU

    def skip(self, count: int) -> None:
        end = self.pos + count
        if end > self.limit:
            raise _InvalidError
        if end > self.size:
            raise _NeedMoreError
        self.pos = end

    def byte(self) -> int:
        self.skip(1)
        return self.buf[self.pos - 1]

    def length(self) -> int:
        first = self.byte()
        if first < 0x80:
            return first
        count = first & 0x7F
        if not 1 <= count <= 4:
            raise _InvalidError
        self.skip(count)
        return int.from_bytes(self.buf[self.pos - count : self.pos], "big")

    def data(self, depth: int) -> None:
        tag = self.byte()
        size = _FIXED_SIZES.get(tag)
        if size is not None:
            self.skip(size)
        elif tag in _CONTAINERS:
            count = self.length()
            if depth >= MAX_DEPTH or count > self.limit - self.pos:
                raise _InvalidError
            for _ in range(count):
                self.data(depth + 1)
        elif tag in _STRINGS:
            self.skip(self.length())
        elif tag == _BIT_STRING:
            self.skip((self.length() + 7) // 8)
        elif tag != _NULL:
            raise _InvalidError


def _notification(cursor: _Cursor) -> None:
    cursor.skip(4)  # long-invoke-id-and-priority
    stamp = cursor.byte()
    if stamp == 0x0C:
        cursor.skip(12)
    elif stamp == 0x09:
        if cursor.byte() != 0x0C:
            raise _InvalidError
        cursor.skip(12)
    elif stamp != 0x00:
        raise _InvalidError
    cursor.data(0)


def _ciphered(cursor: _Cursor) -> None:
    if cursor.byte() != _SYSTEM_TITLE:
        raise _InvalidError
    cursor.skip(_SYSTEM_TITLE)
    length = cursor.length()
    if length < 5:  # security control + frame counter
        raise _InvalidError
    cursor.skip(length)


def _block_transfer(cursor: _Cursor) -> None:
    cursor.skip(5)  # block control, block number, acknowledged block number
    cursor.skip(cursor.length())


def _frame_end_follows(buf: bytes | bytearray, end: int) -> bool | None:
    """Whether the bytes after an APDU are a frame's end; ``None`` = not all arrived yet.

    HDLC ends with FCS (2) and the flag, M-Bus with CS and the stop byte. When the
    byte after the APDU could start the next bare APDU, its own bytes may look like
    that by chance, so the byte after the would-be end must also start a frame
    (``7E``/``A?`` after a flag, ``68`` after a stop byte). The answer never
    depends on how many of these bytes happen to be in ``buf`` yet.
    """
    size = len(buf)
    if buf[end] not in _STARTS:
        if end + 1 >= size:
            return None
        if buf[end + 1] == _MBUS_STOP:
            return True
        return None if end + 2 >= size else buf[end + 2] == _HDLC_FLAG
    if end + 2 >= size:
        return None
    if buf[end + 1] == _MBUS_STOP and buf[end + 2] == _MBUS_START:
        return True
    if buf[end + 2] != _HDLC_FLAG:
        return False
    if end + 3 >= size:
        return None
    follower = buf[end + 3]
    return follower == _HDLC_FLAG or follower & 0xF0 == _HDLC_FORMAT


def parse_bare_apdu(buf: bytes | bytearray, start: int) -> Found[bytes] | Skip | None:
    """Delimit the APDU at ``buf[start]`` (``E6 E7 00`` or ``0F``); ``None`` = need more.

    An APDU directly followed by what looks like an HDLC frame's end (FCS, flag)
    or an M-Bus frame's end (CS, 16) is the inside of a frame whose header was
    missed; it is not a bare APDU. Once a byte after the APDU has arrived, the
    answer waits for the few that decide this (so it does not depend on where a
    read happened to end); an APDU that ends exactly where the received bytes end
    is taken at once (a lone capture, or the last push before a pause), except a
    general-block-transfer block that is not the last: more comes after it anyway.
    """
    cursor = _Cursor(buf, start)
    try:
        if buf[start] == LLC[0]:
            head = bytes(buf[start : start + 3])
            if head != LLC[: len(head)]:
                return NOT_A_FRAME
            cursor.skip(3)
        tag = cursor.byte()
        if tag == _NOTIFICATION:
            _notification(cursor)
        elif tag in _CIPHERED:
            if cursor.pos - start == 1:
                title = bytes(buf[start + 1 : start + 5])
                if _TITLE_START.fullmatch(title) is None:
                    return NOT_A_FRAME
                if len(title) < 4:
                    return None
            _ciphered(cursor)
        elif cursor.pos - start == 1:
            return NOT_A_FRAME  # a block transfer is taken only after the LLC
        elif tag == _BLOCK_TRANSFER:
            last_block = buf[cursor.pos] & _LAST_BLOCK if cursor.pos < cursor.size else 0
            _block_transfer(cursor)
            if not last_block and cursor.pos == cursor.size:
                return None  # more blocks follow anyway: wait for the bytes after it
        else:
            return NOT_A_FRAME
    except _NeedMoreError:
        return None
    except _InvalidError:
        return NOT_A_FRAME
    end = cursor.pos
    if end < len(buf):
        tail = _frame_end_follows(buf, end)
        if tail is None:
            return None
        if tail:
            return NOT_A_FRAME
    return Found(bytes(buf[start:end]), end)
