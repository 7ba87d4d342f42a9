"""``SimulatedMeter``: a meter model that pushes real frames on its real cadence.

The meter is a pure, synchronous state machine driven by the time it is told:
``advance_to(when)`` (or ``advance(seconds)``) runs every push due until then
and returns what was sent, as ``SentFrame`` records also kept in ``sent``.
Nothing here sleeps or does I/O; ``SimulatorServer`` adds clocks and
transports, and a ``Line`` receives the bytes as they are sent.

Physics and accounting (why the numbers can be trusted by tests):

* The household (``physics.Household``) is stepped at every push; its state
  (``SentFrame.sample``) holds from that push until the next. Powers are whole
  watts, so energy is integrated **exactly** in integer millijoules
  (W x ms): ``SentFrame.energy_mj`` is the register at ``at``. For any two
  frames a and b, ``b.energy_mj[name] - a.energy_mj[name]`` equals the sum of
  ``power x (next.at - frame.at)`` over the frames between, with no rounding.
* Registers a list carries are that exact value floored to the layout's
  resolution (meters truncate), as ``encode.resolution`` states it.
* Lists with hourly registers (Norwegian list 3 / hourly list) carry the
  value latched when the meter's clock passed xx:00:00
  (``SentFrame.register_time``). Aidon stamps that list xx:00:00; Kaifa and
  Kamstrup stamp the send time (xx:00:10 / xx:00:05), as the captures do.
* The meter's clock is the true time plus an offset (changed by the
  ``CLOCK_GAP`` fault), shown per ``TimeStyle``: Norwegian meters local time
  without offset (with DST: 02:00 appears twice in October, ``fold`` marks
  the second), Swedish meters UTC+1 all year, Austrian meters with offset.

``SentFrame.reading`` is what a correct decoder must read from the clean
bytes (``encode.expected_reading``): values at the layout's resolution, the
identity and clock the frame carries. ``SentFrame.data`` is what went on the
line; when a fault changed it, ``corrupted`` is true, so a test can prove that
no corrupted frame ever became a value.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from types import MappingProxyType
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from .. import reading as r
from ..encode import Layout, Topology, carried_names, encode_reading, expected_reading, resolution
from ..reading import ListKind, Reading
from .faults import (
    CORRUPTING,
    REPAIRABLE,
    Fault,
    FaultPlan,
    expand_crlf,
    flip_bits,
    other_parity,
    truncate,
    uart_misread,
)
from .physics import Household, Sample
from .profiles import (
    DEFAULT_AUTH_KEY,
    DEFAULT_KEY,
    PROFILES,
    ListSchedule,
    MeterProfile,
    TimeStyle,
)

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MS: Final = 3_600_000
MJ_PER_KWH: Final = 3_600_000_000
"""Millijoules (W x ms) in one kWh; also mvar·s... per kvarh."""
_FOREVER: Final = 2**62
_CET: Final = timezone(timedelta(hours=1))

_ENERGY_OF_POWER: Final = {
    "active_power_import": r.ACTIVE_ENERGY_IMPORT,
    "active_power_export": r.ACTIVE_ENERGY_EXPORT,
    "reactive_power_import": r.REACTIVE_ENERGY_IMPORT,
    "reactive_power_export": r.REACTIVE_ENERGY_EXPORT,
    **{f"active_power_import_{p}": f"active_energy_import_{p}" for p in r.PHASES},
    **{f"active_power_export_{p}": f"active_energy_export_{p}" for p in r.PHASES},
}
_HARMLESS_TAIL: Final = {
    r.Protocol.HDLC: 1,
    r.Protocol.MBUS: 0,
    r.Protocol.P1: 2,
    r.Protocol.APDU: 0,
}
"""Trailing bytes a fault may not touch: damage there would not corrupt the frame."""
_DK_PHASE_ENERGY: Final = tuple(
    f"active_energy_{direction}_{p}" for direction in ("import", "export") for p in r.PHASES
)


def _rates(sample: Sample) -> list[tuple[str, int]]:
    """(register, W or var) pairs that grow while ``sample`` holds."""
    return [
        (_ENERGY_OF_POWER[name], watts)
        for name, watts in sample.powers().items()
        if watts and name in _ENERGY_OF_POWER
    ]


def to_ms(when: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (floor)."""
    if when.tzinfo is None:
        raise ValueError("simulator times must be timezone-aware")
    return (when - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """Return the aware UTC datetime of epoch milliseconds."""
    return EPOCH + timedelta(milliseconds=ms)


def mj_to_kwh(millijoules: int) -> Fraction:
    """Return an exact register value in kWh (or kvarh) from millijoules."""
    return Fraction(millijoules, MJ_PER_KWH)


class Line(Protocol):
    """Where the meter's bytes go; ``SimulatorServer`` implements it for TCP and ptys."""

    def write(self, data: bytes) -> None:
        """Send bytes now (never blocks)."""

    def hangup(self) -> None:
        """Drop connected clients (TCP); a serial line has none."""

    def unplug(self) -> None:
        """Make the device disappear (pty removed, TCP listener closed)."""

    def replug(self) -> None:
        """Bring the device back."""


class NullLine:
    """A line nobody listens to (the meter used on its own)."""

    def write(self, data: bytes) -> None:
        """Drop the bytes."""

    def hangup(self) -> None:
        """Nothing to hang up."""

    def unplug(self) -> None:
        """Nothing to unplug."""

    def replug(self) -> None:
        """Nothing to replug."""


@dataclass(frozen=True, slots=True)
class SentFrame:
    """One push (or burst of garbage) as the meter sent it.

    ``at`` is the true UTC time; ``meter_time`` the meter's clock then (in its
    ``TimeStyle``). ``kind``/``reading``/``sample`` are ``None`` for garbage.
    ``clean`` is the encoder's output, ``data`` what went on the line (empty
    while silent or unplugged). ``sample`` is the true state from ``at`` until
    the next push and ``energy_mj`` the exact registers at ``at``.
    ``register_time`` is the meter time the list's registers belong to
    (the latched hour for hourly lists, else the send time).
    """

    at: datetime
    meter_time: datetime
    kind: ListKind | None
    reading: Reading | None
    clean: bytes
    data: bytes
    faults: frozenset[Fault]
    sample: Sample | None
    energy_mj: Mapping[str, int]
    register_time: datetime | None = None
    frame_counter: int | None = None

    @property
    def is_garbage(self) -> bool:
        """Noise between frames, not a push."""
        return self.kind is None

    @property
    def corrupted(self) -> bool:
        """Bytes went on the line but not the encoder's (must never yield this reading)."""
        return bool(self.data) and self.data != self.clean and not self.is_garbage

    @property
    def repairable(self) -> bool:
        """Corrupted only in a way a decoder may undo (CRLF expansion)."""
        return self.corrupted and self.faults & CORRUPTING <= REPAIRABLE

    @property
    def intact(self) -> bool:
        """The clean frame went on the line unchanged."""
        return bool(self.data) and self.data == self.clean and not self.is_garbage

    @property
    def lost(self) -> bool:
        """Nothing went on the line (silence or unplugged)."""
        return not self.data

    def energy_kwh(self, name: str) -> Fraction:
        """Return the exact register ``name`` at ``at`` in kWh/kvarh."""
        return mj_to_kwh(self.energy_mj[name])


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A fault that started: when (true UTC), which, and a human detail."""

    at: datetime
    fault: Fault
    detail: str
    seconds: float = 0.0


class SimulatedMeter:
    """A meter of ``profile`` (a ``MeterProfile`` or a key of ``PROFILES``).

    ``start`` (aware; default now) is when it powers up: pushes come strictly
    after it. ``seed`` fixes the household, the meter id and the fault draws.
    ``prosumer`` adds solar panels. ``key``/``auth_key``/``system_title`` are
    used by encrypted profiles (defaults: ``DEFAULT_KEY``/``DEFAULT_AUTH_KEY``
    and the encoder's maker-prefix title). ``faults`` schedules random faults.
    ``lists`` limits the lists sent (e.g. no list 1 for a fast month); energy
    stays exact because power changes only at pushes that happen.
    ``log_limit`` bounds ``sent`` (``None``: keep everything). ``line``
    receives the bytes (default: nowhere).
    """

    def __init__(
        self,
        profile: MeterProfile | str = "aidon-6534-no",
        *,
        start: datetime | None = None,
        seed: int = 0,
        prosumer: bool = False,
        key: bytes | None = None,
        auth_key: bytes | None = None,
        system_title: bytes | None = None,
        meter_id: str | None = None,
        faults: FaultPlan | None = None,
        lists: Iterable[ListKind] | None = None,
        log_limit: int | None = 100_000,
        line: Line | None = None,
    ) -> None:
        self.profile = profile if isinstance(profile, MeterProfile) else PROFILES[profile]
        self.seed = seed
        self.prosumer = prosumer
        self.line: Line = line if line is not None else NullLine()
        self.fault_plan = faults
        prof = self.profile
        self.key = (key or DEFAULT_KEY) if prof.encrypted else key
        self.auth_key = (auth_key or DEFAULT_AUTH_KEY) if prof.encrypted else auth_key
        if prof.layout is Layout.OBIS_ARRAY_AT and auth_key is None:
            self.auth_key = None  # Netz NÖ/EVN: encryption only, no GAK
        self.system_title = system_title
        # simulation, not security: seeded generators make every run reproducible
        id_rng = random.Random(f"{seed}-id")  # noqa: S311
        self.meter_id = meter_id if meter_id is not None else self._make_id(id_rng)
        self._frame_counter = id_rng.randrange(1, 1_000_000)
        self._rng_faults = random.Random(f"{seed}-faults")  # noqa: S311
        self._zone = ZoneInfo(prof.timezone)
        wanted = frozenset(lists) if lists is not None else None
        self._schedule: tuple[ListSchedule, ...] = tuple(
            spec for spec in prof.schedule if wanted is None or spec.kind in wanted
        )
        if not self._schedule:
            raise ValueError(f"{prof.key} sends none of the lists asked for")
        self.household = Household(
            random.Random(f"{seed}-load"),  # noqa: S311
            phases=prof.phases,
            it_network=prof.topology is Topology.THREE_WIRE,
            prosumer=prosumer,
        )
        start_ms = to_ms(start if start is not None else datetime.now(UTC))
        self._t = start_ms
        self._offset = 0
        self._m_last = start_ms
        self._latch_m = start_ms - start_ms % HOUR_MS
        self._sent: deque[SentFrame] = deque(maxlen=log_limit)
        self._events: list[FaultEvent] = []
        # exact registers (millijoules) and the state that drives them
        self._energy = self._initial_energy(random.Random(f"{seed}-energy"))  # noqa: S311
        self._energy_t = start_ms
        self._latched = dict(self._energy)
        self._sample = self.household.step(start_ms / 1000, self._local(start_ms), 0.0)
        self._sample_t = start_ms
        self._rates = _rates(self._sample)
        # fault state
        self._silent_until = 0
        self._unplugged_until: int | None = None
        self._parity_until = 0
        self._crlf_until = 0
        self._pending_garbage: list[bytes] = []
        self._flips: deque[int] = deque()
        self._truncations = 0
        self._cut_next = False
        self._repeat_armed = False
        self._last_hourly: SentFrame | None = None

    # ------------------------------------------------------------------ identity

    def _make_id(self, rng: random.Random) -> str | None:
        prefix = self.profile.id_prefix
        if prefix is None:
            return None
        digits = "".join(str(rng.randrange(10)) for _ in range(self.profile.id_length))
        return (prefix + digits)[: self.profile.id_length]

    def _initial_energy(self, rng: random.Random) -> dict[str, int]:
        kwh = MJ_PER_KWH
        energy = {
            r.ACTIVE_ENERGY_IMPORT: rng.randrange(2_000, 90_000) * kwh + rng.randrange(kwh),
            r.ACTIVE_ENERGY_EXPORT: (rng.randrange(10, 9_000) * kwh + rng.randrange(kwh))
            if self.prosumer
            else 0,
            r.REACTIVE_ENERGY_IMPORT: rng.randrange(100, 9_000) * kwh + rng.randrange(kwh),
            r.REACTIVE_ENERGY_EXPORT: rng.randrange(100, 9_000) * kwh + rng.randrange(kwh),
        }
        for phase in r.PHASES[: self.profile.phases]:
            share = self.profile.phases
            energy[f"active_energy_import_{phase}"] = energy[r.ACTIVE_ENERGY_IMPORT] // share
            energy[f"active_energy_export_{phase}"] = energy[r.ACTIVE_ENERGY_EXPORT] // share
        return energy

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> datetime:
        """The true time the meter has been advanced to (aware UTC)."""
        return from_ms(self._t)

    @property
    def meter_now(self) -> datetime:
        """The meter's own clock now, as it states it (see ``TimeStyle``)."""
        return self._wall(self._t + self._offset)

    @property
    def clock_offset(self) -> timedelta:
        """How far the meter's clock is ahead of true time (``CLOCK_GAP`` faults)."""
        return timedelta(milliseconds=self._offset)

    def _local(self, true_ms: int) -> datetime:
        """Local wall clock of the household (people live by it), naive."""
        return from_ms(true_ms).astimezone(self._zone).replace(tzinfo=None)

    def _wall(self, meter_ms: int) -> datetime:
        utc = from_ms(meter_ms)
        style = self.profile.time_style
        if style is TimeStyle.LOCAL:
            return utc.astimezone(self._zone).replace(tzinfo=None)
        if style is TimeStyle.STANDARD:
            return utc.astimezone(_CET).replace(tzinfo=None)
        if style is TimeStyle.STANDARD_OFFSET:
            return utc.astimezone(_CET)
        local = utc.astimezone(self._zone)
        return local.astimezone(timezone(local.utcoffset() or timedelta(0)))

    # ------------------------------------------------------------------ log

    @property
    def sent(self) -> Sequence[SentFrame]:
        """Everything sent so far, oldest first (bounded by ``log_limit``)."""
        return self._sent

    @property
    def events(self) -> Sequence[FaultEvent]:
        """Every fault that started, oldest first."""
        return self._events

    def said_at(self, when: datetime) -> SentFrame | None:
        """Return the last push sent at or before ``when`` (garbage excluded), if still logged."""
        limit = to_ms(when)
        for frame in reversed(self._sent):
            if not frame.is_garbage and to_ms(frame.at) <= limit:
                return frame
        return None

    # ------------------------------------------------------------------ energy

    def _accumulate(self, until: int) -> None:
        elapsed = until - self._energy_t
        if elapsed <= 0:
            return
        energy = self._energy
        for name, watts in self._rates:
            energy[name] += watts * elapsed
        self._energy_t = until

    def energy_mj(self) -> dict[str, int]:
        """Return the exact registers now (millijoules; see ``mj_to_kwh``)."""
        self._accumulate(self._t)
        return dict(self._energy)

    @property
    def sample(self) -> Sample:
        """The household's state now."""
        return self._sample

    # ------------------------------------------------------------------ scheduling

    def _next_emission(self) -> tuple[int, int, ListSchedule]:
        best: tuple[int, ListSchedule] | None = None
        for spec in self._schedule:
            period = round(spec.period * 1000)
            offset = round(spec.offset * 1000)
            slot = ((self._m_last - offset) // period + 1) * period + offset
            if best is None or slot < best[0] or (slot == best[0] and spec.kind > best[1].kind):
                best = (slot, spec)
        if best is None:  # pragma: no cover - the constructor refuses an empty schedule
            raise RuntimeError("empty schedule")
        slot, spec = best
        return slot - self._offset, slot, spec

    def next_due(self) -> datetime:
        """When the meter next does something (a push, or an unplugged device returning)."""
        if self._pending_garbage:
            return self.now
        due = self._next_emission()[0]
        if self._unplugged_until is not None:
            due = min(due, self._unplugged_until)
        return from_ms(max(due, self._t))

    def advance(self, seconds: float) -> list[SentFrame]:
        """Run ``seconds`` of true time; return what was sent."""
        return self.advance_to(self.now + timedelta(seconds=seconds))

    def advance_to(self, when: datetime) -> list[SentFrame]:
        """Run every push due up to and including ``when``; return what was sent.

        Time never goes back: an earlier ``when`` sends only pending garbage.
        """
        target = to_ms(when)
        out: list[SentFrame] = []
        self._send_pending_garbage(out)
        while True:
            latch_t = self._latch_m + HOUR_MS - self._offset
            emit_t, emit_m, spec = self._next_emission()
            unplug_t = self._unplugged_until if self._unplugged_until is not None else _FOREVER
            due = min(latch_t, emit_t, unplug_t)
            if due > target:
                break
            due = max(due, self._t)
            self._t = due
            if latch_t <= emit_t and latch_t <= unplug_t:
                self._latch(due, self._latch_m + HOUR_MS)
            elif unplug_t <= emit_t:
                self._unplugged_until = None
                self.line.replug()
            else:
                self._emit(due, emit_m, spec, out)
        self._t = max(self._t, target)
        self._accumulate(self._t)
        return out

    def _latch(self, true_ms: int, meter_hour_ms: int) -> None:
        self._accumulate(true_ms)
        self._latched = dict(self._energy)
        self._latch_m = meter_hour_ms

    # ------------------------------------------------------------------ pushing

    def _values(self, spec: ListSchedule) -> dict[str, float]:
        prof = self.profile
        names = carried_names(prof.layout, spec.kind, prof.topology)
        truth = self._sample.values()
        registers = self._latched if spec.hourly_registers else self._energy
        extra = _DK_PHASE_ENERGY if prof.layout is Layout.KAMSTRUP_DK else ()
        values: dict[str, float] = {}
        for name in (*names, *extra):
            if name in truth:
                value = truth[name]
                if name.startswith("current") and not prof.signed_current:
                    value = abs(value)
                values[name] = value
            elif name in registers:
                decimals = resolution(prof.layout, name)
                step = 3 if decimals is None else decimals
                raw = registers[name] * 10**step // MJ_PER_KWH
                values[name] = raw / 10**step
        return values

    def _emit(self, true_ms: int, meter_ms: int, spec: ListSchedule, out: list[SentFrame]) -> None:
        prof = self.profile
        self._accumulate(true_ms)
        self._sample = self.household.step(
            true_ms / 1000, self._local(true_ms), (true_ms - self._sample_t) / 1000
        )
        self._sample_t = true_ms
        self._rates = _rates(self._sample)
        self._m_last = meter_ms
        meter_time = self._wall(meter_ms)
        stamp_ms = meter_ms - meter_ms % 1000
        if spec.stamp_hour:
            stamp_ms = meter_ms - meter_ms % HOUR_MS
        register_time: datetime | None = (
            self._wall(self._latch_m) if spec.hourly_registers else meter_time
        )
        counter: int | None = None
        faults: set[Fault] = set()
        if (
            spec.hourly_registers
            and spec.kind is ListKind.ENERGY
            and self._repeat_armed
            and self._last_hourly is not None
        ):
            self._repeat_armed = False
            previous = self._last_hourly
            clean, reading = previous.clean, previous.reading
            counter, register_time = previous.frame_counter, previous.register_time
            faults.add(Fault.REPEAT_HOURLY)
        else:
            plain = Reading(
                protocol=prof.protocol,
                manufacturer=prof.manufacturer,
                meter_id=self.meter_id,
                meter_type=prof.meter_type,
                list_version=None,
                meter_time=self._wall(stamp_ms),
                values=MappingProxyType(self._values(spec)),
            )
            if prof.encrypted:
                counter = self._frame_counter
                self._frame_counter += 1
                clean = encode_reading(
                    plain,
                    prof.layout,
                    key=self.key,
                    auth_key=self.auth_key,
                    system_title=self.system_title,
                    frame_counter=counter,
                )
            else:
                clean = encode_reading(plain, prof.layout)
            reading = replace(expected_reading(plain, prof.layout), frame=clean)
        self._roll_scheduled_fault(spec)
        data = self._damage(clean, true_ms, faults)
        frame = SentFrame(
            at=from_ms(true_ms),
            meter_time=meter_time,
            kind=spec.kind,
            reading=reading,
            clean=clean,
            data=data,
            faults=frozenset(faults),
            sample=self._sample,
            energy_mj=MappingProxyType(dict(self._energy)),
            register_time=register_time,
            frame_counter=counter,
        )
        if spec.hourly_registers and Fault.REPEAT_HOURLY not in faults:
            self._last_hourly = frame
        self._send_pending_garbage(out)
        self._record(frame, out)
        if Fault.DISCONNECT in faults:
            self.line.hangup()

    def _record(self, frame: SentFrame, out: list[SentFrame]) -> None:
        self._sent.append(frame)
        out.append(frame)
        if frame.data:
            self.line.write(frame.data)

    def _send_pending_garbage(self, out: list[SentFrame]) -> None:
        while self._pending_garbage:
            noise = self._pending_garbage.pop(0)
            frame = SentFrame(
                at=self.now,
                meter_time=self.meter_now,
                kind=None,
                reading=None,
                clean=b"",
                data=noise,
                faults=frozenset({Fault.GARBAGE}),
                sample=None,
                energy_mj=MappingProxyType({}),
            )
            self._record(frame, out)

    def _damage(self, clean: bytes, true_ms: int, faults: set[Fault]) -> bytes:
        """Apply the faults active for this frame; add the ones that changed it to ``faults``."""
        if true_ms < self._silent_until:
            faults.add(Fault.SILENCE)
            return b""
        if self._unplugged_until is not None:
            faults.add(Fault.UNPLUG)
            return b""
        rng = self._rng_faults
        data = clean
        tail = _HARMLESS_TAIL[self.profile.protocol]
        if self._flips:
            data = flip_bits(data, rng, self._flips.popleft(), protect_tail=tail)
            faults.add(Fault.BITFLIP)
        if self._truncations:
            self._truncations -= 1
            data = truncate(data, rng, protect_tail=tail)
            faults.add(Fault.TRUNCATE)
        if true_ms < self._parity_until:
            parity = self.profile.parity
            misread = uart_misread(data, parity, other_parity(parity))
            if misread != data:
                data = misread
                faults.add(Fault.PARITY)
        if true_ms < self._crlf_until:
            expanded = expand_crlf(data)
            if expanded != data:
                data = expanded
                faults.add(Fault.CRLF)
        if self._cut_next:
            self._cut_next = False
            data = truncate(data, rng, protect_tail=tail)
            faults.add(Fault.DISCONNECT)
        return data

    # ------------------------------------------------------------------ faults

    def _event(self, fault: Fault, detail: str, seconds: float = 0.0) -> None:
        self._events.append(FaultEvent(self.now, fault, detail, seconds))

    def _roll_scheduled_fault(self, spec: ListSchedule) -> None:
        plan = self.fault_plan
        if plan is None or not plan.faults:
            return
        rng = self._rng_faults
        if rng.random() >= plan.rate:
            return
        fault = rng.choice(sorted(plan.faults))
        if fault is Fault.GARBAGE:
            self.inject_garbage(rng.randrange(4, 65))
        elif fault is Fault.BITFLIP:
            self.flip_bits(bits=rng.randrange(1, 4))
        elif fault is Fault.TRUNCATE:
            self.truncate_next()
        elif fault is Fault.SILENCE:
            self.go_silent(rng.uniform(15.0, 90.0))
        elif fault is Fault.DISCONNECT:
            self.disconnect(mid_frame=rng.random() < 0.5)
        elif fault is Fault.PARITY:
            self.wrong_parity(rng.uniform(10.0, 60.0))
        elif fault is Fault.CRLF:
            self.expand_crlf(rng.uniform(30.0, 300.0))
        elif fault is Fault.REPEAT_HOURLY:
            self.repeat_hourly()
        elif fault is Fault.CLOCK_GAP:
            sign = 1 if rng.random() < 0.7 else -1
            self.clock_gap(sign * rng.uniform(2.0, 120.0))
        else:
            self.unplug(rng.uniform(3.0, 20.0))

    def inject_garbage(self, size: int = 32, data: bytes | None = None) -> None:
        """Send ``data`` (default: ``size`` random bytes) now, between frames.

        It goes out with the next ``advance``/``advance_to`` call (``advance(0)``
        sends it at once).
        """
        noise = data if data is not None else self._rng_faults.randbytes(size)
        self._pending_garbage.append(noise)
        self._event(Fault.GARBAGE, f"{len(noise)} bytes")

    def flip_bits(self, frames: int = 1, bits: int = 1) -> None:
        """Flip ``bits`` random bits in each of the next ``frames`` frames."""
        self._flips.extend([bits] * frames)
        self._event(Fault.BITFLIP, f"{bits} bit(s) in the next {frames} frame(s)")

    def truncate_next(self, frames: int = 1) -> None:
        """Cut each of the next ``frames`` frames short."""
        self._truncations += frames
        self._event(Fault.TRUNCATE, f"next {frames} frame(s)")

    def go_silent(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the meter keeps measuring)."""
        self._silent_until = max(self._silent_until, self._t + round(seconds * 1000))
        self._event(Fault.SILENCE, f"{seconds:.1f} s", seconds)

    def disconnect(self, *, mid_frame: bool = False) -> None:
        """Drop the TCP clients during the next frame (cut in two), or now if not ``mid_frame``."""
        self._event(Fault.DISCONNECT, "mid-frame" if mid_frame else "between frames")
        if mid_frame:
            self._cut_next = True
        else:
            self.line.hangup()

    def wrong_parity(self, seconds: float) -> None:
        """For ``seconds``, deliver bytes as a reader set to the other parity would see them."""
        self._parity_until = max(self._parity_until, self._t + round(seconds * 1000))
        wrong = other_parity(self.profile.parity)
        self._event(Fault.PARITY, f"read as 8{wrong}1 for {seconds:.1f} s", seconds)

    def expand_crlf(self, seconds: float | None = None) -> None:
        """Expand LF to CRLF (OSS-brikken) for ``seconds``, or until ``clear_faults``."""
        until = _FOREVER if seconds is None else self._t + round(seconds * 1000)
        self._crlf_until = max(self._crlf_until, until)
        self._event(Fault.CRLF, "until cleared" if seconds is None else f"{seconds:.1f} s",
                    seconds or 0.0)  # fmt: skip

    def repeat_hourly(self) -> None:
        """Make the next hourly list a copy of the previous one (the Aidon quirk)."""
        self._repeat_armed = True
        self._event(Fault.REPEAT_HOURLY, "next hourly list repeats the previous")

    def clock_gap(self, seconds: float) -> None:
        """Jump the meter's clock by ``seconds`` (negative: back); skipped pushes are not sent.

        Jumping forward over xx:00:00 latches the hourly registers at once; jumping
        back over it makes the meter latch (and send) that hour again, as a
        meter whose clock is set back would.
        """
        self._accumulate(self._t)
        before = self._t + self._offset
        self._offset += round(seconds * 1000)
        after = self._t + self._offset
        hour = after - after % HOUR_MS
        if after > before and hour > self._latch_m:
            self._latch(self._t, hour)
        elif after < before:
            self._latch_m = min(self._latch_m, hour)
        self._m_last = after
        self._event(Fault.CLOCK_GAP, f"meter clock {seconds:+.1f} s", seconds)

    def unplug(self, seconds: float) -> None:
        """Remove the device for ``seconds`` (the meter keeps sending into the void)."""
        until = self._t + round(seconds * 1000)
        already = self._unplugged_until is not None
        self._unplugged_until = max(self._unplugged_until or 0, until)
        self._event(Fault.UNPLUG, f"{seconds:.1f} s", seconds)
        if not already:
            self.line.unplug()

    def clear_faults(self) -> None:
        """End every fault period and cancel armed faults (an unplugged device returns)."""
        self._silent_until = self._parity_until = self._crlf_until = 0
        self._flips.clear()
        self._truncations = 0
        self._cut_next = False
        self._repeat_armed = False
        self._pending_garbage.clear()
        if self._unplugged_until is not None:
            self._unplugged_until = None
            self.line.replug()
