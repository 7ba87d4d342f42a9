"""Every real capture in ../shared/han/frames.json, decoded through the full MeterStream.

The captures are read at run time (never copied into the repository) and the test
skips when the file is absent. Each vector is checked against its reference decode:

* ``expected``: what the source states, with field names mapped to canonical names
  explicitly in ``_EXPECTED_FIELDS`` below;
* ``decoded_check``: the independent decode's items; OBIS codes are mapped to
  canonical names in ``_OBIS_NAMES``, positional lists through ``_KAIFA_ORDER`` /
  ``_E450_ORDER``, and implicit resolutions are written out in ``_IMPLICIT``
  (deliberately independent of ``scaling.py``);
* P1 telegrams: every line is parsed again here, independently, and compared.

Corrupted captures give nothing (the OSS-brikken one is repaired and decodes),
ciphered ones decode with a published key or give ENCRYPTED_NO_KEY, and LLC-only
fragments decode through the bare-APDU path. ``test_every_vector_is_covered``
keeps this file in step with frames.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from custom_components.hanport.han.errors import Rejected, RejectReason
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading
from custom_components.hanport.han.stream import MeterStream

FRAMES = Path(__file__).resolve().parents[3] / "shared" / "han" / "frames.json"

type Vector = dict[str, Any]


@cache
def vectors() -> dict[str, Vector]:
    if not FRAMES.exists():
        pytest.skip(f"{FRAMES} not present")
    return {v["id"]: v for v in json.loads(FRAMES.read_text(encoding="utf-8"))}


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-12, abs=1e-9)


# ---------------------------------------------------------------- feeding the stream


def feed(vector: Vector, data: bytes | None = None) -> tuple[list[Reading], list[Rejected]]:
    rejects: list[Rejected] = []
    # A P1 meter's clock offset is the market's (SE/DK: UTC+1 all year): decode as
    # a user who set the capture's country would.
    options = DecodeOptions(country=vector["country"][:2] if vector["kind"] == "p1" else None)
    key = vector.get("key")
    if key:
        ak = key.get("ak")
        options = DecodeOptions(
            key=bytes.fromhex(key["ek"]), auth_key=bytes.fromhex(ak) if ak else None
        )
    stream = MeterStream(options, on_reject=rejects.append)
    if data is None:
        if vector["kind"] == "p1":
            data = vector["telegram"].encode("latin-1")
        else:
            data = bytes.fromhex(vector["hex"])
    readings = stream.feed(data) + stream.flush()  # a capture is whole
    return readings, rejects


def one_reading(vector: Vector, data: bytes | None = None) -> Reading:
    readings, rejects = feed(vector, data)
    assert rejects == [], [(r.reason, r.detail) for r in rejects]
    assert len(readings) == 1
    return readings[0]


# ---------------------------------------------------------------- reference -> canonical

# OBIS C.D.E (any channel B) -> canonical value name.
_OBIS_NAMES: dict[str, str] = {
    "1.7.0": "active_power_import",
    "2.7.0": "active_power_export",
    "3.7.0": "reactive_power_import",
    "4.7.0": "reactive_power_export",
    "21.7.0": "active_power_import_l1",
    "22.7.0": "active_power_export_l1",
    "23.7.0": "reactive_power_import_l1",
    "24.7.0": "reactive_power_export_l1",
    "41.7.0": "active_power_import_l2",
    "42.7.0": "active_power_export_l2",
    "43.7.0": "reactive_power_import_l2",
    "44.7.0": "reactive_power_export_l2",
    "61.7.0": "active_power_import_l3",
    "62.7.0": "active_power_export_l3",
    "63.7.0": "reactive_power_import_l3",
    "64.7.0": "reactive_power_export_l3",
    "31.7.0": "current_l1",
    "51.7.0": "current_l2",
    "71.7.0": "current_l3",
    "32.7.0": "voltage_l1",
    "52.7.0": "voltage_l2",
    "72.7.0": "voltage_l3",
    "13.7.0": "power_factor",
    "1.8.0": "active_energy_import",
    "2.8.0": "active_energy_export",
    "3.8.0": "reactive_energy_import",
    "4.8.0": "reactive_energy_export",
}
_LIST_VERSION = "0.2.129"
_METER_ID = ("96.1.0", "0.0.5")
_METER_TYPE = ("96.1.7", "96.1.1")
_CLOCK = "1.0.0"

# Implicit resolutions, written out independently: quantity -> factor to canonical units.
_IMPLICIT: dict[str, dict[str, float]] = {
    # KFM_001: W/var, mA, 0.1 V, Wh (-> kWh)
    "kaifa": {"power": 1, "current": 1e-3, "voltage": 0.1, "energy": 1e-3},
    # HAN-NVE Norway: 0.01 A, 1 V, 10 Wh; Sweden: Wh
    "kamstrup-no": {"power": 1, "current": 0.01, "voltage": 1, "energy": 1e-2},
    "kamstrup-se": {"power": 1, "current": 0.01, "voltage": 1, "energy": 1e-3},
    # L&G E450 AT: V, 0.01 A, W, Wh
    "e450": {"power": 1, "current": 0.01, "voltage": 1, "energy": 1e-3},
}

_KAIFA_ORDER: dict[int, list[str | None]] = {
    1: ["active_power_import"],
    9: [
        "list_version",
        "meter_id",
        "meter_type",
        "active_power_import",
        "active_power_export",
        "reactive_power_import",
        "reactive_power_export",
        "current_l1",
        "voltage_l1",
    ],
    13: [
        "list_version",
        "meter_id",
        "meter_type",
        "active_power_import",
        "active_power_export",
        "reactive_power_import",
        "reactive_power_export",
        "current_l1",
        "current_l2",
        "current_l3",
        "voltage_l1",
        "voltage_l2",
        "voltage_l3",
    ],
}
_ENERGY_TAIL: list[str | None] = [
    "clock",
    "active_energy_import",
    "active_energy_export",
    "reactive_energy_import",
    "reactive_energy_export",
]
_KAIFA_ORDER[14] = _KAIFA_ORDER[9] + _ENERGY_TAIL
_KAIFA_ORDER[18] = _KAIFA_ORDER[13] + _ENERGY_TAIL
_E450_ORDER: list[str | None] = [
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "current_l2",
    "current_l3",
    "active_power_import",
    "active_power_export",
    "active_energy_import",
    "active_energy_export",
    None,  # three slots nobody has identified: not published
    None,
    None,
    "meter_id",
]


def quantity(name: str) -> str:
    for prefix, q in (
        ("active_energy", "energy"),
        ("reactive_energy", "energy"),
        ("active_power", "power"),
        ("reactive_power", "power"),
        ("current", "current"),
        ("voltage", "voltage"),
        ("power_factor", "power_factor"),
    ):
        if name.startswith(prefix):
            return q
    raise AssertionError(name)


def explicit(name: str, item: dict[str, Any]) -> float:
    """Canonical value of an item with its own scaler and unit (Wh/varh -> k)."""
    value = float(item["value"] * 10 ** item["scaler"])
    return value / 1000 if item["unit"] in (30, 32) else value


def _scheme(vector: Vector) -> str | None:
    meter = vector["meter"]
    if meter.startswith("Kaifa") and vector["kind"] == "hdlc":
        return "kaifa"
    if meter.startswith("Kamstrup"):
        return "kamstrup-se" if vector["country"] == "SE" else "kamstrup-no"
    if meter.startswith("Landis+Gyr E450"):
        return "e450"
    return None


class Expectation:
    """What one reading must say, accumulated from the reference fields."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.absent: set[str] = set()
        self.identity: dict[str, str] = {}
        self.meter_time: datetime | None = None
        self.meter_time_set = False
        self.wall_clock_only = False
        self.exact_keys = False
        self.all_zero = False
        self.unsigned: dict[str, float] = {}
        """P1 currents: the telegram's magnitude (the reading adds the sign)."""

    def time(self, when: datetime | None) -> None:
        self.meter_time = when
        self.meter_time_set = True

    def check(self, reading: Reading) -> None:
        for name, value in self.values.items():
            assert name in reading.values, name
            assert reading.values[name] == approx(value), name
        for name in self.absent:
            assert name not in reading.values, name
        if self.exact_keys:
            assert set(reading.values) == set(self.values), set(reading.values) ^ set(self.values)
        for attr, text in self.identity.items():
            assert getattr(reading, attr) == text, attr
        if self.meter_time_set:
            actual = reading.meter_time
            if self.wall_clock_only and actual is not None and actual.tzinfo is not None:
                actual = actual.replace(tzinfo=None)  # the reference carries no offset
            assert actual == self.meter_time
        for name, value in reading.values.items():
            assert isinstance(value, float), name
            assert math.isfinite(value), name


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text[:19])


def from_decoded_check(vector: Vector, exp: Expectation) -> None:
    dc = vector.get("decoded_check")
    if not dc or "items" not in dc:
        return
    items: list[dict[str, Any]] = dc["items"]
    scheme = _scheme(vector)
    implicit = _IMPLICIT.get(scheme or "", {})
    header: datetime | None = None
    if "apdu_datetime" in dc:
        header = _parse_time(dc["apdu_datetime"])
        if dc.get("apdu_datetime_status") == "0x01":
            header = None  # the meter says its clock is invalid
        elif dc.get("apdu_datetime_deviation") is not None:
            header = header.replace(
                tzinfo=timezone(timedelta(minutes=-dc["apdu_datetime_deviation"]))
            )
    exp.time(header)
    exp.exact_keys = True

    def put(name: str | None, item: dict[str, Any]) -> None:
        if name is None:
            return
        value = item["value"]
        if name in ("list_version", "meter_id", "meter_type"):
            exp.identity[name] = value
        elif name == "clock":
            exp.time(_parse_time(value))
            exp.wall_clock_only = True
        elif value is None:
            return  # Kamstrup 1-phase null padding
        elif "scaler" in item:
            exp.values[name] = explicit(name, item)
        else:
            exp.values[name] = value * implicit[quantity(name)]

    if dc["style"] == "positional":
        order = _E450_ORDER if scheme == "e450" else _KAIFA_ORDER[len(items)]
        for name, item in zip(order, items, strict=True):
            put(name, item)
        if exp.identity.get("meter_type") == "MA304H3E" and exp.values.get("voltage_l2") == 0:
            # Our decision (kaifa.py): the IT meter's UL2 = 0 means "not measured".
            del exp.values["voltage_l2"]
            exp.absent.add("voltage_l2")
        return
    for index, item in enumerate(items):
        code = item["obis"]
        if item["value"] is None:
            continue  # Kamstrup 1-phase null padding
        if code is None:
            # Kamstrup's leading list id; the AT list's leading clock and trailing meter number.
            if index == 0 and isinstance(item["value"], str) and "T" in item["value"][:11]:
                continue  # AT clock: checked (with its offset) from ``expected``
            put("list_version" if index == 0 else "meter_id", item)
            continue
        cde = code.split(":")[1].rsplit(".", 1)[0]
        if cde == _LIST_VERSION:
            put("list_version", item)
        elif cde in _METER_ID:
            put("meter_id", item)
        elif cde in _METER_TYPE:
            put("meter_type", item)
        elif cde == _CLOCK:
            put("clock", item)
        else:
            put(_OBIS_NAMES[cde], item)


# ``expected`` field -> how it maps onto the reading.
def _value(name: str, factor: float = 1.0) -> Callable[[Expectation, Any], None]:
    def apply(exp: Expectation, value: Any) -> None:
        exp.values[name] = value * factor

    return apply


def _phases(prefix: str) -> Callable[[Expectation, Any], None]:
    def apply(exp: Expectation, values: Any) -> None:
        for phase, value in zip(("l1", "l2", "l3"), values, strict=True):
            exp.values[f"{prefix}_{phase}"] = value

    return apply


def _identity(attr: str) -> Callable[[Expectation, Any], None]:
    def apply(exp: Expectation, value: Any) -> None:
        exp.identity[attr] = value

    return apply


def _time(exp: Expectation, value: Any) -> None:
    text: str = value
    if text.endswith("+02:00"):
        exp.time(datetime.fromisoformat(text))
    else:
        exp.time(_parse_time(text))


def _p1_time(exp: Expectation, value: Any) -> None:
    # P1 (SE/DK, decoded with that country): the meter keeps UTC+1 all year; aware.
    naive = datetime.fromisoformat(str(value)[:19].replace(" ", "T"))
    exp.time(naive.replace(tzinfo=timezone(timedelta(hours=1))))


def _all_zero(exp: Expectation, value: Any) -> None:
    assert value is True
    exp.all_zero = True


def _nothing(exp: Expectation, value: Any) -> None:
    """Fields about framing or ciphering, asserted elsewhere (readings, rejects, counters)."""


_EXPECTED_FIELDS: dict[str, Callable[[Expectation, Any], None]] = {
    # amshan/hass-AMS style
    "active_power_import_W": _value("active_power_import"),
    "active_energy_import_kWh": _value("active_energy_import"),
    "active_power_import": _value("active_power_import"),
    "active_power_export": _value("active_power_export"),
    "reactive_power_import": _value("reactive_power_import"),
    "reactive_power_export": _value("reactive_power_export"),
    "current_l1": _value("current_l1"),
    "current_l2": _value("current_l2"),
    "current_l3": _value("current_l3"),
    "voltage_l1": _value("voltage_l1"),
    "voltage_l2": _value("voltage_l2"),
    "voltage_l3": _value("voltage_l3"),
    "active_power_import_total_Wh": _value("active_energy_import", 1e-3),
    "active_power_export_total_Wh": _value("active_energy_export", 1e-3),
    # amshan calls reactive energy "reactive_power_*_total" (in varh, labelled Wh or varh)
    "reactive_power_import_total_Wh": _value("reactive_energy_import", 1e-3),
    "reactive_power_export_total_Wh": _value("reactive_energy_export", 1e-3),
    "reactive_power_import_total_varh": _value("reactive_energy_import", 1e-3),
    "reactive_power_export_total_varh": _value("reactive_energy_export", 1e-3),
    "list_ver_id": _identity("list_version"),
    "list_version": _identity("list_version"),
    "meter_id": _identity("meter_id"),
    "meter_number": _identity("meter_id"),
    "meter_type": _identity("meter_type"),
    "meter_datetime": _time,
    "datetime": _time,
    # roarfred / amsreader style
    "P+_W": _value("active_power_import"),
    "P-_W": _value("active_power_export"),
    "Q+_var": _value("reactive_power_import"),
    "Q-_var": _value("reactive_power_export"),
    "IL_A": _phases("current"),
    "UL_V": _phases("voltage"),
    "U_V": _phases("voltage"),
    "I_A": _phases("current"),
    "voltage_V": _phases("voltage"),
    "current_A": _phases("current"),
    "A+_Wh": _value("active_energy_import", 1e-3),
    "A-_Wh": _value("active_energy_export", 1e-3),
    "U_L1_V": _value("voltage_l1"),
    "power_factor": _value("power_factor"),
    "all_values_zero": _all_zero,
    # P1 (u9n)
    "A+_kWh": _value("active_energy_import"),
    "P+_kW": _value("active_power_import", 1000.0),
    # framing / ciphering facts: asserted by the stream's behaviour
    "fcs_ok": _nothing,
    "payload_is_frame[8:-2]": _nothing,
    "crc": _nothing,
    "valid": _nothing,
    "repair": _nothing,
    "system_title": _nothing,
    "security_control": _nothing,
    "frame_counter": _nothing,
    "plaintext_layout": _nothing,
    "structure": _nothing,
    "plaintext_apdu_hex": _nothing,
    "plaintext_apdu_datetime": _nothing,
}


def from_expected(vector: Vector, exp: Expectation) -> None:
    expected = vector.get("expected") or {}
    for field, value in expected.items():
        if vector["kind"] == "p1" and field == "datetime":
            _p1_time(exp, value)
        elif vector["kind"] == "p1" and field == "I_A":
            # P1 currents are unsigned in the telegram; the reading signs them by power flow.
            exp.unsigned = dict(zip(("current_l1", "current_l2", "current_l3"), value, strict=True))
        else:
            _EXPECTED_FIELDS[field](exp, value)


def expectation(vector: Vector) -> Expectation:
    exp = Expectation()
    from_decoded_check(vector, exp)
    from_expected(vector, exp)
    return exp


# ---------------------------------------------------------------- P1 lines, parsed again here

_P1_UNITS = {"kW": 1000.0, "kvar": 1000.0, "kVAr": 1000.0, "kWh": 1.0, "kvarh": 1.0, "kVArh": 1.0}
_P1_UNITS |= {"V": 1.0, "A": 1.0}


def p1_lines(telegram: str) -> Iterator[tuple[str, float]]:
    for line in telegram.split("\r\n")[2:]:
        if line.startswith("!") or not line.startswith("1-0:") or not line.endswith(")"):
            continue
        code, _, rest = line[4:].partition("(")
        if code not in _OBIS_NAMES:
            continue  # malformed (1-0:4:24.7.0) or not ours
        number, _, unit = rest[:-1].partition("*")
        yield _OBIS_NAMES[code], float(number) * _P1_UNITS[unit]


# ---------------------------------------------------------------- the vectors


def _valid_plain(v: Vector) -> bool:
    return v["crc_ok"] is not False and (not v["encrypted"] or bool(v.get("key")))


def _ids(predicate: Callable[[Vector], bool]) -> list[str]:
    if not FRAMES.exists():
        return []
    return [v["id"] for v in json.loads(FRAMES.read_text(encoding="utf-8")) if predicate(v)]


_REPAIRED = "aidon-no-l3-6525-oss-crlf-corrupted"


@pytest.mark.parametrize("vector_id", _ids(lambda v: _valid_plain(v) and v["kind"] != "p1"))
def test_binary_capture_gives_its_reference_values(vector_id: str) -> None:
    vector = vectors()[vector_id]
    reading = one_reading(vector)
    exp = expectation(vector)
    exp.check(reading)
    assert exp.values or exp.identity, "every vector must assert something"
    if exp.all_zero:
        assert reading.values
        assert all(v == 0.0 for v in reading.values.values())
    expected_protocol = {"mbus": Protocol.MBUS, "hdlc": Protocol.HDLC}[vector["kind"]]
    if vector.get("fragment") == "llc_pdu":
        expected_protocol = Protocol.APDU
    assert reading.protocol is expected_protocol
    assert reading.frame
    special = _SPECIAL.get(vector_id)
    if special is not None:
        special(reading)


@pytest.mark.parametrize("vector_id", _ids(lambda v: _valid_plain(v) and v["kind"] == "p1"))
def test_p1_telegram_gives_every_line_and_its_reference_values(vector_id: str) -> None:
    vector = vectors()[vector_id]
    reading = one_reading(vector)
    exp = expectation(vector)
    exp.check(reading)
    # without a country the offset is unknown: the same wall clock, naive
    (no_country,) = MeterStream().feed(vector["telegram"].encode("latin-1"))
    assert reading.meter_time is not None
    assert no_country.meter_time == reading.meter_time.replace(tzinfo=None)
    lines = dict(p1_lines(vector["telegram"]))
    assert len(lines) >= 20
    for name, value in lines.items():
        if name.startswith("current"):
            assert abs(reading.values[name]) == approx(value), name
        else:
            assert reading.values[name] == approx(value), name
    assert set(reading.values) == set(lines)
    for name, value in exp.unsigned.items():
        assert abs(reading.values[name]) == approx(value), name
    # The sign of each current follows that phase's power flow.
    for phase in ("l1", "l2", "l3"):
        current = reading.values[f"current_{phase}"]
        exporting = (
            reading.values[f"active_power_export_{phase}"]
            > reading.values[f"active_power_import_{phase}"]
        )
        assert (current < 0) is (exporting and current != 0)
    stamp = vector["telegram"].split("0-0:1.0.0(", 1)[1][:12]
    assert reading.meter_time == datetime.strptime(stamp, "%y%m%d%H%M%S").replace(
        tzinfo=timezone(timedelta(hours=1))
    )
    assert reading.manufacturer is not None
    assert reading.protocol is Protocol.P1
    assert reading.list_kind is ListKind.ENERGY


@pytest.mark.parametrize("vector_id", _ids(lambda v: v["crc_ok"] is False and v["id"] != _REPAIRED))
def test_corrupted_capture_gives_nothing(vector_id: str) -> None:
    vector = vectors()[vector_id]
    readings, rejects = feed(vector)
    assert readings == []
    framing = {
        RejectReason.HDLC_FRAME_CHECKSUM,
        RejectReason.HDLC_HEADER_CHECKSUM,
        RejectReason.HDLC_BAD_LENGTH,
        RejectReason.P1_CRC,
    }
    if vector["id"] != "aidon-se-truncated-gh146":  # truncated: never completes, nothing to count
        assert framing & {r.reason for r in rejects}


def test_truncated_capture_never_yields_a_reading_even_when_more_bytes_follow() -> None:
    vector = vectors()["aidon-se-truncated-gh146"]
    readings, _ = feed(vector, bytes.fromhex(vector["hex"]) + b"\x7e" + bytes(600))
    assert readings == []


def test_oss_brikken_crlf_capture_is_repaired_and_decodes() -> None:
    vector = vectors()[_REPAIRED]
    # The capture lost its closing flag; the next frame's flag follows on a live line.
    reading = one_reading(vector, bytes.fromhex(vector["hex"]) + b"\x7e")
    assert reading.manufacturer == "Aidon"
    assert reading.meter_type == "6525"
    assert reading.list_version == "AIDON_V0001"
    assert reading.list_kind is ListKind.ENERGY
    # An IT meter's list 3: everything but IL2, nothing invented.
    assert set(reading.values) == {
        "active_power_import",
        "active_power_export",
        "reactive_power_import",
        "reactive_power_export",
        "current_l1",
        "current_l3",
        "voltage_l1",
        "voltage_l2",
        "voltage_l3",
        "active_energy_import",
        "active_energy_export",
        "reactive_energy_import",
        "reactive_energy_export",
    }
    for phase in ("l1", "l2", "l3"):
        assert 200 < reading.values[f"voltage_{phase}"] < 260
    assert reading.meter_time is not None
    assert reading.meter_time_is_local
    assert reading.meter_time.minute == reading.meter_time.second == 0


@pytest.mark.parametrize("vector_id", _ids(lambda v: v["encrypted"] and not v.get("key")))
def test_encrypted_capture_without_a_key_is_encrypted_no_key(vector_id: str) -> None:
    readings, rejects = feed(vectors()[vector_id])
    assert readings == []
    assert [r.reason for r in rejects] == [RejectReason.ENCRYPTED_NO_KEY]


def test_danish_plaintext_decodes_through_the_bare_apdu_path() -> None:
    vector = vectors()["kamstrup-dk-encrypted-gh517-nokey"]
    reading = one_reading(vector, bytes.fromhex(vector["expected_plaintext_hex"]))
    expected = vector["expected"]
    assert reading.protocol is Protocol.APDU
    assert reading.manufacturer == "Kamstrup"
    assert reading.values["active_power_import"] == expected["active_power_import_W"]
    # The Danish list has no clock-less header: the 0-1:1.0.0 item and the header agree.
    assert reading.meter_time == datetime.fromisoformat(expected["plaintext_apdu_datetime"])
    # Danish push list: meter number as u32, no type, Wh energy, PF in 0.01, per-phase values.
    assert reading.meter_id is not None
    assert reading.meter_id.isdigit()
    assert reading.meter_type is None
    assert reading.values["active_energy_import"] == reading.values["active_energy_import_l1"]
    assert 1000 < reading.values["active_energy_import"] < 10000  # Wh -> kWh, not 10 Wh
    assert 0 < reading.values["power_factor"] <= 1
    assert reading.values["active_power_import_l1"] == reading.values["active_power_import"]


# Per-vector facts beyond the reference fields.
def _kaifa_it(reading: Reading) -> None:
    # MA304H3E sends UL2 = 0 ("not measured"): not published, and not reconstructed.
    assert "voltage_l2" not in reading.values
    assert "current_l2" in reading.values


def _aidon_it(reading: Reading) -> None:
    assert "current_l2" not in reading.values


def _negative_current(reading: Reading) -> None:
    assert reading.values["current_l1"] < 0


def _kaifa_se(reading: Reading) -> None:
    assert reading.meter_time is not None
    assert reading.meter_time.utcoffset() == timedelta(hours=1)


def _kamstrup_invalid_clock(reading: Reading) -> None:
    assert reading.meter_time is None


def _evn(reading: Reading) -> None:
    assert reading.manufacturer == "Kaifa"
    assert reading.meter_time is not None
    assert reading.meter_time.astimezone(UTC) == datetime(2021, 9, 27, 7, 47, 15, tzinfo=UTC)


def _e450(reading: Reading) -> None:
    assert reading.manufacturer == "Landis+Gyr"
    assert reading.list_kind is ListKind.ENERGY


def _list1(reading: Reading) -> None:
    assert reading.list_kind is ListKind.POWER


_SPECIAL: dict[str, Callable[[Reading], None]] = {
    "kaifa-no-l2-ma304h3e-it-2017": _kaifa_it,
    "kaifa-no-l3-ma304h3e-2020": _kaifa_it,
    "aidon-no-l2-6525-llc-only": _aidon_it,
    "aidon-no-l3-6525-llc-only": _aidon_it,
    "aidon-se-27items-hassams": _negative_current,
    "kaifa-se-ma304h4-obis": _kaifa_se,
    "kamstrup-vendor-doc-ex1": _kamstrup_invalid_clock,
    "kaifa-ma309-at-evn-mbus-vendor-doc": _evn,
    "lg-e450-at-hdlc-encrypted-gh501-1": _e450,
    "aidon-no-l1-contains-7d": _list1,
    "kaifa-no-l1-contains-7e": _list1,
    "lg-e350-no-embriq-l1": _list1,
}


def test_every_vector_is_covered() -> None:
    all_ids = set(vectors())
    covered = (
        set(_ids(_valid_plain))
        | set(_ids(lambda v: v["crc_ok"] is False))
        | set(_ids(lambda v: v["encrypted"] and not v.get("key")))
    )
    assert covered == all_ids
    assert len(all_ids) == 45
    # Every reference field is mapped (a new field in frames.json fails here, not silently).
    for vector in vectors().values():
        for field in vector.get("expected") or {}:
            assert field in _EXPECTED_FIELDS, field
