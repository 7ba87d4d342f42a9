"""P1 ASCII telegrams (DSMR 4/5 style): ``/ident`` ... ``!CRC``.

The CRC is CRC-16/ARC over the bytes from ``/`` through ``!`` inclusive, sent as
four uppercase hex digits (lowercase is rejected: a flipped case bit must not
pass). A telegram without a CRC (DSMR 2/3, ``!`` then CRLF) is rejected: every
meter in the markets we serve sends one, and without it a corrupted value could
not be told from a real one.

Every telegram this module refuses is ``P1_CRC`` (its integrity could not be
checked), never ``P1_MALFORMED``: that one means a telegram passed its CRC but
said nothing usable, which tells the integration the serial settings are right.
"""

from __future__ import annotations

import re
from typing import Final

from ..crc import crc16_arc
from ..errors import RejectReason
from ._base import NOT_A_FRAME, Bad, Found, Skip

MAX_TELEGRAM: Final = 4096
"""Cap from ``/`` to ``!`` (real telegrams are under 1 KiB)."""
MAX_IDENT: Final = 96

_IDENT_LINE: Final = re.compile(rb"/[A-Za-z]{3}[\x20-\x7e]*\r\n")
_NOT_TEXT: Final = re.compile(rb"[^\x20-\x7e\r\n]")
_HEX4: Final = re.compile(rb"[0-9A-F]{4}")


def parse_p1(buf: bytes | bytearray, start: int) -> Found[bytes] | Bad | Skip | None:
    """Check the telegram starting at the ``/`` at ``buf[start]``; ``None`` = need more.

    The found item is the telegram normalised to end in ``!XXXX`` CR LF; that CR LF
    is a trailer the stream need not wait for.
    """
    size = len(buf)
    ident_end = buf.find(b"\r\n", start, min(size, start + MAX_IDENT + 2))
    if ident_end < 0:
        if size - start < MAX_IDENT + 2 and _NOT_TEXT.search(buf, start, size) is None:
            return None
        return NOT_A_FRAME
    if _IDENT_LINE.fullmatch(buf, start, ident_end + 2) is None:
        return NOT_A_FRAME
    limit = min(size, start + MAX_TELEGRAM)
    bang = buf.find(b"!", ident_end, limit)
    binary = _NOT_TEXT.search(buf, ident_end, bang if bang >= 0 else limit)
    if binary is not None:
        return Bad(
            RejectReason.P1_CRC,
            f"byte 0x{buf[binary.start()]:02X} in a telegram",
            bytes(buf[start : binary.end()]),
        )
    if bang < 0:
        if limit - start >= MAX_TELEGRAM:
            return Bad(
                RejectReason.OVERSIZE,
                f"no '!' within {MAX_TELEGRAM} bytes",
                bytes(buf[start:limit]),
            )
        return None
    if bang + 1 < size and buf[bang + 1] in b"\r\n":
        return Bad(
            RejectReason.P1_CRC,
            "telegram without CRC (DSMR 2/3) not accepted",
            bytes(buf[start : bang + 1]),
        )
    if bang + 5 > size:
        return None
    telegram = bytes(buf[start : bang + 5])
    digits = telegram[-4:]
    if _HEX4.fullmatch(digits) is None:
        return Bad(RejectReason.P1_CRC, f"bad CRC digits {digits!r}", telegram)
    crc = crc16_arc(telegram[:-4])
    if crc != int(digits, 16):
        return Bad(RejectReason.P1_CRC, f"CRC {crc:04X} != {digits.decode()}", telegram)
    return Found(telegram + b"\r\n", bang + 5, 2)


def build_p1_telegram(ident: str, lines: list[str]) -> bytes:
    """``/ident``, a blank line, the data lines and ``!CRC`` (inverse of ``parse_p1``).

    ``ident`` excludes the leading ``/``. Raises ``ValueError`` for non-ASCII text.
    """
    text = f"/{ident.removeprefix('/')}\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!"
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as err:
        raise ValueError(f"P1 telegrams are ASCII: {err}") from None
    return raw + f"{crc16_arc(raw):04X}\r\n".encode("ascii")
