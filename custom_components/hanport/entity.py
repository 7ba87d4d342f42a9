"""Base entity: one device per meter, availability from the coordinator, push updates."""

from __future__ import annotations

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .coordinator import HanportCoordinator


class HanportEntity(Entity):
    """An entity of one meter; it is written when its own value is published."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self, coordinator: HanportCoordinator, meter_id: str, description: EntityDescription
    ) -> None:
        self.coordinator = coordinator
        self.meter_id = meter_id
        self.entity_description = description
        self._attr_unique_id = f"{meter_id}_{description.key}"
        info = coordinator.device_info_for(meter_id)
        device = DeviceInfo(
            identifiers={(DOMAIN, meter_id)}, name=info.name, serial_number=meter_id
        )
        # Only what the meter has said: a None here would erase the registry's value.
        if info.manufacturer:
            device["manufacturer"] = info.manufacturer
        if info.meter_type:
            device["model"] = info.meter_type
        if info.list_version:
            device["sw_version"] = info.list_version
        self._attr_device_info = device

    @property
    def available(self) -> bool:
        """Unavailable while the meter is silent or another meter took the port."""
        return self.coordinator.is_available(self.meter_id)

    async def async_added_to_hass(self) -> None:
        """Subscribe to this entity's value and to availability changes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_availability_listener(self._handle_availability)
        )
        self.async_on_remove(self._subscribe())

    def _subscribe(self) -> CALLBACK_TYPE:
        """Subscribe to what updates this entity (its value by default)."""
        return self.coordinator.async_add_value_listener(
            self.meter_id, self.entity_description.key, self._handle_update
        )

    @callback
    def _handle_availability(self) -> None:
        self.async_write_ha_state()

    @callback
    def _handle_update(self) -> None:
        self.async_write_ha_state()
