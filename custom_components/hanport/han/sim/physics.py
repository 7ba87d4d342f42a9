"""A household behind the meter: power that wanders like a real home's, and what follows from it.

The model is deliberately simple but shaped like real data, so dashboards,
peaks and accounting behave as they would with a real meter:

* base load x a daily profile (night low, morning and evening peaks) x a
  season factor (more in winter) x slow random noise;
* appliances that switch on and off as steps (water heater, kettle, oven,
  washer, heat pump, EV charger on three phases), at plausible hours;
* for prosumers, solar production (day length and height by season, drifting
  clouds) that makes the meter export at midday;
* per phase: net active power P, reactive power Q (inductive loads minus the
  capacitive electronics), voltage that sags with import and rises with
  export, and the current that P, Q and U imply (negative while a phase exports).

Powers are whole watts/vars, as meters send them; every random draw comes
from the ``random.Random`` passed in, so a seed replays the same household.
Import and export of the *total* never both exceed 0 (the meter nets the
phases); single phases may import while others export.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from .. import reading as r

_DAILY: Final = (
    0.55, 0.50, 0.48, 0.48, 0.50, 0.60, 0.90, 1.35, 1.30, 1.00, 0.90, 0.90,
    1.00, 0.90, 0.90, 1.00, 1.25, 1.65, 1.90, 1.80, 1.55, 1.30, 1.00, 0.70,
)  # fmt: skip
"""Relative household load by local hour (interpolated between hours)."""

_SQRT3: Final = math.sqrt(3.0)


@dataclass(frozen=True, slots=True)
class Appliance:
    """A switched load: ``watts`` for a random ``minutes`` span, ``per_day`` starts in ``hours``."""

    name: str
    watts: float
    three_phase: bool
    minutes: tuple[float, float]
    per_day: float
    hours: tuple[int, int]
    power_factor: float


APPLIANCES: Final = (
    Appliance("water_heater", 2000.0, False, (20.0, 60.0), 2.0, (5, 23), 1.0),
    Appliance("kettle", 2200.0, False, (2.0, 4.0), 3.0, (6, 22), 1.0),
    Appliance("oven", 2500.0, False, (25.0, 50.0), 0.8, (15, 20), 1.0),
    Appliance("washer", 1900.0, False, (15.0, 40.0), 0.6, (8, 22), 0.8),
    Appliance("heat_pump", 1500.0, False, (30.0, 120.0), 4.0, (0, 24), 0.9),
    Appliance("ev_charger", 7000.0, True, (90.0, 240.0), 0.35, (17, 24), 0.99),
)


@dataclass(frozen=True, slots=True)
class Sample:
    """The meter's state from one push until the next.

    ``active``/``reactive`` are per-phase net powers (W/var, positive =
    import); ``voltage`` the values the meter reports (phase voltages, or line
    voltages on a 3-wire IT meter); ``current`` per phase in A, negative while
    that phase exports.
    """

    active: tuple[int, ...]
    reactive: tuple[int, ...]
    voltage: tuple[float, ...]
    current: tuple[float, ...]

    @property
    def net_active(self) -> int:
        """Total active power, positive = import (W)."""
        return sum(self.active)

    @property
    def net_reactive(self) -> int:
        """Total reactive power, positive = import (var)."""
        return sum(self.reactive)

    def powers(self) -> dict[str, int]:
        """Total and per-phase import/export powers under their canonical names."""
        out: dict[str, int] = {}
        for prefix, net in (("active", self.net_active), ("reactive", self.net_reactive)):
            out[f"{prefix}_power_import"] = max(net, 0)
            out[f"{prefix}_power_export"] = max(-net, 0)
        for index, (p, q) in enumerate(zip(self.active, self.reactive, strict=True)):
            phase = r.PHASES[index]
            out[f"active_power_import_{phase}"] = max(p, 0)
            out[f"active_power_export_{phase}"] = max(-p, 0)
            out[f"reactive_power_import_{phase}"] = max(q, 0)
            out[f"reactive_power_export_{phase}"] = max(-q, 0)
        return out

    def values(self) -> dict[str, float]:
        """Every instantaneous quantity under its canonical name (full precision)."""
        out: dict[str, float] = {name: float(value) for name, value in self.powers().items()}
        for index, phase in enumerate(r.PHASES[: len(self.active)]):
            out[f"current_{phase}"] = self.current[index]
            out[f"voltage_{phase}"] = self.voltage[index]
            out[f"power_factor_{phase}"] = _power_factor(self.active[index], self.reactive[index])
        out[r.POWER_FACTOR] = _power_factor(self.net_active, self.net_reactive)
        return out


def _power_factor(p: float, q: float) -> float:
    apparent = math.hypot(p, q)
    return abs(p) / apparent if apparent else 1.0


def _daily_factor(hour: float) -> float:
    low = int(hour) % 24
    frac = hour - int(hour)
    return _DAILY[low] * (1.0 - frac) + _DAILY[(low + 1) % 24] * frac


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


@dataclass(slots=True)
class _Running:
    appliance: Appliance
    phase: int  # -1: all three
    until: float  # epoch seconds


class Household:
    """The load (and optional solar plant) behind one meter; ``step`` advances it.

    ``phases`` is 1 or 3; ``it_network`` makes currents follow line voltages
    (3-wire IT: I = √3·S/U); ``prosumer`` adds a solar plant of 4-10 kWp.
    """

    def __init__(
        self, rng: random.Random, *, phases: int, it_network: bool, prosumer: bool
    ) -> None:
        self._rng = rng
        self._phases = phases
        self._it = it_network
        self._base = rng.uniform(350.0, 900.0)
        raw_split = [rng.uniform(0.6, 1.4) for _ in range(phases)]
        self._split = [share / sum(raw_split) for share in raw_split]
        self._base_pf = [rng.uniform(0.90, 0.98) for _ in range(phases)]
        self._capacitive = [rng.uniform(30.0, 150.0) for _ in range(phases)]
        self._nominal = [rng.uniform(228.0, 236.0) for _ in range(phases)]
        self._drift = [0.0] * phases
        self._noise = 0.0
        self._kwp = rng.uniform(4.0, 10.0) if prosumer else 0.0
        self._cloud = rng.uniform(0.5, 1.0)
        self._running: list[_Running] = []

    @property
    def solar_peak_watts(self) -> float:
        """Installed solar power (0 when not a prosumer)."""
        return self._kwp * 1000.0

    def _season(self, local: datetime) -> float:
        day = local.timetuple().tm_yday
        return 1.1 + 0.4 * math.cos(2.0 * math.pi * (day - 15) / 365.0)

    def _solar(self, local: datetime, dt: float) -> float:
        if not self._kwp:
            return 0.0
        rng = self._rng
        step = math.sqrt(max(dt, 0.0) / 10.0)
        self._cloud = _clamp(
            self._cloud + rng.gauss(0.0, 0.04) * step + 0.01 * (0.75 - self._cloud) * step,
            0.15,
            1.0,
        )
        day = local.timetuple().tm_yday
        seasonal = math.sin(2.0 * math.pi * (day - 80) / 365.0)
        day_length = 12.0 + 6.5 * seasonal
        sunrise = 13.0 - day_length / 2.0
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        if not sunrise < hour < sunrise + day_length:
            return 0.0
        height = math.sin(math.pi * (hour - sunrise) / day_length) ** 2
        strength = 0.35 + 0.65 * max(seasonal, 0.0)
        return self._kwp * 1000.0 * height * strength * self._cloud

    def _switch_appliances(self, now: float, hour: int, dt: float) -> None:
        rng = self._rng
        self._running = [run for run in self._running if run.until > now]
        busy = {run.appliance.name for run in self._running}
        for appliance in APPLIANCES:
            start, end = appliance.hours
            if appliance.name in busy or not start <= hour < end:
                continue
            chance = appliance.per_day * dt / ((end - start) * 3600.0)
            if rng.random() < chance:
                minutes = rng.uniform(*appliance.minutes)
                phase = -1 if appliance.three_phase else rng.randrange(self._phases)
                self._running.append(_Running(appliance, phase, now + minutes * 60.0))

    def step(self, now: float, local: datetime, dt: float) -> Sample:
        """Advance ``dt`` seconds to ``now`` (epoch s; ``local`` = meter wall clock)."""
        rng = self._rng
        scale = math.sqrt(max(dt, 0.0) / 10.0)
        self._noise = _clamp(0.97 * self._noise + rng.gauss(0.0, 0.04) * scale, -0.4, 0.4)
        self._switch_appliances(now, local.hour, dt)
        hour = local.hour + local.minute / 60.0
        base = self._base * _daily_factor(hour) * self._season(local) * (1.0 + self._noise)
        solar = self._solar(local, dt)
        n = self._phases
        load = [base * share for share in self._split]
        inductive = [
            watts * math.tan(math.acos(pf)) for watts, pf in zip(load, self._base_pf, strict=True)
        ]
        for run in self._running:
            targets = range(n) if run.phase < 0 else (run.phase,)
            # a 3-phase charger on a 1-phase supply is limited to one 16 A phase
            watts = min(run.appliance.watts, 3600.0) if n == 1 else run.appliance.watts
            share = watts / len(targets)
            reactive = share * math.tan(math.acos(run.appliance.power_factor))
            for phase in targets:
                load[phase] += share
                inductive[phase] += reactive
        active = tuple(round(load[k] - solar / n) for k in range(n))
        reactive_net = tuple(round(inductive[k] - self._capacitive[k]) for k in range(n))
        voltage: list[float] = []
        current: list[float] = []
        for k in range(n):
            self._drift[k] = _clamp(0.95 * self._drift[k] + rng.gauss(0.0, 0.3) * scale, -5, 5)
            volts = self._nominal[k] + self._drift[k] - 0.0009 * active[k]
            apparent = math.hypot(active[k], reactive_net[k])
            amps = apparent * (_SQRT3 if self._it else 1.0) / volts
            voltage.append(volts)
            current.append(-amps if active[k] < 0 else amps)
        return Sample(active, reactive_net, tuple(voltage), tuple(current))
