"""A small deterministic meter for the pure accounting tests.

Power wanders in steps; the true energy is the exact integral of that step function (kept
in milliwatt-hours as integers); registers are the true energy floored to the register's
resolution and reported in kWh, like a Norwegian meter. The hourly list is stamped with
naive local wall-clock time on the hour and arrives ``delay`` later.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from custom_components.hanport.han.reading import (
    ACTIVE_ENERGY_EXPORT,
    ACTIVE_ENERGY_IMPORT,
    ACTIVE_POWER_EXPORT,
    ACTIVE_POWER_IMPORT,
    Protocol,
    Reading,
    make_values,
)

OSLO = ZoneInfo("Europe/Oslo")


def power_reading(import_w: float, export_w: float | None = None) -> Reading:
    values = {ACTIVE_POWER_IMPORT: float(import_w)}
    if export_w is not None:
        values[ACTIVE_POWER_EXPORT] = float(export_w)
    return Reading(Protocol.HDLC, "Aidon", None, None, None, None, make_values(values))


def energy_reading(
    meter_time: datetime | None, import_wh: int, export_wh: int | None = 0, **power: float
) -> Reading:
    values = {ACTIVE_ENERGY_IMPORT: import_wh / 1000}
    if export_wh is not None:
        values[ACTIVE_ENERGY_EXPORT] = export_wh / 1000
    if "import_w" in power:
        values[ACTIVE_POWER_IMPORT] = power["import_w"]
    return Reading(
        Protocol.HDLC,
        "Aidon",
        "7359992890000000",
        "6525",
        "AIDON_V0001",
        meter_time,
        make_values(values),
    )


@dataclass
class FakeMeter:
    """Meter state advanced in fixed ticks."""

    now: datetime
    zone: ZoneInfo = OSLO
    tick: timedelta = timedelta(seconds=10)
    resolution_wh: int = 10
    delay: timedelta = timedelta(seconds=10)
    seed: int = 1
    import_mwh: int = 123_456_789_000
    export_mwh: int = 5_000_000
    import_w: int = 1500
    export_w: int = 0
    rng: random.Random = field(init=False)
    registers: dict[datetime, tuple[int, int]] = field(default_factory=dict)
    """UTC boundary -> (import Wh, export Wh) the meter stamped there."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def register_wh(self) -> tuple[int, int]:
        res = self.resolution_wh
        return (
            self.import_mwh // 1000 // res * res,
            self.export_mwh // 1000 // res * res,
        )

    def _wander(self) -> None:
        if self.rng.random() < 0.05:
            self.import_w = self.rng.choice([300, 800, 1500, 3000, 6000, 9000])
            self.export_w = self.rng.choice([0, 0, 0, 500, 2000])

    def advance(self) -> Iterator[tuple[datetime, Reading]]:
        """One tick: energy accrues at the current power, then the meter sends its lists.

        Yields (arrival time, reading) pairs in arrival order.
        """
        start = self.now
        end = start + self.tick
        self.import_mwh += self.import_w * int(self.tick.total_seconds()) * 1000 // 3600
        self.export_mwh += self.export_w * int(self.tick.total_seconds()) * 1000 // 3600
        self.now = end
        local = end.astimezone(self.zone)
        if local.minute == 0 and local.second == 0:
            imp, exp = self.register_wh()
            self.registers[end] = (imp, exp)
            stamp = local.replace(tzinfo=None)
            yield end + self.delay, energy_reading(stamp, imp, exp)
        self._wander()
        yield end, power_reading(self.import_w, self.export_w)

    def run(self, duration: timedelta) -> Iterator[tuple[datetime, Reading]]:
        """Every reading over ``duration``, in arrival order."""
        until = self.now + duration
        pending: list[tuple[datetime, Reading]] = []
        while self.now < until:
            pending.extend(self.advance())
            pending.sort(key=lambda p: p[0])
            while pending and pending[0][0] <= self.now:
                yield pending.pop(0)
        yield from pending


def utc(  # noqa: PLR0917
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
