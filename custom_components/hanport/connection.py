"""The link to the meter: one serialx path for every port kind, kept alive for as long as the entry.

Every port is a serialx URL (a device path, ``socket://``, ``rfc2217://``, ``esphome://`` or
``esphome-hass://``) opened with ``serialx.create_serial_connection`` and an asyncio protocol
that feeds a single ``MeterStream``. ``HanConnection`` reconnects with exponential backoff and
runs a silence watchdog; ``async_probe`` is the one-shot check the config flow uses.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Final, override
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from homeassistant.exceptions import HomeAssistantError
from serialx import (
    BaseSerialTransport,
    Parity,
    SerialException,
    StopBits,
    create_serial_connection,
)

from .const import (
    LOGGER,
    PROBE_TIMEOUT,
    RECONNECT_MAX,
    RECONNECT_MAX_SERIAL,
    RECONNECT_MIN,
    SERIAL_2400_8E1,
    SERIAL_AUTO_ORDER,
)
from .han.errors import Rejected, RejectReason
from .han.options import DecodeOptions
from .han.reading import Protocol, Reading
from .han.stream import MeterStream

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

OPEN_ERRORS: Final = (OSError, TimeoutError, SerialException, ValueError, HomeAssistantError)
"""What opening a serialx URL raises: OS errors, bad URLs, ESPHome not loaded yet."""

OPEN_TIMEOUT: Final = 15.0
CLOSE_TIMEOUT: Final = 5.0
BURST_GAP: Final = 0.5
"""Seconds of quiet that end a burst: meters send a frame back to back, then pause."""
PROBE_SWITCH_GRACE: Final = 12.0
"""After a serial-setting switch the probe listens at least this long (10 s meters)."""

FRAMING_OK_REASONS: Final = frozenset(
    {
        RejectReason.MALFORMED_APDU,
        RejectReason.UNSUPPORTED_APDU,
        RejectReason.BLOCK_TRANSFER,
        RejectReason.ENCRYPTED_NO_KEY,
        RejectReason.DECRYPTION_FAILED,
        RejectReason.AUTHENTICATION_FAILED,
        RejectReason.UNKNOWN_LAYOUT,
        RejectReason.P1_MALFORMED,
    }
)
"""Rejections that happen after a frame passed its checksum: the serial settings are right."""

KEY_REASONS: Final = frozenset({RejectReason.DECRYPTION_FAILED, RejectReason.AUTHENTICATION_FAILED})

_SETTINGS_RE: Final = re.compile(r"^(\d+)_([5-8])([NEOMS])(1|1\.5|2)$")
_NO_SERIAL_SCHEMES: Final = ("socket://", "tcp://")
_SECRET_QUERY_KEYS: Final = frozenset({"key", "noise_psk", "psk", "password", "pass", "token"})


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Baud rate and character format; ``key`` is the string stored in entry data."""

    baudrate: int
    parity: Parity
    byte_size: int = 8
    stopbits: StopBits = StopBits.ONE

    @property
    def key(self) -> str:
        """E.g. ``2400_8E1``: the form the config entry stores and the flow offers."""
        stop = "1.5" if self.stopbits is StopBits.ONE_POINT_FIVE else str(int(self.stopbits))
        return f"{self.baudrate}_{self.byte_size}{self.parity.value}{stop}"

    @classmethod
    def from_key(cls, key: str) -> SerialSettings:
        """Parse ``2400_8E1``; raises ValueError for anything else."""
        if (match := _SETTINGS_RE.match(key)) is None:
            raise ValueError(f"Invalid serial settings {key!r}")
        baud, size, parity, stop = match.groups()
        return cls(int(baud), Parity(parity), int(size), StopBits(float(stop)))

    @classmethod
    def parse(cls, key: str | None) -> SerialSettings | None:
        """Like ``from_key`` but ``None`` for a missing, "auto" or unreadable value."""
        if not key:
            return None
        try:
            return cls.from_key(key)
        except ValueError:
            return None


AUTO_ORDER: Final = tuple(SerialSettings.from_key(key) for key in SERIAL_AUTO_ORDER)
DEFAULT_SETTINGS: Final = SerialSettings.from_key(SERIAL_2400_8E1)


def serial_settings_apply(url: str) -> bool:
    """Whether baud rate and parity mean anything for this URL (a raw TCP socket: no)."""
    return not url.lower().startswith(_NO_SERIAL_SCHEMES)


def redact_url(url: str) -> str:
    """Return the URL without credentials (userinfo password, secret query values)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "**REDACTED**"
    if not parts.scheme:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:**REDACTED**@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = urlencode(
        [
            (name, "**REDACTED**" if name.lower() in _SECRET_QUERY_KEYS else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def describe_error(err: BaseException, url: str) -> str:
    """Return ``Type: message`` with the URL's secrets removed (errors may quote the URL)."""
    text = f"{type(err).__name__}: {err}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return text.replace(url, "**REDACTED**")
    secrets = [
        value for name, value in parse_qsl(parts.query) if name.lower() in _SECRET_QUERY_KEYS
    ]
    if parts.password:
        secrets.append(parts.password)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**REDACTED**")
    return text


class _LinkProtocol(asyncio.Protocol):
    """asyncio protocol handing bytes and the end of the link to its owner."""

    def __init__(
        self, on_data: Callable[[bytes], None], on_lost: Callable[[Exception | None], None]
    ) -> None:
        self._on_data = on_data
        self._on_lost = on_lost

    @override
    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    @override
    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)


async def _async_open(
    url: str, settings: SerialSettings, protocol: _LinkProtocol
) -> BaseSerialTransport:
    """Open ``url`` with ``settings``; raises one of OPEN_ERRORS."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(OPEN_TIMEOUT):
        transport, _ = await create_serial_connection(
            loop,
            lambda: protocol,
            url,
            baudrate=settings.baudrate,
            parity=settings.parity,
            stopbits=settings.stopbits,
            byte_size=settings.byte_size,
        )
    return transport


async def _async_close(transport: BaseSerialTransport | None) -> None:
    """Close and wait (bounded) until the port is released."""
    if transport is None:
        return
    transport.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await transport.wait_closed()
    except TimeoutError:
        transport.abort()


@dataclass(slots=True)
class _Evidence:
    """What one open link has shown about its serial settings."""

    bytes: int = 0
    framing_ok: bool = False

    @property
    def wrong_settings(self) -> bool:
        """Bytes arrived but not one passed a checksum."""
        return self.bytes > 0 and not self.framing_ok


class HanConnection:
    """Keeps the meter link open, feeds the stream and reports readings and liveness.

    Liveness has one definition: a valid frame within ``silence_timeout``. The watchdog
    is armed at start and re-armed by each valid frame; when it fires, the owner is told
    the meter is unavailable and an open link is closed and reopened (a TCP bridge can
    stay open while the meter behind it is gone). With automatic serial settings, a link
    that delivered bytes but no checksum-valid frame moves on to the next setting.
    """

    def __init__(
        self,
        *,
        url: str,
        serial: SerialSettings | None,
        detected: SerialSettings | None,
        options: DecodeOptions,
        silence_timeout: float,
        on_reading: Callable[[Reading], None],
        on_reject: Callable[[Rejected], None],
        on_available: Callable[[bool], None],
        on_detected: Callable[[SerialSettings], None],
    ) -> None:
        self.url = url
        self.auto = serial is None
        self._candidates: tuple[SerialSettings, ...] = (
            (serial,) if serial is not None else _auto_candidates(detected)
        )
        self._candidate = 0
        self._detected = detected
        self.silence_timeout = silence_timeout
        self._on_reading = on_reading
        self._on_reject = on_reject
        self._on_available = on_available
        self._on_detected = on_detected
        self.stream = MeterStream(options, on_reject=self._handle_reject)
        self.reconnects = 0
        self.bytes_received = 0
        self.available = True  # until the watchdog first says otherwise (grace at start)
        self.connected = False
        self._evidence = _Evidence()
        self._delay = RECONNECT_MIN
        self._max_delay = RECONNECT_MAX if "://" in url else RECONNECT_MAX_SERIAL
        self._transport: BaseSerialTransport | None = None
        # Replaced per link; created here only so it is never None (needs a running loop).
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._open_failures = 0
        self.last_error: str | None = None
        self._stopping = False

    @property
    def settings(self) -> SerialSettings:
        """The serial settings in use (or next to be tried)."""
        return self._candidates[self._candidate]

    async def async_start(self) -> None:
        """Open the port once (raises one of OPEN_ERRORS), then keep it up in the background."""
        await self._async_connect()
        loop = asyncio.get_running_loop()
        self._arm_watchdog()
        self._task = loop.create_task(self._async_run(), name=f"hanport link {self._log_url}")

    async def async_stop(self) -> None:
        """Stop reconnecting and release the port (unload, Home Assistant stop).

        From here on, bytes still in flight are ignored: they must neither reach the
        coordinator of an unloading entry nor re-arm the watchdog of a stopped link.
        """
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if (current := asyncio.current_task()) is not None and current.cancelling():
                    raise
            self._task = None
        transport, self._transport = self._transport, None
        await _async_close(transport)
        self.connected = False

    # --- link management ---------------------------------------------------------------

    @property
    def _log_url(self) -> str:
        return redact_url(self.url)

    async def _async_connect(self) -> None:
        self._lost = lost = asyncio.get_running_loop().create_future()
        self._evidence = _Evidence()
        self.stream.reset()
        # The end of *this* link resolves *its* future, never a later link's.
        protocol = _LinkProtocol(self._handle_data, partial(self._handle_lost, lost))
        self._transport = await _async_open(self.url, self.settings, protocol)
        self.connected = True

    async def _async_run(self) -> None:
        """Wait for the link to end, then reopen it with backoff, forever."""
        while True:
            if self._transport is None:
                try:
                    await self._async_connect()
                except OPEN_ERRORS as err:
                    # Debug only: the coordinator's one "unavailable" line is what users see;
                    # the reason is kept for diagnostics.
                    self._open_failures += 1
                    self.last_error = describe_error(err, self.url)
                    LOGGER.debug("Cannot open %s (%s)", self._log_url, self.last_error)
                    await self._async_backoff()
                    continue
                self._open_failures = 0
            await self._lost
            await _async_close(self._transport)
            self._transport = None
            self.connected = False
            self.reconnects += 1
            await self._async_backoff()

    async def _async_backoff(self) -> None:
        delay = self._delay
        self._delay = min(self._delay * 2, self._max_delay)
        await asyncio.sleep(delay)

    def _handle_lost(self, lost: asyncio.Future[None], exc: Exception | None) -> None:
        if exc is not None and not self._stopping:
            self.last_error = describe_error(exc, self.url)
            LOGGER.debug("Link to %s lost: %s", self._log_url, self.last_error)
        if not lost.done():
            lost.set_result(None)

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._stopping:
            return
        self._watchdog = asyncio.get_running_loop().call_later(
            self.silence_timeout, self._watchdog_fired
        )

    def _watchdog_fired(self) -> None:
        """No valid frame for ``silence_timeout``: unavailable; reopen the link."""
        self._watchdog = None
        if self.available:
            self.available = False
            self._on_available(False)
        if self.auto and self._evidence.wrong_settings and len(self._candidates) > 1:
            self._candidate = (self._candidate + 1) % len(self._candidates)
            LOGGER.debug("No valid frame from %s; trying %s", self._log_url, self.settings.key)
        if self._transport is not None:
            # The link opened fine; the meter is silent. Reopen promptly (once per
            # watchdog period): a backoff grown over a long silence would keep the
            # link closed for up to a minute after the meter speaks again.
            self._delay = RECONNECT_MIN
            self._transport.close()
        self._arm_watchdog()

    # --- data -------------------------------------------------------------------------

    def _handle_data(self, data: bytes) -> None:
        if self._stopping:
            return
        self.bytes_received += len(data)
        self._evidence.bytes += len(data)
        before = self.stream.counters.frames_ok
        readings = self.stream.feed(data)
        # Readings first: on recovery entities then come back with fresh values.
        for reading in readings:
            self._on_reading(reading)
        if self.stream.counters.frames_ok != before:
            self._good_frame()

    def _handle_reject(self, rejected: Rejected) -> None:
        if rejected.reason in FRAMING_OK_REASONS:
            self._evidence.framing_ok = True
        self._on_reject(rejected)

    def _good_frame(self) -> None:
        self._evidence.framing_ok = True
        self._delay = RECONNECT_MIN
        self._arm_watchdog()
        if self.auto and self.settings != self._detected and serial_settings_apply(self.url):
            self._detected = self.settings
            self._on_detected(self.settings)
        if not self.available:
            self.available = True
            self._on_available(True)


def _auto_candidates(detected: SerialSettings | None) -> tuple[SerialSettings, ...]:
    """Auto-detection order, starting with what worked last time."""
    if detected is None:
        return AUTO_ORDER
    return (detected, *(s for s in AUTO_ORDER if s != detected))


# --- the probe the config flow uses ---------------------------------------------------


class ProbeError(StrEnum):
    """Why a probe found no usable meter (the flow's error keys)."""

    CANNOT_OPEN = "cannot_open"
    NO_DATA = "no_data"
    NO_VALID_FRAMES = "no_valid_frames"
    ENCRYPTED = "encrypted"
    BAD_KEY = "bad_key"
    NO_METER_ID = "no_meter_id"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe found.

    ``error`` is None on success: ``reading`` then carries a ``meter_id``. With
    ``NO_METER_ID`` the frames were valid but none named the meter within the timeout
    (some Swedish meters never do); ``reading`` is then the last valid reading.
    ``serial`` is the setting that produced checksum-valid frames (None when unknown or
    meaningless, as on a raw TCP socket).
    """

    error: ProbeError | None
    reading: Reading | None = None
    serial: SerialSettings | None = None
    protocol: Protocol | None = None
    bytes_received: int = 0
    frames_ok: int = 0
    rejected: dict[RejectReason, int] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """True when a reading with a meter ID arrived."""
        return self.error is None


class _ProbeSession:
    """Listens on one open link and decides when to stop or switch settings."""

    def __init__(
        self, options: DecodeOptions, loop: asyncio.AbstractEventLoop, *, can_switch: bool
    ) -> None:
        self.stream = MeterStream(options, on_reject=self.on_reject)
        self.loop = loop
        self.can_switch = can_switch
        self.done = asyncio.Event()
        self.switch = False
        self.lost = False
        self.found: Reading | None = None
        self.last: Reading | None = None
        self.bytes = 0
        self.framing_ok = False
        self.opened = loop.time()
        self._burst_start: float | None = None
        self._burst_ok = False
        self._burst_end: asyncio.TimerHandle | None = None
        self.rejected: dict[RejectReason, int] = {}

    def on_data(self, data: bytes) -> None:
        now = self.loop.time()
        self.bytes += len(data)
        if self._burst_start is None:
            self._burst_start = now
            self._burst_ok = False
        before = self.stream.counters.frames_ok
        readings = self.stream.feed(data)
        if self.stream.counters.frames_ok != before:
            self._burst_ok = self.framing_ok = True
        for reading in readings:
            self.last = reading
            if reading.meter_id and self.found is None:
                self.found = reading
                self.done.set()
        if self._burst_end is not None:
            self._burst_end.cancel()
        self._burst_end = self.loop.call_later(BURST_GAP, self._end_burst)

    def on_reject(self, rejected: Rejected) -> None:
        self.rejected[rejected.reason] = self.rejected.get(rejected.reason, 0) + 1
        if rejected.reason in FRAMING_OK_REASONS:
            self._burst_ok = self.framing_ok = True
        # No need to wait out the timeout for a verdict that cannot change: without a key
        # nothing decrypts; with a wrong one (twice, so it is not a fluke) neither.
        key_failures = sum(self.rejected.get(reason, 0) for reason in KEY_REASONS)
        if rejected.reason is RejectReason.ENCRYPTED_NO_KEY or key_failures >= 2:
            self.done.set()

    def on_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.done.set()

    def _end_burst(self) -> None:
        """End a burst: if it was whole and nothing in it passed a checksum, switch."""
        self._burst_end = None
        start, self._burst_start = self._burst_start, None
        if start is None or self._burst_ok or self.framing_ok or not self.can_switch:
            return
        if start - self.opened < BURST_GAP:
            return  # may have begun mid-frame
        self.switch = True
        self.done.set()

    def close(self) -> None:
        if self._burst_end is not None:
            self._burst_end.cancel()


async def async_probe(
    url: str,
    *,
    serial: SerialSettings | None,
    options: DecodeOptions,
    timeout: float = PROBE_TIMEOUT,  # noqa: ASYNC109 - the flow contract names it
    hass: HomeAssistant | None = None,
) -> ProbeResult:
    """Open ``url``, listen until a reading names its meter, classify what went wrong.

    ``serial=None`` auto-detects: each candidate setting keeps the link until a whole
    burst of bytes arrives in which nothing passes a checksum, then the next is tried
    (in a ring, so one corrupted frame cannot lose the right setting). A switch grants
    the new setting at least ``PROBE_SWITCH_GRACE`` seconds, within a hard cap.
    ``hass`` is accepted for symmetry with the runtime; serialx resolves
    ``esphome-hass://`` ports itself. Keys are never logged.
    """
    del hass
    loop = asyncio.get_running_loop()
    candidates: tuple[SerialSettings, ...]
    if serial is not None:
        candidates = (serial,)
    elif serial_settings_apply(url):
        candidates = AUTO_ORDER
    else:
        candidates = (DEFAULT_SETTINGS,)
    start = loop.time()
    deadline = start + timeout
    hard_deadline = deadline + PROBE_SWITCH_GRACE * (len(candidates) - 1)
    rejected: dict[RejectReason, int] = {}
    total_bytes = frames_ok = 0
    found: Reading | None = None
    last: Reading | None = None
    working: SerialSettings | None = None
    protocol: Protocol | None = None
    index = 0
    while True:
        settings = candidates[index % len(candidates)]
        session = _ProbeSession(options, loop, can_switch=len(candidates) > 1)
        stream = session.stream
        try:
            transport = await _async_open(
                url, settings, _LinkProtocol(session.on_data, session.on_lost)
            )
        except OPEN_ERRORS as err:
            LOGGER.debug("Probe cannot open %s: %s", redact_url(url), describe_error(err, url))
            return ProbeResult(ProbeError.CANNOT_OPEN)
        session.opened = loop.time()
        try:
            async with asyncio.timeout_at(deadline):
                await session.done.wait()
        except TimeoutError:
            pass
        finally:
            session.close()
            await _async_close(transport)
        total_bytes += session.bytes
        frames_ok += stream.counters.frames_ok
        for reason, count in session.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + count
        last = session.last or last
        if session.framing_ok:
            working = settings
            protocol = stream.protocol
        if session.found is not None:
            found = session.found
            break
        if not session.switch:
            break
        now = loop.time()
        if now >= hard_deadline:
            break
        deadline = min(max(deadline, now + PROBE_SWITCH_GRACE), hard_deadline)
        index += 1
        LOGGER.debug("Probe of %s: no valid frame at %s", redact_url(url), settings.key)

    error: ProbeError | None
    if found is not None:
        error = None
    elif total_bytes == 0:
        error = ProbeError.NO_DATA
    elif _any(rejected, KEY_REASONS):
        error = ProbeError.BAD_KEY
    elif _any(rejected, (RejectReason.ENCRYPTED_NO_KEY,)):
        error = ProbeError.ENCRYPTED
    elif frames_ok:
        error = ProbeError.NO_METER_ID
    else:
        error = ProbeError.NO_VALID_FRAMES
    return ProbeResult(
        error=error,
        reading=found or (last if error is ProbeError.NO_METER_ID else None),
        serial=working if serial_settings_apply(url) else None,
        protocol=protocol,
        bytes_received=total_bytes,
        frames_ok=frames_ok,
        rejected=rejected,
    )


def _any(rejected: dict[RejectReason, int], reasons: Iterable[RejectReason]) -> bool:
    return any(rejected.get(reason) for reason in reasons)
