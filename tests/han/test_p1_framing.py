"""P1 telegram framing: ``/ident`` ... ``!CRC``, CRC-16/ARC, caps, telegrams without CRC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custom_components.hanport.han.crc import crc16_arc
from custom_components.hanport.han.errors import Rejected, RejectReason
from custom_components.hanport.han.framing import (
    NOT_A_FRAME,
    Bad,
    Found,
    FrameReader,
    Message,
    build_p1_telegram,
    parse_p1,
)
from custom_components.hanport.han.framing.p1 import MAX_TELEGRAM
from custom_components.hanport.han.reading import Protocol

FRAMES_JSON = Path(__file__).resolve().parents[3] / "shared" / "han" / "frames.json"
LINES = [
    "0-0:1.0.0(210217184019W)",
    "1-0:1.8.0(00006678.394*kWh)",
    "1-0:1.7.0(0001.727*kW)",
    "1-0:32.7.0(240.3*V)",
]
TELEGRAM = build_p1_telegram("ELL5\\253833635_A", LINES)


def _reader(rejects: list[Rejected] | None = None) -> FrameReader:
    return FrameReader(
        formats={Protocol.P1}, on_reject=rejects.append if rejects is not None else None
    )


def _feed(data: bytes, cuts: list[int] | None = None) -> tuple[list[Message], FrameReader]:
    reader = _reader()
    messages: list[Message] = []
    last = 0
    for cut in [*(cuts or []), len(data)]:
        messages += reader.feed(data[last:cut])
        last = cut
    return messages, reader


def _with_crc(body: bytes) -> bytes:
    return body + f"{crc16_arc(body):04X}\r\n".encode()


def test_builder_layout() -> None:
    assert TELEGRAM.startswith(b"/ELL5\\253833635_A\r\n\r\n0-0:1.0.0(")
    bang = TELEGRAM.index(b"!")
    assert TELEGRAM[bang + 1 :] == f"{crc16_arc(TELEGRAM[: bang + 1]):04X}\r\n".encode()
    assert build_p1_telegram("/KAM5", []) == build_p1_telegram("KAM5", [])
    with pytest.raises(ValueError, match="ASCII"):
        build_p1_telegram("KAM5", ["1-0:1.8.0(5*kWh)\u00e5"])


def test_parse() -> None:
    parsed = parse_p1(b"xx" + TELEGRAM + b"yy", 2)
    assert isinstance(parsed, Found)
    assert parsed.item == TELEGRAM
    assert parsed.end == 2 + len(TELEGRAM) - 2
    assert parsed.trailer == 2
    for size in range(1, len(TELEGRAM) - 2):
        assert parse_p1(TELEGRAM[:size], 0) is None, size


def test_crlf_after_the_crc_is_not_waited_for() -> None:
    messages, reader = _feed(TELEGRAM[:-2])
    assert [m.payload for m in messages] == [TELEGRAM]
    reader.feed(b"\r\n")
    assert reader.counters.bytes_discarded == 0


def test_crc_digits_must_be_uppercase() -> None:
    # the spec prints them uppercase; accepting both would let a flipped case bit through
    bang = TELEGRAM.index(b"!")
    lower = TELEGRAM[: bang + 1] + TELEGRAM[bang + 1 :].lower()
    assert lower != TELEGRAM
    parsed = parse_p1(lower, 0)
    assert isinstance(parsed, Bad)
    assert parsed.reason is RejectReason.P1_CRC


def test_split_at_every_byte_boundary_and_garbage() -> None:
    other = build_p1_telegram("KAM5", ["1-0:1.8.0(00004996.909*kWh)"])
    data = b"\x00/\xff/ab" + TELEGRAM + b"junk\r\n/x" + other
    whole, reader = _feed(data)
    assert [m.payload for m in whole] == [TELEGRAM, other]
    assert [m.protocol for m in whole] == [Protocol.P1] * 2
    for cut in range(1, len(data)):
        assert _feed(data, [cut])[0] == whole, cut
    assert reader.counters.rejected == {}


def test_crc_mismatch_is_counted() -> None:
    bad = TELEGRAM.replace(b"1.727", b"1.728")
    rejects: list[Rejected] = []
    reader = _reader(rejects)
    assert reader.feed(bad + TELEGRAM) == [Message(Protocol.P1, TELEGRAM, TELEGRAM)]
    assert [r.reason for r in rejects] == [RejectReason.P1_CRC]
    assert rejects[0].frame == bad[:-2]


def test_telegram_without_crc_is_rejected() -> None:
    old_style = b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(00123.456*kWh)\r\n!\r\n"
    rejects: list[Rejected] = []
    assert _reader(rejects).feed(old_style) == []
    assert [r.reason for r in rejects] == [RejectReason.P1_CRC]
    assert "without CRC" in rejects[0].detail


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"/KAM5\r\n\r\n1-0:1.8.0(1*kWh)\r\n!12G4\r\n", RejectReason.P1_CRC),
        (b"/KAM5\r\n\r\n1-0:1.8.0(1\x00*kWh)\r\n!1234\r\n", RejectReason.P1_CRC),
    ],
)
def test_malformed(data: bytes, reason: RejectReason) -> None:
    parsed = parse_p1(data, 0)
    assert isinstance(parsed, Bad)
    assert parsed.reason is reason


def test_binary_byte_rejected_before_the_bang_arrives() -> None:
    parsed = parse_p1(b"/KAM5\r\n\r\n1-0:1.8.0(\x81", 0)
    assert isinstance(parsed, Bad)
    assert parsed.reason is RejectReason.P1_CRC


@pytest.mark.parametrize(
    "data",
    [b"/KA\r\n", b"/KAM5\x01", b"/KAM5" + b"x" * 200, b"/KA5M\r\n"],
)
def test_not_a_telegram(data: bytes) -> None:
    assert parse_p1(data, 0) is NOT_A_FRAME


def test_oversize_is_rejected_and_bounded() -> None:
    rejects: list[Rejected] = []
    reader = _reader(rejects)
    reader.feed(b"/KAM5\r\n\r\n")
    for _ in range(150):
        reader.feed(b"1-0:1.8.0(00004996.909*kWh)\r\n")
        assert reader.buffered <= MAX_TELEGRAM + 30
    assert [r.reason for r in rejects] == [RejectReason.OVERSIZE]
    assert reader.feed(TELEGRAM) == [Message(Protocol.P1, TELEGRAM, TELEGRAM)]


def test_every_single_bit_flip_is_rejected() -> None:
    raw = build_p1_telegram("KAM5", ["1-0:1.8.0(00004996.909*kWh)", "1-0:1.7.0(0000.714*kW)"])
    for index in range(len(raw) - 2):  # the CRLF after the CRC is not part of the check
        for bit in range(8):
            mutated = bytearray(raw)
            mutated[index] ^= 1 << bit
            messages, _ = _feed(bytes(mutated) + TELEGRAM)
            assert [m.payload for m in messages] == [TELEGRAM], (index, bit)


def test_every_truncation_is_rejected() -> None:
    for size in range(1, len(TELEGRAM) - 2):
        messages, _ = _feed(TELEGRAM[:size] + TELEGRAM)
        assert [m.payload for m in messages] == [TELEGRAM], size


def test_captures() -> None:
    if not FRAMES_JSON.exists():
        pytest.skip("frames.json not available")
    vectors = [v for v in json.loads(FRAMES_JSON.read_text()) if v["kind"] == "p1"]
    for vector in vectors:
        raw = vector["telegram"].encode("latin-1")
        rejects: list[Rejected] = []
        messages = _reader(rejects).feed(raw)
        if vector["crc_ok"]:
            assert len(messages) == 1, vector["id"]
            assert rejects == [], vector["id"]
        else:
            assert messages == []
            assert [r.reason for r in rejects] == [RejectReason.P1_CRC]


def test_with_crc_helper() -> None:
    assert isinstance(parse_p1(_with_crc(b"/ABC5\r\n\r\n!"), 0), Found)
