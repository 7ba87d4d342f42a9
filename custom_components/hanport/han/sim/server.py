"""``SimulatorServer``: a simulated meter on a TCP port and/or a pseudo-terminal.

TCP behaves like ser2net or an ESP "stream server": every connected client
gets the meter's bytes from the moment it connects; clients may come and go;
what they send is ignored. The pty behaves like a USB serial adapter: the
reader opens ``pty_path`` (a stable symlink to the current ``/dev/pts/N``,
like ``/dev/serial/by-id/...``) as a serial device, e.g. with serialx.
Linux ptys ignore baud and parity, so a wrong parity is simulated as a fault.

Unplugging (``Fault.UNPLUG``) removes the pty and its symlink, and the device
comes back under the same symlink (a new ``/dev/pts/N``); for TCP it closes
the listener and the clients, and listens again on the same port.

With a real or fast clock, ``start()`` runs the meter on its cadence and
paces the bytes at the meter's baud rate (scaled by the clock's speed).
With a ``ManualClock`` nothing happens on its own: ``await server.advance(s)``
moves time, sends what the meter pushes in that time and waits until the
bytes are handed to every transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import termios
import tty
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from .clock import Clock, ManualClock, RealClock
from .meter import SentFrame, SimulatedMeter

_LOGGER: Final = logging.getLogger(__package__)

MAX_CLIENT_BUFFER: Final = 1 << 20
"""A TCP client that stops reading is dropped once this much is queued for it."""
_PACE_SLICE: Final = 0.02
"""Seconds of line time per paced write."""


def parse_hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0 = any free port) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def describe(frame: SentFrame) -> str:
    """One log line for a sent frame: list, size, key values, faults."""
    faults = f" [{', '.join(sorted(frame.faults))}]" if frame.faults else ""
    if frame.reading is None:
        return f"garbage {len(frame.data)} B{faults}"
    values = frame.reading.values
    parts = [f"L{int(frame.kind or 0)} {len(frame.data)}/{len(frame.clean)} B"]
    if frame.reading.meter_time is not None:
        parts.append(f"clock {frame.reading.meter_time.isoformat()}")
    for name, label, unit in (
        ("active_power_import", "P+", "W"),
        ("active_power_export", "P-", "W"),
        ("active_energy_import", "A+", "kWh"),
        ("active_energy_export", "A-", "kWh"),
    ):
        if name in values:
            parts.append(f"{label}={values[name]:g} {unit}")
    return " ".join(parts) + faults


class _Wire:
    """The meter's ``Line``: queues writes and device events in order for the writer task."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    def write(self, data: bytes) -> None:
        self.queue.put_nowait(("write", data))

    def hangup(self) -> None:
        self.queue.put_nowait(("hangup", b""))

    def unplug(self) -> None:
        self.queue.put_nowait(("unplug", b""))

    def replug(self) -> None:
        self.queue.put_nowait(("replug", b""))


class SimulatorServer:
    """Serve ``meter`` over TCP (``tcp=(host, port)`` or ``"host:port"``) and/or a pty.

    ``pty=True`` makes the stable symlink in a temporary directory; a path
    puts it there. ``clock`` defaults to real time; ``pace`` (default: when the
    clock runs by itself) sends bytes at the meter's baud rate. Use as an
    async context manager, or call ``start()``/``stop()``.
    """

    def __init__(
        self,
        meter: SimulatedMeter,
        clock: Clock | None = None,
        *,
        tcp: tuple[str, int] | str | None = None,
        pty: bool | str | os.PathLike[str] = False,
        pace: bool | None = None,
        until: datetime | None = None,
    ) -> None:
        if tcp is None and not pty:
            raise ValueError("serve on tcp=..., pty=..., or both")
        self.meter = meter
        self.clock: Clock = clock if clock is not None else RealClock()
        self._tcp = parse_hostport(tcp) if isinstance(tcp, str) else tcp
        self._pty_wanted = bool(pty)
        self._link_given = None if isinstance(pty, bool) else Path(pty)
        self.pace = self.clock.speed > 0 if pace is None else pace
        self._wire = _Wire()
        meter.line = self._wire
        self._tasks: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._client_joined = asyncio.Event()
        self._master: int | None = None
        self._slave: int | None = None
        self._device: str | None = None
        self._tempdir: str | None = None
        self._link: Path | None = None
        self._plugged = True
        self._started = False
        self.bytes_dropped = 0
        self.connections = 0
        self.on_frame: Callable[[SentFrame], None] | None = None
        self.until = until
        """The meter time after which nothing more is sent (a fast clock overshoots otherwise)."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the transports and start sending on the clock's cadence."""
        if self._started:
            return
        self._started = True
        if self._tcp is not None:
            await self._listen()
        if self._pty_wanted:
            if self._link_given is None:
                self._tempdir = tempfile.mkdtemp(prefix="hanport-sim-")
                self._link = Path(self._tempdir) / "ttyHAN0"
            else:
                self._link = self._link_given
            self._open_pty()
        self._tasks = [
            asyncio.create_task(self._writer(), name="hanport-sim-writer"),
            asyncio.create_task(self._run(), name="hanport-sim-meter"),
        ]

    async def stop(self) -> None:
        """Stop sending, close every client and transport, remove the pty and its symlink."""
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._close_tcp()
        self._close_pty()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    async def __aenter__(self) -> Self:
        """Start serving."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        await self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def host(self) -> str | None:
        """The TCP host listened on."""
        return self._tcp[0] if self._tcp is not None else None

    @property
    def port(self) -> int | None:
        """The TCP port actually listened on (the one chosen when 0 was asked)."""
        return self._port

    @property
    def pty_path(self) -> str | None:
        """The stable path a reader opens (a symlink that survives unplugging)."""
        return str(self._link) if self._link is not None else None

    @property
    def pty_device(self) -> str | None:
        """The current ``/dev/pts/N`` (``None`` while unplugged)."""
        return self._device

    @property
    def url(self) -> str:
        """Where a reader connects: ``socket://host:port`` for TCP, else the pty path."""
        if self._tcp is not None and self._port is not None:
            host = f"[{self._tcp[0]}]" if ":" in self._tcp[0] else self._tcp[0]
            return f"socket://{host}:{self._port}"
        return self.pty_path or ""

    @property
    def clients(self) -> int:
        """TCP clients connected now."""
        return len(self._clients)

    async def wait_for_clients(self, count: int = 1) -> None:
        """Wait until ``count`` TCP clients are connected (wrap in ``asyncio.timeout``)."""
        while len(self._clients) < count:
            self._client_joined.clear()
            await self._client_joined.wait()

    # ------------------------------------------------------------------ running

    def _pump_now(self) -> list[SentFrame]:
        now = self.clock.now()
        if self.until is not None and now > self.until:
            now = self.until
        frames = self.meter.advance_to(now)
        for frame in frames:
            if _LOGGER.isEnabledFor(logging.INFO):
                _LOGGER.info("%s %s", self.meter.profile.key, describe(frame))
            if self.on_frame is not None:
                self.on_frame(frame)
        return frames

    async def pump(self) -> list[SentFrame]:
        """Send everything due by the clock's now (and pending garbage); wait until handed over."""
        frames = self._pump_now()
        await self.flush()
        return frames

    async def advance(self, seconds: float) -> list[SentFrame]:
        """Manual clock only: move time ``seconds`` on, send what the meter pushed, flush."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a ManualClock; other clocks run by themselves")
        self.clock.advance(seconds)
        return await self.pump()

    async def flush(self) -> None:
        """Wait until every queued byte and event reached the transports."""
        await self._wire.queue.join()
        for writer in list(self._clients):
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    # ------------------------------------------------------------------ faults now

    async def inject_garbage(self, size: int = 32, data: bytes | None = None) -> None:
        """Send noise now (see ``SimulatedMeter.inject_garbage``)."""
        self.meter.inject_garbage(size, data)
        await self.pump()

    async def flip_bits(self, frames: int = 1, bits: int = 1) -> None:
        """Flip bits in the next frames."""
        self.meter.flip_bits(frames, bits)

    async def truncate_next(self, frames: int = 1) -> None:
        """Cut the next frames short."""
        self.meter.truncate_next(frames)

    async def go_silent(self, seconds: float) -> None:
        """Send nothing for ``seconds`` of simulated time."""
        self.meter.go_silent(seconds)

    async def disconnect(self, *, mid_frame: bool = False) -> None:
        """Drop the TCP clients now, or during the next frame (``mid_frame``)."""
        self.meter.disconnect(mid_frame=mid_frame)
        await self.pump()

    async def wrong_parity(self, seconds: float) -> None:
        """Deliver bytes as a reader with the other parity would see them, for ``seconds``."""
        self.meter.wrong_parity(seconds)

    async def expand_crlf(self, seconds: float | None = None) -> None:
        """OSS-brikken LF -> CRLF for ``seconds`` (None: until ``clear_faults``)."""
        self.meter.expand_crlf(seconds)

    async def repeat_hourly(self) -> None:
        """Repeat the previous hourly list at the next hour."""
        self.meter.repeat_hourly()

    async def clock_gap(self, seconds: float) -> None:
        """Jump the meter's clock."""
        self.meter.clock_gap(seconds)

    async def unplug(self, seconds: float) -> None:
        """Remove the device now for ``seconds`` of simulated time."""
        self.meter.unplug(seconds)
        await self.pump()

    async def clear_faults(self) -> None:
        """End every fault (an unplugged device comes back now)."""
        self.meter.clear_faults()
        await self.pump()

    async def _run(self) -> None:
        while True:
            due = self.meter.next_due()
            if self.until is not None and due > self.until:
                return
            await self.clock.sleep_until(due)
            self._pump_now()

    async def _writer(self) -> None:
        queue = self._wire.queue
        while True:
            op, data = await queue.get()
            try:
                if op == "write":
                    await self._send(data)
                elif op == "hangup":
                    self._hangup()
                elif op == "unplug":
                    await self._unplug()
                else:
                    await self._replug()
            except Exception:  # a transport error must not stop the meter
                _LOGGER.exception("simulator transport error on %s", op)
            finally:
                queue.task_done()

    async def _send(self, data: bytes) -> None:
        if not self.pace:
            self._deliver(data)
            return
        profile = self.meter.profile
        bits = 11 if profile.parity == "E" else 10
        bytes_per_second = profile.baudrate / bits * self.clock.speed
        chunk = max(1, round(bytes_per_second * _PACE_SLICE))
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            self._deliver(piece)
            await asyncio.sleep(len(piece) / bytes_per_second)

    def _deliver(self, data: bytes) -> None:
        if not self._plugged:
            return
        for writer in list(self._clients):
            if writer.is_closing():
                self._clients.discard(writer)
            elif writer.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
                _LOGGER.warning("simulator: dropping a TCP client that stopped reading")
                self._clients.discard(writer)
                writer.close()
            else:
                writer.write(data)
        if self._master is not None:
            self._write_pty(self._master, data)

    def _hangup(self) -> None:
        for writer in list(self._clients):
            writer.close()
        self._clients.clear()

    async def _unplug(self) -> None:
        self._plugged = False
        if self._tcp is not None:
            await self._close_tcp()
        self._close_pty()
        _LOGGER.info("simulator: device unplugged")

    async def _replug(self) -> None:
        self._plugged = True
        if self._tcp is not None:
            await self._listen()
        if self._pty_wanted:
            self._open_pty()
        _LOGGER.info("simulator: device plugged in again")

    # ------------------------------------------------------------------ tcp

    async def _listen(self) -> None:
        if self._tcp is None:  # pragma: no cover - callers check
            return
        host, port = self._tcp
        self._server = await asyncio.start_server(self._on_client, host, self._port or port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._clients.add(writer)
        self.connections += 1
        self._client_joined.set()
        _LOGGER.info("simulator: TCP client %s connected", writer.get_extra_info("peername"))
        try:
            while await reader.read(4096):  # readers may talk; a meter does not listen
                pass
        except ConnectionError:
            pass
        finally:
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    async def _close_tcp(self) -> None:
        self._hangup()
        server, self._server = self._server, None
        if server is not None:
            server.close()
        handlers = list(self._handlers)
        if handlers:
            _done, pending = await asyncio.wait(handlers, timeout=2.0)
            for task in pending:
                task.cancel()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await server.wait_closed()

    # ------------------------------------------------------------------ pty

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # the line carries bytes, not text
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._device = os.ttyname(slave)
        if self._link is not None:
            staging = self._link.with_name(self._link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            staging.symlink_to(self._device)
            staging.replace(self._link)
        asyncio.get_running_loop().add_reader(master, self._drain_pty)
        _LOGGER.info("simulator: pty %s -> %s", self.pty_path, self._device)

    def _drain_pty(self) -> None:
        """Discard what a reader writes to the device (a HAN port is transmit-only)."""
        if self._master is None:  # pragma: no cover - reader removed before closing
            return
        with contextlib.suppress(OSError):
            os.read(self._master, 4096)

    def _write_pty(self, master: int, data: bytes) -> None:
        view = memoryview(data)
        flushed = False
        while view:
            try:
                written = os.write(master, view)
            except BlockingIOError:
                if flushed or self._slave is None:
                    self.bytes_dropped += len(view)
                    return
                # nobody has read for a while: the oldest bytes are lost, as on a UART
                termios.tcflush(self._slave, termios.TCIFLUSH)
                flushed = True
                continue
            view = view[written:]

    def _close_pty(self) -> None:
        if self._master is not None:
            asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        self._device = None
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()
