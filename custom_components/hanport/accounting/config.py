"""Settings of the energy accounting, with the defaults Norwegian households need.

Pure: no Home Assistant import. The integration builds an ``AccountingConfig`` from the
config entry's options and Home Assistant's time zone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import Final

DEFAULT_CAPACITY_PEAKS: Final = 3
"""Norway: the monthly capacity value is the mean of the 3 highest daily peaks."""
MIN_CAPACITY_PEAKS: Final = 1
MAX_CAPACITY_PEAKS: Final = 5

DEFAULT_STEP_LIMITS_KW: Final[tuple[float, ...]] = (2, 5, 10, 15, 20, 25, 50, 75, 100)
"""Upper limits (kW) of the capacity steps most Norwegian grid companies use."""
MAX_STEPS: Final = 20

DEFAULT_MAX_POWER_KW: Final = 43.5
"""What a 3 x 63 A fuse at 230 V per phase can deliver: registers rising faster are corrupt."""
MIN_MAX_POWER_KW: Final = 1.0
MAX_MAX_POWER_KW: Final = 10_000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountingConfig:
    """Everything the pure accounting needs to know; immutable so it can be shared."""

    time_zone: tzinfo
    """Home Assistant's zone: local hours, days and months; the zone of naive meter times."""
    capacity_peaks: int = DEFAULT_CAPACITY_PEAKS
    step_limits_kw: tuple[float, ...] = DEFAULT_STEP_LIMITS_KW
    max_power_kw: float = DEFAULT_MAX_POWER_KW
    stamp_window: timedelta = timedelta(seconds=60)
    """A register stamped this soon after xx:00:00 is the register of hour xx (Kaifa stamps
    xx:00:10, Kamstrup xx:00:05, P1 meters every 10 s)."""
    max_clock_skew: timedelta = timedelta(minutes=15)
    """A meter clock further than this from Home Assistant's cannot be mapped to an hour
    safely: the readings of a naive stamp (summer or winter time, the repeated autumn hour)
    are an hour apart, so the nearest must be well within half an hour."""
    max_sample_gap: timedelta = timedelta(seconds=60)
    """Power is not integrated across a longer silence: the energy is unknown, not invented."""
    recent_window: timedelta = timedelta(minutes=5)
    """Power averaged over this window projects the current hour's total."""
    rebase_after: int = 3
    """Consecutive rejected registers that agree with each other become the new reference
    (so one undetected bad value cannot block the accounting for ever)."""
    history: timedelta = field(default=timedelta(minutes=70))
    """How much power history the live integrator keeps (current hour and recent average)."""

    def __post_init__(self) -> None:
        """Reject settings the arithmetic cannot honour."""
        if not MIN_CAPACITY_PEAKS <= self.capacity_peaks <= MAX_CAPACITY_PEAKS:
            raise ValueError(f"capacity_peaks must be 1-5, got {self.capacity_peaks}")
        check_step_limits(self.step_limits_kw)
        if not MIN_MAX_POWER_KW <= self.max_power_kw <= MAX_MAX_POWER_KW:
            raise ValueError(f"max_power_kw out of range: {self.max_power_kw}")

    @property
    def max_power_w(self) -> float:
        """The plausibility limit in watts."""
        return self.max_power_kw * 1000.0


def check_step_limits(limits: tuple[float, ...]) -> None:
    """Raise ValueError unless the limits are 1-20 positive, strictly rising numbers."""
    if not 1 <= len(limits) <= MAX_STEPS:
        raise ValueError(f"between 1 and {MAX_STEPS} step limits are needed")
    previous = 0.0
    for limit in limits:
        if not (math.isfinite(limit) and limit > previous):
            raise ValueError("step limits must be positive and strictly rising")
        previous = limit


_DIGIT_COMMA_DIGIT: Final = re.compile(r"\d,\d")


def parse_step_limits(text: str) -> tuple[float, ...]:
    """Parse "2, 5, 10" (kW; comma, semicolon or space separated) for the options flow.

    A comma between two digits ("2,5") is refused: Nordic users write decimals
    with a comma, and reading it as two limits would silently change the tariff.
    Raises ValueError with a short reason when the text is not a valid list.
    """
    if _DIGIT_COMMA_DIGIT.search(text):
        raise ValueError("step limits: a comma between digits is ambiguous; write 2.5 or 2, 5")
    parts = [p for p in text.replace(";", " ").replace(",", " ").split() if p]
    try:
        limits = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError("step limits must be numbers in kW") from None
    check_step_limits(limits)
    return limits


def format_step_limits(limits: tuple[float, ...] | list[float]) -> str:
    """Format limits as ``parse_step_limits`` reads them ("2, 5, 10"): the form default."""
    return ", ".join(f"{limit:g}" for limit in limits)
