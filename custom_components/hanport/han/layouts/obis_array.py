"""Generic OBIS-tagged list decoding, shared by every layout that names its values.

Two shapes carry OBIS codes:

* **struct array** (Aidon, L&G Embriq):
  ``array of structure(obis, value[, structure(scaler, unit)])``;
* **interleaved** (Kamstrup, Kaifa SE, Austrian/Polish arrays): one flat
  ``structure`` of ``obis, value[, structure(scaler, unit)], obis, value, ...``,
  possibly padded with null-data (Kamstrup 1-phase) and with stray items that
  belong to no OBIS code (a leading list id or clock, a trailing meter number).

Both feed one collector that maps OBIS codes to canonical names through a dict
keyed by the raw 6 OBIS bytes, so the hot path does no string work. Unknown
codes are skipped. Values keep their explicit scaler-unit when the meter sends
one; otherwise the layout's implicit scheme (``scaling.py``) decides, and a value
no scheme can scale is dropped rather than guessed.

This module also holds the Austrian/Polish layout (Kaifa MA309, Sagemcom
T210-D over M-Bus): ``structure(clock, obis, value, scaler-unit, ..., meter number)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from types import MappingProxyType
from typing import Final, cast

from .. import cosem
from ..dlms.axdr import DATE_TIME, Data, DateTimeField
from ..dlms.notification import Notification
from ..errors import FrameError, RejectReason
from ..reading import POWER_FACTOR, Protocol, Reading
from ..scaling import (
    ALL_UNITS,
    ENERGY_UNIT_EXPONENT,
    POW10,
    Quantity,
    Scheme,
    implicit_plan,
    quantity_of,
)


class Kind(IntEnum):
    """What an OBIS code carries."""

    VALUE = 0
    LIST_VERSION = 1
    METER_ID = 2
    METER_TYPE = 3
    CLOCK = 4


# Electricity (A=1) registers beyond cosem.ELECTRICITY_NAMES that a list may carry.
EXTRA_ELECTRICITY_NAMES: Final[dict[tuple[int, int, int], str]] = {
    (21, 8, 0): "active_energy_import_l1",
    (41, 8, 0): "active_energy_import_l2",
    (61, 8, 0): "active_energy_import_l3",
    (22, 8, 0): "active_energy_export_l1",
    (42, 8, 0): "active_energy_export_l2",
    (62, 8, 0): "active_energy_export_l3",
}

_ELECTRICITY: Final = {**cosem.ELECTRICITY_NAMES, **EXTRA_ELECTRICITY_NAMES}

type Target = tuple[Kind, str, bool, bool]
"""(kind, canonical name, is an energy register, is a power factor)."""


def _value(name: str) -> Target:
    energy = quantity_of(name) is Quantity.ENERGY
    return (Kind.VALUE, name, energy, quantity_of(name) is Quantity.POWER_FACTOR)


def _build_table() -> dict[bytes, Target]:
    """OBIS bytes (B = 0, F = 255) -> what they carry; other B values are normalised to 0."""
    table: dict[bytes, Target] = {}
    for (c, d, e), name in _ELECTRICITY.items():
        table[cosem.obis(1, 0, c, d, e)] = _value(name)
    for code, kind in (
        (cosem.obis(1, 0, *cosem.LIST_VERSION), Kind.LIST_VERSION),
        (cosem.obis(0, 0, *cosem.CLOCK), Kind.CLOCK),
        (cosem.obis(0, 0, 96, 1, 0), Kind.METER_ID),  # Aidon, Kaifa SE, DSMR
        (cosem.obis(0, 0, 96, 1, 1), Kind.METER_ID),  # DSMR equipment identifier
        (cosem.obis(0, 0, 96, 1, 7), Kind.METER_TYPE),  # Aidon, Kaifa SE
        (cosem.obis(1, 0, 0, 0, 5), Kind.METER_ID),  # Kamstrup (GS1 number)
        (cosem.obis(1, 0, 0, 0, 1), Kind.METER_ID),  # Kamstrup DK meter number (u32)
        (cosem.obis(1, 0, 96, 1, 1), Kind.METER_TYPE),  # Kamstrup
    ):
        table[code] = (kind, "", False, False)
    return table


_TABLE: Final = _build_table()
_VALUE: Final = Kind.VALUE
# The same codes as sent with channel B = 1 (Kamstrup, Aidon list id), so that the
# common cases hit the first dict lookup.
_FAST: Final[dict[bytes, Target]] = {
    **{k[:1] + b"\x01" + k[2:]: v for k, v in _TABLE.items()},
    **_TABLE,
}


def lookup(code: bytes) -> Target | None:
    """Return what the 6-byte OBIS ``code`` carries, or ``None`` when we do not use it."""
    hit = _FAST.get(code)
    if hit is None and len(code) == 6 and code[1] > 1:
        hit = _TABLE.get(code[:1] + b"\x00" + code[2:])
    return hit


# ---------------------------------------------------------------- value helpers

_MAX_SCALER: Final = 20
_POWER_FACTORS: Final = frozenset(
    name for name in ALL_UNITS if quantity_of(name) is Quantity.POWER_FACTOR
)
_ENERGY_UNITS: Final = frozenset(
    {cosem.Unit.WATT_HOUR, cosem.Unit.VAR_HOUR, cosem.Unit.VOLT_AMPERE_HOUR}
)


def _quick_divisors(scheme: Scheme) -> dict[str, int]:
    """Names whose integer values ``apply`` may take as ``raw / divisor``.

    That is exactly ``scaling.scale`` for an exponent <= 0 (one correctly rounded
    division; ``raw / 1`` is ``float(raw)``), when the rule has no finer-resolution
    threshold and the value needs no range check (not a power factor).
    """
    return {
        name: POW10[-exponent]
        for name, (exponent, threshold, _finer) in implicit_plan(scheme).items()
        if exponent <= 0 and threshold is None and name not in _POWER_FACTORS
    }


_QUICK: Final = {scheme: _quick_divisors(scheme) for scheme in Scheme}


def text(value: Data) -> str | None:
    """Return an identity string from a visible- or octet-string (or a meter number).

    Trailing/leading NUL padding (Embriq pads its meter id with 0x00) and spaces
    are stripped; an all-NUL or empty string is ``None``. Octet-strings that are
    not printable ASCII become upper-case hex rather than mojibake. Strings are
    memoised (a meter repeats its ids in every list).
    """
    kind = type(value)
    if kind is bytes or kind is str:
        string = cast(bytes | str, value)
        known = _TEXTS.get(string, _NO_TEXT)
        if known is not _NO_TEXT:
            return known
        if kind is bytes:
            found = _bytes_text(cast(bytes, string))
        else:
            found = cast(str, string).strip("\x00 ") or None
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        _TEXTS[string] = found
        return found
    if kind is int and cast(int, value) >= 0:
        return str(value)  # Kamstrup DK meter number is a double-long-unsigned
    return None


def _bytes_text(value: bytes) -> str | None:
    raw = value.strip(b"\x00 ")
    if not raw:
        return None
    if raw.isascii():
        decoded = raw.decode("ascii")
        if decoded.isprintable():
            return decoded
    return raw.hex().upper()


_TEXTS: Final[dict[bytes | str, str | None]] = {}
"""Memo for ``text`` (bytes and str never compare equal, so one dict holds both)."""
_TEXTS_MAX: Final = 256
_NO_TEXT: Final = "\x00"  # never a result: results are stripped of NUL


def number(value: Data) -> int | float | None:
    """Return the value as a number, or ``None`` (bool, NaN, strings are not numbers)."""
    t = type(value)
    if t is int:
        return value  # type: ignore[return-value]
    if t is float and math.isfinite(value):  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    return None


def clock(value: Data) -> tuple[bool, datetime | None]:
    """Return ``(is_a_clock, parsed)`` for a 12-byte octet-string or a tagged date-time."""
    if type(value) is bytes and len(value) == 12:
        return True, cosem.parse_datetime(value)
    if type(value) is DateTimeField and value.tag == DATE_TIME:
        return True, cosem.parse_datetime(value.raw)
    return False, None


def scaler_unit(value: Data) -> tuple[int, int] | None:
    """Return a ``structure(scaler, unit)`` as a pair, or ``None`` when it is not one."""
    if type(value) is tuple and len(value) == 2:
        scaler, unit = value
        if type(scaler) is int and type(unit) is int and -_MAX_SCALER <= scaler <= _MAX_SCALER:
            return scaler, unit
    return None


def finish(name: str, value: float) -> float | None:
    """Check a scaled value last: finite, and power factor as 0..1 (magnitude).

    Some meters sign the power factor (leading/lagging or export); the canonical
    value is its magnitude. A value above 1 is not a power factor and is dropped.
    """
    if not math.isfinite(value):
        return None  # a finite raw value times a large scaler can overflow
    if name == POWER_FACTOR or name.startswith("power_factor_"):
        value = abs(value)
        if value > 1.0:
            return None
    return value


# ---------------------------------------------------------------- collector


@dataclass(slots=True)
class Collected:
    """What a list said, before a layout turns it into a ``Reading``."""

    values: dict[str, float] = field(default_factory=dict)
    """Values already in canonical units (explicit scaler-unit, or ``apply``)."""
    raw: dict[str, int | float] = field(default_factory=dict)
    """Unscaled numbers by canonical name (vendor quirks look at raw slots)."""
    pending: dict[str, int | float] = field(default_factory=dict)
    """Numbers without a scaler-unit, waiting for the layout's implicit scheme."""
    list_version: str | None = None
    meter_id: str | None = None
    meter_number: bool = False
    """The id came from a numeric meter number (Kamstrup DK 1-1:0.0.1)."""
    meter_type: str | None = None
    clock: datetime | None = None
    loose: list[Data] = field(default_factory=list)
    """Items that belong to no OBIS code (interleaved lists), in order."""
    codes: int = 0
    """How many OBIS codes were seen (known or not)."""

    def take(self, code: bytes, value: Data, su: tuple[int, int] | None) -> None:
        """Record one OBIS-tagged value (the hot path: one dict lookup, no string work).

        ``su`` is a checked ``(scaler, unit)`` pair (``scaler_unit``) or None.
        ``number`` and ``scale`` are inlined here.
        """
        self.codes += 1
        target = _FAST.get(code)
        if target is None:
            target = lookup(code)
            if target is None:
                return
        kind, name, energy, power_factor = target
        if kind is _VALUE:
            kind_of_value = type(value)
            if kind_of_value is not int and (
                kind_of_value is not float or not math.isfinite(value)  # type: ignore[arg-type]
            ):
                return
            raw: int | float = value  # type: ignore[assignment]
            self.raw[name] = raw
            if su is None:
                self.pending[name] = raw
                return
            scaler, unit = su
            if energy:
                if unit not in _ENERGY_UNITS:
                    return  # an energy register whose unit is not Wh/varh/VAh: unusable
                scaler += ENERGY_UNIT_EXPONENT
            scaled = float(raw * POW10[scaler]) if scaler >= 0 else raw / POW10[-scaler]
            if power_factor or kind_of_value is float:
                self._store(name, scaled)  # range checks only where they can fail
            else:
                self.values[name] = scaled
        elif kind is Kind.CLOCK:
            self.clock = clock(value)[1]
        elif kind is Kind.LIST_VERSION:
            self.list_version = text(value)
        elif kind is Kind.METER_ID:
            self.meter_id = text(value)
            self.meter_number = type(value) is int
        else:
            self.meter_type = text(value)

    def _store(self, name: str, value: float) -> None:
        checked = finish(name, value)
        if checked is not None:
            self.values[name] = checked

    def apply(self, scheme: Scheme) -> None:
        """Scale the values that came without a scaler-unit by ``scheme``.

        A value the scheme has no resolution for is dropped, never guessed.
        """
        plan = implicit_plan(scheme)
        quick = _QUICK[scheme]
        values = self.values
        for name, raw in self.pending.items():
            divisor = quick.get(name)
            if divisor is not None and type(raw) is int:
                values[name] = raw / divisor  # the common case (see _QUICK)
                continue
            rule = plan.get(name)
            if rule is None:
                continue
            exponent, threshold, finer = rule
            if threshold is not None and abs(raw) >= threshold:
                exponent = finer
            # scaling.scale, inlined
            scaled = float(raw * POW10[exponent]) if exponent >= 0 else raw / POW10[-exponent]
            if type(raw) is float or name in _POWER_FACTORS:
                self._store(name, scaled)  # range checks only where they can fail
            else:
                values[name] = scaled
        self.pending.clear()

    def is_empty(self) -> bool:
        """Tell whether the list said nothing we can use."""
        return not self.values and self.meter_id is None and self.list_version is None


def collect_structs(items: list[Data]) -> Collected:
    """Decode an array of ``structure(obis, value[, structure(scaler, unit)])``.

    Elements of any other shape are skipped; values without a scaler-unit are
    dropped (this shape always carries explicit scaling).
    """
    out = Collected()
    take = out.take
    for item in items:
        if type(item) is not tuple:
            continue
        size = len(item)
        if size == 3:
            code, value, su = item
            # scaler_unit, inlined: a checked pair, or None
            if not (
                type(su) is tuple
                and len(su) == 2
                and type(su[0]) is int
                and type(su[1]) is int
                and -_MAX_SCALER <= su[0] <= _MAX_SCALER
            ):
                su = None
        elif size == 2:
            code, value = item
            su = None
        else:
            continue
        if type(code) is bytes and len(code) == 6:
            take(code, value, su)  # type: ignore[arg-type]
    return out


def collect_interleaved(items: tuple[Data, ...], start: int) -> Collected:
    """Decode ``obis, value[, structure(scaler, unit)], ...`` from ``items[start:]``.

    Null-data where an OBIS code is expected is padding and skipped (Kamstrup
    1-phase lists keep their item count and fill absent pairs with ``00 00``).
    Anything else that is not a 6-byte octet-string there goes to ``loose``, and
    so does a 6-byte string that ends the list unless it is a code we know: with
    no value after it, it is a trailing item (a 6-character meter number).
    """
    out = Collected()
    take = out.take
    n = len(items)
    i = start
    while i < n:
        code = items[i]
        i += 1
        if type(code) is bytes and len(code) == 6:
            if i >= n:
                if lookup(code) is None:
                    out.loose.append(code)
                break
            value = items[i]
            i += 1
            su = items[i] if i < n else None
            # scaler_unit, inlined: a checked pair, or None
            if (
                type(su) is tuple
                and len(su) == 2
                and type(su[0]) is int
                and type(su[1]) is int
                and -_MAX_SCALER <= su[0] <= _MAX_SCALER
            ):
                i += 1
            else:
                su = None
            take(code, value, su)  # type: ignore[arg-type]
        elif code is not None:
            out.loose.append(code)
    return out


def meter_time(collected: Collected, notification: Notification) -> datetime | None:
    """Return the list's own clock item, else the APDU header date-time."""
    if collected.clock is not None:
        return collected.clock
    return notification.timestamp


# ---------------------------------------------------------------- Austrian/Polish arrays

SYSTEM_TITLE_MAKERS: Final[dict[bytes, str]] = {
    b"KFM": "Kaifa",
    b"SAG": "Sagemcom",
    b"LGZ": "Landis+Gyr",
    b"ISK": "Iskraemeco",
    b"KAM": "Kamstrup",
}
"""First three system-title bytes -> manufacturer (DLMS FLAG IDs)."""


def maker_from_system_title(system_title: bytes | None) -> str | None:
    """Return the manufacturer a ciphered APDU's system title names, if known."""
    if system_title is None:
        return None
    return SYSTEM_TITLE_MAKERS.get(system_title[:3])


def decode_tagged(
    n: Notification, body: tuple[Data, ...], *, protocol: Protocol, frame: bytes
) -> Reading:
    """Decode a self-describing interleaved list from a maker without quirks of its own.

    The Austrian/Polish push list (Kaifa MA309, Sagemcom T210-D over M-Bus) is
    ``clock, (obis, value, scaler-unit)*, meter number``: the clock first, every
    register with its own scaler-unit (so no implicit scaling applies), and the
    meter number as the last item that belongs to no OBIS code. A list that
    starts with an OBIS code instead is read the same way. The manufacturer
    comes from the system title (these lists are ciphered in the field).
    """
    is_clock, when = clock(body[0])
    collected = collect_interleaved(body, 1 if is_clock else 0)
    meter_id = collected.meter_id
    if meter_id is None:
        meter_id = next(
            (
                found
                for item in reversed(collected.loose)
                if isinstance(item, (bytes, str)) and (found := text(item)) is not None
            ),
            None,
        )
    if not collected.values and meter_id is None:
        raise FrameError(RejectReason.UNKNOWN_LAYOUT, "OBIS list with no known values")
    if when is None:
        when = meter_time(collected, n)
    return Reading(  # positional (faster): the fields in declaration order
        protocol,
        maker_from_system_title(n.system_title),
        meter_id,
        collected.meter_type,
        collected.list_version,
        when,
        MappingProxyType(collected.values),
        frame,
    )


__all__ = [
    "EXTRA_ELECTRICITY_NAMES",
    "Collected",
    "Kind",
    "collect_interleaved",
    "collect_structs",
    "decode_tagged",
    "lookup",
    "maker_from_system_title",
    "meter_time",
    "text",
]
