"""MeterStream: any chunking, any mix of formats, garbage, bounded memory, never raises."""

from __future__ import annotations

import json
import random
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.hanport.han import stream as stream_module
from custom_components.hanport.han.dlms.apdu import ApduDecoder, encode_block_transfer
from custom_components.hanport.han.dlms.cipher import encrypt_apdu
from custom_components.hanport.han.encode import (
    Layout,
    carried_names,
    encode_reading,
    expected_reading,
    layout_spec,
    list_kinds,
)
from custom_components.hanport.han.errors import FrameError, Rejected, RejectReason
from custom_components.hanport.han.framing import (
    LOCK_WINDOW,
    Found,
    FrameReader,
    build_hdlc_frame,
    build_mbus_frames,
    build_p1_telegram,
    parse_hdlc,
)
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading
from custom_components.hanport.han.stream import LAST_FRAMES, MeterStream

from .encode_helpers import AUTH_KEY, COUNTRY, KEY
from .encode_helpers import reading as make_reading

FRAMES_JSON = Path(__file__).resolve().parents[3] / "shared" / "han" / "frames.json"
LLC = b"\xe6\xe7\x00"
PAD = bytes(2100)
"""Zeros after a test's frames, so that every false start is decided."""


def _value(name: str) -> float:
    if "voltage" in name:
        return 230.1
    if "current" in name:
        return 4.6
    if "energy" in name:
        return 1234.56
    if "factor" in name:
        return 0.95
    return 1769.0


def _options(layout: Layout) -> DecodeOptions:
    return DecodeOptions(country=COUNTRY[layout], key=KEY, auth_key=AUTH_KEY)


def _sample(layout: Layout, kind: ListKind | None = None) -> tuple[Reading, bytes]:
    """A reading, and the bytes the layout's meter sends for it."""
    kind = kind if kind is not None else list_kinds(layout)[-1]
    topology = sorted(layout_spec(layout).topologies)[-1]
    values = {name: _value(name) for name in carried_names(layout, kind, topology)}
    source = make_reading(values, meter_id="21928281", meter_time=datetime(2024, 1, 14, 13, 0, 10))
    raw = encode_reading(source, layout, key=KEY, auth_key=AUTH_KEY)
    return expected_reading(source, layout), raw


def _feed(stream: MeterStream, data: bytes, cuts: list[int] | None = None) -> list[Reading]:
    readings: list[Reading] = []
    last = 0
    for cut in [*(cuts or []), len(data)]:
        readings += stream.feed(data[last:cut])
        last = cut
    return readings


def _same(got: Reading, want: Reading) -> None:
    assert got.values == want.values
    assert (got.meter_id, got.protocol) == (want.meter_id, want.protocol)


def _aidon_frames() -> list[bytes]:
    return [_sample(Layout.AIDON_NO, kind)[1] for kind in list_kinds(Layout.AIDON_NO)]


def _info(frame: bytes) -> bytes:
    parsed = parse_hdlc(frame, 0)
    assert isinstance(parsed, Found)
    return parsed.item.info


# --- every layout, end to end ----------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "kind"), [(layout, kind) for layout in Layout for kind in list_kinds(layout)]
)
def test_every_layout_decodes(layout: Layout, kind: ListKind) -> None:
    expected, raw = _sample(layout, kind)
    stream = MeterStream(_options(layout))
    readings = stream.feed(raw)
    assert len(readings) == 1
    _same(readings[0], expected)
    assert readings[0].frame == raw  # P1 telegrams end in CRLF, as the framer normalises them
    assert stream.protocol is expected.protocol
    assert stream.counters.frames_ok == 1
    assert stream.counters.rejected == {}
    assert stream.last_frames[-1] == readings[0].frame


@pytest.mark.parametrize("layout", list(Layout))
def test_split_at_every_byte_boundary(layout: Layout) -> None:
    _, raw = _sample(layout)
    data = raw + raw
    whole = MeterStream(_options(layout)).feed(data)
    assert len(whole) == 2
    for cut in range(1, len(data)):
        readings = _feed(MeterStream(_options(layout)), data, [cut])
        assert readings == whole, cut
        assert [r.frame for r in readings] == [r.frame for r in whole]


def test_all_layouts_mixed_with_garbage_in_random_chunks() -> None:
    rng = random.Random(42)
    samples = [_sample(layout) for layout in Layout]
    data = b"".join(rng.randbytes(rng.randrange(0, 200)) + raw for _, raw in samples) + PAD
    stream = MeterStream(DecodeOptions(key=KEY, auth_key=AUTH_KEY))
    cuts = sorted(rng.sample(range(1, len(data)), 300))
    readings = _feed(stream, data, cuts)
    assert [r.meter_id for r in readings] == [want.meter_id for want, _ in samples]
    assert [r.protocol for r in readings] == [want.protocol for want, _ in samples]
    counters = stream.counters
    assert counters.frames_ok == len(samples)
    assert counters.bytes_received == len(data)
    assert counters.bytes_discarded >= len(data) - sum(len(raw) for _, raw in samples) - 4


def test_protocol_follows_a_switching_stream() -> None:
    stream = MeterStream(_options(Layout.OBIS_ARRAY_AT))
    seen = []
    for layout in (Layout.AIDON_NO, Layout.P1_SE, Layout.OBIS_ARRAY_AT, Layout.KAIFA_NO):
        assert len(stream.feed(_sample(layout)[1])) == 1
        seen.append(stream.protocol)
    assert seen == [Protocol.HDLC, Protocol.P1, Protocol.MBUS, Protocol.HDLC]


# --- bare APDUs ------------------------------------------------------------------


def test_bare_apdus_with_and_without_llc() -> None:
    infos = [_info(frame) for frame in _aidon_frames()]
    apdus = [infos[0], infos[1][3:], infos[2]]
    data = b"".join(apdus)
    whole = MeterStream().feed(data)
    assert [r.list_kind for r in whole] == [ListKind.POWER, ListKind.STATUS, ListKind.ENERGY]
    assert {r.protocol for r in whole} == {Protocol.APDU}
    assert [r.frame for r in whole] == apdus
    for cut in range(1, len(data)):
        stream = MeterStream()
        assert _feed(stream, data, [cut]) == whole, cut
        assert stream.protocol is Protocol.APDU


def test_bare_ciphered_apdu_and_block_transfer() -> None:
    _, raw = _sample(Layout.KAMSTRUP_DK)
    ciphered = _info(raw)
    assert ciphered[:4] == LLC + b"\xdb"
    stream = MeterStream(_options(Layout.KAMSTRUP_DK))
    assert stream.feed(ciphered) == []  # nothing confirms it yet: it may be a frame's inside
    readings = stream.flush()  # the input ends: a capture of one APDU
    assert len(readings) == 1
    assert readings[0].protocol is Protocol.APDU
    rejects: list[Rejected] = []
    assert MeterStream(on_reject=rejects.append).feed(ciphered) == []
    # once: not again for the same APDU without its LLC (a false HDLC start in the
    # ciphertext may be counted too: the hunt goes on inside a refused bare APDU)
    reasons = [r.reason for r in rejects]
    assert reasons.count(RejectReason.ENCRYPTED_NO_KEY) == 1
    assert set(reasons) <= {RejectReason.ENCRYPTED_NO_KEY, RejectReason.HDLC_HEADER_CHECKSUM}
    assert rejects[0].frame == ciphered
    # the same APDU split into general-block-transfer blocks, bare and in HDLC frames
    blocks = [LLC + block for block in encode_block_transfer(ciphered[3:], block_size=100)]
    assert len(blocks) > 2
    stream = MeterStream(_options(Layout.KAMSTRUP_DK))
    readings = stream.feed(b"".join(blocks))
    assert len(readings) == 1
    assert readings[0].frame == b"".join(blocks)
    frames = [build_hdlc_frame(block) for block in blocks]
    readings = MeterStream(_options(Layout.KAMSTRUP_DK)).feed(b"".join(frames))
    assert len(readings) == 1
    assert readings[0].frame == b"".join(frames)
    assert readings[0].protocol is Protocol.HDLC


def test_bare_ciphered_telegram_without_llc() -> None:
    # Luxembourg's Smarty: a whole P1 telegram in general-glo-ciphering, no LLC
    telegram = build_p1_telegram("SAG5", ["1-0:1.8.0(00001234.560*kWh)", "1-0:1.7.0(01.769*kW)"])
    apdu = encrypt_apdu(
        telegram,
        key=KEY,
        auth_key=AUTH_KEY,
        system_title=b"SAG\x00\x01\x02\x03\x04",
        frame_counter=7,
    )
    stream = MeterStream(DecodeOptions(key=KEY, auth_key=AUTH_KEY))
    readings = _feed(stream, b"\x00\x01" + apdu + apdu, [5, len(apdu) + 1])
    assert len(readings) == 2
    assert readings[0].protocol is Protocol.APDU
    assert readings[0].values["active_power_import"] == 1769.0
    assert readings[0].frame == apdu


def test_inside_of_a_damaged_frame_is_never_a_bare_apdu() -> None:
    """A corrupted value inside a frame must not come out through the bare-APDU path."""
    frames = _aidon_frames()
    for frame in frames:
        broken = bytearray(frame)
        broken[-8] ^= 0x10  # a value byte: HCS holds, FCS fails
        for prefix in (b"", frames[0]):  # at the start of a stream, and after good frames
            rejects: list[Rejected] = []
            stream = MeterStream(on_reject=rejects.append)
            readings = stream.feed(prefix + bytes(broken) + PAD)
            assert len(readings) == len(prefix and [prefix])
            assert RejectReason.HDLC_FRAME_CHECKSUM in [r.reason for r in rejects]


def test_frame_whose_header_was_missed_is_not_a_bare_apdu() -> None:
    # joined mid-frame: the APDU is whole, but the FCS and flag after it give it away
    for frame in _aidon_frames():
        for start in range(1, 10):
            assert MeterStream().feed(frame[start:]) == [], start


def test_frame_with_a_damaged_header_is_not_a_bare_apdu_however_it_is_read() -> None:
    """A frame whose HCS fails at the start of a stream: its APDU is not taken bare.

    Its info field sits where the damaged header says, and FCS + flag follow it;
    neither may depend on where a read happens to end (the CLI reads 4 KiB, a
    serial port what has arrived).
    """
    frames = _aidon_frames()
    for damaged in (7, 8, 6, 5):  # HCS low and high byte, control, an address byte
        broken = bytearray(frames[0])
        broken[damaged] ^= 0x80
        data = b"\x01\x02\x03" + bytes(broken) + frames[1] + frames[2]
        for size in (1, 2, 3, 5, 7, len(data)):
            rejects: list[Rejected] = []
            stream = MeterStream(on_reject=rejects.append)
            readings = _feed(stream, data, list(range(size, len(data), size)))
            assert [r.list_kind for r in readings] == [ListKind.STATUS, ListKind.ENERGY], size
            assert rejects[0].reason is RejectReason.HDLC_HEADER_CHECKSUM


def test_fcs_that_looks_like_an_apdu_start_does_not_hide_the_frame_end() -> None:
    """A frame missing its opening flag whose FCS starts with 0F/DB/DC/E6 is not bare.

    (Read in pieces, the bytes after the APDU are waited for; only a read that ends
    exactly at the APDU's end, before anything after it, is decided at once.)
    """
    base = _info(_aidon_frames()[0])
    assert base[-11] == 0x06  # the power value: double-long-unsigned, then its scaler-unit
    found = 0
    for value in range(1000, 5000):
        info = base[:-10] + value.to_bytes(4, "big") + base[-6:]
        frame = build_hdlc_frame(info)
        if frame[-3] not in (0x0F, 0xDB, 0xDC, 0xE6):
            continue
        found += 1
        data = b"\x01" + frame[1:] + _aidon_frames()[1]  # opening flag lost
        apdu_end = len(frame) - 2  # the flag's byte is replaced, FCS and flag follow
        for cuts in ([], [apdu_end + 1], [apdu_end + 2], [apdu_end + 3, apdu_end + 4]):
            readings = _feed(MeterStream(), data, cuts)
            assert [r.list_kind for r in readings] == [ListKind.STATUS], (value, cuts)
    assert found > 5


def test_bare_apdus_again_after_the_lock_window() -> None:
    frames = _aidon_frames()
    apdu = _info(frames[1])
    stream = MeterStream()
    assert len(stream.feed(frames[0])) == 1
    count = LOCK_WINDOW // len(apdu) + 2
    readings = stream.feed(apdu * count)
    # bare APDUs right after a checksummed frame are not hunted; beyond the window they are
    assert 0 < len(readings) < count
    assert len(readings) >= count - LOCK_WINDOW // len(apdu) - 1
    assert stream.protocol is Protocol.APDU


# --- the OSS-brikken capture, end to end ------------------------------------------


def test_oss_capture_decodes() -> None:
    if not FRAMES_JSON.exists():
        pytest.skip("frames.json not available")
    vectors = {v["id"]: v for v in json.loads(FRAMES_JSON.read_text())}
    raw = bytes.fromhex(vectors["aidon-no-l3-6525-oss-crlf-corrupted"]["hex"])
    stream = MeterStream()
    readings = stream.feed(raw)
    assert len(readings) == 1
    assert readings[0].list_kind is ListKind.ENERGY
    assert stream.counters.rejected == {}
    assert readings[0].frame.count(b"\r\n") < raw.count(b"\r\n")  # the repaired frame


def test_oss_expanded_stream_decodes() -> None:
    frames = _aidon_frames()
    expanded = b"".join(frames).replace(b"\n", b"\r\n")
    assert expanded != b"".join(frames)
    readings = MeterStream().feed(expanded)
    assert [r.frame for r in readings] == frames


# --- rejects, counters, callbacks -------------------------------------------------


def test_counters_and_rejects() -> None:
    frames = _aidon_frames()
    broken = bytearray(frames[2])
    broken[-3] ^= 1
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    data = b"junk" + frames[0] + bytes(broken) + frames[1] + b"\x7e"
    readings = stream.feed(data)
    assert len(readings) == 2
    counters = stream.counters
    assert counters.frames_ok == 2
    assert counters.rejected == {RejectReason.HDLC_FRAME_CHECKSUM: 1}
    assert counters.frames_total == 3
    assert counters.bytes_received == len(data)
    assert counters.bytes_discarded == 4 + len(broken)  # both of its flags: one is extra
    assert rejects == [Rejected(RejectReason.HDLC_FRAME_CHECKSUM, "FCS mismatch", bytes(broken))]


def test_decoder_frame_errors_are_counted() -> None:
    frame = build_hdlc_frame(LLC + b"\x0f\x00\x00\x00\x00\x00\x03\x01")  # a boolean body
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    assert stream.feed(frame + build_hdlc_frame(LLC + b"\x01\x02")) == []
    assert [r.reason for r in rejects] == [
        RejectReason.UNKNOWN_LAYOUT,
        RejectReason.UNSUPPORTED_APDU,
    ]
    assert rejects[0].frame == frame
    assert stream.protocol is Protocol.HDLC


def test_p1_layout_frame_error_is_counted() -> None:
    telegram = build_p1_telegram("KAM5", ["nothing useful"])
    rejects: list[Rejected] = []
    assert MeterStream(on_reject=rejects.append).feed(telegram) == []
    assert [r.reason for r in rejects] == [RejectReason.P1_MALFORMED]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("decode_notification", RejectReason.UNKNOWN_LAYOUT),
        ("decode_telegram", RejectReason.P1_MALFORMED),
        ("ApduDecoder.decode", RejectReason.MALFORMED_APDU),
    ],
)
def test_unexpected_decoder_exceptions_never_escape(
    monkeypatch: pytest.MonkeyPatch, target: str, reason: RejectReason
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise KeyError("surprise")

    if "." in target:
        monkeypatch.setattr(ApduDecoder, "decode", boom)
    else:
        monkeypatch.setattr(stream_module, target, boom)
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    data = _sample(Layout.P1_SE)[1] if target == "decode_telegram" else _aidon_frames()[0]
    assert stream.feed(data) == []
    assert [r.reason for r in rejects] == [reason]
    assert rejects[0].detail == "KeyError: 'surprise'"


def test_layout_frame_error_through_monkeypatch(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise FrameError(RejectReason.UNKNOWN_LAYOUT, "test")

    monkeypatch.setattr(stream_module, "decode_notification", refuse)
    stream = MeterStream()
    assert stream.feed(_aidon_frames()[0]) == []
    assert stream.counters.rejected == {RejectReason.UNKNOWN_LAYOUT: 1}


def test_callback_errors_never_escape() -> None:
    def callback(_rejected: Rejected) -> None:
        raise RuntimeError("callback bug")

    frames = _aidon_frames()
    broken = bytearray(frames[0])
    broken[-3] ^= 1
    undecodable = build_hdlc_frame(LLC + b"\x01")
    stream = MeterStream(on_reject=callback)
    assert len(stream.feed(bytes(broken) + undecodable + frames[1])) == 1
    assert sum(stream.counters.rejected.values()) == 2


def test_internal_error_drops_the_buffer_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _aidon_frames()
    stream = MeterStream()

    def broken(*_args: object) -> None:
        raise IndexError("bug")

    with monkeypatch.context() as patch:
        patch.setattr(FrameReader, "_lock", broken)  # runs for every accepted frame
        assert stream.feed(frames[0]) == []
    assert stream._reader.buffered == 0
    assert len(stream.feed(frames[1])) == 1


def test_reset_drops_partial_frames_and_keeps_counters() -> None:
    frames = _aidon_frames()
    stream = MeterStream()
    assert len(stream.feed(frames[0])) == 1
    stream.feed(frames[1][:50])
    stream.reset()
    assert stream.feed(frames[1][50:]) == []
    assert stream.counters.frames_ok == 1
    assert stream.counters.bytes_discarded >= 50
    assert len(stream.feed(frames[2])) == 1
    # a partial block transfer is dropped too
    blocks = encode_block_transfer(_info(frames[1])[3:], block_size=40)
    stream.feed(build_hdlc_frame(LLC + blocks[0]))
    stream.reset()
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    stream.feed(build_hdlc_frame(LLC + blocks[0]))
    stream.reset()
    assert stream.feed(b"".join(build_hdlc_frame(LLC + block) for block in blocks[1:])) == []
    assert {r.reason for r in rejects} == {RejectReason.BLOCK_TRANSFER}
    assert len(rejects) == len(blocks) - 1


def test_last_frames_is_bounded() -> None:
    frame = _aidon_frames()[0]
    stream = MeterStream()
    stream.feed(frame * (LAST_FRAMES + 5))
    assert len(stream.last_frames) == LAST_FRAMES
    assert set(stream.last_frames) == {frame}


def test_feed_accepts_bytes_likes() -> None:
    frame = _aidon_frames()[0]
    stream = MeterStream()
    assert len(stream.feed(bytearray(frame))) == 1
    assert len(stream.feed(memoryview(frame))) == 1


# --- memory and robustness ---------------------------------------------------------


def test_memory_is_bounded_over_10_mb_of_garbage() -> None:
    rng = random.Random(3)
    chunk_random = rng.randbytes(1 << 16)
    no_starts = bytes(0 if b in b"\x7e\x68/\x0f\xe6\xdb\xdc" else b for b in range(256))
    chunk_no_starts = chunk_random.translate(no_starts)  # no byte a frame can start with
    chunk_text = (b"/KAM5\r\n" + b"1-0:1.8.0(00004996.909*kWh)\r\n" * 2300)[: 1 << 16]
    chunk_flags = (b"\x7e\xa0\x10\x41\x08\x83\x13" * 10000)[: 1 << 16]
    chunk_zero = bytes(1 << 16)
    stream = MeterStream()
    stream.feed(chunk_random)  # warm up caches and compiled patterns
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        fed = 0
        for index in range(160):  # 10 MiB; false starts take longer to reject: fewer of them
            chunk = (chunk_no_starts, chunk_zero, chunk_text, chunk_no_starts)[index % 4]
            if index % 8 == 1:
                chunk = chunk_flags if index == 81 else chunk_random
            stream.feed(chunk)
            fed += len(chunk)
            assert stream._reader.buffered <= 8192
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fed >= 10 * 1024 * 1024
    assert current - base < 64 * 1024
    assert peak - base < 512 * 1024
    assert stream.counters.bytes_discarded >= fed - 8192


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    stream = MeterStream()
    for chunk in chunks:
        assert isinstance(stream.feed(chunk), list)
    total = sum(len(c) for c in chunks)
    counters = stream.counters
    assert counters.bytes_received == total
    assert counters.bytes_discarded + stream._reader.buffered <= total


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"\x7e\xa0", b"\x68\x10\x10\x68", b"/ABC5\r\n", LLC + b"\x0f"]),
            st.sampled_from([_aidon_frames()[1], _sample(Layout.P1_SE)[1]]),
        ),
        max_size=10,
    ),
    st.randoms(use_true_random=False),
)
def test_frames_among_random_bytes_never_raise(parts: list[bytes], rng: random.Random) -> None:
    data = b"".join(parts)
    cuts = sorted(rng.sample(range(1, len(data)), min(5, max(0, len(data) - 1))))
    readings = _feed(MeterStream(), data, cuts)
    assert all(isinstance(r, Reading) for r in readings)


def test_bit_flips_in_a_frame_never_yield_a_reading() -> None:
    frame = _aidon_frames()[0]
    follower = _aidon_frames()[1]
    for index in range(len(frame)):
        for bit in range(8):
            broken = bytearray(frame)
            broken[index] ^= 1 << bit
            readings = MeterStream().feed(bytes(broken) + follower + PAD)
            assert [r.list_kind for r in readings] == [ListKind.STATUS], (index, bit)


def test_mbus_and_p1_builders_reach_the_stream() -> None:
    _, raw = _sample(Layout.OBIS_ARRAY_AT)
    assert raw[:1] == b"\x68"
    stream = MeterStream(_options(Layout.OBIS_ARRAY_AT))
    segments = build_mbus_frames(b"\x0f\x00\x00\x00\x00\x00\x01\x00")  # empty array body
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    assert stream.feed(segments) == []
    assert stream.protocol is Protocol.MBUS
    assert len(rejects) == 1


def test_frame_right_at_the_end_of_the_lock_window() -> None:
    first, second = _aidon_frames()[:2]
    for gap in range(LOCK_WINDOW - len(first) - 4, LOCK_WINDOW - len(first) + 4):
        data = first + bytes(gap) + second  # the second frame starts around the lock's end
        whole = MeterStream().feed(data)
        assert len(whole) == 2, gap
        assert _feed(MeterStream(), data, [len(first) + gap - 1]) == whole


def test_block_transfer_frames_kept_for_diagnostics_are_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_module, "MAX_BLOCK_FRAMES", 150)
    blocks = encode_block_transfer(_info(_aidon_frames()[2])[3:], block_size=100)
    frames = [build_hdlc_frame(LLC + block) for block in blocks]
    readings = MeterStream().feed(b"".join(frames))
    assert len(readings) == 1
    assert readings[0].frame == frames[0] + frames[-1]  # the middle ones went over the cap


FRAMING_REASONS = {
    RejectReason.HDLC_HEADER_CHECKSUM,
    RejectReason.HDLC_FRAME_CHECKSUM,
    RejectReason.HDLC_BAD_LENGTH,
    RejectReason.HDLC_SEGMENT,
    RejectReason.MBUS_CHECKSUM,
    RejectReason.MBUS_BAD_FRAME,
    RejectReason.MBUS_SEGMENT,
    RejectReason.P1_CRC,
    RejectReason.OVERSIZE,
}


def test_garbage_reports_only_framing_failures() -> None:
    # An APDU or layout error would tell the integration that its serial settings are
    # right; random bytes (wrong baud or parity) must never produce one.
    rng = random.Random(5)
    stream = MeterStream()
    for _ in range(48):
        stream.feed(rng.randbytes(1 << 16))
    assert stream.counters.frames_ok == 0
    assert set(stream.counters.rejected) <= FRAMING_REASONS
    assert sum(stream.counters.rejected.values()) > 100


def test_weak_bare_apdu_refusals_are_reported_once_the_stream_carries_them() -> None:
    weak = b"\x0f\x00\x00\x00\x00\x00\x03\x01"  # parses (a boolean body), no layout for it
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    assert stream.feed(weak) == []
    assert rejects == []
    assert stream.feed(LLC + weak) == []  # the LLC makes it a real candidate
    assert [r.reason for r in rejects] == [RejectReason.UNKNOWN_LAYOUT]
    apdu = _info(_aidon_frames()[0])[3:]
    assert len(stream.feed(apdu + apdu)) == 2  # back to back: the stream carries them
    assert stream.feed(weak) == []
    assert [r.reason for r in rejects] == [RejectReason.UNKNOWN_LAYOUT] * 2


def test_feed_from_on_reject_is_taken_in_by_the_running_feed() -> None:
    frames = _aidon_frames()
    broken = bytearray(frames[0])
    broken[-3] ^= 1
    stream: MeterStream

    def on_reject(_rejected: Rejected) -> None:
        assert stream.feed(frames[2]) == []

    stream = MeterStream(on_reject=on_reject)
    readings = stream.feed(bytes(broken) + frames[1])
    assert [r.list_kind for r in readings] == [ListKind.STATUS, ListKind.ENERGY]


def test_frame_without_info_is_ignored() -> None:
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    assert stream.feed(build_hdlc_frame(b"", control=0x11)) == []
    assert rejects == []
    assert stream.protocol is Protocol.HDLC


def test_a_plain_apdu_inside_a_block_transfer_keeps_its_own_frame() -> None:
    """Reading.frame: a plain APDU between blocks is its own; the transfer gets all its blocks."""
    apdu = _info(_aidon_frames()[0])[3:]
    blocks = encode_block_transfer(apdu, block_size=len(apdu) // 2 + 1)
    assert len(blocks) == 2
    first, second = (build_hdlc_frame(LLC + block) for block in blocks)
    plain = build_hdlc_frame(LLC + apdu)
    readings = MeterStream().feed(first + plain + second)
    assert [r.frame for r in readings] == [plain, first + second]
    assert readings[0].values == readings[1].values


# --- a frame cut short never holds back the next -------------------------------------


def _room(layout: Layout) -> int:
    """The most of its longest frame that may stay with its shortest inside its length."""
    kinds = list_kinds(layout)
    return len(_sample(layout, kinds[-1])[1]) - len(_sample(layout, kinds[0])[1]) - 1


MIXED_LAYOUTS = [layout for layout in Layout if len(list_kinds(layout)) > 1 and _room(layout) > 12]
"""Layouts with lists of different sizes: a short frame can sit inside a cut long one."""


@pytest.mark.parametrize("layout", MIXED_LAYOUTS)
@pytest.mark.parametrize("kept", ["header", "half", "most"])
def test_short_frames_after_a_cut_long_one_are_read_with_their_last_byte(
    layout: Layout, kept: str
) -> None:
    """A cut frame claims bytes that never come: the frames after it must not wait for them.

    Two short frames follow a long one cut short, fed byte by byte: each reading comes
    with its own frame's last byte (not bytes later, when the cut one's claimed length
    would be filled), and the cut one is counted once, as cut short.
    """
    kinds = list_kinds(layout)
    want, short = _sample(layout, kinds[0])
    _, long = _sample(layout, kinds[-1])
    room = _room(layout)
    size = {"header": 12, "half": min(room, len(long) // 2), "most": room}[kept]
    assert 12 <= size <= room
    cut = long[:size]
    rejects: list[Rejected] = []
    stream = MeterStream(_options(layout), on_reject=rejects.append)
    data = cut + short + short
    got: list[tuple[int, Reading]] = []
    for index in range(len(data)):
        got += [(index, reading) for reading in stream.feed(data[index : index + 1])]
    assert [index for index, _ in got] == [len(cut) + len(short) - 1, len(data) - 1]
    for _, reading in got:
        _same(reading, want)
    assert len(rejects) == 1
    assert (rejects[0].reason, rejects[0].frame) == (RejectReason.HDLC_BAD_LENGTH, cut)
    assert rejects[0].detail == f"cut short: a whole frame starts {size} bytes in"
    assert stream.counters.rejected == {RejectReason.HDLC_BAD_LENGTH: 1}


def test_intact_mbus_frame_after_a_cut_one_is_read_at_once() -> None:
    long = build_mbus_frames(b"\x0f" + bytes(120))
    short = build_mbus_frames(b"\x0f\x00\x00\x00\x00\x00\x01\x00")
    rejects: list[Rejected] = []
    reader = FrameReader(on_reject=rejects.append)
    assert reader.feed(long[:40]) == []
    messages = reader.feed(short)
    assert [m.frame for m in messages] == [short]
    assert [(r.reason, r.frame) for r in rejects] == [(RejectReason.MBUS_BAD_FRAME, long[:40])]


def test_cut_frame_followed_by_several_frames_in_one_chunk() -> None:
    frames = _aidon_frames()
    stream = MeterStream()
    readings = stream.feed(frames[2][:150] + frames[0] * 3)  # all three inside its length
    assert [r.list_kind for r in readings] == [ListKind.POWER] * 3
    assert stream.counters.rejected == {RejectReason.HDLC_BAD_LENGTH: 1}


def test_frame_arriving_in_pieces_is_not_taken_for_a_cut_one() -> None:
    """Inside a frame still arriving, headers that are not whole frames prove no cut.

    The info field holds a valid header whose claimed length runs past the frame's end
    (it is re-checked as bytes come, then ends up refused) and a header-only frame with a
    broken HCS: the outer frame must still be read whole, with nothing rejected.
    """
    inner_whole = build_hdlc_frame(b"\x0f" + bytes(40))
    inner_header = inner_whole[:12]  # flag, format, addresses, control, HCS: a valid head
    broken = bytearray(build_hdlc_frame(b""))
    broken[-2] ^= 0xFF
    outer = build_hdlc_frame(LLC + b"\x0f" + bytes(8) + inner_header + bytes(broken) + bytes(30))
    reader = FrameReader()
    messages = []
    for index in range(0, len(outer), 5):
        messages += reader.feed(outer[index : index + 5])
    assert [m.frame for m in messages] == [outer]
    assert reader.counters.rejected == {}


# --- general block transfer: a block counts only once it is taken, with its own kind ---


def _blocks(layout: Layout = Layout.AIDON_NO) -> tuple[Reading, list[bytes]]:
    """A reading and its APDU as LLC-led block-transfer blocks (three or more)."""
    want, raw = _sample(layout)
    blocks = [LLC + block for block in encode_block_transfer(_info(raw)[3:], block_size=120)]
    assert len(blocks) >= 3
    return want, blocks


def test_withheld_bare_block_is_never_joined_to_later_blocks() -> None:
    """A bare block after junk is withheld; never taken, it must not start a transfer.

    Blocks 1..n-1 come after junk (each withheld, none confirmed); the last block comes
    after junk too and is then confirmed by a bare notification at its end. Storing the
    withheld blocks when they were vetted would publish a reading built from bytes the
    framing never took.
    """
    want, blocks = _blocks()
    notification = _info(_aidon_frames()[0])
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    data = b"".join(b"\x55\x55" + block for block in blocks) + notification
    readings = stream.feed(data + PAD)
    assert [r.list_kind for r in readings] == [ListKind.POWER]
    assert readings[0].frame == notification
    assert [r.reason for r in rejects] == [RejectReason.BLOCK_TRANSFER]
    assert "expected block 1" in rejects[0].detail
    assert want.list_kind is ListKind.ENERGY


def test_bare_blocks_after_junk_are_taken_once_confirmed() -> None:
    """Back to back after junk, the blocks confirm each other and make the reading."""
    want, blocks = _blocks()
    readings = MeterStream().feed(b"\x55\x55" + b"".join(blocks) + PAD)
    assert len(readings) == 1
    assert readings[0].values == want.values
    assert (readings[0].protocol, readings[0].frame) == (Protocol.APDU, b"".join(blocks))


def test_a_new_first_block_drops_the_raw_frames_of_the_abandoned_transfer() -> None:
    _, other = _blocks(Layout.LG_E350_NO)
    want, blocks = _blocks()
    frames = [build_hdlc_frame(block) for block in [other[0], *blocks]]
    stream = MeterStream()
    readings = stream.feed(b"".join(frames))
    assert len(readings) == 1
    _same(readings[0], want)
    assert readings[0].frame == b"".join(frames[1:])  # not the abandoned block's frame


def test_blocks_of_one_transfer_never_mix_bare_and_framed() -> None:
    """A bare block at a stream's start (taken) and framed blocks after it: no reading.

    A connection that opens inside a frame, just at its APDU, delivers its block bare;
    the transfer's other blocks come in frames. Joined, the first block's bytes would
    count although no checksum covered them; the transfer restarts instead.
    """
    want, blocks = _blocks()
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    framed = b"".join(build_hdlc_frame(block) for block in blocks[1:])
    assert stream.feed(blocks[0] + framed) == []
    assert [r.reason for r in rejects] == [RejectReason.BLOCK_TRANSFER] * (len(blocks) - 1)
    assert rejects[0].detail == "block 2, expected block 1"
    # the whole transfer framed after that reads as usual
    readings = stream.feed(b"".join(build_hdlc_frame(block) for block in blocks))
    assert len(readings) == 1
    _same(readings[0], want)


def test_whole_frame_inside_a_waiting_bare_apdu_candidate_is_read_at_once() -> None:
    """A cold stream's first bytes look like an APDU claiming 256 more: a frame inside wins.

    The candidate is no frame, so nothing is counted as rejected; the frame is read
    without waiting for the bytes the candidate claims.
    """
    frame = _aidon_frames()[0]
    false_start = b"\x0f\x00\x00\x00\x00\x00\x09\x82\x01\x00"  # octet string of 256
    rejects: list[Rejected] = []
    stream = MeterStream(on_reject=rejects.append)
    readings = stream.feed(false_start + frame)
    assert [r.list_kind for r in readings] == [ListKind.POWER]
    assert rejects == []
    assert stream.counters.rejected == {}


def test_flush_reads_only_what_completes_a_reading() -> None:
    """A withheld block that is not the last is stored, not read; nothing else waits."""
    _, blocks = _blocks()
    stream = MeterStream()
    assert stream.feed(blocks[0]) == []  # withheld: nothing confirms it
    assert stream.flush() == []  # taken now, but a transfer needs its other blocks
    assert stream.flush() == []


def test_flush_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = MeterStream()
    apdu = _info(_aidon_frames()[0])
    assert stream.feed(apdu) == []

    def broken(_message: object) -> None:
        raise RuntimeError("planted")

    monkeypatch.setattr(stream, "_decode", broken)
    assert stream.flush() == []  # logged, the buffer dropped
    monkeypatch.undo()
    assert [r.list_kind for r in stream.feed(_aidon_frames()[0])] == [ListKind.POWER]
