"""HAN port: read a smart electricity meter's HAN/P1 port (AMS, DLMS, P1) locally.

Setup opens the port once (failure -> ConfigEntryNotReady, Home Assistant retries), then
the connection keeps it open in the background and pushes readings to the coordinator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr

from .accounting.runtime import async_remove_store
from .connection import OPEN_ERRORS, HanConnection, SerialSettings, describe_error, redact_url
from .const import (
    CONF_AUTH_KEY,
    CONF_COUNTRY,
    CONF_KEY,
    CONF_SERIAL,
    CONF_SERIAL_DETECTED,
    CONF_URL,
    DOMAIN,
)
from .coordinator import HanportConfigEntry, HanportCoordinator, HanportRuntimeData
from .han.options import DecodeOptions
from .repairs import async_delete_key_issue

PLATFORMS: list[Platform] = [Platform.SENSOR]


def decode_options(entry: HanportConfigEntry) -> DecodeOptions:
    """Keys (hex in entry data) and country (options override data) for the decoder."""
    data: Mapping[str, Any] = entry.data
    country = entry.options.get(CONF_COUNTRY, data.get(CONF_COUNTRY))
    return DecodeOptions(
        country=country or None,
        key=_hex(data.get(CONF_KEY)),
        auth_key=_hex(data.get(CONF_AUTH_KEY)),
    )


def _hex(value: object) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


async def async_setup_entry(hass: HomeAssistant, entry: HanportConfigEntry) -> bool:
    """Open the port, start the link and the coordinator, forward the sensor platform."""
    coordinator = HanportCoordinator(hass, entry)
    url: str = entry.data[CONF_URL]
    connection = HanConnection(
        url=url,
        serial=SerialSettings.parse(entry.data.get(CONF_SERIAL)),
        detected=SerialSettings.parse(entry.data.get(CONF_SERIAL_DETECTED)),
        options=decode_options(entry),
        silence_timeout=coordinator.options.silence_timeout,
        on_reading=coordinator.handle_reading,
        on_reject=coordinator.handle_reject,
        on_available=coordinator.handle_available,
        on_detected=lambda settings: coordinator.handle_detected(settings.key),
    )
    coordinator.connection = connection
    try:
        await connection.async_start()
    except OPEN_ERRORS as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_open",
            translation_placeholders={"url": redact_url(url), "error": describe_error(err, url)},
        ) from err
    entry.runtime_data = HanportRuntimeData(coordinator=coordinator, connection=connection)
    entry.async_on_unload(connection.async_stop)
    entry.async_on_unload(coordinator.async_shutdown)

    async def _async_stop(_event: Event) -> None:
        await connection.async_stop()

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_stop))
    coordinator.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HanportConfigEntry) -> bool:
    """Unload the platform; the on-unload callbacks then close the port."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HanportConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing a replaced meter's device, never the one on the port now."""
    current = entry.runtime_data.coordinator.current_meter
    return (DOMAIN, current) not in device.identifiers


async def async_remove_entry(hass: HomeAssistant, entry: HanportConfigEntry) -> None:
    """Drop what the entry kept outside the registries: accounting store, key issue."""
    await async_remove_store(hass, entry.entry_id)
    async_delete_key_issue(hass, entry)
