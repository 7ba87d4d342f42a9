"""Rows for Home Assistant's long-term statistics, one per hourly register (pure part).

Each accepted hourly register becomes a row at the hour it closes: the register stamped
14:00:00 gives the row starting 13:00 (statistics rows are labelled by their start), with
``state`` = the register and ``sum`` = the energy counted since the statistic began. Values
are integer watt-hours, so sums stay exact in the database's doubles.

The ledger continues from the last row the recorder holds (``reconcile``), never writes a
row at or before it, and after a gap writes the next row with the whole gap's energy in its
sum: no rows are invented for hours the meter never reported.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import HOUR, as_utc
from .registers import Channel


def statistic_object_id(channel: Channel, meter_id: str, secret: str) -> str:
    """Return the object part of a statistic id: "energy_import_<16 hex>".

    The meter ID is keyed with ``secret`` (the Home Assistant instance id) so the id does
    not reveal the meter's serial number, which is guessable from its hash alone.
    """
    digest = hmac.new(secret.encode(), meter_id.encode(), hashlib.sha256).hexdigest()
    return f"energy_{channel}_{digest[:16]}"


@dataclass(frozen=True, slots=True)
class StatisticRow:
    """One hourly row: start of the hour (UTC), register and running sum (Wh)."""

    start: datetime
    state: int
    sum: int


class StatisticsLedger:
    """The running sum of one channel's statistic."""

    def __init__(self) -> None:
        """Empty: the first register only sets the baseline."""
        self.last: StatisticRow | None = None
        self._pending_baseline: tuple[datetime, int] | None = None

    def book(self, boundary: datetime, register_wh: int) -> StatisticRow | None:
        """Return the row for the hourly register closing the hour that ends at ``boundary``."""
        start = boundary - HOUR
        last = self.last
        if last is None:
            baseline = self._pending_baseline
            if baseline is None or start <= baseline[0] or register_wh < baseline[1]:
                self._pending_baseline = (start, register_wh)
                return None
            row = StatisticRow(start, register_wh, register_wh - baseline[1])
        else:
            if start <= last.start:
                return None
            if register_wh < last.state:
                self.rebase(boundary, register_wh)
                return None
            row = StatisticRow(start, register_wh, last.sum + register_wh - last.state)
        self.last = row
        self._pending_baseline = None
        return row

    def rebase(self, boundary: datetime, register_wh: int) -> None:
        """Take a new reference register (meter restarted); the sum carries on unchanged."""
        if self.last is None:
            self._pending_baseline = (boundary - HOUR, register_wh)
        else:
            self.last = StatisticRow(self.last.start, register_wh, self.last.sum)

    def reconcile(self, stored: StatisticRow | None) -> StatisticRow | None:
        """Align with the recorder's last row; return a row to write again, if any.

        The recorder is the truth for what the Energy dashboard shows: when it holds a row
        at or after ours, continue from it. When ours is newer (the recorder lost its last
        commit), write ours again. When it holds none (a new or wiped database), start a
        fresh sum from our last register instead of a first row carrying an old sum.
        """
        last = self.last
        if stored is None:
            if last is not None:
                self._pending_baseline = (last.start, last.state)
                self.last = None
            return None
        if last is None or stored.start >= last.start:
            self.last = stored
            self._pending_baseline = None
            return None
        return last

    def to_dict(self) -> dict[str, Any]:
        """Serialise for the store."""
        last, baseline = self.last, self._pending_baseline
        return {
            "last": [last.start.isoformat(), last.state, last.sum] if last else None,
            "baseline": [baseline[0].isoformat(), baseline[1]] if baseline else None,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take back what ``to_dict`` gave."""
        last, baseline = data.get("last"), data.get("baseline")
        self.last = (
            StatisticRow(as_utc(datetime.fromisoformat(last[0])), int(last[1]), int(last[2]))
            if last
            else None
        )
        self._pending_baseline = (
            (as_utc(datetime.fromisoformat(baseline[0])), int(baseline[1])) if baseline else None
        )
