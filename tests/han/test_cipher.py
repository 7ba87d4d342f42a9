"""general-glo/ded-ciphering: header parsing, GCM/CTR/GMAC, reasons, inverse, real vectors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from custom_components.hanport.han.dlms import cipher
from custom_components.hanport.han.dlms.cipher import Decryptor, encrypt_apdu, parse_ciphered
from custom_components.hanport.han.errors import FrameError, RejectReason

from .dlms_vectors import hdlc_apdu, mbus_apdu, vector

H = bytes.fromhex
KEY = H("000102030405060708090A0B0C0D0E0F")
GAK = H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
TITLE = b"KFM\x10\x20\x30\x40\x50"
PLAIN = H("0F40000000000101 0203 0906 0100010700FF 06000003E8 0202 0F00 161B".replace(" ", ""))


def _encrypt(sc: int, plain: bytes = PLAIN, *, auth_key: bytes | None = GAK, fc: int = 7) -> bytes:
    return encrypt_apdu(
        plain,
        key=KEY,
        auth_key=auth_key,
        system_title=TITLE,
        frame_counter=fc,
        security_control=sc,
    )


def _reason(exc: pytest.ExceptionInfo[FrameError]) -> RejectReason:
    return exc.value.reason


# ------------------------------------------------------------------ header


def test_parse_header_fields() -> None:
    apdu = _encrypt(0x30, fc=0x01020304)
    parsed = parse_ciphered(apdu)
    assert parsed.tag == 0xDB
    assert parsed.system_title == TITLE
    assert parsed.security_control == 0x30
    assert parsed.frame_counter == 0x01020304
    assert parsed.iv == TITLE + H("01020304")
    assert parsed.auth_tag is not None
    assert len(parsed.auth_tag) == 12
    assert len(parsed.information) == len(PLAIN)
    assert apdu[10] == 5 + len(PLAIN) + 12  # short-form length


@pytest.mark.parametrize(("size", "form"), [(0x70, b""), (0x80, b"\x81"), (0x200, b"\x82")])
def test_parse_both_length_forms(size: int, form: bytes) -> None:
    apdu = _encrypt(0x20, b"\x0f" + b"\x00" * (size - 1))
    assert apdu[10 : 10 + len(form)] == form
    assert len(parse_ciphered(apdu).information) == size


def test_trailing_bytes_after_the_declared_length_are_ignored() -> None:
    apdu = _encrypt(0x30)
    assert parse_ciphered(apdu + b"\x00\x00") == parse_ciphered(apdu)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda a: a[:1] + b"\x07" + a[2:], RejectReason.MALFORMED_APDU),  # title length 7
        (lambda a: a[:-1], RejectReason.MALFORMED_APDU),  # one byte short of len
        (lambda a: a[:5], RejectReason.MALFORMED_APDU),  # inside the title
        (lambda a: a[:10], RejectReason.MALFORMED_APDU),  # no length byte
        (lambda a: a[:10] + b"\x04\x30\x00\x00\x00", RejectReason.MALFORMED_APDU),  # len < 5
        (lambda a: a[:10] + b"\x0f\x30" + b"\x00" * 14, RejectReason.MALFORMED_APDU),  # no tag room
        (lambda a: a[:11] + b"\xb0" + a[12:], RejectReason.UNSUPPORTED_APDU),  # compression
        (lambda a: a[:11] + b"\x33" + a[12:], RejectReason.UNSUPPORTED_APDU),  # suite 3
    ],
)
def test_parse_rejects(mutate: object, reason: RejectReason) -> None:
    apdu = mutate(_encrypt(0x30))  # type: ignore[operator]
    with pytest.raises(FrameError) as exc:
        parse_ciphered(apdu)
    assert _reason(exc) is reason


# ------------------------------------------------------------------ decrypt


@pytest.mark.parametrize("sc", [0x30, 0x31, 0x32, 0x70])
def test_auth_and_encryption_verifies_with_gak(sc: int) -> None:
    assert Decryptor(KEY, GAK).decrypt(parse_ciphered(_encrypt(sc))) == (PLAIN, True)


def test_wrong_key_or_gak_or_any_flipped_bit_fails_authentication() -> None:
    apdu = _encrypt(0x30)
    for key, gak in ((bytes(16), GAK), (KEY, bytes(16))):
        with pytest.raises(FrameError) as exc:
            Decryptor(key, gak).decrypt(parse_ciphered(apdu))
        assert _reason(exc) is RejectReason.AUTHENTICATION_FAILED
    decryptor = Decryptor(KEY, GAK)
    # SC 0x30 -> 0x31 (same layout, other AAD), frame counter (IV), ciphertext, tag
    for pos in range(11, len(apdu)):
        bad = apdu[:pos] + bytes((apdu[pos] ^ 0x01,)) + apdu[pos + 1 :]
        with pytest.raises(FrameError) as exc:
            decryptor.decrypt(parse_ciphered(bad))
        assert _reason(exc) is RejectReason.AUTHENTICATION_FAILED, pos
    title_flip = apdu[:2] + b"X" + apdu[3:]
    with pytest.raises(FrameError) as exc:
        decryptor.decrypt(parse_ciphered(title_flip))
    assert _reason(exc) is RejectReason.AUTHENTICATION_FAILED


def test_authenticated_without_gak_decrypts_unverified() -> None:
    assert Decryptor(KEY, None).decrypt(parse_ciphered(_encrypt(0x30))) == (PLAIN, False)


@pytest.mark.parametrize("sc", [0x20, 0x21, 0x60])
def test_encryption_only_is_ctr_from_counter_two(sc: int) -> None:
    apdu = _encrypt(sc)
    parsed = parse_ciphered(apdu)
    assert parsed.auth_tag is None
    # independent check: the same keystream AES-GCM uses for its ciphertext
    assert parsed.information == AESGCM(KEY).encrypt(parsed.iv, PLAIN, None)[:-16]
    assert Decryptor(KEY, GAK).decrypt(parsed) == (PLAIN, False)
    assert Decryptor(bytes(16), None).decrypt(parsed)[0] != PLAIN


def test_authentication_only_gmac() -> None:
    apdu = _encrypt(0x10)
    parsed = parse_ciphered(apdu)
    assert parsed.information == PLAIN  # sent in the clear
    expected_tag = AESGCM(KEY).encrypt(parsed.iv, b"", b"\x10" + GAK + PLAIN)[:12]
    assert parsed.auth_tag == expected_tag
    assert Decryptor(KEY, GAK).decrypt(parsed) == (PLAIN, True)
    with pytest.raises(FrameError) as exc:
        Decryptor(KEY, bytes(16)).decrypt(parsed)
    assert _reason(exc) is RejectReason.AUTHENTICATION_FAILED
    # without a key (or a GAK) the clear text is returned, flagged as unverified
    assert Decryptor(None, None).decrypt(parsed) == (PLAIN, False)
    assert Decryptor(KEY, None).decrypt(parsed) == (PLAIN, False)


def test_no_security_passes_the_information_through() -> None:
    parsed = parse_ciphered(_encrypt(0x00))
    assert parsed.information == PLAIN
    assert Decryptor(None, None).decrypt(parsed) == (PLAIN, False)
    assert Decryptor(KEY, GAK).decrypt(parsed) == (PLAIN, False)


@pytest.mark.parametrize("sc", [0x20, 0x30])
def test_encrypted_without_key(sc: int) -> None:
    with pytest.raises(FrameError) as exc:
        Decryptor(None, GAK).decrypt(parse_ciphered(_encrypt(sc)))
    assert _reason(exc) is RejectReason.ENCRYPTED_NO_KEY


def test_unusable_key_length_is_reported_per_frame() -> None:
    decryptor = Decryptor(b"\x01" * 15, None)  # must not raise at setup
    with pytest.raises(FrameError, match="15 bytes") as exc:
        decryptor.decrypt(parse_ciphered(_encrypt(0x20)))
    assert _reason(exc) is RejectReason.DECRYPTION_FAILED


def test_aes_256_key_for_suite_2() -> None:
    key = bytes(range(32))
    apdu = encrypt_apdu(
        PLAIN, key=key, auth_key=GAK, system_title=TITLE, frame_counter=1, security_control=0x32
    )
    assert Decryptor(key, GAK).decrypt(parse_ciphered(apdu)) == (PLAIN, True)


# ------------------------------------------------------------------ encrypt


def test_encrypt_layout_ded_tag_and_empty_gak() -> None:
    apdu = encrypt_apdu(
        PLAIN,
        key=KEY,
        auth_key=None,
        system_title=TITLE,
        frame_counter=0xFFFFFFFF,
        security_control=0x30,
        tag=cipher.DED_CIPHERING,
    )
    assert apdu[:10] == b"\xdc\x08" + TITLE
    assert apdu[11:16] == H("30FFFFFFFF")
    parsed = parse_ciphered(apdu)
    assert parsed.tag == 0xDC
    # an empty GAK means AAD = SC alone
    sealed = AESGCM(KEY).encrypt(parsed.iv, PLAIN, b"\x30")
    assert parsed.information + (parsed.auth_tag or b"") == sealed[:-4]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"system_title": b"short"}, "system_title"),
        ({"frame_counter": -1}, "frame_counter"),
        ({"frame_counter": 2**32}, "frame_counter"),
        ({"security_control": 0xB0}, "security control"),
        ({"security_control": 0x130}, "security control"),
    ],
)
def test_encrypt_validates(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "key": KEY,
        "auth_key": GAK,
        "system_title": TITLE,
        "frame_counter": 1,
    } | kwargs
    with pytest.raises(ValueError, match=match):
        encrypt_apdu(PLAIN, **args)  # type: ignore[arg-type]


_SCS = [0x00, 0x10, 0x11, 0x20, 0x21, 0x30, 0x31, 0x40, 0x50, 0x60, 0x70]


@given(
    plain=st.binary(max_size=700),
    sc=st.sampled_from(_SCS),
    fc=st.integers(0, 2**32 - 1),
    title=st.binary(min_size=8, max_size=8),
    tag=st.sampled_from([cipher.GLO_CIPHERING, cipher.DED_CIPHERING]),
)
def test_round_trip_every_security_control(
    plain: bytes, sc: int, fc: int, title: bytes, tag: int
) -> None:
    apdu = encrypt_apdu(
        plain,
        key=KEY,
        auth_key=GAK,
        system_title=title,
        frame_counter=fc,
        security_control=sc,
        tag=tag,
    )
    parsed = parse_ciphered(apdu)
    assert (parsed.tag, parsed.system_title, parsed.frame_counter) == (tag, title, fc)
    plaintext, authenticated = Decryptor(KEY, GAK).decrypt(parsed)
    assert plaintext == plain
    assert authenticated == bool(sc & cipher.SC_AUTHENTICATED)


# ------------------------------------------------------------------ published vectors


def test_lg_e450_vector_sc30_tag_verifies() -> None:
    v = vector("lg-e450-at-hdlc-encrypted-gh501-1")
    parsed = parse_ciphered(hdlc_apdu(H(v["hex"])))
    assert parsed.security_control == 0x30
    assert parsed.system_title.hex().upper() == v["decoded_check"]["glo"]["system_title"]
    key, gak = H(v["key"]["ek"]), H(v["key"]["ak"])
    plaintext, authenticated = Decryptor(key, gak).decrypt(parsed)
    assert authenticated
    assert plaintext == H(v["decoded_check"]["plaintext_hex"])
    with pytest.raises(FrameError) as exc:
        Decryptor(key[::-1], gak).decrypt(parsed)
    assert _reason(exc) is RejectReason.AUTHENTICATION_FAILED
    with pytest.raises(FrameError) as exc:
        Decryptor(key, gak[::-1]).decrypt(parsed)
    assert _reason(exc) is RejectReason.AUTHENTICATION_FAILED


def test_kaifa_ma309_vector_sc20() -> None:
    v = vector("kaifa-ma309-at-evn-mbus-vendor-doc")
    apdu = mbus_apdu(H(v["hex"]))
    parsed = parse_ciphered(apdu)
    assert parsed.security_control == 0x20
    assert apdu[10:12] == H("81F8")  # the long length form
    plaintext, authenticated = Decryptor(H(v["key"]["ek"]), None).decrypt(parsed)
    assert not authenticated
    assert plaintext == H(v["expected"]["plaintext_apdu_hex"])


def test_kamstrup_dk_vectors_without_keys() -> None:
    for vector_id in ("kamstrup-dk-encrypted-gh73-nokey", "kamstrup-dk-encrypted-gh517-nokey"):
        v = vector(vector_id)
        parsed = parse_ciphered(hdlc_apdu(H(v["hex"])))
        assert parsed.security_control == 0x30
        assert parsed.system_title.startswith(b"KAM")
        with pytest.raises(FrameError) as exc:
            Decryptor(None, None).decrypt(parsed)
        assert _reason(exc) is RejectReason.ENCRYPTED_NO_KEY
        with pytest.raises(FrameError) as exc:
            Decryptor(KEY, GAK).decrypt(parsed)
        assert _reason(exc) is RejectReason.AUTHENTICATION_FAILED
