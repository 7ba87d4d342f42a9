"""ApduDecoder: data-notification, ciphering end to end, block transfer, real vectors."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.hanport.han import cosem
from custom_components.hanport.han.crc import crc16_arc
from custom_components.hanport.han.dlms import apdu as apdu_mod
from custom_components.hanport.han.dlms.apdu import (
    ApduDecoder,
    encode_block_transfer,
    encode_data_notification,
    parse_data_notification,
)
from custom_components.hanport.han.dlms.axdr import Encodable, Typed
from custom_components.hanport.han.dlms.cipher import encrypt_apdu
from custom_components.hanport.han.dlms.notification import Notification
from custom_components.hanport.han.errors import FrameError, RejectReason
from custom_components.hanport.han.options import DecodeOptions

from .dlms_vectors import all_vectors, hdlc_apdu, mbus_apdu, vector

H = bytes.fromhex
KEY = H("00112233445566778899AABBCCDDEEFF")
GAK = H("FFEEDDCCBBAA99887766554433221100")
TITLE = b"SAGY\x00\x00\x00\x01"
OBIS_P = H("0100010700FF")
BODY: Encodable = [(OBIS_P, Typed(0x06, 1234), (Typed(0x0F, 0), Typed(0x16, 27)))]
WHEN = datetime(2024, 10, 27, 2, 30, 10)
STAMP = cosem.encode_datetime(WHEN)
PLAIN = encode_data_notification(BODY, timestamp=STAMP, datetime_style="axdr")
DECODED_BODY: Encodable = [(OBIS_P, 1234, (0, 27))]


def _decoder(key: bytes | None = KEY, gak: bytes | None = GAK, **kw: Any) -> ApduDecoder:
    return ApduDecoder(DecodeOptions(key=key, auth_key=gak), **kw)


def _ciphered(plain: bytes = PLAIN, sc: int = 0x30, *, fc: int = 1, tag: int = 0xDB) -> bytes:
    return encrypt_apdu(
        plain,
        key=KEY,
        auth_key=GAK,
        system_title=TITLE,
        frame_counter=fc,
        security_control=sc,
        tag=tag,
    )


def _decode(decoder: ApduDecoder, data: bytes) -> Notification:
    result = decoder.decode(data)
    assert result is not None
    return result


def _reason_of(decoder: ApduDecoder, data: bytes) -> RejectReason:
    with pytest.raises(FrameError) as exc:
        decoder.decode(data)
    return exc.value.reason


# ------------------------------------------------------------------ data-notification


@pytest.mark.parametrize(("style", "header"), [("axdr", "0C"), ("tagged", "090C")])
def test_date_time_encodings(style: str, header: str) -> None:
    raw = encode_data_notification(
        BODY, invoke_id=0x8006870E, timestamp=STAMP, datetime_style=style
    )
    assert raw[:5] == H("0F8006870E")
    assert raw[5 : 5 + len(header) // 2] == H(header)
    n = _decode(_decoder(), raw)
    assert n.invoke_id == 0x8006870E
    assert n.timestamp == WHEN
    assert n.body == DECODED_BODY
    assert n.system_title is None
    assert n.telegram is None


def test_absent_date_time() -> None:
    raw = encode_data_notification(BODY)
    assert raw[:6] == H("0F4000000000")
    n = _decode(_decoder(None, None), raw)
    assert n.timestamp is None
    assert n.body == DECODED_BODY


def test_aware_and_invalid_header_clocks() -> None:
    aware = cosem.encode_datetime(WHEN.replace(tzinfo=timezone(timedelta(hours=1))))
    n = _decode(_decoder(), encode_data_notification(1, timestamp=aware, datetime_style="tagged"))
    assert n.timestamp == WHEN.replace(tzinfo=timezone(timedelta(hours=1)))
    invalid = STAMP[:11] + b"\x01"  # clock status: invalid
    n = _decode(_decoder(), encode_data_notification(1, timestamp=invalid, datetime_style="axdr"))
    assert n.timestamp is None
    assert n.body == 1  # the body still decodes


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "0F",
        "0F400000",
        "0F4000000000",  # no body
        "0F40000000 05 0203",  # unknown date-time encoding
        "0F40000000 09 0B" + "00" * 12 + "00",  # tagged, but not 12 bytes
        "0F40000000 0C" + "00" * 12,  # date-time but no body
        "0F40000000 00 0202 1101",  # body cut short
    ],
)
def test_malformed_notifications(raw: str) -> None:
    assert _reason_of(_decoder(), H(raw.replace(" ", ""))) is RejectReason.MALFORMED_APDU


@pytest.mark.parametrize("style", ["none", "axdr", "tagged"])
def test_truncation_at_every_position(style: str) -> None:
    raw = encode_data_notification(
        BODY, timestamp=None if style == "none" else STAMP, datetime_style=style
    )
    decoder = _decoder()
    for cut in range(len(raw)):
        assert _reason_of(decoder, raw[:cut]) is RejectReason.MALFORMED_APDU, cut


def test_trailing_bytes_tolerated_in_plain_but_not_in_strict_mode() -> None:
    raw = PLAIN + b"\x00\x01"
    assert _decode(_decoder(), raw).body == DECODED_BODY
    with pytest.raises(FrameError, match="2 bytes after"):
        parse_data_notification(raw, strict=True)
    with pytest.raises(FrameError, match="not a structure or array"):
        parse_data_notification(encode_data_notification(5), strict=True)
    assert parse_data_notification(PLAIN, strict=True).body == DECODED_BODY


@pytest.mark.parametrize("tag", ["01", "C2", "DD", "E6", "0E"])
def test_unsupported_apdu_tags(tag: str) -> None:
    assert _reason_of(_decoder(), H(tag + "00" * 20)) is RejectReason.UNSUPPORTED_APDU


def test_encode_data_notification_validates() -> None:
    with pytest.raises(ValueError, match="datetime_style"):
        encode_data_notification(BODY, timestamp=STAMP)
    with pytest.raises(ValueError, match="12 bytes"):
        encode_data_notification(BODY, datetime_style="axdr")
    with pytest.raises(ValueError, match="12 bytes"):
        encode_data_notification(BODY, timestamp=STAMP[:11], datetime_style="tagged")
    with pytest.raises(ValueError, match="unknown datetime_style"):
        encode_data_notification(BODY, timestamp=STAMP, datetime_style="iso")
    with pytest.raises(ValueError, match="invoke_id"):
        encode_data_notification(BODY, invoke_id=2**32)


# ------------------------------------------------------------------ ciphered


@pytest.mark.parametrize("tag", [0xDB, 0xDC])
def test_sc30_authenticated(tag: int) -> None:
    n = _decode(_decoder(), _ciphered(tag=tag))
    assert n.timestamp == WHEN
    assert n.body == DECODED_BODY
    assert n.system_title == TITLE


def test_sc30_wrong_keys_and_missing_key() -> None:
    apdu = _ciphered()
    assert _reason_of(_decoder(KEY[::-1], GAK), apdu) is RejectReason.AUTHENTICATION_FAILED
    assert _reason_of(_decoder(KEY, GAK[::-1]), apdu) is RejectReason.AUTHENTICATION_FAILED
    assert _reason_of(_decoder(None, GAK), apdu) is RejectReason.ENCRYPTED_NO_KEY
    assert _reason_of(_decoder(b"short", GAK), apdu) is RejectReason.DECRYPTION_FAILED


def test_sc30_without_gak_decrypts_when_the_plaintext_is_exact() -> None:
    n = _decode(_decoder(KEY, None), _ciphered())
    assert n.body == DECODED_BODY
    assert _reason_of(_decoder(KEY[::-1], None), _ciphered()) is RejectReason.DECRYPTION_FAILED


@pytest.mark.parametrize("sc", [0x20, 0x21])
def test_encryption_only(sc: int) -> None:
    n = _decode(_decoder(KEY, None), _ciphered(sc=sc))
    assert n.body == DECODED_BODY
    assert n.system_title == TITLE
    assert _reason_of(_decoder(None, None), _ciphered(sc=sc)) is RejectReason.ENCRYPTED_NO_KEY


def test_wrong_key_with_sc20_never_yields_values() -> None:
    apdu = _ciphered(sc=0x20)
    rng = random.Random(20)
    for _ in range(400):
        wrong = rng.randbytes(16)
        assert _reason_of(_decoder(wrong, None), apdu) is RejectReason.DECRYPTION_FAILED


@settings(max_examples=150)
@given(plain=st.binary(min_size=1, max_size=80), key=st.binary(min_size=16, max_size=16))
def test_unauthenticated_random_plaintext_is_rejected_unless_exact(
    plain: bytes, key: bytes
) -> None:
    apdu = encrypt_apdu(
        plain, key=key, auth_key=None, system_title=TITLE, frame_counter=3, security_control=0x20
    )
    decoder = _decoder(key, None)
    try:
        n = decoder.decode(apdu)
    except FrameError as err:
        reason: RejectReason | None = err.reason
    else:
        reason = None
    if reason is not None:
        assert reason is RejectReason.DECRYPTION_FAILED
    else:  # only a complete notification with a container body, or a CRC-checked telegram
        assert n is not None
        if n.telegram is None:
            strict = parse_data_notification(plain, strict=True, system_title=TITLE)
            assert strict == n


@pytest.mark.parametrize(
    ("plain", "detail"),
    [
        (PLAIN + b"\x00", "bytes after"),
        (encode_data_notification(Typed(0x06, 1)), "not a structure"),
        (b"\x0e" + PLAIN[1:], "not a data-notification"),
        (b"", "not a data-notification"),
    ],
)
def test_unauthenticated_plaintext_must_be_exact(plain: bytes, detail: str) -> None:
    with pytest.raises(FrameError, match=detail) as exc:
        _decoder(KEY, None).decode(_ciphered(plain, sc=0x20))
    assert exc.value.reason is RejectReason.DECRYPTION_FAILED


def test_authenticated_plaintext_is_trusted_but_must_be_a_notification() -> None:
    decoder = _decoder()
    assert _decode(decoder, _ciphered(PLAIN + b"\x00")).body == DECODED_BODY  # tag vouches
    assert _reason_of(decoder, _ciphered(b"\x0e" + PLAIN[1:])) is RejectReason.UNSUPPORTED_APDU
    assert _reason_of(decoder, _ciphered(b"")) is RejectReason.UNSUPPORTED_APDU
    assert _reason_of(decoder, _ciphered(PLAIN[:-1])) is RejectReason.MALFORMED_APDU
    assert _reason_of(decoder, _ciphered(_ciphered())) is RejectReason.UNSUPPORTED_APDU


def test_authentication_only_and_no_security() -> None:
    n = _decode(_decoder(), _ciphered(sc=0x10))
    assert n.body == DECODED_BODY
    assert _reason_of(_decoder(KEY, GAK[::-1]), _ciphered(sc=0x10)) is (
        RejectReason.AUTHENTICATION_FAILED
    )
    assert _decode(_decoder(None, None), _ciphered(sc=0x10)).body == DECODED_BODY
    assert _decode(_decoder(None, None), _ciphered(sc=0x00)).body == DECODED_BODY


def _telegram(lines: str = "1-0:1.8.0(000123.456*kWh)\r\n") -> bytes:
    body = b"/SAT5\\SMARTY\r\n\r\n" + lines.encode() + b"!"
    return body + f"{crc16_arc(body):04X}\r\n".encode()


def test_luxembourg_telegram_inside_ciphering() -> None:
    telegram = _telegram()
    for decoder in (_decoder(), _decoder(KEY, None)):  # verified by tag, or by CRC
        n = _decode(decoder, _ciphered(telegram))
        assert n.telegram == telegram
        assert n.body is None
        assert n.system_title == TITLE
    no_crlf = telegram.rstrip()
    assert _decode(_decoder(KEY, None), _ciphered(no_crlf, sc=0x20)).telegram == no_crlf
    # with the tag verified, the P1 layer checks the CRC itself
    assert _decode(_decoder(), _ciphered(b"/X\r\n!")).telegram == b"/X\r\n!"


@pytest.mark.parametrize(
    "plain",
    [
        _telegram()[:-7] + b"0000\r\n",  # wrong CRC
        _telegram()[:-6],  # CRC cut short
        _telegram().replace(b"!", b"?"),  # no "!"
        _telegram() + b"garbage",
        _telegram()[:-6] + b"ZZZZ\r\n",  # not hex
        _telegram()[:-6] + b"+1_2\r\n",  # int() would accept this
    ],
)
def test_unverified_telegram_needs_its_crc(plain: bytes) -> None:
    with pytest.raises(FrameError) as exc:
        _decoder(KEY, None).decode(_ciphered(plain, sc=0x20))
    assert exc.value.reason is RejectReason.DECRYPTION_FAILED


# ------------------------------------------------------------------ block transfer


def _block(number: int, data: bytes, *, last: bool = False, control: int = 0) -> bytes:
    length = len(data).to_bytes(1, "big") if len(data) < 0x80 else b"\x82" + len(data).to_bytes(2)
    header = bytes((0xE0, control | (0x80 if last else 0))) + number.to_bytes(2) + b"\x00\x00"
    return header + length + data


def test_block_transfer_reassembles() -> None:
    decoder = _decoder()
    blocks = encode_block_transfer(PLAIN, block_size=10)
    assert len(blocks) == -(-len(PLAIN) // 10)
    for block in blocks[:-1]:
        assert decoder.decode(block) is None
    assert _decode(decoder, blocks[-1]).body == DECODED_BODY
    # the decoder is ready for the next transfer
    for block in blocks[:-1]:
        assert decoder.decode(block) is None
    assert _decode(decoder, blocks[-1]).timestamp == WHEN


def test_block_transfer_of_a_ciphered_apdu_with_long_blocks() -> None:
    big = encode_data_notification([Typed(0x12, i) for i in range(150)])
    blocks = encode_block_transfer(_ciphered(big), block_size=300)
    assert blocks[0][6:7] == b"\x82"  # long-form block length
    decoder = _decoder()
    assert decoder.decode(blocks[0]) is None
    n = _decode(decoder, blocks[1])
    assert n.body == list(range(150))
    assert n.system_title == TITLE


def test_single_last_block_and_streaming_window_bits_ignored() -> None:
    assert _decode(_decoder(), _block(1, PLAIN, last=True, control=0x41)).body == DECODED_BODY
    assert encode_block_transfer(b"") == [H("E080000100 0000")]


@pytest.mark.parametrize(
    ("sequence", "detail"),
    [
        ([1, 3], "block 3, expected block 2"),
        ([1, 2, 2], "block 2, expected block 3"),
        ([2], "block 2, expected block 1"),
        ([0], "block 0, expected block 1"),
    ],
)
def test_broken_sequences(sequence: list[int], detail: str) -> None:
    decoder = _decoder()
    *good, bad = sequence
    for number in good:
        assert decoder.decode(_block(number, b"\x00")) is None
    with pytest.raises(FrameError, match=detail) as exc:
        decoder.decode(_block(bad, b"\x00"))
    assert exc.value.reason is RejectReason.BLOCK_TRANSFER
    # the partial transfer was dropped: the next continuation is rejected too
    assert _reason_of(decoder, _block(bad + 2, b"\x00", last=True)) is RejectReason.BLOCK_TRANSFER


def test_new_first_block_restarts_the_transfer() -> None:
    decoder = _decoder()
    assert decoder.decode(_block(1, b"\xff\xff")) is None
    assert decoder.decode(_block(1, PLAIN[:5])) is None
    assert _decode(decoder, _block(2, PLAIN[5:], last=True)).body == DECODED_BODY


def test_reassembly_cap() -> None:
    decoder = _decoder(max_block_transfer=100)
    assert decoder.decode(_block(1, b"\x00" * 60)) is None
    with pytest.raises(FrameError, match="exceeds 100") as exc:
        decoder.decode(_block(2, b"\x00" * 41))
    assert exc.value.reason is RejectReason.BLOCK_TRANSFER
    assert _reason_of(decoder, _block(3, b"", last=True)) is RejectReason.BLOCK_TRANSFER
    assert apdu_mod.MAX_BLOCK_TRANSFER_SIZE >= 4096


@pytest.mark.parametrize(
    "raw",
    [
        H("E0000001000005 0102".replace(" ", "")),  # block shorter than its length
        H("E0000001000001 0102".replace(" ", "")),  # bytes after the block data
        H("E000000100"),  # header cut short
        H("E0000001000081"),  # long length form cut short
    ],
)
def test_malformed_blocks_drop_the_partial_transfer(raw: bytes) -> None:
    decoder = _decoder()
    assert decoder.decode(_block(1, PLAIN[:5])) is None
    assert _reason_of(decoder, raw) is RejectReason.MALFORMED_APDU
    assert _reason_of(decoder, _block(2, PLAIN[5:], last=True)) is RejectReason.BLOCK_TRANSFER


def test_block_transfer_content_rules() -> None:
    decoder = _decoder()
    nested = _block(1, _block(1, PLAIN, last=True), last=True)
    assert _reason_of(decoder, nested) is RejectReason.BLOCK_TRANSFER
    assert _reason_of(decoder, _block(1, b"", last=True)) is RejectReason.MALFORMED_APDU
    assert _reason_of(decoder, _block(1, b"\xc2\x00", last=True)) is RejectReason.UNSUPPORTED_APDU


def test_reset_drops_a_partial_transfer() -> None:
    decoder = _decoder()
    assert decoder.decode(_block(1, PLAIN[:5])) is None
    decoder.reset()
    assert _reason_of(decoder, _block(2, PLAIN[5:], last=True)) is RejectReason.BLOCK_TRANSFER


def test_encode_block_transfer_validates() -> None:
    with pytest.raises(ValueError, match="positive"):
        encode_block_transfer(PLAIN, block_size=0)
    with pytest.raises(ValueError, match="65535"):
        encode_block_transfer(b"\x00" * 0x10000, block_size=1)


# ------------------------------------------------------------------ fuzz


def _outcome(decoder: ApduDecoder, data: bytes) -> Notification | RejectReason | None:
    try:
        return decoder.decode(data)
    except FrameError as err:
        return err.reason


_PREFIXES = [b"", b"\x0f", b"\xdb\x08", b"\xdc\x08", b"\xe0", b"\xe0\x80\x00\x01\x00\x00"]


@settings(max_examples=300)
@given(st.sampled_from(_PREFIXES), st.binary(max_size=120), st.booleans())
def test_random_apdus_only_ever_raise_frame_error(prefix: bytes, rest: bytes, keyed: bool) -> None:
    decoder = _decoder() if keyed else _decoder(None, None)
    result = _outcome(decoder, prefix + rest)
    assert result is None or isinstance(result, (Notification, RejectReason))


@settings(max_examples=200)
@given(st.data())
def test_a_flipped_bit_in_an_authenticated_apdu_never_yields_values(
    data: st.DataObject,
) -> None:
    apdu = _ciphered()
    pos = data.draw(st.integers(0, len(apdu) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = apdu[:pos] + bytes((apdu[pos] ^ (1 << bit),)) + apdu[pos + 1 :]
    # tag, title (IV), length, SC (AAD), counter (IV), ciphertext and tag are all covered
    assert _outcome(_decoder(), bad) in {
        RejectReason.AUTHENTICATION_FAILED,
        RejectReason.MALFORMED_APDU,
        RejectReason.UNSUPPORTED_APDU,
        RejectReason.DECRYPTION_FAILED,
    }


# ------------------------------------------------------------------ real vectors


def _plain_hdlc_vectors() -> list[dict[str, Any]]:
    return [
        v
        for v in all_vectors()
        if v["kind"] == "hdlc"
        and not v["encrypted"]
        and v["crc_ok"]
        and (v.get("decoded_check") or {}).get("apdu_tag", "").startswith("0x0F")
    ]


@pytest.mark.parametrize("v", _plain_hdlc_vectors(), ids=lambda v: str(v["id"]))
def test_every_plain_vector_decodes(v: dict[str, Any]) -> None:
    check = v["decoded_check"]
    raw = hdlc_apdu(H(v["hex"]))
    n = _decode(_decoder(None, None), raw)
    assert isinstance(n.body, (list, tuple))
    assert len(n.body) == check["n_items"] or check["style"] != "positional"
    strict = parse_data_notification(raw, strict=True)  # no trailing bytes in real frames
    assert strict.body == n.body
    expected = check.get("apdu_datetime")
    status = int(check.get("apdu_datetime_status") or "0x00", 16)
    if expected is None or status & 0x01:
        assert n.timestamp is None
    else:
        assert n.timestamp is not None
        assert n.timestamp.replace(tzinfo=None).isoformat() == expected


def test_lg_e450_vector_through_the_decoder() -> None:
    v = vector("lg-e450-at-hdlc-encrypted-gh501-1")
    raw = hdlc_apdu(H(v["hex"]))
    key, gak = H(v["key"]["ek"]), H(v["key"]["ak"])
    n = _decode(_decoder(key, gak), raw)
    assert n.invoke_id == 0x002180FC
    assert n.timestamp == datetime(2023, 3, 28, 19, 11, 20)  # deviation 8000: local
    assert n.system_title == H(v["decoded_check"]["glo"]["system_title"])
    assert isinstance(n.body, tuple)
    assert list(n.body[:3]) == [236, 237, 236]
    assert n.body[-1] == b"30137181"
    assert _decode(_decoder(key, None), raw).body == n.body  # no GAK: CTR + exact parse
    assert _reason_of(_decoder(gak, gak), raw) is RejectReason.AUTHENTICATION_FAILED
    assert _reason_of(_decoder(gak, None), raw) is RejectReason.DECRYPTION_FAILED
    assert _reason_of(_decoder(None, None), raw) is RejectReason.ENCRYPTED_NO_KEY
    # the L&G E450 (CH) splits its push into block transfers; same content that way
    decoder = _decoder(key, gak)
    blocks = encode_block_transfer(raw, block_size=40)
    assert [decoder.decode(b) for b in blocks[:-1]] == [None] * (len(blocks) - 1)
    assert _decode(decoder, blocks[-1]) == n


def test_kaifa_ma309_vector_through_the_decoder() -> None:
    v = vector("kaifa-ma309-at-evn-mbus-vendor-doc")
    raw = mbus_apdu(H(v["hex"]))
    n = _decode(_decoder(H(v["key"]["ek"]), None), raw)
    assert n.timestamp == datetime(2021, 9, 27, 9, 47, 15, tzinfo=timezone(timedelta(hours=2)))
    assert n.timestamp is not None
    assert n.timestamp.isoformat() == v["expected"]["meter_datetime"]
    assert isinstance(n.body, tuple)
    assert len(n.body) == 0x23
    assert n.body[-1] == v["expected"]["meter_number"].encode()
    assert _reason_of(_decoder(KEY, None), raw) is RejectReason.DECRYPTION_FAILED
    assert _reason_of(_decoder(None, None), raw) is RejectReason.ENCRYPTED_NO_KEY


def test_kamstrup_dk_published_plaintext() -> None:
    v = vector("kamstrup-dk-encrypted-gh517-nokey")
    n = _decode(_decoder(None, None), H(v["expected_plaintext_hex"]))
    assert n.timestamp is not None
    assert n.timestamp.isoformat() == v["expected"]["plaintext_apdu_datetime"]
    assert isinstance(n.body, tuple)
    assert n.body[0] == "Kamstrup_V0001"
    raw = hdlc_apdu(H(v["hex"]))
    assert _reason_of(_decoder(None, None), raw) is RejectReason.ENCRYPTED_NO_KEY
