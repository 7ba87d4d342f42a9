"""COSEM date-time (protocol.md §3) and the small OBIS/unit helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.hanport.han import cosem

H = bytes.fromhex


def _dt(hexdata: str) -> datetime | None:
    return cosem.parse_datetime(H(hexdata.replace(" ", "")))


def test_deviation_8000_is_naive_local_time() -> None:
    # Kaifa NO / Kamstrup NO: 2020-02-03 16:00:10, deviation unspecified, status 00
    assert _dt("07E4 02 03 01 10 00 0A FF 8000 00") == datetime(2020, 2, 3, 16, 0, 10)
    assert _dt("07E4 02 03 01 10 00 0A FF 8000 00").tzinfo is None  # type: ignore[union-attr]


def test_aidon_deviation_zero_is_local_not_utc() -> None:
    got = _dt("07E4 0B 0F 00 0F 00 00 FF 0000 00")  # Sunday sent as 0
    assert got == datetime(2020, 11, 15, 15, 0, 0)
    assert got is not None
    assert got.tzinfo is None


def test_deviation_is_minus_the_utc_offset() -> None:
    cet = _dt("07E5 01 10 06 0C 00 00 00 FFC4 00")  # -60 -> UTC+1
    assert cet == datetime(2021, 1, 16, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    assert cet is not None
    assert cet.astimezone(UTC).hour == 11
    # the Austrian vendor-doc clock: 2021-09-27 09:47:15, FF88 (CEST), status 0x80 (DST)
    cest = _dt("07E5 09 1B 01 09 2F 0F 00 FF88 80")
    assert cest == datetime(2021, 9, 27, 9, 47, 15, tzinfo=timezone(timedelta(hours=2)))
    assert cest is not None
    assert cest.utcoffset() == timedelta(hours=2)  # the DST bit is not added again
    west = _dt("07E5 01 10 06 0C 00 00 00 003C FF")  # +60 -> UTC-1
    assert west is not None
    assert west.utcoffset() == timedelta(hours=-1)


def test_dst_bit_with_local_time_leaves_the_wall_clock_alone() -> None:
    assert _dt("07E5 06 0E 01 11 25 1E FF 8000 80") == datetime(2021, 6, 14, 17, 37, 30)


def test_clock_status_invalid_gives_none() -> None:
    # Kamstrup vendor example 1: status 0x01, year 2000
    assert _dt("07D0 01 01 06 16 21 00 FF 8000 01") is None
    assert _dt("07D0 01 01 06 16 21 00 FF 8000 81") is None
    # status 0xFF means "not specified", not "every bit set"
    assert _dt("07D0 01 01 06 16 21 00 FF 8000 FF") == datetime(2000, 1, 1, 22, 33)
    # doubtful / other clock base bits do not discard the time
    assert _dt("07D0 01 01 06 16 21 00 FF 8000 06") == datetime(2000, 1, 1, 22, 33)


@pytest.mark.parametrize(
    "hexdata",
    [
        "FFFF 01 01 FF 00 00 00 FF 8000 00",  # year unspecified
        "07E4 FF 01 FF 00 00 00 FF 8000 00",  # month unspecified
        "07E4 FE 01 FF 00 00 00 FF 8000 00",  # DST begin (a schedule, not a time)
        "07E4 FD 01 FF 00 00 00 FF 8000 00",
        "07E4 01 FF FF 00 00 00 FF 8000 00",  # day unspecified
        "07E4 01 FE FF 00 00 00 FF 8000 00",  # last day of month
        "07E4 01 01 FF FF 00 00 FF 8000 00",  # hour unspecified
        "07E4 00 01 FF 00 00 00 FF 8000 00",  # month 0
        "07E4 02 1E FF 00 00 00 FF 8000 00",  # 30 February
        "07E4 01 01 FF 18 00 00 FF 8000 00",  # hour 24
        "07E4 01 01 FF 00 3C 00 FF 8000 00",  # minute 60
        "0000 01 01 FF 00 00 00 FF 8000 00",  # year 0
        "07E4 01 01 FF 00 00 00 FF 0385 00",  # deviation beyond +-15 h
        "07E4 01 01 FF 00 00 00 FF FC7B 00",
        "07E4 01 01 FF 00 00 00 FF 8000",  # 11 bytes
        "07E4 01 01 FF 00 00 00 FF 8000 00 00",  # 13 bytes
    ],
)
def test_unusable_date_times_give_none(hexdata: str) -> None:
    assert _dt(hexdata) is None


def test_unspecified_minute_second_hundredths_read_as_zero() -> None:
    assert _dt("07E4 01 01 FF 05 FF FF FF 8000 FF") == datetime(2020, 1, 1, 5)
    assert _dt("07E4 01 01 FF 05 06 07 63 8000 FF") == datetime(2020, 1, 1, 5, 6, 7, 990_000)
    assert _dt("07E4 01 01 FF 05 06 07 64 8000 FF") == datetime(2020, 1, 1, 5, 6, 7)


def test_day_of_week_is_not_validated() -> None:
    for dow in ("00", "01", "07", "FF", "09"):
        assert _dt(f"07E4 01 01 {dow} 05 00 00 FF 8000 00") == datetime(2020, 1, 1, 5)


def test_encode_datetime_fields() -> None:
    raw = cosem.encode_datetime(datetime(2024, 3, 31, 2, 30, 5, 120_000))
    assert raw == H("07E8 03 1F 07 02 1E 05 0C 8000 00".replace(" ", ""))
    aware = datetime(2021, 9, 27, 9, 47, 15, tzinfo=timezone(timedelta(hours=2)))
    assert cosem.encode_datetime(aware, dst=True) == H("07E5091B01092F0F00FF8880")
    assert cosem.encode_datetime(aware, deviation=0)[9:11] == H("0000")
    assert cosem.encode_datetime(datetime(2021, 1, 1, tzinfo=UTC))[9:11] == H("0000")


_naive = st.datetimes(datetime(1990, 1, 1), datetime(2100, 12, 31)).map(
    lambda d: d.replace(microsecond=d.microsecond // 10_000 * 10_000)
)


@given(_naive)
def test_round_trip_local_time(when: datetime) -> None:
    assert cosem.parse_datetime(cosem.encode_datetime(when)) == when


@given(_naive, st.integers(-720, 720).filter(lambda m: m != 0), st.booleans())
def test_round_trip_aware_time(when: datetime, offset_minutes: int, dst: bool) -> None:
    aware = when.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    got = cosem.parse_datetime(cosem.encode_datetime(aware, dst=dst))
    assert got == aware
    assert got is not None
    assert got.utcoffset() == timedelta(minutes=offset_minutes)


def test_utc_round_trips_as_local_because_deviation_zero_means_local() -> None:
    got = cosem.parse_datetime(cosem.encode_datetime(datetime(2021, 1, 1, 12, tzinfo=UTC)))
    assert got == datetime(2021, 1, 1, 12)


def test_obis_helpers_and_unit_factor() -> None:
    code = cosem.obis(1, 0, 1, 8, 0)
    assert code == H("0100010800FF")
    assert cosem.obis_str(code) == "1-0:1.8.0.255"
    assert cosem.ELECTRICITY_NAMES[(1, 8, 0)] == "active_energy_import"
    assert cosem.unit_factor(cosem.Unit.WATT_HOUR) == 0.001
    assert cosem.unit_factor(cosem.Unit.VAR_HOUR) == 0.001
    assert cosem.unit_factor(cosem.Unit.WATT) == 1.0
