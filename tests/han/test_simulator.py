"""The simulated meter: cadence, content, exact energy, clocks, faults and transports."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from custom_components.hanport.han import reading as r
from custom_components.hanport.han.encode import Layout, resolution
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Reading
from custom_components.hanport.han.simulator import (
    CORRUPTING,
    DEFAULT_KEY,
    MJ_PER_KWH,
    PROFILES,
    FastClock,
    Fault,
    FaultPlan,
    Household,
    ManualClock,
    NullLine,
    RealClock,
    SentFrame,
    SimulatedMeter,
    SimulatorServer,
    describe,
    expand_crlf,
    find_profile,
    flip_bits,
    from_ms,
    mj_to_kwh,
    parse_faults,
    parse_hostport,
    to_ms,
    truncate,
    uart_misread,
)
from custom_components.hanport.han.stream import MeterStream

WINTER = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SUMMER_NOON = datetime(2026, 6, 20, 9, 0, tzinfo=UTC)  # 11:00 in Oslo
ENERGIES = (
    r.ACTIVE_ENERGY_IMPORT,
    r.ACTIVE_ENERGY_EXPORT,
    r.REACTIVE_ENERGY_IMPORT,
    r.REACTIVE_ENERGY_EXPORT,
)


def at(seconds: float, base: datetime = WINTER) -> datetime:
    return base + timedelta(seconds=seconds)


def stream_for(meter: SimulatedMeter) -> MeterStream:
    options = DecodeOptions(country=meter.profile.country, key=meter.key, auth_key=meter.auth_key)
    return MeterStream(options)


def same(a: Reading, b: Reading) -> bool:
    """Equal identity, clock and values (floats compared to the last bit of a decimal)."""
    if (a.meter_id, a.meter_type, a.manufacturer, a.list_version, a.meter_time) != (
        b.meter_id,
        b.meter_type,
        b.manufacturer,
        b.list_version,
        b.meter_time,
    ):
        return False
    if a.values.keys() != b.values.keys():
        return False
    return all(math.isclose(a.values[k], b.values[k], abs_tol=1e-9) for k in a.values)


def decode(meter: SimulatedMeter, frames: Iterable[SentFrame]) -> list[Reading]:
    stream = stream_for(meter)
    out: list[Reading] = []
    for frame in frames:
        out += stream.feed(frame.data)
    return out


def pushes(frames: Sequence[SentFrame]) -> list[SentFrame]:
    return [frame for frame in frames if not frame.is_garbage]


class RecordingLine:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def hangup(self) -> None:
        self.calls.append(("hangup", b""))

    def unplug(self) -> None:
        self.calls.append(("unplug", b""))

    def replug(self) -> None:
        self.calls.append(("replug", b""))


# ---------------------------------------------------------------- catalogue and round trip


@pytest.mark.parametrize("key", sorted(PROFILES))
def test_every_profile_round_trips_through_meter_stream(key: str) -> None:
    """Across an hour boundary every push decodes to exactly what the log says it sent."""
    meter = SimulatedMeter(key, start=at(-40, WINTER.replace(hour=13)), seed=5, prosumer=True)
    frames = meter.advance(60)
    kinds = {frame.kind for frame in frames}
    assert ListKind.ENERGY in kinds
    decoded = decode(meter, frames)
    assert len(decoded) == len(frames)
    for frame, reading in zip(frames, decoded, strict=True):
        assert frame.reading is not None
        assert same(frame.reading, reading), (frame.reading, reading)
        assert frame.reading.frame == frame.clean == frame.data
        assert frame.intact
        assert not frame.corrupted
        assert not frame.lost


def test_find_profile_by_vendor_model_country_phases() -> None:
    assert find_profile().key == "aidon-6515-no"
    assert find_profile(vendor="kamstrup", country="se", phases=1).key == "kamstrup-1p-se"
    assert find_profile(vendor="Kaifa", model="ma304h3e").key == "kaifa-ma304h3e-no"
    assert find_profile(model="6841121").key == "kamstrup-3w-no"  # matches the model
    assert find_profile(model="6841131BN245").key == "kamstrup-4w-se"  # or the meter type
    assert find_profile(vendor="L&G").key == "lg-e350-no"
    assert find_profile(vendor="p1", country="DK").key == "p1-dk"
    assert find_profile(key="kamstrup-dk").encrypted
    with pytest.raises(LookupError, match="vendor=kaifa, country=DK"):
        find_profile(vendor="kaifa", country="DK")
    with pytest.raises(LookupError, match="no simulated meter 'nope'"):
        find_profile(key="nope")


def test_profile_properties() -> None:
    aidon = PROFILES["aidon-6525-no"]
    assert (aidon.phases, aidon.serial, aidon.protocol) == (3, "2400 8E1", r.Protocol.HDLC)
    assert PROFILES["kamstrup-1p-no"].phases == 1
    assert PROFILES["kamstrup-1p-no"].serial == "2400 8N1"
    assert PROFILES["p1-se"].protocol is r.Protocol.P1
    assert PROFILES["kaifa-ma309-at"].protocol is r.Protocol.MBUS


def test_profile_or_key_and_bad_lists() -> None:
    meter = SimulatedMeter(PROFILES["kaifa-ma105h2e-no"], start=WINTER)
    assert meter.profile.key == "kaifa-ma105h2e-no"
    with pytest.raises(ValueError, match="none of the lists"):
        SimulatedMeter("kamstrup-3w-no", start=WINTER, lists=[ListKind.POWER])
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulatedMeter(start=datetime(2026, 1, 1))


def test_default_start_is_now() -> None:
    before = datetime.now(UTC)
    meter = SimulatedMeter()
    assert before - timedelta(seconds=1) <= meter.now <= datetime.now(UTC)


def test_identity_is_seeded_and_given_ids_win() -> None:
    one = SimulatedMeter("aidon-6534-no", start=WINTER, seed=1)
    again = SimulatedMeter("aidon-6534-no", start=WINTER, seed=1)
    other = SimulatedMeter("aidon-6534-no", start=WINTER, seed=2)
    assert one.meter_id == again.meter_id != other.meter_id
    assert one.meter_id is not None
    assert one.meter_id.startswith("7359992")
    assert len(one.meter_id) == 16
    assert SimulatedMeter("p1-se", start=WINTER).meter_id is None
    dk = SimulatedMeter("kamstrup-dk", start=WINTER)
    assert dk.meter_id is not None
    assert len(dk.meter_id) == 8
    assert int(dk.meter_id) < 2**32
    assert SimulatedMeter(start=WINTER, meter_id="1234").meter_id == "1234"


def test_same_seed_same_bytes_other_seed_other_power() -> None:
    def run(seed: int) -> list[bytes]:
        meter = SimulatedMeter("kaifa-ma304h4-no", start=WINTER, seed=seed, prosumer=True)
        return [frame.data for frame in meter.advance(120)]

    assert run(3) == run(3)
    assert run(3) != run(4)


# ---------------------------------------------------------------- cadence


def times(frames: Iterable[SentFrame], kind: ListKind) -> list[float]:
    return [(f.at - WINTER).total_seconds() for f in frames if f.kind is kind]


def test_aidon_cadence_list1_list2_and_hourly_at_ten_past() -> None:
    meter = SimulatedMeter("aidon-6534-no", start=WINTER)
    frames = meter.advance(3600 + 20)
    assert times(frames, ListKind.POWER)[:5] == [2.5, 5.0, 7.5, 12.5, 15.0]
    # list 3 replaces list 2 at xx:00:10 and list 1 never shares a slot with them
    assert times(frames, ListKind.STATUS)[:3] == [20.0, 30.0, 40.0]
    assert times(frames, ListKind.ENERGY) == [10.0, 3610.0]
    assert 3610.0 not in times(frames, ListKind.STATUS)
    stamps = [to_ms(f.at) for f in frames]
    assert len(stamps) == len(set(stamps))
    hourly = [f for f in frames if f.kind is ListKind.ENERGY][-1]
    assert hourly.reading is not None
    # Oslo local time, no offset; stamped with the hour the registers belong to
    assert hourly.reading.meter_time == datetime(2026, 1, 5, 14, 0)
    assert hourly.meter_time == datetime(2026, 1, 5, 14, 0, 10)
    assert hourly.register_time == datetime(2026, 1, 5, 14, 0)
    # lists 1 and 2 carry no clock and list 1 carries no identity
    first = frames[0].reading
    assert first is not None
    assert first.meter_time is None
    assert first.meter_id is None
    assert set(first.values) == {r.ACTIVE_POWER_IMPORT}


def test_kaifa_cadence_and_send_time_stamps() -> None:
    meter = SimulatedMeter("kaifa-ma304h3e-no", start=WINTER)
    frames = meter.advance(3600 + 10)
    assert times(frames, ListKind.POWER)[:5] == [2.0, 4.0, 6.0, 8.0, 12.0]
    assert times(frames, ListKind.STATUS)[:2] == [20.0, 30.0]
    hourly = [f for f in frames if f.kind is ListKind.ENERGY]
    assert times(hourly, ListKind.ENERGY) == [10.0, 3610.0]
    assert hourly[1].reading is not None
    assert hourly[1].reading.meter_time == datetime(2026, 1, 5, 14, 0, 10)
    assert hourly[1].register_time == datetime(2026, 1, 5, 14, 0)
    status = next(f for f in frames if f.kind is ListKind.STATUS).reading
    assert status is not None
    assert status.list_kind is ListKind.STATUS
    assert "voltage_l2" not in status.values  # Kaifa IT sends UL2 as 0: not a value


def test_kamstrup_cadence_ten_seconds_and_hourly_at_five_past() -> None:
    meter = SimulatedMeter("kamstrup-4w-no", start=WINTER)
    frames = meter.advance(3600 + 10)
    assert times(frames, ListKind.POWER) == []
    assert times(frames, ListKind.STATUS)[:3] == [10.0, 20.0, 30.0]
    assert times(frames, ListKind.ENERGY) == [5.0, 3605.0]
    assert 3600.0 in times(frames, ListKind.STATUS)
    assert 3610.0 in times(frames, ListKind.STATUS)


@pytest.mark.parametrize(
    ("key", "period"), [("p1-se", 10.0), ("aidon-6534-se", 10.0), ("kaifa-ma309-at", 5.0)]
)
def test_full_lists_on_a_fixed_period(key: str, period: float) -> None:
    meter = SimulatedMeter(key, start=WINTER)
    frames = meter.advance(60)
    assert times(frames, ListKind.ENERGY) == [period * n for n in range(1, int(60 / period) + 1)]


def test_lists_can_be_limited_and_energy_stays_exact() -> None:
    meter = SimulatedMeter("aidon-6534-no", start=WINTER, lists=[ListKind.ENERGY])
    frames = meter.advance(3 * 3600)
    assert [f.kind for f in frames] == [ListKind.ENERGY] * 3
    assert_energy_is_integral_of_power(frames)


def test_pushes_come_strictly_after_start_and_time_never_goes_back() -> None:
    meter = SimulatedMeter("p1-se", start=WINTER)
    assert meter.advance(0) == []
    assert meter.next_due() == at(10)
    assert len(meter.advance_to(at(10))) == 1
    assert meter.advance_to(at(5)) == []
    assert meter.now == at(10)


# ---------------------------------------------------------------- time styles and DST


def test_meter_clock_styles() -> None:
    summer = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    cases = {
        "aidon-6534-no": datetime(2026, 7, 1, 12, 0, 10),
        "p1-se": datetime(2026, 7, 1, 11, 0, 10),
        "kaifa-ma304h4-se": datetime(2026, 7, 1, 11, 0, 10, tzinfo=timezone(timedelta(hours=1))),
        "kaifa-ma309-at": datetime(2026, 7, 1, 12, 0, 10, tzinfo=timezone(timedelta(hours=2))),
        "p1-dk": datetime(2026, 7, 1, 12, 0, 10),
    }
    for key, expected in cases.items():
        meter = SimulatedMeter(key, start=summer)
        meter.advance(10)
        assert meter.meter_now == expected, key
        assert meter.meter_now.utcoffset() == expected.utcoffset()


def hourly_stamps(key: str, local_midnight_utc: datetime, hours: int) -> list[datetime]:
    meter = SimulatedMeter(key, start=local_midnight_utc, lists=[ListKind.ENERGY])
    frames = meter.advance(hours * 3600)
    return [f.reading.meter_time for f in frames if f.reading and f.reading.meter_time]


def test_spring_forward_day_has_23_hourly_lists_without_0200() -> None:
    # from just after local midnight: the lists of 01:00 ... 00:00 close the day's hours
    stamps = hourly_stamps("aidon-6534-no", datetime(2026, 3, 28, 23, 0, 30, tzinfo=UTC), 23)
    assert len(stamps) == 23
    assert [s.hour for s in stamps[:3]] == [1, 3, 4]
    assert stamps[-1] == datetime(2026, 3, 30, 0, 0)


def test_fall_back_day_has_25_hourly_lists_with_0200_twice() -> None:
    stamps = hourly_stamps("kamstrup-3w-no", datetime(2026, 10, 24, 22, 0, 30, tzinfo=UTC), 25)
    assert len(stamps) == 25
    assert [s.hour for s in stamps[:4]] == [1, 2, 2, 3]
    meter = SimulatedMeter(
        "aidon-6534-no", start=datetime(2026, 10, 24, 22, 0, tzinfo=UTC), lists=[ListKind.ENERGY]
    )
    meter.advance(3 * 3600 + 20)
    latched = [f.register_time for f in meter.sent if f.kind is ListKind.ENERGY]
    assert [t.hour for t in latched if t is not None] == [0, 1, 2, 2]
    assert [t.fold for t in latched if t is not None] == [0, 0, 0, 1]


# ---------------------------------------------------------------- energy


def assert_energy_is_integral_of_power(frames: Sequence[SentFrame]) -> None:
    pushed = pushes(frames)
    for before, after in itertools.pairwise(pushed):
        assert before.sample is not None
        elapsed = to_ms(after.at) - to_ms(before.at)
        powers = before.sample.powers()
        for name in ENERGIES:
            power = name.replace("energy", "power")
            gained = after.energy_mj[name] - before.energy_mj[name]
            assert gained == powers[power] * elapsed, name


def floor_to(millijoules: int, decimals: int) -> float:
    scale: int = 10**decimals
    return float(millijoules * scale // MJ_PER_KWH) / scale


def test_registers_rise_exactly_as_the_integral_of_power() -> None:
    evening = datetime(2026, 6, 20, 17, 0, tzinfo=UTC)  # 19:00 in Oslo: the sun sets
    meter = SimulatedMeter("aidon-6525-no", start=evening, seed=3, prosumer=True)
    frames = meter.advance(2 * 3600 + 15)
    assert_energy_is_integral_of_power(frames)
    # the meter both imported and exported, never both at once
    samples = [f.sample for f in frames if f.sample is not None]
    assert any(s.net_active > 0 for s in samples)
    assert any(s.net_active < 0 for s in samples)
    for sample in samples:
        powers = sample.powers()
        assert powers[r.ACTIVE_POWER_IMPORT] * powers[r.ACTIVE_POWER_EXPORT] == 0
        assert powers[r.REACTIVE_POWER_IMPORT] * powers[r.REACTIVE_POWER_EXPORT] == 0
    # the hourly list carries the registers latched at xx:00:00, floored to 10 Wh
    by_time = {f.at: f for f in frames}
    hourlies = [f for f in frames if f.kind is ListKind.ENERGY][1:]  # the first hour began at start
    assert len(hourlies) == 2
    for hourly in hourlies:
        boundary = by_time[hourly.at - timedelta(seconds=10)]  # the list 2 at xx:00:00
        assert hourly.reading is not None
        for name in ENERGIES:
            decimals = resolution(Layout.AIDON_NO, name)
            assert decimals == 2
            expected = floor_to(boundary.energy_mj[name], decimals)
            assert hourly.reading.values[name] == pytest.approx(expected, abs=1e-9)
        assert hourly.energy_mj != boundary.energy_mj  # the registers kept rising after


def test_live_registers_and_per_phase_energy() -> None:
    meter = SimulatedMeter("kamstrup-dk", start=SUMMER_NOON, seed=2, prosumer=True)
    frames = meter.advance(120)
    for frame in frames:
        assert frame.reading is not None
        for name in ENERGIES:
            expected = floor_to(frame.energy_mj[name], 3)
            assert frame.reading.values[name] == pytest.approx(expected, abs=1e-9)
    first, last = frames[0], frames[-1]
    total = sum(
        last.energy_mj[f"active_energy_{d}_{p}"] - first.energy_mj[f"active_energy_{d}_{p}"]
        for p in r.PHASES
        for d in ("import", "export")
    )
    assert total > 0
    assert first.energy_kwh(r.ACTIVE_ENERGY_IMPORT) == mj_to_kwh(
        first.energy_mj[r.ACTIVE_ENERGY_IMPORT]
    )


def test_energy_now_and_sample_now() -> None:
    meter = SimulatedMeter("p1-se", start=WINTER)
    start = meter.energy_mj()
    meter.advance(5)  # no push yet: the initial state keeps integrating
    gained = meter.energy_mj()[r.ACTIVE_ENERGY_IMPORT] - start[r.ACTIVE_ENERGY_IMPORT]
    assert gained == meter.sample.powers()[r.ACTIVE_POWER_IMPORT] * 5000
    assert meter.energy_mj()[r.ACTIVE_ENERGY_EXPORT] == 0  # not a prosumer


def test_said_at() -> None:
    meter = SimulatedMeter("p1-se", start=WINTER)
    meter.inject_garbage(4)
    frames = meter.advance(30)
    assert meter.said_at(at(5)) is None
    assert meter.said_at(at(19.9)) is frames[1]  # frames[0] is the garbage
    assert meter.said_at(at(25)) is frames[2]
    assert meter.said_at(at(1000)) is frames[-1]


def test_log_limit_bounds_the_log() -> None:
    meter = SimulatedMeter("p1-se", start=WINTER, log_limit=3)
    frames = meter.advance(100)
    assert len(frames) == 10
    assert list(meter.sent) == frames[-3:]


# ---------------------------------------------------------------- household physics


def test_household_currents_follow_power_and_voltage() -> None:
    tn = Household(random.Random(1), phases=3, it_network=False, prosumer=False)
    it = Household(random.Random(1), phases=3, it_network=True, prosumer=False)
    local = datetime(2026, 1, 5, 18, 0)
    for household, factor in ((tn, 1.0), (it, math.sqrt(3))):
        sample = household.step(0.0, local, 10.0)
        for k in range(3):
            apparent = math.hypot(sample.active[k], sample.reactive[k])
            assert abs(sample.current[k]) == pytest.approx(apparent * factor / sample.voltage[k])
        values = sample.values()
        assert 0.0 < values[r.POWER_FACTOR] <= 1.0
        assert 200 < values["voltage_l1"] < 260


def test_household_daily_shape_solar_and_appliances() -> None:
    rng = random.Random(4)
    home = Household(rng, phases=1, it_network=False, prosumer=True)
    assert 4000 <= home.solar_peak_watts <= 10000
    night, noon = [], []
    day = datetime(2026, 6, 21)
    clock = 0.0
    for minute in range(0, 24 * 60, 2):
        local = day + timedelta(minutes=minute)
        clock += 120
        sample = home.step(clock, local, 120.0)
        if 11 <= local.hour < 14:
            noon.append(sample.net_active)
        elif local.hour < 3:
            night.append(sample.net_active)
    assert min(noon) < 0  # exporting at midday in June
    assert all(p > 0 for p in night)  # only load at night
    # a summer midnight: no sun, no export; and a switched-on load shows as a step
    assert home.step(clock + 1, day.replace(hour=23), 1.0).net_active > 0
    zero = Household(random.Random(9), phases=3, it_network=False, prosumer=False)
    assert zero.solar_peak_watts == 0
    sample = zero.step(0.0, day, 0.0)
    assert sample.values()["power_factor_l3"] <= 1.0


def test_power_factor_of_nothing_is_one() -> None:
    from custom_components.hanport.han.sim.physics import Sample

    sample = Sample((0,), (0,), (230.0,), (0.0,))
    assert sample.values()[r.POWER_FACTOR] == 1.0


def test_signed_currents_only_where_the_meter_sends_them() -> None:
    def currents(key: str) -> list[float]:
        meter = SimulatedMeter(key, start=SUMMER_NOON, seed=11, prosumer=True)
        return [
            v
            for f in meter.advance(600)
            if f.reading
            for k, v in f.reading.values.items()
            if k.startswith("current")
        ]

    assert min(currents("aidon-6534-no")) < 0  # Aidon: int16, negative when exporting
    assert min(currents("kamstrup-4w-no")) >= 0  # Kamstrup: unsigned


# ---------------------------------------------------------------- fault transformations


def test_parse_faults_and_plan() -> None:
    assert parse_faults("garbage, bitflip,,repeat-hourly") == {
        Fault.GARBAGE,
        Fault.BITFLIP,
        Fault.REPEAT_HOURLY,
    }
    assert parse_faults("ALL") == frozenset(Fault)
    with pytest.raises(ValueError, match="unknown fault 'fire'"):
        parse_faults("garbage,fire")
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultPlan(frozenset({Fault.GARBAGE}), 1.5)


def test_uart_misread() -> None:
    data = bytes(range(256))
    assert uart_misread(data, "E", "E") == data
    assert uart_misread(data, "N", "N") == data
    as_8n1 = uart_misread(data, "E", "N")
    # 8E1 read as 8N1: the parity bit sits where the stop bit should be
    assert as_8n1 == bytes(b if b.bit_count() % 2 else 0 for b in data)
    assert uart_misread(data, "N", "E") != data  # character sync is lost
    assert uart_misread(b"", "E", "N") == b""


def test_byte_faults() -> None:
    rng = random.Random(0)
    frame = b"/ABC5\r\n\r\n1-0:1.8.0(1*kWh)\r\n!1234\r\n"
    for _ in range(200):
        flipped = flip_bits(frame, rng, 3, protect_tail=2)
        assert flipped != frame
        assert flipped.endswith(b"\r\n")
        assert sum((a ^ b).bit_count() for a, b in zip(frame, flipped, strict=True)) == 3
        cut = truncate(frame, rng, protect_tail=2)
        assert 1 <= len(cut) <= len(frame) - 3
    assert truncate(b"\x7e", rng) == b""
    assert truncate(b"ab", rng, protect_tail=1) == b"a"
    assert expand_crlf(b"a\nb\r\n") == b"a\r\nb\r\r\n"
    assert flip_bits(b"", rng, 1) == b""


# ---------------------------------------------------------------- faults in the meter


def run_with(key: str, fault: Fault, seconds: float = 600.0, seed: int = 3) -> list[SentFrame]:
    meter = SimulatedMeter(
        key, start=WINTER, seed=seed, faults=FaultPlan(frozenset({fault}), 0.3), log_limit=None
    )
    frames = meter.advance(seconds)
    assert any(fault is event.fault for event in meter.events)
    decoded = decode(meter, frames)
    intact = [f.reading for f in pushes(frames) if f.intact]
    assert len(decoded) == len(intact)
    for got, expected in zip(decoded, intact, strict=True):
        assert expected is not None
        assert same(got, expected)
    return frames


FAULT_KEYS = ("aidon-6534-no", "kaifa-ma105h2e-no", "kamstrup-3w-no", "p1-se", "kaifa-ma309-at")


@pytest.mark.parametrize("key", FAULT_KEYS)
@pytest.mark.parametrize(
    "fault", [Fault.BITFLIP, Fault.TRUNCATE, Fault.DISCONNECT, Fault.PARITY, Fault.GARBAGE]
)
def test_corrupted_frames_never_become_readings(key: str, fault: Fault) -> None:
    """Every intact push decodes, in order; no corrupted push yields anything."""
    frames = run_with(key, fault)
    damaged = [f for f in frames if fault in f.faults]
    assert damaged
    if fault is Fault.GARBAGE:
        assert all(f.is_garbage and f.data and not f.corrupted for f in damaged)
    else:
        assert all(f.corrupted and not f.repairable and fault in CORRUPTING for f in damaged)


def test_encrypted_meter_faults_are_rejected() -> None:
    run_with("kamstrup-dk", Fault.BITFLIP, seconds=300)


def test_crlf_expansion_is_repaired_or_rejected_never_misread() -> None:
    meter = SimulatedMeter("aidon-6525-no", start=WINTER, seed=8)
    meter.expand_crlf()
    frames = meter.advance(3600 + 20)
    expanded = [f for f in frames if Fault.CRLF in f.faults]
    assert expanded
    assert all(f.repairable and f.data == expand_crlf(f.clean) for f in expanded)
    decoded = decode(meter, frames)
    expected = [f.reading for f in frames if f.intact or f.repairable]
    assert len(decoded) == len(expected)  # the stream repairs OSS-brikken's damage
    assert all(same(a, b) for a, b in zip(decoded, expected, strict=True) if b is not None)
    meter.clear_faults()
    assert all(f.intact for f in meter.advance(20))


def test_silence_keeps_measuring_but_sends_nothing() -> None:
    line = RecordingLine()
    meter = SimulatedMeter("p1-se", start=WINTER, line=line)
    meter.go_silent(35)
    frames = meter.advance(60)
    assert [f.lost for f in frames] == [True, True, True, False, False, False]
    assert all(Fault.SILENCE in f.faults for f in frames[:3])
    assert [call for call, _ in line.calls] == ["write"] * 3
    assert_energy_is_integral_of_power(frames)
    assert meter.events[0].fault is Fault.SILENCE
    assert meter.events[0].seconds == 35


def test_unplug_loses_frames_and_replugs_on_time() -> None:
    line = RecordingLine()
    meter = SimulatedMeter("p1-dk", start=WINTER, line=line)
    meter.unplug(25)
    meter.unplug(5)  # already out: extends nothing, no second unplug call
    assert meter.next_due() == at(10)
    frames = meter.advance(40)
    assert [Fault.UNPLUG in f.faults for f in frames] == [True, True, False, False]
    assert [call for call, _ in line.calls] == ["unplug", "replug", "write", "write"]
    meter.unplug(100)
    meter.clear_faults()
    assert line.calls[-2:] == [("unplug", b""), ("replug", b"")]


def test_disconnect_now_or_mid_frame() -> None:
    line = RecordingLine()
    meter = SimulatedMeter("aidon-6534-no", start=WINTER, line=line)
    meter.disconnect(mid_frame=False)
    assert line.calls == [("hangup", b"")]
    meter.disconnect(mid_frame=True)
    frames = meter.advance(2.5)
    assert frames[0].corrupted
    assert Fault.DISCONNECT in frames[0].faults
    assert line.calls[1:] == [("write", frames[0].data), ("hangup", b"")]
    assert len(frames[0].data) < len(frames[0].clean) - 1


def test_repeated_hourly_list_is_valid_but_stale() -> None:
    meter = SimulatedMeter("aidon-6534-no", start=WINTER, lists=[ListKind.ENERGY])
    first = meter.advance(3600 + 10)[-1]
    meter.repeat_hourly()
    repeat = meter.advance(3600)[-1]
    assert repeat.faults == {Fault.REPEAT_HOURLY}
    assert repeat.data == first.clean
    assert repeat.intact
    assert not repeat.corrupted
    assert repeat.reading is first.reading
    assert repeat.register_time == first.register_time
    assert repeat.energy_mj != first.energy_mj  # the true registers moved on
    fresh = meter.advance(3600)[-1]
    assert fresh.faults == set()
    assert fresh.reading is not None
    assert first.reading is not None
    assert (
        fresh.reading.values[r.ACTIVE_ENERGY_IMPORT] > first.reading.values[r.ACTIVE_ENERGY_IMPORT]
    )
    assert decode(meter, [first, repeat])[1].values == first.reading.values


def test_repeat_needs_a_previous_hourly_list() -> None:
    meter = SimulatedMeter("aidon-6534-no", start=WINTER, lists=[ListKind.ENERGY])
    meter.repeat_hourly()
    frame = meter.advance(20)[-1]
    assert frame.faults == set()


def test_clock_gap_forward_skips_pushes_and_latches_the_hour() -> None:
    meter = SimulatedMeter("aidon-6534-no", start=at(3600 - 30))
    meter.advance(5)
    meter.clock_gap(60)  # the meter clock jumps from 12:59:35 to 13:00:35 UTC
    assert meter.clock_offset == timedelta(seconds=60)
    frames = meter.advance(45)
    stamps = [(f.meter_time - datetime(2026, 1, 5, 14, 0)).total_seconds() for f in frames]
    assert stamps[0] == 37.5  # no catch-up burst: the next slot after the jump
    energy = [f for f in frames if f.kind is ListKind.ENERGY]
    assert len(energy) == 0  # 14:00:10 local was jumped over
    frames = meter.advance(3600)
    hourly = next(f for f in frames if f.kind is ListKind.ENERGY)
    assert hourly.reading is not None
    assert hourly.reading.meter_time == datetime(2026, 1, 5, 15, 0)
    assert meter.events[-1].fault is Fault.CLOCK_GAP


def test_clock_gap_back_over_the_hour_latches_it_again() -> None:
    meter = SimulatedMeter("kamstrup-3w-no", start=at(3600 - 20))
    first = [f for f in meter.advance(40) if f.kind is ListKind.ENERGY]
    meter.clock_gap(-60)
    again = [f for f in meter.advance(60) if f.kind is ListKind.ENERGY]
    assert len(first) == len(again) == 1
    assert first[0].register_time == again[0].register_time
    assert first[0].reading is not None
    assert again[0].reading is not None
    assert again[0].energy_mj[r.ACTIVE_ENERGY_IMPORT] > first[0].energy_mj[r.ACTIVE_ENERGY_IMPORT]


def test_on_demand_faults_and_their_events() -> None:
    meter = SimulatedMeter("aidon-6534-no", start=WINTER)
    meter.inject_garbage(data=b"\x00\x7e\xa0")
    meter.flip_bits(frames=2, bits=2)
    meter.truncate_next()
    meter.wrong_parity(3)
    meter.expand_crlf(1)
    frames = meter.advance(7.5)
    assert frames[0].is_garbage
    assert frames[0].data == b"\x00\x7e\xa0"
    assert frames[0].meter_time == datetime(2026, 1, 5, 13, 0)
    assert frames[1].faults >= {Fault.BITFLIP, Fault.TRUNCATE, Fault.PARITY}
    assert Fault.BITFLIP in frames[2].faults
    assert Fault.PARITY not in frames[2].faults
    assert frames[3].intact
    assert [e.fault for e in meter.events] == [
        Fault.GARBAGE,
        Fault.BITFLIP,
        Fault.TRUNCATE,
        Fault.PARITY,
        Fault.CRLF,
    ]
    assert meter.next_due() == at(10)
    meter.inject_garbage()
    assert meter.next_due() == meter.now
    meter.clear_faults()
    assert meter.advance(0) == []


def test_scheduled_faults_are_seeded_and_keep_the_power_curve() -> None:
    plan = FaultPlan(frozenset(Fault), 0.3)
    one = SimulatedMeter("kaifa-ma304h4-no", start=WINTER, seed=6, faults=plan)
    two = SimulatedMeter("kaifa-ma304h4-no", start=WINTER, seed=6, faults=plan)
    clean = SimulatedMeter("kaifa-ma304h4-no", start=WINTER, seed=6)
    a, b = one.advance(3600), two.advance(3600)
    assert [f.data for f in a] == [f.data for f in b]
    assert {e.fault for e in one.events} == set(Fault)
    # faults draw from their own random stream: the household is the same until the
    # first clock jump moves the pushes (and so the instants the household is stepped)
    jump = min(e.at for e in one.events if e.fault is Fault.CLOCK_GAP)
    reference = {f.at: f.sample for f in clean.advance(3600)}
    before = [f for f in pushes(a) if f.at <= jump]
    assert len(before) > 10
    assert all(reference[f.at] == f.sample for f in before)
    assert SimulatedMeter(start=WINTER, faults=FaultPlan(frozenset(), 1.0)).advance(10)


def test_null_line_accepts_everything() -> None:
    line = NullLine()
    line.write(b"x")
    line.hangup()
    line.unplug()
    line.replug()


def test_time_helpers() -> None:
    assert from_ms(to_ms(WINTER)) == WINTER
    with pytest.raises(ValueError, match="timezone-aware"):
        to_ms(datetime(2026, 1, 1))
    assert mj_to_kwh(MJ_PER_KWH) == 1


def test_encrypted_defaults() -> None:
    dk = SimulatedMeter("kamstrup-dk", start=WINTER)
    assert dk.key == DEFAULT_KEY
    assert dk.auth_key is not None
    at_meter = SimulatedMeter("kaifa-ma309-at", start=WINTER, key=b"k" * 16)
    assert at_meter.key == b"k" * 16
    assert at_meter.auth_key is None
    counters = [f.frame_counter or 0 for f in dk.advance(30)]
    assert counters[0] > 0
    assert counters == [counters[0], counters[0] + 1, counters[0] + 2]
    assert SimulatedMeter("aidon-6534-no", start=WINTER).key is None


# ---------------------------------------------------------------- clocks


async def test_manual_clock_wakes_sleepers() -> None:
    clock = ManualClock(WINTER)
    woke: list[datetime] = []

    async def sleeper() -> None:
        await clock.sleep(10)
        woke.append(clock.now())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    clock.advance(5)
    await asyncio.sleep(0)
    assert not woke
    clock.advance(timedelta(seconds=5))
    await task
    assert woke == [at(10)]
    await clock.sleep_until(at(1))  # the past returns at once
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(WINTER)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))


async def test_fast_and_real_clocks() -> None:
    fast = FastClock(3600.0, WINTER)
    assert fast.speed == 3600.0
    await fast.sleep(36)  # 10 ms of real time
    assert fast.now() >= at(36)
    await fast.sleep_until(WINTER)
    with pytest.raises(ValueError, match="positive"):
        FastClock(0)
    assert abs((FastClock(2.0).now() - datetime.now(UTC)).total_seconds()) < 1
    real = RealClock()
    before = real.now()
    await real.sleep(0.01)
    assert real.now() > before
    await real.sleep_until(before)


# ---------------------------------------------------------------- server


def test_parse_hostport_and_describe() -> None:
    assert parse_hostport("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_hostport("[::1]:3001") == ("::1", 3001)
    for bad in ("3001", ":3001", "host:", "host:x", "host:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_hostport(bad)
    meter = SimulatedMeter("aidon-6534-no", start=WINTER)
    meter.inject_garbage(3)
    meter.flip_bits()
    frames = meter.advance(3610)
    assert describe(frames[0]) == "garbage 3 B [garbage]"
    assert describe(frames[1]).startswith("L1 44/44 B P+=")
    assert describe(frames[1]).endswith("[bitflip]")
    assert "clock 2026-01-05T14:00:00 " in describe(frames[-1])
    assert "A+=" in describe(frames[-1])
    with pytest.raises(ValueError, match=r"tcp=\.\.\., pty"):
        SimulatorServer(meter)
    server = SimulatorServer(meter, tcp=("::1", 0))
    assert server.url == ""
    server._port = 3001
    assert server.url == "socket://[::1]:3001"


async def read_available(reader: asyncio.StreamReader, size: int) -> bytes:
    data = b""
    async with asyncio.timeout(2):
        while len(data) < size:
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
    return data


@pytest.mark.usefixtures("socket_enabled")
async def test_tcp_serves_many_clients_and_faults() -> None:
    clock = ManualClock(WINTER)
    meter = SimulatedMeter("kaifa-ma304h3e-no", start=clock.now(), seed=4)
    async with SimulatorServer(meter, clock, tcp=("127.0.0.1", 0)) as server:
        assert server.port
        assert server.host == "127.0.0.1"
        assert server.url == f"socket://127.0.0.1:{server.port}"
        assert server.pty_path is None
        one = await asyncio.open_connection("127.0.0.1", server.port)
        two = await asyncio.open_connection("127.0.0.1", server.port)
        async with asyncio.timeout(2):
            await server.wait_for_clients(2)
        assert server.clients == 2
        two[1].write(b"requests are ignored")
        frames = await server.advance(20)
        wire = b"".join(f.data for f in frames)
        for reader, _writer in (one, two):
            got = await read_available(reader, len(wire))
            assert got == wire
            decoded = MeterStream().feed(got)
            assert [d.values for d in decoded] == [f.reading.values for f in frames if f.reading]
        # a drop in the middle of a frame: clients see half a frame, then EOF
        await server.disconnect(mid_frame=True)
        cut = await server.advance(2)
        tail = await read_available(one[0], 10_000)
        assert tail == cut[0].data
        assert cut[0].corrupted
        assert await one[0].read() == b""
        # clients reconnect; a disconnect between frames drops them at once
        three = await asyncio.open_connection("127.0.0.1", server.port)
        async with asyncio.timeout(2):
            await server.wait_for_clients(1)
        await server.inject_garbage(data=b"noise")
        assert await read_available(three[0], 5) == b"noise"
        await server.disconnect()
        assert await three[0].read() == b""
        assert server.connections == 3
        for _reader, writer in (one, two, three):
            writer.close()


@pytest.mark.usefixtures("socket_enabled")
async def test_tcp_unplug_closes_the_port_and_comes_back() -> None:
    clock = ManualClock(WINTER)
    meter = SimulatedMeter("p1-se", start=clock.now())
    async with SimulatorServer(meter, clock, tcp="127.0.0.1:0") as server:
        port = server.port
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(2):
            await server.wait_for_clients()
        await server.unplug(15)
        assert await reader.read() == b""
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        await server.advance(15)
        assert server.port == port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(2):
            await server.wait_for_clients()
        frames = await server.advance(10)
        assert await read_available(reader, len(frames[0].data)) == frames[0].data
        writer.close()


@pytest.mark.usefixtures("socket_enabled")
async def test_slow_client_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from custom_components.hanport.han.sim import server as server_module

    monkeypatch.setattr(server_module, "MAX_CLIENT_BUFFER", -1)
    clock = ManualClock(WINTER)
    meter = SimulatedMeter("p1-se", start=clock.now())
    async with SimulatorServer(meter, clock, tcp=("127.0.0.1", 0)) as server:
        assert server.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        async with asyncio.timeout(2):
            await server.wait_for_clients()
        await server.advance(10)
        assert server.clients == 0
        assert await reader.read() == b""
        writer.close()


def read_pty(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


async def test_pty_carries_frames_and_survives_unplugging(tmp_path: Path) -> None:
    clock = ManualClock(WINTER)
    meter = SimulatedMeter("kamstrup-3w-no", start=clock.now(), seed=2)
    link = tmp_path / "ttyHAN"
    async with SimulatorServer(meter, clock, pty=link) as server:
        assert server.pty_path == str(link) == server.url
        first_device = server.pty_device
        assert first_device is not None
        assert str(link.readlink()) == first_device
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        os.write(fd, b"a reader that talks is ignored")
        frames = await server.advance(30)
        got = read_pty(fd)
        assert got == b"".join(f.data for f in frames)
        decoded = MeterStream(DecodeOptions(country="NO")).feed(got)
        assert len(decoded) == len(frames) == 4
        # unplug: the device and the symlink vanish; the reader's fd is dead
        await server.unplug(20)
        assert not link.exists()
        assert server.pty_device is None
        with contextlib.suppress(OSError):  # EIO, as from a USB adapter that vanished, or
            assert os.read(fd, 100) == b""  # hung up: end of file
        os.close(fd)
        lost = await server.advance(10)
        assert lost[0].lost
        await server.inject_garbage(data=b"into the void")  # nobody can receive it
        await server.advance(10)
        assert link.exists()
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        assert MeterStream().feed(read_pty(fd))  # what was sent before the reader came
        frames = await server.advance(10)
        assert read_pty(fd) == frames[0].data
        os.close(fd)
    assert not link.exists()


async def test_pty_is_readable_with_serialx() -> None:
    import serialx

    clock = ManualClock(WINTER)
    meter = SimulatedMeter("aidon-6534-no", start=clock.now())
    async with SimulatorServer(meter, clock, pty=True) as server:
        assert server.pty_path is not None
        assert "hanport-sim-" in server.pty_path
        port = serialx.serial_for_url(server.pty_path, baudrate=2400, parity=serialx.PARITY_EVEN)
        if not port.is_open:
            port.open()
        try:
            frames = await server.advance(10)
            wanted = sum(len(f.data) for f in frames)
            data = await asyncio.to_thread(port.read, wanted)
        finally:
            port.close()
        assert data == b"".join(f.data for f in frames)
        tempdir = Path(server.pty_path).parent
    assert not tempdir.exists()


async def test_pty_drops_old_bytes_nobody_reads() -> None:
    clock = ManualClock(WINTER)
    meter = SimulatedMeter("aidon-6534-se", start=clock.now())
    async with SimulatorServer(meter, clock, pty=True) as server:
        await server.advance(24 * 3600 / 20)  # 4320 frames of 581 bytes, nobody reading
        assert server.pty_path is not None
        fd = os.open(server.pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        stale = read_pty(fd)
        os.close(fd)
        assert 0 < len(stale) < 64 * 1024  # the kernel buffer, not hours of backlog


async def test_real_time_server_paces_bytes_and_runs_by_itself() -> None:
    clock = FastClock(200.0, WINTER)
    meter = SimulatedMeter("aidon-6534-no", start=clock.now())
    seen: list[SentFrame] = []
    server = SimulatorServer(meter, clock, pty=True)
    assert server.pace
    server.on_frame = seen.append
    await server.start()
    await server.start()  # idempotent
    try:
        assert server.pty_path is not None
        fd = os.open(server.pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        data = b""
        async with asyncio.timeout(5):
            while len(MeterStream().feed(data)) < 2:
                await asyncio.sleep(0.02)
                data += read_pty(fd)
        os.close(fd)
        assert len(seen) >= 2
        with pytest.raises(TypeError, match="ManualClock"):
            await server.advance(1)
    finally:
        await server.stop()
        await server.stop()  # idempotent


async def test_server_fault_shortcuts_reach_the_meter() -> None:
    clock = ManualClock(WINTER)
    meter = SimulatedMeter("aidon-6534-no", start=clock.now(), lists=[ListKind.ENERGY])
    async with SimulatorServer(meter, clock, pty=True) as server:
        await server.flip_bits()
        await server.truncate_next()
        await server.wrong_parity(1)
        await server.expand_crlf(1)
        await server.go_silent(1)
        await server.repeat_hourly()
        await server.clock_gap(1)
        await server.clear_faults()
        assert [e.fault for e in meter.events] == [
            Fault.BITFLIP,
            Fault.TRUNCATE,
            Fault.PARITY,
            Fault.CRLF,
            Fault.SILENCE,
            Fault.REPEAT_HOURLY,
            Fault.CLOCK_GAP,
        ]


async def test_transport_errors_do_not_stop_the_meter(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(WINTER)
    meter = SimulatedMeter("p1-se", start=clock.now())
    server = SimulatorServer(meter, clock, pty=True)
    async with server:

        def broken(data: bytes) -> None:
            raise OSError("boom")

        server._deliver = broken  # type: ignore[method-assign]
        await server.advance(10)
        assert "simulator transport error on write" in caplog.text
        server._deliver = lambda data: None  # type: ignore[method-assign]
        await server.advance(10)


async def test_unplug_flushes_pending_writes_before_closing() -> None:
    """Events go through the same queue as bytes, so their order is kept."""
    clock = ManualClock(WINTER)
    meter = SimulatedMeter("p1-se", start=clock.now())
    async with SimulatorServer(meter, clock, pty=True) as server:
        assert server.pty_path is not None
        fd = os.open(server.pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        frames = await server.advance(10)
        meter.unplug(5)
        await server.pump()
        with contextlib.suppress(OSError):
            assert read_pty(fd) in (frames[0].data, b"")
        os.close(fd)


@pytest.mark.usefixtures("socket_enabled")
async def test_server_sends_nothing_after_until() -> None:
    """``until`` bounds what a fast clock sends: the count no longer depends on machine load."""
    start = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
    clock = FastClock(100_000, start=start)
    meter = SimulatedMeter("kamstrup-4w-no", start=start, seed=1)
    until = start + timedelta(seconds=60)
    server = SimulatorServer(meter, clock, tcp=("127.0.0.1", 0), until=until)
    async with server:
        await clock.sleep(600)  # ten simulated minutes pass on the clock
    assert meter.sent
    assert all(frame.at <= until for frame in meter.sent)
    # Kamstrup pushes at xx:xx:x0: 12:00:00 ... 12:01:00
    assert len(meter.sent) == 7
