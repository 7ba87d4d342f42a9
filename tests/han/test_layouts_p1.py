"""P1 telegrams (protocol.md §7): units, time, current sign, idents, malformed lines."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.hanport.han.errors import FrameError, RejectReason
from custom_components.hanport.han.framing import build_p1_telegram
from custom_components.hanport.han.layouts import decode_telegram, p1
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading
from custom_components.hanport.han.stream import MeterStream

UTC1 = timezone(timedelta(hours=1))


def telegram(ident: str, *lines: str, crlf_end: bool = True) -> bytes:
    body = "/" + ident + "\r\n\r\n" + "".join(line + "\r\n" for line in lines) + "!1234"
    return (body + ("\r\n" if crlf_end else "")).encode("latin-1")


def decode(raw: bytes, country: str | None = None) -> Reading:
    return decode_telegram(raw, options=DecodeOptions(country=country))


# The Swedish field set (Energiföretagen), values written for this test.
SWEDISH = (
    "0-0:1.0.0(240715134502S)",
    "1-0:1.8.0(00012345.678*kWh)",
    "1-0:2.8.0(00000123.456*kWh)",
    "1-0:3.8.0(00000012.345*kvarh)",
    "1-0:4.8.0(00002345.678*kvarh)",
    "1-0:1.7.0(0002.345*kW)",
    "1-0:2.7.0(0000.000*kW)",
    "1-0:3.7.0(0000.012*kvar)",
    "1-0:4.7.0(0000.567*kvar)",
    "1-0:21.7.0(0001.500*kW)",
    "1-0:41.7.0(0000.845*kW)",
    "1-0:61.7.0(0000.000*kW)",
    "1-0:22.7.0(0000.000*kW)",
    "1-0:42.7.0(0000.000*kW)",
    "1-0:62.7.0(0000.410*kW)",
    "1-0:23.7.0(0000.012*kvar)",
    "1-0:43.7.0(0000.000*kvar)",
    "1-0:63.7.0(0000.000*kvar)",
    "1-0:24.7.0(0000.100*kvar)",
    "1-0:44.7.0(0000.200*kvar)",
    "1-0:64.7.0(0000.267*kvar)",
    "1-0:32.7.0(231.4*V)",
    "1-0:52.7.0(229.9*V)",
    "1-0:72.7.0(232.0*V)",
    "1-0:31.7.0(006.6*A)",
    "1-0:51.7.0(003.7*A)",
    "1-0:71.7.0(001.8*A)",
)


def test_swedish_telegram() -> None:
    raw = telegram("ELL5\\253833635_A", *SWEDISH)
    reading = decode(raw, "SE")
    assert reading.protocol is Protocol.P1
    assert reading.frame == raw
    assert reading.manufacturer == "ELL"  # unidentified maker: its FLAG ID
    assert reading.meter_type == "53833635_A"  # after the IEC 62056-21 escape \2
    assert reading.meter_id is None
    assert reading.list_version is None
    # Swedish meters stay on UTC+1 all year: the S flag is ignored.
    assert reading.meter_time == datetime(2024, 7, 15, 13, 45, 2, tzinfo=UTC1)
    v = reading.values
    assert v["active_energy_import"] == 12345.678
    assert v["active_energy_export"] == 123.456
    assert v["reactive_energy_import"] == 12.345
    assert v["reactive_energy_export"] == 2345.678
    assert v["active_power_import"] == 2345.0  # kW -> W, exactly
    assert v["reactive_power_import"] == 12.0
    assert v["reactive_power_export"] == 567.0
    assert v["active_power_import_l2"] == 845.0
    assert v["active_power_export_l3"] == 410.0
    assert v["reactive_power_export_l3"] == 267.0
    assert v["voltage_l1"] == 231.4
    assert v["current_l1"] == 6.6
    assert v["current_l2"] == 3.7
    # L3 exports 410 W and imports nothing: its unsigned current gets the export sign.
    assert v["current_l3"] == -1.8
    assert len(v) == 26
    assert reading.list_kind is ListKind.ENERGY


def test_kvarh_spellings_and_small_units() -> None:
    raw = telegram(
        "LGF5E360",
        "1-0:3.8.0(00000518.309*kVArh)",
        "1-0:4.7.0(0000.308*kVAr)",
        "1-0:1.7.0(1234*W)",
        "1-0:3.7.0(56*var)",
        "1-0:2.8.0(1500*Wh)",
        "1-0:4.8.0(2500*varh)",
        "1-0:14.7.0(49.98*Hz)",
        "1-0:13.7.0(0.950)",
    )
    reading = decode(raw)
    assert reading.manufacturer == "Landis+Gyr"
    assert reading.meter_type == "E360"
    assert dict(reading.values) == {
        "reactive_energy_import": 518.309,
        "reactive_power_export": 308.0,
        "active_power_import": 1234.0,
        "reactive_power_import": 56.0,
        "active_energy_export": 1.5,
        "reactive_energy_export": 2.5,
        "frequency": 49.98,
        "power_factor": 0.95,
    }


def test_malformed_lines_are_skipped_and_the_rest_kept() -> None:
    raw = telegram(
        "KAM5",
        "0-0:1.0.0(240203144940W)",
        "1-0:1.7.0(0000.714*kW)",
        "1-0:4:24.7.0(0000.000*kVAr)",  # real-world corruption
        "garbage without parentheses",
        "(0001.000*kW)",
        "1-0:2.7.0(abc*kW)",
        "1-0:3.7.0(0000.100*V)",  # unit does not fit the quantity
        "1-0:4.7.0(0000.100*furlong)",
        "1-0:32.7.0(234.9*V",  # truncated
        "1-0:52.7.0()",
        "1-0:72.7.0(.*V)",
        "1-0:31.7.0(1.*A)",
        "1-0:51.7.0(1.2.3*A)",
        "1-0:1.8.0.101(00001000.000*kWh)",  # a billing period, not the register
        "1-0:1.8.0.x(00001000.000*kWh)",
        "1-0:2.8.0(00000001.000)",  # energy without a unit
        "1-0:999.8.0(1*kWh)",
        "x-0:1.8.0(1*kWh)",
        "1-0:1.8(1*kWh)",
        "1-0:71.7.0(002.1*A)",
        "0-0:96.14.0(0001)",  # tariff indicator: not used
    )
    reading = decode(raw)
    assert reading.manufacturer == "Kamstrup"
    assert reading.meter_type is None
    assert dict(reading.values) == {"active_power_import": 714.0, "current_l3": 2.1}


def test_lines_after_the_end_marker_are_ignored() -> None:
    raw = telegram("KAM5", "1-0:1.7.0(0000.714*kW)") + b"1-0:2.7.0(0001.000*kW)\r\n"
    assert dict(decode(raw).values) == {"active_power_import": 714.0}


def test_telegram_without_trailing_crlf() -> None:
    raw = telegram("LGF5E360", "1-0:1.7.0(0000.020*kW)", crlf_end=False)
    assert decode(raw).values["active_power_import"] == 20.0


def test_signed_numbers_and_explicit_plus() -> None:
    raw = telegram("KFM5KAIFA-METER", "1-0:1.7.0(-0001.000*kW)", "1-0:2.7.0(+0000.500*kW)")
    reading = decode(raw)
    assert reading.manufacturer == "Kaifa"
    assert reading.meter_type == "KAIFA-METER"
    assert dict(reading.values) == {"active_power_import": -1000.0, "active_power_export": 500.0}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("0-0:96.1.0(4B414D3132333435)", "KAM12345"),  # DSMR: hex-encoded ASCII
        ("0-0:96.1.1(4530303330303034)", "E0030004"),
        ("0-0:96.1.0(7359992890941742)", "7359992890941742"),  # not hex text: as sent
        ("0-0:96.1.0(12345)", "12345"),
        ("0-0:96.1.0(ZZ)", "ZZ"),
        ("0-0:96.1.0(0102)", "0102"),  # decodes to control characters: kept as sent
        ("0-0:96.1.0(2020)", "2020"),  # would decode to two spaces: kept as sent
    ],
)
def test_meter_id(line: str, expected: str) -> None:
    reading = decode(telegram("KAM5", line))
    assert reading.meter_id == expected
    assert dict(reading.values) == {}


def test_meter_id_line_that_is_blank_is_not_usable() -> None:
    with pytest.raises(FrameError) as err:
        decode(telegram("KAM5", "0-0:96.1.0(   )"))
    assert err.value.reason is RejectReason.P1_MALFORMED


def test_dsmr_version_and_type_lines() -> None:
    raw = telegram(
        "ISK5\\2M550T-1012",
        "1-3:0.2.8(50)",
        "0-0:96.1.7(AM550)",
        "1-0:1.7.0(00.250*kW)",
    )
    reading = decode(raw)
    assert reading.manufacturer == "Iskraemeco"
    assert reading.list_version == "50"
    assert reading.meter_type == "AM550"
    assert reading.values["active_power_import"] == 250.0


@pytest.mark.parametrize(
    ("ident", "maker", "meter_type"),
    [
        ("ADN9 6534", "Aidon", "6534"),
        ("NES5:83335-3E", "NES", "83335-3E"),
        ("KAM5", "Kamstrup", None),
        ("ELL5\\253833635_A", "ELL", "53833635_A"),
        ("12", None, None),
        ("", None, None),
    ],
)
def test_ident_line(ident: str, maker: str | None, meter_type: str | None) -> None:
    reading = decode(telegram(ident, "1-0:1.7.0(0000.001*kW)"))
    assert (reading.manufacturer, reading.meter_type) == (maker, meter_type)


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        (None, datetime(2023, 3, 27, 6, 42, 30)),  # the market is unknown: naive
        ("SE", datetime(2023, 3, 27, 6, 42, 30, tzinfo=UTC1)),
        ("dk", datetime(2023, 3, 27, 6, 42, 30, tzinfo=UTC1)),
        ("FI", datetime(2023, 3, 27, 6, 42, 30)),  # no evidence: the wall clock, naive
        ("NO", datetime(2023, 3, 27, 6, 42, 30)),
    ],
)
def test_meter_time_by_country(country: str | None, expected: datetime) -> None:
    raw = telegram("LGF5E360", "0-0:1.0.0(230327064230W)", "1-0:1.7.0(0000.002*kW)")
    reading = decode(raw, country)
    assert reading.meter_time == expected
    assert reading.meter_time_is_local is (expected.tzinfo is None)


@pytest.mark.parametrize("stamp", ["230230064230W", "2303270642", "23032706423XW", "", "ABC"])
def test_bad_timestamps_are_none(stamp: str) -> None:
    raw = telegram("KAM5", f"0-0:1.0.0({stamp})", "1-0:1.7.0(0000.002*kW)")
    assert decode(raw).meter_time is None


def test_current_sign_needs_export_above_import() -> None:
    raw = telegram(
        "KAM5",
        "1-0:21.7.0(0000.100*kW)",
        "1-0:22.7.0(0000.100*kW)",  # equal: not exporting
        "1-0:31.7.0(001.0*A)",
        "1-0:42.7.0(0000.300*kW)",  # export without an import line
        "1-0:51.7.0(002.0*A)",
        "1-0:62.7.0(0000.300*kW)",
        "1-0:71.7.0(000.0*A)",  # zero current stays +0.0
        "1-0:61.7.0(0000.000*kW)",
    )
    v = decode(raw).values
    assert v["current_l1"] == 1.0
    assert v["current_l2"] == -2.0
    assert v["current_l3"] == 0.0
    assert str(v["current_l3"]) == "0.0"


def test_current_without_per_phase_power_stays_unsigned() -> None:
    raw = telegram("KAM5", "1-0:2.7.0(0001.000*kW)", "1-0:31.7.0(004.0*A)")
    assert decode(raw).values["current_l1"] == 4.0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"1-0:1.7.0(0001.000*kW)\r\n!1234\r\n",
        b"/KAM5\r\n\r\n!1234\r\n",
        b"/KAM5\r\n\r\ngarbage\r\n!1234\r\n",
    ],
)
def test_nothing_usable_is_p1_malformed(raw: bytes) -> None:
    with pytest.raises(FrameError) as err:
        decode(raw)
    assert err.value.reason is RejectReason.P1_MALFORMED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-0:1.8.0", bytes((1, 0, 1, 8, 0, 255))),
        ("1-0:1.8.0.255", bytes((1, 0, 1, 8, 0, 255))),
        ("0-1:24.2.1", bytes((0, 1, 24, 2, 1, 255))),
        ("1-0:256.8.0", None),
        ("1-0:1.8", None),
        ("1-0:1.8.0.1.2", None),
        ("1:0-1.8.0", None),
        ("10:1.8.0", None),
        ("1-0:1.8.²", None),
        ("1-0:1.8.-1", None),
    ],
)
def test_parse_obis(text: str, expected: bytes | None) -> None:
    assert p1.parse_obis(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001.727", (1727, 3)),
        ("-12.50", (-1250, 2)),
        ("+7", (7, 0)),
        ("007", (7, 0)),
        ("", None),
        ("-", None),
        ("1.", None),
        (".5", (5, 1)),
        ("1,5", None),
        ("١٢", None),
        ("1" * 19, None),
        ("1" * 400 + ".5", None),
    ],
)
def test_parse_decimal(text: str, expected: tuple[int, int] | None) -> None:
    assert p1.parse_decimal(text) == expected


def _decode_or_reason(raw: bytes, country: str | None) -> str:
    try:
        reading = decode(raw, country)
    except FrameError as err:
        return err.reason
    assert all(math.isfinite(value) for value in reading.values.values())
    return "reading"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_p1_malformed(raw: bytes) -> None:
    assert _decode_or_reason(raw, None) in (RejectReason.P1_MALFORMED, "reading")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789-:.()*kWhVAvarHz/!\\ SE+", max_size=40),
        max_size=12,
    ),
    st.sampled_from([None, "SE", "DK", "FI"]),
)
def test_random_lines_never_raise_anything_but_p1_malformed(
    lines: list[str], country: str | None
) -> None:
    assert _decode_or_reason(telegram("KAM5", *lines), country) in (
        RejectReason.P1_MALFORMED,
        "reading",
    )


def test_obis_list_version_line() -> None:
    raw = telegram("ADN9 6534", "1-1:0.2.129(AIDON_H0001)", "1-0:1.7.0(0000.100*kW)")
    assert decode(raw).list_version == "AIDON_H0001"


def test_finnish_meter_without_a_country_keeps_its_wall_clock() -> None:
    """An Aidon in Finland (UTC+2, +3 in summer) is not read as UTC+1 when no country is set."""
    raw = telegram("ADN9 6534", "0-0:1.0.0(240715134502S)", "1-0:1.7.0(0001.000*kW)")
    reading = decode(raw)
    assert reading.meter_time == datetime(2024, 7, 15, 13, 45, 2)
    assert reading.meter_time_is_local
    assert decode(raw, "FI").meter_time == reading.meter_time


def test_line_memos_stay_bounded_and_exact() -> None:
    """Codes, units and idents are memoised; the memos are capped and never change a result."""
    p1._LINES.clear()
    first = decode(telegram("KAM5", "1-0:1.7.0(0001.000*kW)", "1-0:1.8.0(1.5*Wh)"))
    # many distinct OBIS texts, units and idents (each telegram names its own)
    for index in range(p1._CACHE_SIZE + 50):
        raw = telegram(
            f"KAM5 {index}",
            f"1-0:{index % 256}.{index // 256}.0(1)",
            f"1-0:1.7.0(1.0*x{index})",
            "1-0:1.7.0(0001.000*kW)",
        )
        assert decode(raw).values["active_power_import"] == 1000.0
        assert len(p1._LINES) <= p1._CACHE_SIZE
        assert len(p1._IDENTS) <= p1._CACHE_SIZE
        assert all(len(entry[2]) <= p1._CACHE_SIZE for entry in p1._LINES.values() if entry)
    for index in range(p1._CACHE_SIZE + 50):  # one code, many units
        raw = telegram("KAM5", f"1-0:1.7.0(1.0*x{index})", "1-0:1.7.0(0001.000*kW)")
        assert decode(raw).values["active_power_import"] == 1000.0
        assert all(len(entry[2]) <= p1._CACHE_SIZE for entry in p1._LINES.values() if entry)
    again = decode(telegram("KAM5", "1-0:1.7.0(0001.000*kW)", "1-0:1.8.0(1.5*Wh)"))
    assert again == first
    assert dict(again.values) == {"active_power_import": 1000.0, "active_energy_import": 0.0015}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("0001.727*kW", 1727.0),
        ("-0001.727*kW", -1727.0),  # signed: the general parser
        ("+2*W", 2.0),
        ("1.*kW", None),
        ("1e3*kW", None),
        ("9" * 18 + "*W", 999999999999999999.0),
        ("9" * 19 + "*W", None),
        (" 0.5 *kW", 500.0),
        ("1.5*kWh", None),  # an energy unit on a power
    ],
)
def test_value_fast_path_matches_the_decimal_parser(content: str, expected: float | None) -> None:
    values = decode(telegram("KAM5", f"1-0:1.7.0({content})", "1-0:2.7.0(1*W)")).values
    assert values.get("active_power_import") == expected


def test_power_factor_is_its_magnitude_and_at_most_one() -> None:
    lines = ("1-0:13.7.0(-0.950)", "1-0:33.7.0(1.001)", "1-0:53.7.0(1.000)", "1-0:73.7.0(0.5*kW)")
    values = decode(telegram("KAM5", *lines)).values
    assert dict(values) == {"power_factor": 0.95, "power_factor_l2": 1.0}


# --- telegram templates (p1._Shape) -------------------------------------------------

KW_LINES = (
    "0-0:1.0.0(240715134502S)",
    "1-0:1.8.0(00012345.678*kWh)",
    "1-0:1.7.0(0002.345*kW)",
    "1-0:2.7.0(0000.000*kW)",
    "1-0:21.7.0(0001.500*kW)",
    "1-0:22.7.0(0000.000*kW)",
    "1-0:31.7.0(006.6*A)",
    "1-0:32.7.0(231.7*V)",
    "1-0:13.7.0(0.950)",
    "0-0:96.1.0(4530303336303035)",
    "1-3:0.2.8(50)",
)


def _loop(raw: bytes, country: str | None) -> Reading | str:
    """The line loop alone (no template): the reference the templates must equal."""
    try:
        return decode(raw, country)
    except FrameError as err:
        return err.detail


def _shaped(raw: bytes, country: str | None, shapes: p1.TelegramShapes) -> Reading:
    return decode_telegram(raw, options=DecodeOptions(country=country), shapes=shapes)


def _agree(raw: bytes, country: str | None, shapes: p1.TelegramShapes) -> None:
    try:
        got: Reading | str = _shaped(raw, country, shapes)
    except FrameError as err:
        got = err.detail
    want = _loop(raw, country)
    assert got == want, raw
    if isinstance(got, Reading) and isinstance(want, Reading):
        assert list(got.values.items()) == list(want.values.items())  # order too
        assert type(got.meter_time) is type(want.meter_time)
        assert got.meter_time is None or got.meter_time.tzinfo == want.meter_time.tzinfo  # type: ignore[union-attr]


def test_a_repeated_telegram_is_read_from_its_template() -> None:
    shapes = p1.TelegramShapes()
    raw = telegram("KAM5", *KW_LINES)
    first = _shaped(raw, "SE", shapes)
    assert shapes._shapes[len(raw)] is p1._SEEN
    assert _shaped(raw, "SE", shapes) == first  # the template is made (and checked) here
    shape = shapes._shapes[len(raw)]
    assert isinstance(shape, p1._Shape)
    other = raw.replace(b"0002.345*kW", b"0009.999*kW").replace(b"240715134502", b"240715134512")
    reading = _shaped(other, "SE", shapes)
    assert shape.hits == 1
    assert reading.values["active_power_import"] == 9999.0
    assert reading.meter_time == datetime(2024, 7, 15, 13, 45, 12, tzinfo=UTC1)
    assert _shaped(other, None, shapes).meter_time == datetime(2024, 7, 15, 13, 45, 12)
    assert shape.hits == 2  # the country is applied per call
    assert reading.values["power_factor"] == 0.95
    assert reading.meter_id == "E0036005"
    assert reading.list_version == "50"
    _agree(other, "SE", shapes)
    shapes.clear()
    assert not shapes._shapes


def test_template_power_factor_above_one_and_signs() -> None:
    shapes = p1.TelegramShapes()
    raw = telegram("KAM5", *KW_LINES)
    for _ in range(3):
        _shaped(raw, "SE", shapes)
    no_factor = raw.replace(b"(0.950)", b"(1.950)")  # not a power factor: dropped
    exporting = raw.replace(b"1-0:22.7.0(0000.000", b"1-0:22.7.0(0009.000")  # current < 0
    for variant in (no_factor, exporting, raw.replace(b"(006.6*A)", b"(000.0*A)")):
        assert isinstance(shapes._shapes[len(raw)], p1._Shape)
        _agree(variant, "DK", shapes)
    assert "power_factor" not in _shaped(no_factor, "SE", shapes).values
    assert _shaped(exporting, "SE", shapes).values["current_l1"] == -6.6
    assert shapes._shapes[len(raw)].hits == 6  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "odd_line",
    [
        "1-0:2.7.0(-0000.500*kW)",  # signed: read another way
        "1-0:2.7.0(0001*kW)",  # a unit that multiplies
        "1-0:1.7.0(0001.000*kW)",  # the same value twice
    ],
)
def test_no_template_for_lines_it_cannot_read(odd_line: str) -> None:
    shapes = p1.TelegramShapes()
    raw = telegram("KAM5", *KW_LINES, odd_line)
    for _ in range(4):
        _agree(raw, "SE", shapes)
    assert shapes._shapes[len(raw)] is p1._OFF


def test_a_template_that_never_fits_again_is_given_up_and_the_memo_is_bounded() -> None:
    shapes = p1.TelegramShapes()
    raw = telegram("KAM5", *KW_LINES)
    _shaped(raw, "SE", shapes)
    _shaped(raw, "SE", shapes)
    moved = raw.replace(b"1-0:1.7.0", b"1-0:2.7.0").replace(b"1-0:2.7.0(0000", b"1-0:1.7.0(0000")
    _agree(moved, "SE", shapes)  # same length, other layout: the fresh template never fitted
    assert shapes._shapes[len(raw)] is p1._OFF
    _agree(raw, "SE", shapes)
    # a template that served is remade for the new layout
    shapes = p1.TelegramShapes()
    for _ in range(3):
        _shaped(raw, "SE", shapes)
    _agree(moved, "SE", shapes)
    assert isinstance(shapes._shapes[len(raw)], p1._Shape)
    for size in range(2 * p1._SHAPES_MAX):
        _shaped(telegram("KAM5", *KW_LINES, "x" * size), "SE", shapes)
        assert len(shapes._shapes) <= p1._SHAPES_MAX


def test_two_meters_keep_their_own_templates() -> None:
    """Two streams with telegrams of one length and other meter ids: no refits, no give-up."""
    raws = [telegram("KAM5", *KW_LINES, f"0-0:96.1.1({meter})") for meter in ("AAAA", "BBBB")]
    streams = [p1.TelegramShapes(), p1.TelegramShapes()]
    for _ in range(4):
        for raw, shapes in zip(raws, streams, strict=True):
            _agree(raw, "SE", shapes)
    for raw, shapes in zip(raws, streams, strict=True):
        shape = shapes._shapes[len(raw)]
        assert isinstance(shape, p1._Shape)
        assert shape.hits == 2


@given(seed=st.integers(0, 2**32), country=st.sampled_from([None, "SE", "FI"]))
@settings(max_examples=60, deadline=None)
def test_templates_equal_the_line_loop_for_any_change(seed: int, country: str | None) -> None:
    """Digits changed (template read) or any byte changed (fall back): the same reading."""
    rng = random.Random(seed)
    shapes = p1.TelegramShapes()
    lines = list(KW_LINES)
    rng.shuffle(lines)
    raw = telegram(rng.choice(["KAM5", "LGF5E360", "ELL5\\253833635_A"]), *lines)
    for _ in range(2):
        _agree(raw, country, shapes)
    digits = [i for i, byte in enumerate(raw) if 0x30 <= byte <= 0x39]
    for _ in range(25):
        changed = bytearray(raw)
        if rng.random() < 0.6:
            for index in rng.sample(digits, rng.randint(1, 8)):
                changed[index] = rng.randrange(0x30, 0x3A)
        else:
            changed[rng.randrange(len(raw))] = rng.choice(b"0123456789.()*\r\n -!:\x85a")
        _agree(bytes(changed), country, shapes)
        _agree(raw, country, shapes)


def test_template_with_nothing_usable_left_is_malformed_like_the_loop() -> None:
    shapes = p1.TelegramShapes()
    raw = telegram("KAM5", "1-0:13.7.0(0.950)")
    for _ in range(3):
        _shaped(raw, None, shapes)
    assert isinstance(shapes._shapes[len(raw)], p1._Shape)
    with pytest.raises(FrameError) as err:
        _shaped(raw.replace(b"(0.950)", b"(1.950)"), None, shapes)
    assert err.value.reason is RejectReason.P1_MALFORMED
    _agree(raw.replace(b"(0.950)", b"(1.950)"), None, shapes)


def test_the_stream_reads_p1_through_its_own_templates() -> None:
    stream = MeterStream(DecodeOptions(country="SE"))
    powers = [f"1-0:1.7.0(000{n}.345*kW)" for n in range(5)]
    frames = [build_p1_telegram("KAM5", [*KW_LINES[:2], power]) for power in powers]
    readings = [r for frame in frames for r in stream.feed(frame)]
    got = [r.values["active_power_import"] for r in readings]
    assert got == [345.0 + 1000 * n for n in range(5)]
    shape = stream._telegram_shapes._shapes[len(frames[0])]
    assert isinstance(shape, p1._Shape)
    assert shape.hits == 3


def test_template_with_a_clock_that_is_not_a_time() -> None:
    shapes = p1.TelegramShapes()
    raw = telegram("KAM5", "0-0:1.0.0(2303270642)", "1-0:1.7.0(0001.000*kW)")
    for _ in range(3):
        _agree(raw, "SE", shapes)
    shape = shapes._shapes[len(raw)]
    assert isinstance(shape, p1._Shape)
    assert shape.hits == 1
    assert _shaped(raw.replace(b"0001.000", b"0002.000"), "SE", shapes).meter_time is None
    assert _shaped(raw.replace(b"2303270642", b"2303270643"), "SE", shapes).meter_time is None
    assert shape.hits == 2  # the clock's digits are fixed bytes here: the second one refits
