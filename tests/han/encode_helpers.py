"""Readings and independent frame parsers for the encoder tests.

The parsers here are deliberately small and separate from the library's
framing and APDU code, so the shape tests check the encoder against the
protocol brief rather than against the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from custom_components.hanport.han.crc import crc16_arc, crc16_x25
from custom_components.hanport.han.dlms import axdr
from custom_components.hanport.han.encode import Layout
from custom_components.hanport.han.reading import Protocol, Reading

KEY = bytes(range(16))
AUTH_KEY = bytes(range(16, 32))

ENCRYPTED_LAYOUTS = frozenset({Layout.KAMSTRUP_DK, Layout.LG_E450_AT, Layout.OBIS_ARRAY_AT})
"""Layouts whose meters always encrypt: their frames need KEY (and AUTH_KEY)."""
COUNTRY = {layout: layout.value.rsplit("_", 1)[1].upper() for layout in Layout}
"""The market of each layout, from its name (``aidon_se`` -> ``SE``)."""
assert set(COUNTRY.values()) <= {"NO", "SE", "DK", "FI", "AT"}, COUNTRY

POWERS = {
    "active_power_import": 1769.0,
    "active_power_export": 0.0,
    "reactive_power_import": 12.0,
    "reactive_power_export": 947.0,
}
THREE_PHASE = {
    "current_l1": 4.6,
    "current_l2": 0.3,
    "current_l3": 3.2,
    "voltage_l1": 244.5,
    "voltage_l2": 245.7,
    "voltage_l3": 244.6,
}
ENERGIES = {
    "active_energy_import": 94064.59,
    "active_energy_export": 12.3,
    "reactive_energy_import": 7.51,
    "reactive_energy_export": 9770.64,
}
PER_PHASE_POWERS = {
    f"{kind}_power_{direction}_l{phase}": float(10 * phase + offset)
    if direction == "import"
    else 0.0
    for phase in (1, 2, 3)
    for offset, (kind, direction) in enumerate(
        (("active", "import"), ("active", "export"), ("reactive", "import"), ("reactive", "export"))
    )
}


def reading(
    values: dict[str, float],
    *,
    meter_id: str | None = "7359992895913195",
    meter_type: str | None = None,
    meter_time: datetime | None = None,
    manufacturer: str | None = None,
) -> Reading:
    """A reading as a simulator would hand it to the encoder."""
    return Reading(
        protocol=Protocol.HDLC,
        manufacturer=manufacturer,
        meter_id=meter_id,
        meter_type=meter_type,
        list_version=None,
        meter_time=meter_time,
        values=MappingProxyType(values),
    )


@dataclass(frozen=True)
class Hdlc:
    """One parsed HDLC frame."""

    segmented: bool
    dest: bytes
    src: bytes
    control: int
    info: bytes


def _address(buf: bytes, pos: int) -> tuple[bytes, int]:
    end = pos
    while not buf[end] & 1:
        end += 1
    return buf[pos : end + 1], end + 1


def parse_hdlc(frame: bytes) -> Hdlc:
    """Check flags, length, HCS and FCS; split addresses, control and info."""
    assert frame[0] == 0x7E
    assert frame[-1] == 0x7E
    fmt = int.from_bytes(frame[1:3], "big")
    assert fmt >> 12 == 0xA
    assert fmt & 0x7FF == len(frame) - 2
    dest, pos = _address(frame, 3)
    src, pos = _address(frame, pos)
    control = frame[pos]
    pos += 1
    assert int.from_bytes(frame[pos : pos + 2], "little") == crc16_x25(frame[1:pos])
    pos += 2
    assert int.from_bytes(frame[-3:-1], "little") == crc16_x25(frame[1:-3])
    return Hdlc(bool(fmt & 0x800), dest, src, control, frame[pos:-3])


@dataclass(frozen=True)
class Apdu:
    """One parsed data-notification."""

    invoke_id: int
    datetime_style: str  # "none", "axdr" (0C), "tagged" (09 0C)
    timestamp: bytes | None
    body: axdr.Data


def parse_notification(apdu: bytes) -> Apdu:
    """Split ``0F`` + invoke id + date-time + body (the body must use every byte)."""
    assert apdu[0] == 0x0F
    invoke = int.from_bytes(apdu[1:5], "big")
    if apdu[5] == 0x00:
        style, stamp, pos = "none", None, 6
    elif apdu[5] == 0x0C:
        style, stamp, pos = "axdr", apdu[6:18], 18
    else:
        assert apdu[5:7] == b"\x09\x0c"
        style, stamp, pos = "tagged", apdu[7:19], 19
    body, end = axdr.decode(apdu, pos)
    assert end == len(apdu)
    return Apdu(invoke, style, stamp, body)


def plain_hdlc_notification(frame: bytes) -> tuple[Hdlc, Apdu]:
    """An unciphered HDLC frame: LLC header, then the notification."""
    hdlc = parse_hdlc(frame)
    assert hdlc.info[:3] == b"\xe6\xe7\x00"
    return hdlc, parse_notification(hdlc.info[3:])


@dataclass(frozen=True)
class Glo:
    """One parsed general-glo-ciphering APDU, deciphered."""

    system_title: bytes
    security_control: int
    frame_counter: int
    plain: bytes


def decipher(apdu: bytes, key: bytes, auth_key: bytes | None = None) -> Glo:
    """Undo general-glo-ciphering (checking the GCM tag when SC says authenticated)."""
    assert apdu[0] == 0xDB
    title = apdu[2 : 2 + apdu[1]]
    length, pos = axdr.read_length(apdu, 2 + apdu[1])
    assert pos + length == len(apdu)
    sc = apdu[pos]
    fc = apdu[pos + 1 : pos + 5]
    content = apdu[pos + 5 :]
    iv = title + fc
    if sc & 0x10:
        cipher, tag = content[:-12], content[-12:]
        ctr = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).encryptor()
        plain = ctr.update(cipher) + ctr.finalize()
        resealed = AESGCM(key).encrypt(iv, plain, bytes((sc,)) + (auth_key or b""))
        assert resealed[-16:-4] == tag, "GCM tag does not verify"
    else:
        ctr = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).encryptor()
        plain = ctr.update(content) + ctr.finalize()
    return Glo(title, sc, int.from_bytes(fc, "big"), plain)


@dataclass(frozen=True)
class MbusSegment:
    """One wired M-Bus long frame."""

    c: int
    a: int
    ci: int
    stsap: int
    dtsap: int
    data: bytes


def parse_mbus(raw: bytes) -> list[MbusSegment]:
    """Split back-to-back long frames, checking L, checksum and stop byte."""
    out: list[MbusSegment] = []
    pos = 0
    while pos < len(raw):
        assert raw[pos] == 0x68
        assert raw[pos + 3] == 0x68
        length = raw[pos + 1]
        assert raw[pos + 2] == length
        payload = raw[pos + 4 : pos + 4 + length]
        assert raw[pos + 4 + length] == sum(payload) & 0xFF
        assert raw[pos + 5 + length] == 0x16
        c, a, ci, stsap, dtsap = payload[:5]
        out.append(MbusSegment(c, a, ci, stsap, dtsap, payload[5:]))
        pos += 6 + length
    return out


def parse_p1(raw: bytes) -> tuple[str, list[str]]:
    """Check the CRC-16/ARC; return the ident and the data lines."""
    text = raw.decode("latin-1")
    bang = text.index("!")
    assert text.endswith("\r\n")
    assert int(text[bang + 1 : bang + 5], 16) == crc16_arc(raw[: bang + 1])
    head, blank, rest = text[:bang].partition("\r\n\r\n")
    assert head.startswith("/")
    assert blank  # an empty line follows the ident
    return head[1:], rest.split("\r\n")[:-1]
