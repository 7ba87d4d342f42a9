"""Kaifa ``KFM_001``: positional lists (NO, SE MA304H4D) and the Swedish OBIS variant.

The Norwegian lists are a ``structure`` of bare values in a fixed order with no
OBIS codes and no scalers, identified by their item count:

====  ===========================================================
  1   P+ (list 1)
  9   id, meter id, type, P+, P-, Q+, Q-, IL1, UL1 (1-phase MA105H2E)
 13   id, meter id, type, P+, P-, Q+, Q-, IL1-3, UL1-3
 14   the 9-item list + clock + A+, A-, R+, R-
 18   the 13-item list + clock + A+, A-, R+, R-
====  ===========================================================

Resolution is implicit (``scaling.Scheme.KAIFA``: mA, 0.1 V, Wh). Any other
count, or a value of the wrong type in a slot, is ``UNKNOWN_LAYOUT``: position is
all a positional list has, so a list we do not recognise is not guessed at.

Swedish MA304H4 firmware sends the same values as OBIS/value pairs in one flat
structure whose first pair is the list id 1-0:0.2.129.255 = ``KFM_001``.

3-wire IT meters (MA304H3E, MA304T3: the digit after ``MA304H``/``T`` is the
wire count) do not measure UL2 and report it as 0 (KFM_001: "0 V not
measured"); UL1/UL3 are then line voltages. That 0 is dropped, so voltage_l2 is
absent rather than a false 0 V; nothing is reconstructed. A non-zero UL2 from
such a meter would be published as sent. IL2 is sent and published: in a
3-wire system it is determined by IL1 and IL3, so the meter's value is real.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from .. import reading as r
from ..dlms.axdr import Data
from ..dlms.notification import Notification
from ..errors import FrameError, RejectReason
from ..reading import Protocol, Reading
from ..scaling import Scheme
from .obis_array import Collected, Kind, clock, collect_interleaved, lookup, meter_time, text

KAIFA: Final = "Kaifa"

_POWERS: Final = (
    r.ACTIVE_POWER_IMPORT,
    r.ACTIVE_POWER_EXPORT,
    r.REACTIVE_POWER_IMPORT,
    r.REACTIVE_POWER_EXPORT,
)
_ONE_PHASE: Final = (*_POWERS, "current_l1", "voltage_l1")
_THREE_PHASE: Final = (
    *_POWERS,
    "current_l1",
    "current_l2",
    "current_l3",
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
)
_ENERGIES: Final = (
    r.ACTIVE_ENERGY_IMPORT,
    r.ACTIVE_ENERGY_EXPORT,
    r.REACTIVE_ENERGY_IMPORT,
    r.REACTIVE_ENERGY_EXPORT,
)
# item count -> (names after the three identity items, has clock + energies)
_LISTS: Final[dict[int, tuple[tuple[str, ...], bool]]] = {
    9: (_ONE_PHASE, False),
    13: (_THREE_PHASE, False),
    14: (_ONE_PHASE, True),
    18: (_THREE_PHASE, True),
}


def is_list_id(value: Data) -> bool:
    """Tell whether ``value`` is the ``KFM_001`` list id (octet- or visible-string)."""
    if type(value) is bytes:
        return value.startswith(b"KFM")
    return type(value) is str and value.startswith("KFM")


def is_three_wire(model: str | None) -> bool:
    """Tell 3-wire IT models (``MA304H3E``, ``MA304T3``) from 4-wire ones (``MA304H4``)."""
    return model is not None and model.startswith("MA304") and model[6:7] == "3"


def _drop_unmeasured_ul2(collected: Collected) -> None:
    if is_three_wire(collected.meter_type) and collected.raw.get("voltage_l2") == 0:
        collected.values.pop("voltage_l2", None)


def _reading(n: Notification, collected: Collected, *, protocol: Protocol, frame: bytes) -> Reading:
    collected.apply(Scheme.KAIFA)
    _drop_unmeasured_ul2(collected)
    return Reading(  # positional (faster): the fields in declaration order
        protocol,
        KAIFA,
        collected.meter_id,
        collected.meter_type,
        collected.list_version,
        meter_time(collected, n),
        MappingProxyType(collected.values),
        frame,
    )


def _unknown(detail: str) -> FrameError:
    return FrameError(RejectReason.UNKNOWN_LAYOUT, detail)


def _put(collected: Collected, name: str, value: Data) -> None:
    if type(value) is not int:
        raise _unknown(f"Kaifa list: {name} is not an integer")
    collected.raw[name] = value
    collected.pending[name] = value


def decode_positional(
    n: Notification, body: tuple[Data, ...], *, protocol: Protocol, frame: bytes
) -> Reading:
    """Decode a positional ``KFM_001`` list (1, 9, 13, 14 or 18 items)."""
    collected = Collected()
    count = len(body)
    if count == 1:
        _put(collected, r.ACTIVE_POWER_IMPORT, body[0])
        return _reading(n, collected, protocol=protocol, frame=frame)
    shape = _LISTS.get(count)
    if shape is None or not is_list_id(body[0]):
        raise _unknown(f"Kaifa list with {count} items")
    names, hourly = shape
    collected.list_version = text(body[0])
    collected.meter_id = text(body[1])
    collected.meter_type = text(body[2])
    raw, pending = collected.raw, collected.pending
    for index, name in enumerate(names, 3):
        value = body[index]  # _put, inlined
        if type(value) is not int:
            raise _unknown(f"Kaifa list: {name} is not an integer")
        raw[name] = pending[name] = value
    if hourly:
        index = 3 + len(names)
        is_clock, when = clock(body[index])
        if not is_clock:
            raise _unknown("Kaifa hourly list without a clock")
        collected.clock = when
        for offset, name in enumerate(_ENERGIES, index + 1):
            _put(collected, name, body[offset])
    return _reading(n, collected, protocol=protocol, frame=frame)


def is_obis_list(body: tuple[Data, ...]) -> bool:
    """Tell the Swedish OBIS variant: its first pair is list id 1-0:0.2.129.255 = KFM_001."""
    if len(body) < 2:
        return False
    code = body[0]
    return (
        type(code) is bytes
        and (target := lookup(code)) is not None
        and target[0] is Kind.LIST_VERSION
        and is_list_id(body[1])
    )


def decode_obis(
    n: Notification, body: tuple[Data, ...], *, protocol: Protocol, frame: bytes
) -> Reading:
    """Decode the Swedish MA304H4 list of OBIS/value pairs (same implicit units)."""
    collected = collect_interleaved(body, 0)
    return _reading(n, collected, protocol=protocol, frame=frame)
