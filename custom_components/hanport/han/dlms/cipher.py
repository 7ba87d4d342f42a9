"""DLMS general-glo/ded-ciphering (security suites 0-2): parse, decrypt, encrypt.

Layout: ``DB|DC  08 system-title(8)  len  SC  FC(4)  information  [tag(12)]``, where
``len`` counts SC, FC, information and tag. IV = system-title || frame counter.

- SC bit 4 (0x10) authenticated: a 12-byte GCM tag over AAD = SC || GAK (|| plaintext
  when not encrypted), keyed with the GUEK.
- SC bit 5 (0x20) encrypted: AES-GCM ciphertext, i.e. AES-CTR from IV || 00000002.
- SC bit 6 (0x40) broadcast key and the suite nibble do not change the arithmetic
  (the user supplies whichever key the meter uses); bit 7 (compression) is unsupported.

Without the GAK an authenticated APDU is still decrypted, but the tag cannot be
checked: ``decrypt`` then says ``authenticated=False`` and the caller must accept
the plaintext only if it parses exactly (see ``apdu.py``).
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import FrameError, RejectReason
from .axdr import encode_length, read_length

GLO_CIPHERING: Final = 0xDB
DED_CIPHERING: Final = 0xDC

SC_SUITE_MASK: Final = 0x0F
SC_AUTHENTICATED: Final = 0x10
SC_ENCRYPTED: Final = 0x20
SC_BROADCAST: Final = 0x40
SC_COMPRESSED: Final = 0x80
MAX_SUITE: Final = 2

SYSTEM_TITLE_LENGTH: Final = 8
TAG_LENGTH: Final = 12
_AES_KEY_LENGTHS: Final = frozenset({16, 24, 32})
_FC: Final = struct.Struct(">I")
_CTR_START: Final = b"\x00\x00\x00\x02"  # GCM encrypts from inc32(IV || 00000001)


@dataclass(frozen=True, slots=True)
class CipheredApdu:
    """The header fields of a general-glo/ded-ciphering APDU and its payload.

    ``information`` is the ciphertext (or, without the E bit, the plaintext);
    ``auth_tag`` is the 12-byte tag when the A bit is set.
    """

    tag: int
    system_title: bytes
    security_control: int
    frame_counter: int
    information: bytes
    auth_tag: bytes | None

    @property
    def iv(self) -> bytes:
        """System title || frame counter: the 12-byte GCM nonce."""
        return self.system_title + _FC.pack(self.frame_counter)


def _malformed(detail: str) -> FrameError:
    return FrameError(RejectReason.MALFORMED_APDU, detail)


def parse_ciphered(apdu: bytes) -> CipheredApdu:
    """Split a ``DB``/``DC`` APDU into its fields (no cryptography yet).

    Bytes after the declared length are ignored (the transport checksum covers them).
    Raises ``FrameError(MALFORMED_APDU)`` when the header or length does not fit and
    ``FrameError(UNSUPPORTED_APDU)`` for compression or an unknown security suite.
    """
    title_len, pos = read_length(apdu, 1)
    if title_len != SYSTEM_TITLE_LENGTH:
        raise _malformed(f"system title is {title_len} bytes, expected 8")
    title_end = pos + SYSTEM_TITLE_LENGTH
    length, start = read_length(apdu, title_end)
    end = start + length
    if end > len(apdu):
        raise _malformed(f"ciphered length {length} exceeds the {len(apdu) - start} bytes present")
    if length < 5:
        raise _malformed("ciphered content shorter than SC + frame counter")
    sc = apdu[start]
    if sc & SC_COMPRESSED:
        raise FrameError(RejectReason.UNSUPPORTED_APDU, f"compressed APDU (SC 0x{sc:02X})")
    if sc & SC_SUITE_MASK > MAX_SUITE:
        raise FrameError(RejectReason.UNSUPPORTED_APDU, f"security suite {sc & SC_SUITE_MASK}")
    info_start = start + 5
    auth_tag: bytes | None = None
    info_end = end
    if sc & SC_AUTHENTICATED:
        info_end = end - TAG_LENGTH
        if info_end < info_start:
            raise _malformed("authenticated APDU too short for its tag")
        auth_tag = apdu[info_end:end]
    return CipheredApdu(
        tag=apdu[0],
        system_title=apdu[pos:title_end],
        security_control=sc,
        frame_counter=_FC.unpack_from(apdu, start + 1)[0],
        information=apdu[info_start:info_end],
        auth_tag=auth_tag,
    )


class Decryptor:
    """Decrypts and authenticates ciphered APDUs with one GUEK/GAK pair.

    The AES key object is built once per decryptor (the hot path only creates
    the per-frame cipher context).
    """

    __slots__ = ("_aes", "_auth_key", "_key_error")

    def __init__(self, key: bytes | None, auth_key: bytes | None) -> None:
        self._auth_key = auth_key
        self._aes: algorithms.AES | None = None
        self._key_error = ""
        if key is not None:
            if len(key) in _AES_KEY_LENGTHS:
                self._aes = algorithms.AES(key)
            else:
                # Reported per frame rather than raised here, so a bad stored key
                # shows up as rejected frames instead of a failed setup.
                self._key_error = f"key is {len(key)} bytes, expected 16"

    def decrypt(self, apdu: CipheredApdu) -> tuple[bytes, bool]:
        """Return ``(plaintext, authenticated)``.

        ``authenticated`` is True only when a tag was present and verified with the
        GAK. Raises ``FrameError`` with ENCRYPTED_NO_KEY, DECRYPTION_FAILED (unusable
        key) or AUTHENTICATION_FAILED (the tag does not verify).
        """
        sc = apdu.security_control
        aes = self._aes
        if aes is None:
            if self._key_error:
                raise FrameError(RejectReason.DECRYPTION_FAILED, self._key_error)
            if sc & SC_ENCRYPTED:
                raise FrameError(RejectReason.ENCRYPTED_NO_KEY, f"SC 0x{sc:02X}")
            # Authentication only, no key: the information is plaintext, unverified.
            return apdu.information, False
        auth_key = self._auth_key
        auth_tag = apdu.auth_tag
        if sc & SC_ENCRYPTED:
            if auth_tag is not None and auth_key is not None:
                aad = bytes((sc,)) + auth_key
                return _gcm_decrypt(aes, apdu.iv, auth_tag, aad, apdu.information), True
            ctr = Cipher(aes, modes.CTR(apdu.iv + _CTR_START)).decryptor()
            return ctr.update(apdu.information) + ctr.finalize(), False
        if auth_tag is not None and auth_key is not None:
            expected = _gmac(aes, apdu.iv, bytes((sc,)) + auth_key + apdu.information)
            if not hmac.compare_digest(expected, auth_tag):
                raise FrameError(RejectReason.AUTHENTICATION_FAILED, "GMAC tag mismatch")
            return apdu.information, True
        return apdu.information, False


def _gcm_decrypt(
    aes: algorithms.AES, iv: bytes, auth_tag: bytes, aad: bytes, ciphertext: bytes
) -> bytes:
    """AES-GCM decrypt with a truncated tag; a mismatch is AUTHENTICATION_FAILED."""
    decryptor = Cipher(aes, modes.GCM(iv, auth_tag, min_tag_length=TAG_LENGTH)).decryptor()
    decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(ciphertext)
    try:
        decryptor.finalize()
    except InvalidTag:
        raise FrameError(
            RejectReason.AUTHENTICATION_FAILED, "GCM tag mismatch (wrong GUEK or GAK)"
        ) from None
    return plaintext


def _gmac(aes: algorithms.AES, iv: bytes, aad: bytes) -> bytes:
    """Compute the truncated GCM tag over ``aad`` with an empty plaintext."""
    encryptor = Cipher(aes, modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    encryptor.finalize()
    return encryptor.tag[:TAG_LENGTH]


@lru_cache(maxsize=8)
def _aesgcm(key: bytes) -> AESGCM:
    return AESGCM(key)


def encrypt_apdu(
    plain_apdu: bytes,
    *,
    key: bytes,
    auth_key: bytes | None,
    system_title: bytes,
    frame_counter: int,
    security_control: int = 0x30,
    tag: int = GLO_CIPHERING,
) -> bytes:
    """Wrap ``plain_apdu`` in a general-glo/ded-ciphering APDU (the encoder's inverse).

    ``auth_key=None`` with the A bit set authenticates with an empty GAK (AAD = SC).
    """
    if len(system_title) != SYSTEM_TITLE_LENGTH:
        raise ValueError("system_title must be 8 bytes")
    if not 0 <= frame_counter <= 0xFFFFFFFF:
        raise ValueError("frame_counter must fit in 32 bits")
    if security_control & SC_COMPRESSED or not 0 <= security_control <= 0xFF:
        raise ValueError(f"unsupported security control 0x{security_control:02X}")
    iv = system_title + _FC.pack(frame_counter)
    sc_byte = bytes((security_control,))
    aad = sc_byte + (auth_key or b"")
    if security_control & SC_ENCRYPTED and security_control & SC_AUTHENTICATED:
        sealed = _aesgcm(key).encrypt(iv, plain_apdu, aad)
        payload = sealed[: len(plain_apdu) + TAG_LENGTH]
    elif security_control & SC_ENCRYPTED:
        encryptor = Cipher(algorithms.AES(key), modes.CTR(iv + _CTR_START)).encryptor()
        payload = encryptor.update(plain_apdu) + encryptor.finalize()
    elif security_control & SC_AUTHENTICATED:
        payload = plain_apdu + _aesgcm(key).encrypt(iv, b"", aad + plain_apdu)[:TAG_LENGTH]
    else:
        payload = plain_apdu
    content = sc_byte + _FC.pack(frame_counter) + payload
    return bytes((tag, SYSTEM_TITLE_LENGTH)) + system_title + encode_length(len(content)) + content
