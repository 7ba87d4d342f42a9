"""Diagnostics: the frames a bug report needs, without the meter ID or the keys."""

from __future__ import annotations

from datetime import datetime

import pytest
from homeassistant.core import HomeAssistant
from syrupy.assertion import SnapshotAssertion

from custom_components.hanport.const import (
    CONF_AUTH_KEY,
    CONF_KEY,
    CONF_METER_ID,
    CONF_URL,
    CONF_USB_ID,
)
from custom_components.hanport.diagnostics import (
    async_get_config_entry_diagnostics,
    id_patterns,
    mask_frame,
    mask_text,
)
from custom_components.hanport.han.encode import Layout
from custom_components.hanport.han.reading import ListKind

from .conftest import (
    METER_ID,
    FakeMeter,
    TcpMeterServer,
    make_entry,
    setup_entry,
    wait_state,
)

KEY = "000102030405060708090A0B0C0D0E0F"
AUTH = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
CLOCK = datetime(2026, 3, 2, 10, 0, 0)


def _forms(meter_id: str) -> list[str]:
    raw = meter_id.encode()
    return [meter_id, raw.hex(), raw.hex().upper()]


ADAPTER = "0001A2B3C4"
"""A USB adapter's serial number (in the entry since USB rediscovery follows it)."""


async def test_diagnostics(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    meter: FakeMeter,
    snapshot: SnapshotAssertion,
) -> None:
    """Readings and masked frames; no meter ID, key, adapter serial or port secret anywhere."""
    entry = make_entry(
        tcp_meter.url,
        data={CONF_KEY: KEY, CONF_AUTH_KEY: AUTH, CONF_USB_ID: f"usb:10C4:EA60:{ADAPTER}"},
        title=f"HAN meter {METER_ID}",
    )
    await setup_entry(hass, entry)
    await tcp_meter.wait_clients()
    list1 = meter.frame(ListKind.POWER)[0]
    list3 = meter.frame(ListKind.ENERGY, CLOCK)[0]
    tcp_meter.send(list1 + list3)
    await wait_state(hass, "active_energy_import", "12345.67")
    result = await async_get_config_entry_diagnostics(hass, entry)
    text = repr(result)
    for secret in (*_forms(METER_ID), KEY, AUTH, KEY.lower(), AUTH.lower(), ADAPTER):
        assert secret not in text, secret
    # The frames as sent, with exactly the ID's 16 ASCII bytes masked.
    masked = bytearray(list3)
    start = list3.index(METER_ID.encode())
    masked[start : start + 16] = b"*" * 16
    assert result.pop("last_frames") == [list1.hex(), masked.hex()]
    assert result["connection"]["url"] == tcp_meter.url
    # The port number differs per run: keep it out of the snapshot.
    result["connection"]["url"] = result["entry"]["data"][CONF_URL] = "socket://127.0.0.1:PORT"
    assert result == snapshot


@pytest.mark.parametrize(
    ("meter_id", "encoded"),
    [
        ("7359992890941742", b"7359992890941742"),  # ASCII (Aidon, Kaifa, Kamstrup NO)
        ("7359992890941742", b"7359992890941742".hex().encode()),  # P1 hex-ASCII
        ("57123456", (57123456).to_bytes(4, "big")),  # Kamstrup DK meter number (u32)
        ("12345678", bytes.fromhex("12345678")),  # packed BCD
    ],
)
def test_mask_frame_forms(meter_id: str, encoded: bytes) -> None:
    frame = b"\x7e\xa0\x10" + encoded + b"\x00\x7e"
    masked = mask_frame(frame, [meter_id])
    assert encoded not in masked
    assert masked[:3] == frame[:3]
    assert masked[-2:] == frame[-2:]
    assert len(masked) == len(frame)


def test_mask_frame_system_title() -> None:
    """An encrypted frame's system title carries the meter's serial: masked too."""
    frame = b"\x00\xdb\x08KFM\x10\x20\x30\x40\x50\x81\x00"
    assert mask_frame(frame, []) == b"\x00\xdb\x08KFM*****\x81\x00"


def test_text_ids_and_empty_ids() -> None:
    """A P1 equipment ID with letters: ASCII and hex-ASCII forms; an empty ID masks nothing."""
    assert set(id_patterns("E0012345")) == {b"4530303132333435", b"E0012345"}
    assert set(id_patterns("Ab12")) == {b"Ab12", b"41623132"}
    assert mask_text("HAN meter E0012345", ["", "E0012345"]) == "HAN meter **REDACTED**"


def test_small_numbers_are_not_patterns() -> None:
    """A short numeric ID's integer bytes would match too much: not used."""
    assert id_patterns("1234") == [b"31323334", b"1234"]
    assert all(len(p) >= 4 for p in id_patterns("57"))


@pytest.mark.parametrize("layout", [Layout.P1_SE])
async def test_diagnostics_p1(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, layout: Layout
) -> None:
    """A P1 telegram's equipment ID (if any) is masked too; the readings stay."""
    meter = FakeMeter(layout=layout, meter_id=METER_ID, manufacturer="Aidon", meter_type="6534")
    # A meter without an ID in its frames: the flow stored none.
    entry = await setup_entry(hass, make_entry(tcp_meter.url, data={CONF_METER_ID: None}))
    await tcp_meter.wait_clients()
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK)[0])
    await wait_state(hass, "active_energy_import", "12345.67")
    result = await async_get_config_entry_diagnostics(hass, entry)
    assert result["last_readings"][0]["values"]["active_energy_import"] == 12345.67
    for form in _forms(METER_ID):
        assert form not in repr(result)
