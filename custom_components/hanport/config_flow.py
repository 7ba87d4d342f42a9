"""Setup UX: find the meter on a port, learn its ID, store the settings that worked.

Every path (user, USB discovery, reconfigure, the key repair) ends in the same probe:
``connection.async_probe`` listens on the port in a progress step (up to ~30 s, since
Aidon and Kaifa name the meter only every 10 s) and classifies what it heard, so the
error the user sees says what to fix: the port, the cable, the serial settings or the
keys. The options form is built from ``OPTION_SECTIONS`` so each feature (measurement,
updates, connection, energy accounting) owns its own section.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USB,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    CountrySelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    SerialPortSelector,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from serialx import SerialPortInfo, list_serial_ports

from .accounting.config import format_step_limits, parse_step_limits
from .connection import ProbeError, ProbeResult, SerialSettings, async_probe, redact_url
from .const import (
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
    DEFAULT_AVERAGE,
    DEFAULT_CAPACITY_PEAKS,
    DEFAULT_CAPACITY_STEPS,
    DEFAULT_CT_MULTIPLIER,
    DEFAULT_INSTANT_POWER,
    DEFAULT_SILENCE_TIMEOUT,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
    LOGGER,
    MAX_CAPACITY_PEAKS,
    MAX_CT_MULTIPLIER,
    MAX_MAX_POWER,
    MAX_SILENCE_TIMEOUT,
    MAX_UPDATE_INTERVAL,
    MIN_CAPACITY_PEAKS,
    MIN_CT_MULTIPLIER,
    MIN_MAX_POWER,
    MIN_SILENCE_TIMEOUT,
    PROBE_TIMEOUT,
    SERIAL_2400_8E1,
    SERIAL_2400_8N1,
    SERIAL_115200_8N1,
    SERIAL_AUTO,
)
from .han.options import DecodeOptions

if TYPE_CHECKING:
    # Home Assistant 2026.10 validates with probatio and aliases ``voluptuous`` to it at
    # runtime; type against probatio so schemas match the flow API's annotations.
    import probatio as vol
    from homeassistant.helpers.service_info.usb import UsbServiceInfo
else:
    import voluptuous as vol

# --- form fields that are not stored as such --------------------------------------------
CONF_SERIAL_MODE: Final = "serial"
"""Form field: SERIAL_AUTO, a preset key, or SERIAL_CUSTOM (then the custom step)."""
SERIAL_CUSTOM: Final = "custom"
CONF_BAUDRATE: Final = "baudrate"
CONF_BYTE_SIZE: Final = "byte_size"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
CONF_UPDATE_POLICY: Final = "update_policy"

POLICY_EVERY_FRAME: Final = "every_frame"
POLICY_AVERAGE: Final = "average"
POLICY_MIN_INTERVAL: Final = "min_interval"
DEFAULT_POLICY_INTERVAL: Final = 10
"""Seconds suggested when the user switches from 'every frame' to a windowed policy."""

SERIAL_PRESETS: Final = (SERIAL_2400_8E1, SERIAL_2400_8N1, SERIAL_115200_8N1)
BAUDRATES: Final = ("300", "1200", "2400", "4800", "9600", "19200", "38400", "57600", "115200")

URL_SCHEMES: Final = ("socket://", "tcp://", "rfc2217://", "esphome://", "esphome-hass://")
"""serialx URL schemes a user may type (besides device paths)."""
_WINDOWS_PORT: Final = re.compile(r"^COM\d+$", re.IGNORECASE)
_KEY_JUNK: Final = re.compile(r"[\s:\-]")
_HEX32: Final = re.compile(r"^[0-9A-F]{32}$")
BY_ID_DIR: Final = "/dev/serial/by-id"

ORIGIN_SERIAL: Final = "serial"
ORIGIN_MANUAL: Final = "manual"
ORIGIN_NETWORK: Final = "network"
ORIGIN_USB: Final = "usb_confirm"
ORIGIN_RECONFIGURE: Final = "reconfigure"
ORIGIN_KEYS: Final = "keys"


# --- helpers shared with repairs.py -----------------------------------------------------


def normalize_key(raw: str | None) -> str | None:
    """Upper-case hex without the spaces, colons or dashes letters print keys with.

    Returns "" for an empty field and None when what remains is not 32 hex digits.
    """
    text = _KEY_JUNK.sub("", raw or "").upper().removeprefix("0X")
    if not text:
        return ""
    return text if _HEX32.match(text) else None


def check_keys(user_input: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Validate the key fields: (normalized keys, field errors)."""
    keys: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in (CONF_KEY, CONF_AUTH_KEY):
        value = normalize_key(user_input.get(field))
        if value is None:
            errors[field] = "invalid_key"
        else:
            keys[field] = value
    if not errors and keys[CONF_AUTH_KEY] and not keys[CONF_KEY]:
        errors[CONF_KEY] = "key_required"
    return keys, errors


def keys_schema(*, required: bool) -> vol.Schema:
    """Build the GUEK/GAK fields (password inputs: they are secrets)."""
    secret = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
    key_marker = vol.Required(CONF_KEY) if required else vol.Optional(CONF_KEY)
    return vol.Schema({key_marker: secret, vol.Optional(CONF_AUTH_KEY): secret})


def decode_options(data: Mapping[str, Any]) -> DecodeOptions:
    """DecodeOptions from entry-style data (hex keys, country code)."""
    key = data.get(CONF_KEY) or ""
    auth_key = data.get(CONF_AUTH_KEY) or ""
    return DecodeOptions(
        country=data.get(CONF_COUNTRY) or None,
        key=bytes.fromhex(key) if key else None,
        auth_key=bytes.fromhex(auth_key) if auth_key else None,
    )


def meter_title(result: ProbeResult) -> str:
    """'Manufacturer model' (e.g. 'Kaifa MA304H4'), or the meter ID when neither is known."""
    reading = result.reading
    if reading is None:
        return "HAN meter"
    parts = [part for part in (reading.manufacturer, reading.meter_type) if part]
    return " ".join(parts) if parts else f"HAN meter {reading.meter_id}"


def probe_error_key(result: ProbeResult) -> str:
    """Return the translation key of a failed probe's error."""
    return str(result.error) if result.error is not None else "unknown"


async def async_run_probe(
    hass: HomeAssistant, data: Mapping[str, Any], *, release: ConfigEntry | None = None
) -> ProbeResult | None:
    """Probe the port in ``data``; with ``release``, free that entry's port meanwhile.

    A loaded entry holds its port open (and a serial port or a one-client TCP bridge
    cannot be shared), so the entry is unloaded while the probe listens. If the probe
    does not succeed, or is cancelled because the user closed the dialog, the entry is
    set up again; on success the caller stores the new data and reloads it. Returns
    None (logged) when the probe itself failed unexpectedly: the flow shows "unknown".
    """
    released = False
    if release is not None and release.state in (
        ConfigEntryState.LOADED,
        ConfigEntryState.SETUP_RETRY,
    ):
        released = await hass.config_entries.async_unload(release.entry_id)
    result: ProbeResult | None = None
    try:
        result = await async_probe(
            data[CONF_URL],
            serial=SerialSettings.parse(data.get(CONF_SERIAL)),
            options=decode_options(data),
            timeout=PROBE_TIMEOUT,
            hass=hass,
        )
    except Exception:  # noqa: BLE001 - a failed probe is reported to the user, not raised
        LOGGER.exception("Unexpected error while listening on %s", redact_url(data[CONF_URL]))
    finally:
        if released and release is not None and (result is None or not result.success):
            hass.config_entries.async_schedule_reload(release.entry_id)
    return result


def found_data(result: ProbeResult) -> dict[str, Any]:
    """Return what a successful probe adds to the entry data."""
    reading = result.reading
    return {
        CONF_METER_ID: reading.meter_id if reading else None,
        CONF_MANUFACTURER: reading.manufacturer if reading else None,
        CONF_METER_TYPE: reading.meter_type if reading else None,
        CONF_SERIAL_DETECTED: result.serial.key if result.serial else None,
    }


def by_id_path(path: str) -> str:
    """Return the stable /dev/serial/by-id name of a device path, when one exists."""
    if not path.startswith("/dev/") or not os.path.isdir(BY_ID_DIR):
        return path
    real = os.path.realpath(path)
    for entry in os.scandir(BY_ID_DIR):
        if entry.is_symlink() and os.path.realpath(entry.path) == real:
            return entry.path
    return path


def usb_id(vid: str, pid: str, serial_number: str | None) -> str | None:
    """Return the identity an entry keeps of its USB adapter, "usb:<vid>:<pid>:<serial>".

    None without a serial number: two adapters of one model could not be told apart.
    """
    return f"usb:{vid}:{pid}:{serial_number}" if serial_number else None


def usb_id_of_port(path: str) -> str | None:
    """Return the USB identity of the adapter behind a device path (None when unknown).

    Blocking (it lists the serial ports): run it in the executor.
    """
    if not path.startswith("/"):
        return None
    real = os.path.realpath(path)
    ports: list[SerialPortInfo] = []
    with contextlib.suppress(OSError):  # no port list (e.g. no /sys): identity unknown
        ports = list_serial_ports()
    for port in ports:
        if port.vid is not None and port.pid is not None and os.path.realpath(port.device) == real:
            # Formatted as Home Assistant's USB discovery reports vid and pid.
            return usb_id(f"{port.vid:04X}", f"{port.pid:04X}", port.serial_number)
    return None


def uses_adapter(data: Mapping[str, Any], adapter: str) -> bool:
    """Whether entry data reads the meter through this USB adapter.

    Only a device path follows an adapter: a bridge's entry (socket://, rfc2217://,
    esphome://) never matches, whatever identity it may have kept.
    """
    return data.get(CONF_USB_ID) == adapter and str(data.get(CONF_URL, "")).startswith("/")


def valid_url(url: str) -> bool:
    """Accept a device path, a Windows COM port or a serialx URL we know how to open."""
    if url.startswith("/") or _WINDOWS_PORT.match(url):
        return True
    lowered = url.lower()
    return any(lowered.startswith(scheme) and len(url) > len(scheme) for scheme in URL_SCHEMES)


def network_url(host: str, port: int) -> str:
    """socket://host:port, bracketing a bare IPv6 address."""
    host = host.strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"socket://{host}:{port}"


# --- schemas ------------------------------------------------------------------------------


def _serial_mode_selector() -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=[SERIAL_AUTO, *SERIAL_PRESETS, SERIAL_CUSTOM],
            translation_key="serial",
            mode=SelectSelectorMode.DROPDOWN,
        )
    )


def _country_field(default: str | None) -> dict[Any, Any]:
    marker = vol.Optional(CONF_COUNTRY, default=default) if default else vol.Optional(CONF_COUNTRY)
    return {marker: CountrySelector()}


def serial_mode_of(stored: str | None) -> str:
    """Map a stored serial setting to the form's choice (a non-preset one is 'custom')."""
    if not stored or stored == SERIAL_AUTO:
        return SERIAL_AUTO
    return stored if stored in SERIAL_PRESETS else SERIAL_CUSTOM


def custom_schema() -> vol.Schema:
    """Baud rate and character format for a meter none of the presets fit."""

    def select(options: list[str], key: str) -> SelectSelector:
        return SelectSelector(
            SelectSelectorConfig(
                options=options, translation_key=key, mode=SelectSelectorMode.DROPDOWN
            )
        )

    return vol.Schema(
        {
            vol.Required(CONF_BAUDRATE, default="2400"): select(list(BAUDRATES), CONF_BAUDRATE),
            vol.Required(CONF_BYTE_SIZE, default="8"): select(["7", "8"], CONF_BYTE_SIZE),
            vol.Required(CONF_PARITY, default="E"): select(["N", "E", "O"], CONF_PARITY),
            vol.Required(CONF_STOPBITS, default="1"): select(["1", "2"], CONF_STOPBITS),
        }
    )


def custom_defaults(stored: str | None) -> dict[str, str]:
    """Suggested custom-step values from a stored fixed setting."""
    settings = SerialSettings.parse(stored)
    if settings is None:
        return {}
    return {
        CONF_BAUDRATE: str(settings.baudrate),
        CONF_BYTE_SIZE: str(settings.byte_size),
        CONF_PARITY: str(settings.parity.value),
        CONF_STOPBITS: str(int(settings.stopbits)),
    }


# --- the config flow ------------------------------------------------------------------


class HanportConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a meter: choose the port, listen, ask for keys if the meter encrypts."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start with nothing tried."""
        self._data: dict[str, Any] = {}
        """Entry-style data being tried: url, serial, country, key, auth_key."""
        self._form: dict[str, Any] = {}
        """What the user typed in the origin form (redisplayed after an error)."""
        self._origin = ORIGIN_SERIAL
        self._probe_task: asyncio.Task[ProbeResult | None] | None = None
        self._result: ProbeResult | None = None
        self._usb_name = ""
        self._usb_id: str | None = None
        self._custom: str | None = None
        """The last custom serial setting (suggested when the custom step shows again)."""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> HanportOptionsFlow:
        """Options: publishing policy, CT multiplier, watchdog."""
        return HanportOptionsFlow()

    # --- entry points -----------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask how the reader is connected."""
        return self.async_show_menu(
            step_id="user", menu_options=[ORIGIN_SERIAL, ORIGIN_MANUAL, ORIGIN_NETWORK]
        )

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick a serial port Home Assistant lists (USB adapters, ESPHome serial proxies)."""
        self._origin = ORIGIN_SERIAL
        if user_input is None:
            return self._show_origin_form()
        self._form = user_input
        url = await self.hass.async_add_executor_job(by_id_path, user_input[CONF_URL])
        return await self._async_port_chosen(url, user_input)

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Type a device path or serialx URL by hand (rfc2217://, esphome://, ...)."""
        self._origin = ORIGIN_MANUAL
        if user_input is None:
            return self._show_origin_form()
        self._form = user_input
        url = user_input[CONF_URL].strip()
        if not valid_url(url):
            return self._show_origin_form({CONF_URL: "invalid_url"})
        return await self._async_port_chosen(url, user_input)

    async def async_step_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Reach a raw TCP bridge (ser2net, ESP stream server) by host and port."""
        self._origin = ORIGIN_NETWORK
        if user_input is None:
            return self._show_origin_form()
        self._form = user_input
        url = network_url(user_input[CONF_HOST], int(user_input[CONF_PORT]))
        return await self._async_port_chosen(url, {**user_input, CONF_SERIAL_MODE: SERIAL_AUTO})

    async def async_step_usb(self, discovery_info: UsbServiceInfo) -> ConfigFlowResult:
        """Offer a matching USB adapter that was plugged in, unless it is already in use.

        An entry whose adapter (same vid, pid and serial number) shows up at another path
        is moved there and reloaded instead; a port another entry uses is never taken.
        """
        url = await self.hass.async_add_executor_job(by_id_path, discovery_info.device)
        self._async_abort_entries_match({CONF_URL: url})
        self._usb_id = usb_id(discovery_info.vid, discovery_info.pid, discovery_info.serial_number)
        if self._usb_id is not None:
            for entry in self._async_current_entries(include_ignore=False):
                if uses_adapter(entry.data, self._usb_id):
                    return self.async_update_reload_and_abort(
                        entry, data_updates={CONF_URL: url}, reason="already_configured"
                    )
        await self.async_set_unique_id(
            f"usb:{discovery_info.vid}:{discovery_info.pid}:"
            f"{discovery_info.serial_number or discovery_info.device}"
        )
        self._abort_if_unique_id_configured()
        name = discovery_info.description or discovery_info.device
        if discovery_info.manufacturer and discovery_info.manufacturer not in name:
            name = f"{name} ({discovery_info.manufacturer})"
        self._usb_name = name
        self._data = {CONF_URL: url}
        self.context["title_placeholders"] = {"name": name}
        return await self.async_step_usb_confirm()

    async def async_step_usb_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm the discovered adapter (and optionally fix its serial settings)."""
        self._origin = ORIGIN_USB
        if user_input is None:
            return self._show_origin_form()
        self._form = user_input
        return await self._async_port_chosen(self._data[CONF_URL], user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the port, serial settings or keys of an existing meter (same meter only)."""
        self._origin = ORIGIN_RECONFIGURE
        entry = self._get_reconfigure_entry()
        if user_input is None:
            self._custom = entry.data.get(CONF_SERIAL)
            self._form = {
                CONF_URL: entry.data[CONF_URL],
                CONF_SERIAL_MODE: serial_mode_of(entry.data.get(CONF_SERIAL)),
                CONF_KEY: entry.data.get(CONF_KEY) or "",
                CONF_AUTH_KEY: entry.data.get(CONF_AUTH_KEY) or "",
            }
            return self._show_origin_form()
        self._form = user_input
        url = user_input[CONF_URL].strip()
        if not valid_url(url):
            return self._show_origin_form({CONF_URL: "invalid_url"})
        keys, errors = check_keys(user_input)
        if errors:
            return self._show_origin_form(errors)
        country = entry.options.get(CONF_COUNTRY, entry.data.get(CONF_COUNTRY))
        return await self._async_port_chosen(url, {**user_input, CONF_COUNTRY: country}, keys)

    # --- serial settings ----------------------------------------------------------------

    async def _async_port_chosen(
        self, url: str, form: Mapping[str, Any], keys: Mapping[str, str] | None = None
    ) -> ConfigFlowResult:
        """Remember port, country and keys; ask for custom serial settings if chosen."""
        if self.source != SOURCE_RECONFIGURE:
            self._async_abort_entries_match({CONF_URL: url})
        if self.source != SOURCE_USB:
            self._usb_id = await self.hass.async_add_executor_job(usb_id_of_port, url)
        self._data = {
            CONF_URL: url,
            CONF_USB_ID: self._usb_id,
            CONF_COUNTRY: form.get(CONF_COUNTRY) or "",
            CONF_KEY: "",
            CONF_AUTH_KEY: "",
            **(keys or {}),
        }
        mode = form.get(CONF_SERIAL_MODE, SERIAL_AUTO)
        if mode == SERIAL_CUSTOM:
            return await self.async_step_serial_custom()
        self._data[CONF_SERIAL] = mode
        return await self.async_step_probe()

    async def async_step_serial_custom(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Baud rate, data bits, parity and stop bits when no preset fits."""
        if user_input is None:
            return self.async_show_form(
                step_id="serial_custom",
                data_schema=self.add_suggested_values_to_schema(
                    custom_schema(), custom_defaults(self._custom)
                ),
                description_placeholders=self._placeholders(),
            )
        self._custom = self._data[CONF_SERIAL] = (
            f"{user_input[CONF_BAUDRATE]}_{user_input[CONF_BYTE_SIZE]}"
            f"{user_input[CONF_PARITY]}{user_input[CONF_STOPBITS]}"
        )
        return await self.async_step_probe()

    # --- keys ---------------------------------------------------------------------------

    async def async_step_keys(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the GUEK (and the GAK if the meter uses one) of an encrypting meter."""
        if user_input is None:
            return self._show_keys_form()
        self._origin = ORIGIN_KEYS
        keys, errors = check_keys(user_input)
        if errors:
            return self._show_keys_form(errors, user_input)
        self._data.update(keys)
        return await self.async_step_probe()

    def _show_keys_form(
        self, errors: dict[str, str] | None = None, suggested: Mapping[str, Any] | None = None
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=ORIGIN_KEYS,
            data_schema=self.add_suggested_values_to_schema(
                keys_schema(required=True), suggested or {}
            ),
            errors=errors,
            description_placeholders=self._placeholders(),
        )

    # --- probing ------------------------------------------------------------------------

    async def async_step_probe(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Listen on the port while the user watches a spinner."""
        if self._probe_task is None:
            release = self._get_reconfigure_entry() if self.source == SOURCE_RECONFIGURE else None
            self._probe_task = self.hass.async_create_task(
                async_run_probe(self.hass, dict(self._data), release=release), "hanport probe"
            )
        if not self._probe_task.done():
            return self.async_show_progress(
                step_id="probe",
                progress_action="probe",
                description_placeholders=self._placeholders(),
                progress_task=self._probe_task,
            )
        task, self._probe_task = self._probe_task, None
        self._result = task.result()
        return self.async_show_progress_done(next_step_id="probe_done")

    async def async_step_probe_done(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Act on what the probe heard: create/update the entry, ask for keys, or explain."""
        result, self._result = self._result, None
        if result is None:
            return self._show_error("unknown")
        if result.error is ProbeError.ENCRYPTED:
            return await self.async_step_keys()
        if result.error is not None:
            return self._show_error(probe_error_key(result))
        data = {**self._data, **found_data(result)}
        meter_id = str(data[CONF_METER_ID])
        if self.source == SOURCE_RECONFIGURE:
            entry = self._get_reconfigure_entry()
            if entry.unique_id != meter_id:
                # The probe succeeded, so it left the entry unloaded: set it up again.
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_abort(
                    reason="wrong_meter",
                    description_placeholders={"found": meter_id, "expected": str(entry.unique_id)},
                )
            return self.async_update_reload_and_abort(entry, data={**entry.data, **data})
        await self.async_set_unique_id(meter_id, raise_on_progress=False)
        self._abort_if_unique_id_configured(
            updates={CONF_URL: data[CONF_URL], CONF_USB_ID: data[CONF_USB_ID]}
            if self.source == SOURCE_USB
            else None
        )
        return self.async_create_entry(title=meter_title(result), data=data)

    def _show_error(self, error: str) -> ConfigFlowResult:
        """Back to the form the user came from, with the probe's error."""
        if self._origin == ORIGIN_KEYS:
            return self._show_keys_form({"base": error})
        return self._show_origin_form({"base": error})

    # --- forms --------------------------------------------------------------------------

    @property
    def _url(self) -> str:
        return str(self._data.get(CONF_URL) or self._form.get(CONF_URL) or "")

    def _placeholders(self) -> dict[str, str]:
        return {
            "url": redact_url(self._url),
            "name": self._usb_name,
            "seconds": str(int(PROBE_TIMEOUT)),
        }

    def _show_origin_form(self, errors: dict[str, str] | None = None) -> ConfigFlowResult:
        """Show the form of the step that chose the port, with what the user typed."""
        country = self.hass.config.country
        fields: dict[Any, Any] = {}
        if self._origin == ORIGIN_NETWORK:
            fields[vol.Required(CONF_HOST)] = TextSelector()
            fields[vol.Required(CONF_PORT)] = NumberSelector(
                NumberSelectorConfig(min=1, max=65535, step=1, mode=NumberSelectorMode.BOX)
            )
        else:
            if self._origin == ORIGIN_SERIAL:
                fields[vol.Required(CONF_URL)] = SerialPortSelector()
            elif self._origin != ORIGIN_USB:
                fields[vol.Required(CONF_URL)] = TextSelector()
            fields[vol.Required(CONF_SERIAL_MODE, default=SERIAL_AUTO)] = _serial_mode_selector()
        if self._origin == ORIGIN_RECONFIGURE:
            fields.update(keys_schema(required=False).schema)
        else:
            fields.update(_country_field(country))
        return self.async_show_form(
            step_id=self._origin,
            data_schema=self.add_suggested_values_to_schema(vol.Schema(fields), self._form),
            errors=errors,
            description_placeholders=self._placeholders(),
        )


# --- options ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionsSection:
    """One block of the options form; features append theirs to OPTION_SECTIONS.

    ``fields`` builds the section's schema from the current settings (entry data overlaid
    with its options, so an option can default to what setup stored);
    ``store`` turns the section's input into option values (None removes the option, so
    the runtime falls back to its default), or returns errors keyed by field or "base".
    """

    key: str
    fields: Callable[[Mapping[str, Any]], dict[Any, Any]]
    store: Callable[[Mapping[str, Any]], tuple[dict[str, Any], dict[str, str]]]
    collapsed: bool = False


def _number(minimum: float, maximum: float, step: float, unit: str | None) -> NumberSelector:
    config = NumberSelectorConfig(min=minimum, max=maximum, step=step, mode=NumberSelectorMode.BOX)
    if step == 0:
        config["step"] = "any"
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _measurement_fields(current: Mapping[str, Any]) -> dict[Any, Any]:
    return {
        vol.Required(
            CONF_CT_MULTIPLIER, default=current.get(CONF_CT_MULTIPLIER, DEFAULT_CT_MULTIPLIER)
        ): _number(MIN_CT_MULTIPLIER, MAX_CT_MULTIPLIER, 0, None),
        # A suggestion, not a default: clearing the field means "infer from the meter".
        vol.Optional(
            CONF_COUNTRY, description={"suggested_value": current.get(CONF_COUNTRY) or None}
        ): CountrySelector(),
    }


def _measurement_store(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    return {
        CONF_CT_MULTIPLIER: float(data[CONF_CT_MULTIPLIER]),
        CONF_COUNTRY: data.get(CONF_COUNTRY) or "",
    }, {}


def policy_of(options: Mapping[str, Any]) -> str:
    """Return the update policy the stored interval/average pair means."""
    if int(options.get(CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL)) <= 0:
        return POLICY_EVERY_FRAME
    return POLICY_AVERAGE if options.get(CONF_AVERAGE, DEFAULT_AVERAGE) else POLICY_MIN_INTERVAL


def _updates_fields(current: Mapping[str, Any]) -> dict[Any, Any]:
    interval = int(current.get(CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL))
    return {
        vol.Required(CONF_UPDATE_POLICY, default=policy_of(current)): SelectSelector(
            SelectSelectorConfig(
                options=[POLICY_EVERY_FRAME, POLICY_AVERAGE, POLICY_MIN_INTERVAL],
                translation_key=CONF_UPDATE_POLICY,
                mode=SelectSelectorMode.LIST,
            )
        ),
        vol.Required(
            CONF_UPDATE_INTERVAL, default=interval if interval > 0 else DEFAULT_POLICY_INTERVAL
        ): _number(1, MAX_UPDATE_INTERVAL, 1, "s"),
        vol.Required(
            CONF_INSTANT_POWER, default=current.get(CONF_INSTANT_POWER, DEFAULT_INSTANT_POWER)
        ): BooleanSelector(),
    }


def _updates_store(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    policy = data[CONF_UPDATE_POLICY]
    every_frame = policy == POLICY_EVERY_FRAME
    return {
        CONF_UPDATE_INTERVAL: 0 if every_frame else int(data[CONF_UPDATE_INTERVAL]),
        CONF_AVERAGE: policy == POLICY_AVERAGE,
        CONF_INSTANT_POWER: bool(data[CONF_INSTANT_POWER]),
    }, {}


def _connection_fields(current: Mapping[str, Any]) -> dict[Any, Any]:
    return {
        vol.Required(
            CONF_SILENCE_TIMEOUT,
            default=current.get(CONF_SILENCE_TIMEOUT, DEFAULT_SILENCE_TIMEOUT),
        ): _number(MIN_SILENCE_TIMEOUT, MAX_SILENCE_TIMEOUT, 1, "s"),
    }


def _connection_store(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    return {CONF_SILENCE_TIMEOUT: int(data[CONF_SILENCE_TIMEOUT])}, {}


def _accounting_fields(current: Mapping[str, Any]) -> dict[Any, Any]:
    steps = current.get(CONF_CAPACITY_STEPS, DEFAULT_CAPACITY_STEPS)
    return {
        vol.Required(
            CONF_CAPACITY_PEAKS,
            default=int(current.get(CONF_CAPACITY_PEAKS, DEFAULT_CAPACITY_PEAKS)),
        ): _number(MIN_CAPACITY_PEAKS, MAX_CAPACITY_PEAKS, 1, None),
        # Text, not a list selector: grid companies publish the steps as one line.
        vol.Required(CONF_CAPACITY_STEPS, default=format_step_limits(steps)): TextSelector(
            TextSelectorConfig(suffix="kW")
        ),
        # A suggestion, not a default: empty means the fuse default times the CT ratio,
        # which follows a later change of the ratio.
        vol.Optional(
            CONF_MAX_POWER, description={"suggested_value": current.get(CONF_MAX_POWER)}
        ): _number(MIN_MAX_POWER, MAX_MAX_POWER, 0, "kW"),
    }


def _accounting_store(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    max_power = data.get(CONF_MAX_POWER)
    values: dict[str, Any] = {
        CONF_CAPACITY_PEAKS: int(data[CONF_CAPACITY_PEAKS]),
        CONF_MAX_POWER: None if max_power is None else float(max_power),
    }
    try:
        values[CONF_CAPACITY_STEPS] = list(parse_step_limits(str(data[CONF_CAPACITY_STEPS])))
    except ValueError:
        return values, {CONF_CAPACITY_STEPS: "invalid_capacity_steps"}
    return values, {}


OPTION_SECTIONS: list[OptionsSection] = [
    OptionsSection("measurement", _measurement_fields, _measurement_store),
    OptionsSection("updates", _updates_fields, _updates_store),
    OptionsSection("connection", _connection_fields, _connection_store, collapsed=True),
    OptionsSection("accounting", _accounting_fields, _accounting_store, collapsed=True),
]
"""The options form, in order. Append a section here to add options."""


class HanportOptionsFlow(OptionsFlowWithReload):
    """How values are published; the entry reloads when the options change."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form, one section per concern; options are stored flat.

        The frontend shows errors only for top-level items, so a field's error is shown
        on its section (which then opens); what the user typed is shown again.
        """
        entry = self.config_entry
        current: Mapping[str, Any] = {**entry.data, **entry.options}
        errors: dict[str, str] = {}
        if user_input is not None:
            new: dict[str, Any] = dict(entry.options)
            for part in OPTION_SECTIONS:
                values, part_errors = part.store(user_input[part.key])
                for key, value in values.items():
                    if value is None:
                        new.pop(key, None)
                    else:
                        new[key] = value
                for field, error in part_errors.items():
                    errors.setdefault("base" if field == "base" else part.key, error)
            if not errors:
                return self.async_create_entry(data=new)
            current = {**entry.data, **new}  # nothing stored; the form shows the input
        schema = vol.Schema(
            {
                vol.Required(part.key): section(
                    vol.Schema(part.fields(current)),
                    {"collapsed": part.collapsed and part.key not in errors},
                )
                for part in OPTION_SECTIONS
            }
        )
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(step_id="init", data_schema=schema, errors=errors)
