"""L&G E450 (Austria): the proprietary 14-item structure, identified by shape and system title."""

from __future__ import annotations

from datetime import datetime

import pytest

from custom_components.hanport.han.dlms.axdr import Data
from custom_components.hanport.han.dlms.notification import Notification
from custom_components.hanport.han.errors import FrameError, RejectReason
from custom_components.hanport.han.layouts import decode_notification, landis_gyr
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading

HEADER = datetime(2024, 4, 2, 9, 30, 15)
LGZ_TITLE = b"LGZ" + bytes.fromhex("1234567890")

# U1-U3 (V), I1-I3 (0.01 A), P+ W, P- W, A+ Wh, A- Wh, three unidentified, meter id.
BODY: tuple[Data, ...] = (
    231,
    229,
    233,
    1250,
    87,
    402,
    3180,
    0,
    45678901,
    1234,
    11,
    22,
    33,
    b"41526374",
)


def decode(body: Data, title: bytes | None = LGZ_TITLE) -> Reading:
    n = Notification(0x002180FC, HEADER, body, title)
    return decode_notification(n, protocol=Protocol.HDLC, options=DecodeOptions())


def test_e450_structure() -> None:
    reading = decode(BODY)
    assert reading.manufacturer == "Landis+Gyr"
    assert reading.meter_id == "41526374"
    assert (reading.meter_type, reading.list_version) == (None, None)
    assert reading.meter_time == HEADER
    assert dict(reading.values) == {
        "voltage_l1": 231.0,
        "voltage_l2": 229.0,
        "voltage_l3": 233.0,
        "current_l1": 12.5,
        "current_l2": 0.87,
        "current_l3": 4.02,
        "active_power_import": 3180.0,
        "active_power_export": 0.0,
        "active_energy_import": 45678.901,
        "active_energy_export": 1.234,
    }
    assert reading.list_kind is ListKind.ENERGY


def test_without_a_system_title_the_shape_decides() -> None:
    assert decode(BODY, title=None).meter_id == "41526374"


def test_another_makers_system_title_is_not_an_e450() -> None:
    with pytest.raises(FrameError) as err:
        decode(BODY, title=b"KFM\x00\x00\x00\x00\x01")
    assert err.value.reason is RejectReason.UNKNOWN_LAYOUT


@pytest.mark.parametrize(
    "body",
    [
        BODY[:13],
        (*BODY, 5),
        (*BODY[:13], 7),  # meter id must be a string
        (*BODY[:5], "x", *BODY[6:]),  # a non-number in a value slot
        (*BODY[:5], True, *BODY[6:]),
    ],
)
def test_other_shapes_do_not_match(body: tuple[Data, ...]) -> None:
    assert not landis_gyr.matches(Notification(0, None, body, None), body)
    with pytest.raises(FrameError):
        decode(body)
