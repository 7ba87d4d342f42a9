"""The command line: ``decode`` captured bytes, ``simulate`` a meter.

Run as ``python -m custom_components.hanport.han COMMAND ...`` from a
checkout (or ``python -m han`` with ``custom_components/hanport`` on the path).
``decode`` prints one JSON object per decoded message on stdout and every
rejected frame, with its reason, on stderr, so a capture from a bug report
can be checked in seconds. ``simulate`` serves a realistic meter over TCP or a
pty for Home Assistant or any other reader.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from .errors import Rejected
from .options import DecodeOptions
from .reading import Reading
from .simulator import (
    PROFILES,
    Clock,
    FastClock,
    FaultPlan,
    RealClock,
    SimulatedMeter,
    SimulatorServer,
    find_profile,
    parse_faults,
    parse_hostport,
)
from .stream import MeterStream

EXIT_OK: Final = 0
EXIT_RUNTIME: Final = 1
EXIT_USAGE: Final = 2
CHUNK: Final = 4096
"""Bytes fed to the stream at a time, as a serial or TCP read would deliver them."""

_HEX_NOISE: Final = re.compile(r"0[xX]|[\s,:;]")


class UsageError(Exception):
    """The command cannot run as asked (bad input file, bad hex); exit 2."""


# ---------------------------------------------------------------- argument types


def parse_hex(text: str) -> bytes:
    """Hex text to bytes, tolerating whitespace, newlines, ``0x`` prefixes and , : ; separators."""
    cleaned = _HEX_NOISE.sub("", text)
    if len(cleaned) % 2:
        raise ValueError("odd number of hex digits")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        bad = next((ch for ch in cleaned if ch not in "0123456789abcdefABCDEF"), "?")
        raise ValueError(f"not a hex digit: {bad!r}") from None


def key_hex(text: str) -> bytes:
    """Parse an AES-128 key: 32 hex digits (spaces and a ``0x`` prefix allowed)."""
    try:
        key = parse_hex(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a key is 32 hex digits: {err}") from None
    if len(key) != 16:
        raise argparse.ArgumentTypeError(
            f"a key is 32 hex digits (16 bytes); this one has {len(key)} bytes"
        )
    return key


def country_code(text: str) -> str:
    """Parse an ISO 3166 alpha-2 country code such as NO, SE, DK."""
    if len(text) != 2 or not text.isalpha():
        raise argparse.ArgumentTypeError(f"expected a two-letter country code, got {text!r}")
    return text.upper()


def _start_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _hostport(text: str) -> tuple[str, int]:
    try:
        return parse_hostport(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


# ---------------------------------------------------------------- decode


def reading_to_json(reading: Reading) -> dict[str, Any]:
    """Return the JSON object ``decode`` prints for one reading."""
    values: dict[str, float | int] = {}
    for name, value in reading.values.items():
        values[name] = int(value) if value.is_integer() and abs(value) < 2**53 else value
    return {
        "protocol": str(reading.protocol),
        "manufacturer": reading.manufacturer,
        "meter_id": reading.meter_id,
        "meter_type": reading.meter_type,
        "list_version": reading.list_version,
        "meter_time": reading.meter_time.isoformat() if reading.meter_time else None,
        "values": values,
    }


def _read_input(source: str, *, as_hex: bool) -> bytes:
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {source}: {err.strerror or err}") from None
    if not as_hex:
        return raw
    try:
        return parse_hex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"{source} is not hex text ({err}); drop --hex for raw bytes") from None


def _short_hex(frame: bytes, limit: int = 48) -> str:
    text = frame[:limit].hex()
    return text + ("..." if len(frame) > limit else "")


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode a capture; print readings as JSON lines, rejects and a summary on stderr."""
    data = _read_input(args.file, as_hex=args.hex)
    out, err = sys.stdout, sys.stderr

    def report(rejected: Rejected) -> None:
        detail = f": {rejected.detail}" if rejected.detail else ""
        print(
            f"rejected {rejected.reason}{detail} "
            f"({len(rejected.frame)} bytes: {_short_hex(rejected.frame)})",
            file=err,
        )

    options = DecodeOptions(country=args.country, key=args.key, auth_key=args.auth_key)
    stream = MeterStream(options, on_reject=report)
    readings = 0
    chunks = (stream.feed(data[start : start + CHUNK]) for start in range(0, len(data), CHUNK))
    for batch in [*chunks, stream.flush()]:  # the input is whole: a lone bare APDU counts
        for reading in batch:
            readings += 1
            print(json.dumps(reading_to_json(reading), ensure_ascii=False), file=out)
    counters = stream.counters
    rejected = sum(counters.rejected.values())
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(counters.rejected.items()))
    print(
        f"summary: {len(data)} bytes read, {readings} readings, {rejected} rejected"
        + (f" ({reasons})" if reasons else "")
        + f", {counters.bytes_discarded} bytes discarded",
        file=err,
    )
    return EXIT_OK


# ---------------------------------------------------------------- simulate


def cmd_list_meters() -> int:
    """Print the simulated meter catalogue."""
    for profile in PROFILES.values():
        print(
            f"{profile.key:18s} {profile.country}  {profile.phases}-phase  "
            f"{profile.serial:11s} {profile.description}"
        )
    return EXIT_OK


async def _simulate(args: argparse.Namespace) -> int:
    try:
        profile = find_profile(
            key=args.meter,
            vendor=args.vendor,
            model=args.model,
            country=args.country,
            phases=args.phases,
        )
        faults = parse_faults(args.faults) if args.faults else frozenset()
        plan = FaultPlan(faults, args.fault_rate) if faults else None
    except (LookupError, ValueError) as err:
        raise UsageError(str(err)) from None
    clock: Clock
    if args.speed is not None or args.start is not None:
        clock = FastClock(args.speed or 1.0, args.start)
    else:
        clock = RealClock()
    start = clock.now()
    meter = SimulatedMeter(
        profile,
        start=start,
        seed=args.seed,
        prosumer=args.prosumer,
        key=args.key,
        auth_key=args.auth_key,
        faults=plan,
    )
    until = None if args.duration is None else start + timedelta(seconds=args.duration)
    server = SimulatorServer(meter, clock, tcp=args.tcp, pty=args.pty or False, until=until)
    try:
        await server.start()
    except OSError as err:
        print(f"hanport simulate: cannot listen: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        _announce(server, meter, clock.speed, start)
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
        if args.duration is not None:
            waiters.append(asyncio.create_task(clock.sleep(args.duration)))
        _done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    finally:
        await server.stop()
    print(f"hanport simulate: stopped after {len(meter.sent)} frames", flush=True)
    return EXIT_OK


def _announce(
    server: SimulatorServer, meter: SimulatedMeter, speed: float, start: datetime
) -> None:
    profile = meter.profile
    lines = [
        f"hanport simulate: {profile.description} [{profile.key}]",
        f"  country {profile.country}, serial {profile.serial}, meter id {meter.meter_id}, "
        f"seed {meter.seed}" + (", prosumer" if meter.prosumer else ""),
    ]
    if meter.key is not None:
        auth = meter.auth_key.hex().upper() if meter.auth_key else "none"
        lines.append(f"  key {meter.key.hex().upper()}, auth key {auth}")
    if speed != 1.0:
        lines.append(f"  fast clock x{speed:g} from {start.isoformat()}")
    if server.port is not None:
        lines.append(f"  listening on tcp {server.host}:{server.port} ({server.url})")
    if server.pty_path is not None:
        lines.append(f"  pty {server.pty_path} -> {server.pty_device}")
    print("\n".join(lines), flush=True)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the simulator until Ctrl-C (or ``--duration``)."""
    if args.list_meters:
        return cmd_list_meters()
    if args.tcp is None and not args.pty:
        raise UsageError("say where to serve the meter: --tcp HOST:PORT and/or --pty")
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING if args.quiet else logging.INFO,
            format="%(asctime)s %(levelname)s %(message)s",
            stream=sys.stderr,
        )
    return asyncio.run(_simulate(args))


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (its help texts are the user documentation)."""
    parser = argparse.ArgumentParser(
        prog="python -m custom_components.hanport.han",
        description="Decode smart-meter HAN port captures, or simulate a meter.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decode = commands.add_parser(
        "decode",
        help="decode a capture of HAN port bytes into JSON lines",
        description=(
            "Decode a capture of what a meter sent (HDLC/DLMS, M-Bus or P1) and print one "
            "JSON object per message on stdout. Frames that fail a check are listed on "
            "stderr with the reason; a summary follows at the end."
        ),
        epilog=(
            "examples:\n"
            "  %(prog)s capture.bin\n"
            "  %(prog)s --hex frames.txt\n"
            "  xxd -p capture.bin | %(prog)s --hex -\n"
            "  %(prog)s --key 000102030405060708090A0B0C0D0E0F --country DK dk.bin"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    decode.add_argument(
        "file",
        metavar="FILE",
        help="the capture: raw bytes as read from the port, or hex text with --hex; '-' = stdin",
    )
    decode.add_argument(
        "--hex",
        action="store_true",
        help="FILE is hex text (spaces, newlines, 0x prefixes and commas are ignored)",
    )
    decode.add_argument(
        "--key",
        type=key_hex,
        metavar="HEX",
        help="encryption key (GUEK) for encrypted meters, 32 hex digits",
    )
    decode.add_argument(
        "--auth-key",
        type=key_hex,
        metavar="HEX",
        help="authentication key (GAK), 32 hex digits, when the meter authenticates frames",
    )
    decode.add_argument(
        "--country",
        type=country_code,
        metavar="CC",
        help="the meter's market (NO, SE, DK, ...): decides scaling the frames do not state, "
        "e.g. Kamstrup energy is 10 Wh in Norway and Wh in Sweden",
    )
    decode.set_defaults(handler=cmd_decode)

    sim = commands.add_parser(
        "simulate",
        help="serve a simulated meter over TCP or a pseudo-terminal",
        description=(
            "Run a simulated meter that pushes real frames on its real cadence (Aidon list 1 "
            "every 2.5 s, list 2 every 10 s, list 3 at xx:00:10; Kaifa 2 s/10 s; Kamstrup "
            "10 s and hourly; P1 10 s), with wandering household power and registers that "
            "follow it exactly. Serve it on a TCP port (like ser2net or an ESP bridge) "
            "and/or a pty a reader opens like a USB serial adapter. Runs until Ctrl-C."
        ),
        epilog=(
            "examples:\n"
            "  %(prog)s --tcp 127.0.0.1:3001\n"
            "  %(prog)s --pty --vendor kamstrup --country SE --phases 1\n"
            "  %(prog)s --tcp 0.0.0.0:3001 --vendor kaifa --model MA304H3E --prosumer\n"
            "  %(prog)s --tcp 127.0.0.1:0 --speed 60 --faults garbage,bitflip,silence\n"
            "  %(prog)s --tcp 127.0.0.1:3001 --meter kamstrup-dk \\\n"
            "      --key 00112233445566778899AABBCCDDEEFF\n"
            "  %(prog)s --list-meters"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = sim.add_argument_group("where to serve")
    where.add_argument(
        "--tcp",
        type=_hostport,
        metavar="HOST:PORT",
        help="listen on this address; port 0 picks a free port (printed at start)",
    )
    where.add_argument(
        "--pty",
        nargs="?",
        const=True,
        metavar="LINK",
        help="create a pseudo-terminal; its path (a symlink, LINK if given) is printed at start",
    )
    which = sim.add_argument_group("which meter")
    which.add_argument("--meter", metavar="KEY", help="a catalogue key (see --list-meters)")
    which.add_argument(
        "--vendor", help="aidon, kaifa, kamstrup, lg or p1 (nothing given: aidon-6515-no)"
    )
    which.add_argument("--model", help="model or type number, e.g. 6525, MA304H3E, 6841121")
    which.add_argument("--country", type=country_code, metavar="CC", help="NO, SE, DK or AT")
    which.add_argument("--phases", type=int, choices=(1, 3), help="1 or 3")
    which.add_argument("--list-meters", action="store_true", help="list the meters and exit")
    which.add_argument(
        "--prosumer", action="store_true", help="add solar panels: the meter also exports"
    )
    which.add_argument("--seed", type=int, default=0, help="household and fault seed (default 0)")
    which.add_argument(
        "--key", type=key_hex, metavar="HEX", help="encryption key for encrypted meters"
    )
    which.add_argument(
        "--auth-key", type=key_hex, metavar="HEX", help="authentication key (Kamstrup DK)"
    )
    when = sim.add_argument_group("time and faults")
    when.add_argument(
        "--speed",
        type=_positive,
        metavar="N",
        help="run the meter's clock N times faster than real time (60: an hour per minute)",
    )
    when.add_argument(
        "--start",
        type=_start_time,
        metavar="ISO",
        help="the meter's start time (e.g. 2026-10-25T00:00:00+02:00 for a DST day)",
    )
    when.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="stop after this much simulated time",
    )
    when.add_argument(
        "--faults",
        metavar="LIST",
        help="random faults, comma-separated: garbage, bitflip, truncate, silence, "
        "disconnect, parity, crlf, repeat_hourly, clock_gap, unplug, or all",
    )
    when.add_argument(
        "--fault-rate",
        type=float,
        default=0.02,
        metavar="P",
        help="chance that a frame starts a fault (default 0.02)",
    )
    when.add_argument("--quiet", action="store_true", help="do not log every frame")
    sim.set_defaults(handler=cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; return its exit status (argparse exits 2 on bad options)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except UsageError as err:
        print(f"{parser.prog} {args.command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    return status
