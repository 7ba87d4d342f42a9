"""Layouts: a decoded data-notification (or a P1 telegram) -> one ``Reading``.

``decode_notification`` picks the layout from the shape of the body alone,
cheaply (the container type, then the type and length of its first item):

==============================================  ===================================
body                                            layout
==============================================  ===================================
array of structures                             Aidon / L&G Embriq (``aidon``)
structure, first item ``Kamstrup_V0001``        Kamstrup NO/SE/DK (``kamstrup``)
structure, first item ``KFM_001``               Kaifa positional (``kaifa``)
structure of one integer                        Kaifa list 1 (``kaifa``)
structure, first item an OBIS code whose
  list id is ``KFM_001``                        Kaifa SE OBIS variant (``kaifa``)
structure, first item an OBIS code or a clock   AT/PL OBIS list (``obis_array``)
structure of 13 integers + meter id             L&G E450 AT (``landis_gyr``)
==============================================  ===================================

Anything else is ``FrameError(UNKNOWN_LAYOUT)``; no other exception escapes for
any tree the A-XDR decoder can produce.
"""

from __future__ import annotations

from ..dlms.axdr import DateTimeField
from ..dlms.notification import Notification
from ..errors import FrameError, RejectReason
from ..options import DecodeOptions
from ..reading import Protocol, Reading
from ..scaling import ALL_UNITS, EXTRA_UNITS
from . import aidon, kaifa, kamstrup, landis_gyr, obis_array
from .p1 import decode_telegram

_OBIS_LENGTH = 6
_CLOCK_LENGTH = 12


def decode_notification(
    n: Notification, *, protocol: Protocol, options: DecodeOptions, frame: bytes = b""
) -> Reading:
    """Turn a data-notification into a ``Reading``.

    ``protocol`` and ``frame`` are recorded on the reading as given; ``options``
    supplies what the frame cannot say (the market, for Kamstrup's resolution).
    Raises ``FrameError(UNKNOWN_LAYOUT)`` when no layout matches.
    """
    body = n.body
    if isinstance(body, list):
        return aidon.decode(n, body, protocol=protocol, frame=frame)
    if isinstance(body, tuple) and body:
        first = body[0]
        if isinstance(first, (str, bytes)):
            if kamstrup.is_list_id(first):
                return kamstrup.decode(n, body, protocol=protocol, options=options, frame=frame)
            if kaifa.is_list_id(first):
                return kaifa.decode_positional(n, body, protocol=protocol, frame=frame)
            if isinstance(first, bytes) and len(first) == _OBIS_LENGTH:
                if kaifa.is_obis_list(body):
                    return kaifa.decode_obis(n, body, protocol=protocol, frame=frame)
                return obis_array.decode_tagged(n, body, protocol=protocol, frame=frame)
            if isinstance(first, bytes) and len(first) == _CLOCK_LENGTH:
                return obis_array.decode_tagged(n, body, protocol=protocol, frame=frame)
        elif isinstance(first, DateTimeField):
            return obis_array.decode_tagged(n, body, protocol=protocol, frame=frame)
        elif type(first) is int:
            if len(body) == 1:
                return kaifa.decode_positional(n, body, protocol=protocol, frame=frame)
            if landis_gyr.matches(n, body):
                return landis_gyr.decode(n, body, protocol=protocol, frame=frame)
    raise FrameError(RejectReason.UNKNOWN_LAYOUT, f"no layout for a {type(body).__name__} body")


__all__ = ["ALL_UNITS", "EXTRA_UNITS", "decode_notification", "decode_telegram"]
