"""Push hub: turns readings from the connection into published values per meter.

The coordinator owns what entities show: the latest published value per meter and key,
the update policy (instant active power, a minimum interval or a window average for the
rest), the current-transformer multiplier, per-meter availability and devices. It never
polls; the connection calls it for every reading and reject.

API for other parts of the integration (accounting):
  ``coordinator.async_add_reading_listener(cb)`` -> unsubscribe; ``cb(reading)`` is called
  in the event loop for every valid reading, CT-scaled, ``meter_id`` filled in (list 1
  carries none), before and independent of the update policy.
  ``coordinator.async_add_availability_listener(cb)`` -> unsubscribe; ``cb()`` on changes.
  ``coordinator.current_meter``, ``coordinator.is_available(meter_id)``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from time import monotonic
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import (
    CONF_AVERAGE,
    CONF_CT_MULTIPLIER,
    CONF_INSTANT_POWER,
    CONF_MANUFACTURER,
    CONF_METER_ID,
    CONF_METER_TYPE,
    CONF_SERIAL_DETECTED,
    CONF_SILENCE_TIMEOUT,
    CONF_UPDATE_INTERVAL,
    DEFAULT_AVERAGE,
    DEFAULT_CT_MULTIPLIER,
    DEFAULT_INSTANT_POWER,
    DEFAULT_SILENCE_TIMEOUT,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
    KEY_ISSUE_FRAMES,
    KEY_ISSUE_SECONDS,
    LOGGER,
)
from .han.errors import Rejected, RejectReason
from .han.reading import ACTIVE_POWER_EXPORT, ACTIVE_POWER_IMPORT, REGISTER_NAMES, UNITS, Reading
from .repairs import async_create_key_issue, async_delete_key_issue

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry

    from .connection import HanConnection

NET_POWER: Final = "net_power"
"""Derived: import minus export (W); positive = importing. For the Energy grid-power card."""
METER_TIME: Final = "meter_time"
FRAMES_RECEIVED: Final = "frames_received"
FRAMES_REJECTED: Final = "frames_rejected"
RECONNECTS: Final = "reconnects"
REJECTED_PREFIX: Final = "rejected_"
COUNTER_KEYS: Final = (FRAMES_RECEIVED, FRAMES_REJECTED, RECONNECTS)
COUNTER_INTERVAL: Final = timedelta(seconds=60)
"""Counters are published at most once a minute (a per-frame counter is a row per frame)."""

INSTANT_KEYS: Final = frozenset({ACTIVE_POWER_IMPORT, ACTIVE_POWER_EXPORT, NET_POWER})
SCALED_UNITS: Final = frozenset({"W", "var", "A", "kWh", "kvarh"})
"""Units the CT multiplier applies to: power, current and energy; never voltage or PF."""
SCALED_PREFIXES: Final = (
    "active_power",
    "reactive_power",
    "active_energy",
    "reactive_energy",
    "current_",
)
"""The same by name, for names a layout adds beyond UNITS."""
KEY_FAILURES: Final = frozenset(
    {
        RejectReason.DECRYPTION_FAILED,
        RejectReason.AUTHENTICATION_FAILED,
        RejectReason.ENCRYPTED_NO_KEY,
    }
)
LAST_READINGS: Final = 5

type Value = float | datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOptions:
    """How values are published; read from entry options with defaults."""

    ct_multiplier: float = DEFAULT_CT_MULTIPLIER
    update_interval: float = DEFAULT_UPDATE_INTERVAL
    average: bool = DEFAULT_AVERAGE
    instant_power: bool = DEFAULT_INSTANT_POWER
    silence_timeout: float = DEFAULT_SILENCE_TIMEOUT

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PublishOptions:
        """Build from ``entry.options``; missing keys take the defaults."""
        return cls(
            ct_multiplier=float(options.get(CONF_CT_MULTIPLIER, DEFAULT_CT_MULTIPLIER)),
            update_interval=float(options.get(CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL)),
            average=bool(options.get(CONF_AVERAGE, DEFAULT_AVERAGE)),
            instant_power=bool(options.get(CONF_INSTANT_POWER, DEFAULT_INSTANT_POWER)),
            silence_timeout=float(options.get(CONF_SILENCE_TIMEOUT, DEFAULT_SILENCE_TIMEOUT)),
        )


@dataclass(slots=True)
class MeterInfo:
    """What a meter has said about itself (device registry material).

    ``name`` is fixed when the meter is first seen (the entry title for the entry's own
    meter) so entity IDs never depend on which list happened to arrive first.
    """

    meter_id: str
    manufacturer: str | None = None
    meter_type: str | None = None
    list_version: str | None = None
    name: str = "Electricity meter"


def _default_name(manufacturer: str | None, meter_type: str | None) -> str:
    parts = [p for p in (manufacturer, meter_type) if p]
    return " ".join(parts) if parts else "Electricity meter"


@dataclass(slots=True)
class _Window:
    """Samples of one value since the last publish."""

    latest: Value
    total: float = 0.0
    count: int = 0


@dataclass
class HanportRuntimeData:
    """What a loaded entry holds (``entry.runtime_data``)."""

    coordinator: HanportCoordinator
    connection: HanConnection


type HanportConfigEntry = ConfigEntry[HanportRuntimeData]


@dataclass(slots=True)
class _KeyWatch:
    """Consecutive decryption/authentication failures (the key repair)."""

    failures: int = 0
    since: float | None = None  # monotonic seconds of the first failure in the streak
    raised: bool = False


class HanportCoordinator:
    """Latest published values per meter, listeners, update policy and availability."""

    def __init__(self, hass: HomeAssistant, entry: HanportConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.options = PublishOptions.from_options(entry.options)
        self.default_meter: str = entry.data.get(CONF_METER_ID) or entry.unique_id or entry.entry_id
        self.current_meter: str = self.default_meter
        self.meters: dict[str, MeterInfo] = {}
        self.connection: HanConnection | None = None
        self.available = True
        self.last_readings: deque[Reading] = deque(maxlen=LAST_READINGS)
        self.lower_energy_rejected = 0
        self._values: dict[str, dict[str, Value]] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._value_listeners: dict[tuple[str, str], list[CALLBACK_TYPE]] = {}
        self._availability_listeners: list[CALLBACK_TYPE] = []
        self._counter_listeners: list[CALLBACK_TYPE] = []
        self._reading_listeners: list[Callable[[Reading], None]] = []
        self._new_key_listeners: list[Callable[[str, list[str]], None]] = []
        self._known: set[tuple[str, str]] = set()
        self._counter_keys: set[str] = set()
        self._key_watch = _KeyWatch()
        self._unsubs: list[CALLBACK_TYPE] = []
        self._registered: set[str] = set()
        self._naming: set[str] = set()
        self._load_meters()

    # --- lifecycle ---------------------------------------------------------------------

    def _load_meters(self) -> None:
        """Known meters: the entry's own plus every device already registered for it."""
        registry = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(registry, self.entry.entry_id):
            for domain, ident in device.identifiers:
                if domain == DOMAIN:
                    self.meters[ident] = MeterInfo(
                        ident,
                        device.manufacturer,
                        device.model,
                        device.sw_version,
                        device.name or _default_name(device.manufacturer, device.model),
                    )
                    self._registered.add(ident)
        if self.default_meter not in self.meters:
            manufacturer = self.entry.data.get(CONF_MANUFACTURER)
            meter_type = self.entry.data.get(CONF_METER_TYPE)
            self.meters[self.default_meter] = MeterInfo(
                self.default_meter,
                manufacturer,
                meter_type,
                name=self.entry.title or _default_name(manufacturer, meter_type),
            )
            self._register_device(self.meters[self.default_meter])

    @callback
    def async_start(self) -> None:
        """Start the publish timers (interval flush, counters)."""
        if self.options.update_interval > 0:
            self._unsubs.append(
                async_track_time_interval(
                    self.hass,
                    self._async_flush_windows,
                    timedelta(seconds=self.options.update_interval),
                    name="hanport publish",
                )
            )
        self._unsubs.append(
            async_track_time_interval(
                self.hass, self._async_publish_counters, COUNTER_INTERVAL, name="hanport counters"
            )
        )
        self._announce_counters()

    @callback
    def async_shutdown(self) -> None:
        """Cancel timers."""
        while self._unsubs:
            self._unsubs.pop()()

    # --- subscriptions -------------------------------------------------------------------

    @callback
    def async_add_value_listener(
        self, meter_id: str, key: str, update: CALLBACK_TYPE
    ) -> CALLBACK_TYPE:
        """Call ``update()`` whenever ``key`` of ``meter_id`` is published."""
        listeners = self._value_listeners.setdefault((meter_id, key), [])
        listeners.append(update)
        return lambda: listeners.remove(update)

    @callback
    def async_add_availability_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``update()`` when the meter link becomes available or unavailable."""
        return _subscribe(self._availability_listeners, update)

    @callback
    def async_add_counter_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``update()`` when the counters are published (once a minute)."""
        return _subscribe(self._counter_listeners, update)

    @callback
    def async_add_reading_listener(self, update: Callable[[Reading], None]) -> CALLBACK_TYPE:
        """Call ``update(reading)`` for every valid reading (CT-scaled, meter_id filled)."""
        return _subscribe(self._reading_listeners, update)

    @callback
    def async_add_new_keys_listener(
        self, update: Callable[[str, list[str]], None]
    ) -> CALLBACK_TYPE:
        """Call ``update(meter_id, keys)`` when values appear that have no entity yet."""
        return _subscribe(self._new_key_listeners, update)

    @callback
    def mark_known(self, meter_id: str, key: str) -> None:
        """Note that an entity exists (e.g. restored from the registry): never announce it."""
        self._known.add((meter_id, key))

    def known(self) -> set[tuple[str, str]]:
        """Return every (meter_id, key) announced so far."""
        return set(self._known)

    # --- state read by entities ----------------------------------------------------------

    def value(self, meter_id: str, key: str) -> Value | None:
        """Return the published value; None before one arrives or after the meter went silent."""
        return self._values.get(meter_id, {}).get(key)

    def is_available(self, meter_id: str) -> bool:
        """Return True while this meter is the one on the port and the port is alive."""
        return self.available and meter_id == self.current_meter

    def counter(self, key: str) -> int | None:
        """Return the current value of a diagnostic counter."""
        if self.connection is None:
            return None
        counters = self.connection.stream.counters
        if key == FRAMES_RECEIVED:
            return counters.frames_ok
        if key == FRAMES_REJECTED:
            return sum(counters.rejected.values())
        if key == RECONNECTS:
            return self.connection.reconnects
        if key.startswith(REJECTED_PREFIX):
            return counters.rejected.get(RejectReason(key.removeprefix(REJECTED_PREFIX)), 0)
        return None

    def device_info_for(self, meter_id: str) -> MeterInfo:
        """Meter info (a stub for a meter not seen yet)."""
        return self.meters.get(meter_id) or MeterInfo(meter_id)

    # --- input from the connection -------------------------------------------------------

    @callback
    def handle_reading(self, reading: Reading) -> None:
        """Take a valid reading: update meter info, scale, publish per policy, notify."""
        meter_id = reading.meter_id or self.current_meter
        if meter_id != self.current_meter:
            self._switch_meter(meter_id)
        self._update_meter_info(meter_id, reading)
        self.last_readings.append(reading)
        self._key_ok()

        values = self._scaled(reading.values)
        if (net := _net_power(values)) is not None:
            values[NET_POWER] = net
        published: dict[str, Value] = dict(values)
        if reading.meter_time is not None:
            published[METER_TIME] = _aware(reading.meter_time)

        scaled = replace(reading, meter_id=meter_id, values=MappingProxyType(dict(values)))
        for key, value in published.items():
            if self._publish_now(key):
                self._publish(meter_id, key, value)
            else:
                self._collect(meter_id, key, value)
        # After publishing: a new entity then starts with its value, not "unknown" first.
        self._announce(meter_id, published)
        for listener in list(self._reading_listeners):
            listener(scaled)

    @callback
    def handle_reject(self, rejected: Rejected) -> None:
        """Take a rejected frame: count it and watch for a key that stopped working."""
        if rejected.reason in KEY_FAILURES:
            self._key_failed()
        if (key := f"{REJECTED_PREFIX}{rejected.reason.value}") not in self._counter_keys:
            self._counter_keys.add(key)
            self._announce_keys(self.default_meter, [key])

    @callback
    def handle_available(self, available: bool) -> None:
        """Follow the connection's watchdog: one info line on loss, one on recovery."""
        if available == self.available:
            return
        self.available = available
        if available:
            LOGGER.info("Meter is sending valid data again")
        else:
            timeout = self.options.silence_timeout
            reason = ""
            if self.connection is not None and not self.connection.connected:
                reason = "; the port is not open"
            LOGGER.info("No valid data from the meter for %s s%s", int(timeout), reason)
            self._forget_measurements()
        for listener in list(self._availability_listeners):
            listener()

    @callback
    def handle_detected(self, key: str) -> None:
        """Store the serial setting auto-detection found (no reload: no update listener)."""
        if self.entry.data.get(CONF_SERIAL_DETECTED) != key:
            LOGGER.info("Serial settings detected: %s", key)
            self.hass.config_entries.async_update_entry(
                self.entry, data={**self.entry.data, CONF_SERIAL_DETECTED: key}
            )

    # --- internals -----------------------------------------------------------------------

    def _switch_meter(self, meter_id: str) -> None:
        """Switch to a different meter ID on the same port: a new meter (its own device)."""
        old = self.current_meter
        self.current_meter = meter_id
        if meter_id not in self.meters:
            self.meters[meter_id] = MeterInfo(meter_id)
            self._naming.add(meter_id)
            LOGGER.info("A new meter is sending on this port; adding it as a new device")
        self._windows = {k: w for k, w in self._windows.items() if k[0] != old}
        for listener in list(self._availability_listeners):
            listener()

    def _update_meter_info(self, meter_id: str, reading: Reading) -> None:
        info = self.meters[meter_id]
        manufacturer = reading.manufacturer or info.manufacturer
        meter_type = reading.meter_type or info.meter_type
        name = info.name
        if meter_id in self._naming:
            self._naming.discard(meter_id)
            name = _default_name(manufacturer, meter_type)
        new = MeterInfo(
            meter_id, manufacturer, meter_type, reading.list_version or info.list_version, name
        )
        if new != info or meter_id not in self._registered:
            self.meters[meter_id] = new
            self._register_device(new)

    def _register_device(self, info: MeterInfo) -> None:
        self._registered.add(info.meter_id)
        dr.async_get(self.hass).async_get_or_create(
            config_entry_id=self.entry.entry_id,
            identifiers={(DOMAIN, info.meter_id)},
            manufacturer=info.manufacturer,
            model=info.meter_type,
            name=info.name,
            serial_number=info.meter_id,
            sw_version=info.list_version,
        )

    def _scaled(self, values: Mapping[str, float]) -> dict[str, float]:
        factor = self.options.ct_multiplier
        out: dict[str, float] = {}
        for key, value in values.items():
            if not math.isfinite(value):
                continue
            out[key] = value * factor if _ct_scaled(key) else value
        return out

    def _publish_now(self, key: str) -> bool:
        if self.options.update_interval <= 0:
            return True
        return self.options.instant_power and key in INSTANT_KEYS

    def _collect(self, meter_id: str, key: str, value: Value) -> None:
        window = self._windows.get((meter_id, key))
        if window is None:
            window = self._windows[(meter_id, key)] = _Window(value)
        window.latest = value
        if isinstance(value, float | int):
            window.total += value
            window.count += 1

    @callback
    def _async_flush_windows(self, _now: datetime | None = None) -> None:
        """Publish each collected value: its mean (averaging) or latest sample."""
        windows, self._windows = self._windows, {}
        for (meter_id, key), window in windows.items():
            value: Value = window.latest
            if (
                self.options.average
                and window.count
                and key not in REGISTER_NAMES
                and not isinstance(window.latest, datetime)
            ):
                value = round(window.total / window.count, 3)
            self._publish(meter_id, key, value)

    def _publish(self, meter_id: str, key: str, value: Value) -> None:
        self._values.setdefault(meter_id, {})[key] = value
        for listener in list(self._value_listeners.get((meter_id, key), ())):
            listener()

    def _forget_measurements(self) -> None:
        """Silence: drop values that describe "now", so recovery never shows stale ones."""
        self._windows.clear()
        for values in self._values.values():
            for key in [k for k in values if k not in REGISTER_NAMES]:
                del values[key]

    def _announce(self, meter_id: str, values: Iterable[str]) -> None:
        new = [key for key in values if (meter_id, key) not in self._known]
        if new:
            self._announce_keys(meter_id, new)

    def _announce_keys(self, meter_id: str, keys: list[str]) -> None:
        for key in keys:
            self._known.add((meter_id, key))
        for listener in list(self._new_key_listeners):
            listener(meter_id, keys)

    def _announce_counters(self) -> None:
        self._counter_keys.update(COUNTER_KEYS)
        self._announce(self.default_meter, COUNTER_KEYS)

    @callback
    def _async_publish_counters(self, _now: datetime | None = None) -> None:
        for listener in list(self._counter_listeners):
            listener()

    def _key_failed(self) -> None:
        watch = self._key_watch
        watch.failures += 1
        now = monotonic()
        if watch.since is None:
            watch.since = now
        if watch.raised:
            return
        if watch.failures > KEY_ISSUE_FRAMES or now - watch.since > KEY_ISSUE_SECONDS:
            watch.raised = True
            LOGGER.warning("The meter's frames keep failing decryption; check the key")
            async_create_key_issue(self.hass, self.entry)

    def _key_ok(self) -> None:
        watch = self._key_watch
        if not watch.failures:
            return
        if watch.raised:
            LOGGER.info("The meter's frames decrypt again")
            async_delete_key_issue(self.hass, self.entry)
        self._key_watch = _KeyWatch()


def _ct_scaled(key: str) -> bool:
    if (unit := UNITS.get(key)) is not None:
        return unit in SCALED_UNITS
    return key.startswith(SCALED_PREFIXES)


def _subscribe[T](listeners: list[T], update: T) -> CALLBACK_TYPE:
    listeners.append(update)
    return lambda: listeners.remove(update)


def _net_power(values: Mapping[str, float]) -> float | None:
    """Import minus export, when the reading determines it.

    A meter's total import and export power are the positive and negative parts of one
    sum, so at most one is non-zero: import > 0 alone fixes net = import even in list 1,
    which carries no export value. Import 0 without an export value says nothing.
    """
    imp = values.get(ACTIVE_POWER_IMPORT)
    exp = values.get(ACTIVE_POWER_EXPORT)
    if imp is not None and exp is not None:
        return imp - exp
    if imp is not None and imp > 0:
        return imp
    if exp is not None and exp > 0:
        return -exp
    return None


def _aware(when: datetime) -> datetime:
    """Meter wall-clock time without an offset is Home Assistant's local time."""
    if when.tzinfo is None:
        return when.replace(tzinfo=dt_util.get_default_time_zone())
    return when
