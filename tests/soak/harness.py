"""The soak engine: a real Home Assistant core, the integration, a simulated meter, faults.

One *leg* runs one transport (TCP like a ser2net/ESP bridge, or a pty like a USB
adapter) for a number of simulated hours while faults are injected at random, and
measures what ``report.LegResult`` lists. It runs inside a pytest-homeassistant-custom-
component test, whose fixtures give a working core, recorder and time control.

Time. The meter runs on a ``ManualClock`` and Home Assistant on freezegun's frozen
clock (wall time and the event loop's monotonic clock), and the engine moves both
together, step by step, to whatever is due next: a push of the meter, a Home
Assistant timer (watchdog, reconnect backoff, accounting ticks, store saves), a
fault. Nothing waits for real time, so every timer fires at its exact simulated
time and a simulated day takes as long as the work in it.

The oracle. The engine taps the bytes the integration receives (it wraps
``HanConnection._handle_data`` and only looks) and finds in them which frames the
meter sent arrived whole: a frame counts as delivered only when its exact bytes are
there. Every state a hanport entity writes (``state_changed`` and ``state_reported``)
is then compared with what the meter said:

* a meter value must equal the value of the latest frame delivered intact that
  carries it (or of a CRLF-expanded frame after it, which a decoder may repair):
  otherwise it is *stale* when some intact frame once carried it, else *wrong*;
* ``net_power`` is import minus export of that frame; ``meter_time`` the frame's clock;
* the last-hour sensors must equal the difference of two hourly registers the meter
  sent, an hour apart; energy sensors (registers, live energy) must never go down;
* every hourly list delivered while the entry was loaded must become the statistics
  row of its hour with the register as state, and the running sum must follow the
  registers without a break (restarts included).

Faults come one at a time (so each one's recovery can be measured): a random pause
(exponential, mean ``fault_gap``, at least ``min_gap``), then a random kind. Recovery
is the time from the end of the fault to the next correct write of active power.
Home Assistant restarts are entry unloads and setups: pytest-homeassistant-custom-
component cannot restart the core inside a test, so the core, recorder and restore
cache stay while the integration stops and starts (restoring its registers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from unittest.mock import patch
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder.statistics import (
    list_statistic_ids,
    statistics_during_period,
)
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.hanport.connection import HanConnection
from custom_components.hanport.const import (
    CONF_MANUFACTURER,
    CONF_METER_ID,
    CONF_METER_TYPE,
    CONF_SERIAL,
    CONF_SILENCE_TIMEOUT,
    CONF_URL,
    DOMAIN,
    SERIAL_2400_8N1,
    SERIAL_AUTO,
)
from custom_components.hanport.han.reading import PHASE_ENERGY_NAMES, ListKind
from custom_components.hanport.han.simulator import (
    PROFILES,
    Fault,
    ManualClock,
    SentFrame,
    SimulatedMeter,
    SimulatorServer,
    describe,
)

from .report import Example, LegResult

ENV: Final = "HANPORT_SOAK_"
TCP: Final = "tcp"
PTY: Final = "pty"
HOUR: Final = timedelta(hours=1)

NET_POWER: Final = "net_power"
METER_TIME: Final = "meter_time"
POWER: Final = "active_power_import"
ENERGY_SENSORS: Final = frozenset(
    {
        "active_energy_import",
        "active_energy_export",
        "reactive_energy_import",
        "reactive_energy_export",
        "energy_import_live",
        "energy_export_live",
        *PHASE_ENERGY_NAMES,
    }
)
"""Sensors whose value must never go down (registers and the live energy)."""
LAST_HOUR: Final = {
    "energy_import_last_hour": "active_energy_import",
    "energy_export_last_hour": "active_energy_export",
}
NOT_VALUES: Final = frozenset({"frames_received", "frames_rejected", "reconnects"})
"""Port counters: not meter values (published once a minute)."""
ESTIMATE_SUFFIXES: Final = ("_this_hour", "_hour_estimate")
"""Accounting sensors that are estimates: not checked value by value (nor capacity_*)."""

FAULT_KINDS: Final = {
    TCP: (
        "disconnect",
        "silence",
        "garbage",
        "bitflip",
        "truncate",
        "parity",
        "crlf",
        "unplug",
        "restart",
    ),
    PTY: ("silence", "garbage", "bitflip", "truncate", "parity", "crlf", "unplug", "restart"),
}
"""A TCP bridge can drop its client mid-frame; a serial line has no client to drop."""
FRAME_FAULTS: Final = {
    "disconnect": Fault.DISCONNECT,
    "bitflip": Fault.BITFLIP,
    "truncate": Fault.TRUNCATE,
}
"""Faults armed for the next frame(s): they end with the last frame they damaged."""
QUIET_TAIL: Final = timedelta(minutes=15)
"""No fault starts this close to the end, so each one's recovery is seen."""
PENDING_HORIZON: Final = timedelta(minutes=15)
"""A frame not found in the received bytes this long after it was sent never arrived."""
RX_KEEP: Final = 1 << 16
SETTLE_SPINS: Final = 300
"""Loop turns to wait for bytes that should arrive (a pty hands them over asynchronously)."""
QUIET_LOGGERS: Final = ("custom_components.hanport.han.sim", "sqlalchemy.engine", "asyncio")
EXAMPLES: Final = 12
LATE_LIMIT: Final = 60.0
"""Seconds: a value delivered this recently but no longer the newest was published *late*
(the stream held an intact frame behind a truncated one), not *stale*."""
THREAD_PATIENCE: Final = 5.0
"""Real seconds an executor job may hold simulated time still."""
PROBLEM_CONTEXTS: Final = 3
"""Failed checks whose preceding events are printed (stderr)."""
IDLE_TURNS: Final = 3
"""Loop turns with nothing ready that count as quiet (an accept takes a few turns)."""
QUIESCE_ROUNDS: Final = 200
"""Bound on the loop turns spent letting thread results and their callbacks run."""
DRIVE_IDLE_TURNS: Final = 20
"""Idle loop turns (a real millisecond each) before ``_drive`` lets simulated time pass."""

_LOGGER: Final = logging.getLogger(__name__)


_ENABLED: Final = property(lambda _entity: True)
"""Every entity enabled (what ``SoakConfig.enable_all`` patches in)."""


def _wall() -> float:
    """Real seconds (freezegun freezes time.monotonic and perf_counter, not this)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _rss() -> int:
    """Resident set size now, in bytes."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class SoakConfig:
    """One leg's parameters (``from_env`` reads the ``HANPORT_SOAK_*`` overrides)."""

    transport: str
    profile: str = "aidon-6534-no"
    hours: float = 24.0
    seed: int = 1
    start: datetime = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    fault_gap: float = 600.0
    """Mean seconds from the end of one fault to the start of the next."""
    min_gap: float = 120.0
    silence_timeout: float = 30.0
    lists: frozenset[ListKind] | None = None
    """Lists the meter sends (None: all its lists)."""
    kinds: tuple[str, ...] | None = None
    """Fault kinds to draw from (None: every kind the transport has)."""
    trace_memory: bool = False
    enable_all: bool = True
    """Enable every entity (default: only those Home Assistant enables by default)."""
    trace: tuple[datetime, datetime] | None = None
    """Print what was sent, received and written between these simulated times."""

    @classmethod
    def from_env(
        cls, transport: str, environ: Mapping[str, str] | None = None, **defaults: Any
    ) -> SoakConfig:
        """Build from ``defaults`` overridden by HANPORT_SOAK_HOURS, _SEED, _PROFILE,
        _START (ISO), _FAULT_GAP, _LISTS (e.g. "2,3"), _TRACEMALLOC (1), _ENABLE_ALL (0/1),
        _TRACE ("FROM,TO", ISO: print the line and the writes in that window).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"transport": transport, **defaults}
        if (hours := env.get(f"{ENV}HOURS")) is not None:
            values["hours"] = float(hours)
        if (seed := env.get(f"{ENV}SEED")) is not None:
            values["seed"] = int(seed)
        if (profile := env.get(f"{ENV}PROFILE")) is not None:
            values["profile"] = profile
        if (start := env.get(f"{ENV}START")) is not None:
            values["start"] = datetime.fromisoformat(start).astimezone(UTC)
        if (gap := env.get(f"{ENV}FAULT_GAP")) is not None:
            values["fault_gap"] = float(gap)
        if (lists := env.get(f"{ENV}LISTS")) is not None:
            values["lists"] = frozenset(ListKind(int(x)) for x in lists.split(",") if x.strip())
        if env.get(f"{ENV}TRACEMALLOC") == "1":
            values["trace_memory"] = True
        if (enable := env.get(f"{ENV}ENABLE_ALL")) is not None:
            values["enable_all"] = enable != "0"
        if trace := env.get(f"{ENV}TRACE"):
            first, _, last = trace.partition(",")
            values["trace"] = (
                datetime.fromisoformat(first).astimezone(UTC),
                datetime.fromisoformat(last).astimezone(UTC),
            )
        return cls(**values)


def published_values(frame: SentFrame, zone: ZoneInfo) -> dict[str, float]:
    """What a correct integration publishes from ``frame``, as comparable numbers.

    The meter's values as the frame carries them; ``net_power`` as import minus
    export (import alone when the list has no export value and import > 0: the two
    are the positive and negative parts of one sum); ``meter_time`` as a POSIX
    timestamp (a clock without offset is the meter's local wall time).
    """
    reading = frame.reading
    if reading is None:
        return {}
    values = dict(reading.values)
    imp, exp = values.get(POWER), values.get("active_power_export")
    if imp is not None and exp is not None:
        values[NET_POWER] = imp - exp
    elif imp is not None and imp > 0:
        values[NET_POWER] = imp
    elif exp is not None and exp > 0:
        values[NET_POWER] = -exp
    if (clock := reading.meter_time) is not None:
        aware = clock if clock.tzinfo is not None else clock.replace(tzinfo=zone)
        values[METER_TIME] = aware.timestamp()
    return values


def state_number(key: str, state: str) -> float | None:
    """The number a written state stands for (None: not a number at all)."""
    if key == METER_TIME:
        parsed = dt_util.parse_datetime(state)
        return None if parsed is None else parsed.timestamp()
    try:
        return float(state)
    except ValueError:
        return None


@contextlib.contextmanager
def _quiet(names: tuple[str, ...]) -> Iterator[None]:
    """Raise these loggers to WARNING for the run (a line per frame would dominate it)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _sleep_task(seconds: float) -> asyncio.Future[None]:
    """Sleep as a task (replaced by a real-time sleep in a thread while a leg runs)."""
    return asyncio.ensure_future(asyncio.sleep(seconds))


def register_wh(kwh: float) -> int:
    """Return an energy register in whole watt-hours (registers have 3 decimals or fewer)."""
    return round(kwh * 1000)


@dataclass(slots=True)
class FaultRecord:
    """One injected fault: when it started, when it ended, when power was right again."""

    kind: str
    start: datetime
    end: datetime | None = None
    frames_left: int = 0


class Oracle:
    """What the meter said, what arrived, and the verdict on every state written."""

    def __init__(self, zone: ZoneInfo, result: LegResult) -> None:
        """Start knowing nothing."""
        self.zone = zone
        self.result = result
        self.acceptable: dict[str, list[tuple[float, bool]]] = {}
        """Per key: values a write may show now, oldest first; (value, from an intact frame)."""
        self.ever: dict[str, set[float]] = {}
        self.registers: dict[datetime, dict[str, int]] = {}
        """Hourly registers the meter sent intact, by the hour they were latched at (UTC)."""
        self.hourly_sent: set[datetime] = set()
        self.hourly_delivered: dict[datetime, dict[str, int]] = {}
        self.recent: dict[str, deque[tuple[float, float]]] = {}
        """Per key: (POSIX time delivered, value) of the frames delivered in ``LATE_LIMIT``."""
        self.last_energy: dict[str, float] = {}
        self.power_ok: list[float] = []
        self.on_problem: Callable[[], None] = lambda: None
        """POSIX times of correct active-power writes (for recovery times)."""

    # ---- what the meter sent --------------------------------------------------------
    def sent(self, frame: SentFrame, *, hourly: bool) -> None:
        """Take a frame as the meter sent it (whatever happened on the line)."""
        result = self.result
        if frame.is_garbage:
            result.garbage_bursts += 1
            return
        result.pushes += 1
        if frame.lost:
            result.pushes_not_sent += 1
        elif frame.intact:
            result.pushes_intact += 1
        else:
            result.pushes_corrupted += 1
            if frame.repairable:
                result.pushes_repairable += 1
        if not (frame.intact or frame.repairable or frame.lost):
            return
        for key, value in published_values(frame, self.zone).items():
            self.ever.setdefault(key, set()).add(value)
        if hourly and frame.reading is not None:
            boundary = frame.at.replace(minute=0, second=0, microsecond=0)
            self.hourly_sent.add(boundary)
            self.registers[boundary] = {
                name: register_wh(value)
                for name, value in frame.reading.values.items()
                if name in LAST_HOUR.values()
            }

    # ---- what arrived ----------------------------------------------------------------
    def begin_chunk(self) -> None:
        """New bytes arrive: what the entities may show starts at the latest intact frame."""
        for values in self.acceptable.values():
            last_intact = max((i for i, (_value, intact) in enumerate(values) if intact), default=0)
            del values[:last_intact]

    def delivered(self, frame: SentFrame, now: datetime, *, hourly: bool) -> None:
        """A frame's exact bytes reached the integration at ``now``."""
        if frame.intact:
            self.result.delivered_intact += 1
        else:
            self.result.delivered_repairable += 1
        stamp = now.timestamp()
        for key, value in published_values(frame, self.zone).items():
            self.acceptable.setdefault(key, []).append((value, frame.intact))
            recent = self.recent.setdefault(key, deque())
            recent.append((stamp, value))
            while recent[0][0] < stamp - LATE_LIMIT:
                recent.popleft()
        if hourly and frame.reading is not None:
            boundary = frame.at.replace(minute=0, second=0, microsecond=0)
            self.hourly_delivered[boundary] = self.registers.get(boundary, {})

    # ---- what Home Assistant shows --------------------------------------------------
    def written(self, key: str, state: State, entity_id: str, now: datetime) -> None:
        """Judge one state write of a hanport entity."""
        if state.state in (STATE_UNKNOWN, STATE_UNAVAILABLE) or key in NOT_VALUES:
            return
        if key.startswith(("rejected_", "capacity_")) or key.endswith(ESTIMATE_SUFFIXES):
            return
        result = self.result
        result.writes_checked += 1
        result.writes_by_key[key] = result.writes_by_key.get(key, 0) + 1
        number = state_number(key, state.state)
        if key in ENERGY_SENSORS and number is not None:
            last = self.last_energy.get(entity_id)
            if last is not None and number < last:
                result.energy_decreases += 1
                self._example(now, entity_id, state.state, f">= {last}")
            self.last_energy[entity_id] = max(number, last if last is not None else number)
        if key in LAST_HOUR:
            self._last_hour(key, number, state, entity_id, now)
            return
        if key.endswith("_live"):
            return
        allowed = [value for value, _intact in self.acceptable.get(key, [])]
        if number is not None and number in allowed:
            if key == POWER:
                self.power_ok.append(now.timestamp())
            return
        stamp = now.timestamp()
        arrived = [t for t, value in self.recent.get(key, ()) if value == number]
        if arrived and stamp - max(arrived) <= LATE_LIMIT:
            result.late_values += 1
            result.late_max_seconds = max(result.late_max_seconds, stamp - max(arrived))
            return
        if number is not None and number in self.ever.get(key, ()):
            result.stale_values += 1
        else:
            result.wrong_values += 1
        self._example(now, entity_id, state.state, " or ".join(map(str, allowed)) or "nothing")

    def _last_hour(
        self, key: str, number: float | None, state: State, entity_id: str, now: datetime
    ) -> None:
        """The last complete hour: the difference of two hourly registers an hour apart."""
        self.result.last_hour_checked += 1
        start, end = state.attributes.get("hour_start"), state.attributes.get("hour_end")
        expected: float | None = None
        if isinstance(start, datetime) and isinstance(end, datetime) and end - start == HOUR:
            before = self.registers.get(start.astimezone(UTC), {}).get(LAST_HOUR[key])
            after = self.registers.get(end.astimezone(UTC), {}).get(LAST_HOUR[key])
            if before is not None and after is not None:
                expected = (after - before) / 1000
        if number is None or expected is None or number != expected:
            self.result.wrong_values += 1
            self._example(now, entity_id, f"{state.state} for {start}", str(expected))

    def _example(self, now: datetime, entity_id: str, state: str, expected: str) -> None:
        self.on_problem()
        if len(self.result.examples) < EXAMPLES:
            self.result.examples.append(Example(now.isoformat(), entity_id, state, expected))


class Tap:
    """Finds the frames the meter sent in the bytes the integration received."""

    def __init__(
        self,
        oracle: Oracle,
        hourly: Callable[[SentFrame], bool],
        now: Callable[[], datetime],
    ) -> None:
        """Nothing pending, nothing received."""
        self.oracle = oracle
        self.hourly = hourly
        self.now = now
        self.pending: deque[SentFrame] = deque()
        self.rx = bytearray()
        self.session: tuple[int, int] | None = None
        self.total = 0

    def sent(self, frame: SentFrame) -> None:
        """A frame went on the line (it may or may not reach the integration)."""
        while self.pending and self.pending[0].at < frame.at - PENDING_HORIZON:
            self.pending.popleft()
        if not frame.is_garbage and (frame.intact or frame.repairable):
            self.pending.append(frame)

    def received(self, session: tuple[int, int], data: bytes) -> None:
        """Bytes reached the integration on link ``session`` (before it decodes them)."""
        self.total += len(data)
        if session != self.session:
            self.session = session
            self.rx.clear()
        self.rx += data
        self.oracle.begin_chunk()
        search = 0
        first = 0
        pending = self.pending
        while True:
            # The frame whose bytes come first: frames without a clock (list 1) repeat
            # byte for byte, and an earlier copy may have been lost while the link was down.
            found: tuple[int, int] | None = None
            for index in range(first, len(pending)):
                at = self.rx.find(pending[index].data, search)
                if at >= 0 and (found is None or at < found[1]):
                    found = (index, at)
                    if at == search:
                        break
            if found is None:
                break
            index, at = found
            frame = pending[index]
            search = at + len(frame.data)
            first = index + 1
            self.oracle.delivered(frame, self.now(), hourly=self.hourly(frame))
        for _ in range(first):
            pending.popleft()  # found, or lost in front of one found
        del self.rx[:search]
        if len(self.rx) > RX_KEEP:
            del self.rx[: len(self.rx) - RX_KEEP]


class SoakLeg:
    """One leg: the integration in ``hass`` on one transport for ``config.hours``."""

    def __init__(
        self, hass: HomeAssistant, freezer: FrozenDateTimeFactory, config: SoakConfig
    ) -> None:
        """Prepare (``run`` does everything)."""
        if config.transport not in FAULT_KINDS:
            raise ValueError(f"transport must be {TCP} or {PTY}")
        self.hass = hass
        self.freezer = freezer
        self.config = config
        profile = PROFILES[config.profile]
        self.zone = ZoneInfo(profile.timezone)
        self.hourly_kind = any(
            spec.kind is ListKind.ENERGY and spec.hourly_registers for spec in profile.schedule
        )
        self.result = LegResult(
            transport=config.transport,
            profile=config.profile,
            seed=config.seed,
            start=config.start.isoformat(),
        )
        self.oracle = Oracle(self.zone, self.result)
        self.rng = random.Random(f"soak-{config.seed}-{config.transport}")
        self.clock = ManualClock(config.start)
        self.tap = Tap(self.oracle, self._is_hourly, self.clock.now)
        self.meter = SimulatedMeter(
            profile, start=config.start, seed=config.seed, lists=config.lists, log_limit=2000
        )
        self.server: SimulatorServer | None = None
        self.entry: MockConfigEntry | None = None
        self.step_frames: list[SentFrame] = []
        self.faults: list[FaultRecord] = []
        self.current: FaultRecord | None = None
        self.next_fault_at: datetime | None = None
        self.restart_up_at: datetime | None = None
        self.loaded = False
        self.kinds = config.kinds or FAULT_KINDS[config.transport]
        self._entity_keys: dict[str, str | None] = {}
        self._stuck = 0
        self._ring: deque[tuple[datetime, Callable[[], str]]] = deque(maxlen=400)
        self._problems = 0
        self.oracle.on_problem = self._problem
        self._jobs: dict[asyncio.Future[Any], float] = {}
        """Executor jobs running now (opening a port, loading a store, recorder queries)."""
        self._pause: Callable[[float], asyncio.Future[Any]] = _sleep_task
        self._end = config.start + timedelta(hours=config.hours)

    # ---- the run ------------------------------------------------------------------
    async def run(self) -> LegResult:
        """Run the leg and return its figures."""
        hass = self.hass
        await hass.config.async_set_time_zone(str(self.zone))
        hass.loop.set_debug(False)  # asyncio's debug mode keeps a traceback per future
        self.freezer.move_to(self.config.start)
        if self.config.trace_memory:
            tracemalloc.start()
        wall = _wall()
        with self._patches(), _quiet(QUIET_LOGGERS):
            transport: dict[str, Any] = (
                {"tcp": ("127.0.0.1", 0)} if self.config.transport == TCP else {"pty": True}
            )
            server = self.server = SimulatorServer(self.meter, self.clock, **transport)
            server.on_frame = self._on_frame
            await server.start()
            unsubs = self._listen()
            try:
                await self._setup_entry(server)
                self._schedule_next(self.config.start)
                await self._loop()
                await self._finish()
            finally:
                for unsub in unsubs:
                    unsub()
                if self.loaded:
                    await self._unload()
                await server.stop()
        self.result.wall_seconds = _wall() - wall
        self.result.simulated_hours = self.config.hours
        self.result.max_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if self.config.trace_memory:
            self.result.traced_peak_bytes = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return self.result

    @contextlib.contextmanager
    def _patches(self) -> Iterator[None]:
        tap = self.tap
        original = HanConnection._handle_data

        def tapped(connection: HanConnection, data: bytes) -> None:
            if not connection._stopping:
                self._trace(lambda: f"RX {len(data)} B link {connection.reconnects}")
                tap.received((id(connection), connection.reconnects), data)
            original(connection, data)

        loop = self.hass.loop
        run_in_executor = loop.run_in_executor
        jobs = self._jobs

        def tracked(executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
            future = run_in_executor(executor, func, *args)
            if func is not time.sleep:
                jobs[future] = _wall()
                future.add_done_callback(lambda done: jobs.pop(done, None))
            return future

        self._pause = lambda seconds: run_in_executor(None, time.sleep, seconds)
        with contextlib.ExitStack() as stack:
            stack.enter_context(patch.object(HanConnection, "_handle_data", tapped))
            stack.enter_context(patch.object(loop, "run_in_executor", tracked))
            if self.config.enable_all:
                # A plain property: a PropertyMock would record every call (a month: MBs).
                stack.enter_context(
                    patch.object(Entity, "entity_registry_enabled_default", _ENABLED)
                )
            yield

    def _listen(self) -> list[Callable[[], None]]:
        @callback
        def changed(event: Event[Any]) -> None:
            new = event.data.get("new_state")
            if isinstance(new, State):
                self._written(new)

        @callback
        def ours(data: Mapping[str, Any]) -> bool:
            return str(data.get("entity_id", "")).startswith("sensor.")

        return [
            self.hass.bus.async_listen(EVENT_STATE_CHANGED, changed, event_filter=ours),
            self.hass.bus.async_listen(EVENT_STATE_REPORTED, changed, event_filter=ours),
        ]

    def _trace(self, line: Callable[[], str]) -> None:
        """Keep ``line`` for the context of a problem; print it inside the ``trace`` window."""
        now = self.clock.now()
        self._ring.append((now, line))
        window = self.config.trace
        if window is not None and window[0] <= now <= window[1]:
            print(f"TRACE {now.isoformat()} {line()}", file=sys.stderr)

    def _problem(self) -> None:
        """A check failed: print what led to it (the first few times)."""
        self._problems += 1
        if self._problems <= PROBLEM_CONTEXTS:
            lines = [f"CONTEXT {at.isoformat()} {line()}" for at, line in self._ring]
            print("\n".join(lines), file=sys.stderr)

    def _written(self, state: State) -> None:
        self._trace(lambda: f"WRITE {state.entity_id} {state.state}")
        key = self._key_of(state.entity_id)
        if key is not None:
            self.oracle.written(key, state, state.entity_id, self.clock.now())

    def _key_of(self, entity_id: str) -> str | None:
        if entity_id in self._entity_keys:
            return self._entity_keys[entity_id]
        entry = er.async_get(self.hass).async_get(entity_id)
        key: str | None = None
        prefix = f"{self.meter.meter_id}_"
        if entry is not None and entry.platform == DOMAIN and entry.unique_id.startswith(prefix):
            key = entry.unique_id.removeprefix(prefix)
        if entry is not None:
            self._entity_keys[entity_id] = key
        return key

    def _is_hourly(self, frame: SentFrame) -> bool:
        return self.hourly_kind and frame.kind is ListKind.ENERGY

    def _on_frame(self, frame: SentFrame) -> None:
        self._trace(lambda: f"SENT {describe(frame)}{' intact' if frame.intact else ''}")
        self.step_frames.append(frame)
        self.oracle.sent(frame, hourly=self._is_hourly(frame))
        self.tap.sent(frame)
        current = self.current
        if current is not None and current.frames_left:
            flag = FRAME_FAULTS[current.kind]
            if flag in frame.faults:
                current.frames_left -= 1
                current.end = frame.at
                if not current.frames_left:
                    self._schedule_next(frame.at)

    async def _setup_entry(self, server: SimulatorServer) -> None:
        meter = self.meter
        profile = meter.profile
        self.entry = entry = MockConfigEntry(
            domain=DOMAIN,
            title=f"{profile.manufacturer or 'Meter'} {profile.model}",
            unique_id=meter.meter_id,
            data={
                CONF_URL: server.url,
                # A Linux pty drops PARENB and serialx then cannot reopen it at 8E1; the
                # pty ignores parity anyway (wrong parity is simulated on the bytes).
                CONF_SERIAL: SERIAL_AUTO if self.config.transport == TCP else SERIAL_2400_8N1,
                CONF_METER_ID: meter.meter_id,
                CONF_MANUFACTURER: profile.manufacturer,
                CONF_METER_TYPE: profile.meter_type,
            },
            options={CONF_SILENCE_TIMEOUT: self.config.silence_timeout},
        )
        entry.add_to_hass(self.hass)
        await self._start_entry()

    async def _start_entry(self) -> None:
        if self.entry is None:  # pragma: no cover - set up first
            return
        if not await self._drive(self.hass.config_entries.async_setup(self.entry.entry_id)):
            raise RuntimeError("the hanport entry did not set up")
        self.loaded = True
        await self._settle(self._link_up)

    async def _loop(self) -> None:
        """Step simulated time to whatever is due next until the end."""
        first_hour = self.config.start + HOUR
        while self.clock.now() < self._end:
            await self._step(block=True)
            now = self.clock.now()
            if self.restart_up_at is not None and now >= self.restart_up_at:
                await self._restart_up()
            if self.next_fault_at is not None and now >= self.next_fault_at:
                await self._inject(now)
            if not self.result.rss_first_hour_bytes and now >= first_hour:
                self.result.rss_first_hour_bytes = _rss()

    async def _step(self, *, block: bool) -> None:
        """Move both clocks to what is due next (a push, a timer, a fault); deliver it."""
        await self._wait_threads()  # first: what is due next may depend on it
        now = self.clock.now()
        target = min(
            t
            for t in (
                self.meter.next_due(),
                self._end,
                self.next_fault_at,
                self.restart_up_at,
                self._next_timer(now),
            )
            if t is not None
        )
        if target <= now:
            self._stuck += 1
            if self._stuck > 50:  # something keeps being due now: let a millisecond pass
                target = now + timedelta(milliseconds=1)
        else:
            self._stuck = 0
        if target > now:
            self.freezer.move_to(target)
            self.clock.set(target)
        await self._pump(block=block)

    async def _wait_threads(self) -> None:
        """Let executor jobs finish, and what they wake run, before simulated time moves on.

        Real work (serialx resolves and opens a port in threads) takes real milliseconds;
        were simulated time to run on meanwhile, every thread hop of a reconnect would
        cost a meter cadence, and a 15 s open timeout would fire in a few steps. Jobs
        older than ``THREAD_PATIENCE`` real seconds are taken as permanent.
        """
        loop = self.hass.loop
        idle = 0
        for _ in range(QUIESCE_ROUNDS):
            now = _wall()
            fresh = [
                job for job, began in self._jobs.items()
                if not job.done() and now - began < THREAD_PATIENCE
            ]  # fmt: skip
            if fresh:
                idle = 0
                await asyncio.wait([*fresh, self._pause(0.02)], return_when=asyncio.FIRST_COMPLETED)
                continue
            await asyncio.sleep(0)  # one loop turn, with a select pass for ready sockets
            idle = 0 if loop._ready else idle + 1  # type: ignore[attr-defined]
            if idle >= IDLE_TURNS:
                return

    async def _drive[T](self, awaitable: Coroutine[Any, Any, T]) -> T:
        """Await something that may need time to pass (a pty open sleeps, unloads wait).

        While it is pending and the loop has nothing else to do, worker threads get a
        few real milliseconds first (store loads, recorder queries), then simulated time
        moves on as in the main loop.
        """
        loop = self.hass.loop
        task = loop.create_task(awaitable)
        idle = 0
        while not task.done():
            await asyncio.sleep(0)
            if loop._ready:  # type: ignore[attr-defined]
                idle = 0
                continue
            idle += 1
            if idle < DRIVE_IDLE_TURNS:
                await self._pause(0.001)
                continue
            idle = 0
            await self._step(block=False)
        return task.result()

    def _next_timer(self, now: datetime) -> datetime | None:
        """When Home Assistant's next timer is due (loop time runs with the frozen clock)."""
        loop = self.hass.loop
        now_loop = loop.time()
        best: float | None = None
        for handle in loop._scheduled:  # type: ignore[attr-defined]
            if handle.cancelled():
                continue
            when = handle.when()
            if when > now_loop and (best is None or when < best):
                best = when
        if best is None:
            return None
        micros = math.ceil((best - now_loop) * 1e6) + 1
        return now + timedelta(microseconds=micros)

    async def _pump(self, *, block: bool) -> None:
        """Send what is due and wait until the integration has taken it in."""
        server = self.server
        if server is None:  # pragma: no cover - started first
            return
        self.step_frames = []
        before = self.tap.total
        await server.pump()
        expected = 0
        for frame in self.step_frames:
            if frame.data and (self._link_up() or Fault.DISCONNECT in frame.faults):
                expected += len(frame.data)
        await self._settle(lambda: self.tap.total >= before + expected, block=block)

    def _link_up(self) -> bool:
        """Whether bytes sent now reach the integration."""
        server, entry = self.server, self.entry
        if server is None or entry is None or not self.loaded:
            return False
        if self.config.transport == TCP:
            return server.clients > 0
        connection = entry.runtime_data.connection
        return server.pty_device is not None and connection.connected

    async def _settle(self, until: Callable[[], bool], *, block: bool = True) -> None:
        """Let the loop run until ``until()`` (bounded), then until the core is idle.

        ``block=False`` inside ``_drive``: a task that waits for a timer would never let
        ``async_block_till_done`` return while the clock is frozen.
        """
        for _ in range(SETTLE_SPINS):
            if until():
                break
            await asyncio.sleep(0)
        if block:
            await self.hass.async_block_till_done()
        else:
            await asyncio.sleep(0)

    # ---- faults -------------------------------------------------------------------
    def _schedule_next(self, after: datetime) -> None:
        self.current = None
        mean = max(self.config.fault_gap - self.config.min_gap, 1.0)
        gap = self.config.min_gap + self.rng.expovariate(1.0 / mean)
        at = after + timedelta(seconds=gap)
        self.next_fault_at = at if at < self._end - QUIET_TAIL else None

    async def _inject(self, now: datetime) -> None:
        server = self.server
        if server is None:  # pragma: no cover - started first
            return
        self.next_fault_at = None
        kind = self.rng.choice(self.kinds)
        record = FaultRecord(kind, now)
        self._trace(lambda: f"FAULT {kind}")
        self.faults.append(record)
        self.current = record
        self.result.faults[kind] = self.result.faults.get(kind, 0) + 1
        rng = self.rng
        timeout = self.config.silence_timeout
        seconds = 0.0
        if kind == "disconnect":
            record.frames_left = 1
            await server.disconnect(mid_frame=True)
        elif kind == "bitflip":
            record.frames_left = rng.randrange(1, 4)
            await server.flip_bits(frames=record.frames_left, bits=rng.randrange(1, 4))
        elif kind == "truncate":
            record.frames_left = rng.randrange(1, 3)
            await server.truncate_next(frames=record.frames_left)
        elif kind == "garbage":
            await server.inject_garbage(rng.randrange(4, 257))
        elif kind == "silence":
            seconds = rng.uniform(timeout + 5, 3 * timeout)
            await server.go_silent(seconds)
        elif kind == "parity":
            seconds = rng.uniform(10.0, 90.0)
            await server.wrong_parity(seconds)
        elif kind == "crlf":
            seconds = rng.uniform(30.0, 300.0)
            await server.expand_crlf(seconds)
        elif kind == "unplug":
            seconds = rng.uniform(3.0, 30.0)
            await server.unplug(seconds)
        elif kind == "restart":
            await self._restart_down(now)
            return
        await self._settle(lambda: True)
        if not record.frames_left:
            record.end = now + timedelta(seconds=seconds)
            self._schedule_next(record.end)

    async def _restart_down(self, now: datetime) -> None:
        """Home Assistant stops: the entry unloads (its counters are kept first)."""
        entry = self.entry
        if entry is None:  # pragma: no cover - set up first
            return
        self._collect_counters()
        await self._unload()
        self.restart_up_at = now + timedelta(seconds=self.rng.uniform(5.0, 60.0))
        self.result.restarts += 1

    async def _restart_up(self) -> None:
        self.restart_up_at = None
        self._trace(lambda: "RESTART setup")
        await self._start_entry()
        if self.current is not None:
            self.current.end = self.clock.now()
            self._schedule_next(self.current.end)

    def _collect_counters(self) -> None:
        entry = self.entry
        if entry is None or not self.loaded:
            return
        counters = entry.runtime_data.connection.stream.counters
        self.result.frames_accepted += counters.frames_ok
        for reason, count in counters.rejected.items():
            key = str(reason.value)
            self.result.rejected[key] = self.result.rejected.get(key, 0) + count

    async def _unload(self) -> None:
        entry = self.entry
        if entry is None:  # pragma: no cover - set up first
            return
        self.loaded = False
        if not await self._drive(self.hass.config_entries.async_unload(entry.entry_id)):
            raise RuntimeError("the hanport entry did not unload")
        await self._settle(lambda: True, block=False)

    # ---- the end ------------------------------------------------------------------
    async def _finish(self) -> None:
        self._collect_counters()
        entry = self.entry
        if entry is not None and self.loaded:
            await self._unload()
        self.result.rss_last_hour_bytes = _rss()
        self._recovery()
        await self._statistics()

    def _recovery(self) -> None:
        times = self.oracle.power_ok
        by_kind: dict[str, list[float]] = {}
        result = self.result
        for record in self.faults:
            if record.end is None:
                continue
            index = bisect_left(times, record.end.timestamp())
            if index == len(times):
                result.not_recovered += 1
                continue
            delay = times[index] - record.end.timestamp()
            if delay > result.recovery_max.get(record.kind, -1.0):
                result.recovery_max[record.kind] = delay
                result.recovery_worst_at[record.kind] = record.start.isoformat(timespec="seconds")
            by_kind.setdefault(record.kind, []).append(delay)
        for kind, delays in by_kind.items():
            result.recovery_median[kind] = statistics.median(delays)

    async def _statistics(self) -> None:
        """Every hourly list delivered must be its hour's row; the sum must not break."""
        result, oracle = self.result, self.oracle
        delivered = sorted(oracle.hourly_delivered)
        result.hourly_delivered = len(delivered)
        result.hourly_not_delivered = len(oracle.hourly_sent - set(delivered))
        if not delivered:
            return
        hass = self.hass
        await async_wait_recording_done(hass)
        recorder = get_instance(hass)
        listed = await recorder.async_add_executor_job(list_statistic_ids, hass)
        ids = {
            channel: item["statistic_id"]
            for item in listed
            for channel in ("import", "export")
            if str(item["statistic_id"]).startswith(f"{DOMAIN}:energy_{channel}_")
        }
        expected = {b - HOUR: oracle.hourly_delivered[b] for b in delivered[1:]}
        booked: dict[float, int] = {}
        for channel, name in (
            ("import", "active_energy_import"),
            ("export", "active_energy_export"),
        ):
            if channel not in ids:
                continue
            rows = await recorder.async_add_executor_job(
                statistics_during_period,
                hass,
                self.config.start - 2 * HOUR,
                self._end + 2 * HOUR,
                {ids[channel]},
                "hour",
                None,
                {"state", "sum"},
            )
            previous: tuple[float, float] | None = None
            seen: dict[float, float] = {}  # start -> state
            for row in rows.get(ids[channel], []):
                state, total = float(row.get("state") or 0.0), float(row.get("sum") or 0.0)
                seen[float(row["start"])] = state
                if previous is not None and total - previous[1] != state - previous[0]:
                    result.sum_breaks += 1
                previous = (state, total)
            for hour, registers in expected.items():
                stamp = hour.timestamp()
                if stamp not in seen:
                    continue
                booked[stamp] = booked.get(stamp, 0) + 1
                if name in registers and seen[stamp] != registers[name]:
                    result.hourly_wrong += 1
            for stamp in set(seen) - {h.timestamp() for h in expected}:
                result.hourly_wrong += 1
                _LOGGER.warning("row for %s without an hourly list", stamp)
        wanted = len(ids) or 2
        result.hourly_booked = sum(1 for count in booked.values() if count == wanted)
        result.hourly_lost = len(expected) - result.hourly_booked


async def run_leg(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, config: SoakConfig
) -> LegResult:
    """Run one soak leg in ``hass`` and return its figures."""
    return await SoakLeg(hass, freezer, config).run()
