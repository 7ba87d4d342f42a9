"""Clocks that drive the simulated meter: real time, a fast clock, or one tests step by hand.

The meter itself never reads a clock: ``SimulatedMeter.advance_to(when)`` is told
what time it is. A clock only decides *when* the server calls it, so the same
meter runs in real time for Home Assistant, a simulated day in minutes for a
soak test, or exactly as far as a test's ``advance()`` says.

Every clock returns aware UTC datetimes; meters convert to their own wall clock.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta


def _utc(when: datetime) -> datetime:
    """Refuse naive datetimes: a simulation start must say which instant it means."""
    if when.tzinfo is None:
        raise ValueError("clock times must be timezone-aware")
    return when.astimezone(UTC)


class Clock(ABC):
    """Where simulated time comes from.

    ``speed`` is simulated seconds per real second (``0`` for a manual clock,
    where no real time passes at all); the server paces bytes at the meter's
    baud rate only when ``speed > 0``.
    """

    speed: float = 1.0

    @abstractmethod
    def now(self) -> datetime:
        """Return the current simulated time (aware, UTC)."""

    @abstractmethod
    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        await self.sleep_until(self.now() + timedelta(seconds=seconds))


class RealClock(Clock):
    """Wall-clock time: a meter on real cadence (``simulate`` without ``--speed``)."""

    speed = 1.0

    def now(self) -> datetime:
        """Return the system time in UTC."""
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        """Sleep the real seconds left until ``when``."""
        delay = (_utc(when) - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class FastClock(Clock):
    """Simulated time that runs ``speed`` times faster than real time from ``start``.

    A day passes in 14.4 minutes at ``speed=100``. Time is derived from the
    monotonic clock, so it never jumps when the system clock is adjusted.
    """

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = _utc(start) if start is not None else datetime.now(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        """Return the simulated time."""
        elapsed = (time.monotonic() - self._origin) * self.speed
        return self._start + timedelta(seconds=elapsed)

    async def sleep_until(self, when: datetime) -> None:
        """Sleep the real time that corresponds to the simulated time left."""
        delay = (_utc(when) - self.now()).total_seconds() / self.speed
        if delay > 0:
            await asyncio.sleep(delay)


class ManualClock(Clock):
    """Time that moves only when a test calls ``advance`` or ``set``.

    ``sleep_until`` waits for such a call, so a server driven by this clock
    does nothing on its own; ``SimulatorServer.advance`` moves the clock and
    delivers what the meter sent in one awaitable step.
    """

    speed = 0.0

    def __init__(self, start: datetime) -> None:
        self._now = _utc(start)
        self._waiters: list[asyncio.Future[None]] = []

    def now(self) -> datetime:
        """Return the time last set."""
        return self._now

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move time forward (never back) and wake sleepers; return the new time."""
        step = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if step < timedelta(0):
            raise ValueError("a manual clock only moves forward")
        return self.set(self._now + step)

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (not earlier than now) and wake sleepers; return it."""
        target = _utc(when)
        if target < self._now:
            raise ValueError("a manual clock only moves forward")
        self._now = target
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return target

    async def sleep_until(self, when: datetime) -> None:
        """Wait for ``advance``/``set`` calls until ``now() >= when``."""
        target = _utc(when)
        while self._now < target:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
