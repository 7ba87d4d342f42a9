"""A real Home Assistant core for ``scripts/bench``, alone in its own process.

The bench's Home Assistant figures must be the CPU time and memory of Home Assistant
itself, so the core runs here, in a child process, while the simulated meters that feed
it run in the bench process (``scripts/bench_ha.py``). This process boots a bare core
(no frontend, no default integrations: the registries, ``homeassistant``,
``persistent_notification``, the recorder on an SQLite file, then hanport from
``custom_components/``), adds config entries pointing at ``socket://`` URLs, and answers
one JSON command per stdin line with one JSON line on stdout (stdout is reserved for
that; everything else printed goes to stderr).

``--warp START`` runs a simulated day: the event loop's clock and the wall clock the
core reads (``time.time``, ``dt_util.utcnow``/``now``, the event helpers' trackers) jump
forward together, so interval timers (the update policies, the accounting's minute ticks,
the recorder's commits) fire on simulated time while frames come from in-process
simulated meters on a manual clock. Without ``--warp`` nothing is patched: the clocks are
real and the figures are those of a stock core.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TextIO, override

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import Event, HomeAssistant


_real_time: Final = time.time
TIME_ZONE: Final = "Europe/Oslo"


# ---------------------------------------------------------------- simulated time


class Warp:
    """One simulated clock for the whole process: loop time and wall time move together.

    ``skew`` is added to the loop's monotonic time; the wall clock is the real one shifted
    to ``start`` when the process began, plus the same skew. Time only moves forward.
    """

    def __init__(self, start: float) -> None:
        self.skew = 0.0
        self.offset = start - _real_time()

    def wall(self) -> float:
        """Simulated ``time.time()``."""
        return _real_time() + self.offset + self.skew

    def advance_to(self, wall: float) -> None:
        """Move simulated time to ``wall`` (never back)."""
        self.skew = max(self.skew, wall - _real_time() - self.offset)


WARP: Warp | None = None


class WarpLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock includes the warp's skew (timers fire on simulated time)."""

    @override
    def time(self) -> float:
        return super().time() + (WARP.skew if WARP is not None else 0.0)


def install_warp(start: float) -> None:
    """Patch every clock Home Assistant reads; must run before other HA imports bind them."""
    global WARP  # noqa: PLW0603 - one clock per process, set once at start
    warp = WARP = Warp(start)
    time.time = warp.wall

    from homeassistant import util  # noqa: PLC0415 - after the clock patch, by design
    from homeassistant.util import dt as dt_util  # noqa: PLC0415

    def utcnow() -> datetime:
        return datetime.fromtimestamp(warp.wall(), UTC)

    def now(time_zone: tzinfo | None = None) -> datetime:
        return datetime.fromtimestamp(warp.wall(), time_zone or dt_util.get_default_time_zone())

    dt_util.utcnow = utcnow  # type: ignore[assignment]
    dt_util.now = now
    util.utcnow = utcnow  # type: ignore[attr-defined,assignment]
    from homeassistant.helpers import event  # noqa: PLC0415

    event.time_tracker_utcnow = utcnow  # type: ignore[assignment]
    event.time_tracker_timestamp = warp.wall


# ---------------------------------------------------------------- the core


def rss_kb() -> int:
    """Resident memory now (kB), from /proc; ru_maxrss (the peak) where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def boot(config_dir: Path, db_url: str | None) -> HomeAssistant:
    """A bare core: registries, core integrations, the recorder, started (as bootstrap does)."""
    from homeassistant import bootstrap, config_entries, core, loader  # noqa: PLC0415
    from homeassistant.core_config import async_process_ha_core_config  # noqa: PLC0415
    from homeassistant.setup import async_setup_component  # noqa: PLC0415

    hass = core.HomeAssistant(str(config_dir))
    loader.async_setup(hass)
    hass.config.skip_pip = True
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await loader.async_get_custom_components(hass)
    if not await bootstrap.async_load_base_functionality(hass):
        raise RuntimeError("Home Assistant registries did not load")
    for domain in ("homeassistant", "persistent_notification"):
        if not await async_setup_component(hass, domain, {}):
            raise RuntimeError(f"{domain} did not set up")
    await async_process_ha_core_config(
        hass,
        {
            "name": "bench",
            "time_zone": TIME_ZONE,
            "country": "NO",
            "currency": "NOK",
            "unit_system": "metric",
            "latitude": 59.91,
            "longitude": 10.75,
            "elevation": 20,
        },
    )
    if db_url is not None:
        from homeassistant.helpers import recorder  # noqa: PLC0415

        recorder.async_initialize_recorder(hass)
        if not await async_setup_component(hass, "recorder", {"recorder": {"db_url": db_url}}):
            raise RuntimeError("recorder did not set up")
    await hass.async_start()
    if db_url is not None:
        from homeassistant.helpers.recorder import get_instance  # noqa: PLC0415

        # the schema is made in the recorder's thread; stopping before it is ready hangs
        if not await get_instance(hass).async_db_ready:
            raise RuntimeError("recorder database not ready")
    return hass


def enable_every_entity() -> None:
    """Create every entity enabled (diagnostic ones too): the heaviest configuration."""
    from homeassistant.helpers.entity import Entity  # noqa: PLC0415

    Entity.entity_registry_enabled_default = property(lambda _self: True)  # type: ignore[assignment,method-assign]


# ---------------------------------------------------------------- what the bench asks


@dataclass
class Tracked:
    """One config entry: its readings, and its entities' state writes."""

    entry: ConfigEntry[Any]
    meter_id: str
    readings: int = 0
    entity_ids: set[str] = field(default_factory=set)
    power_entity: str | None = None


@dataclass
class Writes:
    """State writes of one entity: changed (a recorder row) and reported (no row)."""

    tracked: Tracked
    changed: int = 0
    reported: int = 0


class Host:
    """Runs the commands; one instance per process."""

    def __init__(self, hass: HomeAssistant, db_path: Path | None) -> None:
        self.hass = hass
        self.db_path = db_path
        self.tracked: dict[str, Tracked] = {}
        self.by_entity: dict[str, Writes] = {}
        self._foreign: set[str] = set()
        self.readings = 0
        self._reading_waiter: tuple[int, asyncio.Future[None]] | None = None
        self.watching: list[tuple[int, str, bool]] = []
        self._watch_unsubs: list[Callable[[], None]] = []
        self.profiler: cProfile.Profile | None = None
        self.boot_s = 0.0
        self.servers: list[Any] = []

    # --- entries --------------------------------------------------------------------

    async def add(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Add config entries (one per meter) and wait until each is loaded."""
        from homeassistant.config_entries import ConfigEntry, ConfigEntryState  # noqa: PLC0415

        from custom_components.hanport.const import (  # noqa: PLC0415
            CONF_MANUFACTURER,
            CONF_METER_ID,
            CONF_METER_TYPE,
            CONF_SERIAL,
            CONF_URL,
            DOMAIN,
            SERIAL_AUTO,
        )

        started = time.monotonic()
        added: list[Tracked] = []
        for spec in entries:
            entry: ConfigEntry[Any] = ConfigEntry(
                domain=DOMAIN,
                title=spec.get("title", "Meter"),
                data={
                    CONF_URL: spec["url"],
                    CONF_SERIAL: SERIAL_AUTO,
                    CONF_METER_ID: spec["meter_id"],
                    CONF_MANUFACTURER: spec.get("manufacturer"),
                    CONF_METER_TYPE: spec.get("meter_type"),
                },
                options=spec.get("options", {}),
                source="user",
                unique_id=spec["meter_id"],
                version=1,
                minor_version=1,
                discovery_keys=MappingProxyType({}),
                subentries_data=None,
            )
            await self.hass.config_entries.async_add(entry)
            if entry.state is not ConfigEntryState.LOADED:
                raise RuntimeError(f"entry for {spec['url']} is {entry.state}")
            tracked = Tracked(entry, spec["meter_id"])
            entry.async_on_unload(
                entry.runtime_data.coordinator.async_add_reading_listener(
                    lambda _reading, t=tracked: self._count(t)
                )
            )
            self.tracked[entry.entry_id] = tracked
            added.append(tracked)
        await self.hass.async_block_till_done()
        return {"entries": [t.entry.entry_id for t in added], "s": time.monotonic() - started}

    def _count(self, tracked: Tracked) -> None:
        tracked.readings += 1
        self.readings += 1
        if self._reading_waiter is not None and self.readings >= self._reading_waiter[0]:
            future = self._reading_waiter[1]
            self._reading_waiter = None
            if not future.done():
                future.set_result(None)

    async def wait_readings(self, count: int, limit: float) -> dict[str, Any]:
        """Wait until ``count`` readings arrived in total (over every entry)."""
        if self.readings < count:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._reading_waiter = (count, future)
            try:
                async with asyncio.timeout(limit):
                    await future
            except TimeoutError:
                self._reading_waiter = None
                return {"readings": self.readings, "timeout": True}
        return {"readings": self.readings, "timeout": False}

    def refresh_entities(self) -> None:
        """Map our enabled entities to their entries (entities appear with the first frames)."""
        from homeassistant.helpers import entity_registry as er  # noqa: PLC0415

        registry = er.async_get(self.hass)
        for tracked in self.tracked.values():
            for reg in er.async_entries_for_config_entry(registry, tracked.entry.entry_id):
                if reg.disabled_by is None:
                    self._take(tracked, reg.entity_id, reg.unique_id)

    def _take(self, tracked: Tracked, entity_id: str, unique_id: str) -> Writes:
        if (writes := self.by_entity.get(entity_id)) is None:
            writes = self.by_entity[entity_id] = Writes(tracked)
            tracked.entity_ids.add(entity_id)
            if unique_id == f"{tracked.meter_id}_active_power_import":
                tracked.power_entity = entity_id
        return writes

    def _writes_of(self, entity_id: str) -> Writes | None:
        """The counter of one of our entities (found in the registry on its first write)."""
        if (writes := self.by_entity.get(entity_id)) is not None:
            return writes
        if entity_id in self._foreign:
            return None
        from homeassistant.helpers import entity_registry as er  # noqa: PLC0415

        reg = er.async_get(self.hass).async_get(entity_id)
        if reg is None or (tracked := self.tracked.get(reg.config_entry_id or "")) is None:
            self._foreign.add(entity_id)
            return None
        return self._take(tracked, entity_id, reg.unique_id)

    def count_writes(self) -> None:
        """Count every state write of our entities (changed: a new row; reported: none)."""
        from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED  # noqa: PLC0415
        from homeassistant.core import callback  # noqa: PLC0415

        find = self._writes_of

        @callback
        def ours_only(data: Any) -> bool:
            return find(data["entity_id"]) is not None

        @callback
        def changed(event: Event[Any]) -> None:
            self.by_entity[event.data["entity_id"]].changed += 1

        @callback
        def reported(event: Event[Any]) -> None:
            self.by_entity[event.data["entity_id"]].reported += 1

        self.hass.bus.async_listen(EVENT_STATE_CHANGED, changed, event_filter=ours_only)
        self.hass.bus.async_listen(EVENT_STATE_REPORTED, reported, event_filter=ours_only)

    def default_enabled(self) -> dict[str, bool]:
        """Entity ID -> whether its description enables it by default (a fresh install)."""
        from homeassistant.helpers.entity_platform import async_get_platforms  # noqa: PLC0415

        from custom_components.hanport.const import DOMAIN  # noqa: PLC0415

        out: dict[str, bool] = {}
        for platform in async_get_platforms(self.hass, DOMAIN):
            for entity_id, entity in platform.entities.items():
                description = getattr(entity, "entity_description", None)
                out[entity_id] = bool(getattr(description, "entity_registry_enabled_default", True))
        return out

    def watch(self) -> dict[str, Any]:
        """Record the time of every state write of our entities (latency), from now on."""
        from homeassistant.core import callback  # noqa: PLC0415
        from homeassistant.helpers.event import (  # noqa: PLC0415
            async_track_state_change_event,
            async_track_state_report_event,
        )

        self.refresh_entities()
        ids = sorted(self.by_entity)
        log = self.watching

        @callback
        def changed(event: Event[Any]) -> None:
            log.append((time.monotonic_ns(), event.data["entity_id"], True))

        @callback
        def reported(event: Event[Any]) -> None:
            log.append((time.monotonic_ns(), event.data["entity_id"], False))

        self._watch_unsubs += [
            async_track_state_change_event(self.hass, ids, changed),
            async_track_state_report_event(self.hass, ids, reported),
        ]
        return {
            "entities": {t.entry.entry_id: sorted(t.entity_ids) for t in self.tracked.values()},
            "power": {t.entry.entry_id: t.power_entity for t in self.tracked.values()},
        }

    def take_events(self) -> list[tuple[int, str, bool]]:
        """Return and clear the recorded state writes: (monotonic ns, entity, changed)."""
        events, self.watching[:] = list(self.watching), []
        return events

    # --- measurements ---------------------------------------------------------------

    def sample(self) -> dict[str, Any]:
        """CPU of the process (every thread) and of the event loop's thread, now."""
        return {
            "process": time.process_time(),
            "thread": time.thread_time(),
            "wall": time.monotonic(),
            "rss_kb": rss_kb(),
            "readings": self.readings,
        }

    def profile(self, on: bool, top: int) -> dict[str, Any]:
        """cProfile of the event loop's thread between on and off; off returns the table."""
        if on:
            self.profiler = cProfile.Profile()
            self.profiler.enable()
            return {}
        if self.profiler is None:
            return {"text": ""}
        self.profiler.disable()
        stats = pstats.Stats(self.profiler)
        self.profiler = None
        return summarize_profile(stats, top)

    async def flush(self) -> dict[str, Any]:
        """Let every pending job run and the recorder commit what it has queued."""
        from homeassistant.helpers.recorder import get_instance  # noqa: PLC0415

        await self.hass.async_block_till_done()
        if self.db_path is None:
            return {}
        instance = get_instance(self.hass)
        for _ in range(2):
            instance.queue_task(_commit_task())
            await instance.async_block_till_done()
            await self.hass.async_block_till_done()
        return {}

    async def rows(self) -> dict[str, Any]:
        """Rows our entities wrote to the recorder's ``states`` table, per entry.

        ``all``: every entity of the entry; ``default``: those a fresh install enables.
        """
        await self.flush()
        if self.db_path is None:
            return {}
        counts = await self.hass.async_add_executor_job(_count_rows, self.db_path)
        self.refresh_entities()
        default = self.default_enabled()
        out = {t.entry.entry_id: {"all": 0, "default": 0} for t in self.tracked.values()}
        for entity_id, count in counts.items():
            if (writes := self.by_entity.get(entity_id)) is not None:
                row = out[writes.tracked.entry.entry_id]
                row["all"] += count
                if default.get(entity_id, True):
                    row["default"] += count
        size = sum(p.stat().st_size for p in self.db_path.parent.glob(self.db_path.name + "*"))
        return {"rows": out, "db_bytes": size}

    def writes(self) -> dict[str, dict[str, Any]]:
        """State writes per entry so far, for every entity and for default-enabled ones."""
        self.refresh_entities()
        default = self.default_enabled()
        out: dict[str, dict[str, int]] = {}
        for tracked in self.tracked.values():
            row = out[tracked.entry.entry_id] = {
                "readings": tracked.readings,
                "entities": len(tracked.entity_ids),
                "default_entities": sum(default.get(e, True) for e in tracked.entity_ids),
                "changed": 0,
                "reported": 0,
                "changed_default": 0,
                "reported_default": 0,
            }
            for entity_id in tracked.entity_ids:
                writes = self.by_entity[entity_id]
                row["changed"] += writes.changed
                row["reported"] += writes.reported
                if default.get(entity_id, True):
                    row["changed_default"] += writes.changed
                    row["reported_default"] += writes.reported
        return {"entries": out}


def _commit_task() -> Any:
    from homeassistant.components.recorder.tasks import CommitTask  # noqa: PLC0415

    return CommitTask()


def _count_rows(db_path: Path) -> dict[str, int]:
    """States rows per entity, read from the recorder's file (WAL: committed rows only)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        return dict(
            db.execute(
                "SELECT m.entity_id, COUNT(*) FROM states s"
                " JOIN states_meta m ON s.metadata_id = m.metadata_id GROUP BY m.entity_id"
            ).fetchall()
        )


PROFILE_GROUPS: Final = (
    ("/hanport/han/", "hanport decoder (han/)"),
    ("/hanport/accounting/", "hanport accounting"),
    ("/hanport/", "hanport integration"),
    ("/homeassistant/components/recorder/", "recorder"),
    ("/homeassistant/components/sensor/", "HA sensor entity"),
    ("/homeassistant/helpers/entity.py", "HA entity (state write)"),
    ("/homeassistant/core.py", "HA core (state machine, bus)"),
    ("/homeassistant/", "HA other"),
    ("/serialx/", "serialx transport"),
    ("/asyncio/", "asyncio"),
    ("/sqlalchemy/", "sqlalchemy (recorder)"),
)
RECORDER_SIDE: Final = ("/homeassistant/components/recorder/", "/sqlalchemy/")
"""The recorder's thread: left out of the cumulative list, which follows a frame's path."""


def _group(filename: str) -> str:
    if filename == "~":
        return "builtins (C)"
    return next((label for part, label in PROFILE_GROUPS if part in filename), "other Python")


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/custom_components/", "/lib/python3.14/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


IDLE: Final = (
    "<method 'poll' of 'select.epoll' objects>",
    "<method 'get' of '_queue.SimpleQueue' objects>",
    "<method 'acquire' of '_thread.lock' objects>",
    "<method 'acquire' of '_thread.RLock' objects>",
    "<built-in method time.sleep>",
    "<method 'join' of '_thread._ThreadHandle' objects>",
)
"""Blocking waits (a thread with nothing to do): not part of the busy time."""
WAITING: Final = ("/asyncio/", "/selectors.py", "/threading.py", "/concurrent/", "/queue.py")
"""Frames whose cumulative time includes those waits: left out of the cumulative list."""


def summarize_profile(stats: pstats.Stats, top: int) -> dict[str, Any]:
    """Own time per component and the top functions by own and by cumulative time.

    Since Python 3.12 cProfile sees every thread (it runs on ``sys.monitoring``), so the
    table covers the recorder's thread too; blocking waits are left out of the busy time,
    and cumulative times that include them (the loop's ``select``) are not listed, nor the
    recorder's thread (its share is in the groups): the cumulative list follows a frame.
    """
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    own: list[tuple[float, int, str]] = []
    ours: list[tuple[float, int, str]] = []
    cumulative: list[tuple[float, int, str]] = []
    total = 0.0
    idle = 0.0
    for (filename, _line, name), (_cc, _calls, tottime, _cumtime, _callers) in raw.items():
        if filename == "~" and name in IDLE:
            idle += tottime
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in raw.items():
        if filename == "~" and name in IDLE:
            continue
        total += tottime
        label = _group(filename)
        groups[label] = groups.get(label, 0.0) + tottime
        where = f"{_short(filename)}:{line} {name}" if filename != "~" else name
        own.append((tottime, calls, where))
        if "/hanport/" in filename:
            ours.append((tottime, calls, where))
        if filename not in {"~", "<string>"} and not any(
            p in filename for p in (*WAITING, *RECORDER_SIDE)
        ):
            cumulative.append((cumtime, calls, where))
    return {
        "total_s": total,
        "idle_s": idle,
        "groups": sorted(groups.items(), key=lambda item: -item[1]),
        "own": sorted(own, reverse=True)[:top],
        "hanport": sorted(ours, reverse=True)[:top],
        "cumulative": sorted(cumulative, reverse=True)[:top],
    }


# ---------------------------------------------------------------- the simulated day


async def simulated_day(host: Host, job: dict[str, Any]) -> dict[str, Any]:
    """Meters on a manual clock, one entry per policy, stepped push by push under the warp."""
    from custom_components.hanport.han.simulator import (  # noqa: PLC0415
        ManualClock,
        SimulatedMeter,
        SimulatorServer,
    )

    if WARP is None:
        raise RuntimeError("the simulated day needs --warp")
    warp = WARP
    start = datetime.fromisoformat(job["start"])
    end = start.timestamp() + float(job["hours"]) * 3600
    clock = ManualClock(start)
    servers: list[SimulatorServer] = []
    specs: list[dict[str, Any]] = []
    for index, policy in enumerate(job["policies"]):
        meter = SimulatedMeter(
            job["profile"],
            start=start,
            seed=job["seed"],
            prosumer=True,
            meter_id=job["meter_ids"][index],
            log_limit=16,
        )
        server = SimulatorServer(meter, clock, tcp=("127.0.0.1", 0))
        await server.start()
        servers.append(server)
        specs.append(
            {
                "url": server.url,
                "meter_id": meter.meter_id,
                "title": policy["name"],
                "manufacturer": meter.profile.manufacturer,
                "meter_type": meter.profile.meter_type,
                "options": policy["options"],
            }
        )
    host.servers = servers
    added = await host.add(specs)
    async with asyncio.timeout(30):
        for server in servers:
            await server.wait_for_clients()
    host.count_writes()
    started = time.monotonic()
    cpu = time.process_time()
    sent = {"pushes": 0, "readings": host.readings}

    def on_frame(frame: Any) -> None:
        sent["pushes"] += 1
        if frame.reading is not None:
            sent["readings"] += 1

    for server in servers:
        server.on_frame = on_frame
    recorder_sync = start.timestamp() + 3600
    while True:
        due = min(server.meter.next_due() for server in servers)
        if due.timestamp() > end:
            break
        warp.advance_to(due.timestamp())
        await asyncio.sleep(0)  # timers due by now run before the frames arrive
        clock.set(due)
        await asyncio.gather(*(server.pump() for server in servers))
        waited = await host.wait_readings(sent["readings"], 30.0)
        if waited["timeout"]:
            raise RuntimeError(f"readings stalled at {host.readings} of {sent['readings']}")
        if due.timestamp() >= recorder_sync:
            await _recorder_catch_up(host.hass)
            recorder_sync += 3600
    warp.advance_to(end)
    await asyncio.sleep(0)
    await host.hass.async_block_till_done()
    rows = await host.rows()
    return {
        "entries": added["entries"],
        "pushes": sent["pushes"],
        "real_s": time.monotonic() - started,
        "cpu_s": time.process_time() - cpu,
        "writes": host.writes()["entries"],
        **rows,
    }


async def _recorder_catch_up(hass: HomeAssistant) -> None:
    """Let the recorder drain its queue (a simulated day outruns it otherwise)."""
    from homeassistant.helpers.recorder import get_instance  # noqa: PLC0415

    await get_instance(hass).async_block_till_done()


# ---------------------------------------------------------------- the command loop


async def serve(args: argparse.Namespace, out: TextIO) -> None:
    """Boot, then answer commands until "stop" or the end of stdin."""
    config_dir = Path(tempfile.mkdtemp(prefix="hanport-bench-ha-"))
    db_path = config_dir / "home-assistant_v2.db" if args.recorder else None
    if args.enable_all:
        enable_every_entity()
    started = time.monotonic()
    hass = await boot(config_dir, f"sqlite:///{db_path}" if db_path else None)
    host = Host(hass, db_path)
    host.boot_s = time.monotonic() - started

    def reply(payload: dict[str, Any]) -> None:
        out.write(json.dumps(payload) + "\n")
        out.flush()

    reply({"ok": True, "boot_s": host.boot_s, **host.sample()})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]]
    handlers = {
        "add": lambda c: host.add(c["entries"]),
        "wait_readings": lambda c: host.wait_readings(c["count"], c.get("limit", 60.0)),
        "watch": lambda _c: host.watch(),
        "events": lambda _c: {"events": host.take_events()},
        "sample": lambda _c: host.sample(),
        "profile": lambda c: host.profile(c["on"], c.get("top", 25)),
        "rows": lambda _c: host.rows(),
        "flush": lambda _c: host.flush(),
        "writes": lambda _c: host.writes(),
        "day": lambda c: simulated_day(host, c),
        "settle": lambda c: _settle(hass, c.get("seconds", 0.0)),
    }
    try:
        while line := await reader.readline():
            command = json.loads(line)
            op = command.get("op")
            if op == "stop":
                break
            try:
                outcome = handlers[op](command)
                result = await outcome if isinstance(outcome, Awaitable) else outcome
                reply({"ok": True, **result})
            except Exception as err:  # noqa: BLE001 - reported to the bench, which stops
                reply({"ok": False, "error": f"{type(err).__name__}: {err}"})
    finally:
        for server in host.servers:
            await server.stop()
        await hass.async_stop()
        shutil.rmtree(config_dir, ignore_errors=True)  # the database of a day is ~50 MB
        reply({"ok": True, "stopped": True})


async def _settle(hass: HomeAssistant, seconds: float) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    await hass.async_block_till_done()
    return {}


def main() -> int:
    """Entry point: ``bench_ha_host.py [--recorder] [--enable-all] [--warp ISO]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recorder", action="store_true", help="record to an SQLite file")
    parser.add_argument("--enable-all", action="store_true", help="enable every entity")
    parser.add_argument("--warp", metavar="ISO", help="simulated time from this instant")
    args = parser.parse_args()
    # stdout carries the replies only: anything else printed goes to stderr
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    if args.warp:
        install_warp(datetime.fromisoformat(args.warp).timestamp())
    import logging  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(args, out), loop_factory=WarpLoop if args.warp else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
