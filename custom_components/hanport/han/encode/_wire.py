"""Transport builders the encoder uses, in one place.

The APDU and ciphering builders are the DLMS layer's own. The HDLC, M-Bus and
P1 builders here are INTERIM private copies: TODO(encoder) switch to
framing.hdlc.build_hdlc_frame, framing.mbus.build_mbus_frames and
framing.p1.build_p1_telegram as soon as they land, and delete these bodies.
"""

from __future__ import annotations

from typing import Final

from ..crc import crc16_arc, crc16_x25
from ..dlms.apdu import encode_data_notification
from ..dlms.cipher import encrypt_apdu

__all__ = [
    "LLC",
    "build_hdlc_frame",
    "build_mbus_frames",
    "build_p1_telegram",
    "encode_data_notification",
    "encrypt_apdu",
]

LLC: Final = b"\xe6\xe7\x00"


def build_hdlc_frame(
    info: bytes, *, dest: bytes = b"\x41", src: bytes = b"\x08\x83", control: int = 0x13
) -> bytes:
    """One unsegmented HDLC type-3 frame with flags, HCS and FCS."""
    length = 2 + len(dest) + len(src) + 1 + 2 + len(info) + 2
    head = bytes((0xA0 | (length >> 8), length & 0xFF)) + dest + src + bytes((control,))
    head += crc16_x25(head).to_bytes(2, "little")
    body = head + info
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def build_mbus_frames(data: bytes, *, max_segment: int = 245) -> bytes:
    """Wired M-Bus long frames (C 0x53, A 0xFF, STSAP 01, DTSAP 67), FIN on the last."""
    chunks = [data[i : i + max_segment] for i in range(0, len(data), max_segment)] or [b""]
    out = bytearray()
    for number, chunk in enumerate(chunks):
        ci = number | (0x10 if number == len(chunks) - 1 else 0)
        payload = bytes((0x53, 0xFF, ci, 0x01, 0x67)) + chunk
        out += bytes((0x68, len(payload), len(payload), 0x68)) + payload
        out += bytes((sum(payload) & 0xFF, 0x16))
    return bytes(out)


def build_p1_telegram(ident: str, lines: list[str]) -> bytes:
    """``/ident``, a blank line, the data lines and ``!CRC``."""
    text = f"/{ident}\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!"
    raw = text.encode("latin-1")
    return raw + f"{crc16_arc(raw):04X}\r\n".encode("ascii")
