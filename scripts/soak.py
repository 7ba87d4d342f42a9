"""hanport soak run: Home Assistant with the integration against a simulated meter, under faults.

Run ``scripts/soak`` with the project's Python 3.14 venv::

    ../shared/tools/py314 .venv/bin/python scripts/soak                 # a simulated month
    ../shared/tools/py314 .venv/bin/python scripts/soak --days 1 --lists 1,2,3 --legs tcp

Each leg (``tcp``: the meter behind a ser2net-like TCP bridge; ``pty``: a USB serial
adapter that can be unplugged) runs a real Home Assistant core in its own pytest session
of ``tests/soak/soak_run.py``, on a frozen clock stepped by the engine
(``tests/soak/harness.py``), while faults are injected at random: disconnects
mid-frame, silences longer than the watchdog, garbage, bit flips, truncated frames,
wrong parity, CRLF expansion, the device unplugged and plugged in, Home Assistant
restarts. Parameters reach the engine as HANPORT_SOAK_* variables.

Prints the figures of every leg; exit status 1 when a leg published a wrong (or stale)
value, an energy sensor went down, an hourly reading was lost or booked wrong, the
statistics' sum broke or a fault was never recovered from; 2 when a leg did not run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.soak.report import format_report, read_results  # noqa: E402

LEGS: Final = ("tcp", "pty")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--days", type=float, help="simulated days per leg (default 31)")
    span.add_argument("--hours", type=float, help="simulated hours per leg")
    parser.add_argument(
        "--legs", default="tcp,pty", help="comma-separated legs: tcp, pty (default both)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds the meter and the faults")
    parser.add_argument("--profile", default="aidon-6534-no", help="simulated meter profile")
    parser.add_argument(
        "--start",
        default="2026-10-01T00:00:00+02:00",
        help="simulated start, ISO with offset (default: October 2026, with the DST change)",
    )
    parser.add_argument(
        "--fault-gap",
        type=float,
        default=900.0,
        help="mean simulated seconds between faults (default 900)",
    )
    parser.add_argument(
        "--lists",
        default="2,3",
        help="lists the meter sends (default 2,3: list 1, every 2.5 s, is 80 %% of the "
        "frames and the short run in the suite covers it; 1,2,3 takes ~4x the time)",
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace Python allocations (slower)"
    )
    parser.add_argument(
        "--parallel", action="store_true", help="run the legs at the same time (2 cores)"
    )
    parser.add_argument("--keep", type=Path, help="keep the legs' logs and JSON in this folder")
    args = parser.parse_args(argv)
    args.legs = [leg.strip() for leg in args.legs.split(",") if leg.strip()]
    if unknown := set(args.legs) - set(LEGS):
        parser.error(f"unknown legs: {', '.join(sorted(unknown))}")
    if args.hours is None:
        args.hours = 24.0 * (args.days if args.days is not None else 31.0)
    return args


def leg_environment(args: argparse.Namespace, leg: str, out: Path) -> dict[str, str]:
    """Return the environment one leg's pytest session runs with."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HANPORT_SOAK_")}
    env.update(
        {
            "HANPORT_SOAK_LEGS": leg,
            "HANPORT_SOAK_OUT": str(out),
            "HANPORT_SOAK_HOURS": str(args.hours),
            "HANPORT_SOAK_SEED": str(args.seed),
            "HANPORT_SOAK_PROFILE": args.profile,
            "HANPORT_SOAK_START": args.start,
            "HANPORT_SOAK_FAULT_GAP": str(args.fault_gap),
            "HANPORT_SOAK_LISTS": args.lists,
            "HANPORT_SOAK_TRACEMALLOC": "1" if args.tracemalloc else "0",
        }
    )
    return env


def pytest_command(leg: str) -> list[str]:
    """Return the pytest invocation of one leg."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "tests/soak/soak_run.py",
        "-q",
        "-p",
        "no:cov",
        "-p",
        "no:cacheprovider",
        "--log-level=WARNING",
        f"-k={leg}",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the legs, print the table; return the exit status."""
    args = parse_args(argv)
    out = args.keep or Path(tempfile.mkdtemp(prefix="hanport-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"hanport soak: {args.hours:g} simulated hours per leg ({', '.join(args.legs)}),"
        f" {args.profile}, lists {args.lists}, seed {args.seed}, from {args.start},"
        f" a fault every ~{args.fault_gap:g} s; logs in {out}",
        flush=True,
    )
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    codes: dict[str, int] = {}
    for leg in args.legs:
        with (out / f"{leg}.log").open("wb") as log:
            process = subprocess.Popen(
                pytest_command(leg),
                cwd=ROOT,
                env=leg_environment(args, leg, out),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        running.append((leg, process))
        if not args.parallel:
            codes[leg] = process.wait()
    for leg, process in running:
        codes[leg] = process.wait()
    results = read_results(out)
    if results:
        print(format_report(results))
    missing = [leg for leg in args.legs if leg not in {r.transport for r in results}]
    for leg in missing:
        print(f"{leg} leg did not finish (pytest exit {codes[leg]}); see {out / f'{leg}.log'}")
    if missing:
        return 2
    return 1 if any(result.failures() for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
