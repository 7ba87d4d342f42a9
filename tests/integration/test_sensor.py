"""Sensors inside a real Home Assistant, fed real frames over a real loopback transport."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from types import MappingProxyType

import pytest
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, EntityCategory
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    async_mock_restore_state_shutdown_restart,
    mock_restore_cache_with_extra_data,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.hanport import async_remove_config_entry_device
from custom_components.hanport.connection import HanConnection
from custom_components.hanport.const import (
    CONF_AUTH_KEY,
    CONF_AVERAGE,
    CONF_CT_MULTIPLIER,
    CONF_INSTANT_POWER,
    CONF_KEY,
    CONF_METER_ID,
    CONF_SERIAL,
    CONF_SILENCE_TIMEOUT,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
)
from custom_components.hanport.han.encode import Layout, encode_reading, expected_reading
from custom_components.hanport.han.reading import PHASE_ENERGY_NAMES, ListKind, Reading
from custom_components.hanport.han.simulator import (
    ManualClock,
    SentFrame,
    SimulatedMeter,
    SimulatorServer,
)
from custom_components.hanport.sensor import split_unique_id

from .conftest import (
    METER_ID,
    OTHER_METER_ID,
    FakeMeter,
    StateLog,
    TcpMeterServer,
    entity_id,
    make_entry,
    maybe_state,
    registry_entry,
    setup_entry,
    skip_backoff,
    state_of,
    wait_for,
    wait_state,
)

CLOCK = datetime(2026, 3, 2, 10, 0, 0)
LIST2_KEYS = (
    "active_power_import",
    "active_power_export",
    "reactive_power_import",
    "reactive_power_export",
    "current_l1",
    "current_l2",
    "current_l3",
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
)
ENERGY_KEYS = (
    "active_energy_import",
    "active_energy_export",
    "reactive_energy_import",
    "reactive_energy_export",
)
COUNTER_TICK = timedelta(seconds=61)
SILENCE = timedelta(seconds=31)


async def _started(hass: HomeAssistant, server: TcpMeterServer, **options: object) -> None:
    await setup_entry(hass, make_entry(server.url, options=dict(options)))
    await server.wait_clients()


def _fire(hass: HomeAssistant, delta: timedelta) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + delta)


def _device(hass: HomeAssistant, meter_id: str) -> dr.DeviceEntry | None:
    """The device of a meter (without the lookup 2026.8 deprecated)."""
    registry = dr.async_get(hass)
    for entry in hass.config_entries.async_entries(DOMAIN):
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
            if (DOMAIN, meter_id) in device.identifiers:
                return device
    return None


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_values_appear_as_lists_arrive(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """List 1 creates power only; list 2 and 3 add their values, all as the meter sent."""
    await _started(hass, tcp_meter)
    frame, expected = meter.frame(ListKind.POWER, active_power_import=1500.0)
    tcp_meter.send(frame)
    await wait_state(hass, "active_power_import", "1500.0")
    assert state_of(hass, "net_power").state == "1500.0"
    assert entity_id(hass, "active_power_export") is None
    assert entity_id(hass, "voltage_l1") is None

    frame, expected = meter.frame(ListKind.STATUS, active_power_import=1400.0)
    tcp_meter.send(frame)
    await wait_state(hass, "voltage_l1", str(expected.values["voltage_l1"]))
    for key in LIST2_KEYS:
        assert state_of(hass, key).state == str(expected.values[key]), key
    assert entity_id(hass, "active_energy_import") is None

    frame, expected = meter.frame(ListKind.ENERGY, CLOCK)
    tcp_meter.send(frame)
    await wait_state(hass, "active_energy_import", str(expected.values["active_energy_import"]))
    for key in ENERGY_KEYS:
        assert state_of(hass, key).state == str(expected.values[key]), key
    clock = state_of(hass, "meter_time")
    assert dt_util.parse_datetime(clock.state) == CLOCK.replace(
        tzinfo=dt_util.get_default_time_zone()
    )
    units = {
        "active_power_import": "W",
        "net_power": "W",
        "reactive_power_import": "var",
        "current_l1": "A",
        "voltage_l1": "V",
        "active_energy_import": "kWh",
        "reactive_energy_import": "kvarh",
    }
    for key, unit in units.items():
        assert state_of(hass, key).attributes["unit_of_measurement"] == unit, key
    assert state_of(hass, "active_energy_import").attributes["state_class"] == "total_increasing"
    assert state_of(hass, "net_power").attributes["device_class"] == "power"

    device = _device(hass, METER_ID)
    assert device is not None
    assert (device.manufacturer, device.model, device.serial_number, device.sw_version) == (
        "Aidon",
        "6534",
        METER_ID,
        expected.list_version,
    )


async def test_noisy_entities_disabled_by_default(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """Per-phase, reactive and clock sensors are diagnostic and off; the main ones on."""
    await _started(hass, tcp_meter)
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK)[0])
    await wait_for(hass, lambda: entity_id(hass, "voltage_l1") is not None)
    await wait_state(hass, "active_energy_import", "12345.67")
    for key in ("voltage_l1", "current_l1", "reactive_power_import", "meter_time"):
        entry = registry_entry(hass, key)
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION, key
        assert entry.entity_category is not None, key
    for key in ("active_power_import", "active_power_export", "net_power", "active_energy_import"):
        entry = registry_entry(hass, key)
        assert entry.disabled_by is None, key
        assert entry.entity_category is None, key


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_net_power_sign(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """Net power is import minus export; list 1 with import 0 says nothing about it."""
    await _started(hass, tcp_meter)
    tcp_meter.send(
        meter.frame(ListKind.STATUS, active_power_import=0.0, active_power_export=2500.0)[0]
    )
    await wait_state(hass, "net_power", "-2500.0")
    tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=0.0)[0])
    await wait_state(hass, "active_power_import", "0.0")
    assert state_of(hass, "net_power").state == "-2500.0"
    tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=700.0)[0])
    await wait_state(hass, "net_power", "700.0")


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_ct_multiplier(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """The CT ratio scales power, current and energy; never voltage."""
    await _started(hass, tcp_meter, **{CONF_CT_MULTIPLIER: 40})
    frame, expected = meter.frame(ListKind.ENERGY, CLOCK)
    tcp_meter.send(frame)
    await wait_state(
        hass, "active_energy_import", str(expected.values["active_energy_import"] * 40)
    )
    for key in (
        "active_power_import",
        "reactive_power_export",
        "current_l2",
        "reactive_energy_export",
    ):
        assert float(state_of(hass, key).state) == pytest.approx(expected.values[key] * 40), key
    assert state_of(hass, "voltage_l1").state == str(expected.values["voltage_l1"])
    assert state_of(hass, "net_power").state == str(expected.values["active_power_import"] * 40)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_interval_average_keeps_instant_power(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter, state_log: StateLog
) -> None:
    """With a window, active power still updates per frame; the rest is a mean per window."""
    await _started(
        hass, tcp_meter, **{CONF_UPDATE_INTERVAL: 10, CONF_AVERAGE: True, CONF_INSTANT_POWER: True}
    )
    tcp_meter.send(meter.frame(ListKind.STATUS, active_power_import=1000.0, voltage_l1=230.0)[0])
    await wait_state(hass, "active_power_import", "1000.0")
    tcp_meter.send(meter.frame(ListKind.STATUS, active_power_import=2000.0, voltage_l1=233.0)[0])
    await wait_state(hass, "active_power_import", "2000.0")
    assert state_of(hass, "voltage_l1").state == STATE_UNKNOWN
    _fire(hass, timedelta(seconds=11))
    await wait_state(hass, "voltage_l1", "231.5")
    assert state_of(hass, "current_l1").state == "2.3"
    assert state_log.of(hass, "voltage_l1") == [STATE_UNKNOWN, "231.5"]
    assert state_log.of(hass, "active_power_import") == ["1000.0", "2000.0"]
    # A window without samples publishes nothing.
    _fire(hass, timedelta(seconds=11))
    await hass.async_block_till_done()
    assert state_log.of(hass, "voltage_l1") == [STATE_UNKNOWN, "231.5"]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_interval_latest_for_everything(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter, state_log: StateLog
) -> None:
    """Minimum interval without instant power: one publish per window, the latest value."""
    await _started(hass, tcp_meter, **{CONF_UPDATE_INTERVAL: 10, CONF_INSTANT_POWER: False})
    for power in (1000.0, 1100.0, 1200.0):
        tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=power)[0])
    await wait_for(hass, lambda: entity_id(hass, "active_power_import") is not None)
    await wait_for(hass, lambda: hass.data is not None and _frames_ok(hass) == 3)
    assert state_of(hass, "active_power_import").state == STATE_UNKNOWN
    _fire(hass, timedelta(seconds=11))
    await wait_state(hass, "active_power_import", "1200.0")
    assert state_log.of(hass, "active_power_import") == [STATE_UNKNOWN, "1200.0"]


def _frames_ok(hass: HomeAssistant) -> int:
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    frames: int = entry.runtime_data.connection.stream.counters.frames_ok
    return frames


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_energy_never_zero_lower_or_missing(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    meter: FakeMeter,
    state_log: StateLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A register keeps its last good value against 0 and lower values; logs once."""
    await _started(hass, tcp_meter)
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK, active_energy_import=0.0)[0])
    await wait_state(hass, "active_power_import", "1234.0")
    assert state_of(hass, "active_energy_import").state == STATE_UNKNOWN
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK, active_energy_import=500.0)[0])
    await wait_state(hass, "active_energy_import", "500.0")
    for power, lower in enumerate((499.99, 400.0, 0.0), start=1):
        tcp_meter.send(
            meter.frame(
                ListKind.ENERGY, CLOCK, active_energy_import=lower, active_power_import=power
            )[0]
        )
        await wait_state(hass, "active_power_import", f"{power}.0")
    tcp_meter.send(meter.frame(ListKind.STATUS)[0])  # no registers at all
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK, active_energy_import=500.5)[0])
    await wait_state(hass, "active_energy_import", "500.5")
    values = [float(v) for v in state_log.of(hass, "active_energy_import") if v != STATE_UNKNOWN]
    assert values == sorted(values)
    assert 0.0 not in values
    lower_logs = [r for r in caplog.records if "lower than the last value" in r.getMessage()]
    assert len(lower_logs) == 1
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.runtime_data.coordinator.lower_energy_rejected == 2


async def test_restart_restores_registers_not_power(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """After a restart entities exist at once; registers show their last value, power waits."""
    await _started(hass, tcp_meter)
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK)[0])
    await wait_state(hass, "active_energy_import", "12345.67")
    await async_mock_restore_state_shutdown_restart(hass)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass, "active_energy_import").state == "12345.67"
    assert state_of(hass, "active_energy_export").state == "12.34"
    assert state_of(hass, "active_power_import").state == STATE_UNKNOWN
    assert state_of(hass, "net_power").state == STATE_UNKNOWN
    await tcp_meter.wait_clients(connections=2)
    # A lower value after the restart is still refused.
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK, active_energy_import=12000.0)[0])
    await wait_state(hass, "active_power_import", "1234.0")
    assert state_of(hass, "active_energy_import").state == "12345.67"


async def test_restore_from_registry_before_meter_speaks(
    hass: HomeAssistant, tcp_meter: TcpMeterServer
) -> None:
    """Registered entities are re-created at setup and restore without a frame."""
    entry = make_entry(tcp_meter.url)
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    imp = registry.async_get_or_create(
        "sensor", DOMAIN, f"{METER_ID}_active_energy_import", config_entry=entry
    )
    exp = registry.async_get_or_create(
        "sensor", DOMAIN, f"{METER_ID}_active_energy_export", config_entry=entry
    )
    power = registry.async_get_or_create(
        "sensor", DOMAIN, f"{METER_ID}_active_power_import", config_entry=entry
    )
    registry.async_get_or_create("sensor", DOMAIN, "not_ours", config_entry=entry)
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(imp.entity_id, "100.0"),
                {"value": 100.0, "unit": "kWh", "ct_multiplier": 1.0},
            ),
            (  # scaled by another CT ratio: not comparable any more
                State(exp.entity_id, "5.0"),
                {"value": 5.0, "unit": "kWh", "ct_multiplier": 50.0},
            ),
            (State(power.entity_id, "900.0"), {"native_value": 900.0}),
        ],
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass, "active_energy_import").state == "100.0"
    assert state_of(hass, "active_energy_export").state == STATE_UNKNOWN
    assert state_of(hass, "active_power_import").state == STATE_UNKNOWN


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_silence_unavailable_then_recovery(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    meter: FakeMeter,
    state_log: StateLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Silent meter on an open link: unavailable, link reopened; back on the next frame."""
    caplog.set_level(logging.INFO, logger="custom_components.hanport")
    await _started(hass, tcp_meter)
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK, active_power_import=1500.0)[0])
    await wait_state(hass, "voltage_l1", "231.4")
    _fire(hass, SILENCE)
    await wait_state(hass, "active_power_import", STATE_UNAVAILABLE)
    for key in ("voltage_l1", "active_energy_import", "net_power"):
        assert state_of(hass, key).state == STATE_UNAVAILABLE
    assert state_of(hass, "frames_received").state != STATE_UNAVAILABLE
    # The watchdog closed the silent socket; the link comes back after the backoff.
    connection = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.connection
    await skip_backoff(hass, connection, ended=1)
    await tcp_meter.wait_clients(connections=2)
    _fire(hass, SILENCE)  # still silent: no second log line
    await skip_backoff(hass, connection, ended=2)
    await tcp_meter.wait_clients(connections=3)
    tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=1600.0)[0])
    await wait_state(hass, "active_power_import", "1600.0")
    # Values of "now" from before the silence are never shown again.
    assert state_of(hass, "voltage_l1").state == STATE_UNKNOWN
    assert state_of(hass, "active_energy_import").state == "12345.67"
    assert state_log.of(hass, "active_power_import") == ["1500.0", STATE_UNAVAILABLE, "1600.0"]
    assert state_log.of(hass, "voltage_l1")[-2:] == [STATE_UNAVAILABLE, STATE_UNKNOWN]
    lost = [r for r in caplog.records if "No valid data from the meter" in r.getMessage()]
    back = [r for r in caplog.records if "sending valid data again" in r.getMessage()]
    assert (len(lost), len(back)) == (1, 1)
    assert lost[0].levelno == back[0].levelno == logging.INFO


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_disconnect_reconnects_without_wrong_values(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter, state_log: StateLog
) -> None:
    """A bridge that drops the TCP link is reopened after the backoff; nothing stale shown."""
    await _started(hass, tcp_meter)
    tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=1500.0)[0])
    await wait_state(hass, "active_power_import", "1500.0")
    # Half a frame, then the link drops: the fragment must not combine with later bytes.
    frame = meter.frame(ListKind.POWER, active_power_import=9999.0)[0]
    tcp_meter.send(frame[: len(frame) // 2])
    await tcp_meter.drop_clients()
    connection = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.connection
    await skip_backoff(hass, connection, ended=1)
    await tcp_meter.wait_clients(connections=2)
    tcp_meter.send(frame[len(frame) // 2 :])
    tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=1700.0)[0])
    await wait_state(hass, "active_power_import", "1700.0")
    assert state_log.of(hass, "active_power_import") == ["1500.0", "1700.0"]
    _fire(hass, COUNTER_TICK)
    await wait_state(hass, "reconnects", "1")


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_garbage_and_bit_flips_never_reach_entities(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter, state_log: StateLog
) -> None:
    """Noise and corrupted frames are counted, never published."""
    await _started(hass, tcp_meter)
    good = meter.frame(ListKind.POWER, active_power_import=1500.0)[0]
    bad = bytearray(meter.frame(ListKind.POWER, active_power_import=1800.0)[0])
    bad[-5] ^= 0x10  # inside the value: only the checksum can tell
    tcp_meter.send(b"\x00\xff\x7e\xa0\x13garbage" + good + bytes(bad) + b"\x7e\x7e\x7e")
    tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=1600.0)[0])
    await wait_state(hass, "active_power_import", "1600.0")
    assert state_log.of(hass, "active_power_import") == ["1500.0", "1600.0"]
    _fire(hass, COUNTER_TICK)
    await wait_for(hass, lambda: state_of(hass, "frames_rejected").state != "0")
    assert state_of(hass, "frames_received").state == "2"
    assert entity_id(hass, "rejected_hdlc_frame_checksum") is not None
    assert int(state_of(hass, "rejected_hdlc_frame_checksum").state) >= 1


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_new_meter_is_a_new_device(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """A different meter ID on the port: a second device; the old one goes unavailable."""
    await _started(hass, tcp_meter)
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK)[0])
    await wait_state(hass, "active_energy_import", "12345.67")
    other = FakeMeter(meter_id=OTHER_METER_ID, meter_type="6525")
    tcp_meter.send(other.frame(ListKind.STATUS, active_power_import=321.0)[0])
    await wait_state(hass, "active_power_import", "321.0", OTHER_METER_ID)
    assert state_of(hass, "active_power_import").state == STATE_UNAVAILABLE
    assert state_of(hass, "active_energy_import").state == STATE_UNAVAILABLE
    # List 1 carries no ID: it belongs to the meter on the port now.
    tcp_meter.send(other.frame(ListKind.POWER, active_power_import=322.0)[0])
    await wait_state(hass, "active_power_import", "322.0", OTHER_METER_ID)
    new = _device(hass, OTHER_METER_ID)
    old = _device(hass, METER_ID)
    assert new is not None
    assert old is not None
    assert new.name == "Aidon 6525"
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert await async_remove_config_entry_device(hass, entry, old)
    assert not await async_remove_config_entry_device(hass, entry, new)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_counters_published_once_a_minute(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter, state_log: StateLog
) -> None:
    """Counters do not write a state per frame."""
    await _started(hass, tcp_meter)
    for power in (1.0, 2.0, 3.0):
        tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=power)[0])
    await wait_state(hass, "active_power_import", "3.0")
    assert state_log.of(hass, "frames_received") == ["0"]
    _fire(hass, COUNTER_TICK)
    await wait_state(hass, "frames_received", "3")


async def test_snapshot(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    meter: FakeMeter,
    snapshot: SnapshotAssertion,
    entity_registry_enabled_by_default: None,
) -> None:
    """Every meter entity of a 4-wire Aidon after lists 1-3 (stable fields only).

    The accounting sensors on the same platform have their own tests and snapshots.
    """
    await _started(hass, tcp_meter)
    tcp_meter.send(meter.frame(ListKind.POWER)[0])
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK)[0])
    await wait_state(hass, "active_energy_import", "12345.67")
    registry = er.async_get(hass)
    entries = sorted(
        (
            e
            for e in registry.entities.values()
            if e.platform == DOMAIN and split_unique_id(e.unique_id) is not None
        ),
        key=lambda e: e.unique_id,
    )
    summary = {}
    for entry in entries:
        state = hass.states.get(entry.entity_id)
        summary[entry.entity_id] = {
            "unique_id": entry.unique_id,
            "translation_key": entry.translation_key,
            "entity_category": entry.entity_category,
            "original_device_class": entry.original_device_class,
            "original_icon": entry.original_icon,
            "unit_of_measurement": entry.unit_of_measurement,
            "options": dict(entry.options),
            "state": state.state if state else None,
            "attributes": dict(state.attributes) if state else None,
        }
    # Plain JSON: newer Home Assistant uses enum keys for attributes where older uses str.
    assert json.loads(json.dumps(summary, default=str)) == snapshot


async def test_meter_time_with_offset_kept(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    meter: FakeMeter,
    entity_registry_enabled_by_default: None,
) -> None:
    """A clock that states its offset is published as that instant."""
    await _started(hass, tcp_meter)
    when = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    reading = meter.frame(ListKind.ENERGY, CLOCK)[1]
    entry.runtime_data.coordinator.handle_reading(replace(reading, meter_time=when))
    await wait_state(hass, "meter_time", when.isoformat())


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_reading_listener_for_accounting(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """Every valid reading reaches subscribers CT-scaled, with the meter ID filled in."""
    await _started(hass, tcp_meter, **{CONF_CT_MULTIPLIER: 10, CONF_UPDATE_INTERVAL: 60})
    coordinator = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.coordinator
    readings: list[Reading] = []
    unsub = coordinator.async_add_reading_listener(readings.append)
    tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=100.0)[0])
    await wait_state(hass, "active_power_import", "1000.0")
    # Names a layout adds beyond the canonical set are scaled by what they measure.
    base = meter.frame(ListKind.POWER)[1]
    extra = {"active_energy_import_tariff1": 5.0, "vendor_voltage": 230.0}
    coordinator.handle_reading(replace(base, values=MappingProxyType(extra)))
    unsub()
    tcp_meter.send(meter.frame(ListKind.POWER, active_power_import=200.0)[0])
    await wait_state(hass, "active_power_import", "2000.0")
    assert len(readings) == 2
    assert dict(readings[1].values) == {
        "active_energy_import_tariff1": 50.0,
        "vendor_voltage": 230.0,
    }
    assert readings[0].meter_id == METER_ID
    assert readings[0].values["active_power_import"] == 1000.0
    assert readings[0].values["net_power"] == 1000.0


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_odd_readings(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """Odd but possible input: NaN dropped, export-only net power, unknown names.

    Also the coordinator's small accessors and no-op calls.
    """
    await _started(hass, tcp_meter)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    coordinator = entry.runtime_data.coordinator
    base = meter.frame(ListKind.POWER)[1]
    coordinator.handle_reading(
        replace(
            base,
            values=MappingProxyType(
                {"active_power_import": math.nan, "active_power_export": 500.0, "vendor_x": 1.0}
            ),
        )
    )
    await wait_state(hass, "net_power", "-500.0")
    assert state_of(hass, "active_power_export").state == "500.0"
    assert maybe_state(hass, "active_power_import") is None
    assert entity_id(hass, "vendor_x") is None
    assert coordinator.counter("bogus") is None
    coordinator.handle_available(True)  # no change: nothing happens
    coordinator.handle_detected("2400_8E1")
    coordinator.handle_detected("2400_8E1")
    assert entry.data["serial_detected"] == "2400_8E1"
    connection, coordinator.connection = coordinator.connection, None
    assert coordinator.counter("frames_received") is None
    coordinator.connection = connection


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_meter_comes_back(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    meter: FakeMeter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A → B → A: the first meter's entities come back; no third device."""
    caplog.set_level(logging.INFO)
    await _started(hass, tcp_meter)
    other = FakeMeter(meter_id=OTHER_METER_ID)
    tcp_meter.send(meter.frame(ListKind.STATUS, active_power_import=1.0)[0])
    await wait_state(hass, "active_power_import", "1.0")
    tcp_meter.send(other.frame(ListKind.STATUS, active_power_import=2.0)[0])
    await wait_state(hass, "active_power_import", "2.0", OTHER_METER_ID)
    tcp_meter.send(meter.frame(ListKind.STATUS, active_power_import=3.0)[0])
    await wait_state(hass, "active_power_import", "3.0")
    assert state_of(hass, "active_power_import", OTHER_METER_ID).state == STATE_UNAVAILABLE
    assert caplog.text.count("A new meter is sending") == 1


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_window_keeps_latest_register_and_clock(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """Averaging never averages registers or the clock: they publish their latest value."""
    await _started(hass, tcp_meter, **{CONF_UPDATE_INTERVAL: 10, CONF_AVERAGE: True})
    tcp_meter.send(meter.frame(ListKind.ENERGY, CLOCK, active_energy_import=100.0)[0])
    later = CLOCK + timedelta(hours=1)
    tcp_meter.send(meter.frame(ListKind.ENERGY, later, active_energy_import=102.0)[0])
    await wait_for(hass, lambda: _frames_ok(hass) == 2)
    _fire(hass, timedelta(seconds=11))
    await wait_state(hass, "active_energy_import", "102.0")
    expected = later.replace(tzinfo=dt_util.get_default_time_zone())
    assert dt_util.parse_datetime(state_of(hass, "meter_time").state) == expected


async def test_unreadable_restore_data(hass: HomeAssistant, tcp_meter: TcpMeterServer) -> None:
    """Restore data that is not ours (or broken) is ignored."""
    entry = make_entry(tcp_meter.url)
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    imp = registry.async_get_or_create(
        "sensor", DOMAIN, f"{METER_ID}_active_energy_import", config_entry=entry
    )
    mock_restore_cache_with_extra_data(
        hass, [(State(imp.entity_id, "1.0"), {"value": "x", "unit": "kWh", "ct_multiplier": 1})]
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass, "active_energy_import").state == STATE_UNKNOWN


# --- per-phase energy registers (Kamstrup DK push list) -----------------------------------

DK_ID = "57123456"
DK_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DK_AUTH = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
PHASE_ENERGY_KEYS = tuple(sorted(PHASE_ENERGY_NAMES))


class _DkMeter(FakeMeter):
    """A Danish Kamstrup: one encrypted push list with per-phase energy registers."""

    def __init__(self) -> None:
        super().__init__(layout=Layout.KAMSTRUP_DK, meter_id=DK_ID, manufacturer="Kamstrup")
        self.counter = 0

    def dk_frame(self, **changes: float) -> tuple[bytes, Reading]:
        reading = self.reading(ListKind.ENERGY, None, **changes)
        self.counter += 1
        frame = encode_reading(
            reading, self.layout, key=DK_KEY, auth_key=DK_AUTH, frame_counter=self.counter
        )
        return frame, expected_reading(reading, self.layout)


async def _dk_started(hass: HomeAssistant, server: TcpMeterServer, **options: object) -> None:
    """An entry set up for the DK meter (its own meter, so it stays current after a reload)."""
    data = {CONF_METER_ID: DK_ID, CONF_KEY: DK_KEY.hex(), CONF_AUTH_KEY: DK_AUTH.hex()}
    await setup_entry(hass, make_entry(server.url, options=dict(options), data=data))
    await server.wait_clients()


async def test_phase_energy_entities_disabled_diagnostic(
    hass: HomeAssistant, tcp_meter: TcpMeterServer
) -> None:
    """Per-phase registers get energy entities, off by default and diagnostic."""
    await _dk_started(hass, tcp_meter)
    dk = _DkMeter()
    frame, expected = dk.dk_frame()
    assert set(PHASE_ENERGY_KEYS) <= set(expected.values)
    tcp_meter.send(frame)
    await wait_state(
        hass, "active_energy_import", str(expected.values["active_energy_import"]), DK_ID
    )
    for key in PHASE_ENERGY_KEYS:
        entry = registry_entry(hass, key, DK_ID)
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION, key
        assert entry.entity_category is EntityCategory.DIAGNOSTIC, key
        assert entry.original_device_class == "energy", key
        assert entry.unit_of_measurement == "kWh", key
        assert entry.translation_key == key
    # The totals stay the primary entities.
    entry = registry_entry(hass, "active_energy_import", DK_ID)
    assert (entry.disabled_by, entry.entity_category) == (None, None)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_phase_energy_registers(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, state_log: StateLog
) -> None:
    """Per-phase registers behave like the totals: never lower, kept across a silence."""
    await _dk_started(hass, tcp_meter)
    dk = _DkMeter()
    frame, expected = dk.dk_frame(active_power_import=1.0)
    tcp_meter.send(frame)
    await wait_state(hass, "active_energy_import_l1", "4115.22", DK_ID)
    for key in PHASE_ENERGY_KEYS:
        state = state_of(hass, key, DK_ID)
        assert state.state == str(expected.values[key]), key
        assert state.attributes["unit_of_measurement"] == "kWh", key
        assert state.attributes["state_class"] == "total_increasing", key
        assert state.attributes["device_class"] == "energy", key
    assert state_of(hass, "active_energy_export_l3", DK_ID).state == "4.11"
    assert state_of(hass, "active_energy_import_l3", DK_ID).state == "4117.22"

    # A lower per-phase value is ignored like a lower total; the others move on.
    frame, _ = dk.dk_frame(
        active_power_import=2.0, active_energy_import_l1=4000.0, active_energy_import_l2=4120.5
    )
    tcp_meter.send(frame)
    await wait_state(hass, "active_energy_import_l2", "4120.5", DK_ID)
    assert state_of(hass, "active_energy_import_l1", DK_ID).state == "4115.22"
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    coordinator = entry.runtime_data.coordinator
    assert coordinator.lower_energy_rejected == 1

    # Silence: unavailable like every meter entity, but the register is not forgotten.
    _fire(hass, SILENCE)
    await wait_state(hass, "active_power_import", STATE_UNAVAILABLE, DK_ID)
    for key in PHASE_ENERGY_KEYS:
        assert state_of(hass, key, DK_ID).state == STATE_UNAVAILABLE, key
    assert coordinator.value(DK_ID, "active_power_import") is None
    assert coordinator.value(DK_ID, "active_energy_import_l2") == 4120.5
    assert coordinator.value(DK_ID, "active_energy_export_l1") == 4.11
    await skip_backoff(hass, entry.runtime_data.connection, ended=1)
    await tcp_meter.wait_clients(connections=2)
    frame, _ = dk.dk_frame(active_power_import=3.0, active_energy_export_l1=4.2)
    tcp_meter.send(frame)
    await wait_state(hass, "active_power_import", "3.0", DK_ID)
    assert state_of(hass, "active_energy_import_l2", DK_ID).state == "4120.5"
    assert state_of(hass, "active_energy_export_l1", DK_ID).state == "4.2"
    assert state_of(hass, "active_energy_import_l1", DK_ID).state == "4115.22"
    assert state_log.of(hass, "active_energy_import_l2", DK_ID) == [
        "4116.22",
        "4120.5",
        STATE_UNAVAILABLE,
        "4120.5",
    ]

    # A restart shows the last values at once, before the meter speaks.
    await async_mock_restore_state_shutdown_restart(hass)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass, "active_energy_import_l2", DK_ID).state == "4120.5"
    assert state_of(hass, "active_energy_export_l1", DK_ID).state == "4.2"
    assert state_of(hass, "active_power_import", DK_ID).state == STATE_UNKNOWN


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_window_keeps_latest_phase_register(
    hass: HomeAssistant, tcp_meter: TcpMeterServer
) -> None:
    """Averaging never averages per-phase registers either."""
    await _dk_started(hass, tcp_meter, **{CONF_UPDATE_INTERVAL: 10, CONF_AVERAGE: True})
    dk = _DkMeter()
    tcp_meter.send(dk.dk_frame(active_energy_import_l1=100.0, voltage_l1=230.0)[0])
    tcp_meter.send(dk.dk_frame(active_energy_import_l1=102.0, voltage_l1=232.0)[0])
    await wait_for(hass, lambda: _frames_ok(hass) == 2)
    _fire(hass, timedelta(seconds=11))
    await wait_state(hass, "voltage_l1", "231.0", DK_ID)
    assert state_of(hass, "active_energy_import_l1", DK_ID).state == "102.0"


# --- against the project's simulated meter ------------------------------------------------


class _Checker:
    """Checks every state our entities wrote against what the simulated meter said."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass
        self.said: dict[str, set[str]] = {}
        self.last: dict[str, float] = {}

    def record(self, frames: list[SentFrame]) -> int:
        """Remember the values of frames that went on the line intact; return their count."""
        intact = 0
        for frame in frames:
            if frame.intact and frame.reading is not None:
                intact += 1
                values = dict(frame.reading.values)
                for key, value in values.items():
                    self.said.setdefault(key, set()).add(str(value))
        return intact

    def check(self, log: StateLog, *, averaged: bool = False) -> None:
        """No state was ever a value the meter did not send; no register ever went down.

        With averaging, a measurement must lie within what the meter sent.
        """
        registry = er.async_get(self.hass)
        for entity, state in log.changes:
            entry = registry.async_get(entity)
            if entry is None or entry.platform != DOMAIN:
                continue
            key = entry.unique_id.removeprefix(f"{SIM_METER_ID}_")
            if state in (STATE_UNKNOWN, STATE_UNAVAILABLE) or key not in self.said:
                continue
            if averaged and key not in ENERGY_KEYS:
                said = [float(v) for v in self.said[key]]
                assert min(said) <= float(state) <= max(said), (key, state)
            else:
                assert state in self.said[key], (key, state)
            if key in ENERGY_KEYS:
                assert float(state) >= self.last.get(key, 0.0), (key, state)
                self.last[key] = float(state)


SIM_METER_ID = "7359992890941742"
SIM_START = datetime(2026, 3, 2, 9, 59, 0, tzinfo=UTC)


def _at_least(connection: HanConnection, frames: int) -> bool:
    return bool(connection.stream.counters.frames_ok >= frames)


async def _sim_run(
    hass: HomeAssistant, server: SimulatorServer, checker: _Checker, seconds: int, step: int = 10
) -> None:
    connection = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.connection
    for _ in range(seconds // step):
        target = connection.stream.counters.frames_ok
        target += checker.record(await server.advance(step))
        await wait_for(hass, partial(_at_least, connection, target))


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_simulated_meter_over_tcp_with_faults(
    hass: HomeAssistant, state_log: StateLog, socket_enabled: None
) -> None:
    """Two simulated minutes across the hour with garbage, bit flips and a disconnect."""
    clock = ManualClock(SIM_START)
    sim = SimulatedMeter("aidon-6534-no", start=clock.now(), seed=3, meter_id=SIM_METER_ID)
    async with SimulatorServer(sim, clock, tcp=("127.0.0.1", 0)) as server:
        entry = make_entry(server.url)
        await setup_entry(hass, entry)
        async with asyncio.timeout(10):
            await server.wait_for_clients()
        checker = _Checker(hass)
        await _sim_run(hass, server, checker, 30)
        await server.inject_garbage(64)
        await server.flip_bits(frames=3)
        await _sim_run(hass, server, checker, 40)
        await server.disconnect()
        await skip_backoff(hass, entry.runtime_data.connection, ended=1)
        async with asyncio.timeout(10):
            await server.wait_for_clients()
        await _sim_run(hass, server, checker, 60)
        checker.check(state_log)
        last = next(f for f in reversed(sim.sent) if f.intact and f.kind is ListKind.ENERGY)
        assert last.reading is not None
        assert state_of(hass, "active_energy_import").state == str(
            last.reading.values["active_energy_import"]
        )
        assert entry.runtime_data.connection.stream.counters.rejected
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_simulated_meter_over_pty_with_silence(
    hass: HomeAssistant, state_log: StateLog
) -> None:
    """A Kaifa on a pty: silence makes entities unavailable; the next frame brings them back."""
    clock = ManualClock(SIM_START)
    sim = SimulatedMeter("kaifa-ma304h4-no", start=clock.now(), seed=5, meter_id=SIM_METER_ID)
    async with SimulatorServer(sim, clock, pty=True) as server:
        # A Linux pty drops PARENB, and serialx then cannot reopen it at 8E1 (EINVAL);
        # the pty ignores parity anyway, so the reconnect test uses 8N1.
        entry = make_entry(server.url, data={CONF_SERIAL: "2400_8N1"})
        await setup_entry(hass, entry)
        await wait_for(hass, lambda: entry.runtime_data.connection.connected)
        checker = _Checker(hass)
        await _sim_run(hass, server, checker, 20)
        await wait_state(hass, "voltage_l1", checker_last(sim, "voltage_l1"), SIM_METER_ID)
        await server.go_silent(60)
        await server.advance(30)
        _fire(hass, SILENCE)
        await wait_state(hass, "active_power_import", STATE_UNAVAILABLE, SIM_METER_ID)
        await skip_backoff(hass, entry.runtime_data.connection, ended=1)
        checker.record(await server.advance(30))  # the silence ends in here
        await _sim_run(hass, server, checker, 20)
        await wait_state(
            hass, "active_power_import", checker_last(sim, "active_power_import"), SIM_METER_ID
        )
        checker.check(state_log)
        assert await hass.config_entries.async_unload(entry.entry_id)


def checker_last(sim: SimulatedMeter, key: str) -> str:
    """The last value of ``key`` the meter put on the line intact."""
    for frame in reversed(sim.sent):
        if frame.intact and frame.reading is not None and key in frame.reading.values:
            return str(frame.reading.values[key])
    raise AssertionError(key)


@pytest.mark.parametrize(
    ("options", "max_rows"),
    [
        ({}, None),  # every frame: the reference
        ({CONF_UPDATE_INTERVAL: 10, CONF_INSTANT_POWER: False}, 60),
        ({CONF_UPDATE_INTERVAL: 60, CONF_AVERAGE: True, CONF_INSTANT_POWER: False}, 10),
    ],
)
async def test_update_policy_limits_rows(
    hass: HomeAssistant,
    state_log: StateLog,
    socket_enabled: None,
    options: dict[str, object],
    max_rows: int | None,
) -> None:
    """Ten simulated minutes of an Aidon: state rows per entity under each policy.

    A recorder row is written per state change, so these counts are the rows the
    enabled-by-default entities add (scaled by 144 for a day; see the README).
    """
    clock = ManualClock(SIM_START)
    sim = SimulatedMeter("aidon-6534-no", start=clock.now(), seed=11, meter_id=SIM_METER_ID)
    async with SimulatorServer(sim, clock, tcp=("127.0.0.1", 0)) as server:
        entry = make_entry(server.url, options={**options, CONF_SILENCE_TIMEOUT: 3600})
        await setup_entry(hass, entry)
        async with asyncio.timeout(10):
            await server.wait_for_clients()
        connection = entry.runtime_data.connection
        checker = _Checker(hass)
        interval = int(options.get(CONF_UPDATE_INTERVAL, 0))  # type: ignore[call-overload]
        for step in range(1, 61):
            target = connection.stream.counters.frames_ok
            target += checker.record(await server.advance(10))
            await wait_for(hass, partial(_at_least, connection, target))
            if interval and step * 10 % interval == 0:
                _fire(hass, timedelta(seconds=interval))  # Home Assistant's clock keeps up
        await hass.async_block_till_done()
        checker.check(state_log, averaged=bool(options.get(CONF_AVERAGE)))
        rows = {
            key: len([s for s in state_log.of(hass, key, SIM_METER_ID) if s != STATE_UNKNOWN])
            for key in ("active_power_import", "net_power", "active_energy_import")
        }
        frames = connection.stream.counters.frames_ok
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert frames == 240  # a push every 2.5 s; every 4th is list 2 (10 s)
    if max_rows is None:
        assert rows["active_power_import"] > 200
    else:
        assert 0 < rows["active_power_import"] <= max_rows
        assert 0 < rows["net_power"] <= max_rows
    assert rows["active_energy_import"] <= 1  # registers come hourly
