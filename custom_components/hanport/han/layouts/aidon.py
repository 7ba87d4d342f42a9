"""Aidon (``AIDON_V0001``, Swedish 27-item list) and L&G E350 Embriq (``EMBRIQ_V1_1``).

Both send an array of ``structure(obis, value[, structure(scaler, unit)])`` and
state every scaler and unit, so nothing here is implicit:

* NO list 1 is the single item 1-0:1.7.0; lists 2/3 start with the list id,
  meter id (0-0:96.1.0) and type (0-0:96.1.7). 3-wire IT meters (6525/6540)
  simply do not send IL2; nothing is reconstructed.
* Currents are signed int16 and go negative on export; they are kept signed.
* The Swedish list has no id items: clock first, then per-phase P/Q and energy
  with scaler 0 (Wh), which the frame's own scaler-unit already says.
* Embriq pads its meter id with 0x00 (stripped) and sometimes blanks its type.
  Its 3-wire E350 (type ``ZF…``) sends 0 in the IL2/UL2 slots it does not
  measure; those zeros are dropped for that model only.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from ..dlms.axdr import Data
from ..dlms.notification import Notification
from ..errors import FrameError, RejectReason
from ..reading import Protocol, Reading
from .obis_array import collect_structs, meter_time

AIDON: Final = "Aidon"
LANDIS_GYR: Final = "Landis+Gyr"

_NOT_MEASURED_ON_3_WIRE: Final = ("voltage_l2", "current_l2")


def _manufacturer(list_version: str | None, items: int) -> str | None:
    """Who made the meter, from the list id.

    Without a list id, a multi-item list is Aidon's Swedish list (AID-SE);
    the one-item power list is byte-identical on Aidon and the L&G E350, so it
    names no manufacturer.
    """
    if list_version is None:
        return AIDON if items > 1 else None
    if list_version.startswith("AIDON"):
        return AIDON
    if list_version.startswith("EMBRIQ"):
        return LANDIS_GYR
    return None


def decode(n: Notification, body: list[Data], *, protocol: Protocol, frame: bytes) -> Reading:
    """Decode an Aidon/Embriq OBIS-struct array into a ``Reading``."""
    collected = collect_structs(body)
    if collected.is_empty():
        raise FrameError(RejectReason.UNKNOWN_LAYOUT, "OBIS-struct array with no known values")
    manufacturer = _manufacturer(collected.list_version, len(body))
    values = collected.values
    meter_type = collected.meter_type
    if manufacturer == LANDIS_GYR and meter_type is not None and meter_type.startswith("ZF"):
        for name in _NOT_MEASURED_ON_3_WIRE:
            if collected.raw.get(name) == 0:
                values.pop(name, None)
    return Reading(  # positional (faster): the fields in declaration order
        protocol,
        manufacturer,
        collected.meter_id,
        meter_type,
        collected.list_version,
        meter_time(collected, n),
        MappingProxyType(values),
        frame,
    )
