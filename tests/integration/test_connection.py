"""The link: serialx URLs, the probe's verdicts, serial auto-detection, backoff, watchdog."""

from __future__ import annotations

import asyncio
import termios
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from unittest.mock import patch

import pytest
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
)

from custom_components.hanport.connection import (
    AUTO_ORDER,
    HanConnection,
    ProbeError,
    ProbeResult,
    SerialSettings,
    async_probe,
    describe_error,
    redact_url,
    serial_settings_apply,
)
from custom_components.hanport.const import CONF_SERIAL, CONF_SERIAL_DETECTED
from custom_components.hanport.han.encode import Layout
from custom_components.hanport.han.errors import RejectReason
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import ListKind, Protocol, Reading

from .conftest import (
    METER_ID,
    FakeMeter,
    PtyMeter,
    TcpMeterServer,
    make_entry,
    setup_entry,
    skip_backoff,
    wait_for,
    wait_state,
)

KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTH = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
GARBAGE = bytes(range(0x20, 0x7E)) * 2
PLAIN = DecodeOptions()


def _dk_meter() -> FakeMeter:
    return FakeMeter(
        layout=Layout.KAMSTRUP_DK, meter_id="57123456", meter_type="6841131BN243101040"
    )


def _dk_frame(meter: FakeMeter, key: bytes = KEY) -> bytes:
    reading = meter.reading(ListKind.ENERGY)
    from custom_components.hanport.han.encode import encode_reading

    return encode_reading(reading, meter.layout, key=key, auth_key=AUTH)


# --- pure helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "baud", "parity", "size", "stop"),
    [
        ("2400_8E1", 2400, "E", 8, 1.0),
        ("115200_8N1", 115200, "N", 8, 1.0),
        ("9600_7O2", 9600, "O", 7, 2.0),
        ("300_8N1.5", 300, "N", 8, 1.5),
    ],
)
def test_serial_settings_round_trip(
    key: str, baud: int, parity: str, size: int, stop: float
) -> None:
    settings = SerialSettings.from_key(key)
    assert (settings.baudrate, settings.parity.value, settings.byte_size) == (baud, parity, size)
    assert float(settings.stopbits) == stop
    assert settings.key == key
    assert SerialSettings.parse(key) == settings


@pytest.mark.parametrize("bad", ["auto", "", None, "2400", "2400_9N1", "x_8N1"])
def test_serial_settings_rejects(bad: str | None) -> None:
    assert SerialSettings.parse(bad) is None
    if bad:
        with pytest.raises(ValueError, match="Invalid serial settings"):
            SerialSettings.from_key(bad)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/dev/serial/by-id/usb-FTDI-if00", "/dev/serial/by-id/usb-FTDI-if00"),
        ("socket://10.0.0.5:2001", "socket://10.0.0.5:2001"),
        (
            "esphome://reader.local:6053/?port_name=han&key=c2VjcmV0&mode=raw",
            "esphome://reader.local:6053/?port_name=han&key=**REDACTED**&mode=raw",
        ),
        (
            "esphome://reader.local:6053/?port_name=han&password=hunter2",
            "esphome://reader.local:6053/?port_name=han&password=**REDACTED**",
        ),
        ("rfc2217://user:pw@10.0.0.5:4000", "rfc2217://user:**REDACTED**@10.0.0.5:4000"),
        ("rfc2217://user@10.0.0.5:4000", "rfc2217://user@10.0.0.5:4000"),
        ("socket://[::1", "**REDACTED**"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_describe_error_hides_url_secrets() -> None:
    url = "esphome://reader.local:6053/?port_name=han&key=c2VjcmV0"
    err = OSError(f"cannot reach {url}")
    text = describe_error(err, url)
    assert "c2VjcmV0" not in text
    assert text.startswith("OSError: cannot reach esphome://reader.local")
    assert "pw" not in describe_error(OSError("bad pw"), "rfc2217://u:pw@h:1")
    assert describe_error(OSError("socket://[::1"), "socket://[::1") == "OSError: **REDACTED**"


def test_serial_settings_apply() -> None:
    assert not serial_settings_apply("socket://h:1")
    assert not serial_settings_apply("TCP://h:1")
    assert serial_settings_apply("/dev/ttyUSB0")
    assert serial_settings_apply("rfc2217://h:1")
    assert serial_settings_apply("esphome-hass://esphome/abc?port_name=x")


# --- the probe -----------------------------------------------------------------------


async def _probe_with(
    server: TcpMeterServer, frames: list[bytes], *, options: DecodeOptions = PLAIN, limit: float = 5
) -> ProbeResult:
    connections = server.connections + 1
    task = asyncio.create_task(async_probe(server.url, serial=None, options=options, timeout=limit))
    await server.wait_clients(connections=connections)
    for frame in frames:
        server.send(frame)
    return await task


async def test_probe_finds_meter_id(tcp_meter: TcpMeterServer, meter: FakeMeter) -> None:
    """List 1 has no ID: the probe keeps listening until a list that names the meter."""
    list1 = meter.frame(ListKind.POWER)[0]
    list2, expected = meter.frame(ListKind.STATUS)
    task = asyncio.create_task(async_probe(tcp_meter.url, serial=None, options=PLAIN, timeout=5))
    await tcp_meter.wait_clients()
    tcp_meter.send(list1)
    for part in (list2[:40], list2[40:]):  # one frame in two chunks: one burst
        await asyncio.sleep(0.05)
        tcp_meter.send(part)
    result = await task
    assert result.success
    assert result.error is None
    assert result.reading is not None
    assert result.reading.meter_id == METER_ID
    assert result.reading.values == expected.values
    assert result.serial is None  # a raw TCP socket has no serial settings
    assert result.protocol is Protocol.HDLC
    assert result.frames_ok == 2


async def test_probe_no_meter_id(tcp_meter: TcpMeterServer, meter: FakeMeter) -> None:
    """Valid frames without an ID within the timeout: said so, with the last reading."""
    result = await _probe_with(tcp_meter, [meter.frame(ListKind.POWER)[0]], limit=0.5)
    assert result.error is ProbeError.NO_METER_ID
    assert isinstance(result.reading, Reading)
    assert result.reading.values["active_power_import"] == 1234.0


async def test_probe_no_data(tcp_meter: TcpMeterServer) -> None:
    result = await _probe_with(tcp_meter, [], limit=0.3)
    assert result.error is ProbeError.NO_DATA
    assert not result.success
    assert result.reading is None


async def test_probe_no_valid_frames(tcp_meter: TcpMeterServer) -> None:
    """Bytes that never pass a checksum (wrong baud, a bridge altering bytes)."""
    result = await _probe_with(tcp_meter, [GARBAGE], limit=0.8)
    assert result.error is ProbeError.NO_VALID_FRAMES
    assert result.bytes_received == len(GARBAGE)


async def test_probe_connection_closed(tcp_meter: TcpMeterServer) -> None:
    """A bridge that hangs up ends the probe at once."""
    task = asyncio.create_task(async_probe(tcp_meter.url, serial=None, options=PLAIN, timeout=20))
    await tcp_meter.wait_clients()
    await tcp_meter.drop_clients()
    async with asyncio.timeout(5):
        result = await task
    assert result.error is ProbeError.NO_DATA


async def test_probe_encrypted_without_key(tcp_meter: TcpMeterServer) -> None:
    """The verdict comes with the first encrypted frame, not after the timeout."""
    async with asyncio.timeout(5):
        result = await _probe_with(tcp_meter, [_dk_frame(_dk_meter())], limit=30)
    assert result.error is ProbeError.ENCRYPTED
    assert result.rejected == {RejectReason.ENCRYPTED_NO_KEY: 1}


async def test_probe_bad_key(tcp_meter: TcpMeterServer) -> None:
    """Two frames that fail with the given key settle it; one could be a fluke."""
    wrong = DecodeOptions(key=bytes(16), auth_key=AUTH)
    meter = _dk_meter()
    result = await _probe_with(tcp_meter, [_dk_frame(meter)], options=wrong, limit=0.5)
    assert result.error is ProbeError.BAD_KEY
    async with asyncio.timeout(5):
        result = await _probe_with(
            tcp_meter, [_dk_frame(meter), _dk_frame(meter)], options=wrong, limit=30
        )
    assert result.error is ProbeError.BAD_KEY


async def test_probe_with_key(tcp_meter: TcpMeterServer) -> None:
    right = DecodeOptions(key=KEY, auth_key=AUTH)
    result = await _probe_with(tcp_meter, [_dk_frame(_dk_meter())], options=right)
    assert result.success
    assert result.reading is not None
    assert result.reading.meter_id == "57123456"


@pytest.mark.parametrize(
    "url", ["socket://127.0.0.1:1", "/dev/hanport-does-not-exist", "nosuchscheme://x"]
)
async def test_probe_cannot_open(url: str, socket_enabled: None) -> None:
    result = await async_probe(url, serial=None, options=PLAIN, timeout=2)
    assert result.error is ProbeError.CANNOT_OPEN


def _baud(pty: PtyMeter) -> int:
    """The baud rate serialx set (a Linux pty keeps the speed but clears PARENB)."""
    return pty.attrs()[1]


async def _until(predicate: Callable[[], bool], limit: float = 10) -> None:
    """Poll something that has no event to wait on (a pty's termios)."""
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_probe_detects_serial_settings_on_pty(pty_meter: PtyMeter, meter: FakeMeter) -> None:
    """Each whole burst without a valid frame moves on: 8E1, 8N1, then 115200 8N1 works."""
    task = asyncio.create_task(async_probe(pty_meter.url, serial=None, options=PLAIN, timeout=10))
    await _until(lambda: _baud(pty_meter) == termios.B2400)
    bursts = 0
    while _baud(pty_meter) != termios.B115200:
        await asyncio.sleep(0.8)  # a burst after a quiet gap is a whole frame
        if _baud(pty_meter) != termios.B115200:
            pty_meter.send(GARBAGE)
            bursts += 1
        assert bursts < 10
    await asyncio.sleep(0.2)
    pty_meter.send(meter.frame(ListKind.STATUS)[0])
    result = await task
    assert result.success
    assert result.serial == AUTO_ORDER[2]
    assert result.serial is not None
    assert result.serial.key == "115200_8N1"
    assert result.bytes_received > len(GARBAGE)


async def test_probe_fixed_settings_on_pty(pty_meter: PtyMeter, meter: FakeMeter) -> None:
    """A fixed setting is used as is, even after a bad burst."""
    fixed = SerialSettings.from_key("115200_8N1")
    task = asyncio.create_task(async_probe(pty_meter.url, serial=fixed, options=PLAIN, timeout=5))
    await _until(lambda: _baud(pty_meter) == termios.B115200)
    await asyncio.sleep(0.7)
    pty_meter.send(GARBAGE)
    await asyncio.sleep(0.7)
    pty_meter.send(meter.frame(ListKind.STATUS)[0])
    result = await task
    assert result.success
    assert result.serial == fixed


async def test_probe_gives_up_after_every_setting(pty_meter: PtyMeter) -> None:
    """Garbage on every setting: the ring ends at the hard deadline with no_valid_frames."""
    with patch("custom_components.hanport.connection.PROBE_SWITCH_GRACE", 1.0):
        task = asyncio.create_task(
            async_probe(pty_meter.url, serial=None, options=PLAIN, timeout=1.5)
        )
        async with asyncio.timeout(10):
            while not task.done():
                await asyncio.sleep(0.6)
                pty_meter.send(GARBAGE)
        result = await task
    assert result.error is ProbeError.NO_VALID_FRAMES


# --- the running link ----------------------------------------------------------------


def _fire(hass: HomeAssistant, seconds: float) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))


async def test_backoff_doubles_to_a_minute_and_resets(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """Reopen attempts back off 1, 2, 4 ... 60 s; a good frame resets the backoff."""
    entry = await setup_entry(hass, make_entry(tcp_meter.url))
    connection = entry.runtime_data.connection
    await tcp_meter.wait_clients()
    port = tcp_meter.port
    await tcp_meter.stop()
    await wait_for(hass, lambda: not connection.connected)
    delays = [connection._delay]
    for failures in range(1, 7):
        _fire(hass, 61)  # past any pending backoff sleep
        await wait_for(hass, partial(lambda n: connection._open_failures == n, failures))
        delays.append(connection._delay)
    assert delays == [2, 4, 8, 16, 32, 60, 60]
    await tcp_meter.start(port)
    _fire(hass, 61)
    await wait_for(hass, lambda: connection.connected)
    await tcp_meter.wait_clients()
    tcp_meter.send(meter.frame(ListKind.POWER)[0])
    await wait_for(hass, lambda: connection._delay == 1)


async def test_a_serial_port_that_is_gone_is_retried_every_ten_seconds_at_most(
    hass: HomeAssistant,
) -> None:
    """An unplugged adapter: trying to open it is cheap, and a replug must be read soon."""
    pty = PtyMeter()
    entry = await setup_entry(hass, make_entry(pty.url))
    connection = entry.runtime_data.connection
    await wait_for(hass, lambda: connection.connected)
    pty.close()  # unplugged: the device node goes away
    _fire(hass, 61)  # past the first backoff (1 s): reopening fails
    await wait_for(hass, lambda: connection._open_failures == 1)
    delays = [connection._delay]
    for failures in range(2, 6):
        _fire(hass, 61)
        await wait_for(hass, partial(lambda n: connection._open_failures == n, failures))
        delays.append(connection._delay)
    assert delays == [4, 8, 10, 10, 10]  # the next waits: 4 s, 8 s, then 10 s at most


async def test_a_silent_link_is_reopened_promptly_however_long_the_silence(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """The watchdog closes a silent link that opened fine; it is reopened after 1 s each time.

    A backoff that doubled with every watchdog period would leave the link closed for up
    to a minute after the meter speaks again.
    """
    entry = await setup_entry(hass, make_entry(tcp_meter.url))
    connection = entry.runtime_data.connection
    await tcp_meter.wait_clients()
    for ended in range(1, 6):
        _fire(hass, 31 * ended)  # the silence goes on: the watchdog fires again
        await wait_for(hass, partial(lambda n: connection.reconnects >= n, ended))
        assert connection._delay == 2  # this reopen waits RECONNECT_MIN (1 s); then 2
        _fire(hass, 31 * ended + 1.5)
        await wait_for(hass, lambda: connection.connected)
        await tcp_meter.wait_clients(connections=ended + 1)
    tcp_meter.send(meter.frame(ListKind.POWER)[0])
    await wait_for(hass, lambda: connection.available)


async def test_runtime_detects_and_stores_serial_settings(
    hass: HomeAssistant, pty_meter: PtyMeter, meter: FakeMeter
) -> None:
    """Auto mode on a serial port: garbage at 8E1 -> the watchdog moves to 8N1 and stores it."""
    entry = await setup_entry(hass, make_entry(pty_meter.url))
    connection = entry.runtime_data.connection
    assert connection.settings.key == "2400_8E1"
    pty_meter.send(GARBAGE)
    await wait_for(hass, lambda: connection.bytes_received >= len(GARBAGE))
    _fire(hass, 31)
    await skip_backoff(hass, connection, ended=1)
    assert connection.settings.key == "2400_8N1"
    pty_meter.send(meter.frame(ListKind.STATUS, active_power_import=4321.0)[0])
    await wait_state(hass, "active_power_import", "4321.0")
    assert entry.data[CONF_SERIAL_DETECTED] == "2400_8N1"
    assert entry.runtime_data.connection is connection  # storing data did not reload


async def test_runtime_starts_with_detected_settings(
    hass: HomeAssistant, pty_meter: PtyMeter, meter: FakeMeter
) -> None:
    """What detection stored is tried first; a fixed setting is used alone."""
    entry = await setup_entry(
        hass, make_entry(pty_meter.url, data={CONF_SERIAL_DETECTED: "115200_8N1"})
    )
    connection = entry.runtime_data.connection
    assert connection.auto
    assert connection.settings.key == "115200_8N1"
    await _until(lambda: _baud(pty_meter) == termios.B115200)
    pty_meter.send(meter.frame(ListKind.POWER, active_power_import=77.0)[0])
    await wait_state(hass, "active_power_import", "77.0")
    assert entry.data[CONF_SERIAL_DETECTED] == "115200_8N1"


async def test_fixed_settings_never_rotate(hass: HomeAssistant, pty_meter: PtyMeter) -> None:
    entry = await setup_entry(hass, make_entry(pty_meter.url, data={CONF_SERIAL: "2400_8N1"}))
    connection = entry.runtime_data.connection
    assert not connection.auto
    pty_meter.send(GARBAGE)
    await wait_for(hass, lambda: connection.bytes_received > 0)
    _fire(hass, 31)
    await wait_for(hass, lambda: not connection.connected)
    assert connection.settings.key == "2400_8N1"
    assert CONF_SERIAL_DETECTED not in entry.data


async def test_silent_open_socket_is_reopened(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, meter: FakeMeter
) -> None:
    """A TCP bridge that stays open but silent is noticed and reopened."""
    entry = await setup_entry(hass, make_entry(tcp_meter.url))
    await tcp_meter.wait_clients()
    tcp_meter.send(meter.frame(ListKind.POWER)[0])
    await wait_state(hass, "active_power_import", "1234.0")
    _fire(hass, 31)
    await wait_state(hass, "active_power_import", STATE_UNAVAILABLE)
    await skip_backoff(hass, entry.runtime_data.connection, ended=1)
    await tcp_meter.wait_clients(connections=2)
    assert entry.runtime_data.connection.reconnects == 1


async def test_connection_stop_is_idempotent(tcp_meter: TcpMeterServer) -> None:
    """Stopping twice, or before the link task exists, is harmless."""
    link = HanConnection(
        url=tcp_meter.url,
        serial=None,
        detected=None,
        options=PLAIN,
        silence_timeout=30,
        on_reading=lambda r: None,
        on_reject=lambda r: None,
        on_available=lambda a: None,
        on_detected=lambda s: None,
    )
    await link.async_stop()
    await link.async_start()
    await tcp_meter.wait_clients()
    await link.async_stop()
    await link.async_stop()
    assert not link.connected
