"""A-XDR ``Data`` (IEC 62056-6-2 / Blue Book) to plain Python values, and back.

The tree uses plain types so layouts can match it cheaply:

========================  =========================
A-XDR                     Python
========================  =========================
null-data                 ``None``
array                     ``list``
structure                 ``tuple``
boolean                   ``bool``
integers, enum            ``int``
float32 / float64         ``float``
octet-string, bit-string  ``bytes``
visible-/utf8-string      ``str``
date-time / date / time   ``DateTimeField`` (raw 12/5/4 bytes)
========================  =========================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from ..errors import FrameError, RejectReason


@dataclass(frozen=True, slots=True)
class DateTimeField:
    """A tagged date-time (0x19), date (0x1A) or time (0x1B) value, kept raw."""

    tag: int
    raw: bytes


type Data = (
    bool | int | float | bytes | str | DateTimeField | list["Data"] | tuple["Data", ...] | None
)

type Encodable = (
    bool
    | int
    | float
    | bytes
    | str
    | DateTimeField
    | Typed
    | list["Encodable"]
    | tuple["Encodable", ...]
    | None
)

NULL: Final = 0x00
ARRAY: Final = 0x01
STRUCTURE: Final = 0x02
BOOLEAN: Final = 0x03
BIT_STRING: Final = 0x04
INT32: Final = 0x05
UINT32: Final = 0x06
OCTET_STRING: Final = 0x09
VISIBLE_STRING: Final = 0x0A
UTF8_STRING: Final = 0x0C
BCD: Final = 0x0D
INT8: Final = 0x0F
INT16: Final = 0x10
UINT8: Final = 0x11
UINT16: Final = 0x12
COMPACT_ARRAY: Final = 0x13
INT64: Final = 0x14
UINT64: Final = 0x15
ENUM: Final = 0x16
FLOAT32: Final = 0x17
FLOAT64: Final = 0x18
DATE_TIME: Final = 0x19
DATE: Final = 0x1A
TIME: Final = 0x1B

MAX_DEPTH: Final = 16

# tag -> (struct format, size) for fixed-size numbers
_FIXED: Final[dict[int, struct.Struct]] = {
    INT32: struct.Struct(">i"),
    UINT32: struct.Struct(">I"),
    INT8: struct.Struct(">b"),
    INT16: struct.Struct(">h"),
    UINT8: struct.Struct(">B"),
    UINT16: struct.Struct(">H"),
    INT64: struct.Struct(">q"),
    UINT64: struct.Struct(">Q"),
    ENUM: struct.Struct(">B"),
    BCD: struct.Struct(">B"),
    FLOAT32: struct.Struct(">f"),
    FLOAT64: struct.Struct(">d"),
}
_DATE_SIZES: Final = {DATE_TIME: 12, DATE: 5, TIME: 4}
_CONTAINERS: Final = frozenset({STRUCTURE, ARRAY})
_STRINGS: Final = frozenset({OCTET_STRING, VISIBLE_STRING, UTF8_STRING})


def _malformed(detail: str) -> FrameError:
    return FrameError(RejectReason.MALFORMED_APDU, detail)


def read_length(buf: bytes, pos: int) -> tuple[int, int]:
    """Read an A-XDR length (short form, or ``81 nn`` / ``82 nn nn`` ...)."""
    try:
        first = buf[pos]
    except IndexError:
        raise _malformed("length beyond end of data") from None
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4 or pos + 1 + count > len(buf):
        raise _malformed(f"bad long-form length at {pos}")
    return int.from_bytes(buf[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


# Per-tag dispatch tables for the hot path: what kind of element a tag starts.
_K_BAD, _K_FIXED, _K_CONTAINER, _K_STRING, _K_NULL, _K_OTHER = range(6)
_KIND: Final = [_K_BAD] * 256
_UNPACK: Final[list[struct.Struct | None]] = [None] * 256
for _tag, _st in _FIXED.items():
    _KIND[_tag] = _K_FIXED
    _UNPACK[_tag] = _st
for _tag in _CONTAINERS:
    _KIND[_tag] = _K_CONTAINER
for _tag in _STRINGS:
    _KIND[_tag] = _K_STRING
for _tag in (BOOLEAN, BIT_STRING, DATE_TIME, DATE, TIME):
    _KIND[_tag] = _K_OTHER
_KIND[NULL] = _K_NULL


def decode(buf: bytes, pos: int = 0, depth: int = 0) -> tuple[Data, int]:
    """Decode one ``Data`` element at ``pos``; return it and the position after it.

    Raises ``FrameError(MALFORMED_APDU)`` on anything that does not parse.
    This runs for every element of every frame, so it is one loop with an
    explicit stack of open containers and the common types inline, rather than
    a function call per element.
    """
    end = len(buf)
    kinds = _KIND
    unpackers = _UNPACK
    # open containers: (items so far, elements still to read, container tag)
    stack: list[tuple[list[Data], int, int]] = []
    items: list[Data] | None = None
    remaining = 0
    container = 0
    value: Data
    while True:
        if pos >= end:
            raise _malformed("data beyond end of APDU")
        tag = buf[pos]
        kind = kinds[tag]
        if kind == _K_FIXED:
            unpacker = unpackers[tag]
            start = pos + 1
            pos = start + unpacker.size  # type: ignore[union-attr]
            if pos > end:
                raise _malformed(f"truncated value of type 0x{tag:02X}")
            value = unpacker.unpack_from(buf, start)[0]  # type: ignore[union-attr]
        elif kind == _K_CONTAINER:
            count, pos = read_length(buf, pos + 1)
            if count > end - pos:  # every element takes at least one byte
                raise _malformed("element count larger than the data")
            if count:
                # this container's depth: the caller's, plus every open one
                if depth + len(stack) + (items is not None) >= MAX_DEPTH:
                    raise _malformed("data nested too deep")
                if items is not None:
                    stack.append((items, remaining, container))
                items, remaining, container = [], count, tag
                continue
            value = () if tag == STRUCTURE else []
        elif kind == _K_STRING and tag == OCTET_STRING and pos + 1 < end and buf[pos + 1] < 0x80:
            start = pos + 2
            pos = start + buf[pos + 1]
            if pos > end:
                raise _malformed("string longer than the data")
            value = buf[start:pos]
        elif kind == _K_NULL:
            value = None
            pos += 1
        else:
            value, pos = _decode_scalar(buf, pos, end)
        # hand the value to its container, closing every container it completes
        while True:
            if items is None:
                return value, pos
            items.append(value)
            remaining -= 1
            if remaining:
                break
            value = tuple(items) if container == STRUCTURE else items
            if stack:
                items, remaining, container = stack.pop()
            else:
                items = None


def _decode_scalar(buf: bytes, pos: int, end: int) -> tuple[Data, int]:
    """Decode the element types ``decode`` does not handle inline."""
    tag = buf[pos]
    pos += 1
    if tag in _STRINGS:
        length, pos = read_length(buf, pos)
        nxt = pos + length
        if nxt > end:
            raise _malformed("string longer than the data")
        raw = buf[pos:nxt]
        if tag == OCTET_STRING:
            return raw, nxt
        return raw.decode("utf-8" if tag == UTF8_STRING else "latin-1", "replace"), nxt
    if tag == BOOLEAN:
        if pos >= end:
            raise _malformed("truncated boolean")
        return buf[pos] != 0, pos + 1
    if tag == BIT_STRING:
        bits, pos = read_length(buf, pos)
        nxt = pos + (bits + 7) // 8
        if nxt > end:
            raise _malformed("bit-string longer than the data")
        return buf[pos:nxt], nxt
    size = _DATE_SIZES.get(tag)
    if size is not None:
        nxt = pos + size
        if nxt > end:
            raise _malformed("truncated date-time")
        return DateTimeField(tag, buf[pos:nxt]), nxt
    raise _malformed(f"unsupported data type 0x{tag:02X}")


def encode_length(length: int) -> bytes:
    """Encode an A-XDR length, long form when needed."""
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def encode(value: Encodable, int_tag: int = UINT32) -> bytes:
    """Encode a tree back to A-XDR (the inverse of ``decode``; tests and the encoder).

    Integers have no type in the tree, so use ``Typed`` for anything but ``int_tag``.
    """
    if isinstance(value, Typed):
        return value.encode()
    if value is None:
        return b"\x00"
    if isinstance(value, bool):
        return bytes((BOOLEAN, 1 if value else 0))
    if isinstance(value, int):
        return bytes((int_tag,)) + _FIXED[int_tag].pack(value)
    if isinstance(value, float):
        return bytes((FLOAT64,)) + _FIXED[FLOAT64].pack(value)
    if isinstance(value, bytes):
        return bytes((OCTET_STRING,)) + encode_length(len(value)) + value
    if isinstance(value, str):
        raw = value.encode("latin-1")
        return bytes((VISIBLE_STRING,)) + encode_length(len(raw)) + raw
    if isinstance(value, DateTimeField):
        if len(value.raw) != _DATE_SIZES[value.tag]:
            raise ValueError(f"type 0x{value.tag:02X} needs {_DATE_SIZES[value.tag]} bytes")
        return bytes((value.tag,)) + value.raw
    tag = STRUCTURE if isinstance(value, tuple) else ARRAY
    return bytes((tag,)) + encode_length(len(value)) + b"".join(encode(v, int_tag) for v in value)


@dataclass(frozen=True, slots=True)
class Typed:
    """A number with an explicit A-XDR type, for ``encode``."""

    tag: int
    value: int | float

    def encode(self) -> bytes:
        """Tag byte plus big-endian value."""
        return bytes((self.tag,)) + _FIXED[self.tag].pack(self.value)
