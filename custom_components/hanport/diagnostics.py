"""Diagnostics: what the meter actually sent, with the meter ID and keys taken out.

A bug report needs the frames (lessons: users ask for exactly that), but a frame carries
the meter ID (its GS1 number or P1 equipment ID), which identifies a household, and the
entry holds the decryption keys. Keys are dropped; the meter ID is masked everywhere it
appears: entry title and unique ID, readings, device info and inside the raw frames in
every encoding a meter uses for it (ASCII, hex-ASCII as in P1, packed BCD, big-endian
integer). Masked bytes become ``2A`` ("*"), so a masked frame's checksum no longer fits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .connection import redact_url, serial_settings_apply
from .const import CONF_AUTH_KEY, CONF_KEY, CONF_METER_ID, CONF_URL, CONF_USB_ID
from .coordinator import HanportConfigEntry

REDACTED: Final = "**REDACTED**"
TO_REDACT: Final = {CONF_KEY, CONF_AUTH_KEY, CONF_USB_ID}  # the adapter's serial number too
MASK: Final = 0x2A
SYSTEM_TITLE_TAG: Final = b"\xdb\x08"
"""general-glo-ciphering: tag, title length, then 3 maker letters + 5 serial bytes."""


def id_patterns(meter_id: str) -> list[bytes]:
    """Return every byte form a meter may put its ID in, longest first."""
    raw = meter_id.encode(errors="replace")
    forms = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    if meter_id.isascii() and meter_id.isdigit():
        digits = meter_id if len(meter_id) % 2 == 0 else f"0{meter_id}"
        forms.add(bytes.fromhex(digits))
        number = int(meter_id)
        for size in (4, 8):
            # Only when the top byte is used: a small number's bytes match too much else.
            if 1 << (8 * size - 8) <= number < 1 << (8 * size):
                forms.add(number.to_bytes(size, "big"))
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def mask_frame(frame: bytes, meter_ids: Iterable[str]) -> bytes:
    """Replace each meter-ID occurrence (and an encrypted frame's serial) with 2A bytes."""
    out = bytearray(frame)
    for meter_id in meter_ids:
        for pattern in id_patterns(meter_id):
            start = out.find(pattern)
            while start != -1:
                out[start : start + len(pattern)] = bytes([MASK]) * len(pattern)
                start = out.find(pattern, start + len(pattern))
    if (title := out.find(SYSTEM_TITLE_TAG)) != -1 and title + 10 <= len(out):
        out[title + 5 : title + 10] = bytes([MASK]) * 5
    return bytes(out)


def mask_text(text: str, meter_ids: Iterable[str]) -> str:
    """Replace meter IDs inside a string (titles, unique IDs)."""
    for meter_id in meter_ids:
        if meter_id:
            text = text.replace(meter_id, REDACTED)
    return text


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HanportConfigEntry
) -> dict[str, Any]:
    """Return the entry, link, counters, last readings and masked raw frames."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    connection = runtime.connection
    ids = sorted(
        {*coordinator.meters, *(r.meter_id for r in coordinator.last_readings if r.meter_id)},
        key=len,
        reverse=True,
    )
    data = async_redact_data(dict(entry.data), TO_REDACT)
    data[CONF_URL] = redact_url(connection.url)
    if data.get(CONF_METER_ID):
        data[CONF_METER_ID] = REDACTED
    stream = connection.stream
    counters = stream.counters
    return {
        "entry": {
            "title": mask_text(entry.title, ids),
            "unique_id": mask_text(entry.unique_id, ids) if entry.unique_id else None,
            "data": data,
            "options": dict(entry.options),
        },
        "connection": {
            "url": redact_url(connection.url),
            "serial_settings_apply": serial_settings_apply(connection.url),
            "serial_auto": connection.auto,
            "serial_in_use": connection.settings.key,
            "connected": connection.connected,
            "available": coordinator.available,
            "silence_timeout": connection.silence_timeout,
            "reconnects": connection.reconnects,
            "last_error": connection.last_error,
            "bytes_received": connection.bytes_received,
            "protocol": str(stream.protocol) if stream.protocol is not None else None,
        },
        "counters": {
            "frames_ok": counters.frames_ok,
            "rejected": {str(reason): count for reason, count in counters.rejected.items()},
            "bytes_discarded": counters.bytes_discarded,
            "energy_lower_rejected": coordinator.lower_energy_rejected,
        },
        "publish": asdict(coordinator.options),
        "meters": [
            {
                "meter_id": REDACTED,
                "current": meter_id == coordinator.current_meter,
                "manufacturer": info.manufacturer,
                "meter_type": info.meter_type,
                "list_version": info.list_version,
            }
            for meter_id, info in coordinator.meters.items()
        ],
        "last_readings": [
            {
                "protocol": str(reading.protocol),
                "manufacturer": reading.manufacturer,
                "meter_id": REDACTED if reading.meter_id else None,
                "meter_type": reading.meter_type,
                "list_version": reading.list_version,
                "list_kind": reading.list_kind.name,
                "meter_time": _iso(reading.meter_time),
                "values": dict(reading.values),
            }
            for reading in coordinator.last_readings
        ],
        "last_frames": [mask_frame(frame, ids).hex() for frame in stream.last_frames],
    }
