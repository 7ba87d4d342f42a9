"""A simulated smart meter: real frames on a real cadence, for development and every test layer.

It is the meter ``scripts/develop`` runs Home Assistant against, and the
harness of the integration tests, the soak tests and the energy accounting
tests. The implementation lives in ``han/sim/``; this module is its public API.

Three layers, each usable alone:

``SimulatedMeter(profile, *, start, seed, prosumer, key, auth_key, faults, lists, ...)``
    A synchronous state machine: ``advance(seconds)`` / ``advance_to(when)``
    runs the pushes due and returns ``SentFrame`` records (also in ``.sent``):
    ``at`` (true UTC), ``meter_time`` (the meter's clock), ``kind`` (list
    1/2/3), ``reading`` (what a correct decoder must read), ``clean``/``data``
    (encoder bytes / bytes on the line), ``faults``, ``corrupted``,
    ``sample`` (the household's true state until the next push) and
    ``energy_mj`` (exact registers in millijoules). ``said_at(t)`` answers
    "what did the meter say at t". Faults on demand: ``inject_garbage``,
    ``flip_bits``, ``truncate_next``, ``go_silent``, ``disconnect``,
    ``wrong_parity``, ``expand_crlf``, ``repeat_hourly``, ``clock_gap``,
    ``unplug``, ``clear_faults``; random ones with ``faults=FaultPlan(...)``.

``RealClock()``, ``FastClock(speed, start)``, ``ManualClock(start)``
    Where time comes from; a manual clock moves only when a test says so.

``SimulatorServer(meter, clock, *, tcp=("127.0.0.1", 0), pty=True)``
    Serves the meter over TCP (many clients, like ser2net or an ESP stream
    server) and/or a pty whose stable symlink ``pty_path`` a reader opens as
    a serial device. ``await server.advance(s)`` (manual clock) sends what
    is due and waits until the bytes are handed over; the fault methods of
    the meter are mirrored as coroutines that take effect at once.

Example (a test)::

    clock = ManualClock(datetime(2026, 3, 29, 0, 0, tzinfo=UTC))
    meter = SimulatedMeter("aidon-6525-no", start=clock.now(), seed=7)
    async with SimulatorServer(meter, clock, tcp=("127.0.0.1", 0)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await server.wait_for_clients()
        frames = await server.advance(3600)   # one hour of pushes
        ...
        await server.flip_bits()               # the next frame gets a flipped bit

Profiles (``PROFILES``, ``find_profile``): Aidon 6515/6525/6534 NO and the
Swedish 27-item list, Kaifa MA105H2E/MA304H3E/MA304H4 NO and MA304H4 SE,
Kamstrup 1-phase/3-wire/4-wire NO and SE, L&G E350 (Embriq), P1 SE and DK,
encrypted Kamstrup DK and the Austrian M-Bus list (Kaifa MA309).
"""

from __future__ import annotations

from .sim.clock import Clock, FastClock, ManualClock, RealClock
from .sim.faults import (
    CORRUPTING,
    REPAIRABLE,
    Fault,
    FaultPlan,
    expand_crlf,
    flip_bits,
    parse_faults,
    truncate,
    uart_misread,
)
from .sim.meter import (
    MJ_PER_KWH,
    FaultEvent,
    Line,
    NullLine,
    SentFrame,
    SimulatedMeter,
    from_ms,
    mj_to_kwh,
    to_ms,
)
from .sim.physics import Household, Sample
from .sim.profiles import (
    DEFAULT_AUTH_KEY,
    DEFAULT_KEY,
    PROFILES,
    ListSchedule,
    MeterProfile,
    TimeStyle,
    find_profile,
)
from .sim.server import SimulatorServer, describe, parse_hostport

__all__ = [
    "CORRUPTING",
    "DEFAULT_AUTH_KEY",
    "DEFAULT_KEY",
    "MJ_PER_KWH",
    "PROFILES",
    "REPAIRABLE",
    "Clock",
    "FastClock",
    "Fault",
    "FaultEvent",
    "FaultPlan",
    "Household",
    "Line",
    "ListSchedule",
    "ManualClock",
    "MeterProfile",
    "NullLine",
    "RealClock",
    "Sample",
    "SentFrame",
    "SimulatedMeter",
    "SimulatorServer",
    "TimeStyle",
    "describe",
    "expand_crlf",
    "find_profile",
    "flip_bits",
    "from_ms",
    "mj_to_kwh",
    "parse_faults",
    "parse_hostport",
    "to_ms",
    "truncate",
    "uart_misread",
]
