"""Sensors for every value a meter sends, the signed net power and diagnostic counters.

Translation keys used (entity.sensor.<key>.name in translations/en.json):
  active_power_import, active_power_export, net_power,
  reactive_power_import, reactive_power_export,
  active_energy_import, active_energy_export, reactive_energy_import, reactive_energy_export,
  power_factor, meter_time,
  current_l1, current_l2, current_l3, voltage_l1, voltage_l2, voltage_l3,
  active_power_import_l1..l3, active_power_export_l1..l3,
  reactive_power_import_l1..l3, reactive_power_export_l1..l3, power_factor_l1..l3,
  active_energy_import_l1..l3, active_energy_export_l1..l3,
  frames_received, frames_rejected, reconnects,
  rejected_<reason> for every han.errors.RejectReason value (rejected_hdlc_header_checksum, ...).

Entities appear when their value first arrives (lists 2 and 3 come after list 1) and are
re-created at setup from the entity registry, so they exist before the meter speaks.
Only energy registers restore their last value: they are cumulative, so the last value
is still a true lower bound. Power, current, voltage and the clock describe "now"; a
restored one would be stale data presented as current, so they stay unknown until the
meter speaks (seconds after start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Self, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    EntityCategory,
    Platform,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfReactiveEnergy,
    UnitOfReactivePower,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity

from .accounting.sensor import async_setup_accounting_sensors
from .const import LOGGER
from .coordinator import (
    COUNTER_KEYS,
    METER_TIME,
    NET_POWER,
    REJECTED_PREFIX,
    HanportConfigEntry,
    HanportCoordinator,
)
from .entity import HanportEntity
from .han.errors import RejectReason
from .han.reading import (
    ACTIVE_ENERGY_EXPORT,
    ACTIVE_ENERGY_IMPORT,
    ACTIVE_POWER_EXPORT,
    ACTIVE_POWER_IMPORT,
    PHASES,
    POWER_FACTOR,
    REACTIVE_ENERGY_EXPORT,
    REACTIVE_ENERGY_IMPORT,
    REACTIVE_POWER_EXPORT,
    REACTIVE_POWER_IMPORT,
)

PARALLEL_UPDATES = 0

type SensorValue = float | int | datetime | None


def _published(coordinator: HanportCoordinator, meter_id: str, key: str) -> SensorValue:
    return coordinator.value(meter_id, key)


def _counter(coordinator: HanportCoordinator, meter_id: str, key: str) -> SensorValue:
    return coordinator.counter(key)


def _any_meter(coordinator: HanportCoordinator, meter_id: str) -> bool:
    return True


def _port_meter(coordinator: HanportCoordinator, meter_id: str) -> bool:
    """Port counters live on the entry's own meter device, not on every meter."""
    return meter_id == coordinator.default_meter


@dataclass(frozen=True, kw_only=True)
class HanportSensorEntityDescription(SensorEntityDescription):
    """A sensor of one published key."""

    value_fn: Callable[[HanportCoordinator, str, str], SensorValue] = _published
    exists_fn: Callable[[HanportCoordinator, str], bool] = _any_meter
    register: bool = False
    """A cumulative energy register: restored, never lower, never 0."""
    counter: bool = False
    """A port counter: published once a minute, not per frame."""


def _power(key: str, *, primary: bool = False) -> HanportSensorEntityDescription:
    return HanportSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        entity_category=None if primary else EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=primary,
    )


def _reactive(key: str) -> HanportSensorEntityDescription:
    return HanportSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.REACTIVE_POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfReactivePower.VOLT_AMPERE_REACTIVE,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    )


def _energy(
    key: str, *, reactive: bool = False, phase: bool = False
) -> HanportSensorEntityDescription:
    """Describe a register: reactive and per-phase ones are diagnostic, per-phase ones off."""
    return HanportSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.REACTIVE_ENERGY if reactive else SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=(
            UnitOfReactiveEnergy.KILO_VOLT_AMPERE_REACTIVE_HOUR
            if reactive
            else UnitOfEnergy.KILO_WATT_HOUR
        ),
        suggested_display_precision=3,
        entity_category=EntityCategory.DIAGNOSTIC if reactive or phase else None,
        entity_registry_enabled_default=not phase,
        register=True,
    )


def _power_factor(key: str) -> HanportSensorEntityDescription:
    return HanportSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.POWER_FACTOR,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    )


def _phase(key: str, *, voltage: bool) -> HanportSensorEntityDescription:
    return HanportSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.VOLTAGE if voltage else SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=(
            UnitOfElectricPotential.VOLT if voltage else UnitOfElectricCurrent.AMPERE
        ),
        suggested_display_precision=1 if voltage else 2,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    )


def _counter_description(key: str) -> HanportSensorEntityDescription:
    return HanportSensorEntityDescription(
        key=key,
        translation_key=key,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_counter,
        exists_fn=_port_meter,
        counter=True,
    )


def _descriptions() -> tuple[HanportSensorEntityDescription, ...]:
    out: list[HanportSensorEntityDescription] = [
        _power(ACTIVE_POWER_IMPORT, primary=True),
        _power(ACTIVE_POWER_EXPORT, primary=True),
        _power(NET_POWER, primary=True),
        _reactive(REACTIVE_POWER_IMPORT),
        _reactive(REACTIVE_POWER_EXPORT),
        _energy(ACTIVE_ENERGY_IMPORT),
        _energy(ACTIVE_ENERGY_EXPORT),
        _energy(REACTIVE_ENERGY_IMPORT, reactive=True),
        _energy(REACTIVE_ENERGY_EXPORT, reactive=True),
        _power_factor(POWER_FACTOR),
        HanportSensorEntityDescription(
            key=METER_TIME,
            translation_key=METER_TIME,
            device_class=SensorDeviceClass.TIMESTAMP,
            entity_category=EntityCategory.DIAGNOSTIC,
            entity_registry_enabled_default=False,
        ),
    ]
    for phase in PHASES:
        out.append(_phase(f"current_{phase}", voltage=False))
        out.append(_phase(f"voltage_{phase}", voltage=True))
        out.append(_power(f"active_power_import_{phase}"))
        out.append(_power(f"active_power_export_{phase}"))
        out.append(_reactive(f"reactive_power_import_{phase}"))
        out.append(_reactive(f"reactive_power_export_{phase}"))
        out.append(_power_factor(f"power_factor_{phase}"))
        out.append(_energy(f"active_energy_import_{phase}", phase=True))
        out.append(_energy(f"active_energy_export_{phase}", phase=True))
    out.extend(_counter_description(key) for key in COUNTER_KEYS)
    out.extend(_counter_description(f"{REJECTED_PREFIX}{reason.value}") for reason in RejectReason)
    return tuple(out)


SENSORS: Final = {description.key: description for description in _descriptions()}
_BY_LENGTH: Final = sorted(SENSORS, key=len, reverse=True)


def split_unique_id(unique_id: str) -> tuple[str, str] | None:
    """Return (meter_id, key) of one of our unique IDs, or None."""
    for key in _BY_LENGTH:
        suffix = f"_{key}"
        if unique_id.endswith(suffix) and len(unique_id) > len(suffix):
            return unique_id.removesuffix(suffix), key
    return None


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HanportConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create registered entities now, the rest as their values first arrive."""
    coordinator = entry.runtime_data.coordinator
    created: set[tuple[str, str]] = set()

    def build(pairs: Iterable[tuple[str, str]]) -> list[HanportSensor]:
        entities: list[HanportSensor] = []
        for meter_id, key in pairs:
            description = SENSORS.get(key)
            if (
                description is None
                or (meter_id, key) in created
                or not description.exists_fn(coordinator, meter_id)
            ):
                continue
            created.add((meter_id, key))
            cls = HanportRegisterSensor if description.register else HanportSensor
            entities.append(cls(coordinator, meter_id, description))
        return entities

    registered: list[tuple[str, str]] = []
    for reg_entry in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id):
        if reg_entry.domain == Platform.SENSOR and (parsed := split_unique_id(reg_entry.unique_id)):
            registered.append(parsed)
            coordinator.mark_known(*parsed)
    async_add_entities(build([*registered, *coordinator.known()]))

    @callback
    def _new_keys(meter_id: str, keys: list[str]) -> None:
        if entities := build((meter_id, key) for key in keys):
            async_add_entities(entities)

    entry.async_on_unload(coordinator.async_add_new_keys_listener(_new_keys))
    # Energy accounting (live energy, hours, capacity tariff) lives in accounting/.
    await async_setup_accounting_sensors(hass, entry, async_add_entities)


class HanportSensor(HanportEntity, SensorEntity):
    """A sensor showing the coordinator's published value for its key."""

    entity_description: HanportSensorEntityDescription

    @property
    @override
    def native_value(self) -> SensorValue:
        return self.entity_description.value_fn(
            self.coordinator, self.meter_id, self.entity_description.key
        )

    @property
    @override
    def available(self) -> bool:
        """Port counters stay available: they matter most while the meter is silent."""
        return self.entity_description.counter or super().available

    @override
    def _subscribe(self) -> CALLBACK_TYPE:
        if self.entity_description.counter:
            return self.coordinator.async_add_counter_listener(self._handle_update)
        return super()._subscribe()


@dataclass(slots=True)
class RegisterStoredData(ExtraStoredData):
    """What a register restores: its last accepted value and the CT factor it had."""

    value: float
    unit: str | None
    ct_multiplier: float

    def as_dict(self) -> dict[str, Any]:
        """Serialize for the restore-state store."""
        return {"value": self.value, "unit": self.unit, "ct_multiplier": self.ct_multiplier}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self | None:
        """Deserialize; None when the stored data is not ours or unreadable."""
        try:
            return cls(float(data["value"]), data["unit"], float(data["ct_multiplier"]))
        except KeyError, TypeError, ValueError:
            return None


class HanportRegisterSensor(HanportSensor, RestoreEntity):
    """A cumulative energy register for the Energy dashboard.

    HA's TOTAL_INCREASING treats a drop of more than 10 % as a meter reset and then adds
    the next real value in full, so this sensor never publishes 0, a missing value or a
    value lower than the last accepted one: it keeps the last good value, and logs a
    lower one once. The last value is restored at start (with the CT multiplier it was
    scaled by: after a multiplier change the old value is not comparable and is dropped).
    """

    _last: float | None = None
    _lower_logged = False

    @property
    @override
    def native_value(self) -> float | None:
        return self._last

    @property
    @override
    def extra_restore_state_data(self) -> RegisterStoredData | None:
        if self._last is None:
            return None
        return RegisterStoredData(
            self._last,
            self.native_unit_of_measurement,
            self.coordinator.options.ct_multiplier,
        )

    @override
    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        if (
            (extra := await self.async_get_last_extra_data()) is not None
            and (stored := RegisterStoredData.from_dict(extra.as_dict())) is not None
            and (
                stored.ct_multiplier == self.coordinator.options.ct_multiplier
                and stored.unit == self.native_unit_of_measurement
                and stored.value > 0
            )
        ):
            self._last = stored.value
        self._accept(self.coordinator.value(self.meter_id, self.entity_description.key))

    @callback
    @override
    def _handle_update(self) -> None:
        if self._accept(self.coordinator.value(self.meter_id, self.entity_description.key)):
            self.async_write_ha_state()

    def _accept(self, value: SensorValue) -> bool:
        """Keep ``value`` if it is a plausible next register value."""
        if not isinstance(value, float | int) or isinstance(value, bool) or value <= 0:
            return False
        if self._last is not None and value < self._last:
            self.coordinator.lower_energy_rejected += 1
            if not self._lower_logged:
                self._lower_logged = True
                LOGGER.warning(
                    "Ignoring %s %s lower than the last value %s (logged once)",
                    self.entity_description.key,
                    value,
                    self._last,
                )
            return False
        self._last = float(value)
        return True
