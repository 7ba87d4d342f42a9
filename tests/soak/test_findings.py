"""Reproducers of what the soak found in code other engineers own (xfail until fixed).

MeterStream (han/stream.py with the HDLC reader in han/framing/hdlc.py) holds complete,
checksum-valid frames behind a truncated HDLC frame until the bytes that follow fill the
truncated frame's declared length; only then does it reject that frame and find the ones
inside. On an Aidon (list 2 of 288 bytes, list 1 every 2.5 s) the soak saw list-1 values
published up to 7.5 s late, in a burst, older values after newer ones had been due
(``values published late`` in the soak table; recovery after ``truncate`` up to 10 s).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from custom_components.hanport.han.reading import ListKind
from custom_components.hanport.han.simulator import SimulatedMeter
from custom_components.hanport.han.stream import MeterStream


@pytest.mark.xfail(
    strict=True,
    reason="MeterStream waits for a truncated HDLC frame's declared length before it reads "
    "the intact frames that follow (han/stream.py, han/framing/hdlc.py)",
)
def test_an_intact_frame_after_a_truncated_one_is_read_at_once() -> None:
    meter = SimulatedMeter("aidon-6534-no", start=datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC), seed=1)
    frames = meter.advance(30)
    status = next(f for f in frames if f.kind is ListKind.STATUS)
    power = next(f for f in frames if f.kind is ListKind.POWER)
    assert power.reading is not None
    stream = MeterStream()
    assert stream.feed(status.clean[:184]) == []  # the rest never comes (a cut frame)
    readings = stream.feed(power.clean)  # a whole list 1, flags and checksums intact
    assert [dict(r.values) for r in readings] == [dict(power.reading.values)]
