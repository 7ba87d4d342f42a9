"""Measure the live energy sensor against the meter's hourly registers on the simulator.

For each hourly register, the live value just before it re-anchors is compared with the
register: ``estimate`` is the power integral carried from the previous register, the
``published`` value is what the sensor showed (it holds instead of going down). Run:

    ../shared/tools/py314 .venv/bin/python -m tests.accounting.live_accuracy [--days 7]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from custom_components.hanport.accounting.account import MeterAccount
from custom_components.hanport.accounting.config import AccountingConfig
from custom_components.hanport.accounting.registers import Channel
from custom_components.hanport.han.reading import ListKind
from custom_components.hanport.han.simulator import SimulatedMeter


@dataclass(frozen=True)
class Accuracy:
    """Errors (Wh) of the live value just before each hourly re-anchor."""

    profile: str
    channel: Channel
    estimate: list[float]
    published: list[float]
    hourly_wh: list[int]

    @property
    def median_abs(self) -> float:
        return statistics.median(abs(e) for e in self.estimate)

    @property
    def worst_abs(self) -> float:
        return max(abs(e) for e in self.estimate)

    @property
    def worst_published(self) -> float:
        return max(abs(e) for e in self.published)

    @property
    def relative_median(self) -> float:
        ratios = [abs(e) / wh for e, wh in zip(self.estimate, self.hourly_wh, strict=True) if wh]
        return statistics.median(ratios) if ratios else 0.0


def measure(
    profile: str,
    *,
    days: float,
    seed: int = 1,
    prosumer: bool = False,
    start: datetime | None = None,
) -> dict[Channel, Accuracy]:
    """Feed the simulator's readings to one account; collect the live errors per channel."""
    start = start or datetime(2026, 1, 12, tzinfo=UTC)
    meter = SimulatedMeter(profile, start=start, seed=seed, prosumer=prosumer, log_limit=10)
    config = AccountingConfig(time_zone=ZoneInfo(meter.profile.timezone))
    account = MeterAccount(config)
    errors: dict[Channel, tuple[list[float], list[float], list[int]]] = {
        c: ([], [], []) for c in Channel
    }
    end = start + timedelta(days=days)
    anchored = 0
    while meter.now < end:
        for frame in meter.advance(600):
            reading = frame.reading
            if reading is None:
                continue
            processed = account.process(reading, frame.at)
            period = processed.outcome.period if processed.outcome else None
            if reading.list_kind is not ListKind.ENERGY or period is None or not period.is_hour:
                continue
            anchored += 1
            if anchored < 2:
                continue  # the first hour starts from the first anchor's power history
            for channel, live in account.live.items():
                error = live.last_error
                if error is None or channel not in period.wh:
                    continue
                estimate, published, hourly = errors[channel]
                estimate.append(error.estimate)
                published.append(error.published)
                hourly.append(period.wh[channel])
    return {c: Accuracy(profile, c, *values) for c, values in errors.items() if values[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"live energy vs the meter's hourly register, {args.days:g} days, seed {args.seed}")
    print(
        f"{'profile':22} {'channel':7} {'hours':>5} {'median Wh':>9} {'worst Wh':>8} "
        f"{'worst shown':>11} {'median %':>8}"
    )
    for profile, prosumer in (
        ("aidon-6534-no", True),
        ("kaifa-ma304h4-no", False),
        ("kamstrup-4w-no", False),
    ):
        for acc in measure(profile, days=args.days, seed=args.seed, prosumer=prosumer).values():
            print(
                f"{acc.profile:22} {acc.channel:7} {len(acc.estimate):5d} "
                f"{acc.median_abs:9.1f} {acc.worst_abs:8.1f} {acc.worst_published:11.1f} "
                f"{100 * acc.relative_median:7.2f}%"
            )


if __name__ == "__main__":
    main()
