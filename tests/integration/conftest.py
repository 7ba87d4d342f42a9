"""Fixtures for the integration tests: a real Home Assistant, a real transport, real frames.

The meter is played over a loopback TCP server (what a ser2net or ESP bridge looks like)
or over a pty (what a USB serial adapter looks like to serialx). Frames come from the
project's encoder, so every byte is what a meter of that layout sends; nothing in the
integration's transport is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.hanport.connection import HanConnection
from custom_components.hanport.const import (
    CONF_MANUFACTURER,
    CONF_METER_ID,
    CONF_METER_TYPE,
    CONF_SERIAL,
    CONF_URL,
    DOMAIN,
    SERIAL_AUTO,
)
from custom_components.hanport.han.encode import (
    Layout,
    Topology,
    carried_names,
    encode_reading,
    expected_reading,
)
from custom_components.hanport.han.reading import PHASES, ListKind, Protocol, Reading

METER_ID = "7359992890941742"
OTHER_METER_ID = "7359992890941759"
METER_TYPE = "6534"

BASE_VALUES: Mapping[str, float] = MappingProxyType(
    {
        "active_power_import": 1234.0,
        "active_power_export": 0.0,
        "reactive_power_import": 120.0,
        "reactive_power_export": 45.0,
        "current_l1": 2.3,
        "current_l2": 1.1,
        "current_l3": 3.4,
        "voltage_l1": 231.4,
        "voltage_l2": 229.8,
        "voltage_l3": 232.0,
        "active_energy_import": 12345.67,
        "active_energy_export": 12.34,
        "reactive_energy_import": 2345.6,
        "reactive_energy_export": 345.67,
        "power_factor": 0.95,
        **{f"active_power_import_{p}": 400.0 + n for n, p in enumerate(PHASES)},
        **{f"active_power_export_{p}": 0.0 for p in PHASES},
        **{f"reactive_power_import_{p}": 40.0 + n for n, p in enumerate(PHASES)},
        **{f"reactive_power_export_{p}": 15.0 for p in PHASES},
        **{f"power_factor_{p}": 0.9 for p in PHASES},
        **{f"active_energy_import_{p}": 4115.22 + n for n, p in enumerate(PHASES)},
        **{f"active_energy_export_{p}": 4.11 for p in PHASES},
    }
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/hanport in every test."""


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create every entity enabled (core has this fixture; phacc does not)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in Home Assistant's format."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


# --- the meter: readings -> frames ------------------------------------------------------


@dataclass
class FakeMeter:
    """Builds the frames one meter sends, and what a correct decoder reads from them."""

    layout: Layout = Layout.AIDON_NO
    meter_id: str = METER_ID
    meter_type: str = METER_TYPE
    manufacturer: str = "Aidon"
    topology: Topology = Topology.FOUR_WIRE
    values: dict[str, float] = field(default_factory=lambda: dict(BASE_VALUES))

    def reading(self, kind: ListKind, when: datetime | None = None, **changes: float) -> Reading:
        """The reading behind one list: base values (+ changes) that the list carries."""
        self.values.update(changes)
        names = carried_names(self.layout, kind, self.topology)
        return Reading(
            protocol=Protocol.HDLC,
            manufacturer=self.manufacturer,
            meter_id=self.meter_id,
            meter_type=self.meter_type,
            list_version=None,
            meter_time=when,
            values=MappingProxyType({n: self.values[n] for n in names}),
        )

    def frame(
        self,
        kind: ListKind,
        when: datetime | None = None,
        *,
        key: bytes | None = None,
        **changes: float,
    ) -> tuple[bytes, Reading]:
        """Raw bytes of one list, and the reading a decoder must produce from them."""
        reading = self.reading(kind, when, **changes)
        return encode_reading(reading, self.layout, key=key), expected_reading(reading, self.layout)


@pytest.fixture
def meter() -> FakeMeter:
    """An Aidon 6534 (4-wire, Norwegian lists)."""
    return FakeMeter()


# --- transports ------------------------------------------------------------------------


class TcpMeterServer:
    """A loopback TCP server playing a ser2net-style bridge with the meter behind it."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.clients: list[asyncio.StreamWriter] = []
        self.connections = 0
        self.port = 0
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.clients.append(writer)
        self._changed.set()

    async def wait_clients(self, count: int = 1, connections: int | None = None) -> None:
        """Wait for ``count`` open clients (and ``connections`` accepted so far)."""
        async with asyncio.timeout(10):
            while len(self.clients) < count or (
                connections is not None and self.connections < connections
            ):
                self._changed.clear()
                await self._changed.wait()

    def send(self, data: bytes) -> None:
        """Write to every client still connected (like ser2net with max-connections > 1)."""
        self.clients = [writer for writer in self.clients if not writer.is_closing()]
        for writer in self.clients:
            writer.write(data)

    async def drop_clients(self) -> None:
        clients, self.clients = self.clients, []
        for writer in clients:
            writer.close()
        for writer in clients:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def stop(self) -> None:
        await self.drop_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class PtyMeter:
    """A pseudo-terminal: the integration opens the slave path like a USB serial adapter."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.url = os.ttyname(self.slave)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def attrs(self) -> tuple[int, int]:
        """(cflag, ispeed) of the port as serialx configured it."""
        attrs = termios.tcgetattr(self.slave)
        return attrs[2], attrs[4]

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
async def tcp_meter(socket_enabled: None) -> AsyncGenerator[TcpMeterServer]:
    """A started loopback server (pytest_socket still allows only 127.0.0.1)."""
    server = TcpMeterServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def pty_meter() -> Generator[PtyMeter]:
    """An open pty pair."""
    pty = PtyMeter()
    yield pty
    pty.close()


# --- Home Assistant side -----------------------------------------------------------------


def make_entry(
    url: str,
    *,
    options: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    title: str = "Aidon 6534",
) -> MockConfigEntry:
    """A config entry as the flow creates it for METER_ID on ``url``."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=METER_ID,
        data={
            CONF_URL: url,
            CONF_SERIAL: SERIAL_AUTO,
            CONF_METER_ID: METER_ID,
            CONF_MANUFACTURER: "Aidon",
            CONF_METER_TYPE: METER_TYPE,
            **(data or {}),
        },
        options=options or {},
    )


def entity_id(hass: HomeAssistant, key: str, meter_id: str = METER_ID) -> str | None:
    """The entity ID of a meter's key, looked up by unique ID (names are translations)."""
    return er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{meter_id}_{key}")


def maybe_state(hass: HomeAssistant, key: str, meter_id: str = METER_ID) -> State | None:
    """The state object of a meter's key, or None when the entity does not exist."""
    if (eid := entity_id(hass, key, meter_id)) is None:
        return None
    return hass.states.get(eid)


def state_of(hass: HomeAssistant, key: str, meter_id: str = METER_ID) -> State:
    """The state object of a meter's key (which must exist)."""
    state = maybe_state(hass, key, meter_id)
    assert state is not None, f"no state for {key}"
    return state


def registry_entry(hass: HomeAssistant, key: str, meter_id: str = METER_ID) -> er.RegistryEntry:
    """The entity registry entry of a meter's key (which must exist)."""
    eid = entity_id(hass, key, meter_id)
    entry = er.async_get(hass).async_get(eid) if eid else None
    assert entry is not None, f"no entity for {key}"
    return entry


async def wait_for(hass: HomeAssistant, predicate: Callable[[], bool], limit: float = 10.0) -> None:
    """Let real I/O happen until ``predicate()`` holds."""
    async with asyncio.timeout(limit):
        while True:
            await hass.async_block_till_done()
            if predicate():
                return
            await asyncio.sleep(0.01)


async def skip_backoff(hass: HomeAssistant, connection: HanConnection, *, ended: int) -> None:
    """Wait until ``ended`` links have ended (backoff now pending), skip it, await the reopen."""
    await wait_for(hass, lambda: connection.reconnects >= ended)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=connection._delay))
    await wait_for(hass, lambda: connection.connected)


async def wait_state(
    hass: HomeAssistant, key: str, expected: str, meter_id: str = METER_ID
) -> State:
    """Wait until the entity of ``key`` shows ``expected``."""
    await wait_for(
        hass,
        lambda: (s := maybe_state(hass, key, meter_id)) is not None and s.state == expected,
    )
    return state_of(hass, key, meter_id)


@dataclass
class StateLog:
    """Every state our entities wrote, in order (to check none was ever wrong)."""

    changes: list[tuple[str, str]] = field(default_factory=list)

    def of(self, hass: HomeAssistant, key: str, meter_id: str = METER_ID) -> list[str]:
        eid = entity_id(hass, key, meter_id)
        return [state for changed, state in self.changes if changed == eid]


@pytest.fixture
def state_log(hass: HomeAssistant) -> Generator[StateLog]:
    """Record every sensor state change."""
    log = StateLog()

    @callback
    def _record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.entity_id.startswith("sensor."):
            log.changes.append((new.entity_id, new.state))

    unsub = hass.bus.async_listen(EVENT_STATE_CHANGED, _record)
    yield log
    unsub()


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add and set up an entry; wait until it is loaded."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def fmt(value: float) -> str:
    """A float as Home Assistant writes it into a state."""
    return str(value)
