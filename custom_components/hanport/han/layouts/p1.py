"""P1 ASCII telegrams (SE, DK, FI, NO; DSMR-5-like) -> one ``Reading``.

``/XXXZ<ident>`` then ``OBIS(value*unit)`` lines then ``!CRC``. The framer has
checked the CRC already; here every line stands alone: a line that does not
parse (``1-0:4:24.7.0(...)`` in a real Kamstrup capture), has an unknown OBIS
code, a unit that does not fit its quantity, or a historical billing period is
skipped and the rest is kept.

Units are converted from the text: kW -> W, kvar/kVAr -> var, kWh, kvarh/kVArh,
V, A (W, var, Wh, varh also accepted). Numbers are parsed as decimals, so
``0001.727*kW`` is exactly 1727.0 W.

Phase currents are unsigned in P1. The sign is derived from the per-phase
powers the same telegram carries: a phase whose export (22/42/62.7.0) exceeds
its import (21/41/61.7.0) gets a negative current, matching the signed currents
of the binary Aidon lists. Nothing else is derived.

**Meter time.** ``0-0:1.0.0(YYMMDDhhmmssX)`` is read as follows:

* Sweden: the Energiföretagen recommendation says meters stay on normal time,
  UTC+1, all year and X (W/S) may be ignored. A Swedish Kamstrup sends ``S`` in
  April and still means UTC+1. The time is returned **aware, UTC+1**, X ignored:
  a naive local time would be an hour wrong all summer.
* Denmark: same (a Danish L&G E360 still sends ``W`` the day after DST began).
* Any other country (FI, NO, ...): no evidence that the meter keeps normal time,
  so the time is returned **naive**, the meter's wall clock (see ``Reading``).
* No country given: also **naive**. The offset is a property of the market, not
  of the meter: the same idents (``/LGF5E360``, ``/KAM5``) are sent in Sweden,
  Denmark and Finland, and a Finnish meter (UTC+2/+3) read as UTC+1 would be an
  hour or two off with nothing downstream able to tell. A naive time is at worst
  standard time all year, which consumers of naive times already allow for.
  Set the country (SE, DK) to get the aware UTC+1 time.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from operator import truediv
from types import MappingProxyType
from typing import Final

from .. import reading as r
from ..errors import FrameError, RejectReason
from ..options import DecodeOptions
from ..reading import Protocol, Reading
from ..scaling import Quantity, quantity_of, scale
from .obis_array import Kind, lookup

MAKERS: Final[dict[str, str]] = {
    "LGF": "Landis+Gyr",
    "LGZ": "Landis+Gyr",
    "KAM": "Kamstrup",
    "ADN": "Aidon",
    "NES": "NES",
    "KFM": "Kaifa",
    "ISK": "Iskraemeco",
    "SAG": "Sagemcom",
}
"""P1 ident FLAG ID -> manufacturer. An unlisted flag (``ELL``) is reported as the flag itself."""

# unit text (lower case) -> (quantity, decimal exponent to the canonical unit)
_UNITS: Final[dict[str, tuple[Quantity, int]]] = {
    "kw": (Quantity.POWER, 3),
    "w": (Quantity.POWER, 0),
    "kvar": (Quantity.POWER, 3),
    "var": (Quantity.POWER, 0),
    "kwh": (Quantity.ENERGY, 0),
    "wh": (Quantity.ENERGY, -3),
    "kvarh": (Quantity.ENERGY, 0),
    "varh": (Quantity.ENERGY, -3),
    "v": (Quantity.VOLTAGE, 0),
    "a": (Quantity.CURRENT, 0),
    "hz": (Quantity.FREQUENCY, 0),
    "": (Quantity.POWER_FACTOR, 0),
}

NORMAL_TIME: Final[dict[str | None, timezone]] = {
    "SE": timezone(timedelta(hours=1)),
    "DK": timezone(timedelta(hours=1)),
}
"""Country -> the fixed offset its P1 meters keep all year (absent or no country: naive)."""

_PHASE_SIGNS: Final = tuple(
    (f"current_{p}", f"active_power_import_{p}", f"active_power_export_{p}") for p in r.PHASES
)
_DSMR_VERSION: Final = (1, 0, 2, 8)  # 1-3:0.2.8 (A, C, D, E)
_MAX_DIGITS: Final = 18
"""Longer numbers are not meter values (and could overflow a float)."""


def _malformed(detail: str) -> FrameError:
    return FrameError(RejectReason.P1_MALFORMED, detail)


def _byte(field: str) -> int | None:
    if not field.isascii() or not field.isdigit():
        return None
    value = int(field)
    return value if value < 256 else None


def parse_obis(text: str) -> bytes | None:
    """``A-B:C.D.E[.F]`` -> 6 OBIS bytes (F defaults to 255), or ``None``."""
    a, dash, rest = text.partition("-")
    b, colon, cde = rest.partition(":")
    parts = cde.split(".")
    if not dash or not colon or len(parts) not in (3, 4):
        return None
    fields = [_byte(f) for f in (a, b, *parts)]
    if len(fields) == 5:
        fields.append(255)
    out = bytearray()
    for value in fields:
        if value is None:
            return None
        out.append(value)
    return bytes(out)


def parse_decimal(text: str) -> tuple[int, int] | None:
    """``-0012.340`` -> ``(-12340, 3)`` (digits, decimals), or ``None``."""
    sign = 1
    if text[:1] in ("-", "+"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    whole, dot, frac = text.partition(".")
    digits = whole + frac
    if (
        not digits
        or len(digits) > _MAX_DIGITS
        or not digits.isascii()
        or not digits.isdigit()
        or (dot and not frac)
    ):
        return None
    return sign * int(digits), len(frac)


def parse_timestamp(text: str, country: str | None) -> datetime | None:
    """``YYMMDDhhmmssX`` -> datetime (see the module docstring for the offset)."""
    digits = text[:12]
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return None
    try:
        return datetime(
            2000 + int(digits[0:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            tzinfo=NORMAL_TIME.get(country),
        )
    except ValueError:
        return None


def _identifier(text: str) -> str | None:
    """Return a meter id; DSMR sends it as hex-encoded ASCII (``4530...`` -> ``E0...``).

    Decoded only when the result is letters and digits, so a plain number that
    happens to be valid hex is kept as sent.
    """
    text = text.strip()
    if len(text) % 2 == 0:
        try:
            decoded = bytes.fromhex(text).decode("ascii")
        except ValueError:  # not hex, or not ASCII (UnicodeDecodeError is a ValueError)
            decoded = ""
        if decoded.isalnum():
            return decoded
    return text or None


def _ident(line: str) -> tuple[str | None, str | None]:
    r"""Split ``/XXXZ<ident>`` into (manufacturer, meter type).

    ``XXX`` is the FLAG ID, ``Z`` the baud-rate character; an IEC 62056-21
    escape ``\W`` before the identification is dropped.
    """
    flag = line[1:4]
    rest = line[5:]
    if rest.startswith("\\"):
        rest = rest[2:]
    rest = rest.strip(" :")
    maker = MAKERS.get(flag.upper())
    if maker is None and len(flag) == 3 and flag.isascii() and flag.isalpha():
        maker = flag.upper()
    return maker, rest or None


type _Line = tuple[Kind, str, dict[str, int | None], bool] | None
"""What a line with a given OBIS text carries: (kind, name, unit text -> exponent,
is a power factor), or ``None`` when the line is skipped."""

_CACHE_SIZE: Final = 512
"""Bound on each memo below (a meter sends a few dozen distinct codes and units)."""
_LINES: Final[dict[str, _Line]] = {}
_UNSEEN: Final[_Line] = (Kind.VALUE, "", {}, False)
"""Marks a memo miss (compared by identity)."""
_UNSEEN_UNIT: Final = -1000
_POW10: Final = tuple(10**i for i in range(40))
"""The powers ``scaling.scale`` divides by: at most 18 digits and exponent -21..3 here,
so every value is finite and only a power factor needs a range check (``finish``)."""
_IDENTS: Final[dict[str, tuple[str | None, str | None]]] = {}


def _line_kind(obis_text: str) -> _Line:
    """Tell what a line whose OBIS part is ``obis_text`` carries; memoise it (it is pure)."""
    entry: _Line = None
    code = parse_obis(obis_text)
    if code is not None and code[5] == 255:
        target = lookup(code)
        if target is not None:
            entry = (target[0], target[1], {}, target[3])
        elif (code[0], code[2], code[3], code[4]) == _DSMR_VERSION:
            entry = (Kind.LIST_VERSION, "", {}, False)
    if len(_LINES) >= _CACHE_SIZE:
        _LINES.clear()
    _LINES[obis_text] = entry
    return entry


def _exponent(name: str, unit: str, units: dict[str, int | None]) -> int | None:
    """Return the exponent to the canonical unit of ``name`` sent in ``unit`` (None: no fit)."""
    found = _UNITS.get(unit.strip().lower())
    exponent = found[1] if found is not None and found[0] is quantity_of(name) else None
    if len(units) >= _CACHE_SIZE:
        units.clear()
    units[unit] = exponent
    return exponent


def _ident_of(line: str) -> tuple[str | None, str | None]:
    known = _IDENTS.get(line)
    if known is None:
        known = _ident(line)
        if len(_IDENTS) >= _CACHE_SIZE:
            _IDENTS.clear()
        _IDENTS[line] = known
    return known


def _signed_currents(values: dict[str, float]) -> None:
    """Give each phase current the sign of that phase's power flow (see the module doc)."""
    for current, imported, exported in _PHASE_SIGNS:
        amps = values.get(current)
        export = values.get(exported)
        if amps and export is not None and export > values.get(imported, 0.0):
            values[current] = -amps


class _Trace:
    """What the line loop saw that a ``_Shape`` needs; ``ok`` False when it cannot be one."""

    __slots__ = ("clock", "end", "fields", "offsets", "ok", "steps")

    def __init__(self, text: str) -> None:
        self.ok = True
        self.offsets: list[int] = [0]  # byte offset of each line (latin-1: one byte a char)
        for line in text.splitlines(keepends=True):
            self.offsets.append(self.offsets[-1] + len(line))
        self.end = len(text)  # bytes from here on are never read (the "!" line and after)
        self.fields: list[tuple[int, int]] = []  # (start, stop) of digits read as numbers
        # per number: name, exponent (decimals included), power factor, where its
        # digits start in the telegram and how many there are (without the dot)
        self.steps: list[tuple[str, int, bool, int, int]] = []
        self.clock: tuple[int, int] | None = None  # content span of the last clock line


class _Shape:
    """A telegram layout: every byte fixed but the digits of the numbers and of the clock.

    The line loop of ``decode_telegram`` reads a telegram by its line breaks,
    parentheses, OBIS codes, units and the dots in the numbers; with all of those
    bytes equal to the template's and every number digit still a digit, it takes
    exactly the same path and reads the same digits at the same places. So the
    values come from one ``unpack`` of those digits (dots removed), each number
    ``int(digits) / 10**decimals`` as the loop computes it (only templates whose
    numbers all take the loop's unsigned-decimal path, with no name twice and no
    unit that multiplies, are made).
    """

    __slots__ = (
        "bits",
        "clock",
        "digits",
        "divisors",
        "hits",
        "list_version",
        "manufacturer",
        "mask",
        "meter_id",
        "meter_type",
        "names",
        "power_factors",
        "unpack",
    )

    def __init__(self, telegram: bytes, trace: _Trace, reading: Reading) -> None:
        self.hits = 0
        fixed = bytearray(b"\xff" * trace.end + bytes(len(telegram) - trace.end))
        number_digits = bytearray(len(telegram))
        for start, stop in trace.fields:
            fixed[start:stop] = bytes(stop - start)
            number_digits[start:stop] = b"\xff" * (stop - start)
        self.mask = int.from_bytes(fixed)
        self.bits = int.from_bytes(telegram) & self.mask
        self.digits = int.from_bytes(number_digits)
        # the digits of each number, read from the telegram with every "." removed
        layout, at = [">"], 0
        for _name, _exponent, _pf, start, count in trace.steps:
            dotless = start - telegram.count(b".", 0, start)
            layout.append(f"{dotless - at}x{count}s")
            at = dotless + count
        self.unpack = struct.Struct("".join(layout)).unpack_from
        self.names = tuple(step[0] for step in trace.steps)
        self.divisors = tuple(_POW10[-step[1]] for step in trace.steps)
        self.power_factors = tuple(step[0] for step in trace.steps if step[2])
        self.clock = trace.clock
        self.manufacturer = reading.manufacturer
        self.meter_type = reading.meter_type
        self.meter_id = reading.meter_id
        self.list_version = reading.list_version

    def fits(self, telegram: bytes) -> bool:
        """Tell whether the fixed bytes are the template's and the number digits digits."""
        return not (int.from_bytes(telegram) ^ self.bits) & self.mask and not (
            int.from_bytes(telegram.translate(_NOT_DIGIT)) & self.digits
        )

    def reading(self, telegram: bytes, country: str | None) -> Reading:
        """Return what ``decode_telegram`` gives for a telegram that ``fits``."""
        numbers = map(int, self.unpack(telegram.translate(None, b".")))
        scaled = map(truediv, numbers, self.divisors, strict=True)
        values = dict(zip(self.names, scaled, strict=True))
        for name in self.power_factors:
            if values[name] > 1.0:
                del values[name]
        meter_time = None
        if self.clock is not None:
            start, stop = self.clock
            meter_time = parse_timestamp(telegram[start:stop].decode("latin-1"), country)
        _signed_currents(values)
        if not values and self.meter_id is None:
            raise _malformed("no usable line")
        return Reading(  # positional (faster): the fields in declaration order
            Protocol.P1,
            self.manufacturer,
            self.meter_id,
            self.meter_type,
            self.list_version,
            meter_time,
            MappingProxyType(values),
            telegram,
        )


_NOT_DIGIT: Final = bytes(0 if 0x30 <= byte <= 0x39 else 0xFF for byte in range(256))
_SHAPES_MAX: Final = 8
_SEEN: Final = object()
_OFF: Final = object()


class TelegramShapes:
    """One meter's telegram templates (``_Shape``), keyed by telegram length.

    Made the second time a length is seen, given up for a length whose template
    never fits a later telegram, at most ``_SHAPES_MAX`` lengths. ``MeterStream``
    keeps one per stream, so meters never share (or fight over) templates.
    """

    __slots__ = ("_shapes",)

    def __init__(self) -> None:
        self._shapes: dict[int, _Shape | object] = {}

    def clear(self) -> None:
        """Forget every template."""
        self._shapes.clear()

    def decode(self, telegram: bytes, country: str | None) -> Reading:
        """Return what the line loop gives for ``telegram``, from a template when one fits."""
        shapes = self._shapes
        size = len(telegram)
        shape = shapes.get(size)
        if type(shape) is _Shape:
            if shape.fits(telegram):
                shape.hits += 1
                return shape.reading(telegram, country)
            if not shape.hits:
                shapes[size] = _OFF
                return _decode_lines(telegram, country, None)
        elif shape is _OFF:
            return _decode_lines(telegram, country, None)
        elif shape is None:
            if len(shapes) >= _SHAPES_MAX:
                shapes.clear()
            shapes[size] = _SEEN
            return _decode_lines(telegram, country, None)
        # seen once before, or a template that served and now met another layout
        trace = _Trace(telegram.decode("latin-1"))
        reading = _decode_lines(telegram, country, trace)
        made = _make_shape(telegram, trace, reading, country)
        shapes[size] = _OFF if made is None else made
        return reading


def decode_telegram(
    telegram: bytes, *, options: DecodeOptions, shapes: TelegramShapes | None = None
) -> Reading:
    """Decode one P1 telegram (``/`` ... ``!CRC``, CRC already checked).

    Raises ``FrameError(P1_MALFORMED)`` when there is no ident line or nothing
    usable (no value and no meter id) in it. With ``shapes`` (one per meter), a
    telegram laid out like one seen before is read from its template
    (``_Shape``): the same result, faster.
    """
    country = options.country.upper() if options.country is not None else None
    if shapes is None:
        return _decode_lines(telegram, country, None)
    return shapes.decode(telegram, country)


def _make_shape(
    telegram: bytes, trace: _Trace, reading: Reading, country: str | None
) -> _Shape | None:
    """Make a template from a traced telegram, checked against the line loop's reading."""
    names = [step[0] for step in trace.steps]
    if not trace.ok or len(set(names)) != len(names) or any(step[1] > 0 for step in trace.steps):
        return None  # a number read another way, a name twice, a unit that multiplies
    shape = _Shape(telegram, trace, reading)
    if not shape.fits(telegram):
        return None  # pragma: no cover - the trace marks only digits as number bytes
    again = shape.reading(telegram, country)
    if again != reading or list(again.values.items()) != list(reading.values.items()):
        return None  # pragma: no cover - a safety net: the template must equal the loop
    return shape


def _decode_lines(telegram: bytes, country: str | None, trace: _Trace | None) -> Reading:
    """Run the line loop: ``decode_telegram`` without templates (``trace`` records one)."""
    text = telegram.decode("latin-1")
    lines = text.splitlines()
    if not lines or not lines[0].startswith("/"):
        raise _malformed("telegram does not start with an ident line")
    manufacturer, meter_type = _ident_of(lines[0])
    values: dict[str, float] = {}
    meter_id: str | None = None
    list_version: str | None = None
    meter_time: datetime | None = None
    value_kind = Kind.VALUE
    lines_seen = _LINES
    for index in range(1, len(lines)):
        line = lines[index]
        if line.startswith("!"):
            if trace is not None:
                trace.end = trace.offsets[index] + 1
            break
        open_at = line.find("(")
        if open_at <= 0 or not line.endswith(")"):
            continue
        obis_text = line[:open_at]
        entry = lines_seen.get(obis_text, _UNSEEN)
        if entry is _UNSEEN:
            entry = _line_kind(obis_text)
        if entry is None:
            continue
        kind, name, units, power_factor = entry
        content_at = line.rfind("(") + 1
        content = line[content_at:-1]
        if kind is value_kind:
            # _value, inlined for the common unsigned number (the hot path of P1)
            number, _, unit = content.partition("*")
            exponent = units.get(unit, _UNSEEN_UNIT)
            if exponent == _UNSEEN_UNIT:
                exponent = _exponent(name, unit, units)
            if exponent is None:
                continue
            stripped = number.strip()
            whole, dot, frac = stripped.partition(".")
            digits = whole + frac
            if (frac or not dot) and digits.isdigit() and digits.isascii() and len(digits) <= 18:
                exponent -= len(frac)
                raw = int(digits)
                value = float(raw * _POW10[exponent]) if exponent >= 0 else raw / _POW10[-exponent]
                if trace is not None:
                    at = trace.offsets[index] + content_at
                    _trace_number(trace, at, number, (name, exponent, power_factor))
            else:
                parsed = parse_decimal(stripped)
                if parsed is None:
                    continue
                value = scale(parsed[0], exponent - parsed[1])
                if trace is not None:
                    trace.ok = False  # a number the template does not read
            if power_factor:
                value = abs(value)
                if value > 1.0:
                    continue
            values[name] = value
        elif kind is Kind.CLOCK:
            meter_time = parse_timestamp(content, country)
            if trace is not None:
                start = trace.offsets[index] + content_at
                trace.clock = (start, start + len(content))
                if content[:12].isascii() and content[:12].isdigit() and len(content) >= 12:
                    trace.fields.append((start, start + 12))
        elif kind is Kind.METER_ID:
            meter_id = _identifier(content)
        elif kind is Kind.METER_TYPE:
            meter_type = content.strip() or meter_type
        else:
            list_version = content.strip() or None
    _signed_currents(values)
    if not values and meter_id is None:
        raise _malformed("no usable line")
    return Reading(  # positional (faster): the fields in declaration order
        Protocol.P1,
        manufacturer,
        meter_id,
        meter_type,
        list_version,
        meter_time,
        MappingProxyType(values),
        telegram,
    )


def _trace_number(trace: _Trace, content_at: int, number: str, step: tuple[str, int, bool]) -> None:
    """Record where the digits of ``number`` (at ``content_at``) are, for ``step``.

    ``step`` is (name, exponent with the decimals, power factor).
    """
    whole, dot, frac = number.strip().partition(".")
    start = content_at + len(number) - len(number.lstrip())
    middle = start + len(whole) + len(dot)
    trace.fields.append((start, start + len(whole)))
    trace.fields.append((middle, middle + len(frac)))
    trace.steps.append((*step, start, len(whole) + len(frac)))
