"""The Home Assistant sections of ``scripts/bench``: hanport inside a real core.

Home Assistant runs in a child process (``scripts/bench_ha_host.py``: a bare core with
the recorder on an SQLite file and hanport, driven over a JSON-lines pipe), so its CPU
time (``time.process_time`` of that process: every thread, the recorder's included;
``time.thread_time`` of its event loop's thread) and its memory are its own. The meters
are served over loopback TCP from this process, so their CPU is never counted.

* ``ha`` (per frame): one Aidon 6534 entry (default options, default-enabled entities).
  N frames of each list, each written whole to the socket ``GAP`` apart after a warm-up
  that created the entities; CPU per frame = (CPU over the batch - the idle rate over the
  same wall time) / N. Latency = from just before the write of a frame's last byte
  (``time.monotonic_ns`` here) to the state-write event of active power in the core
  (``time.monotonic_ns`` there: both CLOCK_MONOTONIC), median and 99th percentile. A
  write that leaves the value unchanged fires ``state_reported`` instead of
  ``state_changed``; both count as "the state was written". Over the goals (or with
  ``--profile``) a cProfile over list-2 frames names the costs; it runs in a second core
  without the recorder, because cProfile (on ``sys.monitoring`` since Python 3.12)
  follows every thread and charges a thread's wait for the GIL to the function it
  waits in, so the recorder's busy thread would make the loop's functions look slow.
* ``ha-policies``: one entry per update policy, identical simulated meters (same seed),
  over a simulated day on a manual clock with the core's clocks warped along (timers,
  wall clock), so window flushes and the accounting's minute ticks happen as in a day.
  State writes are counted on the bus; recorder rows are the ``states`` rows of the
  entry's entities in the SQLite file. ``--quick`` simulates one hour and scales by 24.
* ``ha-scale``: 1, 10 and 100 simulated meters at real cadence (the simulator's real
  clock, bytes paced at 2400 baud) over TCP into one fresh core per size; CPU share of one
  core = CPU seconds / wall seconds over a window after the warm-up; memory = RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from custom_components.hanport.const import (  # noqa: E402
    CONF_AVERAGE,
    CONF_INSTANT_POWER,
    CONF_UPDATE_INTERVAL,
)
from custom_components.hanport.han.reading import ListKind  # noqa: E402
from custom_components.hanport.han.simulator import (  # noqa: E402
    PROFILES,
    RealClock,
    SimulatedMeter,
    SimulatorServer,
)

HOST: Final = ROOT / "scripts" / "bench_ha_host.py"
PROFILE: Final = "aidon-6534-no"
SEED: Final = 2026
METER_ID: Final = "7359992000000001"
KINDS: Final = (ListKind.POWER, ListKind.STATUS, ListKind.ENERGY)
WARM_UP: Final = 3
"""Frames of each list sent before measuring (the first ones create the entities)."""
GAP: Final = 0.025
"""Seconds between frames in the per-frame section (a frame is done in ~1 ms)."""
DAY_START: Final = datetime(2026, 6, 15, 0, 0, tzinfo=UTC) - timedelta(hours=2)
"""Local midnight in Oslo on a summer day (a prosumer exports around noon)."""
POLICY_WINDOW: Final = 60
"""Seconds: the window of the interval and averaging policies."""

GOAL_FRAME_MS: Final = 1.0
GOAL_P99_MS: Final = 5.0
GOAL_SCALE_SHARE: Final = 0.10
GOAL_SCALE_METERS: Final = 100


class BenchContext(Protocol):
    """What the sections read from scripts/bench.py's ``Bench``."""

    quick: bool
    profile: bool
    results: dict[str, Any]
    args: argparse.Namespace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of these sections (defaults depend on ``--quick``)."""
    group = parser.add_argument_group("Home Assistant sections")
    group.add_argument(
        "--ha-frames", type=int, metavar="N", help="frames of each list (default 400; quick 20)"
    )
    group.add_argument(
        "--ha-hours",
        type=float,
        metavar="H",
        help="simulated hours for the policies (default 24; quick 1, scaled to a day)",
    )
    group.add_argument(
        "--ha-meters",
        metavar="LIST",
        help="meter counts for the scale section (default 1,10,100; quick 1,10)",
    )
    group.add_argument(
        "--ha-seconds",
        type=float,
        metavar="S",
        help="measured wall seconds per scale size (default 20, 60 for 100 meters; quick 4)",
    )
    group.add_argument(
        "--ha-enable-all",
        action="store_true",
        help="per-frame section with every entity enabled (diagnostic ones too)",
    )


class BenchError(RuntimeError):
    """Home Assistant (the child) failed; the message carries its last log lines."""


# ---------------------------------------------------------------- the child process


class HaProcess:
    """``scripts/bench_ha_host.py`` in a child process, and its command pipe."""

    def __init__(self, *, recorder: bool = True, enable_all: bool = False, warp: str = "") -> None:
        self.argv = [sys.executable, str(HOST)]
        if recorder:
            self.argv.append("--recorder")
        if enable_all:
            self.argv.append("--enable-all")
        if warp:
            self.argv += ["--warp", warp]
        self.proc: asyncio.subprocess.Process | None = None
        self.log = Path(tempfile.mkstemp(prefix="hanport-bench-ha-", suffix=".log")[1])
        self.boot: dict[str, Any] = {}

    async def __aenter__(self) -> HaProcess:
        """Start the core and wait until it is running (its first reply)."""
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
                limit=1 << 24,
            )
        self.boot = await self._reply(120.0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Stop the core (or kill it when it does not stop)."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(BenchError, ConnectionError):
            await self.call("stop", wait_s=90.0)
        try:
            async with asyncio.timeout(30):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        self.log.unlink(missing_ok=True)

    async def call(self, op: str, wait_s: float = 120.0, **args: Any) -> dict[str, Any]:
        """Send one command; return its reply within ``wait_s`` (BenchError when it failed)."""
        if self.proc is None or self.proc.stdin is None:
            raise BenchError("Home Assistant is not running")
        self.proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._reply(wait_s)

    async def _reply(self, wait_s: float) -> dict[str, Any]:
        if self.proc is None or self.proc.stdout is None:
            raise BenchError("Home Assistant is not running")
        try:
            async with asyncio.timeout(wait_s):
                line = await self.proc.stdout.readline()
        except TimeoutError:
            raise BenchError(f"no reply in {wait_s:.0f} s{self.tail()}") from None
        if not line:
            raise BenchError(f"Home Assistant exited{self.tail()}")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise BenchError(f"{reply.get('error')}{self.tail()}")
        return reply

    def tail(self, lines: int = 15) -> str:
        """The end of the child's log, for error messages."""
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return "\n    " + "\n    ".join(text) if text else ""


def entry_spec(url: str, meter: SimulatedMeter, **options: Any) -> dict[str, Any]:
    """A config entry as the flow makes it for this meter on this URL."""
    return {
        "url": url,
        "meter_id": meter.meter_id,
        "title": f"{meter.profile.manufacturer} {meter.profile.model}",
        "manufacturer": meter.profile.manufacturer,
        "meter_type": meter.profile.meter_type,
        "options": options,
    }


@dataclass
class CpuSample:
    """One reading of the child's clocks."""

    process: float
    thread: float
    wall: float
    rss_kb: int
    readings: int

    @classmethod
    def of(cls, reply: dict[str, Any]) -> CpuSample:
        """From a ``sample`` reply."""
        return cls(
            reply["process"], reply["thread"], reply["wall"], reply["rss_kb"], reply["readings"]
        )


# ---------------------------------------------------------------- a frame link


class FrameLink:
    """A loopback TCP port one entry reads; each frame is written whole, time-stamped."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._joined = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        """What the entry opens."""
        return f"socket://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._joined.set()
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass

    async def wait_client(self) -> None:
        """Wait until the entry has connected."""
        async with asyncio.timeout(30):
            await self._joined.wait()

    def send(self, frame: bytes) -> int:
        """Write one frame; return ``time.monotonic_ns()`` taken just before the write."""
        if self._writer is None:
            raise BenchError("no client on the frame link")
        stamp = time.monotonic_ns()
        self._writer.write(frame)
        return stamp

    async def close(self) -> None:
        """Drop the client and stop listening."""
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def list_frames(kind: ListKind, count: int) -> list[bytes]:
    """``count`` consecutive frames of one list of the bench meter, ending about now."""
    profile = PROFILES[PROFILE]
    period = next(s.period for s in profile.schedule if s.kind is kind)
    start = datetime.now(UTC) - timedelta(seconds=period * (count + 1))
    meter = SimulatedMeter(
        profile, start=start, seed=SEED, prosumer=True, meter_id=METER_ID, lists=[kind]
    )
    frames = [frame.data for frame in meter.advance(period * count) if frame.reading is not None]
    return frames[:count]


# ---------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Timing:
    """What the core wrote for a batch of frames, and when."""

    to_power: list[float]
    """Per frame: ms from the write of its last byte to the power entity's state write."""
    to_last: list[float]
    """Per frame: ms to the frame's last state write."""
    missed: int
    """Frames before whose successor the power entity was not written (late or never)."""
    writes: int
    """State writes of the entry's entities (changed + reported)."""
    rows: int
    """Of which state changes (a recorder row each)."""


def latencies(
    sent: Sequence[int], events: Sequence[tuple[int, str, bool]], power: str | None
) -> Timing:
    """Match the core's state writes to the frames sent.

    Every frame writes the power entity exactly once (changed or reported), so the n-th
    power write belongs to the n-th frame, however late it comes. The other writes are
    given to the last frame sent before them.
    """
    ordered = sorted(events)
    timing = Timing([], [], 0, 0, 0)
    power_writes = [t for t, entity, _changed in ordered if entity == power]
    exact = len(power_writes) == len(sent)
    if exact:
        timing.to_power = [(t - start) / 1e6 for t, start in zip(power_writes, sent, strict=True)]
    index = 0
    for i, start in enumerate(sent):
        end = sent[i + 1] if i + 1 < len(sent) else math.inf
        while index < len(ordered) and ordered[index][0] < start:
            index += 1
        window: list[tuple[int, str, bool]] = []
        while index < len(ordered) and ordered[index][0] < end:
            window.append(ordered[index])
            index += 1
        hit = next((t for t, entity, _changed in window if entity == power), None)
        if hit is None:
            timing.missed += 1
        elif not exact:
            timing.to_power.append((hit - start) / 1e6)
        if window:
            timing.to_last.append((window[-1][0] - start) / 1e6)
        timing.writes += len(window)
        timing.rows += sum(changed for _t, _entity, changed in window)
    return timing


def verdict(met: bool) -> str:
    """Goal wording."""
    return "met" if met else "NOT met"


def ms(value: float) -> str:
    """Milliseconds for a table cell."""
    return "-" if math.isnan(value) else f"{value:.3f}"


# ---------------------------------------------------------------- section: per frame


@dataclass
class KindResult:
    """What one batch of one list cost and how fast its states were written."""

    kind: ListKind
    frames: int
    process_ms: float
    thread_ms: float
    timing: Timing


async def _send_batch(
    ha: HaProcess, link: FrameLink, frames: Sequence[bytes], gap: float
) -> list[int]:
    """Send frames ``gap`` apart, wait until each was read; return the send times."""
    before = (await ha.call("sample"))["readings"]
    sent: list[int] = []
    for frame in frames:
        sent.append(link.send(frame))
        await asyncio.sleep(gap)
    waited = await ha.call("wait_readings", count=before + len(frames), limit=30.0)
    if waited["timeout"]:
        raise BenchError(f"only {waited['readings'] - before} of {len(frames)} frames were read")
    return sent


async def _idle_rate(ha: HaProcess, seconds: float) -> tuple[float, float]:
    """CPU seconds per wall second of the idle core (process, loop thread)."""
    first = CpuSample.of(await ha.call("sample"))
    await asyncio.sleep(seconds)
    await ha.call("flush")
    last = CpuSample.of(await ha.call("sample"))
    wall = last.wall - first.wall
    return (last.process - first.process) / wall, (last.thread - first.thread) / wall


async def _measure_kind(
    ha: HaProcess,
    *,
    link: FrameLink,
    kind: ListKind,
    frames: Sequence[bytes],
    idle: tuple[float, float],
    power: str | None,
) -> KindResult:
    await ha.call("events")  # drop what the warm-up wrote
    first = CpuSample.of(await ha.call("sample"))
    sent = await _send_batch(ha, link, frames, GAP)
    await ha.call("flush")  # the recorder's rows for these frames belong to their cost
    last = CpuSample.of(await ha.call("sample"))
    events = (await ha.call("events"))["events"]
    wall = last.wall - first.wall
    count = len(frames)
    process = (last.process - first.process - idle[0] * wall) / count
    thread = (last.thread - first.thread - idle[1] * wall) / count
    timing = latencies(sent, [(t, e, c) for t, e, c in events], power)
    return KindResult(kind, count, process * 1e3, thread * 1e3, timing)


def print_profile(report: dict[str, Any], what: str) -> None:
    """Own time per component and the top functions of a host cProfile."""
    total = report.get("total_s") or 1.0
    print(
        f"  cProfile of the core over {what}: every thread (cProfile runs on sys.monitoring),"
        " blocking waits left out; percentages of the busy time (it inflates Python calls)"
    )
    shares = ", ".join(f"{name} {100 * s / total:.0f} %" for name, s in report["groups"][:10])
    print(f"    own time by component: {shares}")
    for title, key, rows in (
        ("top functions by own time", "own", 12),
        ("hanport's functions by own time", "hanport", 10),
        ("cumulative time along a frame's path (recorder thread left out)", "cumulative", 16),
    ):
        print(f"    {title}:")
        for seconds, calls, where in report.get(key, [])[:rows]:
            print(f"      {100 * seconds / total:5.1f} %  {calls:7d} calls  {where}")


async def profile_frames(
    frames: Sequence[bytes], *, warm: Sequence[Sequence[bytes]], enable_all: bool
) -> dict[str, Any]:
    """cProfile of a core without the recorder over ``frames``.

    cProfile on Python >= 3.12 follows every thread, and a thread waiting for the GIL is
    charged to whatever function it was in: with the recorder's thread busy, the event
    loop's functions look slow for time they spent waiting. Without the recorder only
    the event loop runs, so the table is the frame's own path; the recorder's share is
    the measured difference between the process and the loop thread.
    """
    link = FrameLink()
    await link.start()
    meter = SimulatedMeter(PROFILE, seed=SEED, meter_id=METER_ID)
    async with HaProcess(recorder=False, enable_all=enable_all) as ha:
        await ha.call("add", entries=[entry_spec(link.url, meter)])
        await link.wait_client()
        for batch in warm:
            await _send_batch(ha, link, batch, 0.2)
        await ha.call("settle", seconds=1.0)
        await ha.call("profile", on=True)
        await _send_batch(ha, link, frames, GAP)
        profile = await ha.call("profile", on=False, top=22)
    await link.close()
    profile["what"] = f"{len(frames)} list-2 frames (a core without the recorder)"
    return profile


async def frames_run(bench: BenchContext) -> dict[str, Any]:
    """Per-frame CPU and latency for lists 1, 2 and 3 (see the module docstring)."""
    args = bench.args
    count = args.ha_frames or (20 if bench.quick else 400)
    batches = {kind: list_frames(kind, WARM_UP + 2 * count) for kind in KINDS}
    link = FrameLink()
    await link.start()
    meter = SimulatedMeter(PROFILE, seed=SEED, meter_id=METER_ID)
    async with HaProcess(enable_all=args.ha_enable_all) as ha:
        await ha.call("add", entries=[entry_spec(link.url, meter)])
        await link.wait_client()
        for kind in KINDS:  # the first frames create the entities
            await _send_batch(ha, link, batches[kind][:WARM_UP], 0.2)
        await ha.call("settle", seconds=1.0)
        watched = await ha.call("watch")
        power = next(iter(watched["power"].values()))
        entities = len(next(iter(watched["entities"].values())))
        idle = await _idle_rate(ha, 2.0 if bench.quick else 5.0)
        results = []
        for kind in KINDS:
            frames = batches[kind][WARM_UP : WARM_UP + count]
            results.append(
                await _measure_kind(ha, link=link, kind=kind, frames=frames, idle=idle, power=power)
            )
        list2 = next(r for r in results if r.kind is ListKind.STATUS)
        all_power = [v for r in results for v in r.timing.to_power]
        p99 = percentile(all_power, 0.99)
        slow = list2.process_ms >= GOAL_FRAME_MS or p99 >= GOAL_P99_MS
    await link.close()
    profile: dict[str, Any] | None = None
    if bench.profile or slow:
        profile = await profile_frames(
            batches[ListKind.STATUS][WARM_UP + count :][:count],
            warm=[batches[kind][:WARM_UP] for kind in KINDS],
            enable_all=args.ha_enable_all,
        )
    return {
        "count": count,
        "entities": entities,
        "idle": idle,
        "results": results,
        "profile": profile,
        "boot": ha.boot,
    }


def frames_section(bench: BenchContext) -> None:
    """Print CPU per frame and latency; store them in ``bench.results["ha"]``."""
    data = asyncio.run(frames_run(bench))
    results: list[KindResult] = data["results"]
    idle_process, idle_thread = data["idle"]
    print(
        f"  {PROFILE}, default options, {data['entities']} enabled entities"
        f"{' (every entity enabled)' if bench.args.ha_enable_all else ''};"
        f" recorder on SQLite; {data['count']} frames of each list, {GAP * 1e3:.0f} ms apart"
    )
    print(
        f"  CPU = (child CPU over the batch - idle rate x wall) / frames;"
        f" idle: {100 * idle_process:.2f} % of a core (loop {100 * idle_thread:.2f} %)"
    )
    print(
        "  writes = state writes per frame (changed + reported), rows = of which changed (a"
        " recorder row each); latency: last byte written -> power entity's state write"
    )
    print(
        f"  {'list':6s} {'frames':>6s} {'CPU ms/frame':>13s} {'loop ms':>8s} {'writes':>6s}"
        f" {'rows':>5s} {'latency ms: median':>19s} {'p99':>7s} {'max':>7s}"
        f" {'last write p99':>15s}"
    )
    rows: dict[str, Any] = {}
    for r in results:
        med, p99 = percentile(r.timing.to_power, 0.5), percentile(r.timing.to_power, 0.99)
        top = max(r.timing.to_power) if r.timing.to_power else math.nan
        last99 = percentile(r.timing.to_last, 0.99)
        missed = (
            f"  ({r.timing.missed} written after the next frame was sent)"
            if r.timing.missed
            else ""
        )
        writes, rows_per_frame = r.timing.writes / r.frames, r.timing.rows / r.frames
        print(
            f"  list {int(r.kind):<1d} {r.frames:6d} {r.process_ms:13.3f} {r.thread_ms:8.3f}"
            f" {writes:6.2f} {rows_per_frame:5.2f} {ms(med):>19s} {ms(p99):>7s} {ms(top):>7s}"
            f" {ms(last99):>15s}{missed}"
        )
        rows[f"list{int(r.kind)}"] = {
            "cpu_ms_per_frame": r.process_ms,
            "loop_cpu_ms_per_frame": r.thread_ms,
            "latency_ms_median": med,
            "latency_ms_p99": p99,
            "latency_ms_max": top,
            "last_write_ms_p99": last99,
            "frames": r.frames,
            "missed": r.timing.missed,
            "latency_samples": len(r.timing.to_power),
            "state_writes_per_frame": writes,
            "recorder_rows_per_frame": rows_per_frame,
        }
    all_power = [v for r in results for v in r.timing.to_power]
    med, p99 = percentile(all_power, 0.5), percentile(all_power, 0.99)
    print(
        f"  {'all':6s} {len(all_power):6d} {'':13s} {'':8s} {'':6s} {'':5s}"
        f" {ms(med):>19s} {ms(p99):>7s}"
    )
    list2 = next(r for r in results if r.kind is ListKind.STATUS)
    recorder = list2.process_ms - list2.thread_ms
    print(
        f"  list 2: {recorder:.3f} ms of the {list2.process_ms:.3f} ms are outside the event"
        f" loop (the recorder's thread writing {list2.timing.rows / list2.frames:.2f} rows per"
        " frame, executor jobs)"
    )
    print(
        f"  goal < {GOAL_FRAME_MS:g} ms CPU per list-2 frame end to end:"
        f" {verdict(list2.process_ms < GOAL_FRAME_MS)} ({list2.process_ms:.3f} ms whole process;"
        f" event loop alone {list2.thread_ms:.3f} ms,"
        f" {verdict(list2.thread_ms < GOAL_FRAME_MS)})"
    )
    print(
        f"  goal < {GOAL_P99_MS:g} ms latency at the 99th percentile:"
        f" {verdict(p99 < GOAL_P99_MS)} ({p99:.3f} ms)"
    )
    if data["profile"] is not None:
        print_profile(data["profile"], data["profile"]["what"])
    bench.results["ha"] = {
        "profile": PROFILE,
        "entities": data["entities"],
        "idle_core_share": idle_process,
        "lists": rows,
        "latency_ms_median": med,
        "latency_ms_p99": p99,
        "goal_frame_met": list2.process_ms < GOAL_FRAME_MS,
        "goal_latency_met": p99 < GOAL_P99_MS,
    }


# ---------------------------------------------------------------- section: policies


@dataclass(frozen=True)
class Policy:
    """One update policy: a name and the entry options that select it."""

    name: str
    options: dict[str, Any]


POLICIES: Final = (
    Policy("every frame", {CONF_UPDATE_INTERVAL: 0}),
    Policy(
        f"average over {POLICY_WINDOW} s",
        {CONF_UPDATE_INTERVAL: POLICY_WINDOW, CONF_AVERAGE: True, CONF_INSTANT_POWER: True},
    ),
    Policy(
        f"minimum interval {POLICY_WINDOW} s",
        {CONF_UPDATE_INTERVAL: POLICY_WINDOW, CONF_AVERAGE: False, CONF_INSTANT_POWER: True},
    ),
    Policy(
        f"interval {POLICY_WINDOW} s, power too",
        {CONF_UPDATE_INTERVAL: POLICY_WINDOW, CONF_AVERAGE: False, CONF_INSTANT_POWER: False},
    ),
)


async def policies_run(bench: BenchContext) -> dict[str, Any]:
    """A simulated day (or hour) per policy in one warped core, every entity enabled."""
    hours = bench.args.ha_hours or (1.0 if bench.quick else 24.0)
    meter_ids = [f"73599920000001{index:02d}" for index in range(len(POLICIES))]
    async with HaProcess(warp=DAY_START.isoformat(), enable_all=True) as ha:
        day = await ha.call(
            "day",
            wait_s=3600.0,
            profile=PROFILE,
            seed=SEED,
            hours=hours,
            start=DAY_START.isoformat(),
            policies=[{"name": p.name, "options": p.options} for p in POLICIES],
            meter_ids=meter_ids,
        )
    return {"hours": hours, **day}


def policies_section(bench: BenchContext) -> None:
    """Print state writes and recorder rows per simulated day; store them."""
    data = asyncio.run(policies_run(bench))
    hours: float = data["hours"]
    scale = 24.0 / hours
    how = (
        "a whole simulated day"
        if hours == 24
        else f"{hours:g} simulated h, scaled x{scale:g} to a day"
    )
    first = data["writes"][data["entries"][0]]
    print(
        f"  {PROFILE} (prosumer) from {DAY_START:%Y-%m-%d %H:%M} UTC (Oslo midnight), {how};"
        f" one entry per policy in one core, identical meters (same seed)"
    )
    print(
        f"  every entity enabled ({first['entities']}); 'default' = the"
        f" {first['default_entities']} a fresh install enables; {data['pushes']} pushes in"
        f" {data['real_s']:.0f} s real (core CPU {data['cpu_s']:.0f} s)"
    )
    print(
        "  writes counted on the bus (state_changed + state_reported); rows = the recorder's"
        " 'states' rows (a real recorder on an SQLite file)"
    )
    print(
        f"  {'policy':28s} {'readings':>8s} {'writes/day':>10s} {'rows/day':>9s}"
        f" {'writes/day':>10s} {'rows/day':>9s} {'rows/reading':>12s}"
    )
    print(f"  {'':28s} {'per day':>8s} {'(default entities)':>20s} {'(every entity)':>20s}")
    rows_out: dict[str, Any] = {}
    for policy, entry_id in zip(POLICIES, data["entries"], strict=True):
        writes = data["writes"][entry_id]
        rows = data["rows"].get(entry_id, {"all": 0, "default": 0})
        total = writes["changed"] + writes["reported"]
        default = writes["changed_default"] + writes["reported_default"]
        readings = writes["readings"]
        print(
            f"  {policy.name:28s} {readings * scale:8.0f} {default * scale:10.0f}"
            f" {rows['default'] * scale:9.0f} {total * scale:10.0f} {rows['all'] * scale:9.0f}"
            f" {rows['all'] / readings if readings else math.nan:12.2f}"
        )
        rows_out[policy.name] = {
            "options": policy.options,
            "readings_per_day": readings * scale,
            "state_writes_per_day": default * scale,
            "recorder_rows_per_day": rows["default"] * scale,
            "state_writes_per_day_all_entities": total * scale,
            "recorder_rows_per_day_all_entities": rows["all"] * scale,
        }
    print(
        f"  database file after the run: {data['db_bytes'] / 1e6:.1f} MB"
        f" (every policy and entity, {hours:g} h)"
    )
    bench.results["ha_policies"] = {
        "profile": PROFILE,
        "simulated_hours": hours,
        "scaled_to_day": hours != 24,
        "policies": rows_out,
    }


# ---------------------------------------------------------------- section: scale


def _meters(count: int) -> list[SimulatedMeter]:
    return [
        SimulatedMeter(
            PROFILE,
            seed=SEED + index,
            prosumer=index % 2 == 1,
            meter_id=f"73599921{index:08d}",
            log_limit=8,
        )
        for index in range(count)
    ]


async def scale_one(
    count: int, seconds: float, warm: float, *, recorder: bool = True, profile_s: float = 0.0
) -> dict[str, Any]:
    """``count`` meters at real cadence into a fresh core; CPU share and memory.

    ``profile_s`` > 0: then a cProfile of the same core over that many seconds (run it
    with ``recorder=False``: see ``profile_frames`` for why).
    """
    meters = _meters(count)
    servers = [SimulatorServer(meter, RealClock(), tcp=("127.0.0.1", 0)) for meter in meters]
    for server in servers:
        await server.start()
    try:
        async with HaProcess(recorder=recorder) as ha:
            base = CpuSample.of(await ha.call("sample"))
            added = await ha.call(
                "add",
                wait_s=600.0,
                entries=[entry_spec(s.url, m) for s, m in zip(servers, meters, strict=True)],
            )
            async with asyncio.timeout(60):
                for server in servers:
                    await server.wait_for_clients()
            await asyncio.sleep(warm)  # list 2 arrives, every entity exists
            first = CpuSample.of(await ha.call("sample"))
            await asyncio.sleep(seconds)
            # a short window on a busy machine can fall between two pushes: measure at
            # least one frame per meter, so the figures are never 0 frames over N seconds
            await ha.call("wait_readings", count=first.readings + count, limit=30.0)
            last = CpuSample.of(await ha.call("sample"))
            writes = await ha.call("writes")
            profile: dict[str, Any] | None = None
            if profile_s > 0:
                await ha.call("profile", on=True)
                await asyncio.sleep(profile_s)
                profile = await ha.call("profile", on=False, top=22)
                profile["what"] = f"{profile_s:g} s of {count} meters (no recorder)"
    finally:
        for server in servers:
            await server.stop()
    wall = last.wall - first.wall
    frames = last.readings - first.readings
    process = last.process - first.process
    return {
        "meters": count,
        "seconds": wall,
        "core_share": process / wall,
        "loop_share": (last.thread - first.thread) / wall,
        "frames": frames,
        "frames_per_s": frames / wall,
        "cpu_ms_per_frame": process / frames * 1e3 if frames else math.nan,
        "rss_mb": last.rss_kb / 1024,
        "base_rss_mb": base.rss_kb / 1024,
        "per_meter_kb": (last.rss_kb - base.rss_kb) / count,
        "setup_s": added["s"],
        "entities": sum(w["entities"] for w in writes["entries"].values()),
        "profile": profile,
    }


def scale_section(bench: BenchContext) -> None:
    """Print CPU share and memory at 1, 10 and 100 meters; store them."""
    args = bench.args
    sizes = [int(n) for n in (args.ha_meters or ("1,10" if bench.quick else "1,10,100")).split(",")]
    warm = 3.0 if bench.quick else 20.0
    print(
        f"  {PROFILE} meters (L1 2.5 s, L2 10 s, L3 hourly) on the simulator's real clock,"
        f" bytes paced at 2400 baud over loopback TCP; one fresh core (recorder on) per size;"
        f" measured after {warm:g} s of warm-up"
    )
    print(
        "  core % = CPU seconds of the core (every thread) / wall seconds; loop % = its event"
        " loop thread; ms/frame = core CPU / frames (idle work included); kB/meter = (RSS -"
        " base) / meters (the first meter also loads hanport)"
    )
    print(
        f"  {'meters':>6s} {'seconds':>7s} {'frames/s':>8s} {'core %':>7s} {'loop %':>7s}"
        f" {'ms/frame':>8s} {'RSS MB':>7s} {'base MB':>7s} {'kB/meter':>8s} {'setup s':>7s}"
    )
    out: list[dict[str, Any]] = []
    for count in sizes:
        seconds = args.ha_seconds or (4.0 if bench.quick else (60.0 if count >= 100 else 20.0))
        row = asyncio.run(scale_one(count, seconds, warm))
        over = count >= GOAL_SCALE_METERS and row["core_share"] >= GOAL_SCALE_SHARE
        if over or (bench.profile and count == max(sizes)):
            profile_s = 3.0 if bench.quick else 20.0
            profiled = asyncio.run(scale_one(count, 1.0, warm, recorder=False, profile_s=profile_s))
            row["profile"] = profiled["profile"]
        out.append(row)
        print(
            f"  {count:6d} {row['seconds']:7.1f} {row['frames_per_s']:8.1f}"
            f" {100 * row['core_share']:7.2f} {100 * row['loop_share']:7.2f}"
            f" {row['cpu_ms_per_frame']:8.3f} {row['rss_mb']:7.1f} {row['base_rss_mb']:7.1f}"
            f" {row['per_meter_kb']:8.0f} {row['setup_s']:7.1f}",
            flush=True,
        )
    for row in out:
        if (profile := row.pop("profile")) is not None:
            print_profile(profile, profile["what"])
    hundred = next((row for row in out if row["meters"] == GOAL_SCALE_METERS), None)
    if hundred is None:
        print(
            f"  goal {GOAL_SCALE_METERS} meters < {100 * GOAL_SCALE_SHARE:g} % of a core: not run"
        )
    else:
        share = hundred["core_share"]
        print(
            f"  goal {GOAL_SCALE_METERS} meters < {100 * GOAL_SCALE_SHARE:g} % of one core:"
            f" {verdict(share < GOAL_SCALE_SHARE)} ({100 * share:.1f} %)"
        )
    bench.results["ha_scale"] = {"profile": PROFILE, "sizes": out}


SECTIONS: Final[tuple[tuple[str, str, Callable[[BenchContext], None]], ...]] = (
    (
        "ha",
        "inside Home Assistant: CPU per frame end to end, latency to the state write",
        frames_section,
    ),
    (
        "ha-policies",
        "inside Home Assistant: state writes and recorder rows per day, per update policy",
        policies_section,
    ),
    (
        "ha-scale",
        "inside Home Assistant: 1, 10, 100 meters at real cadence, CPU share and memory",
        scale_section,
    ),
)
