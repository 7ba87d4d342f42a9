"""Wired M-Bus long frames: checksum, stop byte, CI segments, the Sagemcom L overflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custom_components.hanport.han.errors import Rejected, RejectReason
from custom_components.hanport.han.framing import (
    NOT_A_FRAME,
    Bad,
    Found,
    FrameReader,
    MbusFrame,
    Message,
    build_mbus_frames,
    parse_mbus,
)
from custom_components.hanport.han.framing.mbus import MbusReassembler
from custom_components.hanport.han.reading import Protocol

FRAMES_JSON = Path(__file__).resolve().parents[3] / "shared" / "han" / "frames.json"
APDU = b"\xdb\x08KFM\x00\x00\x00\x00\x01\x81\xf8" + bytes(range(248))
PAD = bytes(270)
"""Zeros after a test's frames, so that every false start (up to 262 bytes) is decided."""


def _reader(rejects: list[Rejected] | None = None) -> FrameReader:
    return FrameReader(
        formats={Protocol.MBUS}, on_reject=rejects.append if rejects is not None else None
    )


def _feed(data: bytes, cuts: list[int] | None = None) -> tuple[list[Message], FrameReader]:
    reader = _reader()
    messages: list[Message] = []
    last = 0
    for cut in [*(cuts or []), len(data)]:
        messages += reader.feed(data[last:cut])
        last = cut
    return messages, reader


def _split(frames: bytes) -> list[bytes]:
    out = []
    while frames:
        size = frames[1] + 6
        out.append(frames[:size])
        frames = frames[size:]
    return out


def test_builder_layout() -> None:
    raw = build_mbus_frames(b"\x0f\x01\x02")
    assert raw[:4] == b"\x68\x08\x08\x68"
    assert raw[4:9] == b"\x53\xff\x10\x01\x67"  # C, A, CI = FIN + segment 0, STSAP, DTSAP
    assert raw[9:12] == b"\x0f\x01\x02"
    assert raw[12] == sum(raw[4:12]) & 0xFF
    assert raw[13] == 0x16
    assert len(raw) == 14


def test_builder_segments() -> None:
    frames = _split(build_mbus_frames(bytes(600), max_segment=250))
    assert [f[6] for f in frames] == [0x00, 0x01, 0x12]
    assert [f[1] for f in frames] == [255, 255, 105]
    assert _split(build_mbus_frames(b""))[0][6] == 0x10
    many = build_mbus_frames(bytes(range(18)), max_segment=1)
    assert [f[6] for f in _split(many)][-3:] == [0x0F, 0x00, 0x11]  # numbers wrap after 15
    assert [m.payload for m in _feed(many)[0]] == [bytes(range(18))]
    with pytest.raises(ValueError, match="max_segment"):
        build_mbus_frames(b"", max_segment=251)


def test_parse_fields() -> None:
    raw = build_mbus_frames(b"\x01\x02", c=0x73, a=0x01, stsap=0x02, dtsap=0x03)
    parsed = parse_mbus(raw, 0)
    assert isinstance(parsed, Found)
    frame = parsed.item
    assert (frame.c, frame.a, frame.ci, frame.stsap, frame.dtsap) == (0x73, 0x01, 0x10, 2, 3)
    assert frame.data == b"\x01\x02"
    assert frame.fin
    assert frame.sequence == 0
    assert frame.raw == raw
    assert parsed.end == len(raw)
    for size in range(len(raw)):
        assert parse_mbus(raw[:size], 0) is None


def test_not_a_frame() -> None:
    assert parse_mbus(b"\x68\x05\x06\x68", 0) is NOT_A_FRAME
    assert parse_mbus(b"\x68\x05\x05\x67", 0) is NOT_A_FRAME


def test_rejects() -> None:
    raw = build_mbus_frames(b"\x01\x02")
    cases = [
        (raw[:-1] + b"\x17", RejectReason.MBUS_BAD_FRAME, False),
        (raw[:-2] + bytes([raw[-2] ^ 1]) + raw[-1:], RejectReason.MBUS_CHECKSUM, True),
    ]
    for data, reason, evidence in cases:
        parsed = parse_mbus(data, 0)
        assert isinstance(parsed, Bad)
        assert parsed.reason is reason
        assert parsed.evidence is evidence
    body = bytes((0x53, 0xFF, 0x30, 0x01, 0x67))
    reserved_ci = b"\x68\x05\x05\x68" + body + bytes((sum(body) & 0xFF, 0x16))
    parsed = parse_mbus(reserved_ci, 0)
    assert isinstance(parsed, Bad)
    assert parsed.reason is RejectReason.MBUS_BAD_FRAME


def test_sagemcom_length_overflow() -> None:
    data = bytes(range(252))  # L = 5 + 252 = 257, sent as 0x01
    body = bytes((0x53, 0xFF, 0x10, 0x01, 0x67)) + data
    raw = b"\x68\x01\x01\x68" + body + bytes((sum(body) & 0xFF, 0x16))
    messages, _ = _feed(raw)
    assert [m.payload for m in messages] == [data]
    assert messages[0].frame == raw


def test_segments_reassembled_and_split_anywhere() -> None:
    data = build_mbus_frames(APDU, max_segment=100) + build_mbus_frames(b"\x0f\x05")
    whole, reader = _feed(data)
    assert [m.payload for m in whole] == [APDU, b"\x0f\x05"]
    assert reader.counters.bytes_discarded == 0
    for cut in range(1, len(data)):
        assert _feed(data, [cut])[0] == whole, cut


def test_garbage_between_frames() -> None:
    frames = [build_mbus_frames(bytes([i]) * 20) for i in range(10)]
    garbage = b"\x68\x10\x10\x68\x00\x68\x68\x68\x68\x16\x16"
    data = b"".join(garbage + f for f in frames) + PAD
    messages, reader = _feed(data, list(range(7, len(data), 13)))
    assert [m.payload for m in messages] == [bytes([i]) * 20 for i in range(10)]
    assert sum(reader.counters.rejected.values()) >= 1


def test_broken_sequence_is_rejected() -> None:
    first, second, third = _split(build_mbus_frames(bytes(30), max_segment=10))
    rejects: list[Rejected] = []
    reader = _reader(rejects)
    assert reader.feed(first + third) == []  # segment 1 lost
    assert [r.reason for r in rejects] == [RejectReason.MBUS_SEGMENT] * 2
    assert rejects[0].frame == first
    assert rejects[1].frame == third
    assert reader.feed(second) == []  # a segment without segment 0
    assert len(rejects) == 3
    # a new message (segment 0) replaces an incomplete one
    messages = reader.feed(first + build_mbus_frames(b"\x0f"))
    assert [m.payload for m in messages] == [b"\x0f"]
    assert len(rejects) == 4


def test_segment_from_another_address_is_rejected() -> None:
    first = _split(build_mbus_frames(bytes(30), max_segment=10))[0]
    other = _split(build_mbus_frames(bytes(30), max_segment=10, a=0x01))[1]
    rejects: list[Rejected] = []
    assert _reader(rejects).feed(first + other) == []
    assert [r.reason for r in rejects] == [RejectReason.MBUS_SEGMENT] * 2


def test_reassembly_is_capped() -> None:
    assembler = MbusReassembler(max_size=15)
    frames = _split(build_mbus_frames(bytes(30), max_segment=10))
    parsed = [parse_mbus(f, 0) for f in frames]
    items = [p.item for p in parsed if isinstance(p, Found)]
    assert all(isinstance(i, MbusFrame) for i in items)
    assert assembler.add(items[0]) == (None, [])
    assert assembler.pending
    complete, bads = assembler.add(items[1])
    assert complete is None
    assert [b.reason for b in bads] == [RejectReason.OVERSIZE]
    assert not assembler.pending


def test_every_single_bit_flip_is_rejected() -> None:
    raw = build_mbus_frames(bytes(range(40)))
    follower = build_mbus_frames(b"\x0f\x07")
    for index in range(len(raw)):
        for bit in range(8):
            mutated = bytearray(raw)
            mutated[index] ^= 1 << bit
            messages, _ = _feed(bytes(mutated) + follower + PAD)
            assert [m.payload for m in messages] == [b"\x0f\x07"], (index, bit)


def test_every_truncation_is_rejected() -> None:
    raw = build_mbus_frames(bytes(range(40)))
    follower = build_mbus_frames(b"\x0f\x07")
    for size in range(1, len(raw)):
        messages, _ = _feed(raw[:size] + follower + PAD)
        assert [m.payload for m in messages] == [b"\x0f\x07"], size


def test_every_length_value_but_the_true_one_is_rejected() -> None:
    raw = build_mbus_frames(bytes(range(40)))
    for length in range(256):
        mutated = raw[:1] + bytes((length, length)) + raw[3:]
        messages, _ = _feed(mutated + PAD)
        assert (messages != []) is (mutated == raw), length


def test_vendor_document_capture() -> None:
    if not FRAMES_JSON.exists():
        pytest.skip("frames.json not available")
    vectors = {v["id"]: v for v in json.loads(FRAMES_JSON.read_text())}
    vector = vectors.get("kaifa-ma309-at-evn-mbus-vendor-doc")
    if vector is None:
        pytest.skip("capture not in frames.json")
    raw = bytes.fromhex(vector["hex"])
    messages, _ = _feed(raw)
    assert len(messages) == 1
    assert messages[0].frame == raw
    assert messages[0].payload.startswith(b"\xdb\x08")
    assert build_mbus_frames(messages[0].payload, max_segment=245) == raw
