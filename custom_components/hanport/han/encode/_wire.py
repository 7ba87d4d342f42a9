"""Transport builders for the encoder (INTERIM: minimal private copies).

TODO(encoder): switch to framing.hdlc.build_hdlc_frame, framing.mbus.build_mbus_frames,
framing.p1.build_p1_telegram, dlms.apdu.encode_data_notification and
dlms.cipher.encrypt_apdu as soon as they land, and delete this module's bodies.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crc import crc16_arc, crc16_x25
from ..dlms import axdr

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


def encode_data_notification(
    body: axdr.Encodable,
    *,
    invoke_id: int = 0x40000000,
    timestamp: bytes | None = None,
    datetime_style: str = "none",
) -> bytes:
    """``0F`` + invoke id + date-time (absent, ``0C``, or ``09 0C``) + body."""
    if datetime_style == "none" or timestamp is None:
        stamp = b"\x00"
    elif datetime_style == "axdr":
        stamp = b"\x0c" + timestamp
    else:
        stamp = b"\x09\x0c" + timestamp
    return b"\x0f" + invoke_id.to_bytes(4, "big") + stamp + axdr.encode(body)


def encrypt_apdu(
    plain_apdu: bytes,
    *,
    key: bytes,
    auth_key: bytes | None,
    system_title: bytes,
    frame_counter: int,
    security_control: int = 0x30,
    tag: int = 0xDB,
) -> bytes:
    """general-glo-ciphering APDU around ``plain_apdu`` (AES-128-GCM, 12-byte tag)."""
    fc = frame_counter.to_bytes(4, "big")
    iv = system_title + fc
    if security_control & 0x10:
        aad = bytes((security_control,)) + (auth_key or b"")
        sealed = AESGCM(key).encrypt(iv, plain_apdu, aad)
        cipher = sealed[: len(plain_apdu)] + sealed[len(plain_apdu) : len(plain_apdu) + 12]
    else:
        ctr = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).encryptor()
        cipher = ctr.update(plain_apdu) + ctr.finalize()
    content = bytes((security_control,)) + fc + cipher
    return (
        bytes((tag, len(system_title))) + system_title + axdr.encode_length(len(content)) + content
    )
