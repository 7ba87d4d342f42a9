"""Setup, unload, shutdown, the key repair and what never reaches the log."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.hanport import decode_options
from custom_components.hanport.const import (
    CONF_AUTH_KEY,
    CONF_COUNTRY,
    CONF_KEY,
    DOMAIN,
    KEY_ISSUE_FRAMES,
)
from custom_components.hanport.han.encode import Layout, encode_reading
from custom_components.hanport.han.reading import ListKind
from custom_components.hanport.repairs import async_create_key_issue, key_issue_id

from .conftest import (
    FakeMeter,
    PtyMeter,
    TcpMeterServer,
    make_entry,
    setup_entry,
    wait_for,
    wait_state,
)

KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTH = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
OTHER_KEY = bytes.fromhex("F0E0D0C0B0A090807060504030201000")
DK_ID = "57123456"


def _dk_meter() -> FakeMeter:
    return FakeMeter(layout=Layout.KAMSTRUP_DK, meter_id=DK_ID, meter_type="6841131BN243101040")


def _dk_frame(meter: FakeMeter, key: bytes, counter: int, **changes: float) -> bytes:
    reading = meter.reading(ListKind.ENERGY, None, **changes)
    return encode_reading(reading, meter.layout, key=key, auth_key=AUTH, frame_counter=counter)


def _state(hass: HomeAssistant, entry_id: str) -> ConfigEntryState:
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    return entry.state


async def test_setup_and_unload(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """Loading opens the port; unloading closes it and leaves nothing running."""
    entry = await setup_entry(hass, make_entry(tcp_meter.url))
    assert entry.state is ConfigEntryState.LOADED
    await tcp_meter.wait_clients()
    tcp_meter.send(meter.frame(ListKind.POWER)[0])
    await wait_state(hass, "active_power_import", "1234.0")
    connection = entry.runtime_data.connection
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, entry.entry_id) is ConfigEntryState.NOT_LOADED
    assert not connection.connected
    assert connection._task is None


@pytest.mark.parametrize(
    "url",
    [
        "socket://127.0.0.1:1",
        "/dev/hanport-missing",
        "esphome-hass://esphome/0123456789abcdef?port_name=han",
    ],
)
async def test_port_not_ready(hass: HomeAssistant, url: str, socket_enabled: None) -> None:
    """A port that cannot be opened: Home Assistant retries the setup later."""
    entry = make_entry(url)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_pty_setup_and_stop(
    hass: HomeAssistant, pty_meter: PtyMeter, meter: FakeMeter
) -> None:
    """A serial device path works end to end; Home Assistant stopping closes it."""
    entry = await setup_entry(hass, make_entry(pty_meter.url))
    pty_meter.send(meter.frame(ListKind.STATUS, active_power_import=999.0)[0])
    await wait_state(hass, "active_power_import", "999.0")
    connection = entry.runtime_data.connection
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert not connection.connected
    assert connection._task is None


def test_decode_options_from_entry() -> None:
    """Hex keys become bytes; the country option overrides the data; junk is ignored."""
    entry = make_entry(
        "/dev/x",
        data={CONF_KEY: KEY.hex(), CONF_AUTH_KEY: "not hex", CONF_COUNTRY: "NO"},
        options={CONF_COUNTRY: "SE"},
    )
    options = decode_options(entry)
    assert options.key == KEY
    assert options.auth_key is None
    assert options.country == "SE"
    plain = decode_options(make_entry("/dev/x", data={CONF_KEY: ""}))
    assert (plain.key, plain.auth_key, plain.country) == (None, None, None)


async def test_key_repair_raised_and_cleared(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Frames that keep failing decryption raise the key issue; good frames clear it."""
    caplog.set_level(logging.DEBUG)
    meter = _dk_meter()
    entry = await setup_entry(
        hass,
        make_entry(tcp_meter.url, data={CONF_KEY: KEY.hex(), CONF_AUTH_KEY: AUTH.hex()}),
    )
    await tcp_meter.wait_clients()
    # One failure, then a good frame: the streak resets.
    tcp_meter.send(_dk_frame(meter, OTHER_KEY, 1))
    tcp_meter.send(_dk_frame(meter, KEY, 1, active_power_import=111.0))
    await wait_state(hass, "active_power_import", "111.0", DK_ID)
    issues = ir.async_get(hass)
    connection = entry.runtime_data.connection
    for counter in range(2, 2 + KEY_ISSUE_FRAMES):
        tcp_meter.send(_dk_frame(meter, OTHER_KEY, counter))
    await wait_for(hass, lambda: sum(connection.stream.counters.rejected.values()) == 11)
    assert issues.async_get_issue(DOMAIN, key_issue_id(entry)) is None
    tcp_meter.send(_dk_frame(meter, OTHER_KEY, 50))
    await wait_for(hass, lambda: issues.async_get_issue(DOMAIN, key_issue_id(entry)) is not None)
    tcp_meter.send(_dk_frame(meter, KEY, 51, active_power_import=222.0))
    await wait_state(hass, "active_power_import", "222.0", DK_ID)
    assert issues.async_get_issue(DOMAIN, key_issue_id(entry)) is None
    # Keys never reach the log, in any spelling.
    for secret in (KEY, AUTH):
        for text in (secret.hex(), secret.hex().upper()):
            assert text not in caplog.text


async def test_key_repair_after_five_minutes(
    hass: HomeAssistant, tcp_meter: TcpMeterServer
) -> None:
    """Few but persistent failures (a slow meter) raise the issue after five minutes."""
    meter = _dk_meter()
    entry = await setup_entry(
        hass, make_entry(tcp_meter.url, data={CONF_KEY: KEY.hex(), CONF_AUTH_KEY: AUTH.hex()})
    )
    await tcp_meter.wait_clients()
    connection = entry.runtime_data.connection
    tcp_meter.send(_dk_frame(meter, OTHER_KEY, 1))
    await wait_for(hass, lambda: sum(connection.stream.counters.rejected.values()) == 1)
    issues = ir.async_get(hass)
    later = time.monotonic() + 301
    with patch("custom_components.hanport.coordinator.monotonic", return_value=later):
        tcp_meter.send(_dk_frame(meter, OTHER_KEY, 2))
        await wait_for(
            hass, lambda: issues.async_get_issue(DOMAIN, key_issue_id(entry)) is not None
        )


async def test_bytes_during_stop_are_ignored(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """A frame delivered while the link stops neither reaches the entry nor re-arms a timer."""
    entry = await setup_entry(hass, make_entry(tcp_meter.url))
    await tcp_meter.wait_clients()
    connection = entry.runtime_data.connection
    protocol = connection._transport.get_protocol()
    readings: list[object] = []
    entry.runtime_data.coordinator.async_add_reading_listener(readings.append)
    stop = asyncio.ensure_future(connection.async_stop())
    await asyncio.sleep(0)  # the stop now waits for the link task to end
    protocol.data_received(meter.frame(ListKind.POWER)[0])  # as the transport would
    await stop
    assert readings == []
    assert connection._watchdog is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_remove_entry_cleans_up(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, hass_storage: dict[str, Any]
) -> None:
    """Removing the entry drops its key issue and its accounting store."""
    entry = await setup_entry(hass, make_entry(tcp_meter.url))
    await tcp_meter.wait_clients()
    async_create_key_issue(hass, entry)
    store_key = f"{DOMAIN}.{entry.entry_id}.accounting"
    hass_storage[store_key] = {"version": 1, "minor_version": 1, "key": store_key, "data": {}}
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, key_issue_id(entry)) is None
    assert store_key not in hass_storage
