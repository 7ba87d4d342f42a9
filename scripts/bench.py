"""hanport benchmark: how fast the library decodes, compared with amshan on the same frames.

Run ``scripts/bench`` (or ``../shared/tools/py314 scripts/bench``). Sections:

* ``library``: a FIXED, deterministic mix of frames from every simulated meter
  (10 frames of each list a meter sends: list 1/2/3 for Aidon/Kaifa/E350, the
  10 s and hourly lists for Kamstrup, the full list for SE/DK/AT/P1), built by
  the encoder through the simulator. Each frame is fed on its own (as a serial
  read would deliver it) to one long-lived ``MeterStream`` per meter, as the
  integration runs it; best of N repeats with the garbage collector off;
  frames/s and µs/frame per vendor and overall. When ``amshan==2.1.1``
  installs into a side venv (``.venv-bench``, made on demand with this
  Python), its decoder runs on the same frames in a subprocess
  (``scripts/bench_amshan.py``, same method) and the ratio is printed. The
  goal is >= 20x; below it (or with ``--profile``) each stage is timed alone
  and a cProfile breakdown names the slow functions.

* ``ha``, ``ha-policies``, ``ha-scale`` (``scripts/bench_ha.py``): hanport inside
  a real Home Assistant core run in a child process (``scripts/bench_ha_host.py``):
  CPU per list-1/2/3 frame end to end and the latency to the state write; state
  writes and recorder rows per simulated day at each update policy; 1, 10 and 100
  meters at real cadence with the CPU share of one core and memory.

A section is a function that takes the ``Bench`` context, prints its table and may
put machine-readable figures in ``bench.results`` (written by ``--json``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from custom_components.hanport.han.dlms.apdu import ApduDecoder  # noqa: E402
from custom_components.hanport.han.dlms.notification import Notification  # noqa: E402
from custom_components.hanport.han.framing import (  # noqa: E402
    CHECKSUMMED,
    LLC,
    FrameReader,
    Message,
)
from custom_components.hanport.han.layouts import decode_notification  # noqa: E402
from custom_components.hanport.han.layouts.p1 import decode_telegram  # noqa: E402
from custom_components.hanport.han.options import DecodeOptions  # noqa: E402
from custom_components.hanport.han.reading import Protocol  # noqa: E402
from custom_components.hanport.han.simulator import (  # noqa: E402
    PROFILES,
    MeterProfile,
    SimulatedMeter,
)
from custom_components.hanport.han.stream import MeterStream  # noqa: E402
from scripts import bench_ha  # noqa: E402

AMSHAN: Final = "amshan==2.1.1"
SIDE_VENV: Final = ROOT / ".venv-bench"
MIX_PER_LIST: Final = 10
MIX_START: Final = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)  # a winter morning
MIX_SEED: Final = 2026
GOAL: Final = 20.0

type Mix = dict[str, list[bytes]]
type Setup = Callable[[], Callable[[], object]]


# ---------------------------------------------------------------- context


@dataclass
class Bench:
    """What every section gets: options, and a place for machine-readable results."""

    repeats: int
    quick: bool
    amshan: bool
    profile: bool
    results: dict[str, Any] = field(default_factory=dict)
    args: argparse.Namespace = field(default_factory=argparse.Namespace)


@dataclass(frozen=True)
class Section:
    """One part of the benchmark output."""

    name: str
    title: str
    run: Callable[[Bench], None]


def machine_line() -> str:
    """CPU model, cores, OS, Python, commit and date: what a figure was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
    except OSError, subprocess.CalledProcessError:
        commit = "unknown"
    return (
        f"machine: {cpu} ({os.cpu_count()} cores), {platform.system()} {platform.release()} "
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"hanport {commit}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


# ---------------------------------------------------------------- the frame mix


def vendor_of(profile: MeterProfile) -> str:
    """The row a profile's frames are reported under."""
    if profile.protocol is Protocol.P1:
        return "P1 (SE, DK)"
    if profile.encrypted:
        return f"{profile.manufacturer} {profile.country} (encrypted)"
    return profile.manufacturer or profile.key


def build_mix() -> Mix:
    """Profile key -> its fixed frames, the lists interleaved as a meter would send them."""
    mix: Mix = {}
    for key, profile in PROFILES.items():
        per_list: list[list[bytes]] = []
        for schedule in profile.schedule:
            meter = SimulatedMeter(
                profile, start=MIX_START, seed=MIX_SEED, prosumer=True, lists=[schedule.kind]
            )
            frames = meter.advance(schedule.period * MIX_PER_LIST)
            per_list.append([frame.data for frame in frames[:MIX_PER_LIST]])
        mix[key] = [frame for group in zip(*per_list, strict=True) for frame in group]
    return mix


def options_for(key: str) -> DecodeOptions:
    """What a user configures for this meter (market, keys)."""
    meter = SimulatedMeter(PROFILES[key], start=MIX_START, seed=MIX_SEED)
    return DecodeOptions(country=meter.profile.country, key=meter.key, auth_key=meter.auth_key)


# ---------------------------------------------------------------- timing


@dataclass
class Timing:
    """Best-of-N time for ``fed`` frames, ``decoded`` of which gave a reading."""

    best_s: float
    fed: int
    decoded: int
    bytes_fed: int

    @property
    def per_second(self) -> float:
        """Frames per second."""
        return self.fed / self.best_s if self.best_s else math.inf

    @property
    def micros(self) -> float:
        """Microseconds per frame."""
        return self.best_s / self.fed * 1e6 if self.fed else 0.0


def best_time(repeats: int, setup: Setup) -> float:
    """Best time of ``work()``; ``work = setup()`` is made fresh, untimed, for each repeat."""
    best = math.inf
    for _ in range(repeats):
        work = setup()
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
        gc.enable()
    return best


def time_ours(keys: Sequence[str], mix: Mix, loops: int, repeats: int) -> Timing:
    """Feed each frame on its own to one long-lived MeterStream per meter, ``loops`` times."""
    options = {key: options_for(key) for key in keys}
    decoded = 0

    def setup() -> Callable[[], object]:
        streams = [(MeterStream(options[key]), mix[key]) for key in keys]

        def work() -> None:
            nonlocal decoded
            decoded = 0
            for stream, frames in streams:
                feed = stream.feed
                for _ in range(loops):
                    for frame in frames:
                        decoded += len(feed(frame))

        return work

    best = best_time(repeats, setup)
    fed = sum(len(mix[key]) for key in keys) * loops
    size = sum(len(frame) for key in keys for frame in mix[key]) * loops
    return Timing(best, fed, decoded, size)


def ensure_side_venv() -> tuple[Path | None, str]:
    """The side venv's Python with amshan installed, or None and why not."""
    python = SIDE_VENV / "bin" / "python"
    stamp = SIDE_VENV / ".amshan"
    if python.exists() and stamp.exists() and stamp.read_text() == AMSHAN:
        return python, ""
    print(f"setting up {SIDE_VENV.name}/ with {AMSHAN} (once) ...", file=sys.stderr, flush=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(SIDE_VENV)],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", AMSHAN],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.CalledProcessError as err:
        reason = (err.stderr or "").strip().splitlines()
        return None, reason[-1] if reason else str(err)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, str(err)
    stamp.write_text(AMSHAN)
    return python, ""


def time_amshan(
    python: Path, keys: Sequence[str], mix: Mix, loops: int, repeats: int
) -> tuple[str, dict[str, Timing]]:
    """Run scripts/bench_amshan.py in the side venv on the same frames."""
    job = {
        "repeats": repeats,
        "groups": [
            {
                "name": key,
                "kind": "p1" if PROFILES[key].protocol is Protocol.P1 else "hdlc",
                "frames": [frame.hex() for frame in mix[key]],
                "loops": loops,
            }
            for key in keys
        ],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
        path = Path(handle.name)
    try:
        result = subprocess.run(
            [str(python), str(ROOT / "scripts" / "bench_amshan.py"), str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        path.unlink()
    data = json.loads(result.stdout)
    timings = {
        key: Timing(
            value["best_s"],
            value["fed"],
            value["decoded"],
            sum(len(frame) for frame in mix[key]) * loops,
        )
        for key, value in data["groups"].items()
    }
    return str(data["version"]), timings


# ---------------------------------------------------------------- where the time goes


def _apdu(message: Message) -> bytes:
    payload = message.payload
    return payload[3:] if payload[:3] == LLC else payload


def stage_split(mix: Mix, keys: Sequence[str], repeats: int) -> None:
    """Time each stage alone (no profiler distortion): framing, DLMS, layouts, the rest."""
    loops = 20
    options = {key: options_for(key) for key in keys}
    messages = {
        key: [m for frame in mix[key] for m in FrameReader(formats=CHECKSUMMED).feed(frame)]
        for key in keys
    }
    decoded: list[tuple[DecodeOptions, Message, Notification | None]] = []
    for key in keys:
        decoder = ApduDecoder(options[key])
        for message in messages[key]:
            if message.protocol is Protocol.P1:
                decoded.append((options[key], message, None))
            else:
                decoded.append((options[key], message, decoder.decode(_apdu(message))))

    def framing() -> Callable[[], object]:
        readers = [(FrameReader(formats=CHECKSUMMED), mix[key]) for key in keys]

        def work() -> None:
            for reader, frames in readers:
                for _ in range(loops):
                    for frame in frames:
                        reader.feed(frame)

        return work

    def dlms() -> Callable[[], object]:
        decoders = [(ApduDecoder(options[key]), messages[key]) for key in keys]

        def work() -> None:
            for decoder, items in decoders:
                for _ in range(loops):
                    for message in items:
                        if message.protocol is not Protocol.P1:
                            decoder.decode(_apdu(message))

        return work

    def layouts() -> Callable[[], object]:
        def work() -> None:
            for _ in range(loops):
                for opts, message, notification in decoded:
                    if notification is None:
                        decode_telegram(message.payload, options=opts)
                    else:
                        decode_notification(
                            notification, protocol=message.protocol, options=opts,
                            frame=message.frame,
                        )  # fmt: skip

        return work

    def full() -> Callable[[], object]:
        streams = [(MeterStream(options[key]), mix[key]) for key in keys]

        def work() -> None:
            for stream, frames in streams:
                for _ in range(loops):
                    for frame in frames:
                        stream.feed(frame)

        return work

    count = sum(len(mix[key]) for key in keys) * loops
    total = best_time(repeats, full)
    parts = [
        ("framing (find, check CRC, reassemble)", best_time(repeats, framing)),
        ("DLMS (APDU, A-XDR, ciphering)", best_time(repeats, dlms)),
        ("layouts (tree or telegram -> Reading)", best_time(repeats, layouts)),
    ]
    parts.append(("stream glue (the rest)", max(0.0, total - sum(t for _n, t in parts))))
    print("  stages timed alone (µs per frame over the whole mix, best of N):")
    for name, seconds in parts:
        print(f"    {name:40s} {seconds / count * 1e6:7.1f} µs  {100 * seconds / total:5.1f} %")
    print(f"    {'whole MeterStream.feed':40s} {total / count * 1e6:7.1f} µs")


STAGES: Final = (
    ("/han/framing/", "framing"),
    ("/han/crc.py", "framing"),
    ("/han/dlms/", "DLMS"),
    ("cryptography", "DLMS"),
    ("/han/layouts/", "layouts"),
    ("/han/scaling.py", "layouts"),
    ("/han/cosem.py", "layouts"),
    ("/han/reading.py", "layouts"),
    ("/han/stream.py", "stream"),
)


def profile_stages(mix: Mix, keys: Sequence[str]) -> None:
    """Print cProfile own time per stage and the top functions (Python calls look dearer)."""
    streams = [(MeterStream(options_for(key)), mix[key]) for key in keys]
    profiler = cProfile.Profile()
    profiler.enable()
    for stream, frames in streams:
        for _ in range(20):
            for frame in frames:
                stream.feed(frame)
    profiler.disable()
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    by_stage: dict[str, float] = {}
    entries: list[tuple[float, str]] = []
    for (filename, line, name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        stage = next((label for part, label in STAGES if part in filename), None)
        if stage is None:
            stage = "builtins (C)" if filename == "~" else "other Python"
        by_stage[stage] = by_stage.get(stage, 0.0) + tottime
        short = filename.split("/han/")[-1] if "/han/" in filename else filename
        entries.append((tottime, f"{short}:{line} {name}"))
    total = sum(by_stage.values()) or 1.0
    shares = ", ".join(
        f"{stage} {100 * seconds / total:.0f} %"
        for stage, seconds in sorted(by_stage.items(), key=lambda item: -item[1])
    )
    print(f"  cProfile own time: {shares}")
    print("  top functions by own time:")
    for seconds, label in sorted(entries, reverse=True)[:10]:
        print(f"    {100 * seconds / total:5.1f} %  {label}")


# ---------------------------------------------------------------- the library section


def _sum(timings: Sequence[Timing]) -> Timing:
    return Timing(
        sum(t.best_s for t in timings),
        sum(t.fed for t in timings),
        sum(t.decoded for t in timings),
        sum(t.bytes_fed for t in timings),
    )


def _over_mix(rows: Sequence[tuple[Timing, int]]) -> tuple[float, float]:
    """(frames/s, µs/frame) decoding the fixed mix once: each row weighted by its frames."""
    frames = sum(count for _timing, count in rows)
    micros = sum(timing.micros * count for timing, count in rows) / frames
    return 1e6 / micros, micros


def _amshan_timings(bench: Bench, keys: Sequence[str], mix: Mix) -> tuple[str, dict[str, Timing]]:
    """amshan's figures for ``keys``, or ("", {}) after printing why there are none."""
    if not bench.amshan:
        print("  amshan: skipped (--no-amshan); our figures only")
        return "", {}
    python, why = ensure_side_venv()
    if python is None:
        print(f"  amshan: {AMSHAN} could not be installed ({why}); our figures only")
        return "", {}
    loops = max(1, (100 if bench.quick else 400) // 30)
    try:
        return time_amshan(python, keys, mix, loops, bench.repeats)
    except (subprocess.CalledProcessError, ValueError, KeyError) as err:
        print(f"  amshan: failed to run ({err}); our figures only")
        return "", {}


def library_section(bench: Bench) -> None:
    """Decode throughput per vendor and overall, with amshan's on the same frames."""
    mix = build_mix()
    groups: dict[str, list[str]] = {}
    for key, profile in PROFILES.items():
        groups.setdefault(vendor_of(profile), []).append(key)
    comparable = [
        key
        for key, profile in PROFILES.items()
        if not profile.encrypted and profile.protocol in (Protocol.HDLC, Protocol.P1)
    ]
    version, theirs = _amshan_timings(bench, comparable, mix)
    target = 500 if bench.quick else 4000

    print(
        "  one frame per feed() to one MeterStream per meter; "
        f"best of {bench.repeats}; GC off; amshan likewise"
    )
    print(
        f"  {'vendor':26s} {'frames':>6s} {'B/frame':>7s} {'frames/s':>10s} {'µs/frame':>9s}"
        f" {'amshan/s':>9s} {'ratio':>7s}"
    )
    ours_all: list[tuple[Timing, int]] = []
    ours_cmp: list[tuple[Timing, int]] = []
    theirs_cmp: list[tuple[Timing, int]] = []
    rows: dict[str, Any] = {}
    for vendor, keys in groups.items():
        frames = sum(len(mix[key]) for key in keys)
        ours = time_ours(keys, mix, max(1, target // frames), bench.repeats)
        if ours.decoded != ours.fed:
            print(f"  !! {vendor}: only {ours.decoded} of {ours.fed} frames decoded")
        ours_all.append((ours, frames))
        row: dict[str, Any] = {"frames_per_s": ours.per_second, "us_per_frame": ours.micros}
        amshan_cell, ratio_cell = "-", ""
        their = [theirs[key] for key in keys if key in theirs]
        if theirs and len(their) == len(keys):
            total = _sum(their)
            if total.decoded == total.fed:
                ratio = ours.per_second / total.per_second
                amshan_cell, ratio_cell = f"{total.per_second:9,.0f}", f"{ratio:6.1f}x"
                ours_cmp.append((ours, frames))
                theirs_cmp.append((total, frames))
                row |= {"amshan_frames_per_s": total.per_second, "ratio": ratio}
            else:
                amshan_cell = f"{total.decoded}/{total.fed}"
        rows[vendor] = row
        print(
            f"  {vendor:26s} {frames:6d} {ours.bytes_fed / ours.fed:7.0f}"
            f" {ours.per_second:10,.0f} {ours.micros:9.1f} {amshan_cell:>9s} {ratio_cell:>7s}"
        )
    rate, micros = _over_mix(ours_all)
    frames_all = sum(count for _t, count in ours_all)
    size = sum(len(frame) for frames in mix.values() for frame in frames) / frames_all
    print(f"  {'overall (the mix)':26s} {frames_all:6d} {size:7.0f} {rate:10,.0f} {micros:9.1f}")
    bench.results["library"] = {"vendors": rows, "overall_frames_per_s": rate}
    slow = bench.profile
    if theirs_cmp:
        ours_rate, ours_micros = _over_mix(ours_cmp)
        their_rate, _their_micros = _over_mix(theirs_cmp)
        ratio = ours_rate / their_rate
        frames_cmp = sum(count for _t, count in ours_cmp)
        size = sum(len(frame) for key in comparable for frame in mix[key]) / frames_cmp
        print(
            f"  {'overall (amshan decodes)':26s} {frames_cmp:6d} {size:7.0f}"
            f" {ours_rate:10,.0f} {ours_micros:9.1f} {their_rate:9,.0f} {ratio:6.1f}x"
        )
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(f"  vs amshan {version}: goal >= {GOAL:.0f}x {verdict} ({ratio:.1f}x)")
        print("  ('-': amshan cannot decode these frames: encrypted or M-Bus)")
        bench.results["library"] |= {"amshan": version, "ratio": ratio}
        slow = slow or ratio < GOAL
    if slow:
        stage_split(mix, list(PROFILES), bench.repeats)
        profile_stages(mix, list(PROFILES))


SECTIONS: Final = (
    Section("library", "library: decode throughput (frames -> readings)", library_section),
    *(Section(name, title, run) for name, title, run in bench_ha.SECTIONS),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections and print their tables."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description="hanport benchmark (decode throughput, ...)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="best of N (default 7)")
    parser.add_argument("--quick", action="store_true", help="fewer frames: a smoke run")
    parser.add_argument("--no-amshan", action="store_true", help="do not compare with amshan")
    parser.add_argument(
        "--profile", action="store_true", help="always time the stages and run cProfile"
    )
    parser.add_argument(
        "--section",
        action="append",
        choices=[section.name for section in SECTIONS],
        help="run only this section (repeatable)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    bench_ha.add_arguments(parser)
    args = parser.parse_args(argv)
    bench = Bench(
        repeats=max(1, args.repeats),
        quick=args.quick,
        amshan=not args.no_amshan,
        profile=args.profile,
        args=args,
    )
    print("hanport bench")
    print(machine_line())
    for section in SECTIONS:
        if args.section and section.name not in args.section:
            continue
        print(f"== {section.title}")
        section.run(bench)
    if args.json:
        args.json.write_text(json.dumps(bench.results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
