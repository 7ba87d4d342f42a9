"""A month of a simulated Aidon through Home Assistant: exact hours, statistics, capacity.

October 2026 in Europe/Oslo (the 25-hour day on the 25th) over a real loopback link, with
the clock frozen and advanced by the test: Home Assistant restarts (entry reload) in the
middle of an hour, the meter is silent for two hourly registers, repeats an hourly list
(the Aidon quirk: the previous list again, same stamp) and a list arrives twice. The meter
sends its hourly list, plus one power list at half past as a keep-alive (power between
registers is covered by the live-accuracy tests), so the month runs in seconds. The clock
is frozen (the event loop's too), so waiting is done by spinning the loop, not sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder.core import Recorder
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.recorder import get_instance
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.hanport.accounting.capacity import step_for
from custom_components.hanport.accounting.clock import local_day, local_month
from custom_components.hanport.accounting.config import DEFAULT_STEP_LIMITS_KW
from custom_components.hanport.accounting.sensor import async_setup_accounting_sensors
from custom_components.hanport.const import CONF_SILENCE_TIMEOUT, DOMAIN
from custom_components.hanport.han.reading import ListKind, Reading
from custom_components.hanport.han.simulator import Fault, SentFrame, SimulatedMeter

from .conftest import METER_ID, FakeMeter, TcpMeterServer, entity_id, make_entry, setup_entry

HOUR = timedelta(hours=1)
OSLO = "Europe/Oslo"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder must start before Home Assistant (and so before the integrations)."""


@pytest.fixture(autouse=True)
def accounting_platform() -> Generator[None]:
    """Add the accounting sensors to the sensor platform until it does so itself."""
    from custom_components.hanport import sensor

    if hasattr(sensor, "async_setup_accounting_sensors"):
        yield
        return
    original = sensor.async_setup_entry

    async def setup(hass: HomeAssistant, entry: Any, add: Any) -> None:
        await original(hass, entry, add)
        await async_setup_accounting_sensors(hass, entry, add)

    with patch.object(sensor, "async_setup_entry", setup):
        yield


async def spin(hass: HomeAssistant, predicate: Callable[[], bool]) -> None:
    """Run the loop until ``predicate()`` holds (time is frozen: no sleeping, no timeouts)."""
    for _ in range(5000):
        await hass.async_block_till_done()
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the integration did not get there")


class Feed:
    """Sends frames over the link at their time and waits until they are read."""

    def __init__(
        self, hass: HomeAssistant, server: TcpMeterServer, freezer: FrozenDateTimeFactory
    ) -> None:
        self.hass, self.server, self.freezer = hass, server, freezer
        self.readings: list[Reading] = []
        self.keep_alive = FakeMeter()

    def attach(self) -> None:
        entry = self.hass.config_entries.async_entries(DOMAIN)[0]
        entry.async_on_unload(
            entry.runtime_data.coordinator.async_add_reading_listener(self.readings.append)
        )

    async def send(self, data: bytes, at: datetime) -> None:
        self.freezer.move_to(at)
        expected = len(self.readings) + 1
        self.server.send(data)
        await spin(self.hass, lambda: len(self.readings) >= expected)

    async def send_frame(self, frame: SentFrame) -> None:
        await self.send(frame.data, frame.at + timedelta(seconds=1))

    async def send_power(self, at: datetime, watts: float) -> None:
        data, _reading = self.keep_alive.frame(ListKind.POWER, active_power_import=watts)
        await self.send(data, at)


def boundary_of(frame: SentFrame) -> datetime:
    return frame.at.replace(minute=0, second=0, microsecond=0)


def wh(value: float) -> int:
    return round(value * 1000)


async def test_a_month_of_hours_is_exact(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, freezer: FrozenDateTimeFactory
) -> None:
    await hass.config.async_set_time_zone(OSLO)
    start = datetime(2026, 9, 30, 21, 30, tzinfo=UTC)  # 23:30 local, 30 September
    end = datetime(2026, 10, 31, 22, 30, tzinfo=UTC)  # 23:30 local, 31 October
    restart_at = datetime(2026, 10, 12, 9, 31, 7, tzinfo=UTC)
    silent = (
        datetime(2026, 10, 18, 13, 30, tzinfo=UTC),
        datetime(2026, 10, 18, 15, 20, tzinfo=UTC),
    )
    repeat_at = datetime(2026, 10, 21, 17, 0, tzinfo=UTC)
    duplicate_at = datetime(2026, 10, 9, 3, 0, tzinfo=UTC)
    freezer.move_to(start)
    sim = SimulatedMeter(
        "aidon-6534-no", start=start, seed=5, prosumer=True, meter_id=METER_ID,
        lists={ListKind.ENERGY}, log_limit=10,
    )  # fmt: skip
    await setup_entry(hass, make_entry(tcp_meter.url, options={CONF_SILENCE_TIMEOUT: 3600}))
    await spin(hass, lambda: len(tcp_meter.clients) == 1)
    feed = Feed(hass, tcp_meter, freezer)
    feed.attach()

    hours: dict[datetime, tuple[int, int]] = {}  # boundary -> registers, as received
    last_hour_states: dict[str, float] = {}
    live_states: list[float] = []

    @callback
    def _record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is None or new.state in ("unknown", "unavailable"):
            return
        if new.entity_id == entity_id(hass, "energy_import_last_hour"):
            last_hour_states[new.attributes["hour_start"].isoformat()] = float(new.state)
        elif new.entity_id == entity_id(hass, "energy_import_live"):
            live_states.append(float(new.state))

    hass.bus.async_listen(EVENT_STATE_CHANGED, _record)
    restarted = repeated = False
    while sim.now < end:
        if not repeated and sim.now >= repeat_at - HOUR:
            repeated = True
            sim.repeat_hourly()
        for frame in sim.advance(3600):
            if silent[0] <= frame.at < silent[1]:
                continue  # the hourly list never arrived
            await feed.send_frame(frame)
            if Fault.REPEAT_HOURLY not in frame.faults:
                assert frame.reading is not None
                values = frame.reading.values
                hours[boundary_of(frame)] = (
                    wh(values["active_energy_import"]),
                    wh(values["active_energy_export"]),
                )
            if duplicate_at <= frame.at < duplicate_at + HOUR:
                await feed.send_frame(frame)
        await feed.send_power(sim.now - timedelta(minutes=30), 1000.0)
        if not restarted and sim.now >= restart_at - timedelta(minutes=30):
            restarted = True
            freezer.move_to(restart_at)
            await tcp_meter.drop_clients()
            entry = hass.config_entries.async_entries(DOMAIN)[0]
            assert await hass.config_entries.async_reload(entry.entry_id)
            await spin(hass, lambda: len(tcp_meter.clients) == 1)
            feed.attach()
    assert restarted
    assert repeated

    # 1. the statistics: one row per hourly register after the first, exact differences
    await async_wait_recording_done(hass)
    accounting_ids = [
        sid for sid in await _statistic_ids(hass) if sid.startswith(f"{DOMAIN}:energy_")
    ]
    assert len(accounting_ids) == 2
    assert all(METER_ID not in sid for sid in accounting_ids)
    received = sorted(hours)
    for sid in accounting_ids:
        index = 0 if "_import_" in sid else 1
        rows = await _rows(hass, sid, received[0] - 2 * HOUR, received[-1] + HOUR)
        assert [r["start"] for r in rows] == [(b - HOUR).timestamp() for b in received[1:]]
        for row, boundary in zip(rows, received[1:], strict=True):
            assert row["state"] == hours[boundary][index]
            assert row["sum"] == hours[boundary][index] - hours[received[0]][index]

    # 2. hourly sensor: each complete hour exact, stamped; hours + gaps = the month
    complete = {b - HOUR: hours[b][0] - hours[b - HOUR][0] for b in received if b - HOUR in hours}
    gaps = [(a, b) for a, b in pairwise(received) if b - a > HOUR]
    assert gaps == [
        (datetime(2026, 10, 18, 13, tzinfo=UTC), datetime(2026, 10, 18, 16, tzinfo=UTC)),
        (datetime(2026, 10, 21, 16, tzinfo=UTC), datetime(2026, 10, 21, 18, tzinfo=UTC)),
    ]  # the silence, and the hour whose list was a repeat of the one before
    assert len(complete) == len(received) - 1 - len(gaps)
    assert {
        datetime.fromisoformat(k).astimezone(UTC): round(v * 1000)
        for k, v in last_hour_states.items()
    } == complete
    gap_energy = sum(hours[b][0] - hours[a][0] for a, b in gaps)
    assert sum(complete.values()) + gap_energy == hours[received[-1]][0] - hours[received[0]][0]
    # the 25-hour day has 25 booked hours
    assert sum(1 for h in complete if local_day(h, _zone(hass)) == "2026-10-25") == 25

    # 3. no live value ever went down, and it ends on the last register
    assert live_states == sorted(live_states)
    assert wh(live_states[-1]) == hours[received[-1]][0]

    # 4. capacity: the same as an independent computation over the same hours
    zone = _zone(hass)
    daily: dict[str, tuple[datetime, int]] = {}
    for hour_start, energy in complete.items():
        if local_month(hour_start, zone) != "2026-10":
            continue
        day = local_day(hour_start, zone)
        if day not in daily or energy > daily[day][1]:
            daily[day] = (hour_start, energy)
    top = sorted(daily.values(), key=lambda p: (-p[1], p[0]))[:3]
    expected_kw = sum(e for _h, e in top) / 3 / 1000
    monthly = hass.states.get(entity_id(hass, "capacity_monthly") or "")
    assert monthly is not None
    assert float(monthly.state) == pytest.approx(expected_kw, abs=0.0005)
    step = step_for(expected_kw, DEFAULT_STEP_LIMITS_KW)
    step_state = hass.states.get(entity_id(hass, "capacity_step") or "")
    assert step_state is not None
    assert step_state.state == str(step.index)
    for rank, (hour_start, energy) in enumerate(top, start=1):
        peak = hass.states.get(entity_id(hass, f"capacity_peak_{rank}") or "")
        when = hass.states.get(entity_id(hass, f"capacity_peak_{rank}_start") or "")
        assert peak is not None
        assert when is not None
        assert round(float(peak.state) * 1000) == energy
        assert datetime.fromisoformat(when.state) == hour_start


def _zone(hass: HomeAssistant) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(hass.config.time_zone)


async def _statistic_ids(hass: HomeAssistant) -> list[str]:
    from homeassistant.components.recorder.statistics import list_statistic_ids

    result = await get_instance(hass).async_add_executor_job(list_statistic_ids, hass)
    return [item["statistic_id"] for item in result]


async def _rows(hass: HomeAssistant, sid: str, start: datetime, end: datetime) -> list[Any]:
    result = await get_instance(hass).async_add_executor_job(
        statistics_during_period, hass, start, end, {sid}, "hour", None, {"state", "sum"}
    )
    return list(result.get(sid, []))
