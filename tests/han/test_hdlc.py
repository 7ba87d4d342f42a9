"""HDLC type-3 framing: length-delimited, HCS/FCS, flags, segments, OSS-brikken repair."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from custom_components.hanport.han.crc import crc16_x25
from custom_components.hanport.han.errors import Rejected, RejectReason
from custom_components.hanport.han.framing import (
    NOT_A_FRAME,
    Bad,
    Found,
    FrameReader,
    HdlcFrame,
    Message,
    build_hdlc_frame,
    parse_hdlc,
)
from custom_components.hanport.han.framing.hdlc import HdlcReassembler, whole_frame
from custom_components.hanport.han.reading import Protocol

FRAMES_JSON = Path(__file__).resolve().parents[3] / "shared" / "han" / "frames.json"
LLC = b"\xe6\xe7\x00"
# An info field with raw 0x7E and 0x7D inside (HAN frames are not byte-stuffed).
INFO = LLC + bytes.fromhex("0f40000000000101020309060100010700ff0600007e7d")


PAD = bytes(2100)
"""Zeros after a test's frames, so that every false start (up to 2049 bytes) is decided."""


def _reader(rejects: list[Rejected] | None = None) -> FrameReader:
    return FrameReader(
        formats={Protocol.HDLC}, on_reject=rejects.append if rejects is not None else None
    )


def _feed(data: bytes, cuts: list[int] | None = None) -> tuple[list[Message], FrameReader]:
    reader = _reader()
    messages: list[Message] = []
    last = 0
    for cut in [*(cuts or []), len(data)]:
        messages += reader.feed(data[last:cut])
        last = cut
    return messages, reader


def _payloads(messages: list[Message]) -> list[bytes]:
    return [m.payload for m in messages]


def _frame(info: bytes = INFO, **kwargs: object) -> bytes:
    return build_hdlc_frame(info, **kwargs)  # type: ignore[arg-type]


# --- builder and single-frame parsing --------------------------------------------


def test_builder_layout() -> None:
    frame = build_hdlc_frame(b"\x01\x02", dest=b"\x2b", src=b"\x21", control=0x13)
    body = frame[1:-1]
    assert frame[0] == frame[-1] == 0x7E
    assert body[0] == 0xA0
    assert body[1] == len(body) == 11
    assert body[2:5] == b"\x2b\x21\x13"
    assert body[5:7] == crc16_x25(body[:5]).to_bytes(2, "little")
    assert body[7:9] == b"\x01\x02"
    assert body[9:] == crc16_x25(body[:9]).to_bytes(2, "little")


@pytest.mark.parametrize(
    ("dest", "src"),
    [
        (b"\x41", b"\x08\x83"),
        (b"\x01", b"\x02\x01"),
        (b"\xce\xff", b"\x03"),
        (b"\x00\x02\x04\x07", b"\x00\x00\x00\x01"),
        (b"\x2b", b"\x21"),
    ],
)
@pytest.mark.parametrize("control", [0x13, 0x10, 0x03, 0xFF])
def test_any_address_length_and_control(dest: bytes, src: bytes, control: int) -> None:
    raw = build_hdlc_frame(INFO, dest=dest, src=src, control=control)
    parsed = parse_hdlc(raw, 0)
    assert isinstance(parsed, Found)
    frame = parsed.item
    assert (frame.dest, frame.src, frame.control, frame.info) == (dest, src, control, INFO)
    assert frame.raw == raw
    assert not frame.segmented
    assert not frame.repaired
    assert parsed.end == len(raw) - 1  # the closing flag may open the next frame
    assert parsed.trailer == 1


def test_frame_without_info_has_one_crc() -> None:
    raw = build_hdlc_frame(b"", dest=b"\x03", src=b"\x21", control=0x93)
    assert len(raw) == 9  # flags, format, 2 addresses, control, one CRC
    parsed = parse_hdlc(raw, 0)
    assert isinstance(parsed, Found)
    assert parsed.item.info == b""
    messages, _ = _feed(raw)
    assert _payloads(messages) == [b""]


def test_segmented_bit() -> None:
    parsed = parse_hdlc(build_hdlc_frame(INFO, segmented=True), 0)
    assert isinstance(parsed, Found)
    assert parsed.item.segmented


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dest": b""},
        {"dest": b"\x40"},
        {"src": b"\x01\x01"},
        {"src": b"\x00" * 4 + b"\x01"},
        {"control": 0x100},
    ],
)
def test_builder_rejects_bad_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        build_hdlc_frame(INFO, **kwargs)  # type: ignore[arg-type]


def test_builder_rejects_oversize() -> None:
    build_hdlc_frame(bytes(2047 - 10))
    with pytest.raises(ValueError, match="exceeds"):
        build_hdlc_frame(bytes(2047 - 9))


def test_parse_needs_more_until_the_closing_flag() -> None:
    raw = _frame()
    for size in range(1, len(raw)):
        assert parse_hdlc(raw[:size], 0) is None
    assert isinstance(parse_hdlc(raw, 0), Found)


def test_parse_not_a_frame() -> None:
    assert parse_hdlc(b"\x7e\x50\x00", 0) is NOT_A_FRAME
    assert parse_hdlc(b"\x00\xa0\x10", 0) is NOT_A_FRAME


@pytest.mark.parametrize(
    ("body", "reason", "detail"),
    [
        (b"\xa0\x05\x41\x83\x13", RejectReason.HDLC_BAD_LENGTH, "shorter than a header"),
        (b"\xa0\x09\x40\x40\x40\x40\x40\x00\x00", RejectReason.HDLC_HEADER_CHECKSUM, "address"),
        (b"\xa0\x07\x41\x08\x82\x13\x00", RejectReason.HDLC_BAD_LENGTH, "shorter than its header"),
    ],
)
def test_malformed_headers(body: bytes, reason: RejectReason, detail: str) -> None:
    parsed = parse_hdlc(b"\x7e" + body + b"\x7e" + bytes(20), 0)
    assert isinstance(parsed, Bad)
    assert parsed.reason is reason
    assert detail in parsed.detail
    assert not parsed.evidence


def test_no_room_for_fcs() -> None:
    header = b"\xa0\x08\x41\x21\x13"  # length 8 = header 5 + HCS 2 + 1: no room for an FCS
    body = header + crc16_x25(header).to_bytes(2, "little") + b"\x00"
    parsed = parse_hdlc(b"\x7e" + body + b"\x7e", 0)
    assert isinstance(parsed, Bad)
    assert parsed.reason is RejectReason.HDLC_BAD_LENGTH
    assert parsed.evidence


def test_reject_reasons_and_report() -> None:
    good = _frame()
    bad_hcs = bytearray(good)
    bad_hcs[6] ^= 0x01
    bad_fcs = bytearray(good)
    bad_fcs[-3] ^= 0x80
    no_flag = good[:-1] + b"\x00"
    rejects: list[Rejected] = []
    reader = _reader(rejects)
    for data in (bytes(bad_hcs), bytes(bad_fcs), no_flag):
        assert reader.feed(data + b"\x00" * 4) == []
    assert [r.reason for r in rejects] == [
        RejectReason.HDLC_HEADER_CHECKSUM,
        RejectReason.HDLC_FRAME_CHECKSUM,
        RejectReason.HDLC_BAD_LENGTH,
    ]
    assert rejects[1].frame == bytes(bad_fcs)
    assert reader.counters.rejected == dict.fromkeys((r.reason for r in rejects), 1)
    assert reader.counters.frames_total == 3


# --- the stream: splits, flags, garbage ------------------------------------------


def _stream() -> tuple[bytes, list[bytes]]:
    infos = [INFO, LLC + b"\x0f" + bytes(range(256)) * 2, b"\x7e\xa0\x10" * 9, b"\x7e"]
    return b"".join(_frame(info) for info in infos), infos


def test_split_at_every_byte_boundary() -> None:
    data, infos = _stream()
    whole, _ = _feed(data)
    assert _payloads(whole) == infos
    for cut in range(1, len(data)):
        messages, reader = _feed(data, [cut])
        assert messages == whole, cut
        assert reader.counters.bytes_discarded == 0


def test_byte_by_byte_and_random_chunks() -> None:
    data, infos = _stream()
    assert _payloads(_feed(data, list(range(1, len(data))))[0]) == infos
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(data)), 5))
        assert _payloads(_feed(data, cuts)[0]) == infos


def test_back_to_back_frames_share_a_flag() -> None:
    first, second = _frame(), _frame(LLC + b"\x0f\x01")
    for data, extra_flags in (
        (first[:-1] + second, 0),
        (first + second, 0),
        (first + b"\x7e\x7e" + second, 2),
    ):
        messages, reader = _feed(data)
        assert _payloads(messages) == [INFO, LLC + b"\x0f\x01"]
        assert reader.counters.bytes_discarded == extra_flags


def test_garbage_between_frames() -> None:
    rng = random.Random(1)
    frames = [_frame(INFO + bytes([i])) for i in range(30)]
    data = b"".join(rng.randbytes(rng.randrange(0, 300)) + frame for frame in frames)
    data += bytes(2100)  # lets any false start in the garbage be decided
    messages, reader = _feed(data, sorted(rng.sample(range(1, len(data)), 40)))
    assert _payloads(messages) == [INFO + bytes([i]) for i in range(30)]
    accepted = sum(len(f) for f in frames)
    assert reader.counters.bytes_discarded == len(data) - accepted - reader.buffered


def test_resume_one_byte_after_a_rejected_flag() -> None:
    # A false start claims 0x0FF bytes, which covers the real frame behind it.
    data = b"\x7e\xa0\xff\x00" + _frame() + bytes(300)
    messages, reader = _feed(data)
    assert _payloads(messages) == [INFO]
    assert reader.counters.rejected == {RejectReason.HDLC_HEADER_CHECKSUM: 1}
    # A rejected real frame that carries a valid frame inside: found after the rejection.
    inner = _frame(LLC + b"\x0f\x02")
    outer = bytearray(_frame(INFO + inner + b"\x00"))
    outer[-2] ^= 0xFF  # FCS broken
    messages, _ = _feed(bytes(outer))
    assert _payloads(messages) == [LLC + b"\x0f\x02"]


def test_false_start_is_decided_by_its_header() -> None:
    rejects: list[Rejected] = []
    reader = _reader(rejects)
    reader.feed(b"\x7e\xa7\xff" + bytes(11))
    assert rejects == []  # not yet the longest header, its HCS and one byte
    reader.feed(b"\x00")  # no need to wait for the 2047 bytes it claims
    assert [r.reason for r in rejects] == [RejectReason.HDLC_HEADER_CHECKSUM]
    assert rejects[0].frame == b"\x7e\xa7\xff" + bytes(12)
    assert reader.buffered <= 4


def test_waits_for_a_long_frame_but_stays_bounded() -> None:
    longest = build_hdlc_frame(bytes(2047 - 10))
    assert len(longest) == 2049
    reader = _reader()
    reader.feed(longest[:20])
    for _ in range(12):
        reader.feed(bytes(200))
        assert reader.buffered <= 2049 + 200
    assert reader.counters.rejected == {RejectReason.HDLC_BAD_LENGTH: 1}


# --- mutations never yield a frame ------------------------------------------------


def test_every_single_bit_flip_is_rejected() -> None:
    raw = _frame()
    follower = _frame(LLC + b"\x0f\x03")
    for index in range(len(raw)):
        for bit in range(8):
            mutated = bytearray(raw)
            mutated[index] ^= 1 << bit
            messages, _ = _feed(bytes(mutated) + follower + PAD)
            assert _payloads(messages) == [LLC + b"\x0f\x03"], (index, bit)


def test_every_truncation_is_rejected() -> None:
    raw = _frame()
    follower = _frame(LLC + b"\x0f\x03")
    for size in range(1, len(raw) - 1):
        messages, _ = _feed(raw[:size] + follower + PAD)
        assert _payloads(messages) == [LLC + b"\x0f\x03"], size


def test_every_length_field_value_but_the_true_one_is_rejected() -> None:
    raw = _frame()
    tail = PAD
    for fmt in range(0xA000, 0xB000):
        mutated = raw[:1] + fmt.to_bytes(2, "big") + raw[3:]
        messages, _ = _feed(mutated + tail)
        if mutated == raw:
            assert _payloads(messages) == [INFO]
        else:
            assert messages == [], hex(fmt)


# --- segmentation ----------------------------------------------------------------


def _segments(info: bytes, size: int, **kwargs: object) -> list[bytes]:
    parts = [info[i : i + size] for i in range(0, len(info), size)]
    return [_frame(part, segmented=i < len(parts) - 1, **kwargs) for i, part in enumerate(parts)]


def test_segments_reassembled() -> None:
    info = LLC + b"\x0f" + bytes(range(200))
    segments = _segments(info, 64)
    assert len(segments) == 4
    data = b"".join(segments) + _frame()
    messages, _ = _feed(data)
    assert _payloads(messages) == [info, INFO]
    assert messages[0].frame == b"".join(segments)
    for cut in range(1, len(data), 7):
        assert _feed(data, [cut])[0] == messages


def test_segment_from_another_sender_drops_the_partial_message() -> None:
    first = _segments(LLC + bytes(100), 60)
    other = _frame(INFO, dest=b"\x03")
    rejects: list[Rejected] = []
    reader = _reader(rejects)
    messages = reader.feed(first[0] + other)
    assert _payloads(messages) == [INFO]
    assert [r.reason for r in rejects] == [RejectReason.HDLC_SEGMENT]
    assert rejects[0].frame == first[0]


def test_segment_without_a_start_is_rejected_with_its_rest() -> None:
    rejects: list[Rejected] = []
    reader = _reader(rejects)
    middle = _frame(b"\x01\x02\x03", segmented=True)
    last = _frame(b"\x04")
    assert reader.feed(middle + middle + last + last) == [Message(Protocol.HDLC, b"\x04", last)]
    assert [r.reason for r in rejects] == [RejectReason.HDLC_SEGMENT] * 3


def test_rejected_frame_between_segments_drops_the_message() -> None:
    segments = _segments(LLC + bytes(150), 60)
    broken = bytearray(segments[1])
    broken[-2] ^= 1
    rejects: list[Rejected] = []
    reader = _reader(rejects)
    assert reader.feed(segments[0] + bytes(broken) + segments[2]) == []
    assert [r.reason for r in rejects] == [
        RejectReason.HDLC_FRAME_CHECKSUM,
        RejectReason.HDLC_SEGMENT,  # the partial message
        RejectReason.HDLC_SEGMENT,  # its last segment
    ]
    assert rejects[1].frame == segments[0]
    # the next message is taken again
    assert _payloads(reader.feed(b"".join(segments))) == [LLC + bytes(150)]


def test_reassembly_is_capped() -> None:
    assembler = HdlcReassembler(max_size=100)
    frames = [HdlcFrame(b"r", b"\x41", b"\x83", 0x13, True, LLC + bytes(60))] * 2
    assert assembler.add(frames[0]) == (None, [])
    assert assembler.pending
    complete, bads = assembler.add(frames[1])
    assert complete is None
    assert [b.reason for b in bads] == [RejectReason.OVERSIZE]
    assert assembler.abandon("nothing pending") is None  # the message was dropped


# --- OSS-brikken: every 0x0A became 0x0D 0x0A ------------------------------------

OSS_INFO = LLC + b"\x0f\x0a\x00\x0d\x0a\x01\x0a\x0a\x7e\x0d"


def _oss(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def test_oss_expanded_frames_are_repaired() -> None:
    frames = [_frame(OSS_INFO), _frame(INFO), _frame(OSS_INFO + b"\x0a")]
    data = _oss(b"".join(frames))
    messages, reader = _feed(data)
    assert _payloads(messages) == [OSS_INFO, INFO, OSS_INFO + b"\x0a"]
    assert [m.frame for m in messages] == frames
    assert reader.counters.rejected == {}
    for cut in range(1, len(data)):
        assert _feed(data, [cut])[0] == messages, cut


def test_oss_repair_marks_the_frame() -> None:
    expanded = _oss(_frame(OSS_INFO))
    parsed = parse_hdlc(expanded, 0)
    assert isinstance(parsed, Found)
    assert parsed.item.repaired
    assert parsed.item.raw == _frame(OSS_INFO)
    assert parsed.end == len(expanded) - 1
    assert parsed.trailer == 1


def test_oss_repair_without_closing_flag() -> None:
    expanded = _oss(_frame(OSS_INFO))[:-1]  # hass-AMS cut the flag
    parsed = parse_hdlc(expanded, 0)
    assert isinstance(parsed, Found)
    assert parsed.trailer == 0
    # the stream form: the next frame's data follows directly
    messages, _ = _feed(expanded + b"\x01\x02" + _frame())
    assert _payloads(messages) == [OSS_INFO, INFO]


def test_oss_repair_of_the_length_field() -> None:
    raw = build_hdlc_frame(b"\x01", dest=b"\x03", src=b"\x21")
    assert raw[1:3] == b"\xa0\x0a"  # the LF is in the length field
    messages, _ = _feed(_oss(raw) + _frame())
    assert _payloads(messages) == [b"\x01", INFO]


def test_oss_repair_accepts_only_valid_checksums() -> None:
    expanded = _oss(_frame(OSS_INFO))
    follower = _frame(INFO)
    for index in range(1, len(expanded) - 1):
        for bit in range(8):
            mutated = bytearray(expanded)
            mutated[index] ^= 1 << bit
            messages, _ = _feed(bytes(mutated) + follower + PAD)
            assert _payloads(messages) == [INFO], (index, bit)


def test_crlf_in_a_frame_that_was_not_expanded() -> None:
    raw = _frame(OSS_INFO)  # contains 0D 0A as sent: the normal path takes it
    parsed = parse_hdlc(raw, 0)
    assert isinstance(parsed, Found)
    assert not parsed.item.repaired
    broken = bytearray(raw)
    broken[-2] ^= 1
    bad = parse_hdlc(bytes(broken), 0)
    assert isinstance(bad, Bad)
    assert bad.reason is RejectReason.HDLC_FRAME_CHECKSUM


def test_oss_repair_waits_for_the_expanded_end() -> None:
    expanded = _oss(_frame(OSS_INFO + b"\x0a" * 6))
    original_length = len(_frame(OSS_INFO + b"\x0a" * 6))
    assert parse_hdlc(expanded[: original_length + 1], 0) is None
    assert isinstance(parse_hdlc(expanded, 0), Found)


# --- real captures (read from ../shared at run time) ---------------------------


def _capture(vector_id: str) -> bytes:
    if not FRAMES_JSON.exists():
        pytest.skip("frames.json not available")
    for vector in json.loads(FRAMES_JSON.read_text()):
        if vector["id"] == vector_id:
            return bytes.fromhex(vector["hex"])
    pytest.skip(f"{vector_id} not in frames.json")


@pytest.mark.parametrize("vector_id", ["aidon-no-l1-contains-7d", "kaifa-no-l1-contains-7e"])
def test_captures_with_raw_flags_inside(vector_id: str) -> None:
    raw = _capture(vector_id)
    parsed = parse_hdlc(raw, 0)
    assert isinstance(parsed, Found)
    frame = parsed.item
    rebuilt = build_hdlc_frame(frame.info, dest=frame.dest, src=frame.src, control=frame.control)
    assert rebuilt == raw


def test_oss_capture_is_repaired() -> None:
    raw = _capture("aidon-no-l3-6525-oss-crlf-corrupted")
    messages, reader = _feed(raw)
    assert len(messages) == 1
    assert reader.counters.rejected == {}
    assert messages[0].frame[-1] == 0x7E
    assert messages[0].payload.startswith(LLC + b"\x0f")


@pytest.mark.parametrize(
    ("vector_id", "reason"),
    [
        ("kaifa-no-bad-fcs-mutation", RejectReason.HDLC_FRAME_CHECKSUM),
        ("kaifa-no-bad-length-mutation", RejectReason.HDLC_HEADER_CHECKSUM),
        ("aidon-se-truncated-gh146", RejectReason.HDLC_BAD_LENGTH),
    ],
)
def test_broken_captures_are_rejected(vector_id: str, reason: RejectReason) -> None:
    raw = _capture(vector_id)
    messages, reader = _feed(raw + _frame() + PAD)
    assert _payloads(messages) == [INFO]
    assert reader.counters.rejected == {reason: 1}


def _whole_frame_agrees(buf: bytes) -> bool:
    """whole_frame is None or exactly what parse_hdlc finds for an unsegmented frame."""
    fast = whole_frame(buf, 0)
    if fast is None:
        return True
    parsed = parse_hdlc(buf, 0)
    assert isinstance(parsed, Found), buf.hex()
    frame = parsed.item
    assert not frame.segmented
    assert not frame.repaired
    assert fast == (parsed.end, frame.info, frame.raw), buf.hex()
    return False


def test_whole_frame_is_parse_hdlc_on_every_good_frame_and_nothing_else() -> None:
    """The reader's fast path: same answer as parse_hdlc, or None (parse_hdlc decides)."""
    rng = random.Random(11)
    frames = [
        build_hdlc_frame(INFO),
        build_hdlc_frame(b""),
        build_hdlc_frame(INFO, dest=b"\x02\x03", src=b"\x04\x06\x08\x21", control=0x03),
        build_hdlc_frame(INFO, dest=b"\x00\x00\x00\x01", src=b"\x01"),
        build_hdlc_frame(INFO, segmented=True),
        build_hdlc_frame(rng.randbytes(600)),
    ]
    for frame in frames:
        taken = not _whole_frame_agrees(frame + b"\x00")
        assert taken is (frame[1] & 0x08 == 0)  # every unsegmented good frame is taken
        assert whole_frame(frame[:-1], 0) is None  # no closing flag yet
        assert whole_frame(frame[:2], 0) is None
        for index in range(1, len(frame)):
            for bit in (0x01, 0x10, 0x80):
                broken = bytearray(frame)
                broken[index] ^= bit
                assert _whole_frame_agrees(bytes(broken) + PAD[:4])
    # formats and lengths that are not a frame, addresses that never end
    for head in (b"\x7e\xa0\x03", b"\x7e\xa0\x07\x02\x02\x02\x02\x02", b"\x7e\xa0\x07\x03\x02\x02"):
        assert whole_frame(head + bytes(8) + b"\x7e" * 8, 0) is None
