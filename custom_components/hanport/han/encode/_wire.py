"""The transport builders the encoder uses, all from the layers that parse them.

Only the meter-specific choices live here: the LLC header and the M-Bus
segment size real meters use (Netz NÖ/EVN Kaifa: 245 data bytes per frame).
"""

from __future__ import annotations

from typing import Final

from ..dlms.apdu import encode_data_notification
from ..framing.hdlc import build_hdlc_frame
from ..framing.mbus import build_mbus_frames as _build_mbus_frames
from ..framing.p1 import build_p1_telegram

__all__ = [
    "LLC",
    "MBUS_SEGMENT",
    "build_hdlc_frame",
    "build_mbus_frames",
    "build_p1_telegram",
    "encode_data_notification",
]

LLC: Final = b"\xe6\xe7\x00"
MBUS_SEGMENT: Final = 245
"""DLMS bytes per wired M-Bus frame as the AT meters send them (L = 250 with the header)."""


def build_mbus_frames(data: bytes) -> bytes:
    """Wired M-Bus long frames as the Austrian meters segment them."""
    return _build_mbus_frames(data, max_segment=MBUS_SEGMENT)
