"""Kamstrup ``Kamstrup_V0001``: HAN-NVE lists (NO/SE) and the Danish push list.

Body: one flat ``structure`` = list id, then OBIS/value pairs (``obis_array``):

* 10 s list ``02 19`` (25 items) and hourly list ``02 23`` (35: adds the clock
  0-1:1.0.0 and four energies). Meter id 1-1:0.0.5, type 1-1:96.1.1.
* 1-phase meters keep the count and pad each absent pair with ``00 00``; the
  vendor document instead drops them. Both decode the same (nulls are skipped).
* Old firmware puts the APDU clock as ``09 0C``, new as ``0C`` (the APDU
  decoder handles both; the value arrives as ``Notification.timestamp``).
* Danish push list (decrypted; ``02 41`` 3-phase / ``02 25`` 1-phase): same
  shape, adds per-phase P, power factor and per-phase energy, and identifies the
  meter by the number 1-1:0.0.1 (a double-long-unsigned), with no type item.
* A value followed by ``structure(scaler, unit)`` uses it; bare values use the
  implicit scheme: 0.01 A, 1 V, W/var, power factor 0.01, and energy in 10 Wh
  in Norway but Wh in Sweden and Denmark.

The frame does not say which market's resolution it uses. ``market_scheme``
decides, in order:

1. ``DecodeOptions.country`` when it names a market with known resolution
   (NO, SE, DK): the user's word wins;
2. the meter type: Kamstrup's type number carries a variant code after its two
   letters (``6841121BN243101040`` -> ``243``); captures show ``242``/``243`` on
   Norwegian meters and ``245`` on Swedish ones;
3. the Danish push list (meter number 1-1:0.0.1 instead of a type) -> DK;
4. otherwise Norway: HAN-NVE is the Norwegian specification.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from ..dlms.axdr import Data
from ..dlms.notification import Notification
from ..options import DecodeOptions
from ..reading import Protocol, Reading
from ..scaling import KAMSTRUP_DEFAULT, KAMSTRUP_MARKETS, Scheme
from .obis_array import collect_interleaved, meter_time, text

KAMSTRUP: Final = "Kamstrup"

TYPE_VARIANT_MARKETS: Final[dict[str, str]] = {"242": "NO", "243": "NO", "245": "SE"}
"""Variant code in the meter type -> market, as seen in captures (protocol.md §4.4)."""


def is_list_id(value: Data) -> bool:
    """Tell whether ``value`` is the ``Kamstrup_V0001`` list id that opens every list."""
    if type(value) is str:
        return value.startswith("Kamstrup")
    return type(value) is bytes and value.startswith(b"Kamstrup")


def market_from_type(meter_type: str | None) -> str | None:
    """Return the market a Kamstrup type number's variant code points to, if known.

    ``6841121BN243101040``: 684 (3-phase), 11, 21 (3-wire), ``BN``, variant ``243``.
    """
    if meter_type is None or len(meter_type) < 12 or not meter_type[7:9].isalpha():
        return None
    return TYPE_VARIANT_MARKETS.get(meter_type[9:12])


def market_scheme(options: DecodeOptions, meter_type: str | None, *, danish_list: bool) -> Scheme:
    """Choose the implicit resolution of a Kamstrup list (see the module docstring)."""
    if options.country is not None:
        scheme = KAMSTRUP_MARKETS.get(options.country.upper())
        if scheme is not None:
            return scheme
    market = market_from_type(meter_type)
    if market is not None:
        return KAMSTRUP_MARKETS[market]
    if danish_list:
        return Scheme.KAMSTRUP_DK
    return KAMSTRUP_DEFAULT


def decode(
    n: Notification,
    body: tuple[Data, ...],
    *,
    protocol: Protocol,
    options: DecodeOptions,
    frame: bytes,
) -> Reading:
    """Decode a Kamstrup list (``body[0]`` is the list id)."""
    collected = collect_interleaved(body, 1)
    collected.list_version = text(body[0])
    scheme = market_scheme(options, collected.meter_type, danish_list=collected.meter_number)
    collected.apply(scheme)
    return Reading(  # positional (faster): the fields in declaration order
        protocol,
        KAMSTRUP,
        collected.meter_id,
        collected.meter_type,
        collected.list_version,
        meter_time(collected, n),
        MappingProxyType(collected.values),
        frame,
    )
