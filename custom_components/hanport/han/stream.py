"""The library's single entry point: bytes from a HAN port in, ``Reading`` objects out.

``MeterStream`` detects by itself what the port carries (HDLC, wired M-Bus, P1
telegrams or bare DLMS APDUs, even mixed), checks every frame, decodes the
APDU and picks the layout. Nothing it is fed makes it raise: every frame that
yields no reading is counted in ``counters`` and reported to ``on_reject``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Final

from .dlms.apdu import GENERAL_BLOCK_TRANSFER, ApduDecoder
from .errors import FrameError, Rejected, RejectReason
from .framing import LLC, FrameReader, Message, StreamCounters
from .layouts import decode_notification
from .layouts.p1 import TelegramShapes, decode_telegram
from .options import DecodeOptions
from .reading import Protocol, Reading

__all__ = ["LAST_FRAMES", "MeterStream", "StreamCounters"]

_LOGGER = logging.getLogger(__name__)

LAST_FRAMES: Final = 8
"""How many raw accepted frames ``last_frames`` keeps."""
MAX_BLOCK_FRAMES: Final = 65536
"""Cap on the raw frames kept for one general-block-transfer (diagnostics only)."""

_ALL_FORMATS: Final = frozenset(Protocol)
_NOTIFICATION: Final = 0x0F


def _describe(err: Exception) -> str:
    """Detail for an exception a decoder should not have raised."""
    return f"{type(err).__name__}: {err}"


class _Pending:
    """A general-block-transfer block was stored; the reading comes with the last one."""


_PENDING: Final = _Pending()


class _BareBlock:
    """A delimited bare block: stored only once the framing takes it."""


_BARE_BLOCK: Final = _BareBlock()
_BLOCK_TAG: Final = bytes((GENERAL_BLOCK_TRANSFER,))
_FIRST_BLOCK: Final = b"\x00\x01"  # block number 1, after the tag and block-control


class MeterStream:
    """Feed it byte chunks of any size, split anywhere; get readings back.

    ``feed`` never raises. ``counters`` (public) tells what was accepted,
    rejected and discarded; ``protocol`` is what the last accepted frame was;
    ``last_frames`` keeps the last few accepted raw frames for diagnostics.
    """

    def __init__(
        self,
        options: DecodeOptions | None = None,
        *,
        on_reject: Callable[[Rejected], None] | None = None,
    ) -> None:
        self.options = options if options is not None else DecodeOptions()
        self.counters = StreamCounters()
        self.protocol: Protocol | None = None
        self.last_frames: deque[bytes] = deque(maxlen=LAST_FRAMES)
        self._on_reject = on_reject
        self._decoder = ApduDecoder(self.options)
        self._telegram_shapes = TelegramShapes()
        self._block_frames: list[bytes] = []
        self._block_size = 0
        self._block_protocol: Protocol | None = None
        self._feeding = False
        self._quiet = False  # refusals of a weak bare-APDU candidate are not reported
        self._bare_accepted = False  # a bare APDU became a reading: the stream carries them
        self._reader = FrameReader(
            formats=_ALL_FORMATS,
            counters=self.counters,
            on_reject=on_reject,
            apdu_check=self._check_bare_apdu,
        )

    def feed(self, data: bytes | bytearray | memoryview) -> list[Reading]:
        """Add bytes; return the readings they completed, in stream order."""
        if self._feeding:
            # Called from on_reject: buffer only; the running feed takes these bytes in.
            self._reader.frames(data)
            return []
        self._feeding = True
        try:
            return self._read(self._reader.frames(data))
        finally:
            self._feeding = False

    def flush(self) -> list[Reading]:
        """End the input (a capture, not a live port): decode what waits for more.

        A bare APDU is taken on a live stream only once the next one starts at its end
        (it has no checksum); a capture of a single one is read here.
        """
        return self._read(self._reader.flush())

    def _read(self, messages: Iterable[Message]) -> list[Reading]:
        """Decode messages into readings; a bug here never kills the reader."""
        readings: list[Reading] = []
        try:
            for message in messages:
                reading = self._decode(message)
                if reading is not None:
                    readings.append(reading)
        except Exception:
            # Drop what is buffered and go on.
            _LOGGER.exception("hanport stream failed; buffered bytes dropped")
            self._reader.reset()
        return readings

    def reset(self) -> None:
        """Drop buffered bytes and partial messages (after a reconnect); counters stay."""
        self._reader.reset()
        self._decoder.reset()
        self._block_frames.clear()
        self._block_size = 0

    def _decode(self, message: Message) -> Reading | None:
        self.protocol = message.protocol
        self.last_frames.append(message.frame)
        if message.protocol is Protocol.APDU:
            result = message.result
            self._bare_accepted = True
            if result is _BARE_BLOCK:
                payload = message.payload
                apdu = payload[3:] if payload.startswith(LLC) else payload
                result = self._apdu(apdu, Protocol.APDU, message.frame)
        elif not message.payload:
            return None  # a frame without an info field (HDLC supervisory): nothing to decode
        elif message.protocol is Protocol.P1:
            result = self._telegram(message.payload, Protocol.P1, message.frame)
        else:
            payload = message.payload
            apdu = payload[3:] if payload.startswith(LLC) else payload
            result = self._apdu(apdu, message.protocol, message.frame)
        if isinstance(result, Reading):
            self.counters.frames_ok += 1
            return result
        return None

    def _check_bare_apdu(self, apdu: bytes) -> Reading | _Pending | _BareBlock | None:
        """Decide a delimited bare APDU: only a decoded reading (or a block) is kept.

        A lone ``0F`` start is weak evidence (random bytes delimit as an APDU now
        and then), so until the stream has shown it carries bare APDUs, refusing
        one is not reported: a reported APDU or layout error tells the
        integration that the serial settings are right. A block-transfer block is
        not stored here: the framing may withhold it (bytes before it) and never
        take it, so it is stored when taken (``_decode``), never before.
        """
        llc = apdu[:3] == LLC
        body = apdu[3:] if llc else apdu
        if body[:1] == _BLOCK_TAG:
            return _BARE_BLOCK  # delimited by its own length, so its shape holds
        self._quiet = not (llc or apdu[0] != _NOTIFICATION or self._bare_accepted)
        try:
            return self._apdu(body, Protocol.APDU, apdu)
        finally:
            self._quiet = False

    def _apdu(self, apdu: bytes, protocol: Protocol, frame: bytes) -> Reading | _Pending | None:
        """APDU -> reading; ``_PENDING`` while a block transfer is incomplete.

        A transfer's blocks all come one way: a block arriving in another framing than
        the stored ones (a bare block cut from a frame, then framed blocks) restarts the
        transfer, and a block 1 starts one afresh, its raw frames too.
        """
        if apdu[:1] == _BLOCK_TAG and (
            apdu[2:4] == _FIRST_BLOCK or protocol is not self._block_protocol
        ):
            if self._block_frames:
                self._decoder.reset()
                self._drop_blocks()
            self._block_protocol = protocol
        try:
            notification = self._decoder.decode(apdu)
        except FrameError as err:
            self._drop_blocks()
            self._reject(err.reason, err.detail, frame)
            return None
        except Exception as err:
            _LOGGER.debug("APDU decoder raised", exc_info=True)
            self._drop_blocks()
            self._reject(RejectReason.MALFORMED_APDU, _describe(err), frame)
            return None
        if notification is None:
            self._block_size += len(frame)
            if self._block_size <= MAX_BLOCK_FRAMES:
                self._block_frames.append(frame)
            return _PENDING
        if self._block_frames and apdu[0] == GENERAL_BLOCK_TRANSFER:
            # the last block: the reading came from all of them (a plain APDU in
            # between is its own frame; the transfer it interrupted stays pending)
            frame = b"".join(self._block_frames) + frame
            self._drop_blocks()
        if notification.telegram is not None:
            return self._telegram(notification.telegram, protocol, frame)
        try:
            return decode_notification(
                notification, protocol=protocol, options=self.options, frame=frame
            )
        except FrameError as err:
            self._reject(err.reason, err.detail, frame)
        except Exception as err:
            _LOGGER.debug("layout raised", exc_info=True)
            self._reject(RejectReason.UNKNOWN_LAYOUT, _describe(err), frame)
        return None

    def _telegram(self, telegram: bytes, protocol: Protocol, frame: bytes) -> Reading | None:
        """P1 telegram (CRC already checked) -> reading."""
        try:
            reading = decode_telegram(telegram, options=self.options, shapes=self._telegram_shapes)
        except FrameError as err:
            self._reject(err.reason, err.detail, frame)
            return None
        except Exception as err:
            _LOGGER.debug("P1 layout raised", exc_info=True)
            self._reject(RejectReason.P1_MALFORMED, _describe(err), frame)
            return None
        if reading.protocol is protocol and reading.frame is frame:
            return reading  # a plain P1 frame: nothing to change (replace() is slow)
        return replace(reading, protocol=protocol, frame=frame)

    def _drop_blocks(self) -> None:
        self._block_frames.clear()
        self._block_size = 0

    def _reject(self, reason: RejectReason, detail: str, frame: bytes) -> None:
        if self._quiet:
            _LOGGER.debug("not a bare APDU (%s: %s)", reason, detail)
            return
        self.counters.count_reject(reason)
        _LOGGER.debug("rejected %s: %s", reason, detail)
        if self._on_reject is not None:
            try:
                self._on_reject(Rejected(reason, detail, frame))
            except Exception:
                _LOGGER.exception("on_reject callback failed")
