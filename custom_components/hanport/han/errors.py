"""Why a frame was rejected: reasons are counted and reported, never raised out of the stream."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectReason(StrEnum):
    """Every reason a frame or message yields no reading."""

    # Framing
    HDLC_HEADER_CHECKSUM = "hdlc_header_checksum"
    HDLC_FRAME_CHECKSUM = "hdlc_frame_checksum"
    HDLC_BAD_LENGTH = "hdlc_bad_length"  # length field disagrees with the closing flag
    HDLC_SEGMENT = "hdlc_segment"  # segment sequence broken / reassembly overflow
    MBUS_CHECKSUM = "mbus_checksum"
    MBUS_BAD_FRAME = "mbus_bad_frame"  # header, stop byte or length wrong
    MBUS_SEGMENT = "mbus_segment"
    P1_CRC = "p1_crc"
    P1_MALFORMED = "p1_malformed"
    OVERSIZE = "oversize"  # a frame or reassembly larger than the cap
    # DLMS
    MALFORMED_APDU = "malformed_apdu"
    UNSUPPORTED_APDU = "unsupported_apdu"
    BLOCK_TRANSFER = "block_transfer"  # general block transfer sequence broken
    ENCRYPTED_NO_KEY = "encrypted_no_key"
    DECRYPTION_FAILED = "decryption_failed"
    AUTHENTICATION_FAILED = "authentication_failed"
    # Layouts
    UNKNOWN_LAYOUT = "unknown_layout"


class FrameError(Exception):
    """Raised inside the library when a frame must be rejected; the stream catches it."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Rejected:
    """A rejected frame, as reported to ``MeterStream``'s ``on_reject`` callback."""

    reason: RejectReason
    detail: str
    frame: bytes
