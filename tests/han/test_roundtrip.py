"""Round trip: Reading -> encoder -> MeterStream -> the same Reading, for every layout and list.

The round trip is exact modulo the layout's resolution: the readings drawn
here are already rounded to it (raw integer / 10**decimals), so the decoder
must return them bit for bit, with the identity and clock the frame carries
(``encode.expected_reading`` states exactly what that is). The encoded bytes
reach the stream split at random points with line noise between them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.hanport.han.encode import (
    Layout,
    Topology,
    carried_names,
    encode_reading,
    expected_reading,
    layout_spec,
    list_kinds,
    resolution,
)
from custom_components.hanport.han.encode.austria import MAKER_PREFIX
from custom_components.hanport.han.encode.p1 import STYLES
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading
from custom_components.hanport.han.stream import MeterStream

from .encode_helpers import (
    AUTH_KEY,
    COUNTRY,
    ENCRYPTED_LAYOUTS,
    KEY,
    decipher,
    parse_hdlc,
    parse_notification,
)

# ---------------------------------------------------------------- what each layout needs

# meter models per wiring (None: let the encoder pick its default)
MODELS: dict[Layout, dict[Topology, list[str | None]]] = {
    Layout.AIDON_NO: {
        Topology.ONE_PHASE: ["6515", None],
        Topology.THREE_WIRE: ["6525", "6540"],
        Topology.FOUR_WIRE: ["6534", "6550", None],
    },
    Layout.KAIFA_NO: {
        Topology.ONE_PHASE: ["MA105H2E", None],
        Topology.THREE_WIRE: ["MA304H3E", "MA304T3"],
        Topology.FOUR_WIRE: ["MA304H4", "MA304T4", None],
    },
    Layout.KAIFA_SE: {
        Topology.THREE_WIRE: ["MA304H3E"],
        Topology.FOUR_WIRE: ["MA304H4", "MA304H4D", None],
    },
    Layout.KAMSTRUP_NO: {
        Topology.ONE_PHASE: ["6861111BN242101040", None],
        Topology.THREE_WIRE: ["6841121BN243101040"],
        Topology.FOUR_WIRE: ["6841131BN243101040", "6841138AN243101090", None],
    },
    Layout.KAMSTRUP_SE: {
        Topology.ONE_PHASE: ["6861111BN245101040", None],
        Topology.THREE_WIRE: ["6841121BN245101092"],
        Topology.FOUR_WIRE: ["6841131BN245101092", "6841138BN245101090", None],
    },
}


def _ranges(name: str, layout: Layout) -> tuple[float, float]:
    """Realistic magnitude of a quantity, in canonical units."""
    if "energy" in name:
        return 0.0, 999_999.0
    if name.startswith(("active_power", "reactive_power")):
        return 0.0, 30_000.0
    if name.startswith("current"):
        signed = layout in (Layout.AIDON_NO, Layout.AIDON_SE, Layout.LG_E350_NO)
        return (-120.0 if signed else 0.0), 120.0
    if name.startswith("voltage"):
        return 180.0, 260.0
    return 0.0, 1.0  # power factor


@st.composite
def values_for(draw: st.DrawFn, layout: Layout, names: tuple[str, ...]) -> dict[str, float]:
    """Every value of the list, drawn as a raw integer at the layout's resolution."""
    out: dict[str, float] = {}
    for name in names:
        decimals = resolution(layout, name)
        assert decimals is not None
        low, high = _ranges(name, layout)
        scale = 10**decimals
        raw = draw(st.integers(round(low * scale), round(high * scale)))
        out[name] = raw / scale
    if layout.name.startswith("P1_"):  # currents come back signed by the phase powers
        for phase in (1, 2, 3):
            current = f"current_l{phase}"
            if current in out:
                exporting = out.get(f"active_power_export_l{phase}", 0.0) > out.get(
                    f"active_power_import_l{phase}", 0.0
                )
                out[current] = -abs(out[current]) if exporting else abs(out[current])
    return out


# whole seconds, years the P1 YYMMDD format and u16 years both hold
CLOCKS = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31))


ZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))])


def _clock(when: datetime, zone: timezone | None) -> datetime:
    """Whole seconds; naive (meter wall clock) or aware (converted where the meter states one)."""
    return when.replace(microsecond=0, tzinfo=zone)


@st.composite
def readings(draw: st.DrawFn, layout: Layout, kind: ListKind) -> Reading:
    """A plausible reading of one list of ``layout``, already at its resolution."""
    spec = layout_spec(layout)
    topology = draw(st.sampled_from(spec.topologies))
    models = MODELS.get(layout, {}).get(topology, [None])
    meter_type = draw(st.sampled_from(models))
    values = draw(values_for(layout, carried_names(layout, kind, topology)))
    manufacturer: str | None = None
    if layout is Layout.OBIS_ARRAY_AT:
        manufacturer = draw(st.sampled_from(sorted(MAKER_PREFIX)))
    elif layout.name.startswith("P1_"):
        manufacturer = draw(st.sampled_from([None, *sorted(STYLES)]))
        if manufacturer is not None:
            meter_type = draw(st.none() | st.text("ABCDEFGHIJ0123456789-", min_size=1, max_size=10))
    digits = st.text("0123456789", min_size=8, max_size=16)  # GS1 ids are 16, AT numbers 12
    if layout is Layout.KAMSTRUP_DK:
        meter_id = str(draw(st.integers(0, 0xFFFF_FFFF)))
    else:
        meter_id = draw(digits)
    when = draw(st.none() | CLOCKS)
    zone = draw(ZONES)
    return Reading(
        protocol=Protocol.HDLC,
        manufacturer=manufacturer,
        meter_id=meter_id,
        meter_type=meter_type,
        list_version=None,
        meter_time=None if when is None else _clock(when, zone),
        values=MappingProxyType(values),
    )


# line noise that cannot start a frame of any kind: no HDLC flag or format byte (7E, A0-AF:
# a frame's closing flag followed by "A?" is a frame start), M-Bus 68, P1 '/', bare APDUs
_STARTS = frozenset(b"\x7e\x68\x2f\xe6\x0f\xdb\xdc\xe0" + bytes(range(0xA0, 0xB0)))
NOISE = st.binary(max_size=12).map(lambda raw: bytes(b for b in raw if b not in _STARTS))


def _options(layout: Layout, with_country: bool) -> DecodeOptions:
    """Keys where needed; the country is optional except for P1 (it sets the clock's offset)."""
    keyed = layout in ENCRYPTED_LAYOUTS
    with_country = with_country or layout.name.startswith("P1_")
    return DecodeOptions(
        country=COUNTRY[layout] if with_country else None,
        key=KEY if keyed else None,
        auth_key=AUTH_KEY if keyed else None,
    )


def _feed_split(stream: MeterStream, data: bytes, cuts: list[int]) -> list[Reading]:
    out: list[Reading] = []
    last = 0
    for cut in sorted(cuts):
        out += stream.feed(data[last:cut])
        last = cut
    out += stream.feed(data[last:])
    return out


CASES = [(layout, kind) for layout in Layout for kind in list_kinds(layout)]


@pytest.mark.parametrize(
    ("layout", "kind"), CASES, ids=[f"{layout}-{kind.name}" for layout, kind in CASES]
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_roundtrip(layout: Layout, kind: ListKind, data: st.DataObject) -> None:
    """Two pushes of one reading, noise around and between, cut anywhere: two exact readings."""
    reading = data.draw(readings(layout, kind))
    counter = data.draw(st.integers(0, 0xFFFF_FFFE))
    frames = [
        encode_reading(reading, layout, key=KEY, auth_key=AUTH_KEY, frame_counter=counter + n)
        for n in (0, 1)
    ]
    noise = [data.draw(NOISE) for _ in range(3)]
    wire = noise[0] + frames[0] + noise[1] + frames[1] + noise[2]
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=6))
    stream = MeterStream(_options(layout, data.draw(st.booleans())))
    decoded = _feed_split(stream, wire, cuts)
    expected = expected_reading(reading, layout)
    assert decoded == [expected, expected]
    assert [r.frame for r in decoded] == frames
    assert stream.counters.frames_ok == 2
    assert not stream.counters.rejected


def test_several_frames_back_to_back() -> None:
    """A stream of lists 1, 2, 3 from one meter decodes in order."""
    base = {"active_power_import": 1000.0}
    status = base | {
        "active_power_export": 0.0,
        "reactive_power_import": 1.0,
        "reactive_power_export": 2.0,
        "current_l1": 4.3,
        "voltage_l1": 231.0,
    }
    hourly = status | {
        "active_energy_import": 1.23,
        "active_energy_export": 0.0,
        "reactive_energy_import": 0.0,
        "reactive_energy_export": 4.56,
    }
    when = datetime(2024, 3, 31, 2, 0)
    readings_in = [
        Reading(Protocol.HDLC, None, "1", "6515", None, when, MappingProxyType(v))
        for v in (base, status, hourly)
    ]
    raw = b"".join(encode_reading(r, Layout.AIDON_NO) for r in readings_in)
    stream = MeterStream()
    assert stream.feed(raw) == [expected_reading(r, Layout.AIDON_NO) for r in readings_in]


# ---------------------------------------------------------------- decoded captures, re-encoded

_FRAMES = Path(__file__).parents[3] / "shared" / "han" / "frames.json"

_REENCODE: dict[str, Layout] = {
    "aidon-no-l1-contains-7d": Layout.AIDON_NO,
    "aidon-no-l1-hassams-mini": Layout.AIDON_NO,
    "aidon-no-l2-6534": Layout.AIDON_NO,
    "aidon-no-l3-6534-2020": Layout.AIDON_NO,
    "aidon-no-l3-6534-2024": Layout.AIDON_NO,
    "aidon-no-l2-6515-1phase-vendor-doc": Layout.AIDON_NO,
    "aidon-se-27items-hassams": Layout.AIDON_SE,
    "aidon-se-27items-vendor-doc": Layout.AIDON_SE,
    "kaifa-no-l1-contains-7e": Layout.KAIFA_NO,
    "kaifa-no-l1-ma304h3e-2017": Layout.KAIFA_NO,
    "kaifa-no-l2-ma304h3e-it-2017": Layout.KAIFA_NO,
    "kaifa-no-l3-ma304h3e-2020": Layout.KAIFA_NO,
    "kaifa-no-l1-ma304h4-2022": Layout.KAIFA_NO,
    "kaifa-no-l2-ma304h4-2022": Layout.KAIFA_NO,
    "kaifa-no-l2-ma105h2e-1phase": Layout.KAIFA_NO,
    "kaifa-no-l3-ma105h2e-1phase": Layout.KAIFA_NO,
    "kaifa-se-ma304h4-obis": Layout.KAIFA_SE,
    "kamstrup-no-10s-3w-2018": Layout.KAMSTRUP_NO,
    "kamstrup-no-10s-3p-2021": Layout.KAMSTRUP_NO,
    "kamstrup-no-hourly-3w-2022": Layout.KAMSTRUP_NO,
    "kamstrup-no-hourly-1phase-nulls": Layout.KAMSTRUP_NO,
    "kamstrup-se-10s-gh239": Layout.KAMSTRUP_SE,
    "kamstrup-se-10s-amshan-comment": Layout.KAMSTRUP_SE,
    "lg-e350-no-embriq-l1": Layout.LG_E350_NO,
    "kaifa-ma309-at-evn-mbus-vendor-doc": Layout.OBIS_ARRAY_AT,
    "p1-se-ell5-2021-02-17": Layout.P1_SE,
    "p1-se-ell5-2020-10-20": Layout.P1_SE,
    "p1-se-ell5-2024-12-12": Layout.P1_SE,
    "p1-dk-gh497-1": Layout.P1_DK,
    "p1-se-gh382-1": Layout.P1_SE,  # L&G E360 in Sweden: L&G's line order and spelling
    "p1-se-gh578-1": Layout.P1_SE,  # Kamstrup Omnia: S in summer
    "aidon-no-l2-6525-llc-only": Layout.AIDON_NO,  # captured without HDLC: compare the info field
    "aidon-no-l3-6525-llc-only": Layout.AIDON_NO,
}


def _capture(capture_id: str) -> dict[str, Any]:
    if not _FRAMES.exists():
        pytest.skip("../shared/han/frames.json not present")
    vectors: list[dict[str, Any]] = json.loads(_FRAMES.read_text())
    return next(vector for vector in vectors if vector["id"] == capture_id)


def _wire_bytes(vector: dict[str, Any]) -> bytes:
    if vector["kind"] == "p1":
        return bytes(vector["telegram"], "latin-1")
    return bytes.fromhex(vector["hex"])


@pytest.mark.parametrize("capture_id", sorted(_REENCODE))
def test_decoded_capture_reencodes_to_its_bytes(capture_id: str) -> None:
    """Decode a real capture with the library, encode the reading: the same bytes come out."""
    vector = _capture(capture_id)
    layout = _REENCODE[capture_id]
    wire = _wire_bytes(vector)
    key = bytes.fromhex(vector["key"]["ek"]) if vector.get("key") else None
    stream = MeterStream(DecodeOptions(country=COUNTRY[layout], key=key))
    (reading,) = stream.feed(wire) + stream.flush()  # a capture is whole
    title, counter = None, 1
    if key is not None:  # the ciphering header: system title and frame counter
        data = b"".join(wire[pos + 9 : pos + 4 + wire[pos + 1]] for pos in _mbus_starts(wire))
        title, counter = data[2:10], int.from_bytes(data[13:17], "big")
    again = encode_reading(reading, layout, key=key, system_title=title, frame_counter=counter)
    if wire[:3] == b"\xe6\xe7\x00":  # a bare LLC + APDU capture
        again = parse_hdlc(again).info
    assert again == wire


def _mbus_starts(raw: bytes) -> list[int]:
    starts, pos = [], 0
    while pos < len(raw):
        starts.append(pos)
        pos += raw[pos + 1] + 6
    return starts


def test_decoded_lg_e450_capture_reencodes_but_for_its_unknown_slots() -> None:
    """Three E450 values are unidentified: they are sent as 0, everything else matches."""
    vector = _capture("lg-e450-at-hdlc-encrypted-gh501-1")
    wire = bytes.fromhex(vector["hex"])
    key, auth_key = bytes.fromhex(vector["key"]["ek"]), bytes.fromhex(vector["key"]["ak"])
    (reading,) = MeterStream(DecodeOptions(key=key, auth_key=auth_key)).feed(wire)
    captured = parse_hdlc(wire)
    original = decipher(captured.info[3:], key, auth_key)
    again = encode_reading(
        reading,
        Layout.LG_E450_AT,
        key=key,
        auth_key=auth_key,
        system_title=original.system_title,
        frame_counter=original.frame_counter,
    )
    assert len(again) == len(wire)
    assert again[:12] == wire[:12]  # flags, format, addresses, control, HCS, LLC
    rebuilt = parse_notification(decipher(parse_hdlc(again).info[3:], key, auth_key).plain)
    first = parse_notification(original.plain)
    assert (rebuilt.invoke_id, rebuilt.timestamp) == (first.invoke_id, first.timestamp)
    assert isinstance(first.body, tuple)
    assert rebuilt.body == (*first.body[:10], 0, 0, 0, first.body[13])
