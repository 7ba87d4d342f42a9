"""Delimiting bare APDUs (no checksum, no length of their own) by parsing them."""

from __future__ import annotations

import pytest

from custom_components.hanport.han.dlms import axdr
from custom_components.hanport.han.framing import (
    LOCK_WINDOW,
    NOT_A_FRAME,
    Found,
    FrameReader,
    build_hdlc_frame,
    parse_bare_apdu,
)
from custom_components.hanport.han.framing.apdu import MAX_APDU
from custom_components.hanport.han.framing.hdlc import _repair
from custom_components.hanport.han.reading import Protocol

LLC = b"\xe6\xe7\x00"
BODY = axdr.encode(
    (
        "Kamstrup_V0001",
        b"\x01\x01\x00\x00\x05\xff",
        axdr.Typed(0x12, 230),
        None,
        True,
        axdr.Typed(0x0F, -1),
        axdr.Typed(0x14, -5),
        1.5,
        axdr.DateTimeField(0x19, bytes(12)),
        [axdr.Typed(0x16, 27)],
    )
)
NOTIFICATION = b"\x0f\x00\x00\x00\x00\x00" + BODY
STAMP = bytes(range(12))


@pytest.mark.parametrize(
    "apdu",
    [
        NOTIFICATION,
        LLC + NOTIFICATION,
        b"\x0f\x40\x00\x00\x00\x0c" + STAMP + BODY,
        b"\x0f\x40\x00\x00\x00\x09\x0c" + STAMP + BODY,
        b"\x0f\x00\x00\x00\x00\x00\x04\x0a\xff\xc0",  # bit-string of 10 bits
        b"\x0f\x00\x00\x00\x00\x00\x0c\x02\xc3\xa5",  # utf8-string
        b"\x0f\x00\x00\x00\x00\x00\x09\x81\x80" + bytes(128),  # long-form length
        LLC + b"\xdb\x08" + b"KAM\x00\x00\x00\x00\x01" + b"\x05\x30\x00\x00\x00\x01",
        b"\xdb\x08KAM\x00\x00\x00\x00\x01\x06\x21\x00\x00\x00\x01\xaa",
        b"\xdc\x08SAG\x00\x00\x00\x00\x01\x05\x20\x00\x00\x00\x01",
        LLC + b"\xe0\x80\x00\x01\x00\x00\x03\x01\x02\x03",
    ],
)
def test_delimited(apdu: bytes) -> None:
    for follower in (b"", b"\x0f\x40\x00\x00", b"\x00\x00\x00", b"\xe6\xe7\x00\x0f"):
        parsed = parse_bare_apdu(b"\x55" + apdu + follower, 1)
        assert isinstance(parsed, Found)
        assert parsed.item == apdu
        assert parsed.end == 1 + len(apdu)
    for size in range(1, len(apdu)):
        assert parse_bare_apdu(apdu[:size], 0) is None, size


@pytest.mark.parametrize(
    "data",
    [
        b"\xe6\xe6\x00\x0f",  # not the LLC
        b"\xe6\xe7\x00\x01\x02",  # not an APDU tag after the LLC
        b"\xe0\x80\x00\x01\x00\x00\x00",  # a block transfer needs the LLC
        b"\x41\x00",  # not a start at all
        b"\xdb\x08kam\x00\x00\x00\x00\x01\x05\x30\x00\x00\x00\x01",  # no maker letters
        LLC + b"\xdb\x07KAM\x00\x00\x00\x00\x05\x30\x00\x00\x00\x01",  # title not 8 bytes
        LLC + b"\xdb\x08KAM\x00\x00\x00\x00\x01\x04\x30\x00\x00\x00",  # shorter than SC + FC
        b"\x0f\x00\x00\x00\x00\x07\x00",  # unknown date-time encoding
        b"\x0f\x00\x00\x00\x00\x09\x0b" + bytes(12),  # octet-string that is not 12 bytes
        b"\x0f\x00\x00\x00\x00\x00\x13\x00",  # compact-array is not taken
        b"\x0f\x00\x00\x00\x00\x00\x09\x85\x00\x00\x00\x00\x01",  # 5-byte long-form length
        b"\x0f\x00\x00\x00\x00\x00\x09\x80",  # 0-byte long-form length
        b"\x0f\x00\x00\x00\x00\x00" + b"\x01\x01" * 17 + b"\x00",  # nested too deep
        b"\x0f\x00\x00\x00\x00\x00\x01\x82\x10\x00",  # more elements than the cap allows
        b"\x0f\x00\x00\x00\x00\x00\x09\x82\x10\x00",  # a string longer than the cap
    ],
)
def test_not_an_apdu(data: bytes) -> None:
    assert parse_bare_apdu(data + bytes(MAX_APDU), 0) is NOT_A_FRAME


def test_inside_of_a_frame_is_not_a_bare_apdu() -> None:
    assert parse_bare_apdu(NOTIFICATION + b"\x12\x34\x7e", 0) is NOT_A_FRAME  # FCS, flag
    assert parse_bare_apdu(NOTIFICATION + b"\x12\x16", 0) is NOT_A_FRAME  # M-Bus CS, stop
    assert isinstance(parse_bare_apdu(NOTIFICATION + b"\x12\x34\x56", 0), Found)
    # an FCS or CS that could start the next APDU: the byte after the frame end decides
    for tail in (b"\x0f\x34\x7e\x7e", b"\xdb\x34\x7e\xa0", b"\xe6\x16\x68"):
        assert parse_bare_apdu(NOTIFICATION + tail, 0) is NOT_A_FRAME, tail
    for tail in (b"\x0f\x34\x7e\x00", b"\xdb\x16\x00"):
        assert isinstance(parse_bare_apdu(NOTIFICATION + tail, 0), Found), tail


@pytest.mark.parametrize(
    "after",
    [
        b"\x12\x34\x7e\x7e",
        b"\x12\x16\x68",
        b"\x12\x34\x56\x78",
        b"\x0f\x34\x7e\x7e",
        b"\x0f\x34\x7e\x41",
        b"\x0f\x16\x68\x00",
        b"\x0f\x16\x00\x00",
        b"\xe6\xe7\x00\x0f",
    ],
)
def test_frame_end_decision_does_not_depend_on_where_a_read_ends(after: bytes) -> None:
    """Once a byte after the APDU is in, the answer waits for the bytes that decide it."""
    final = parse_bare_apdu(NOTIFICATION + after, 0)
    assert final is not None
    for size in range(1, len(after)):
        partial = parse_bare_apdu(NOTIFICATION + after[:size], 0)
        assert partial is None or partial == final, size


def test_reader_hunts_bare_apdus_only_with_a_check() -> None:
    assert FrameReader(formats={Protocol.APDU, Protocol.HDLC}).feed(NOTIFICATION) == []
    seen: list[bytes] = []

    def check(apdu: bytes) -> object | None:
        seen.append(apdu)
        return "ok" if apdu == NOTIFICATION else None

    reader = FrameReader(formats={Protocol.APDU}, apdu_check=check)
    # a refused candidate (0F 00 0F 00 00 00 00) overlaps the real APDU: found after it
    # (withheld, as other bytes precede it, until the next starts exactly at its end)
    assert reader.feed(b"\x0f\x00" + NOTIFICATION) == []
    messages = reader.feed(NOTIFICATION)
    assert [(m.protocol, m.payload, m.result) for m in messages] == [
        (Protocol.APDU, NOTIFICATION, "ok")
    ] * 2
    assert seen == [b"\x0f\x00" + NOTIFICATION[:5], NOTIFICATION, NOTIFICATION]
    # a refused LLC + APDU: the same APDU without its LLC is not tried again
    seen.clear()
    messages = FrameReader(formats={Protocol.APDU}, apdu_check=lambda _apdu: None).feed(
        LLC + NOTIFICATION
    )
    assert messages == []
    with pytest.raises(ValueError, match="no format"):
        FrameReader(formats=())


def test_repair_preconditions() -> None:
    # _repair is only called on a failed frame with a CR LF inside; it refuses anything else
    assert _repair(b"\x7e\x50\x10" + bytes(20), 0) is NOT_A_FRAME
    assert _repair(b"\x7e\xa0\x05" + bytes(20), 0) is NOT_A_FRAME
    assert _repair(b"\x7e\xa0\x10" + bytes(20), 0) is NOT_A_FRAME  # nothing to delete


def test_a_block_that_is_not_the_last_waits_for_what_follows_it() -> None:
    """More blocks come after it anyway, so its frame-end check never costs latency."""
    block = LLC + b"\xe0\x00\x00\x01\x00\x00\x03\x01\x02\x03"
    assert parse_bare_apdu(block, 0) is None
    assert isinstance(parse_bare_apdu(block + LLC, 0), Found)
    assert parse_bare_apdu(block + b"\x12\x34\x7e", 0) is NOT_A_FRAME
    last = LLC + b"\xe0\x80\x00\x02\x00\x00\x03\x01\x02\x03"
    assert isinstance(parse_bare_apdu(last, 0), Found)


def test_bare_apdu_waits_for_the_next_at_its_end() -> None:
    """Bare APDUs have no checksum: one may be a damaged frame's inside.

    Even a stream's first bytes may be that (a connection opens anywhere, also just at
    a frame's APDU), so one is withheld until the next starts exactly at its end, and
    dropped when anything else comes first. Two back to back make the stream a bare
    one: then each is taken at once, after other bytes and after a reconnect too.
    """
    reader = FrameReader(formats={Protocol.APDU}, apdu_check=lambda _apdu: "ok")
    assert reader.feed(NOTIFICATION) == []  # a stream's first bytes: withheld
    assert len(reader.feed(NOTIFICATION)) == 2  # confirmed by the next at its end
    assert len(reader.feed(b"\x00" + NOTIFICATION)) == 1  # a bare stream now
    reader.reset()  # a reconnect to the same port: still a bare stream
    assert len(reader.feed(NOTIFICATION)) == 1
    for gap in (b"", b"\x00"):
        reader = FrameReader(formats={Protocol.APDU}, apdu_check=lambda _apdu: "ok")
        assert reader.feed(b"\x00\x01" + NOTIFICATION) == []  # withheld
        got = reader.feed(gap + NOTIFICATION + NOTIFICATION)
        # released with the next two; or, after a gap, dropped (the next two come out)
        assert len(got) == (3 if not gap else 2), gap
    reader = FrameReader(formats={Protocol.APDU}, apdu_check=lambda _apdu: "ok")
    assert reader.feed(NOTIFICATION) == []
    reader.reset()  # a reconnect: what was withheld is gone, nothing confirms the next
    assert reader.feed(NOTIFICATION) == []
    assert reader.flush() != []  # the input ends (a capture): the withheld one is read
    assert reader.flush() == []  # once
    # a checksummed frame ends the bare stream: after the lock it must show itself again
    reader = FrameReader(formats={Protocol.APDU, Protocol.HDLC}, apdu_check=lambda _apdu: "ok")
    assert len(reader.feed(NOTIFICATION + NOTIFICATION)) == 2
    frame = build_hdlc_frame(LLC + NOTIFICATION)
    assert len(reader.feed(frame + bytes(LOCK_WINDOW))) == 1
    assert reader.feed(NOTIFICATION) == []
    assert len(reader.feed(NOTIFICATION)) == 2


def test_candidate_holding_a_frame_header_is_no_bare_apdu() -> None:
    """A frame cut inside its APDU runs into the next frame's header; its info follows.

    The cut APDU, completed by the next frame's header bytes, delimits as an APDU and
    the next frame's info field starts exactly at its end: "back to back". A whole
    header whose HCS holds inside the candidate shows it is no bare APDU; the frames
    are read, nothing bare is taken.
    """
    frame = build_hdlc_frame(LLC + NOTIFICATION)
    header = frame[:9]  # flag, format, 41 08 83, control, HCS
    cut = LLC + b"\x0f\x40\x00\x00\x00\x00\x09" + bytes((4 + len(header),)) + b"\x01\x02\x03\x04"
    assert parse_bare_apdu(cut + header + bytes(20), 0) is not None  # it delimits there
    reader = FrameReader(formats={Protocol.APDU, Protocol.HDLC}, apdu_check=lambda _apdu: "ok")
    messages = reader.feed(cut + frame + frame)
    assert [m.protocol for m in messages] == [Protocol.HDLC, Protocol.HDLC]
    assert reader.flush() == []
