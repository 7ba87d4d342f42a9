"""One meter's energy accounting: readings in, sensor values and statistics rows out.

Pure and deterministic: the caller passes each reading with the time it arrived, asks for a
snapshot at any time, and persists ``to_dict()``. Nothing here reads a clock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from ..han.reading import (
    ACTIVE_ENERGY_EXPORT,
    ACTIVE_ENERGY_IMPORT,
    ACTIVE_POWER_EXPORT,
    ACTIVE_POWER_IMPORT,
    Reading,
)
from .capacity import CapacityState, CapacityTracker
from .clock import HOUR, hour_start, meter_instant
from .config import AccountingConfig
from .ledger import StatisticRow, StatisticsLedger
from .live import LiveEnergy
from .registers import (
    CHANNELS,
    REJECTIONS,
    Channel,
    Outcome,
    Period,
    Register,
    RegisterTracker,
    Verdict,
    kwh_to_wh,
)

_LOGGER = logging.getLogger(__name__)

POWER_NAMES: Final = {Channel.IMPORT: ACTIVE_POWER_IMPORT, Channel.EXPORT: ACTIVE_POWER_EXPORT}
ENERGY_NAMES: Final = {Channel.IMPORT: ACTIVE_ENERGY_IMPORT, Channel.EXPORT: ACTIVE_ENERGY_EXPORT}


@dataclass(frozen=True, slots=True)
class Processed:
    """What one reading changed: new statistics rows, the register's fate."""

    rows: Mapping[Channel, StatisticRow] = MappingProxyType({})
    outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every accounting sensor's value at one moment (energies in Wh)."""

    hour_start: datetime
    live: Mapping[Channel, float | None]
    last_hour: Period | None
    so_far: Mapping[Channel, float | None]
    estimate: Mapping[Channel, float | None]
    capacity: CapacityState


@dataclass(slots=True)
class _HourMemo:
    """Keeps the current hour's "so far" from going down within the hour."""

    start: datetime | None = None
    values: dict[Channel, float] = field(default_factory=dict)


class MeterAccount:
    """Live energy, hours, statistics and capacity for one meter."""

    def __init__(self, config: AccountingConfig) -> None:
        """Start with nothing known."""
        self.config = config
        self.tracker = RegisterTracker(
            max_power_w=config.max_power_w, rebase_after=config.rebase_after
        )
        self.live = {
            channel: LiveEnergy(max_sample_gap=config.max_sample_gap, history=config.history)
            for channel in CHANNELS
        }
        self.ledgers = {channel: StatisticsLedger() for channel in CHANNELS}
        self.capacity = CapacityTracker(
            zone=config.time_zone,
            count=config.capacity_peaks,
            limits_kw=config.step_limits_kw,
        )
        self.last_hour: Period | None = None
        self.last_gap: Period | None = None
        self._memo = _HourMemo()
        self._complained = False
        self._frequent_registers = False
        """True once the meter sent registers between hours (P1, Swedish lists): its
        registers are then live at their stamp, not latched at the hour."""

    # ---- input -----------------------------------------------------------------------
    def process(self, reading: Reading, now: datetime) -> Processed:
        """Take one reading that arrived at ``now`` (aware)."""
        for channel, name in POWER_NAMES.items():
            watts = reading.values.get(name)
            if watts is not None:
                self.live[channel].add_power(now, watts)
        wh = {
            channel: kwh_to_wh(reading.values[name])
            for channel, name in ENERGY_NAMES.items()
            if name in reading.values
        }
        if not wh:
            return Processed()
        boundary: datetime | None = None
        taken_at = now
        if reading.meter_time is not None:
            taken_at = meter_instant(reading.meter_time, now, self.config.time_zone)
            skew = abs(taken_at - now)
            if skew > self.config.max_clock_skew:
                self._complain(
                    "meter clock %s is %s Home Assistant's clock; registers are not booked "
                    "(check Home Assistant's time zone)",
                    reading.meter_time.isoformat(),
                    _format_delta(taken_at - now),
                )
                return Processed()
            start = hour_start(taken_at, self.config.time_zone)
            if taken_at - start < self.config.stamp_window:
                boundary = start
        outcome = self.tracker.offer(Register(taken_at, MappingProxyType(wh)), boundary)
        return Processed(self._apply(outcome, wh, taken_at, boundary), outcome)

    def _apply(
        self,
        outcome: Outcome,
        wh: Mapping[Channel, int],
        taken_at: datetime,
        boundary: datetime | None,
    ) -> Mapping[Channel, StatisticRow]:
        verdict = outcome.verdict
        if verdict in REJECTIONS:
            self._complain("energy register rejected: %s", outcome.detail)
            return MappingProxyType({})
        if verdict in (Verdict.DUPLICATE, Verdict.REPEAT):
            _LOGGER.debug("hourly list ignored (%s): %s", verdict, outcome.detail)
            return MappingProxyType({})
        if self._complained:
            _LOGGER.info("energy registers accepted again")
            self._complained = False
        if boundary is None:
            self._frequent_registers = True
        # Norwegian hourly lists carry the value latched at xx:00:00 even when stamped
        # xx:00:05 (Kamstrup) or xx:00:10 (Kaifa): anchor the live value at the hour.
        anchor_at = taken_at if boundary is None or self._frequent_registers else boundary
        for channel, value in wh.items():
            self.live[channel].anchor(value, anchor_at)
        rows: dict[Channel, StatisticRow] = {}
        if verdict is Verdict.REBASED:
            _LOGGER.warning("energy registers restarted from a new reference")
            for channel, value in wh.items():
                self.ledgers[channel].rebase(
                    boundary or hour_start(taken_at, self.config.time_zone), value
                )
            return MappingProxyType(rows)
        if boundary is not None:
            for channel, value in wh.items():
                row = self.ledgers[channel].book(boundary, value)
                if row is not None:
                    rows[channel] = row
        period = outcome.period
        if period is not None:
            if period.is_hour:
                self.last_hour = period
                if Channel.IMPORT in period.wh:
                    self.capacity.add_hour(period.start, period.wh[Channel.IMPORT])
            else:
                self.last_hour = None
                self.last_gap = period
                _LOGGER.info(
                    "no hourly registers from %s to %s: their energy is booked as one gap",
                    period.start.isoformat(),
                    period.end.isoformat(),
                )
        return MappingProxyType(rows)

    def _complain(self, message: str, *args: object) -> None:
        """Warn once per run of bad registers; later ones only at debug level."""
        if self._complained:
            _LOGGER.debug(message, *args)
            return
        self._complained = True
        _LOGGER.warning(message, *args)

    # ---- output ----------------------------------------------------------------------
    def snapshot(self, now: datetime) -> Snapshot:
        """Every sensor value at ``now``."""
        start = hour_start(now, self.config.time_zone)
        if self._memo.start != start:
            self._memo = _HourMemo(start)
        so_far: dict[Channel, float | None] = {}
        estimate: dict[Channel, float | None] = {}
        left = (start + HOUR - now).total_seconds()
        for channel in CHANNELS:
            value = self._so_far(channel, start)
            if value is not None:
                value = max(value, self._memo.values.get(channel, 0.0))
                self._memo.values[channel] = value
            so_far[channel] = value
            estimate[channel] = self._estimate(channel, now, value, left)
        last_hour = self.last_hour
        if last_hour is not None and last_hour.end < start - HOUR:
            last_hour = None  # the hour shown is no longer the last complete one
        return Snapshot(
            hour_start=start,
            live=MappingProxyType({c: self.live[c].value for c in CHANNELS}),
            last_hour=last_hour,
            so_far=MappingProxyType(so_far),
            estimate=MappingProxyType(estimate),
            capacity=self.capacity.snapshot(
                start, estimate[Channel.IMPORT], so_far[Channel.IMPORT]
            ),
        )

    def _so_far(self, channel: Channel, start: datetime) -> float | None:
        """Energy since the top of the hour: register-based when the hour's register is in."""
        live = self.live[channel]
        hourly = self.tracker.hourly
        if (
            self.tracker.hourly_boundary == start
            and hourly is not None
            and channel in hourly.wh
            and live.estimate is not None
            and live.anchored_at is not None
            and live.anchored_at >= start
        ):
            return max(0.0, live.estimate - hourly.wh[channel])
        if live.last_sample is None:
            return None
        return live.energy_since(start)

    def _estimate(
        self, channel: Channel, now: datetime, so_far: float | None, left: float
    ) -> float | None:
        """So far plus the recent mean power for the rest of the hour."""
        if so_far is None:
            return None
        power = self.live[channel].average_power(now - self.config.recent_window)
        if power is None:
            return so_far
        return so_far + power * left / 3600.0

    # ---- statistics continuity -------------------------------------------------------
    def reconcile(self, channel: Channel, stored: StatisticRow | None) -> StatisticRow | None:
        """Continue the statistic from the recorder's last row (see StatisticsLedger)."""
        return self.ledgers[channel].reconcile(stored)

    # ---- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything that must survive a restart."""
        return {
            "tracker": self.tracker.to_dict(),
            "live": {str(c): self.live[c].to_dict() for c in CHANNELS},
            "ledger": {str(c): self.ledgers[c].to_dict() for c in CHANNELS},
            "capacity": self.capacity.to_dict(),
            "last_hour": self.last_hour.to_dict() if self.last_hour else None,
            "last_gap": self.last_gap.to_dict() if self.last_gap else None,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take back what ``to_dict`` gave (raises KeyError/ValueError/TypeError if bad)."""
        self.tracker.restore(data["tracker"])
        for channel in CHANNELS:
            self.live[channel].restore(data["live"][str(channel)])
            self.ledgers[channel].restore(data["ledger"][str(channel)])
        self.capacity.restore(data["capacity"])
        last_hour, last_gap = data.get("last_hour"), data.get("last_gap")
        self.last_hour = Period.from_dict(last_hour) if last_hour else None
        self.last_gap = Period.from_dict(last_gap) if last_gap else None


def _format_delta(delta: timedelta) -> str:
    sign = "ahead of" if delta >= timedelta(0) else "behind"
    return f"{abs(delta)} {sign}"
