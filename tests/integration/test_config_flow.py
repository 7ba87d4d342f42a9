"""Config and options flow, every step, against real frames on a real loopback port.

The meter is a loopback TCP bridge (or a pty for serial ports) playing frames built by
the project's encoder, and the flow's probe (``connection.async_probe``) listens to it
for real. Mocked, because it cannot run here: ``async_setup_entry`` in the user-flow
tests (the runtime is tested elsewhere; reconfigure and repairs use the real one), and
one probe that raises (an unexpected library failure cannot be produced on purpose).
Every result is also checked against translations/en.json: each step, field, field
description, selector option, error, abort reason and progress text the frontend will
look up exists, and every placeholder it uses is supplied.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import termios
import tty
from collections.abc import AsyncGenerator, Generator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_USB,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowManager, FlowResultType, InvalidData, section
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)
from serialx import SerialPortInfo

from custom_components.hanport import config_flow
from custom_components.hanport.config_flow import (
    OPTION_SECTIONS,
    OptionsSection,
    by_id_path,
    check_keys,
    custom_defaults,
    decode_options,
    meter_title,
    network_url,
    normalize_key,
    policy_of,
    serial_mode_of,
    usb_id_of_port,
    valid_url,
)
from custom_components.hanport.connection import ProbeError, ProbeResult
from custom_components.hanport.const import (
    CONF_AUTH_KEY,
    CONF_AVERAGE,
    CONF_CAPACITY_PEAKS,
    CONF_CAPACITY_STEPS,
    CONF_COUNTRY,
    CONF_CT_MULTIPLIER,
    CONF_INSTANT_POWER,
    CONF_KEY,
    CONF_MANUFACTURER,
    CONF_MAX_POWER,
    CONF_METER_ID,
    CONF_METER_TYPE,
    CONF_SERIAL,
    CONF_SERIAL_DETECTED,
    CONF_SILENCE_TIMEOUT,
    CONF_UPDATE_INTERVAL,
    CONF_URL,
    CONF_USB_ID,
    DOMAIN,
    SERIAL_AUTO,
)
from custom_components.hanport.han.encode import Layout, encode_reading
from custom_components.hanport.han.reading import ListKind, Protocol, Reading

from .conftest import METER_ID, OTHER_METER_ID, FakeMeter

TRANSLATIONS: dict[str, Any] = json.loads(
    (Path(config_flow.__file__).parent / "translations" / "en.json").read_text()
)
GUEK = "000102030405060708090A0B0C0D0E0F"
GAK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
WRONG = "F" * 32
OK_TIMEOUT = 5.0
"""Probe timeout when the meter answers: the probe returns at the first ID, long before."""
FAIL_TIMEOUT = 0.6
"""Probe timeout for the failure cases, which always listen to the end."""
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
DEFAULT_STEPS_TEXT = "2, 5, 10, 15, 20, 25, 50, 75, 100"


# --- translation checks -----------------------------------------------------------------


def _has_placeholders(text: str, given: Mapping[str, str] | None) -> None:
    missing = set(_PLACEHOLDER.findall(text)) - set(given or {})
    assert not missing, f"{text!r} needs {missing}, the flow gives {given}"


def _check_field(strings: Mapping[str, Any], name: str, validator: Any) -> None:
    assert name in strings.get("data", {}), f"no label for {name}"
    assert name in strings.get("data_description", {}), f"no data_description for {name}"
    config = getattr(validator, "config", None)
    if isinstance(config, dict) and (key := config.get("translation_key")):
        labels = TRANSLATIONS["selector"][key]["options"]
        for option in config["options"]:
            value = option["value"] if isinstance(option, dict) else option
            assert value in labels, f"selector {key} has no label for {value}"


def _serialize_schema(schema: Any) -> list[dict[str, Any]]:
    """Serialize a form schema as the HTTP/websocket API does for the frontend."""
    try:
        serialize = importlib.import_module("probatio").to_field_list  # HA 2026.10+
    except ImportError:  # Home Assistant before probatio
        serialize = importlib.import_module("voluptuous_serialize").convert
    fields: list[dict[str, Any]] = serialize(schema, custom_serializer=cv.custom_serializer)
    return fields


def check_result(result: Mapping[str, Any], strings: Mapping[str, Any]) -> None:
    """Fail when the frontend would find a string missing for ``result``."""
    kind = result["type"]
    placeholders = result.get("description_placeholders")
    if kind is FlowResultType.FORM:
        json.dumps(_serialize_schema(result["data_schema"]))  # what the UI receives
        step = strings["step"][result["step_id"]]
        assert step.get("title"), result["step_id"]
        _has_placeholders(step.get("description", ""), placeholders)
        fields: set[str] = set()
        for marker, validator in result["data_schema"].schema.items():
            name = str(marker)
            fields.add(name)
            if isinstance(validator, section):
                strings_of = step["sections"][name]
                assert strings_of.get("name")
                for inner, inner_validator in validator.schema.schema.items():
                    fields.add(str(inner))
                    _check_field(strings_of, str(inner), inner_validator)
            else:
                _check_field(step, name, validator)
        for field, error in (result.get("errors") or {}).items():
            assert field == "base" or field in fields, field
            _has_placeholders(strings["error"][error], placeholders)
    elif kind is FlowResultType.MENU:
        step = strings["step"][result["step_id"]]
        for option in result["menu_options"]:
            assert option in step["menu_options"]
    elif kind is FlowResultType.SHOW_PROGRESS:
        _has_placeholders(strings["progress"][result["progress_action"]], placeholders)
    elif kind is FlowResultType.ABORT:
        _has_placeholders(strings["abort"][result["reason"]], placeholders)


class Flow:
    """Drive one flow through its manager, checking every result's translations."""

    def __init__(
        self, hass: HomeAssistant, manager: FlowManager[Any, Any, Any], strings: Mapping[str, Any]
    ) -> None:
        self.hass = hass
        self.manager = manager
        self.strings = strings
        self.flow_id = ""

    def _check(self, result: Any) -> Any:
        check_result(result, self.strings)
        self.flow_id = result.get("flow_id", self.flow_id)
        return result

    async def init(self, handler: str, **kwargs: Any) -> Any:
        return self._check(await self.manager.async_init(handler, **kwargs))

    def adopt(self, result: Any) -> Any:
        """Continue a flow started elsewhere (e.g. by MockConfigEntry helpers)."""
        return self._check(result)

    async def configure(self, user_input: dict[str, Any] | None = None) -> Any:
        return self._check(await self.manager.async_configure(self.flow_id, user_input))

    async def probe(self, user_input: dict[str, Any] | None = None) -> Any:
        """Submit a form that starts the probe; return what follows the listening."""
        result = await self.configure(user_input)
        assert result["type"] is FlowResultType.SHOW_PROGRESS, result
        assert result["step_id"] == "probe"
        await self.hass.async_block_till_done()
        return await self.configure()


def config_flow_driver(hass: HomeAssistant) -> Flow:
    return Flow(hass, hass.config_entries.flow, TRANSLATIONS["config"])


# --- the meter side: a ser2net-like bridge and a pty ----------------------------------


class Bridge:
    """A loopback TCP bridge replaying ``payload`` every ``interval`` to its clients.

    ``single_client`` makes it behave like ser2net's default: a second connection
    is closed at once while one client is attached.
    """

    def __init__(self, *, single_client: bool = False) -> None:
        self.single_client = single_client
        self.payload = b""
        self.interval = 0.05
        self.accepted = 0
        self.refused = 0
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    @property
    def clients(self) -> int:
        return len(self._writers)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._pump = asyncio.create_task(self._run())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (task := asyncio.current_task()) is not None:
            self._handlers.add(task)
        if self.single_client:
            # The previous client's FIN and this connect can reach the loop in either
            # order; give the FIN a moment, as a real bridge's network latency does.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.3):
                    while self._writers:  # noqa: ASYNC110 - a set another task empties
                        await asyncio.sleep(0.01)
            if self._writers:
                self.refused += 1
                writer.close()
                return
        self.accepted += 1
        self._writers.add(writer)
        try:
            while await reader.read(1024):
                pass
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _run(self) -> None:
        while True:
            if self.payload:
                for writer in list(self._writers):
                    writer.write(self.payload)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Pty:
    """A pseudo-terminal: its slave path is what a USB serial adapter looks like."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self._termios = termios.tcgetattr(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.payload = b""
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pump = asyncio.create_task(self._run())

    def reset(self) -> None:
        """Restore the pty's line settings before it is opened again.

        After serialx closes a pty, the next tcsetattr on it fails with EINVAL until
        the settings are reset (a pty quirk; a USB serial adapter reopens fine).
        """
        termios.tcsetattr(self.slave, termios.TCSANOW, self._termios)

    async def _run(self) -> None:
        while True:
            if self.payload:
                with contextlib.suppress(BlockingIOError):
                    os.write(self.master, self.payload)
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture(autouse=True)
def _sockets(socket_enabled: None) -> None:
    """Loopback sockets for the bridge (autouse, so set up before it)."""


@pytest.fixture
async def bridge() -> AsyncGenerator[Bridge]:
    """A started loopback bridge (silent until a test sets ``payload``)."""
    server = Bridge()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def pty() -> AsyncGenerator[Pty]:
    """A pty replaying ``payload`` (silent until set)."""
    port = Pty()
    port.start()
    yield port
    await port.stop()


@pytest.fixture
def probe_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listen briefly: every failure case waits for the whole timeout."""
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", FAIL_TIMEOUT)


@pytest.fixture(autouse=True)
def _answering_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", OK_TIMEOUT)


@pytest.fixture
def mock_setup_entry() -> Generator[AsyncMock]:
    """The runtime is not under test in user flows (it has its own tests)."""
    with (
        patch("custom_components.hanport.async_setup_entry", return_value=True) as setup,
        patch("custom_components.hanport.async_unload_entry", return_value=True),
    ):
        yield setup


def status_frame(meter: FakeMeter) -> bytes:
    """List 2 of the meter: carries the meter ID."""
    return meter.frame(ListKind.STATUS)[0]


def power_frame(meter: FakeMeter) -> bytes:
    """List 1: power only, no meter ID."""
    return meter.frame(ListKind.POWER)[0]


def lg_meter() -> FakeMeter:
    """A Landis+Gyr E450 as Austrian grid companies run it: every frame encrypted."""
    return FakeMeter(layout=Layout.LG_E450_AT, manufacturer="Landis+Gyr")


def encrypted_frame(meter: FakeMeter, *, auth_key: str | None = None) -> bytes:
    reading = meter.reading(ListKind.ENERGY)
    return encode_reading(
        reading,
        meter.layout,
        key=bytes.fromhex(GUEK),
        auth_key=bytes.fromhex(auth_key) if auth_key else None,
    )


def closed_port_url() -> str:
    """A loopback port nobody listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"socket://127.0.0.1:{port}"


async def start_network(hass: HomeAssistant) -> Flow:
    flow = config_flow_driver(hass)
    result = await flow.init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["serial", "manual", "network"]
    result = await flow.configure({"next_step_id": "network"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "network"
    return flow


def network_input(bridge: Bridge, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": bridge.port, **extra}


# --- pure helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("  ", ""),
        (GUEK.lower(), GUEK),
        ("0x" + GUEK, GUEK),
        ("0001 0203 0405 0607 0809 0A0B 0C0D 0E0F", GUEK),
        ("00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f", GUEK),
        ("00-01-02-03-04-05-06-07-08-09-0A-0B-0C-0D-0E-0F", GUEK),
        (GUEK[:-1], None),
        (GUEK + "0", None),
        ("G" * 32, None),
    ],
)
def test_normalize_key(raw: str | None, expected: str | None) -> None:
    assert normalize_key(raw) == expected


def test_check_keys() -> None:
    assert check_keys({}) == ({CONF_KEY: "", CONF_AUTH_KEY: ""}, {})
    assert check_keys({CONF_KEY: GUEK, CONF_AUTH_KEY: GAK.lower()}) == (
        {CONF_KEY: GUEK, CONF_AUTH_KEY: GAK},
        {},
    )
    assert check_keys({CONF_KEY: "12", CONF_AUTH_KEY: "zz"})[1] == {
        CONF_KEY: "invalid_key",
        CONF_AUTH_KEY: "invalid_key",
    }
    # A GAK without a GUEK cannot decrypt anything.
    assert check_keys({CONF_AUTH_KEY: GAK})[1] == {CONF_KEY: "key_required"}


def test_decode_options() -> None:
    options = decode_options({CONF_KEY: GUEK, CONF_AUTH_KEY: GAK, CONF_COUNTRY: "NO"})
    assert options.key == bytes.fromhex(GUEK)
    assert options.auth_key == bytes.fromhex(GAK)
    assert options.country == "NO"
    bare = decode_options({CONF_KEY: "", CONF_COUNTRY: ""})
    assert (bare.key, bare.auth_key, bare.country) == (None, None, None)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("/dev/ttyUSB0", True),
        ("/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0", True),
        ("COM3", True),
        ("com12", True),
        ("socket://192.168.1.20:8888", True),
        ("tcp://192.168.1.20:8888", True),
        ("RFC2217://192.168.1.20:4001", True),
        ("esphome://192.168.1.30:6053/?port_name=han", True),
        ("esphome-hass://entry/port", True),
        ("socket://", False),
        ("http://192.168.1.20", False),
        ("ttyUSB0", False),
        ("COM", False),
        ("", False),
    ],
)
def test_valid_url(url: str, ok: bool) -> None:
    assert valid_url(url) is ok


def test_network_url() -> None:
    assert network_url(" 192.168.1.20 ", 8888) == "socket://192.168.1.20:8888"
    assert network_url("bridge.local", 23) == "socket://bridge.local:23"
    assert network_url("fe80::1", 23) == "socket://[fe80::1]:23"
    assert network_url("[fe80::1]", 23) == "socket://[fe80::1]:23"


def test_by_id_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    try:
        device = os.ttyname(slave)  # a real /dev path
        by_id = tmp_path / "by-id"
        monkeypatch.setattr(config_flow, "BY_ID_DIR", str(by_id))
        # No by-id directory (containers, Windows): the path stays as it is.
        assert by_id_path(device) == device
        by_id.mkdir()
        (by_id / "a-plain-file").write_text("")
        (by_id / "usb-other-if00").symlink_to("/dev/null")
        assert by_id_path(device) == device  # no link points at it
        (by_id / "usb-HAN_reader-if00").symlink_to(device)
        assert by_id_path(device) == str(by_id / "usb-HAN_reader-if00")
        assert by_id_path("socket://127.0.0.1:1") == "socket://127.0.0.1:1"
    finally:
        os.close(master)
        os.close(slave)


def port_info(
    device: str,
    *,
    vid: int | None = 0x1A86,
    pid: int | None = 0x7523,
    serial_number: str | None = "A1B2",
) -> SerialPortInfo:
    """A port as serialx lists it (the USB adapter of ``usb_info`` by default)."""
    return SerialPortInfo(
        device=device,
        resolved_device=os.path.realpath(device),
        vid=vid,
        pid=pid,
        serial_number=serial_number,
        manufacturer="QinHeng",
        product="USB M-Bus slave",
        bcd_device=None,
        interface_description=None,
        interface_num=None,
    )


def test_usb_id_of_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity is found through by-id links, written as USB discovery reports it."""
    device = tmp_path / "ttyUSB3"
    device.touch()
    link = tmp_path / "usb-1a86_USB_Serial_A1B2-if00-port0"
    link.symlink_to(device)
    ports = [port_info("/dev/ttyS0", vid=None, pid=None, serial_number=None), port_info(str(link))]
    monkeypatch.setattr(config_flow, "list_serial_ports", lambda: ports)
    assert usb_id_of_port(str(device)) == ADAPTER
    assert usb_id_of_port(str(tmp_path / "ttyUSB9")) is None  # not listed
    assert usb_id_of_port("socket://127.0.0.1:1") is None  # not a device
    ports[1] = port_info(str(link), vid=0x403, pid=0x6001, serial_number="FT1")
    assert usb_id_of_port(str(device)) == "usb:0403:6001:FT1"
    ports[1] = port_info(str(link), serial_number=None)
    assert usb_id_of_port(str(device)) is None  # a model's adapters cannot be told apart

    def no_port_list() -> list[SerialPortInfo]:
        raise FileNotFoundError("/sys/class/tty")

    monkeypatch.setattr(config_flow, "list_serial_ports", no_port_list)
    assert usb_id_of_port(str(device)) is None


def test_serial_mode_and_custom_defaults() -> None:
    assert serial_mode_of(None) == "auto"
    assert serial_mode_of("auto") == "auto"
    assert serial_mode_of("2400_8N1") == "2400_8N1"
    assert serial_mode_of("9600_7O2") == "custom"
    assert custom_defaults(None) == {}
    assert custom_defaults("auto") == {}
    assert custom_defaults("9600_7O2") == {
        "baudrate": "9600",
        "byte_size": "7",
        "parity": "O",
        "stopbits": "2",
    }


def _reading(manufacturer: str | None, meter_type: str | None) -> Reading:
    return Reading(
        protocol=Protocol.HDLC,
        manufacturer=manufacturer,
        meter_id="123",
        meter_type=meter_type,
        list_version=None,
        meter_time=None,
        values=MappingProxyType({}),
    )


def test_meter_title() -> None:
    assert meter_title(ProbeResult(None, _reading("Kaifa", "MA304H4"))) == "Kaifa MA304H4"
    assert meter_title(ProbeResult(None, _reading("Landis+Gyr", None))) == "Landis+Gyr"
    assert meter_title(ProbeResult(None, _reading(None, None))) == "HAN meter 123"
    assert meter_title(ProbeResult(ProbeError.NO_DATA)) == "HAN meter"


def test_policy_of() -> None:
    assert policy_of({}) == "every_frame"
    assert policy_of({CONF_UPDATE_INTERVAL: 0, CONF_AVERAGE: True}) == "every_frame"
    assert policy_of({CONF_UPDATE_INTERVAL: 30, CONF_AVERAGE: True}) == "average"
    assert policy_of({CONF_UPDATE_INTERVAL: 30, CONF_AVERAGE: False}) == "min_interval"


# --- user flow: network --------------------------------------------------------------


async def test_network_creates_entry(
    hass: HomeAssistant, bridge: Bridge, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    """A bridge with an Aidon behind it: entry titled by maker and model, ID as unique ID."""
    hass.config.country = "NO"
    bridge.payload = status_frame(meter)
    flow = await start_network(hass)
    result = await flow.probe(network_input(bridge, country="NO"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Aidon 6534"
    assert result["result"].unique_id == METER_ID
    assert result["data"] == {
        CONF_URL: bridge.url,
        CONF_USB_ID: None,  # a bridge is no USB adapter
        CONF_SERIAL: SERIAL_AUTO,
        CONF_SERIAL_DETECTED: None,  # nothing to detect on a raw TCP socket
        CONF_COUNTRY: "NO",
        CONF_KEY: "",
        CONF_AUTH_KEY: "",
        CONF_METER_ID: METER_ID,
        CONF_MANUFACTURER: "Aidon",
        CONF_METER_TYPE: "6534",
    }
    assert result["options"] == {}
    assert len(mock_setup_entry.mock_calls) == 1


async def test_country_defaults_to_home_assistant(hass: HomeAssistant) -> None:
    import voluptuous as vol

    hass.config.country = "SE"
    flow = await start_network(hass)
    result = await flow.configure()  # no input: the same form again
    country = next(m for m in result["data_schema"].schema if str(m) == "country")
    assert country.default() == "SE"
    hass.config.country = None
    flow = await start_network(hass)
    result = await flow.configure()
    country = next(m for m in result["data_schema"].schema if str(m) == "country")
    assert country.default is vol.UNDEFINED


async def test_cannot_open_then_recover(
    hass: HomeAssistant, bridge: Bridge, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    """Nothing listens on the port: say so on the same form, then succeed when fixed."""
    bridge.payload = status_frame(meter)
    flow = await start_network(hass)
    port = int(closed_port_url().rsplit(":", 1)[1])
    result = await flow.probe({"host": "127.0.0.1", "port": port})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "network"
    assert result["errors"] == {"base": "cannot_open"}
    result = await flow.probe(network_input(bridge))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_no_data_then_recover(
    hass: HomeAssistant,
    bridge: Bridge,
    meter: FakeMeter,
    mock_setup_entry: AsyncMock,
    probe_timeout: None,
) -> None:
    """The port opens but stays silent (port not activated, cable): no_data."""
    flow = await start_network(hass)
    result = await flow.probe(network_input(bridge))
    assert result["errors"] == {"base": "no_data"}
    assert result["description_placeholders"]["url"] == bridge.url
    bridge.payload = status_frame(meter)
    result = await flow.probe(network_input(bridge))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_no_valid_frames_then_recover(
    hass: HomeAssistant,
    bridge: Bridge,
    meter: FakeMeter,
    mock_setup_entry: AsyncMock,
    probe_timeout: None,
) -> None:
    """Bytes, but never a frame that passes its checksum: wrong settings or a mangling bridge."""
    frame = status_frame(meter)
    # Every frame damaged (as a wrong parity setting or a meddling bridge does), plus noise.
    damaged = bytearray(frame)
    damaged[len(damaged) // 2] ^= 0x10
    bridge.payload = bytes(damaged) + bytes(range(0x30, 0x60))
    flow = await start_network(hass)
    result = await flow.probe(network_input(bridge))
    assert result["errors"] == {"base": "no_valid_frames"}
    bridge.payload = frame
    result = await flow.probe(network_input(bridge))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_no_meter_id_then_recover(
    hass: HomeAssistant,
    bridge: Bridge,
    meter: FakeMeter,
    mock_setup_entry: AsyncMock,
    probe_timeout: None,
) -> None:
    """Only list 1 (power, no ID) within the time: no_meter_id, then list 2 arrives."""
    bridge.payload = power_frame(meter)
    flow = await start_network(hass)
    result = await flow.probe(network_input(bridge))
    assert result["errors"] == {"base": "no_meter_id"}
    bridge.payload = power_frame(meter) + status_frame(meter)
    result = await flow.probe(network_input(bridge))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == METER_ID


async def test_unexpected_probe_failure(
    hass: HomeAssistant, bridge: Bridge, mock_setup_entry: AsyncMock
) -> None:
    """A bug in the probe shows 'unknown' instead of a spinner that never ends."""
    flow = await start_network(hass)
    # Mocked: a crash inside the library cannot be produced with real bytes. It fails
    # at once, so the form comes straight back without a progress step.
    with patch.object(config_flow, "async_probe", side_effect=RuntimeError("boom")):
        result = await flow.configure(network_input(bridge))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}


# --- encrypted meters ---------------------------------------------------------------


async def test_encrypted_meter_keys(
    hass: HomeAssistant,
    bridge: Bridge,
    mock_setup_entry: AsyncMock,
    monkeypatch: pytest.MonkeyPatch,
    probe_timeout: None,
) -> None:
    """Encrypted frames lead to the key step; format, missing and wrong keys are explained."""
    lg = lg_meter()
    bridge.payload = encrypted_frame(lg)
    flow = await start_network(hass)
    result = await flow.probe(network_input(bridge))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "keys"
    assert result["errors"] is None
    assert result["description_placeholders"]["url"] == bridge.url

    result = await flow.configure({CONF_KEY: "123", CONF_AUTH_KEY: "xyz"})
    assert result["step_id"] == "keys"
    assert result["errors"] == {CONF_KEY: "invalid_key", CONF_AUTH_KEY: "invalid_key"}

    result = await flow.configure({CONF_KEY: " ", CONF_AUTH_KEY: GAK})
    assert result["errors"] == {CONF_KEY: "key_required"}

    result = await flow.probe({CONF_KEY: WRONG})
    assert result["step_id"] == "keys"
    assert result["errors"] == {"base": "bad_key"}

    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", OK_TIMEOUT)
    spaced = " ".join(GUEK[i : i + 4] for i in range(0, 32, 4)).lower()
    result = await flow.probe({CONF_KEY: spaced})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Landis+Gyr"
    assert result["data"][CONF_KEY] == GUEK
    assert result["data"][CONF_AUTH_KEY] == ""
    assert result["result"].unique_id == METER_ID


async def test_encrypted_meter_with_authentication_key(
    hass: HomeAssistant,
    bridge: Bridge,
    mock_setup_entry: AsyncMock,
    monkeypatch: pytest.MonkeyPatch,
    probe_timeout: None,
) -> None:
    """A meter that authenticates with a GAK: a wrong GAK is a key error too."""
    bridge.payload = encrypted_frame(lg_meter(), auth_key=GAK)
    flow = await start_network(hass)
    result = await flow.probe(network_input(bridge))
    assert result["step_id"] == "keys"
    result = await flow.probe({CONF_KEY: GUEK, CONF_AUTH_KEY: WRONG})
    assert result["errors"] == {"base": "bad_key"}
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", OK_TIMEOUT)
    result = await flow.probe({CONF_KEY: GUEK, CONF_AUTH_KEY: GAK})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_AUTH_KEY] == GAK


async def test_key_step_port_errors_stay_on_key_step(
    hass: HomeAssistant, bridge: Bridge, mock_setup_entry: AsyncMock, probe_timeout: None
) -> None:
    """The meter goes quiet after asking for keys: the key step shows no_data."""
    bridge.payload = encrypted_frame(lg_meter())
    flow = await start_network(hass)
    await flow.probe(network_input(bridge))
    bridge.payload = b""
    result = await flow.probe({CONF_KEY: GUEK})
    assert result["step_id"] == "keys"
    assert result["errors"] == {"base": "no_data"}


# --- duplicates ---------------------------------------------------------------------


async def test_same_meter_on_another_port_aborts(
    hass: HomeAssistant, bridge: Bridge, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    """The meter is already set up (elsewhere): abort, and leave the entry alone."""
    existing = MockConfigEntry(
        domain=DOMAIN, unique_id=METER_ID, data={CONF_URL: "/dev/ttyUSB9"}, title="Aidon 6534"
    )
    existing.add_to_hass(hass)
    bridge.payload = status_frame(meter)
    flow = await start_network(hass)
    result = await flow.probe(network_input(bridge))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert existing.data[CONF_URL] == "/dev/ttyUSB9"


async def test_port_in_use_aborts_before_listening(
    hass: HomeAssistant, bridge: Bridge, mock_setup_entry: AsyncMock
) -> None:
    """A port another entry reads cannot be probed (it would steal that entry's bytes)."""
    MockConfigEntry(
        domain=DOMAIN, unique_id=OTHER_METER_ID, data={CONF_URL: bridge.url}
    ).add_to_hass(hass)
    flow = await start_network(hass)
    result = await flow.configure(network_input(bridge))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert bridge.accepted == 0


async def test_ignored_meter_can_be_added(
    hass: HomeAssistant, bridge: Bridge, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id=METER_ID, source=SOURCE_IGNORE).add_to_hass(hass)
    bridge.payload = status_frame(meter)
    flow = await start_network(hass)
    result = await flow.probe(network_input(bridge))
    assert result["type"] is FlowResultType.CREATE_ENTRY


# --- user flow: serial and manual ------------------------------------------------------


async def start_serial(hass: HomeAssistant) -> Flow:
    flow = config_flow_driver(hass)
    await flow.init(DOMAIN, context={"source": SOURCE_USER})
    result = await flow.configure({"next_step_id": "serial"})
    assert result["step_id"] == "serial"
    return flow


@pytest.mark.usefixtures("mock_setup_entry")
async def test_serial_port_auto_detects_settings(
    hass: HomeAssistant,
    pty: Pty,
    meter: FakeMeter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A serial adapter: the by-id name is stored, and the setting that worked."""
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    link = by_id / "usb-HAN_M-Bus_reader-if00-port0"
    link.symlink_to(pty.path)
    monkeypatch.setattr(config_flow, "BY_ID_DIR", str(by_id))
    pty.payload = status_frame(meter)
    flow = await start_serial(hass)
    result = await flow.probe({CONF_URL: pty.path, "serial": "auto"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == str(link)
    assert result["data"][CONF_SERIAL] == SERIAL_AUTO
    assert result["data"][CONF_SERIAL_DETECTED] == "2400_8E1"


async def test_serial_fixed_setting(
    hass: HomeAssistant, pty: Pty, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    pty.payload = status_frame(meter)
    flow = await start_serial(hass)
    result = await flow.probe({CONF_URL: pty.path, "serial": "2400_8N1", "country": "DK"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SERIAL] == "2400_8N1"
    assert result["data"][CONF_SERIAL_DETECTED] == "2400_8N1"
    assert result["data"][CONF_COUNTRY] == "DK"


async def test_serial_custom_setting_error_and_recovery(
    hass: HomeAssistant,
    pty: Pty,
    meter: FakeMeter,
    mock_setup_entry: AsyncMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Custom settings: their own step; after an error the form keeps the choice."""
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", FAIL_TIMEOUT)
    flow = await start_serial(hass)
    result = await flow.configure({CONF_URL: pty.path, "serial": "custom"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "serial_custom"
    assert result["description_placeholders"]["url"] == pty.path
    custom = {"baudrate": "9600", "byte_size": "8", "parity": "E", "stopbits": "2"}
    result = await flow.probe(custom)
    assert result["step_id"] == "serial"
    assert result["errors"] == {"base": "no_data"}
    # What the user chose is shown again ...
    suggested = {
        str(marker): marker.description["suggested_value"]
        for marker in result["data_schema"].schema
        if marker.description
    }
    assert suggested["serial"] == "custom"
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", OK_TIMEOUT)
    pty.payload = status_frame(meter)
    pty.reset()
    result = await flow.configure({CONF_URL: pty.path, "serial": "custom"})
    # ... including the custom values.
    suggested = {
        str(marker): marker.description["suggested_value"]
        for marker in result["data_schema"].schema
        if marker.description
    }
    assert suggested == custom
    result = await flow.probe(custom)
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    assert result["data"][CONF_SERIAL] == "9600_8E2"
    assert result["data"][CONF_SERIAL_DETECTED] == "9600_8E2"


async def test_manual_url(
    hass: HomeAssistant, bridge: Bridge, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    """A typed URL: nonsense is refused on the field; a socket URL works like the bridge."""
    bridge.payload = status_frame(meter)
    flow = config_flow_driver(hass)
    await flow.init(DOMAIN, context={"source": SOURCE_USER})
    result = await flow.configure({"next_step_id": "manual"})
    assert result["step_id"] == "manual"
    result = await flow.configure({CONF_URL: "http://example.com", "serial": "auto"})
    assert result["errors"] == {CONF_URL: "invalid_url"}
    result = await flow.probe({CONF_URL: f"  {bridge.url} ", "serial": "auto"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == bridge.url


# --- USB discovery ------------------------------------------------------------------


ADAPTER = "usb:1A86:7523:A1B2"
"""The identity an entry keeps of the adapter ``usb_info`` describes."""


def usb_info(device: str, serial_number: str | None = "A1B2") -> UsbServiceInfo:
    return UsbServiceInfo(
        device=device,
        vid="1A86",
        pid="7523",
        serial_number=serial_number,
        manufacturer="QinHeng",
        description="USB M-Bus slave",
    )


async def test_usb_discovery_confirm_and_probe(
    hass: HomeAssistant, pty: Pty, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    pty.payload = status_frame(meter)
    flow = config_flow_driver(hass)
    result = await flow.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "usb_confirm"
    assert result["description_placeholders"]["name"] == "USB M-Bus slave (QinHeng)"
    progress = hass.config_entries.flow.async_progress()
    assert progress[0]["context"]["title_placeholders"] == {"name": "USB M-Bus slave (QinHeng)"}
    result = await flow.probe({"serial": "auto"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == METER_ID
    assert result["data"][CONF_URL] == pty.path
    assert result["data"][CONF_USB_ID] == ADAPTER


async def test_usb_discovery_without_description(
    hass: HomeAssistant, pty: Pty, mock_setup_entry: AsyncMock
) -> None:
    info = UsbServiceInfo(
        device=pty.path,
        vid="0403",
        pid="6001",
        serial_number=None,
        manufacturer=None,
        description=None,
    )
    flow = config_flow_driver(hass)
    result = await flow.init(DOMAIN, context={"source": SOURCE_USB}, data=info)
    assert result["description_placeholders"]["name"] == pty.path


async def test_usb_discovery_port_already_configured(hass: HomeAssistant, pty: Pty) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id=METER_ID, data={CONF_URL: pty.path}).add_to_hass(hass)
    flow = config_flow_driver(hass)
    result = await flow.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_usb_discovery_once_per_adapter(hass: HomeAssistant, pty: Pty) -> None:
    """A second discovery of the same adapter while the first is open, or once ignored."""
    flow = config_flow_driver(hass)
    await flow.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    again = config_flow_driver(hass)
    result = await again.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_in_progress"
    hass.config_entries.flow.async_abort(flow.flow_id)
    MockConfigEntry(
        domain=DOMAIN, unique_id="usb:1A86:7523:A1B2", source=SOURCE_IGNORE
    ).add_to_hass(hass)
    result = await again.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_usb_discovery_moves_existing_meter(
    hass: HomeAssistant, pty: Pty, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    """The known meter answers on a new adapter: the entry follows it to the new port."""
    existing = MockConfigEntry(
        domain=DOMAIN,
        unique_id=METER_ID,
        title="Aidon 6534",
        data={
            CONF_URL: "/dev/serial/by-id/usb-old-adapter",
            CONF_USB_ID: "usb:1A86:7523:OLD1",
            CONF_SERIAL: SERIAL_AUTO,
        },
    )
    existing.add_to_hass(hass)
    pty.payload = status_frame(meter)
    flow = config_flow_driver(hass)
    await flow.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    result = await flow.probe({"serial": "auto"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert existing.data[CONF_URL] == pty.path
    assert existing.data[CONF_USB_ID] == ADAPTER  # the new adapter moves it from now on
    assert existing.data[CONF_SERIAL] == SERIAL_AUTO


def adapter_entry(url: str, **data: Any) -> MockConfigEntry:
    """An entry set up through the adapter of ``usb_info``, then at ``url``."""
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id=METER_ID,
        title="Aidon 6534",
        data={
            CONF_URL: url,
            CONF_USB_ID: ADAPTER,
            CONF_SERIAL: SERIAL_AUTO,
            CONF_COUNTRY: "",
            CONF_KEY: "",
            CONF_AUTH_KEY: "",
            CONF_METER_ID: METER_ID,
            **data,
        },
    )


@pytest.mark.parametrize(
    "old_url",
    ["/dev/ttyUSB0", "/dev/serial/by-id/usb-1a86_USB_Serial_A1B2-if00-port0"],
    ids=["device-name", "by-id-name"],
)
async def test_usb_rediscovery_moves_entry(
    hass: HomeAssistant, pty: Pty, mock_setup_entry: AsyncMock, old_url: str
) -> None:
    """The entry's adapter shows up at another path: the entry follows it, nothing is offered."""
    entry = adapter_entry(old_url)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    before = dict(entry.data)
    flow = config_flow_driver(hass)
    result = await flow.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {**before, CONF_URL: pty.path}
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == 2  # reloaded on the new path
    assert entry.state is ConfigEntryState.LOADED
    assert not hass.config_entries.flow.async_progress()


async def test_usb_rediscovery_never_takes_another_entrys_port(
    hass: HomeAssistant, pty: Pty
) -> None:
    """The adapter now sits where another entry reads: neither entry is changed."""
    entry = adapter_entry("/dev/ttyUSB0")
    entry.add_to_hass(hass)
    MockConfigEntry(domain=DOMAIN, unique_id=OTHER_METER_ID, data={CONF_URL: pty.path}).add_to_hass(
        hass
    )
    flow = config_flow_driver(hass)
    result = await flow.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_URL] == "/dev/ttyUSB0"


async def test_usb_discovery_other_adapter_is_offered(hass: HomeAssistant, pty: Pty) -> None:
    """Only the same adapter on a device path moves an entry; others are offered as new."""
    entries = [
        adapter_entry("/dev/ttyUSB0", **{CONF_USB_ID: "usb:1A86:7523:OTHER"}),  # other serial
        adapter_entry("socket://192.0.2.7:3001"),  # a bridge never follows an adapter
        adapter_entry("/dev/ttyUSB1", **{CONF_USB_ID: None}),  # identity unknown
    ]
    for number, entry in enumerate(entries):
        entry.add_to_hass(hass)
        hass.config_entries.async_update_entry(entry, unique_id=f"meter{number}")
    urls = [entry.data[CONF_URL] for entry in entries]
    flow = config_flow_driver(hass)
    result = await flow.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "usb_confirm"
    # An adapter without a serial number cannot be told from others of its model.
    again = config_flow_driver(hass)
    info = usb_info(pty.path, serial_number=None)
    result = await again.init(DOMAIN, context={"source": SOURCE_USB}, data=info)
    assert result["type"] is FlowResultType.FORM
    assert [entry.data[CONF_URL] for entry in entries] == urls


async def test_picked_port_keeps_its_adapter(
    hass: HomeAssistant,
    pty: Pty,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mock_setup_entry: AsyncMock,
) -> None:
    """A port picked from the list keeps its USB identity: discovery moves the entry later."""
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    link = by_id / "usb-1a86_USB_Serial_A1B2-if00-port0"
    link.symlink_to(pty.path)
    monkeypatch.setattr(config_flow, "BY_ID_DIR", str(by_id))
    ports = [port_info("/dev/ttyS0", vid=None, pid=None, serial_number=None), port_info(str(link))]
    monkeypatch.setattr(config_flow, "list_serial_ports", lambda: ports)
    pty.payload = status_frame(FakeMeter())
    flow = await start_serial(hass)
    result = await flow.probe({CONF_URL: pty.path, "serial": "auto"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == str(link)
    assert result["data"][CONF_USB_ID] == ADAPTER
    entry = result["result"]
    # A firmware update renames the adapter: its by-id link changes.
    link.unlink()
    renamed = by_id / "usb-1a86_USB2.0-Serial_A1B2-if00-port0"
    renamed.symlink_to(pty.path)
    again = config_flow_driver(hass)
    result = await again.init(DOMAIN, context={"source": SOURCE_USB}, data=usb_info(pty.path))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_URL] == str(renamed)
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == 2


async def test_reconfigure_to_bridge_forgets_adapter(
    hass: HomeAssistant, bridge: Bridge, meter: FakeMeter, mock_setup_entry: AsyncMock
) -> None:
    """The meter moved from a USB adapter to a bridge: the adapter no longer moves the entry."""
    entry = adapter_entry("/dev/ttyUSB0")
    entry.add_to_hass(hass)
    bridge.payload = status_frame(meter)
    flow = config_flow_driver(hass)
    result = flow.adopt(await entry.start_reconfigure_flow(hass))
    result = await flow.probe({CONF_URL: bridge.url, "serial": "auto"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == bridge.url
    assert entry.data[CONF_USB_ID] is None
    again = config_flow_driver(hass)
    info = usb_info("/dev/ttyUSB0")
    result = await again.init(DOMAIN, context={"source": SOURCE_USB}, data=info)
    assert result["step_id"] == "usb_confirm"
    assert entry.data[CONF_URL] == bridge.url


# --- reconfigure (the real runtime holds the port) -------------------------------------


@pytest.fixture
async def single_bridge() -> AsyncGenerator[Bridge]:
    """A bridge that, like ser2net, serves one client at a time."""
    server = Bridge(single_client=True)
    await server.start()
    yield server
    await server.stop()


async def loaded_entry(hass: HomeAssistant, url: str, **data: Any) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Aidon 6534",
        unique_id=METER_ID,
        data={
            CONF_URL: url,
            CONF_SERIAL: SERIAL_AUTO,
            CONF_COUNTRY: "",
            CONF_KEY: "",
            CONF_AUTH_KEY: "",
            CONF_METER_ID: METER_ID,
            **data,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def wait_loaded(hass: HomeAssistant, entry: ConfigEntry) -> None:
    async with asyncio.timeout(10):
        while entry.state is not ConfigEntryState.LOADED:
            await hass.async_block_till_done()
            await asyncio.sleep(0.01)


async def start_reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[Flow, Any]:
    flow = config_flow_driver(hass)
    result = flow.adopt(await entry.start_reconfigure_flow(hass))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    return flow, result


async def test_reconfigure_same_port_new_keys(hass: HomeAssistant, single_bridge: Bridge) -> None:
    """Keys changed on a one-client bridge: the entry lets go of the port while we listen."""
    lg = lg_meter()
    single_bridge.payload = encrypted_frame(lg)
    entry = await loaded_entry(hass, single_bridge.url, **{CONF_KEY: WRONG})
    flow, result = await start_reconfigure(hass, entry)
    suggested = {
        str(marker): marker.description["suggested_value"]
        for marker in result["data_schema"].schema
        if marker.description
    }
    assert suggested[CONF_URL] == single_bridge.url
    assert suggested[CONF_KEY] == WRONG
    assert suggested["serial"] == "auto"

    result = await flow.configure({CONF_URL: "ftp://nope", "serial": "auto"})
    assert result["errors"] == {CONF_URL: "invalid_url"}
    result = await flow.configure({CONF_URL: single_bridge.url, "serial": "auto", CONF_KEY: "1"})
    assert result["errors"] == {CONF_KEY: "invalid_key"}

    result = await flow.probe({CONF_URL: single_bridge.url, "serial": "auto", CONF_KEY: GUEK})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert single_bridge.refused == 0  # the probe never had to share the bridge
    assert entry.data[CONF_KEY] == GUEK
    assert entry.data[CONF_METER_ID] == METER_ID
    await wait_loaded(hass, entry)


async def test_reconfigure_wrong_key_keeps_entry(
    hass: HomeAssistant, single_bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong key: error on the form, nothing stored, the entry runs again meanwhile."""
    single_bridge.payload = encrypted_frame(lg_meter())
    entry = await loaded_entry(hass, single_bridge.url, **{CONF_KEY: GUEK})
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", FAIL_TIMEOUT)
    flow, _ = await start_reconfigure(hass, entry)
    result = await flow.probe({CONF_URL: single_bridge.url, "serial": "auto", CONF_KEY: WRONG})
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {"base": "bad_key"}
    assert entry.data[CONF_KEY] == GUEK
    await wait_loaded(hass, entry)


async def test_reconfigure_new_port_and_encryption_appears(
    hass: HomeAssistant, bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moved to another bridge whose meter now encrypts: keys asked, then stored."""
    old = Bridge()
    await old.start()
    try:
        entry = await loaded_entry(hass, old.url)
    finally:
        await old.stop()
    bridge.payload = encrypted_frame(lg_meter())
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", FAIL_TIMEOUT)
    flow, _ = await start_reconfigure(hass, entry)
    result = await flow.probe({CONF_URL: bridge.url, "serial": "2400_8N1"})
    assert result["step_id"] == "keys"
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", OK_TIMEOUT)
    result = await flow.probe({CONF_KEY: GUEK})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == bridge.url
    assert entry.data[CONF_SERIAL] == "2400_8N1"
    assert entry.data[CONF_KEY] == GUEK
    await wait_loaded(hass, entry)


async def test_reconfigure_other_meter_aborts(
    hass: HomeAssistant, bridge: Bridge, meter: FakeMeter
) -> None:
    """Another meter answers: abort with both IDs, nothing changed, entry running again."""
    bridge.payload = status_frame(meter)
    entry = await loaded_entry(hass, bridge.url)
    other = FakeMeter(meter_id=OTHER_METER_ID)
    other_bridge = Bridge()
    await other_bridge.start()
    other_bridge.payload = status_frame(other)
    try:
        flow, _ = await start_reconfigure(hass, entry)
        result = await flow.probe({CONF_URL: other_bridge.url, "serial": "auto"})
    finally:
        await other_bridge.stop()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_meter"
    assert result["description_placeholders"] == {"found": OTHER_METER_ID, "expected": METER_ID}
    assert entry.data[CONF_URL] == bridge.url
    await wait_loaded(hass, entry)


async def test_reconfigure_custom_serial_is_suggested(
    hass: HomeAssistant, bridge: Bridge, meter: FakeMeter
) -> None:
    bridge.payload = status_frame(meter)
    entry = await loaded_entry(hass, bridge.url, **{CONF_SERIAL: "4800_8O1"})
    flow, result = await start_reconfigure(hass, entry)
    result = await flow.configure({CONF_URL: bridge.url, "serial": "custom"})
    assert result["step_id"] == "serial_custom"
    suggested = {
        str(marker): marker.description["suggested_value"]
        for marker in result["data_schema"].schema
        if marker.description
    }
    assert suggested == {"baudrate": "4800", "byte_size": "8", "parity": "O", "stopbits": "1"}
    result = await flow.probe(
        {"baudrate": "4800", "byte_size": "8", "parity": "O", "stopbits": "1"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_SERIAL] == "4800_8O1"
    await wait_loaded(hass, entry)


async def test_closing_reconfigure_dialog_restores_entry(
    hass: HomeAssistant, single_bridge: Bridge
) -> None:
    """The user closes the dialog while we listen: the paused entry is set up again."""
    entry = await loaded_entry(hass, single_bridge.url)
    flow, _ = await start_reconfigure(hass, entry)
    result = await flow.configure({CONF_URL: single_bridge.url, "serial": "auto"})
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    async with asyncio.timeout(10):
        while entry.state is not ConfigEntryState.NOT_LOADED:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    hass.config_entries.flow.async_abort(flow.flow_id)
    await wait_loaded(hass, entry)


# --- options ------------------------------------------------------------------------


async def start_options(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[Flow, Any]:
    flow = Flow(hass, hass.config_entries.options, TRANSLATIONS["options"])
    result = await flow.init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    return flow, result


def section_defaults(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for marker, validator in result["data_schema"].schema.items():
        inner = {}
        for field in validator.schema.schema:
            if callable(getattr(field, "default", None)):
                inner[str(field)] = field.default()
            elif field.description:
                inner[str(field)] = field.description.get("suggested_value")
        out[str(marker)] = inner
    return out


def options_input(
    *,
    ct: float = 1.0,
    country: str | None = None,
    policy: str = "every_frame",
    interval: float = 10,
    instant: bool = True,
    silence: float = 30,
    peaks: float = 3,
    steps: str = DEFAULT_STEPS_TEXT,
    max_power: float | None = None,
) -> dict[str, Any]:
    measurement: dict[str, Any] = {CONF_CT_MULTIPLIER: ct}
    if country is not None:
        measurement[CONF_COUNTRY] = country
    accounting: dict[str, Any] = {CONF_CAPACITY_PEAKS: peaks, CONF_CAPACITY_STEPS: steps}
    if max_power is not None:
        accounting[CONF_MAX_POWER] = max_power
    return {
        "measurement": measurement,
        "updates": {
            "update_policy": policy,
            CONF_UPDATE_INTERVAL: interval,
            CONF_INSTANT_POWER: instant,
        },
        "connection": {CONF_SILENCE_TIMEOUT: silence},
        "accounting": accounting,
    }


async def test_options_defaults_and_store(hass: HomeAssistant, mock_setup_entry: AsyncMock) -> None:
    """Defaults come from const (and setup's country); options are stored flat."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=METER_ID,
        data={CONF_URL: "/dev/x", CONF_COUNTRY: "SE"},
        options={"future_option": 3},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    flow, result = await start_options(hass, entry)
    assert section_defaults(result) == {
        "measurement": {CONF_CT_MULTIPLIER: 1.0, CONF_COUNTRY: "SE"},
        "updates": {
            "update_policy": "every_frame",
            CONF_UPDATE_INTERVAL: 10,
            CONF_INSTANT_POWER: True,
        },
        "connection": {CONF_SILENCE_TIMEOUT: 30},
        "accounting": {
            CONF_CAPACITY_PEAKS: 3,
            CONF_CAPACITY_STEPS: DEFAULT_STEPS_TEXT,
            CONF_MAX_POWER: None,  # empty: the fuse default times the CT ratio
        },
    }
    setups = len(mock_setup_entry.mock_calls)
    result = await flow.configure(
        options_input(ct=40, country="NO", policy="average", interval=30, instant=False, silence=60)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        "future_option": 3,  # options other features own are kept
        CONF_CT_MULTIPLIER: 40.0,
        CONF_COUNTRY: "NO",
        CONF_UPDATE_INTERVAL: 30,
        CONF_AVERAGE: True,
        CONF_INSTANT_POWER: False,
        CONF_SILENCE_TIMEOUT: 60,
        CONF_CAPACITY_PEAKS: 3,
        CONF_CAPACITY_STEPS: [2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 50.0, 75.0, 100.0],
    }
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == setups + 1  # reloaded with the new options

    # The form reflects the stored options; clearing the country means "infer".
    flow, result = await start_options(hass, entry)
    defaults = section_defaults(result)
    assert defaults["updates"]["update_policy"] == "average"
    assert defaults["updates"][CONF_UPDATE_INTERVAL] == 30
    result = await flow.configure(options_input(policy="min_interval", interval=15))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_COUNTRY] == ""
    assert entry.options[CONF_UPDATE_INTERVAL] == 15
    assert entry.options[CONF_AVERAGE] is False

    flow, _ = await start_options(hass, entry)
    await flow.configure(options_input(policy="every_frame", interval=15))
    assert entry.options[CONF_UPDATE_INTERVAL] == 0  # every frame: no window
    assert policy_of(entry.options) == "every_frame"


async def test_options_section_errors(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An appended section can refuse its input: the form comes back with the error."""
    import voluptuous as vol

    def fields(current: Mapping[str, Any]) -> dict[Any, Any]:
        return {vol.Required("steps", default=current.get("steps", 1)): int}

    def store(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        if data["steps"] < 1:
            return {}, {"base": "bad_steps"}
        return {"steps": data["steps"]}, {}

    monkeypatch.setattr(
        config_flow, "OPTION_SECTIONS", [*OPTION_SECTIONS, OptionsSection("extra", fields, store)]
    )
    entry = MockConfigEntry(domain=DOMAIN, unique_id=METER_ID, data={CONF_URL: "/dev/x"})
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**options_input(ct=2), "extra": {"steps": 0}}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "bad_steps"}
    assert section_defaults(result)["measurement"][CONF_CT_MULTIPLIER] == 2  # input kept
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**options_input(ct=2), "extra": {"steps": 3}}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["steps"] == 3
    assert entry.options[CONF_CT_MULTIPLIER] == 2.0


def section_suggested(result: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The suggested values of one section (what the form shows over its defaults)."""
    for marker, validator in result["data_schema"].schema.items():
        if str(marker) == key:
            return {
                str(field): field.description["suggested_value"]
                for field in validator.schema.schema
                if field.description and "suggested_value" in field.description
            }
    raise AssertionError(f"no section {key}")


def collapsed(result: Mapping[str, Any]) -> dict[str, bool]:
    return {
        str(marker): bool(validator.options["collapsed"])
        for marker, validator in result["data_schema"].schema.items()
    }


async def options_entry(hass: HomeAssistant, **options: Any) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=METER_ID, data={CONF_URL: "/dev/x"}, options=options
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    return entry


@pytest.mark.usefixtures("mock_setup_entry")
async def test_options_accounting_store_and_reshow(hass: HomeAssistant) -> None:
    """Peaks, steps (typed as text) and the fuse limit are stored; the form shows them."""
    entry = await options_entry(hass)
    flow, result = await start_options(hass, entry)
    assert collapsed(result)["accounting"] is True
    result = await flow.configure(
        options_input(ct=40, peaks=5, steps=" 3;6.5  10, 15 ", max_power=250)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_CAPACITY_PEAKS] == 5
    assert type(entry.options[CONF_CAPACITY_PEAKS]) is int
    assert entry.options[CONF_CAPACITY_STEPS] == [3.0, 6.5, 10.0, 15.0]
    assert entry.options[CONF_MAX_POWER] == 250.0
    json.dumps(dict(entry.options))  # the entry is stored as JSON

    flow, result = await start_options(hass, entry)
    assert section_defaults(result)["accounting"] == {
        CONF_CAPACITY_PEAKS: 5,
        CONF_CAPACITY_STEPS: "3, 6.5, 10, 15",
        CONF_MAX_POWER: 250.0,
    }
    # Clearing the fuse limit removes the option: the runtime's default applies again.
    result = await flow.configure(options_input(ct=40, peaks=5, steps="3, 6.5, 10, 15"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_MAX_POWER not in entry.options
    assert entry.options[CONF_CAPACITY_STEPS] == [3.0, 6.5, 10.0, 15.0]


@pytest.mark.parametrize(
    "steps",
    [
        "5, 2",  # not rising
        "2, 2",  # not strictly rising
        "0, 5",  # not positive
        "2, five",  # not a number
        "2,5, 10",  # a decimal comma: never read as the limits 2 and 5
        "2, inf",  # not finite
        "   ",  # none at all
        ", ".join(str(n) for n in range(1, 22)),  # more than 20
    ],
)
async def test_options_invalid_steps_then_recover(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, steps: str
) -> None:
    """Bad step limits: the error is shown on the accounting section, which opens; the text
    the user typed and the other sections' input are kept; nothing is stored until fixed."""
    entry = await options_entry(hass, **{CONF_CAPACITY_PEAKS: 2})
    setups = len(mock_setup_entry.mock_calls)
    flow, _ = await start_options(hass, entry)
    result = await flow.configure(options_input(ct=2, peaks=4, steps=steps, max_power=20))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"accounting": "invalid_capacity_steps"}
    assert collapsed(result) == {
        "measurement": False,
        "updates": False,
        "connection": True,
        "accounting": False,  # opened to show what to fix
    }
    assert section_suggested(result, "accounting") == {
        CONF_CAPACITY_PEAKS: 4,
        CONF_CAPACITY_STEPS: steps,
        CONF_MAX_POWER: 20,
    }
    assert section_defaults(result)["measurement"][CONF_CT_MULTIPLIER] == 2
    assert entry.options == {CONF_CAPACITY_PEAKS: 2}
    result = await flow.configure(options_input(ct=2, peaks=4, steps="2.5 5 10", max_power=20))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_CAPACITY_STEPS] == [2.5, 5.0, 10.0]
    assert entry.options[CONF_CAPACITY_PEAKS] == 4
    assert entry.options[CONF_CT_MULTIPLIER] == 2.0
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == setups + 1  # one reload, after the fix


async def test_options_cleared_field_stays_cleared_after_an_error(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    """A fuse limit the user cleared is not put back when the form returns with an error."""
    entry = await options_entry(hass, **{CONF_MAX_POWER: 20.0})
    flow, result = await start_options(hass, entry)
    assert section_suggested(result, "accounting") == {CONF_MAX_POWER: 20.0}
    result = await flow.configure(options_input(steps="10, 5"))
    assert result["errors"] == {"accounting": "invalid_capacity_steps"}
    assert section_suggested(result, "accounting")[CONF_MAX_POWER] is None
    assert entry.options == {CONF_MAX_POWER: 20.0}  # nothing stored meanwhile
    result = await flow.configure(options_input(steps="5, 10"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_MAX_POWER not in entry.options


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (CONF_CAPACITY_PEAKS, 0),
        (CONF_CAPACITY_PEAKS, 6),
        (CONF_MAX_POWER, 0.5),
        (CONF_MAX_POWER, 10_001),
    ],
)
async def test_options_accounting_limits_then_recover(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, field: str, value: float
) -> None:
    """Peaks 1-5 and the fuse limit 1-10000 kW: the selectors refuse other numbers."""
    entry = await options_entry(hass)
    flow, _ = await start_options(hass, entry)
    bad = options_input()
    bad["accounting"][field] = value
    with pytest.raises(InvalidData) as raised:
        await flow.configure(bad)
    assert raised.value.path == ["accounting", field]
    result = await flow.configure(options_input(peaks=1, max_power=10_000))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_CAPACITY_PEAKS] == 1
    assert entry.options[CONF_MAX_POWER] == 10_000.0
