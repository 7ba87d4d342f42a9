"""hanport fuzzing: mutated real-layout frames through MeterStream and the P1 parser.

Run ``scripts/fuzz`` with the project's Python 3.14 venv::

    ../shared/tools/py314 .venv/bin/python scripts/fuzz --count 1000000 --seed 1 --workers 2

(``.venv/bin/python scripts/fuzz ...`` where python3.14 is on PATH.) The mutation
engine and the oracle live in ``tests/fuzzing.py`` (the CI test runs a short
form of the same run). Every input is a pure function of ``--seed`` and its
index: ``--replay INDEX`` rebuilds one and shows what the stream made of it.
Exit status 1 when any check failed.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fuzzing import (  # noqa: E402
    FAILURES,
    IDLE,
    MEMORY_CAP,
    Fuzzer,
    Stats,
    fuzz,
    split_frames,
    trap_library_exceptions,
)

_MIB: Final = 1024 * 1024


def _table(title: str, counts: dict[str, int], total: int | None = None) -> list[str]:
    lines = [f"{title}:"]
    width = max((len(name) for name in counts), default=0)
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        share = f"  ({100 * count / total:5.1f} %)" if total else ""
        lines.append(f"  {name:<{width}}  {count:>10,}{share}")
    return lines


def report(stats: Stats, *, count: int, seed: int, workers: int, memory_cap: int) -> str:
    """The summary printed at the end of a run."""
    out = [
        f"hanport fuzz: seed {seed}, {workers} worker(s), Python {platform.python_version()}",
        f"inputs run: {stats.inputs:,} of {count:,}"
        f" ({stats.bytes_fed / _MIB:.1f} MiB fed, {stats.seeds_built:,} seed messages built)",
        "",
        *_table("inputs per family", dict(stats.families), stats.inputs),
        "",
        *_table("mutators applied (an input may stack several)", dict(stats.mutators)),
        "",
        f"readings from fresh streams: {stats.readings:,}",
        *_table("outcomes", dict(stats.outcomes)),
    ]
    if stats.collisions:
        out += ["", *_table("checksum collisions by format", dict(stats.collisions))]
    out += ["", "checks (each must be 0):"]
    width = max(len(name) for name in FAILURES)
    out += [f"  {name:<{width}}  {stats.failures.get(name, 0):>8,}" for name in FAILURES]
    if stats.where:
        out += [
            "",
            *_table("failures by stream state (soak: the long-lived stream)", dict(stats.where)),
        ]
    peak = stats.peak_traced
    out += [
        "",
        f"peak traced memory per worker: {peak / _MIB:.1f} MiB (cap {memory_cap / _MIB:.0f} MiB)"
        if peak
        else "peak traced memory: not traced (--no-trace)",
        f"max RSS per worker: {stats.max_rss_kib / 1024:.1f} MiB;"
        f" soak stream buffer max: {stats.max_soak_buffer:,} bytes",
        f"wall time: {stats.elapsed:.1f} s;"
        f" {stats.inputs / max(stats.elapsed, 1e-9):,.0f} inputs/s",
    ]
    if stats.failed:
        out += ["", "reproducers:"]
        for category in FAILURES:
            out += [sample.render(seed) for sample in stats.samples.get(category, [])]
    out += ["", f"RESULT: {'FAIL' if stats.failed else 'PASS'} ({stats.failed:,} failures)"]
    return "\n".join(out)


def replay(seed: int, index: int) -> int:
    """Rebuild input ``index`` and show the seed, the mutations and what came out."""
    fuzzer = Fuzzer(seed, soak=False)
    with trap_library_exceptions(fuzzer.trap):
        case = fuzzer.build(index)
        print(f"input #{index}: family {case.family}, layout {case.seed.layout}")
        print(f"  seed {case.seed.key}: {case.seed.wire.hex()}")
        print(f"  expected: {case.seed.expected!r}")
        print(f"  options: {case.seed.options!r}")
        print(f"  mutators: {', '.join(case.draft.names) or '-'}")
        if case.prime:
            print(f"  warm: after the clean message {case.prime.hex()}")
        print(f"  cuts: {case.cuts}")
        print(f"  input ({len(case.data)} bytes): {case.data.hex()}")
        idle = case.tail[-1:].hex()
        print(f"  then: {case.tail[:-IDLE].hex() or '-'} and {IDLE} bytes of {idle}")
        fuzzer.run_one(index)
    for reading in fuzzer.last_readings:
        print(f"  reading: {reading!r}")
        print(f"    from {reading.frame.hex()}")
    stats = fuzzer.stats
    print(f"  outcomes: {dict(stats.outcomes)}")
    for category, samples in stats.samples.items():
        for sample in samples:
            print(f"  FAILED [{category}]: {sample.detail}")
            frame_hex = sample.detail.rsplit(" from ", 1)[-1]
            if all(c in "0123456789abcdef" for c in frame_hex) and frame_hex:
                frames = split_frames(bytes.fromhex(frame_hex))
                print(f"    frame splits as: {frames!r}")
    return 1 if stats.failed else 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the report; 1 when any check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="inputs to run")
    parser.add_argument("--seed", type=int, default=1, help="run seed (inputs derive from it)")
    parser.add_argument("--workers", type=int, default=2, help="processes (1: in this one)")
    parser.add_argument("--start", type=int, default=0, help="index of the first input")
    parser.add_argument(
        "--memory-cap-mb", type=float, default=MEMORY_CAP / _MIB, help="traced memory cap"
    )
    parser.add_argument("--no-trace", action="store_true", help="no tracemalloc (faster)")
    parser.add_argument("--replay", type=int, metavar="INDEX", help="rebuild and show one input")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.replay is not None:
        return replay(args.seed, args.replay)
    cap = int(args.memory_cap_mb * _MIB)
    began = time.perf_counter()
    step = max(args.count // 10, 1)
    shown = [0]

    def progress(stats: Stats) -> None:
        if args.quiet or (stats.inputs < shown[0] + step and stats.inputs < args.count):
            return
        shown[0] = stats.inputs
        elapsed = time.perf_counter() - began
        print(
            f"  {stats.inputs:>10,} inputs  {elapsed:7.1f} s  failures {stats.failed}",
            file=sys.stderr,
            flush=True,
        )

    stats = fuzz(
        args.count,
        args.seed,
        workers=args.workers,
        start=args.start,
        trace_memory=not args.no_trace,
        memory_cap=cap,
        progress=progress,
    )
    print(report(stats, count=args.count, seed=args.seed, workers=args.workers, memory_cap=cap))
    return 1 if stats.failed else 0


if __name__ == "__main__":
    sys.exit(main())
