"""The key repair: raised by the running integration, fixed with new keys checked on live frames.

The meter is an encrypted Landis+Gyr behind a one-client loopback bridge (like ser2net),
the integration runs for real and raises the issue itself when the grid company's new
key makes every frame fail. Mocked, because it cannot run here: one probe that raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.hanport import config_flow
from custom_components.hanport.const import (
    CONF_AUTH_KEY,
    CONF_COUNTRY,
    CONF_KEY,
    CONF_METER_ID,
    CONF_SERIAL,
    CONF_URL,
    DOMAIN,
    ISSUE_KEY,
    SERIAL_AUTO,
)
from custom_components.hanport.repairs import (
    async_create_key_issue,
    async_delete_key_issue,
    key_issue_id,
)

from .conftest import METER_ID, OTHER_METER_ID, FakeMeter
from .test_config_flow import (
    FAIL_TIMEOUT,
    GAK,
    GUEK,
    OK_TIMEOUT,
    TRANSLATIONS,
    WRONG,
    Bridge,
    Flow,
    encrypted_frame,
    lg_meter,
    status_frame,
    wait_loaded,
)

FIX_FLOW = TRANSLATIONS["issues"][ISSUE_KEY]["fix_flow"]


@pytest.fixture(autouse=True)
def _sockets(socket_enabled: None) -> None:
    """Loopback sockets for the bridge (autouse, so set up before it)."""


@pytest.fixture(autouse=True)
def _answering_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", OK_TIMEOUT)


@pytest.fixture
async def bridge() -> AsyncGenerator[Bridge]:
    """A ser2net-like bridge: one client at a time."""
    server = Bridge(single_client=True)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def repairs(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "repairs", {})


def make_entry(url: str, **data: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Landis+Gyr",
        unique_id=METER_ID,
        data={
            CONF_URL: url,
            CONF_SERIAL: SERIAL_AUTO,
            CONF_COUNTRY: "",
            CONF_KEY: GUEK,
            CONF_AUTH_KEY: "",
            CONF_METER_ID: METER_ID,
            **data,
        },
    )


async def wait_issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry:
    registry = ir.async_get(hass)
    async with asyncio.timeout(10):
        while (issue := registry.async_get_issue(DOMAIN, issue_id)) is None:
            await hass.async_block_till_done()
            await asyncio.sleep(0.02)
    return issue


async def broken_entry(hass: HomeAssistant, bridge: Bridge) -> MockConfigEntry:
    """An entry with the old key while the meter already uses the new one: issue raised."""
    bridge.payload = encrypted_frame(lg_meter())
    entry = make_entry(bridge.url, **{CONF_KEY: WRONG})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_issue(hass, key_issue_id(entry))
    return entry


async def start_fix(hass: HomeAssistant, entry: MockConfigEntry) -> Flow:
    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = Flow(hass, manager, FIX_FLOW)
    result = await flow.init(DOMAIN, data={"issue_id": key_issue_id(entry)})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "keys"
    assert result["description_placeholders"]["title"] == entry.title
    return flow


def test_issue_id() -> None:
    entry = make_entry("/dev/x")
    assert key_issue_id(entry) == f"bad_key_{entry.entry_id}"


async def test_create_and_delete_issue(hass: HomeAssistant) -> None:
    entry = make_entry("/dev/ttyUSB0")
    entry.add_to_hass(hass)
    async_create_key_issue(hass, entry)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, key_issue_id(entry))
    assert issue is not None
    assert issue.is_fixable
    assert not issue.is_persistent
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == ISSUE_KEY
    assert issue.translation_placeholders == {"title": "Landis+Gyr"}
    assert issue.data == {"entry_id": entry.entry_id}
    title = TRANSLATIONS["issues"][ISSUE_KEY]["title"]
    assert "{title}" in title
    async_delete_key_issue(hass, entry)
    assert ir.async_get(hass).async_get_issue(DOMAIN, key_issue_id(entry)) is None
    async_delete_key_issue(hass, entry)  # deleting twice is harmless


@pytest.mark.usefixtures("repairs")
async def test_fix_with_new_keys(
    hass: HomeAssistant, bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrong format, then a wrong key, then the right one: stored, reloaded, issue gone."""
    entry = await broken_entry(hass, bridge)
    flow = await start_fix(hass, entry)

    result = await flow.configure({CONF_KEY: "not hex"})
    assert result["step_id"] == "keys"
    assert result["errors"] == {CONF_KEY: "invalid_key"}
    result = await flow.configure({CONF_KEY: "", CONF_AUTH_KEY: GAK})
    assert result["errors"] == {CONF_KEY: "key_required"}

    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", FAIL_TIMEOUT)
    result = await flow.probe({CONF_KEY: "F" * 31 + "E"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "keys"
    assert result["errors"] == {"base": "bad_key"}
    assert entry.data[CONF_KEY] == WRONG
    assert bridge.refused == 0  # the entry let go of the bridge while we listened
    await wait_loaded(hass, entry)

    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", OK_TIMEOUT)
    result = await flow.probe({CONF_KEY: GUEK.lower()})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.data[CONF_KEY] == GUEK
    assert entry.data[CONF_AUTH_KEY] == ""
    assert ir.async_get(hass).async_get_issue(DOMAIN, key_issue_id(entry)) is None
    await wait_loaded(hass, entry)
    assert bridge.refused == 0


@pytest.mark.usefixtures("repairs")
async def test_fix_reports_port_errors(
    hass: HomeAssistant, bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The meter went quiet meanwhile: say so on the key form; keys stay as they were."""
    entry = await broken_entry(hass, bridge)
    flow = await start_fix(hass, entry)
    bridge.payload = b""
    monkeypatch.setattr(config_flow, "PROBE_TIMEOUT", FAIL_TIMEOUT)
    result = await flow.probe({CONF_KEY: GUEK})
    assert result["errors"] == {"base": "no_data"}
    assert entry.data[CONF_KEY] == WRONG
    assert ir.async_get(hass).async_get_issue(DOMAIN, key_issue_id(entry)) is not None
    await wait_loaded(hass, entry)


@pytest.mark.usefixtures("repairs")
async def test_fix_refuses_another_meter(hass: HomeAssistant, bridge: Bridge) -> None:
    """Another meter answers on the port: nothing stored, the entry runs again."""
    entry = await broken_entry(hass, bridge)
    flow = await start_fix(hass, entry)
    bridge.payload = status_frame(FakeMeter(meter_id=OTHER_METER_ID))
    result = await flow.probe({CONF_KEY: GUEK})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "wrong_meter"}
    assert entry.data[CONF_KEY] == WRONG
    await wait_loaded(hass, entry)


@pytest.mark.usefixtures("repairs")
async def test_fix_unexpected_probe_failure(hass: HomeAssistant, bridge: Bridge) -> None:
    entry = await broken_entry(hass, bridge)
    flow = await start_fix(hass, entry)
    # Mocked: a crash inside the library cannot be produced with real bytes.
    with patch.object(config_flow, "async_probe", side_effect=RuntimeError("boom")):
        result = await flow.configure({CONF_KEY: GUEK})
        if result["type"] is FlowResultType.SHOW_PROGRESS:
            await hass.async_block_till_done()
            result = await flow.configure()
    assert result["errors"] == {"base": "unknown"}
    await wait_loaded(hass, entry)
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.usefixtures("repairs")
async def test_fix_after_entry_removed(hass: HomeAssistant) -> None:
    """An issue whose entry is gone can only be dismissed."""
    assert await async_setup_component(hass, DOMAIN, {})
    entry = make_entry("/dev/ttyUSB0")
    async_create_key_issue(hass, entry)  # never added: as if removed meanwhile
    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = Flow(hass, manager, FIX_FLOW)
    result = await flow.init(DOMAIN, data={"issue_id": key_issue_id(entry)})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_removed"
