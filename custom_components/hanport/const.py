"""Constants shared by the integration: domain, config-entry data keys, option keys, defaults.

Entry ``data`` holds what identifies and reaches the meter (port URL, serial settings,
keys, country); entry ``options`` holds how values are published (CT multiplier, update
policy, watchdog). The config flow and the runtime both read the keys defined here.

Reload contract: ``__init__`` registers NO update listener. The options flow uses
``OptionsFlowWithReload`` and reconfigure uses ``async_update_reload_and_abort``; the runtime
itself calls ``async_update_entry`` only to store ``CONF_SERIAL_DETECTED`` (no reload wanted).
Options absent from ``entry.options`` fall back to the defaults below.
"""

from __future__ import annotations

import logging
from typing import Final

from .accounting import config as _acc

DOMAIN: Final = "hanport"
LOGGER: Final = logging.getLogger(__package__)

# --- config entry data (connection; set by the user/reconfigure flow) -----------------
CONF_URL: Final = "url"
"""serialx URL or device path: /dev/serial/by-id/..., socket://h:p, rfc2217://h:p, esphome://..."""

CONF_SERIAL: Final = "serial"
"""Serial settings: SERIAL_AUTO or one of SERIAL_SETTINGS (e.g. "2400_8E1")."""

CONF_SERIAL_DETECTED: Final = "serial_detected"
"""The setting auto-detection found (flow stores it; the runtime updates it when it changes)."""

CONF_KEY: Final = "key"
"""Encryption key (GUEK) as 32 hex characters; absent or empty when the meter is plaintext."""

CONF_AUTH_KEY: Final = "auth_key"
"""Authentication key (GAK) as 32 hex characters; optional."""

CONF_COUNTRY: Final = "country"
"""ISO 3166 alpha-2 market ("NO", "SE", "DK", ...) deciding implicit scaling; "" = infer."""

CONF_METER_ID: Final = "meter_id"
"""Meter ID found by the probe (also the entry's unique_id)."""

CONF_MANUFACTURER: Final = "manufacturer"
CONF_METER_TYPE: Final = "meter_type"

CONF_USB_ID: Final = "usb_id"
"""USB adapter behind the URL, "usb:<vid>:<pid>:<serial number>" (None: not a USB adapter, or
one without a serial number); USB discovery moves the entry when the adapter shows up elsewhere."""

SERIAL_AUTO: Final = "auto"
SERIAL_2400_8E1: Final = "2400_8E1"
SERIAL_2400_8N1: Final = "2400_8N1"
SERIAL_115200_8N1: Final = "115200_8N1"
SERIAL_115200_8E1: Final = "115200_8E1"
SERIAL_9600_8N1: Final = "9600_8N1"
SERIAL_SETTINGS: Final = (
    SERIAL_2400_8E1,
    SERIAL_2400_8N1,
    SERIAL_115200_8N1,
    SERIAL_115200_8E1,
    SERIAL_9600_8N1,
)
"""Every fixed choice the flow may offer (value strings are stored in entry data)."""

SERIAL_AUTO_ORDER: Final = (SERIAL_2400_8E1, SERIAL_2400_8N1, SERIAL_115200_8N1)
"""What auto-detection tries, in order: Aidon/Kaifa, Kamstrup, P1."""

# --- config entry options (publishing) ---------------------------------------------
CONF_CT_MULTIPLIER: Final = "ct_multiplier"
"""Current-transformer ratio applied to power, current and energy (not voltage)."""
DEFAULT_CT_MULTIPLIER: Final = 1.0

CONF_UPDATE_INTERVAL: Final = "update_interval"
"""Seconds; 0 = publish every frame. Otherwise measurement values other than instant active
power are published at most once per interval (the window for averaging)."""
DEFAULT_UPDATE_INTERVAL: Final = 0

CONF_AVERAGE: Final = "average"
"""When the interval is > 0: publish the mean over the window instead of the latest value."""
DEFAULT_AVERAGE: Final = False

CONF_INSTANT_POWER: Final = "instant_power"
"""Active power (import, export, net) updates on every frame regardless of the interval."""
DEFAULT_INSTANT_POWER: Final = True

CONF_SILENCE_TIMEOUT: Final = "silence_timeout"
"""Seconds without a valid frame before the link is reopened and entities go unavailable."""
DEFAULT_SILENCE_TIMEOUT: Final = 30

# --- energy accounting options (accounting/) -----------------------------------------
CONF_CAPACITY_PEAKS: Final = "capacity_peaks"
"""How many daily peak hours the monthly capacity value averages (Norway: 3), 1-5."""
DEFAULT_CAPACITY_PEAKS: Final = _acc.DEFAULT_CAPACITY_PEAKS
MIN_CAPACITY_PEAKS: Final = _acc.MIN_CAPACITY_PEAKS
MAX_CAPACITY_PEAKS: Final = _acc.MAX_CAPACITY_PEAKS

CONF_CAPACITY_STEPS: Final = "capacity_steps"
"""Upper limits (kW) of the capacity steps, strictly rising, stored as a list of numbers.
A text field can use accounting.config.parse_step_limits (ValueError -> form error) and
format_step_limits for its default."""
DEFAULT_CAPACITY_STEPS: Final = _acc.DEFAULT_STEP_LIMITS_KW

CONF_MAX_POWER: Final = "max_power"
"""kW the installation can draw at most (its fuse): an energy register rising faster than
this is rejected as corrupt. When unset: 3 x 63 A x 230 V, times the CT multiplier."""
DEFAULT_MAX_POWER: Final = _acc.DEFAULT_MAX_POWER_KW
MIN_MAX_POWER: Final = _acc.MIN_MAX_POWER_KW
MAX_MAX_POWER: Final = _acc.MAX_MAX_POWER_KW

# --- limits the flow's selectors should use -------------------------------------------
MIN_UPDATE_INTERVAL: Final = 0
MAX_UPDATE_INTERVAL: Final = 3600
MIN_SILENCE_TIMEOUT: Final = 15
MAX_SILENCE_TIMEOUT: Final = 3600
MIN_CT_MULTIPLIER: Final = 1.0
MAX_CT_MULTIPLIER: Final = 10000.0

# --- runtime ------------------------------------------------------------------------
PROBE_TIMEOUT: Final = 30.0
"""Seconds a probe listens for a reading with a meter ID (Aidon/Kaifa send it every 10 s)."""

RECONNECT_MIN: Final = 1.0
RECONNECT_MAX: Final = 60.0
"""Longest wait between attempts to reach a network bridge."""
RECONNECT_MAX_SERIAL: Final = 10.0
"""Longest wait between attempts to open a local serial port: trying costs one failed
open(), and a replugged adapter should be read again within seconds."""

KEY_ISSUE_FRAMES: Final = 10
"""Consecutive decryption/authentication failures after which the key repair is raised ..."""
KEY_ISSUE_SECONDS: Final = 300.0
"""... or failures without one good frame for this long (whichever comes first)."""

ISSUE_KEY: Final = "bad_key"
"""Issue id suffix for the repair raised when the key stops working (f"{ISSUE_KEY}_{entry_id}")."""
