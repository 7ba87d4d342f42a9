"""The accounting options, set through the options flow, reach the running accounting.

The flow stores N and the step limits; the entry reloads (OptionsFlowWithReload) and the
capacity sensors are computed again from the same booked hours with the new settings.
Real link, real recorder, frozen clock (as in test_accounting.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.hanport.const import (
    CONF_CAPACITY_PEAKS,
    CONF_CAPACITY_STEPS,
    CONF_MAX_POWER,
    CONF_SILENCE_TIMEOUT,
)
from custom_components.hanport.han.reading import ListKind

from .conftest import FakeMeter, TcpMeterServer, entity_id, make_entry, maybe_state, setup_entry
from .test_accounting_month import (  # noqa: F401 - fixtures
    OSLO,
    Feed,
    accounting_platform,
    auto_enable_custom_integrations,
    spin,
)

HOUR = timedelta(hours=1)
B0 = datetime(2026, 2, 3, 9, tzinfo=UTC)
"""10:00 in Oslo on Tuesday 3 February."""


def value(hass: HomeAssistant, key: str) -> str | None:
    state = maybe_state(hass, key)
    return None if state is None else state.state


async def hourly(feed: Feed, meter: FakeMeter, boundary: datetime, kwh: float) -> None:
    """An Aidon hourly list (stamped on the hour in local time, sent 10 s later), no power."""
    local = boundary.astimezone(ZoneInfo(OSLO)).replace(tzinfo=None)
    data, _ = meter.frame(
        ListKind.ENERGY,
        local,
        active_energy_import=kwh,
        active_energy_export=0.0,
        active_power_import=0.0,
        active_power_export=0.0,
    )
    await feed.send(data, boundary + timedelta(seconds=10))


async def set_accounting_options(
    hass: HomeAssistant, entry: ConfigEntry, server: TcpMeterServer, **accounting: Any
) -> None:
    """Submit the options form as shown, with ``accounting`` changed; wait for the reload."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    schema = result["data_schema"]
    assert schema is not None
    shown: dict[str, dict[str, Any]] = {}
    for marker, part in schema.schema.items():
        fields: dict[str, Any] = {}
        for field in part.schema.schema:
            if callable(getattr(field, "default", None)):
                fields[str(field)] = field.default()
            elif field.description and field.description.get("suggested_value") is not None:
                fields[str(field)] = field.description["suggested_value"]
        shown[str(marker)] = fields
    shown["accounting"].update(accounting)
    await server.drop_clients()  # the reloaded link connects again
    result = await hass.config_entries.options.async_configure(result["flow_id"], shown)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await spin(hass, lambda: len(server.clients) == 1)


def capacity(hass: HomeAssistant) -> Mapping[str, str | None]:
    keys = ("capacity_monthly", "capacity_step", "capacity_step_limit")
    return {key: value(hass, key) for key in keys}


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_peaks_and_steps_from_the_options_flow_reach_the_sensors(
    hass: HomeAssistant, tcp_meter: TcpMeterServer, freezer: FrozenDateTimeFactory
) -> None:
    await hass.config.async_set_time_zone(OSLO)
    freezer.move_to(B0 - timedelta(minutes=5))
    entry = await setup_entry(hass, make_entry(tcp_meter.url, options={CONF_SILENCE_TIMEOUT: 3600}))
    await spin(hass, lambda: len(tcp_meter.clients) == 1)
    feed = Feed(hass, tcp_meter, freezer)
    feed.attach()
    meter = FakeMeter()
    # 3 Feb 10-11: 4 kWh; 4 Feb 10-11: 1 kWh (the night between is a gap, no hour).
    for boundary, kwh in ((B0, 1000.0), (B0 + HOUR, 1004.0)):
        await hourly(feed, meter, boundary, kwh)
    for boundary, kwh in ((B0 + 24 * HOUR, 1010.0), (B0 + 25 * HOUR, 1011.0)):
        await hourly(feed, meter, boundary, kwh)
    # Defaults: N = 3 (both days count: 2.5 kW), steps 2, 5, 10, ... (step 2, below 5 kW).
    assert capacity(hass) == {
        "capacity_monthly": "2.5",
        "capacity_step": "2",
        "capacity_step_limit": "5.0",
    }
    assert entity_id(hass, "capacity_peak_3") is not None

    # Own steps: 2.5 kW is at the limit of the second step, so it is in the third.
    await set_accounting_options(hass, entry, tcp_meter, **{CONF_CAPACITY_STEPS: "1, 2.5, 3"})
    assert entry.options[CONF_CAPACITY_STEPS] == [1.0, 2.5, 3.0]
    assert capacity(hass) == {
        "capacity_monthly": "2.5",
        "capacity_step": "3",
        "capacity_step_limit": "3.0",
    }

    # N = 1: only the highest day counts (4 kW), above the last limit: the open step.
    await set_accounting_options(hass, entry, tcp_meter, **{CONF_CAPACITY_PEAKS: 1})
    assert entry.options[CONF_CAPACITY_PEAKS] == 1
    assert capacity(hass) == {
        "capacity_monthly": "4.0",
        "capacity_step": "4",
        "capacity_step_limit": "unknown",
    }
    assert value(hass, "capacity_peak_1") == "4.0"
    assert entity_id(hass, "capacity_peak_2") is None  # surplus peak sensors removed

    # The hours booked before the reloads are still there: back to N = 3 and the defaults.
    await set_accounting_options(
        hass,
        entry,
        tcp_meter,
        **{CONF_CAPACITY_PEAKS: 3, CONF_CAPACITY_STEPS: "2, 5, 10, 15, 20, 25, 50, 75, 100"},
    )
    assert capacity(hass)["capacity_monthly"] == "2.5"
    assert value(hass, "capacity_peak_2") == "1.0"
    assert CONF_MAX_POWER not in entry.options
    await async_wait_recording_done(hass)  # the recorder's thread idle before teardown
