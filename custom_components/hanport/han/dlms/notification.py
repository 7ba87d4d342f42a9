"""What an APDU decodes to, before a layout turns it into a Reading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .axdr import Data


@dataclass(frozen=True, slots=True)
class Notification:
    """A DLMS data-notification: its header clock and its body tree.

    ``timestamp`` is the date-time in the APDU header (``None`` when absent or
    unusable); ``system_title`` is set when it arrived ciphered.
    """

    invoke_id: int
    timestamp: datetime | None
    body: Data
    system_title: bytes | None = None
