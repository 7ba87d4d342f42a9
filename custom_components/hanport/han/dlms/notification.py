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

    ``telegram`` is set instead of a body when the deciphered content was a whole
    DSMR/P1 telegram (Luxembourg's Smarty sends ``/...!CRC`` inside general-glo-
    ciphering): then ``body`` is ``None`` and the stream hands ``telegram`` to the
    P1 decoder.
    """

    invoke_id: int
    timestamp: datetime | None
    body: Data
    system_title: bytes | None = None
    telegram: bytes | None = None
