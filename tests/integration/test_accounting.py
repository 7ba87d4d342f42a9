"""The accounting inside Home Assistant: live sensors, hours, new meters, statistics continuity.

Real link (loopback TCP), real frames, frozen clock advanced by the test (see
test_accounting_month.py for why the loop is spun instead of slept).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder.models import StatisticMeanType
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import instance_id
from homeassistant.helpers.recorder import get_instance
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.hanport.accounting import runtime, state
from custom_components.hanport.accounting.account import MeterAccount
from custom_components.hanport.accounting.config import AccountingConfig
from custom_components.hanport.accounting.ledger import statistic_object_id
from custom_components.hanport.accounting.registers import Channel
from custom_components.hanport.accounting.runtime import EnergyAccounting, accounting_config
from custom_components.hanport.accounting.statistics import StatisticsWriter
from custom_components.hanport.const import (
    CONF_CAPACITY_PEAKS,
    CONF_CAPACITY_STEPS,
    CONF_CT_MULTIPLIER,
    CONF_MAX_POWER,
    CONF_SILENCE_TIMEOUT,
    DOMAIN,
)
from custom_components.hanport.han.reading import ListKind
from custom_components.hanport.han.simulator import SimulatedMeter

from .conftest import (
    METER_ID,
    OTHER_METER_ID,
    FakeMeter,
    TcpMeterServer,
    entity_id,
    make_entry,
    setup_entry,
)
from .test_accounting_month import (  # noqa: F401 - fixtures
    OSLO,
    Feed,
    accounting_platform,
    auto_enable_custom_integrations,
    spin,
)

HOUR = timedelta(hours=1)
ZONE = ZoneInfo(OSLO)


@pytest.fixture
def instances() -> Generator[list[EnergyAccounting]]:
    """Every EnergyAccounting set up during the test."""
    created: list[EnergyAccounting] = []
    original = EnergyAccounting.async_setup

    async def spy(self: EnergyAccounting) -> None:
        created.append(self)
        await original(self)

    with patch.object(EnergyAccounting, "async_setup", spy):
        yield created


async def _start(
    hass: HomeAssistant,
    server: TcpMeterServer,
    freezer: FrozenDateTimeFactory,
    at: datetime,
    **options: Any,
) -> Feed:
    await hass.config.async_set_time_zone(OSLO)
    freezer.move_to(at)
    await setup_entry(hass, make_entry(server.url, options={CONF_SILENCE_TIMEOUT: 3600, **options}))
    await spin(hass, lambda: len(server.clients) == 1)
    feed = Feed(hass, server, freezer)
    feed.attach()
    return feed


def _local(at: datetime) -> datetime:
    return at.astimezone(ZONE).replace(tzinfo=None)


async def _hourly(feed: Feed, meter: FakeMeter, boundary: datetime, kwh: float) -> None:
    """Send an hourly list (Aidon: stamped xx:00:00, sent 10 s later)."""
    data, _reading = meter.frame(
        ListKind.ENERGY, _local(boundary), active_energy_import=kwh, active_energy_export=0.0
    )
    await feed.send(data, boundary + timedelta(seconds=10))


def state_of(hass: HomeAssistant, key: str, meter_id: str = METER_ID) -> State | None:
    """The state of a meter's accounting sensor; None when there is no such entity."""
    eid = entity_id(hass, key, meter_id)
    return None if eid is None else hass.states.get(eid)


def _value(hass: HomeAssistant, key: str, meter_id: str = METER_ID) -> float | None:
    st = state_of(hass, key, meter_id)
    if st is None or st.state in ("unknown", "unavailable"):
        return None
    return float(st.state)


async def _last_row(hass: HomeAssistant, channel: Channel = Channel.IMPORT) -> Any:
    secret = await instance_id.async_get(hass)
    sid = f"{DOMAIN}:{statistic_object_id(channel, METER_ID, secret)}"
    await async_wait_recording_done(hass)
    result = await get_instance(hass).async_add_executor_job(
        get_last_statistics, hass, 1, sid, False, {"state", "sum"}
    )
    rows = result.get(sid)
    return rows[0] if rows else None


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_live_energy_and_hours_in_home_assistant(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, freezer: FrozenDateTimeFactory
) -> None:
    start = datetime(2026, 1, 12, 10, 50, tzinfo=UTC)  # 11:50 local
    feed = await _start(hass, tcp_meter, freezer, start)
    sim = SimulatedMeter(
        "aidon-6534-no", start=start, seed=3, meter_id=METER_ID,
        lists={ListKind.STATUS, ListKind.ENERGY}, log_limit=10,
    )  # fmt: skip
    # the sensors exist before the meter says anything, unknown
    assert state_of(hass, "energy_import_live") is not None
    assert _value(hass, "energy_import_live") is None

    live: list[float] = []
    registers: dict[datetime, int] = {}
    so_far_before_hour: float | None = None
    for frame in sim.advance(2 * 3600 + 60):  # to 13:51 local
        await feed.send_frame(frame)
        if frame.kind is ListKind.ENERGY:
            assert frame.reading is not None
            boundary = frame.at.replace(minute=0, second=0)
            registers[boundary] = round(frame.reading.values["active_energy_import"] * 1000)
            assert round(_value(hass, "energy_import_live") * 1000) >= registers[boundary]  # type: ignore[operator]
        if (value := _value(hass, "energy_import_live")) is not None:
            live.append(value)
        if _local(frame.at).strftime("%H:%M:%S") == "12:59:50":
            so_far_before_hour = _value(hass, "energy_import_this_hour")
    assert live == sorted(live)
    assert len(set(live)) > 100  # it moved between the registers (every 30 s)
    h12, h13 = datetime(2026, 1, 12, 11, tzinfo=UTC), datetime(2026, 1, 12, 12, tzinfo=UTC)
    hour_wh = registers[h13] - registers[h12]
    last = state_of(hass, "energy_import_last_hour")
    assert last is not None
    assert round(float(last.state) * 1000) == hour_wh
    assert last.attributes["hour_start"] == h12
    assert last.attributes["hour_end"] == h13
    # the hour so far tracked the meter: within a few percent just before the hour
    assert so_far_before_hour is not None
    assert so_far_before_hour * 1000 == pytest.approx(hour_wh, rel=0.05, abs=20)
    this_hour = _value(hass, "energy_import_this_hour")
    estimate = _value(hass, "energy_import_hour_estimate")
    assert this_hour is not None
    assert estimate is not None
    assert estimate >= this_hour
    # capacity: one day, so the monthly value is today's top with the estimate counted
    monthly = _value(hass, "capacity_monthly")
    assert monthly is not None
    assert monthly >= hour_wh / 1000 - 0.001
    assert _value(hass, "capacity_step") is not None
    assert _value(hass, "capacity_step_limit") is not None
    assert _value(hass, "capacity_headroom") is not None
    peak = state_of(hass, "capacity_peak_1_start")
    assert peak is not None
    assert datetime.fromisoformat(peak.state) in {h12, datetime(2026, 1, 12, 10, tzinfo=UTC)}
    assert state_of(hass, "capacity_peak_3") is not None
    assert entity_id(hass, "capacity_peak_4") is None  # N = 3


async def test_new_meter_is_a_new_device_with_its_own_statistics(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, freezer: FrozenDateTimeFactory
) -> None:
    b0 = datetime(2026, 2, 3, 9, tzinfo=UTC)
    feed = await _start(hass, tcp_meter, freezer, b0 - timedelta(minutes=5))
    old, new = FakeMeter(), FakeMeter(meter_id=OTHER_METER_ID)
    await _hourly(feed, old, b0, 50_000.0)
    await _hourly(feed, old, b0 + HOUR, 50_002.5)
    assert _value(hass, "energy_import_last_hour") == pytest.approx(2.5)
    await _hourly(feed, new, b0 + 2 * HOUR, 10.0)  # replaced: registers from ~0
    await spin(hass, lambda: state_of(hass, "energy_import_live", OTHER_METER_ID) is not None)
    await _hourly(feed, new, b0 + 3 * HOUR, 11.25)
    assert _value(hass, "energy_import_live", OTHER_METER_ID) == pytest.approx(11.25)
    # the old meter's live value is not reset to the new meter's: it is unavailable
    old_live = state_of(hass, "energy_import_live")
    assert old_live is not None
    assert old_live.state == "unavailable"
    assert _value(hass, "energy_import_last_hour", OTHER_METER_ID) == pytest.approx(1.25)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    devices = {
        ident
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        for domain, ident in device.identifiers
        if domain == DOMAIN
    }
    assert devices == {METER_ID, OTHER_METER_ID}
    await async_wait_recording_done(hass)
    secret = await instance_id.async_get(hass)
    for meter_id, expected in ((METER_ID, 2500.0), (OTHER_METER_ID, 1250.0)):
        sid = f"{DOMAIN}:{statistic_object_id(Channel.IMPORT, meter_id, secret)}"
        rows = await get_instance(hass).async_add_executor_job(
            get_last_statistics, hass, 1, sid, False, {"sum"}
        )
        assert rows[sid][0]["sum"] == expected


async def test_statistics_continue_from_the_recorder_when_the_store_is_lost(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    b0 = datetime(2026, 2, 3, 9, tzinfo=UTC)
    feed = await _start(hass, tcp_meter, freezer, b0 - timedelta(minutes=5))
    meter = FakeMeter()
    for hour, kwh in enumerate((1000.0, 1001.0, 1003.0)):
        await _hourly(feed, meter, b0 + hour * HOUR, kwh)
    row = await _last_row(hass)
    assert row["sum"] == 3000.0
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert await hass.config_entries.async_unload(entry.entry_id)
    key = f"{DOMAIN}.{entry.entry_id}.accounting"
    assert hass_storage[key]["data"]["meters"][METER_ID]["version"] == state.STATE_VERSION
    del hass_storage[key]  # the store is gone; the recorder still has the sum
    await tcp_meter.drop_clients()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await spin(hass, lambda: len(tcp_meter.clients) == 1)
    feed.attach()
    await _hourly(feed, meter, b0 + 3 * HOUR, 1003.5)
    row = await _last_row(hass)
    assert row["sum"] == 3500.0
    assert row["start"] == (b0 + 2 * HOUR).timestamp()


async def test_our_newer_row_is_written_again_when_the_recorder_lost_it(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    b0 = datetime(2026, 2, 3, 9, tzinfo=UTC)
    await hass.config.async_set_time_zone(OSLO)
    config = AccountingConfig(time_zone=ZONE)
    account = MeterAccount(config)
    meter = FakeMeter()
    for hour, kwh in enumerate((1000.0, 1001.0, 1003.0)):
        _data, reading = meter.frame(
            ListKind.ENERGY, _local(b0 + hour * HOUR), active_energy_import=kwh
        )
        account.process(reading, b0 + hour * HOUR + timedelta(seconds=10))
    entry = make_entry(tcp_meter.url, options={CONF_SILENCE_TIMEOUT: 3600})
    hass_storage[f"{DOMAIN}.{entry.entry_id}.accounting"] = {
        "version": runtime.STORAGE_VERSION,
        "minor_version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}.accounting",
        "data": {"meters": {METER_ID: state.dump(account)}},
    }
    # the recorder only has an older row of this statistic
    secret = await instance_id.async_get(hass)
    writer = StatisticsWriter(hass, secret)
    async_add_external_statistics(
        hass,
        writer.metadata(METER_ID, "Aidon 6534", Channel.IMPORT),
        [{"start": b0 - HOUR, "state": 1_000_000.0, "sum": 0.0}],
    )
    await async_wait_recording_done(hass)
    freezer.move_to(b0 + 2 * HOUR + timedelta(minutes=20))
    await setup_entry(hass, entry)
    await spin(hass, lambda: len(tcp_meter.clients) == 1)
    row = await _last_row(hass)
    assert row["start"] == (b0 + HOUR).timestamp()
    assert row["sum"] == 3000.0


async def test_without_recorder_no_statistics_but_sensors(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, freezer: FrozenDateTimeFactory
) -> None:
    hass.config.components.remove("recorder")
    try:
        b0 = datetime(2026, 2, 3, 9, tzinfo=UTC)
        feed = await _start(hass, tcp_meter, freezer, b0 - timedelta(minutes=5))
        meter = FakeMeter()
        await _hourly(feed, meter, b0, 100.0)
        await _hourly(feed, meter, b0 + HOUR, 100.5)
        assert _value(hass, "energy_import_last_hour") == pytest.approx(0.5)
    finally:
        hass.config.components.add("recorder")
    assert await _last_row(hass) is None


async def test_diagnostics_and_unload(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    freezer: FrozenDateTimeFactory,
    instances: list[EnergyAccounting],
    hass_storage: dict[str, Any],
) -> None:
    b0 = datetime(2026, 2, 3, 9, tzinfo=UTC)
    feed = await _start(hass, tcp_meter, freezer, b0 - timedelta(minutes=5))
    await _hourly(feed, FakeMeter(), b0, 100.0)
    (accounting,) = instances
    diagnostics = accounting.diagnostics()
    assert METER_ID not in repr(diagnostics)
    assert len(diagnostics["meters"]) == 1
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert await hass.config_entries.async_unload(entry.entry_id)
    stored = hass_storage[f"{DOMAIN}.{entry.entry_id}.accounting"]["data"]
    assert stored["meters"][METER_ID]["account"]["tracker"]["hourly"]["wh"]["import"] == 100_000
    await runtime.async_remove_store(hass, entry.entry_id)
    assert f"{DOMAIN}.{entry.entry_id}.accounting" not in hass_storage


async def test_stored_state_that_cannot_be_read_is_dropped(
    hass: HomeAssistant,
    tcp_meter: TcpMeterServer,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = make_entry(tcp_meter.url, options={CONF_SILENCE_TIMEOUT: 3600})
    hass_storage[f"{DOMAIN}.{entry.entry_id}.accounting"] = {
        "version": runtime.STORAGE_VERSION,
        "minor_version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}.accounting",
        "data": {"meters": {METER_ID: {"version": 1, "account": {"tracker": 5}}}},
    }
    await hass.config.async_set_time_zone(OSLO)
    await setup_entry(hass, entry)
    assert "could not be read" in caplog.text
    assert state_of(hass, "energy_import_live") is not None


def test_options_become_the_accounting_config(caplog: pytest.LogCaptureFixture) -> None:
    config = accounting_config(
        {CONF_CAPACITY_PEAKS: 5, CONF_CAPACITY_STEPS: [3, 6.5], CONF_MAX_POWER: 100.0}, ZONE
    )
    assert config.capacity_peaks == 5
    assert config.step_limits_kw == (3.0, 6.5)
    assert config.max_power_kw == 100.0
    # a CT meter: the default fuse limit scales with the multiplier
    assert accounting_config({CONF_CT_MULTIPLIER: 50.0}, ZONE).max_power_kw == pytest.approx(2175)
    with caplog.at_level(logging.WARNING):
        bad = accounting_config({CONF_CAPACITY_STEPS: [5, 2]}, ZONE)
    assert bad == AccountingConfig(time_zone=ZONE)
    assert "invalid" in caplog.text


async def test_statistics_metadata_is_what_2026_11_requires(hass: HomeAssistant) -> None:
    writer = StatisticsWriter(hass, "secret")
    metadata = writer.metadata(METER_ID, "Aidon 6534", Channel.EXPORT)
    assert metadata["mean_type"] is StatisticMeanType.NONE
    assert metadata["unit_class"] == "energy"
    assert metadata["unit_of_measurement"] == "Wh"
    assert metadata["has_sum"] is True
    assert metadata["statistic_id"].startswith("hanport:energy_export_")
    assert METER_ID not in metadata["statistic_id"]
    assert METER_ID not in (metadata["name"] or "")
    assert entity_id(hass, "energy_import_live") is None


async def test_a_recorder_row_without_state_is_not_continued(hass: HomeAssistant) -> None:
    writer = StatisticsWriter(hass, "secret")
    async_add_external_statistics(
        hass,
        writer.metadata(METER_ID, "Aidon 6534", Channel.IMPORT),
        [{"start": datetime(2026, 2, 3, 9, tzinfo=UTC), "sum": 5.0}],
    )
    await async_wait_recording_done(hass)
    assert await writer.async_last_row(METER_ID, Channel.IMPORT) is None


async def test_fewer_peaks_after_an_options_change_removes_the_surplus_sensors(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, freezer: FrozenDateTimeFactory
) -> None:
    await _start(
        hass, tcp_meter, freezer, datetime(2026, 2, 3, 9, tzinfo=UTC), **{CONF_CAPACITY_PEAKS: 5}
    )
    assert entity_id(hass, "capacity_peak_5_start") is not None
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    await tcp_meter.drop_clients()
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_CAPACITY_PEAKS: 2})
    assert await hass.config_entries.async_reload(entry.entry_id)
    await spin(hass, lambda: len(tcp_meter.clients) == 1)
    assert entity_id(hass, "capacity_peak_2") is not None
    assert entity_id(hass, "capacity_peak_3") is None
    assert entity_id(hass, "capacity_peak_5_start") is None
