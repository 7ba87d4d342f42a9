"""Landis+Gyr E450 (Austria, Netz Burgenland): proprietary 14-item structure.

After decryption the body is a ``structure`` of 14 bare values, no OBIS codes:

=====  ==================================  =================
slot   value                                resolution
=====  ==================================  =================
0-2    U L1, L2, L3 (long-unsigned)         V
3-5    I L1, L2, L3 (long-unsigned)         0.01 A
6, 7   P+, P- (double-long-unsigned)        W
8, 9   A+, A- (double-long-unsigned)        Wh
10-12  three unidentified long-unsigned     (not published)
13     meter id (octet-string)
=====  ==================================  =================

Identified by that shape; when the APDU arrived ciphered its system title must
also start with ``LGZ`` (the L&G FLAG ID), so another maker's 14-item list is not
mistaken for this one. The three unidentified slots are not guessed at.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, cast

from .. import reading as r
from ..dlms.axdr import Data
from ..dlms.notification import Notification
from ..reading import Protocol, Reading
from ..scaling import Scheme
from .obis_array import Collected, text

LANDIS_GYR: Final = "Landis+Gyr"
SYSTEM_TITLE_PREFIX: Final = b"LGZ"

_SLOTS: Final = (
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "current_l2",
    "current_l3",
    r.ACTIVE_POWER_IMPORT,
    r.ACTIVE_POWER_EXPORT,
    r.ACTIVE_ENERGY_IMPORT,
    r.ACTIVE_ENERGY_EXPORT,
)
_ITEMS: Final = 14
_NUMBERS: Final = 13  # slots 0-12 are numbers, slot 13 the meter id


def matches(n: Notification, body: tuple[Data, ...]) -> bool:
    """Tell whether ``body`` has the E450 shape (and the system title, if any, is L&G's)."""
    if len(body) != _ITEMS or type(body[_NUMBERS]) not in (bytes, str):
        return False
    if n.system_title is not None and not n.system_title.startswith(SYSTEM_TITLE_PREFIX):
        return False
    return all(type(body[i]) is int for i in range(_NUMBERS))


def decode(n: Notification, body: tuple[Data, ...], *, protocol: Protocol, frame: bytes) -> Reading:
    """Decode the E450 structure (call ``matches`` first)."""
    collected = Collected()
    for name, value in zip(_SLOTS, body, strict=False):
        collected.pending[name] = cast(int, value)  # matches() checked every slot
    collected.apply(Scheme.LANDIS_GYR_E450)
    return Reading(  # positional (faster): the fields in declaration order
        protocol,
        LANDIS_GYR,
        text(body[_NUMBERS]),
        None,
        None,
        n.timestamp,
        MappingProxyType(collected.values),
        frame,
    )
