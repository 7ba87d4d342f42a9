"""The short soak: a simulated day of random faults per transport, through a real Home Assistant.

The engine (``harness``) runs the integration against the simulated Aidon 6534 (all three
lists, every entity enabled, every state write checked) over a TCP bridge and over a pty,
with a fault every ~10 simulated minutes, Home Assistant restarts among them, and fails on
a wrong or stale value, an energy sensor going down, an hourly reading lost or booked
wrong, a break in the statistics' running sum, or a fault never recovered from.
``scripts/soak`` runs the same engine for a simulated month.

The checks are tested too: planted bugs must be caught, the byte tap must find exactly
the frames that arrived whole, and each verdict of the oracle must be the right one.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant, State

from custom_components.hanport.accounting.statistics import StatisticsWriter
from custom_components.hanport.coordinator import HanportCoordinator
from custom_components.hanport.han.reading import ListKind
from custom_components.hanport.han.simulator import SentFrame, SimulatedMeter
from custom_components.hanport.sensor import HanportRegisterSensor

from .harness import (
    FAULT_KINDS,
    PTY,
    TCP,
    Oracle,
    SoakConfig,
    Tap,
    published_values,
    run_leg,
)
from .report import LegResult, format_report

OSLO = ZoneInfo("Europe/Oslo")
T0 = datetime(2026, 3, 2, 8, 0, 1, tzinfo=UTC)


async def test_a_simulated_day_under_faults_over_tcp(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, socket_enabled: None
) -> None:
    """A day behind a TCP bridge: disconnects mid-frame, unplugged bridge, and the rest."""
    await _day(hass, freezer, TCP)


async def test_a_simulated_day_under_faults_over_a_pty(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """A day on a USB serial adapter (a pty) that is unplugged and plugged in again."""
    await _day(hass, freezer, PTY)


async def _day(hass: HomeAssistant, freezer: FrozenDateTimeFactory, transport: str) -> None:
    result = await run_leg(hass, freezer, SoakConfig(transport, hours=24.0, seed=1))
    report = format_report([result])
    print(report)
    assert not result.failures(), report
    # the run did what it claims: every fault kind, restarts, hours, values checked
    assert set(result.faults) == set(FAULT_KINDS[transport]), report
    assert result.restarts >= 3, report
    assert result.hourly_delivered >= 20, report
    assert result.hourly_booked == result.hourly_delivered - 1, report  # the first is a baseline
    assert result.last_hour_checked >= 20, report
    assert result.writes_checked >= 100_000, report
    assert result.frames_accepted >= 0.9 * result.pushes, report
    assert {"active_power_import", "voltage_l1", "active_energy_import"} <= set(
        result.writes_by_key
    ), report


async def test_planted_bugs_are_caught(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, socket_enabled: None
) -> None:
    """Without this the soak could pass vacuously.

    Planted: a power value half a watt off, a power value from long ago, an energy
    register published 1 kWh lower (with the register sensor's guard removed), and one
    hour's statistics rows that never reach the recorder. Each must be counted.
    """
    calls = itertools.count(1)
    registers = itertools.count(1)
    first: dict[str, float] = {}
    rows = itertools.count(1)
    scaled = HanportCoordinator._scaled
    import_rows = StatisticsWriter.import_rows

    def planted_values(self: HanportCoordinator, values: Mapping[str, float]) -> dict[str, float]:
        out = scaled(self, values)
        call = next(calls)
        if "active_power_import" in out:
            first.setdefault("power", out["active_power_import"])
            if call == 200:
                out["active_power_import"] += 0.5
            elif call == 600:
                out["active_power_import"] = first["power"]
        if "active_energy_import" in out and next(registers) == 3:
            out["active_energy_import"] -= 1.0
        return out

    def accept_anything(self: HanportRegisterSensor, value: Any) -> bool:
        if isinstance(value, float) and value > 0:
            self._last = value
            return True
        return False

    def dropping(self: StatisticsWriter, *args: Any) -> None:
        if next(rows) not in (3, 4):  # the import and export rows of one hour
            import_rows(self, *args)

    config = SoakConfig(
        TCP, hours=5.0, fault_gap=1e9, lists=frozenset({ListKind.STATUS, ListKind.ENERGY})
    )
    with (
        patch.object(HanportCoordinator, "_scaled", planted_values),
        patch.object(HanportRegisterSensor, "_accept", accept_anything),
        patch.object(StatisticsWriter, "import_rows", dropping),
    ):
        result = await run_leg(hass, freezer, config)
    report = format_report([result])
    assert not result.faults, report
    assert result.wrong_values >= 2, report  # the half watt and the lowered register
    assert result.stale_values >= 1, report
    assert result.energy_decreases >= 1, report
    # the dropped hour, and the hour of the lowered register (rightly refused by accounting)
    assert result.hourly_lost == 2, report
    assert len(result.failures()) >= 4, report


def _frames(seconds: float, seed: int = 2) -> list[SentFrame]:
    meter = SimulatedMeter("aidon-6534-no", start=T0, seed=seed)
    return meter.advance(seconds)


def _setup(frames: list[SentFrame]) -> tuple[Tap, LegResult, list[datetime]]:
    result = LegResult("tcp", "aidon-6534-no", 2, T0.isoformat())
    oracle = Oracle(OSLO, result)
    clock = [T0]
    tap = Tap(oracle, lambda frame: False, lambda: clock[0])
    for frame in frames:
        oracle.sent(frame, hourly=False)
        tap.sent(frame)
    return tap, result, clock


def test_tap_finds_exactly_the_frames_that_arrived_whole() -> None:
    """Split frames count once whole, cut ones never; a new link starts afresh."""
    frames = [f for f in _frames(12) if f.kind is not None]
    a, b, c, d = frames[:4]
    tap, result, _clock = _setup(frames)
    tap.received((1, 0), a.data[:10])
    assert result.delivered_intact == 0
    tap.received((1, 0), a.data[10:] + b.data[:-3])
    assert result.delivered_intact == 1
    tap.received((2, 0), b.data[-3:] + c.data)  # the rest of b on a new link: not b
    assert result.delivered_intact == 2
    assert not tap.pending or tap.pending[0] is d


def test_tap_prefers_the_copy_that_came_first() -> None:
    """List 1 repeats byte for byte: a lost earlier copy must not hide the later frames."""
    meter = SimulatedMeter("aidon-6534-no", start=T0, seed=2, lists={ListKind.POWER})
    frames = meter.advance(60)
    twins = [
        (i, j)
        for i, j in itertools.combinations(range(len(frames)), 2)
        if frames[i].data == frames[j].data and j > i + 1
    ]
    assert twins, "no repeated list 1 in a minute; pick another seed"
    i, j = twins[0]
    tap, result, _clock = _setup(frames)
    # everything from i+1 to j arrives (i was lost while the link was down)
    tap.received((1, 0), b"".join(f.data for f in frames[i + 1 : j + 1]))
    assert result.delivered_intact == j - i


def test_oracle_verdicts() -> None:
    """Right, late (behind a cut frame), stale, wrong; energy down; last hour exact."""
    frames = [f for f in _frames(120) if f.kind is not None]
    tap, result, clock = _setup(frames)
    oracle = tap.oracle
    power = [f for f in frames if f.kind is ListKind.POWER]
    values = [published_values(f, OSLO)["active_power_import"] for f in power]
    distinct = [v for n, v in enumerate(values) if v not in values[:n]]
    assert len(distinct) >= 4

    def write(key: str, state: str, **attributes: Any) -> None:
        oracle.written(key, State("sensor.x", state, attributes), "sensor.x", clock[0])

    first = power[values.index(distinct[0])]
    tap.received((1, 0), first.data)
    write("active_power_import", str(distinct[0]))
    assert (result.wrong_values, result.stale_values, result.late_values) == (0, 0, 0)
    clock[0] += timedelta(seconds=10)
    for value in distinct[1:3]:  # two newer frames, in two reads
        tap.received((1, 0), power[values.index(value)].data)
    write("active_power_import", str(distinct[0]))  # the oldest, 10 s later: late
    assert result.late_values == 1
    clock[0] += timedelta(seconds=120)
    write("active_power_import", str(distinct[0]))  # long after a newer one: stale
    assert result.stale_values == 1
    write("active_power_import", "0.5")
    assert result.wrong_values == 1
    write("active_energy_import", "100.0")
    write("active_energy_import", "99.0")
    assert result.energy_decreases == 1
    assert oracle.power_ok  # the first write was right


def test_last_hour_is_the_difference_of_two_registers() -> None:
    """The last-hour sensor must equal the registers an hour apart, to the watt-hour."""
    result = LegResult("tcp", "aidon-6534-no", 3, T0.isoformat())
    oracle = Oracle(OSLO, result)
    meter = SimulatedMeter("aidon-6534-no", start=T0, seed=3, lists={ListKind.ENERGY})
    hourly = meter.advance(3 * 3600)
    for frame in hourly:
        oracle.sent(frame, hourly=True)
    start, end = sorted(oracle.registers)[:2]
    wh = (
        oracle.registers[end]["active_energy_import"]
        - oracle.registers[start]["active_energy_import"]
    )
    attributes = {"hour_start": start, "hour_end": end}
    oracle.written("energy_import_last_hour", State("sensor.h", str(wh / 1000), attributes),
                   "sensor.h", end)  # fmt: skip
    assert (result.last_hour_checked, result.wrong_values) == (1, 0)
    oracle.written("energy_import_last_hour", State("sensor.h", str((wh + 1) / 1000), attributes),
                   "sensor.h", end)  # fmt: skip
    assert result.wrong_values == 1


def test_config_from_environment() -> None:
    """The script's HANPORT_SOAK_* variables reach the engine."""
    config = SoakConfig.from_env(
        PTY,
        {
            "HANPORT_SOAK_HOURS": "744",
            "HANPORT_SOAK_SEED": "7",
            "HANPORT_SOAK_START": "2026-10-01T00:00:00+02:00",
            "HANPORT_SOAK_LISTS": "2,3",
            "HANPORT_SOAK_TRACEMALLOC": "1",
            "HANPORT_SOAK_FAULT_GAP": "900",
        },
        hours=1.0,
    )
    assert config.hours == 744.0
    assert config.seed == 7
    assert config.start == datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
    assert config.lists == frozenset({ListKind.STATUS, ListKind.ENERGY})
    assert config.trace_memory
    assert config.fault_gap == 900.0
    assert SoakConfig.from_env(TCP, {}, hours=2.0).hours == 2.0


def test_report_round_trip_and_verdict() -> None:
    """The script reads the legs' JSON back; any 'must be 0' figure above 0 fails a leg."""
    leg = LegResult("pty", "aidon-6534-no", 1, T0.isoformat(), rejected={"hdlc_bad_length": 2})
    assert LegResult.from_json(leg.to_json()) == leg
    assert not leg.failures()
    leg.hourly_lost = 1
    assert leg.failures() == ["hourly readings lost: 1"]
    table = format_report([leg, LegResult.from_json(leg.to_json())])
    assert "hourly readings lost (must be 0)" in table
    assert "pty leg: FAIL (hourly readings lost: 1)" in table
    assert "hdlc_bad_length" in table
