"""Austrian push lists: L&G E450 (HDLC, 14 positional values) and the OBIS array over M-Bus.

Both are GCM-ciphered. The E450 (Netz Burgenland) sends SC 0x30 in HDLC
CE FF / 03 / 13; the OBIS array (Netz NÖ/EVN Kaifa MA309, Sagemcom, PL Kaifa)
sends SC 0x20 (no tag) in wired M-Bus long frames, two segments when the
APDU is longer than one frame holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..cosem import Unit
from ..dlms import axdr
from ..reading import ListKind, Protocol
from ..scaling import Scheme
from . import _wire
from ._common import (
    ClockStyle,
    EncodeError,
    Ident,
    Keys,
    Register,
    Shape,
    Spec,
    Topology,
    encrypt,
    implicit,
    register,
)

_U32, _U16 = axdr.UINT32, axdr.UINT16
_E450_SCHEME: Final = Scheme.LANDIS_GYR_E450

_E450: Final = (
    implicit("voltage_l1", 32, 7, _U16, _E450_SCHEME),
    implicit("voltage_l2", 52, 7, _U16, _E450_SCHEME),
    implicit("voltage_l3", 72, 7, _U16, _E450_SCHEME),
    implicit("current_l1", 31, 7, _U16, _E450_SCHEME),
    implicit("current_l2", 51, 7, _U16, _E450_SCHEME),
    implicit("current_l3", 71, 7, _U16, _E450_SCHEME),
    implicit("active_power_import", 1, 7, _U32, _E450_SCHEME),
    implicit("active_power_export", 2, 7, _U32, _E450_SCHEME),
    implicit("active_energy_import", 1, 8, _U32, _E450_SCHEME),
    implicit("active_energy_export", 2, 8, _U32, _E450_SCHEME),
)
E450_UNKNOWN: Final = 3  # three more long-unsigned values of unknown meaning, sent as 0

MAKER_PREFIX: Final = {
    "Kaifa": b"KFM",
    "Sagemcom": b"SAG",
    "Landis+Gyr": b"LGZ",
    "Kamstrup": b"KAM",
    "Iskraemeco": b"ISK",
}


class LgE450At(Spec):
    """Structure of 14: U1-3 (V), I1-3 (0.01 A), P+/P- (W), A+/A- (Wh), 3 unknown, meter id."""

    manufacturer = "Landis+Gyr"

    kinds = (ListKind.ENERGY,)
    topologies = (Topology.FOUR_WIRE,)
    clock = ClockStyle(deviation=None, status=0x00)

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Return the ten named values, in wire order."""
        return _E450

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """Only the 3-phase list is documented."""
        return Topology.FOUR_WIRE

    def identity(self, ident: Ident, shape: Shape) -> Ident:
        """Meter id but no model string in the list."""
        return Ident(self.manufacturer, ident.meter_id, None, None)

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Positional values, ciphered, in HDLC CE FF / 03 / 13."""
        meter_id = ident.need_id("the L&G E450 list")
        body: list[axdr.Encodable] = [reg.typed(reading_values) for reg in _E450]
        body += [axdr.Typed(_U16, 0)] * E450_UNKNOWN
        body.append(meter_id.encode("latin-1"))
        stamp = self.clock.encode(ident.meter_time)
        apdu = _wire.encode_data_notification(
            tuple(body), invoke_id=0x002180FC, timestamp=stamp, datetime_style="axdr"
        )
        cipher = encrypt(apdu, keys, b"LGZg", meter_id)
        return _wire.build_hdlc_frame(
            _wire.LLC + cipher, dest=b"\xce\xff", src=b"\x03", control=0x13
        )


_W, _V, _A, _WH = Unit.WATT, Unit.VOLT, Unit.AMPERE, Unit.WATT_HOUR
_OBIS_ARRAY: Final = (
    register("active_energy_import", 1, 8, _U32, (0, _WH)),
    register("active_energy_export", 2, 8, _U32, (0, _WH)),
    register("active_power_import", 1, 7, _U32, (0, _W)),
    register("active_power_export", 2, 7, _U32, (0, _W)),
    register("voltage_l1", 32, 7, _U16, (-1, _V)),
    register("voltage_l2", 52, 7, _U16, (-1, _V)),
    register("voltage_l3", 72, 7, _U16, (-1, _V)),
    register("current_l1", 31, 7, _U16, (-2, _A)),
    register("current_l2", 51, 7, _U16, (-2, _A)),
    register("current_l3", 71, 7, _U16, (-2, _A)),
    register("power_factor", 13, 7, _U16, (-3, Unit.UNITLESS)),
)


class ObisArrayAt(Spec):
    """Netz NÖ/EVN layout: clock, 11 OBIS/value/scaler-unit triples, meter number (35 items)."""

    protocol = Protocol.MBUS

    kinds = (ListKind.ENERGY,)
    topologies = (Topology.FOUR_WIRE,)
    clock = ClockStyle(deviation="offset", status="dst", hundredths=0x00)

    def registers(self, kind: ListKind, topology: Topology) -> tuple[Register, ...]:
        """Return the eleven registers, in wire order."""
        return _OBIS_ARRAY

    def topology(self, meter_type: str | None, values: Mapping[str, float]) -> Topology:
        """Return three-phase: the list always has all three phases."""
        return Topology.FOUR_WIRE

    def identity(self, ident: Ident, shape: Shape) -> Ident:
        """Maker from the system title (default Kaifa), meter number, no model."""
        return Ident(ident.manufacturer or "Kaifa", ident.meter_id, None, None)

    def encode(
        self, reading_values: Mapping[str, float], ident: Ident, shape: Shape, keys: Keys
    ) -> bytes:
        """Plain APDU, ciphered with SC 0x20 (0x30 when an auth key is given), M-Bus frames."""
        meter_id = ident.need_id("the Austrian OBIS list")
        stamp = self.clock.encode(ident.meter_time)
        body: list[axdr.Encodable] = [stamp]
        for reg in _OBIS_ARRAY:
            body += [reg.code, reg.typed(reading_values), reg.scaler_unit()]
        body.append(meter_id.encode("latin-1"))
        apdu = _wire.encode_data_notification(
            tuple(body), invoke_id=0x8006870E, timestamp=stamp, datetime_style="axdr"
        )
        prefix = MAKER_PREFIX.get(ident.manufacturer or "Kaifa")
        if prefix is None:
            raise EncodeError(f"no DLMS system-title prefix for {ident.manufacturer!r}")
        security_control = 0x20 if keys.auth_key is None else 0x30
        cipher = encrypt(apdu, keys, prefix + b"g", meter_id, security_control=security_control)
        return _wire.build_mbus_frames(cipher)
