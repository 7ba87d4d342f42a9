"""The fuzzer's short form (CI), proof that its oracle catches planted bugs, and reproducers.

``scripts/fuzz`` runs the long form (a million inputs); this runs a few thousand
with the same engine and checks. Failure categories still open in the library
are listed in ``KNOWN`` with the xfail reproducer that flips when it is fixed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from custom_components.hanport.han.crc import crc16_arc, crc16_x25
from custom_components.hanport.han.dlms.apdu import encode_block_transfer
from custom_components.hanport.han.framing import build_hdlc_frame, build_mbus_frames
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import Protocol, Reading
from custom_components.hanport.han.stream import MeterStream
from tests import fuzzing
from tests.fuzzing import (
    CLEAN,
    F_CHECKSUM,
    F_ILL_FORMED,
    F_LOST,
    F_MEMORY,
    F_MISDECODED,
    F_RAISED,
    F_SEED,
    F_SPLIT,
    F_SWALLOWED,
    F_TELEGRAM,
    F_WRONG_KEY,
    FAILURES,
    O_EXACT,
    O_TELEGRAM_DECODED,
    Family,
    Fuzzer,
    Stats,
    Stream,
    crc_arc,
    crc_x25,
    fuzz,
    split_frames,
)
from tests.han.encode_helpers import AUTH_KEY, KEY

ROOT = Path(__file__).resolve().parents[2]
SHORT_COUNT = 2500
SHORT_SEED = 20260101

KNOWN: dict[str, str] = {}
"""Open library bugs the short run may hit: category -> the xfail reproducer(s)."""


@pytest.fixture(scope="module")
def short_run() -> Stats:
    """The CI form: a few thousand inputs, memory traced, in this process."""
    return fuzz(SHORT_COUNT, SHORT_SEED, workers=1, trace_memory=True)


def test_short_run_finds_no_new_failure(short_run: Stats) -> None:
    """Zero exceptions, zero readings from broken checksums, zero wrong readings."""
    unexpected = {
        category: count for category, count in short_run.failures.items() if category not in KNOWN
    }
    rendered = [
        sample.render(SHORT_SEED)
        for category in unexpected
        for sample in short_run.samples.get(category, [])
    ]
    assert not unexpected, "\n".join(rendered)


def test_short_run_exercised_everything(short_run: Stats) -> None:
    """The run is not vacuous: every family and mutator ran and readings were judged."""
    assert short_run.inputs == SHORT_COUNT
    assert set(short_run.families) == set(Family)
    for name in (
        "bitflip",
        "bitflips",
        "bitflip-burst",
        "byte-substitute",
        "insert",
        "delete",
        "truncate",
        "slice-repeat",
        "length-field",
        "crc-digits",
        "splice",
        "content-rechecksummed",
        "crlf-expanded",
        "garbage-prefix",
        "garbage-suffix",
        "p1-token",
        *CLEAN,
    ):
        assert short_run.mutators[name] > 0, name
    assert short_run.outcomes[O_EXACT] > SHORT_COUNT // 4
    assert short_run.outcomes[O_TELEGRAM_DECODED] > 0
    assert 0 < short_run.peak_traced < fuzzing.MEMORY_CAP


def test_inputs_are_pure_functions_of_seed_and_index() -> None:
    """``--replay`` rebuilds the very input a long run reported."""
    first = Fuzzer(5)
    for index in range(40):
        first.build(index)
    again = Fuzzer(5).build(37)
    built = first.build(37)
    assert (again.data, again.cuts, again.tail, again.warm) == (
        built.data,
        built.cuts,
        built.tail,
        built.warm,
    )


def test_own_crcs_agree_with_the_library() -> None:
    """The oracle's CRCs are written apart from the library's, and agree with them."""
    rng = random.Random(1)
    for size in (0, 1, 2, 7, 64, 301):
        data = rng.randbytes(size)
        assert crc_x25(data) == crc16_x25(data)
        assert crc_arc(data) == crc16_arc(data)


def test_split_frames_checks_every_frame() -> None:
    """Back-to-back frames of any format split; one bad byte anywhere fails the lot."""
    hdlc = build_hdlc_frame(b"\xe6\xe7\x00\x0f\x00\x00\x00\x01\x00\x00")
    mbus = build_mbus_frames(bytes(range(40)), max_segment=24)
    p1 = b"/ABC5\r\n\r\n1-0:1.8.0(1.0*kWh)\r\n!"
    p1 += f"{crc16_arc(p1):04X}\r\n".encode()
    frames = split_frames(hdlc + mbus + p1)
    assert frames is not None
    assert [protocol for protocol, _ in frames] == [
        Protocol.HDLC,
        Protocol.MBUS,
        Protocol.MBUS,
        Protocol.P1,
    ]
    for at in (5, len(hdlc) + 10, len(hdlc) + len(mbus) + 12):
        damaged = bytearray(hdlc + mbus + p1)
        damaged[at] ^= 0x04
        assert split_frames(bytes(damaged)) is None


# ---------------------------------------------------------------- the oracle catches planted bugs


class _Wrapper:
    """A real MeterStream with a planted bug applied to what it returns."""

    def __init__(
        self, options: DecodeOptions, bug: Callable[[bytes, list[Reading]], list[Reading]]
    ):
        self.inner = MeterStream(options)
        self.bug = bug

    def feed(self, data: bytes) -> list[Reading]:
        return self.bug(data, self.inner.feed(data))

    def flush(self) -> list[Reading]:
        return self.bug(b"", self.inner.flush())


def _planted(
    bug: Callable[[bytes, list[Reading]], list[Reading]],
) -> Callable[[DecodeOptions], Stream]:
    return lambda options: _Wrapper(options, bug)


def _off_by_one_watt(_: bytes, readings: list[Reading]) -> list[Reading]:
    out = []
    for reading in readings:
        values = dict(reading.values)
        if "active_power_import" in values:
            values["active_power_import"] += 1.0
        out.append(dataclasses.replace(reading, values=type(reading.values)(values)))
    return out


def _raises_on_flags(data: bytes, readings: list[Reading]) -> list[Reading]:
    if b"\x7e\xa0" in data:
        raise IndexError("planted")
    return readings


def _planted_key_error() -> None:
    raise KeyError("planted")


def _swallows(data: bytes, readings: list[Reading]) -> list[Reading]:
    """Like a safety net that logs a decoder's exception and goes on."""
    if b"\x68" in data:
        try:
            _planted_key_error()
        except KeyError:
            logging.getLogger("custom_components.hanport.han.stream").debug("x", exc_info=True)
    return readings


def _loses_everything(_: bytes, __: list[Reading]) -> list[Reading]:
    return []


def _nan(_: bytes, readings: list[Reading]) -> list[Reading]:
    return [
        dataclasses.replace(r, values=type(r.values)({**r.values, "voltage_l1": math.nan}))
        for r in readings
    ]


def _drops_small_pieces(data: bytes, readings: list[Reading]) -> list[Reading]:
    return [] if len(data) < 32 else readings


def _ignores_the_key(options: DecodeOptions) -> Stream:
    return MeterStream(dataclasses.replace(options, key=KEY, auth_key=AUTH_KEY))


def _raising_telegram_decoder(telegram: bytes) -> Reading:
    if telegram.count(b"(") % 2:
        raise ValueError("planted")
    return fuzzing._decode_telegram(telegram)


class _ReadsEverything:
    """Claims the seed's reading for whatever it is fed: checksums ignored."""

    def __init__(self, fuzzer: list[Fuzzer]) -> None:
        self.fuzzer = fuzzer

    def feed(self, data: bytes) -> list[Reading]:
        case = self.fuzzer[0].case
        if case is None or case.seed.expected is None or len(data) > fuzzing.IDLE:
            return []
        return [dataclasses.replace(case.seed.expected, frame=bytes(data))]

    def flush(self) -> list[Reading]:
        return []


@pytest.mark.parametrize(
    ("factory", "decoder", "category"),
    [
        (_planted(_off_by_one_watt), None, F_MISDECODED),
        (_planted(_raises_on_flags), None, F_RAISED),
        (_planted(_swallows), None, F_SWALLOWED),
        (_planted(_loses_everything), None, F_LOST),
        (_planted(_loses_everything), None, F_SEED),
        (_planted(_nan), None, F_ILL_FORMED),
        (_planted(_drops_small_pieces), None, F_SPLIT),
        (_ignores_the_key, None, F_WRONG_KEY),
        (None, _raising_telegram_decoder, F_TELEGRAM),
    ],
    ids=[
        "wrong-value",
        "raises",
        "swallowed",
        "loses-intact",
        "seed-misdecoded",
        "nan",
        "split-dependent",
        "wrong-key",
        "telegram-raises",
    ],
)
def test_oracle_flags_a_planted_bug(
    factory: Callable[[DecodeOptions], Stream] | None,
    decoder: Callable[[bytes], Reading] | None,
    category: str,
) -> None:
    """Each check fires on a decoder with that bug (so a pass is not vacuous)."""
    fuzzer = Fuzzer(11, stream_factory=factory or fuzzing._meter_stream, telegram_decoder=decoder)
    stats = fuzzer.run(0, 400)
    assert stats.failures[category] > 0, dict(stats.failures)
    assert stats.samples[category][0].data or category == F_SEED


def test_oracle_flags_readings_from_broken_checksums() -> None:
    """A decoder that answers every input with the right reading is caught by the frame check."""
    holder: list[Fuzzer] = []
    fuzzer = Fuzzer(12, stream_factory=lambda _: _ReadsEverything(holder), soak=False)
    holder.append(fuzzer)
    stats = fuzzer.run(0, 300)
    assert stats.failures[F_CHECKSUM] > 0


def test_oracle_flags_unbounded_memory() -> None:
    """A stream that keeps every byte it was fed goes over a (small) traced-memory cap."""
    kept: list[bytes] = []

    def hoards(data: bytes, readings: list[Reading]) -> list[Reading]:
        kept.append(bytes(data) * 4)
        return readings

    stats = fuzz(400, 13, workers=1, memory_cap=512 * 1024, stream_factory=_planted(hoards))
    assert stats.failures[F_MEMORY] == 1
    assert F_MEMORY in FAILURES


def test_script_runs_and_replays() -> None:
    """``scripts/fuzz`` on two workers prints the report; its exit status follows RESULT."""
    command = [sys.executable, str(ROOT / "scripts" / "fuzz")]
    run = subprocess.run(
        [*command, "--count", "300", "--seed", "4", "--workers", "2", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert "inputs run: 300 of 300" in run.stdout, run.stderr
    assert "checks (each must be 0):" in run.stdout
    assert "inputs/s" in run.stdout
    passed = "RESULT: PASS" in run.stdout
    assert run.returncode == (0 if passed else 1), run.stdout[-3000:]
    shown = subprocess.run(
        [*command, "--seed", "4", "--replay", "7"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "input #7: family" in shown.stdout, shown.stderr


# ---------------------------------------------------------------- reproducers of open bugs
# Frames below were built with the project's encoder (Kaifa NO list 2) and framing builders.

# Kaifa list 2 (P+ 1234 W, P- 0 W, Q+ 56 var, Q- 78 var, I 1.5/2.5/3.5 A,
# U 230.1/0/231.3 V) in one M-Bus long frame; then the same frame with the 5 bytes of
# the P+ element repeated (a UART/driver glitch): L no longer fits, so the stop byte
# check fails before the checksum is looked at.
MBUS_CLEAN = bytes.fromhex(
    "6870706853ff1001670f40000000090c07e80501030c0000ff800000020d09074b464d5f303031091037"
    "33353030303030303030303030303109074d41333034483406000004d206000000000600000038060000"
    "004e06000005dc06000009c40600000dac06000008fd060000000006000009098e16"
)
MBUS_REPEATED = bytes.fromhex(
    "6870706853ff1001670f40000000090c07e80501030c0000ff800000020d09074b464d5f303031091037"
    "33353030303030303030303030303109074d41333034483406000004d206000004d20600000000060000"
    "0038060000004e06000005dc06000009c40600000dac06000008fd060000000006000009098e16"
)

# Kaifa list 2, 1-phase meter, in HDLC; then the same frame with its format byte hit
# (A0 -> B0: no longer an HDLC start at all) and the last value's 4 bytes lost, so the
# FCS, the flag and one idle byte become voltage_l1.
HDLC_CLEAN = bytes.fromhex(
    "7ea06101020110e07de6e7000f40000000090c07fe050506022d27ff800000020909074b464d5f303031"
    "090c38383437373939383233313709084d413130354832450600006db4060000082d0600007530060000"
    "66500600005e6d06000009f0ac097e"
)
HDLC_DAMAGED = bytes.fromhex(
    "7eb06101020110e07de6e7000f40000000090c07fe050506022d27ff800000020909074b464d5f303031"
    "090c38383437373939383233313709084d413130354832450600006db4060000082d0600007530060000"
    "66500600005e6d06ac097e"
)
IDLE = bytes(8)


def _feed(*parts: bytes) -> list[Reading]:
    stream = MeterStream()
    out: list[Reading] = []
    for part in parts:
        out += stream.feed(part)
    return out


def test_warm_stream_refuses_the_damaged_frames() -> None:
    """After one good frame the bare-APDU hunt is locked: the damaged copies give nothing."""
    (clean,) = _feed(MBUS_CLEAN)
    assert _feed(MBUS_CLEAN, MBUS_REPEATED, IDLE) == [clean]
    (clean,) = _feed(HDLC_CLEAN)
    assert clean.values["voltage_l1"] == 254.4
    assert _feed(HDLC_CLEAN, HDLC_DAMAGED, IDLE) == [clean]


def test_cold_stream_damaged_mbus_frame_gives_no_wrong_reading() -> None:
    """Expected: nothing (the frame is damaged); got: a reading with shifted values."""
    assert _feed(MBUS_REPEATED, IDLE) == []


def test_cold_stream_damaged_hdlc_format_gives_no_wrong_reading() -> None:
    """Expected: nothing; got: voltage_l1 = 288630323.2 V."""
    assert _feed(HDLC_DAMAGED, IDLE) == []


def test_cold_stream_frame_start_lost_and_read_ending_at_the_apdu_gives_nothing() -> None:
    """The flag (or flag and format) lost at a stream's start, a read ends at the APDU's end.

    Nothing after the APDU has arrived to show the frame's end, but the header
    bytes before it mean it is no bare APDU at a stream's start: withheld, then
    dropped when FCS and flag follow instead of another APDU.
    """
    for lost in (1, 2):
        frame = HDLC_CLEAN[lost:]
        assert _feed(frame[:-3], frame[-3:] + IDLE) == [], lost
        assert _feed(frame[:-3], frame[-3:] + HDLC_CLEAN) == _feed(HDLC_CLEAN), lost


def test_reading_frame_leaves_out_an_abandoned_block_transfer() -> None:
    """Expected: frame == the second frame only; got: block frame + second frame."""
    apdu = bytes.fromhex("0f40000000000101020309060100010700ff0600004bf302020f00161b")
    first_block = build_hdlc_frame(b"\xe6\xe7\x00" + encode_block_transfer(apdu, block_size=16)[0])
    second = build_hdlc_frame(b"\xe6\xe7\x00" + apdu)
    (reading,) = _feed(first_block + second)
    assert reading.frame == second


def test_block_from_a_damaged_frame_is_not_joined_at_a_read_boundary() -> None:
    """Expected: what the same bytes give fed whole (nothing); got: an HDLC reading."""
    apdu = bytes.fromhex("0f40000000000101020309060100010700ff0600004bf302020f00161b")
    first, second = encode_block_transfer(apdu, block_size=16)
    damaged = build_hdlc_frame(b"\xe6\xe7\x00" + first)
    damaged = damaged[:6] + b"\x30" + damaged[6:]  # a byte inserted in the address field
    rest = build_hdlc_frame(b"\xe6\xe7\x00" + second)
    assert _feed(damaged + rest) == []
    assert _feed(damaged[:-3], damaged[-3:] + rest) == []  # a read ends after block 1
