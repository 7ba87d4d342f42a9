"""The meter's energy registers: plausibility, repeats, gaps, and hours booked from them.

Registers arrive as kWh floats with Wh (3 decimals) or 10 Wh (2 decimals) resolution; they
are kept as exact integer watt-hours so that hour values and sums are exact.

An hourly register is one stamped within ``stamp_window`` after the top of a local hour:
it closes the hour before (the value stamped 14:00:00 closes 13:00-14:00). Two hourly
registers one hour apart book that hour; further apart, their difference is the energy of
the gap, never of one hour. A list with an hour already seen, or with exactly the values
of the last hourly register at a later hour (Aidon repeats its previous hourly list), is
ignored. A register that goes backwards, or rises faster than ``max_power`` allows, is
rejected; if several rejected registers in a row agree with each other they become the new
reference (a meter that really restarted, or an old bad value that slipped through).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from .clock import HOUR, as_utc


class Channel(StrEnum):
    """Which active-energy register."""

    IMPORT = "import"
    EXPORT = "export"


CHANNELS: Final = (Channel.IMPORT, Channel.EXPORT)

PLAUSIBILITY_SLACK: Final = timedelta(seconds=60)
"""Added to the elapsed time: the two stamps may be taken a few seconds off the hour."""
RESOLUTION_SLACK_WH: Final = 10
"""Largest register step of any meter (10 Wh): always allowed on top of max power."""


def kwh_to_wh(value: float) -> int:
    """Convert a register in kWh (3 or 2 decimals) as exact integer watt-hours."""
    return round(value * 1000.0)


@dataclass(frozen=True, slots=True)
class Register:
    """One reading of the energy registers, with when the meter took it (UTC)."""

    taken_at: datetime
    wh: Mapping[Channel, int]

    def to_dict(self) -> dict[str, Any]:
        """Serialise for the store."""
        return {"at": self.taken_at.isoformat(), "wh": {str(k): v for k, v in self.wh.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Register:
        """Inverse of ``to_dict``."""
        return cls(
            taken_at=as_utc(datetime.fromisoformat(data["at"])),
            wh=MappingProxyType({Channel(k): int(v) for k, v in data["wh"].items()}),
        )


class Verdict(StrEnum):
    """What became of a register."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # an hour already seen, or an older stamp
    REPEAT = "repeat"  # a later hour with exactly the last hourly values
    BACKWARDS = "backwards"
    JUMP = "jump"
    REBASED = "rebased"  # accepted as a new reference after consistent rejections


REJECTIONS: Final = frozenset({Verdict.BACKWARDS, Verdict.JUMP})


@dataclass(frozen=True, slots=True)
class Period:
    """Energy between two consecutive accepted hourly registers (exact Wh).

    One hour long: the energy of that hour. Longer: the energy of a gap, which is not the
    energy of any one hour.
    """

    start: datetime
    end: datetime
    wh: Mapping[Channel, int]

    @property
    def is_hour(self) -> bool:
        """True when the period is exactly one hour."""
        return self.end - self.start == HOUR

    def to_dict(self) -> dict[str, Any]:
        """Serialise for the store."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "wh": {str(k): v for k, v in self.wh.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Period:
        """Inverse of ``to_dict``."""
        return cls(
            start=as_utc(datetime.fromisoformat(data["start"])),
            end=as_utc(datetime.fromisoformat(data["end"])),
            wh=MappingProxyType({Channel(k): int(v) for k, v in data["wh"].items()}),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """The verdict on one register; ``period`` when an hourly register closed one."""

    verdict: Verdict
    detail: str = ""
    period: Period | None = None
    boundary: datetime | None = None


@dataclass(slots=True)
class RegisterTracker:
    """Validates every register and books periods from the hourly ones."""

    max_power_w: float
    rebase_after: int = 3
    reference: Register | None = None
    """The last accepted register of any kind: what plausibility is judged against."""
    hourly: Register | None = None
    hourly_boundary: datetime | None = None
    """The last accepted hourly register and the hour boundary it closes."""
    _rejected: list[Register] = field(default_factory=list)

    def offer(self, register: Register, boundary: datetime | None) -> Outcome:
        """Judge ``register``; ``boundary`` is the hour it closes, None if not hourly."""
        if boundary is not None and self.hourly_boundary is not None:
            if boundary <= self.hourly_boundary:
                return Outcome(Verdict.DUPLICATE, "hour already booked", boundary=boundary)
            if self.hourly is not None and _same_values(register, self.hourly):
                return Outcome(Verdict.REPEAT, "same values as the last hour", boundary=boundary)
        reference = self.reference
        if reference is not None and boundary is None and register.taken_at <= reference.taken_at:
            return Outcome(Verdict.DUPLICATE, "not newer than the last register")
        problem = None if reference is None else self._implausible(reference, register)
        if problem is not None:
            verdict, detail = problem
            if self._rebase(register):
                return self._accept(register, boundary, Verdict.REBASED, chain=False)
            return Outcome(verdict, detail, boundary=boundary)
        self._rejected.clear()
        return self._accept(register, boundary, Verdict.ACCEPTED, chain=True)

    def _implausible(self, before: Register, after: Register) -> tuple[Verdict, str] | None:
        seconds = max(0.0, (after.taken_at - before.taken_at).total_seconds())
        allowed = self.max_power_w * (seconds + PLAUSIBILITY_SLACK.total_seconds()) / 3600.0
        for channel, wh in after.wh.items():
            old = before.wh.get(channel)
            if old is None:
                continue
            if wh < old:
                return Verdict.BACKWARDS, f"{channel} register fell from {old} Wh to {wh} Wh"
            if wh - old > allowed + RESOLUTION_SLACK_WH:
                return (
                    Verdict.JUMP,
                    f"{channel} register rose {wh - old} Wh in {seconds:.0f} s, more than "
                    f"{self.max_power_w / 1000:g} kW can deliver",
                )
        return None

    def _rebase(self, register: Register) -> bool:
        """Keep consistent rejected registers; True when enough agree to become the reference."""
        if self._rejected and self._implausible(self._rejected[-1], register) is not None:
            self._rejected.clear()
        self._rejected.append(register)
        if len(self._rejected) < self.rebase_after:
            return False
        self._rejected.clear()
        return True

    def _accept(
        self, register: Register, boundary: datetime | None, verdict: Verdict, *, chain: bool
    ) -> Outcome:
        self.reference = register
        if boundary is None:
            if not chain:  # a rebase breaks the chain of hourly registers
                self.hourly = None
            return Outcome(verdict)
        period = None
        previous, previous_boundary = self.hourly, self.hourly_boundary
        if chain and previous is not None and previous_boundary is not None:
            period = Period(
                start=previous_boundary,
                end=boundary,
                wh=MappingProxyType(
                    {
                        channel: wh - previous.wh[channel]
                        for channel, wh in register.wh.items()
                        if channel in previous.wh
                    }
                ),
            )
        self.hourly = register
        self.hourly_boundary = boundary
        return Outcome(verdict, period=period, boundary=boundary)

    # ---- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Serialise for the store (pending rejections are not kept)."""
        return {
            "reference": self.reference.to_dict() if self.reference else None,
            "hourly": self.hourly.to_dict() if self.hourly else None,
            "hourly_boundary": self.hourly_boundary.isoformat() if self.hourly_boundary else None,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take back a state from ``to_dict``."""
        reference, hourly, boundary = (
            data.get("reference"),
            data.get("hourly"),
            data.get("hourly_boundary"),
        )
        self.reference = Register.from_dict(reference) if reference else None
        self.hourly = Register.from_dict(hourly) if hourly else None
        self.hourly_boundary = as_utc(datetime.fromisoformat(boundary)) if boundary else None


def _same_values(a: Register, b: Register) -> bool:
    return bool(a.wh) and dict(a.wh) == dict(b.wh)
