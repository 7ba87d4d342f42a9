"""DLMS APDUs as HAN ports push them: data-notification, ciphering, block transfer.

``ApduDecoder.decode`` takes one APDU (after the LLC header) and returns a
``Notification``, ``None`` while a general-block-transfer is incomplete, or raises
``FrameError``. It never lets corrupted or wrongly-deciphered bytes through:

- A plain ``0F`` arrives under a transport checksum (HDLC FCS, M-Bus CS), and a
  GCM-verified plaintext under its tag, so trailing bytes after the body are
  tolerated there (the body itself parsed completely).
- Plaintext that nothing authenticated (SC 0x20/0x21, or SC 0x30 without a GAK) is
  random bytes under a wrong key, so it is accepted only when it is a complete
  data-notification with a structure/array body and nothing after it, or a P1
  telegram whose CRC checks; anything else is ``DECRYPTION_FAILED``.
"""

from __future__ import annotations

import struct
from typing import Final

from ..cosem import parse_datetime
from ..crc import crc16_arc
from ..errors import FrameError, RejectReason
from ..options import DecodeOptions
from . import axdr
from .cipher import DED_CIPHERING, GLO_CIPHERING, Decryptor, parse_ciphered
from .notification import Notification
from .shapes import ShapeCache

DATA_NOTIFICATION: Final = 0x0F
GENERAL_BLOCK_TRANSFER: Final = 0xE0
MAX_BLOCK_TRANSFER_SIZE: Final = 65536
"""Cap on a reassembled general-block-transfer (real push lists are < 2 KiB)."""

DATETIME_NONE: Final = "none"
DATETIME_AXDR: Final = "axdr"
DATETIME_TAGGED: Final = "tagged"

_DT_ABSENT: Final = 0x00
_DT_LENGTH: Final = 0x0C  # also the length of a COSEM date-time
_DT_TAGGED: Final = 0x09  # octet-string Data tag, then 0C
_DT_SIZE: Final = 12
_LAST_BLOCK: Final = 0x80
_U32: Final = struct.Struct(">I")
_GBT_HEADER: Final = struct.Struct(">BBHH")  # tag, block-control, block number, ack
_CIPHERED: Final = frozenset({GLO_CIPHERING, DED_CIPHERING})
_HEX_DIGITS: Final = frozenset(b"0123456789ABCDEFabcdef")


def _malformed(detail: str) -> FrameError:
    return FrameError(RejectReason.MALFORMED_APDU, detail)


def parse_data_notification(
    apdu: bytes,
    *,
    system_title: bytes | None = None,
    strict: bool = False,
    shapes: ShapeCache | None = None,
) -> Notification:
    """Decode a ``0F`` data-notification.

    ``strict`` (for unauthenticated plaintext) also rejects trailing bytes and a body
    that is not a structure or array. ``shapes`` (one per meter) decodes a body of a
    shape seen before without parsing it again (same result). Raises
    ``FrameError(MALFORMED_APDU)``.
    """
    if len(apdu) < 7:
        raise _malformed("data-notification too short")
    invoke_id = _U32.unpack_from(apdu, 1)[0]
    kind = apdu[5]
    raw: bytes | None = None
    if kind == _DT_ABSENT:
        pos = 6
    elif kind == _DT_LENGTH:
        pos = 6 + _DT_SIZE
        raw = apdu[6:pos]
    elif kind == _DT_TAGGED and apdu[6] == _DT_LENGTH:
        pos = 7 + _DT_SIZE
        raw = apdu[7:pos]
    else:
        raise _malformed(f"unknown date-time encoding 0x{kind:02X}")
    if pos >= len(apdu):
        raise _malformed("data-notification has no body")
    body, end = axdr.decode(apdu, pos) if shapes is None else shapes.decode(apdu, pos)
    if strict:
        if end != len(apdu):
            raise _malformed(f"{len(apdu) - end} bytes after the notification body")
        if not isinstance(body, (list, tuple)):
            raise _malformed("notification body is not a structure or array")
    return Notification(  # invoke_id, timestamp, body, system_title (positional: faster)
        invoke_id,
        parse_datetime(raw) if raw is not None else None,
        body,
        system_title,
    )


def _telegram_crc_ok(telegram: bytes) -> bool:
    """Check that ``telegram`` ends in ``!XXXX`` (optional CR/LF) and the CRC matches."""
    bang = telegram.rfind(b"!")
    if bang < 0:
        return False
    crc_text = telegram[bang + 1 : bang + 5]
    if len(crc_text) != 4 or not _HEX_DIGITS.issuperset(crc_text):
        return False
    if telegram[bang + 5 :].strip(b"\r\n"):
        return False
    return crc16_arc(memoryview(telegram)[: bang + 1]) == int(crc_text, 16)


class ApduDecoder:
    """Decodes one meter's APDUs; keeps the key objects and block-transfer state."""

    __slots__ = ("_blocks", "_decryptor", "_max_block_transfer", "_next_block", "_shapes")

    def __init__(
        self, options: DecodeOptions, *, max_block_transfer: int = MAX_BLOCK_TRANSFER_SIZE
    ) -> None:
        self._decryptor = Decryptor(options.key, options.auth_key)
        self._max_block_transfer = max_block_transfer
        self._blocks: bytearray | None = None
        self._next_block = 0
        self._shapes = ShapeCache()

    def reset(self) -> None:
        """Drop a partial block transfer (after a reconnect)."""
        self._blocks = None
        self._next_block = 0

    def decode(self, apdu: bytes) -> Notification | None:
        """Decode one APDU; ``None`` means a block was stored and more are needed.

        Raises ``FrameError`` (MALFORMED_APDU, UNSUPPORTED_APDU, ENCRYPTED_NO_KEY,
        DECRYPTION_FAILED, AUTHENTICATION_FAILED, BLOCK_TRANSFER).
        """
        tag = apdu[0] if apdu else -1
        if tag == DATA_NOTIFICATION:  # the common case first
            return parse_data_notification(apdu, shapes=self._shapes)
        if tag == GENERAL_BLOCK_TRANSFER:
            content = self._add_block(apdu)
            if content is None:
                return None
            return self._decode_content(content)
        return self._decode_content(apdu)

    def _decode_content(self, apdu: bytes) -> Notification:
        if not apdu:
            raise _malformed("empty APDU")
        tag = apdu[0]
        if tag == DATA_NOTIFICATION:
            return parse_data_notification(apdu, shapes=self._shapes)
        if tag in _CIPHERED:
            return self._decipher(apdu)
        if tag == GENERAL_BLOCK_TRANSFER:
            raise FrameError(RejectReason.BLOCK_TRANSFER, "block transfer inside a block transfer")
        raise FrameError(RejectReason.UNSUPPORTED_APDU, f"APDU tag 0x{tag:02X}")

    def _decipher(self, apdu: bytes) -> Notification:
        ciphered = parse_ciphered(apdu)
        plaintext, authenticated = self._decryptor.decrypt(ciphered)
        title = ciphered.system_title
        first = plaintext[:1]
        if authenticated:
            if first == b"/":
                return Notification(0, None, None, title, telegram=plaintext)
            if first != b"\x0f":
                raise FrameError(
                    RejectReason.UNSUPPORTED_APDU,
                    f"deciphered APDU tag 0x{plaintext[0]:02X}" if plaintext else "empty plaintext",
                )
            return parse_data_notification(plaintext, system_title=title, shapes=self._shapes)
        # Nothing vouches for these bytes: a wrong key gives random data here.
        if first == b"/":
            if _telegram_crc_ok(plaintext):
                return Notification(0, None, None, title, telegram=plaintext)
            raise FrameError(RejectReason.DECRYPTION_FAILED, "plaintext is not a valid telegram")
        if first != b"\x0f":
            raise FrameError(
                RejectReason.DECRYPTION_FAILED, "plaintext is not a data-notification (wrong key?)"
            )
        try:
            return parse_data_notification(
                plaintext, system_title=title, strict=True, shapes=self._shapes
            )
        except FrameError as err:
            raise FrameError(
                RejectReason.DECRYPTION_FAILED,
                f"plaintext does not parse (wrong key?): {err.detail}",
            ) from None

    def _add_block(self, apdu: bytes) -> bytes | None:
        """Store one general-block-transfer block; return the content after the last one.

        A block number 1 starts a new transfer (a pending incomplete one is dropped);
        any other number must follow the previous block.
        """
        try:
            if len(apdu) < _GBT_HEADER.size + 1:
                raise _malformed("block transfer header too short")
            _tag, control, number, _ack = _GBT_HEADER.unpack_from(apdu)
            length, pos = axdr.read_length(apdu, _GBT_HEADER.size)
            if pos + length != len(apdu):
                raise _malformed(f"block data length {length}, {len(apdu) - pos} bytes present")
        except FrameError:
            self.reset()
            raise
        blocks = self._blocks
        if number == 1:
            blocks = bytearray()
        elif blocks is None or number != self._next_block:
            expected = "block 1" if blocks is None else f"block {self._next_block}"
            self.reset()
            raise FrameError(RejectReason.BLOCK_TRANSFER, f"block {number}, expected {expected}")
        if len(blocks) + length > self._max_block_transfer:
            self.reset()
            raise FrameError(
                RejectReason.BLOCK_TRANSFER,
                f"reassembly exceeds {self._max_block_transfer} bytes",
            )
        blocks += memoryview(apdu)[pos:]
        if control & _LAST_BLOCK:
            self.reset()
            return bytes(blocks)
        self._blocks = blocks
        self._next_block = number + 1
        return None


def encode_data_notification(
    body: axdr.Encodable,
    *,
    invoke_id: int = 0x40000000,
    timestamp: bytes | None = None,
    datetime_style: str = DATETIME_NONE,
) -> bytes:
    """Build a ``0F`` data-notification (the decoder's inverse, for the encoder and tests).

    ``timestamp`` is a raw 12-byte COSEM date-time (``cosem.encode_datetime``);
    ``datetime_style`` picks its encoding: ``"none"`` (``00``, no timestamp allowed),
    ``"axdr"`` (``0C`` + 12) or ``"tagged"`` (``09 0C`` + 12).
    """
    if not 0 <= invoke_id <= 0xFFFFFFFF:
        raise ValueError("invoke_id must fit in 32 bits")
    if datetime_style == DATETIME_NONE:
        if timestamp is not None:
            raise ValueError('a timestamp needs datetime_style "axdr" or "tagged"')
        header = b"\x00"
    elif datetime_style in (DATETIME_AXDR, DATETIME_TAGGED):
        if timestamp is None or len(timestamp) != _DT_SIZE:
            raise ValueError("timestamp must be 12 bytes")
        prefix = b"\x0c" if datetime_style == DATETIME_AXDR else b"\x09\x0c"
        header = prefix + timestamp
    else:
        raise ValueError(f"unknown datetime_style {datetime_style!r}")
    return b"\x0f" + _U32.pack(invoke_id) + header + axdr.encode(body)


def encode_block_transfer(apdu: bytes, *, block_size: int = 200) -> list[bytes]:
    """Split ``apdu`` into general-block-transfer blocks numbered from 1.

    The inverse of reassembly, for the encoder and simulator (L&G E450 pushes this way).
    """
    if block_size < 1:
        raise ValueError("block_size must be positive")
    chunks = [apdu[i : i + block_size] for i in range(0, len(apdu), block_size)] or [b""]
    if len(chunks) > 0xFFFF:
        raise ValueError("more than 65535 blocks")
    last = len(chunks)
    return [
        _GBT_HEADER.pack(GENERAL_BLOCK_TRANSFER, _LAST_BLOCK if number == last else 0, number, 0)
        + axdr.encode_length(len(chunk))
        + chunk
        for number, chunk in enumerate(chunks, start=1)
    ]
