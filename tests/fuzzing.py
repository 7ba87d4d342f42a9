"""Mutation fuzzing of ``MeterStream`` and the P1 parser (driven by ``scripts/fuzz``).

Every input starts as the exact bytes a real meter family sends (the encoder's
frames for a random plausible reading: every ``Layout`` and list, HDLC,
segmented HDLC, general-block-transfer, M-Bus, P1, P1 inside DLMS, bare APDUs,
encrypted ones with their keys) and is then mutated: bit flips, byte
substitutions, insertions, deletions, truncation, length-field tampering,
duplicated/dropped/reordered/mixed segments, splices of two messages, CR LF
expansion, garbage around it, content changed under a recomputed checksum. It
reaches a fresh stream (cold, or warmed by a clean message) in random chunks,
and a long-lived "soak" stream per task sees every input back to back.

The oracle does not trust the library: it re-checks the checksums of every
reading's ``frame`` with its own CRC code and compares every reading with
``expected_reading`` of the seeds that went into the input. Failures:

* any exception out of ``feed``, or swallowed by one of the library's safety
  nets (a decoder may raise only ``FrameError``); ``decode_telegram`` raising
  anything but ``FrameError``;
* a reading whose ``frame`` fails its checksum ("from a broken checksum"), or
  holds frames of another message or format;
* a wrong reading from a message whose frames are byte-identical to a seed's,
  from segments a sequence number should have refused (M-Bus CI, block
  numbers), under a wrong key, or a wrong value (number or identity) from a bare
  APDU cut out of a damaged checksummed frame;
* an untouched message (only noise around it, cut anywhere) that yields nothing;
* readings that change when the same bytes are fed whole instead of in pieces;
* an ill-formed reading (a non-finite value, an unknown value name);
* on the soak stream: a reading from a broken checksum, a seed's intact message
  misread, a frame-reader buffer over its bound; a traced-memory peak over the cap.

Readings that are not failures but not exactly the seed's either are counted
apart: checksum collisions (the mutated frame still checks: an M-Bus byte sum
or a CRC matched by chance), content changed under a recomputed checksum,
segments resequenced where the framing has no sequence numbers (HDLC UI
frames) or mixed from two messages, altered bare APDUs (no checksum at all),
and bare APDUs cut out of a damaged frame whose values are all right.

Each input is a pure function of ``(seed, index)``, so ``--replay`` rebuilds it.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import random
import resource
import time
import traceback
import tracemalloc
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Final
from typing import Protocol as TypingProtocol

from custom_components.hanport.han.dlms.apdu import encode_block_transfer
from custom_components.hanport.han.dlms.cipher import encrypt_apdu
from custom_components.hanport.han.encode import (
    EncodeError,
    Layout,
    carried_names,
    encode_reading,
    expected_reading,
    layout_spec,
    list_kinds,
    resolution,
)
from custom_components.hanport.han.encode.austria import MAKER_PREFIX
from custom_components.hanport.han.encode.p1 import STYLES
from custom_components.hanport.han.errors import FrameError
from custom_components.hanport.han.framing import (
    Found,
    build_hdlc_frame,
    build_mbus_frames,
    parse_hdlc,
)
from custom_components.hanport.han.framing.hdlc import HdlcFrame
from custom_components.hanport.han.layouts.p1 import decode_telegram
from custom_components.hanport.han.options import DecodeOptions
from custom_components.hanport.han.reading import Protocol, Reading
from custom_components.hanport.han.scaling import ALL_UNITS
from custom_components.hanport.han.stream import MeterStream
from tests.han.encode_helpers import AUTH_KEY, COUNTRY, ENCRYPTED_LAYOUTS, KEY
from tests.han.encode_helpers import reading as make_reading

WRONG_KEY: Final = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
LLC: Final = b"\xe6\xe7\x00"

IDLE: Final = 4200
"""Bytes of an idle line after each input: enough to resolve every candidate still
waiting (the longest wait is a 4 KiB P1 telegram, bare APDU or CR LF-repair window)."""
TAILS: Final = (bytes(IDLE), b"\xff" * IDLE)
"""What a line delivers when it goes idle: 0x00 (a break) or 0xFF (marking)."""
GENERATION: Final = 8192
"""Inputs per generation of seeds: every generation draws fresh readings."""
GROUPS: Final = 12
"""Seed groups per family and generation: one layout and one set of options each."""
SLOTS: Final = 3
"""Seeds per group (different readings): a partner for splices and warm starts."""
TASK_SIZE: Final = 20000
SPLIT_CHECK_EVERY: Final = 8
"""Every so many inputs fed in pieces are also fed whole: the readings must not differ."""
SAMPLES: Final = 5
"""Reproducers kept per failure category."""
MEMORY_CAP: Final = 64 * 1024 * 1024
SOAK_BUFFER_CAP: Final = 16 * 1024
"""Bytes the soak stream's frame reader may hold (the format caps are 4 KiB)."""

_SIGNED_CURRENT: Final = frozenset({Layout.AIDON_NO, Layout.AIDON_SE, Layout.LG_E350_NO})
_HDLC_LAYOUTS: Final = tuple(ly for ly in Layout if layout_spec(ly).protocol is Protocol.HDLC)
_MBUS_LAYOUTS: Final = tuple(ly for ly in Layout if layout_spec(ly).protocol is Protocol.MBUS)
_P1_LAYOUTS: Final = tuple(ly for ly in Layout if layout_spec(ly).protocol is Protocol.P1)


class Family(StrEnum):
    """How a seed's message travels (one per input)."""

    HDLC = "hdlc"
    HDLC_SEGMENTED = "hdlc-segmented"
    BLOCK_TRANSFER = "block-transfer"  # general-block-transfer, one block per HDLC frame
    MBUS = "mbus"  # the M-Bus layout (AT/PL OBIS array, two segments when long)
    MBUS_WRAPPED = "mbus-wrapped"  # any layout's APDU in short M-Bus segments
    P1 = "p1"
    P1_IN_DLMS = "p1-in-dlms"  # a P1 telegram in a glo-ciphered APDU in HDLC
    APDU = "bare-apdu"  # LLC + APDU or a lone APDU, no checksum anywhere
    WRONG_KEY = "wrong-key"  # an encrypted layout decoded with another key: nothing may come
    TELEGRAM = "p1-parser"  # decode_telegram called directly, CRC bypassed


FAMILY_WEIGHTS: Final = {
    Family.HDLC: 28,
    Family.HDLC_SEGMENTED: 8,
    Family.BLOCK_TRANSFER: 6,
    Family.MBUS: 8,
    Family.MBUS_WRAPPED: 6,
    Family.P1: 12,
    Family.P1_IN_DLMS: 3,
    Family.APDU: 12,
    Family.WRONG_KEY: 3,
    Family.TELEGRAM: 14,
}
_FAMILIES: Final = tuple(FAMILY_WEIGHTS)
_FAMILY_CUM: Final = tuple(
    sum(FAMILY_WEIGHTS[f] for f in _FAMILIES[: i + 1]) for i in range(len(_FAMILIES))
)
_SEQUENCED: Final = frozenset({Family.BLOCK_TRANSFER, Family.MBUS, Family.MBUS_WRAPPED})
"""Families whose framing numbers the segments (M-Bus CI, block numbers)."""


# ---------------------------------------------------------------- failure categories

F_RAISED: Final = "exception escaping MeterStream.feed"
F_SWALLOWED: Final = "exception inside the library (caught by a safety net)"
F_TELEGRAM: Final = "decode_telegram raised something other than FrameError"
F_CHECKSUM: Final = "reading from a broken checksum"
F_MISDECODED: Final = "wrong reading from an intact message"
F_RESEQUENCED: Final = "wrong reading from resequenced numbered segments"
F_BARE_INSIDE: Final = "wrong value from a bare APDU cut out of a damaged frame"
F_FRAME_MIXED: Final = "Reading.frame holds frames of another message or format"
F_WRONG_KEY: Final = "reading under a wrong key"
F_LOST: Final = "intact message lost (only noise around it)"
F_SPLIT: Final = "readings depend on where the input was split"
F_ILL_FORMED: Final = "ill-formed reading (non-finite value or unknown name)"
F_SEED: Final = "clean seed does not round-trip"
F_SOAK_CHECKSUM: Final = "soak: reading from a broken checksum"
F_SOAK_MISDECODED: Final = "soak: wrong reading from an intact message"
F_SOAK_BUFFER: Final = "soak: frame reader buffer over its bound"
F_MEMORY: Final = "traced memory over the cap"

FAILURES: Final = (
    F_RAISED,
    F_SWALLOWED,
    F_TELEGRAM,
    F_CHECKSUM,
    F_MISDECODED,
    F_RESEQUENCED,
    F_BARE_INSIDE,
    F_FRAME_MIXED,
    F_WRONG_KEY,
    F_LOST,
    F_SPLIT,
    F_ILL_FORMED,
    F_SEED,
    F_SOAK_CHECKSUM,
    F_SOAK_MISDECODED,
    F_SOAK_BUFFER,
    F_MEMORY,
)

O_EXACT: Final = "readings equal to the seed's expected reading"
O_COLLISION: Final = "checksum collisions decoded (mutated frame still checks)"
O_RECHECKED: Final = "content changed under a recomputed checksum, decoded"
O_RESEQUENCED: Final = "segments resequenced or mixed with another message's, decoded"
O_BARE_ALTERED: Final = "altered bare APDU decoded (no checksum)"
O_BARE_INSIDE: Final = "bare APDU cut out of a damaged frame, values right (all or some)"
O_SPLIT_BARE: Final = "split-dependent bare APDU reading, values right (taken at a read's end)"
O_NO_READING: Final = "inputs that yielded no reading"
O_TELEGRAM_DECODED: Final = "p1-parser: mutated telegrams decoded"
O_TELEGRAM_REFUSED: Final = "p1-parser: mutated telegrams refused (FrameError)"
O_SOAK_READINGS: Final = "soak: readings"


# ---------------------------------------------------------------- independent checksums


def _crc_table(poly: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_X25_TABLE: Final = _crc_table(0x8408)
_ARC_TABLE: Final = _crc_table(0xA001)


def crc_x25(data: bytes) -> int:
    """CRC-16/X.25 (HDLC HCS/FCS), written apart from the library's."""
    crc = 0xFFFF
    table = _X25_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def crc_arc(data: bytes) -> int:
    """CRC-16/ARC (P1), written apart from the library's."""
    crc = 0
    table = _ARC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def _hdlc_header_end(core: bytes) -> int:
    """Index after format, addresses and control in ``core`` (between the flags), -1 if none."""
    pos = 2
    for _ in range(2):
        end = -1
        for index in range(pos, min(pos + 4, len(core))):
            if core[index] & 1:
                end = index + 1
                break
        if end < 0:
            return -1
        pos = end
    return pos + 1


def _hdlc_frame(blob: bytes, pos: int) -> tuple[bytes, int] | None:
    """The HDLC frame at ``pos`` (core between the flags, end), None unless all checks hold."""
    if pos + 3 > len(blob) or blob[pos] != 0x7E or blob[pos + 1] & 0xF0 != 0xA0:
        return None
    length = (blob[pos + 1] << 8 | blob[pos + 2]) & 0x7FF
    closing = pos + 1 + length
    if closing >= len(blob) or blob[closing] != 0x7E:
        return None
    core = blob[pos + 1 : closing]
    header = _hdlc_header_end(core)
    if header < 0 or len(core) < header + 2:
        return None
    if crc_x25(core[:header]) != int.from_bytes(core[header : header + 2], "little"):
        return None
    if len(core) > header + 2 and (
        len(core) < header + 4 or crc_x25(core[:-2]) != int.from_bytes(core[-2:], "little")
    ):
        return None
    return core, closing + 1


def _mbus_frame(blob: bytes, pos: int) -> tuple[bytes, int] | None:
    """The M-Bus long frame at ``pos`` (all of it, end), None unless L, sum and stop hold."""
    if pos + 4 > len(blob) or blob[pos] != 0x68 or blob[pos + 3] != 0x68:
        return None
    length = blob[pos + 1]
    if blob[pos + 2] != length:
        return None
    if length < 5:  # Sagemcom's overflowed L
        length += 256
    end = pos + 4 + length
    if end + 2 > len(blob) or blob[end + 1] != 0x16:
        return None
    if sum(blob[pos + 4 : end]) & 0xFF != blob[end]:
        return None
    return blob[pos : end + 2], end + 2


def _p1_frame(blob: bytes, pos: int) -> tuple[bytes, int] | None:
    """The P1 telegram at ``pos`` through its CRC digits (and CR LF), None unless the CRC holds."""
    bang = blob.find(b"!", pos)
    digits = blob[bang + 1 : bang + 5]
    if blob[pos : pos + 1] != b"/" or bang < 0 or len(digits) != 4:
        return None
    if any(d not in b"0123456789ABCDEF" for d in digits):
        return None
    if crc_arc(blob[pos : bang + 1]) != int(digits, 16):
        return None
    end = bang + 5
    while end < len(blob) and blob[end] in b"\r\n":
        end += 1
    return blob[pos : bang + 5], end


_FRAME_AT: Final = {0x7E: (Protocol.HDLC, _hdlc_frame), 0x68: (Protocol.MBUS, _mbus_frame)}


def split_frames(blob: bytes) -> list[tuple[Protocol, bytes]] | None:
    """Split back-to-back checksummed frames of any format; None when one does not check."""
    out: list[tuple[Protocol, bytes]] = []
    pos = 0
    while pos < len(blob):
        protocol, parse = _FRAME_AT.get(blob[pos], (Protocol.P1, _p1_frame))
        found = parse(blob, pos)
        if found is None:
            return None
        out.append((protocol, found[0]))
        pos = found[1]
    return out or None


def checked_cores(frame: bytes, protocol: Protocol) -> list[bytes] | None:
    """A reading's frame bytes -> its checksummed frames, None when a checksum fails.

    Frames of another format than ``protocol`` count as failing here; see ``split_frames``.
    """
    frames = split_frames(frame)
    if frames is None or any(p is not protocol for p, _ in frames):
        return None
    return [core for _, core in frames]


# ---------------------------------------------------------------- seeds


@dataclass(frozen=True, slots=True)
class Seed:
    """One clean message and what a correct decoder reads from it.

    ``frames`` are its checksummed frames in order (``wire`` is their
    concatenation); a bare APDU is its one unprotected "frame". ``expected``
    is None when nothing may decode (wrong key).
    """

    key: str
    family: Family
    layout: Layout
    wire: bytes
    frames: tuple[bytes, ...]
    cores: tuple[bytes, ...]
    expected: Reading | None
    options: DecodeOptions
    protocol: Protocol
    """The framing the message travels in (APDU: none)."""


def _value_range(name: str, layout: Layout) -> tuple[float, float]:
    if "energy" in name:
        return 0.0, 999_999.0
    if name.startswith(("active_power", "reactive_power")):
        return 0.0, 30_000.0
    if name.startswith("current"):
        return (-120.0 if layout in _SIGNED_CURRENT else 0.0), 120.0
    if name.startswith("voltage"):
        return 180.0, 260.0
    return 0.0, 1.0  # power factor


def draw_values(rng: random.Random, layout: Layout, names: Sequence[str]) -> dict[str, float]:
    """Every value of a list as the raw integer the meter sends, now and then an edge value."""
    out: dict[str, float] = {}
    for name in names:
        decimals = resolution(layout, name)
        if decimals is None:  # pragma: no cover - carried names always have one
            raise AssertionError(f"{layout} carries {name} without a resolution")
        low, high = _value_range(name, layout)
        lo, hi = round(low * 10.0**decimals), round(high * 10.0**decimals)
        pick = rng.random()
        if pick < 0.04:
            raw = lo
        elif pick < 0.08:
            raw = hi
        elif pick < 0.12:
            raw = max(lo, min(hi, 0))
        else:
            raw = rng.randint(lo, hi)
        out[name] = raw / 10**decimals if decimals > 0 else float(raw * 10**-decimals)
    if layout in _P1_LAYOUTS:  # P1 currents come back signed by the phase powers
        for phase in (1, 2, 3):
            current = f"current_l{phase}"
            if current in out:
                exporting = out.get(f"active_power_export_l{phase}", 0.0) > out.get(
                    f"active_power_import_l{phase}", 0.0
                )
                out[current] = -abs(out[current]) if exporting else abs(out[current])
    return out


_ZONES: Final = (None, UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)))
_EPOCH: Final = datetime(2001, 1, 1)
_SPAN: Final = int((datetime(2098, 12, 31) - _EPOCH).total_seconds())


def draw_reading(rng: random.Random, layout: Layout) -> Reading:
    """A plausible reading of a random list and wiring of ``layout``."""
    spec = layout_spec(layout)
    kind = rng.choice(list_kinds(layout))
    topology = rng.choice(spec.topologies)
    values = draw_values(rng, layout, carried_names(layout, kind, topology))
    manufacturer: str | None = None
    meter_type: str | None = None
    if layout is Layout.OBIS_ARRAY_AT:
        manufacturer = rng.choice(sorted(MAKER_PREFIX))
    elif layout in _P1_LAYOUTS and rng.random() < 0.6:
        manufacturer = rng.choice(sorted(STYLES))
        if rng.random() < 0.5:
            meter_type = "".join(rng.choices("ABCDEFGHIJ0123456789-", k=rng.randint(1, 10)))
    if layout is Layout.KAMSTRUP_DK:
        meter_id = str(rng.randint(0, 0xFFFF_FFFF))
    else:
        meter_id = "".join(rng.choices("0123456789", k=rng.randint(8, 16)))
    when: datetime | None = None
    if rng.random() < 0.85:
        when = (_EPOCH + timedelta(seconds=rng.randint(0, _SPAN))).replace(
            tzinfo=rng.choice(_ZONES)
        )
    return make_reading(
        values,
        meter_id=meter_id,
        meter_type=meter_type,
        meter_time=when,
        manufacturer=manufacturer,
    )


@dataclass(frozen=True, slots=True)
class Group:
    """What the seeds of one group share: layout and decoder options."""

    layout: Layout
    options: DecodeOptions


def draw_group(rng: random.Random, family: Family) -> Group:
    """Pick a layout of the family and the options a user would have set for it."""
    if family in (Family.HDLC, Family.HDLC_SEGMENTED, Family.BLOCK_TRANSFER, Family.APDU):
        layout = rng.choice(_HDLC_LAYOUTS)
    elif family is Family.MBUS:
        layout = rng.choice(_MBUS_LAYOUTS)
    elif family is Family.MBUS_WRAPPED:
        layout = rng.choice((*_HDLC_LAYOUTS, *_MBUS_LAYOUTS))
    elif family in (Family.P1, Family.P1_IN_DLMS, Family.TELEGRAM):
        layout = rng.choice(_P1_LAYOUTS)
    else:  # WRONG_KEY
        layout = rng.choice(sorted(ENCRYPTED_LAYOUTS))
    p1 = layout in _P1_LAYOUTS
    country = COUNTRY[layout] if p1 or rng.random() < 0.6 else None
    key: bytes | None = None
    auth_key: bytes | None = None
    if family is Family.WRONG_KEY:
        key, auth_key = WRONG_KEY, rng.choice((None, AUTH_KEY, WRONG_KEY))
    elif layout in ENCRYPTED_LAYOUTS or family is Family.P1_IN_DLMS:
        key, auth_key = KEY, (AUTH_KEY if rng.random() < 0.75 else None)
    elif rng.random() < 0.2:  # a key configured for a meter that does not encrypt
        key = KEY
    return Group(layout, DecodeOptions(country=country, key=key, auth_key=auth_key))


def _encode(rng: random.Random, layout: Layout) -> tuple[bytes, Reading]:
    """Frames and expected reading for a random reading the encoder accepts."""
    for _ in range(50):
        reading = draw_reading(rng, layout)
        try:
            wire = encode_reading(
                reading,
                layout,
                key=KEY,
                auth_key=AUTH_KEY,
                frame_counter=rng.randint(0, 0xFFFF_FFFE),
            )
        except EncodeError:
            continue  # a value this meter could not send as drawn (e.g. Kamstrup whole volts)
        return wire, expected_reading(reading, layout)
    raise AssertionError(f"no encodable reading for {layout} in 50 draws")  # pragma: no cover


def _hdlc_parts(frame: bytes) -> HdlcFrame:
    found = parse_hdlc(frame, 0)
    if not isinstance(found, Found):  # pragma: no cover - the encoder's frames check
        raise TypeError("the encoder built an HDLC frame the framer refuses")
    return found.item


def _cuts(rng: random.Random, size: int, pieces: int, first_min: int = 1) -> list[int]:
    """Sorted distinct cut points splitting ``size`` bytes into at most ``pieces`` parts."""
    if size <= first_min + 1:
        return []
    return sorted({rng.randint(first_min, size - 1) for _ in range(pieces - 1)})


def _split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _mbus_split(wire: bytes) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(wire):
        end = pos + wire[pos + 1] + 6
        out.append(wire[pos:end])
        pos = end
    return out


type Message = tuple[tuple[bytes, ...], Reading, Protocol]


def _message(rng: random.Random, family: Family, group: Group) -> Message:
    """The frames of one message of ``family``, what it decodes to, and its framing."""
    layout = group.layout
    if family is Family.P1_IN_DLMS:
        telegram, expected = _encode(rng, layout)
        apdu = encrypt_apdu(
            telegram,
            key=KEY,
            auth_key=AUTH_KEY,
            system_title=b"SAG" + rng.randbytes(5),
            frame_counter=rng.randint(0, 0xFFFF_FFFE),
        )
        frame = build_hdlc_frame(LLC + apdu)
        return (frame,), dataclasses.replace(expected, protocol=Protocol.HDLC), Protocol.HDLC
    wire, expected = _encode(rng, layout)
    native = layout_spec(layout).protocol
    if family is not Family.MBUS_WRAPPED and native is not Protocol.HDLC:
        frames = _mbus_split(wire) if native is Protocol.MBUS else [wire]
        return tuple(frames), expected, native
    if family in (Family.HDLC, Family.WRONG_KEY):
        return (wire,), expected, Protocol.HDLC
    if native is Protocol.MBUS:  # MBUS_WRAPPED of the M-Bus layout: re-segment its APDU
        data = b"".join(frame[9:-2] for frame in _mbus_split(wire))
    else:
        parts = _hdlc_parts(wire)
        data = parts.info[3:] if parts.info[:3] == LLC else parts.info
    if family is Family.MBUS_WRAPPED:
        out = build_mbus_frames(data, max_segment=rng.randint(24, 245))
        return (
            tuple(_mbus_split(out)),
            dataclasses.replace(expected, protocol=Protocol.MBUS),
            Protocol.MBUS,
        )
    if family is Family.APDU:
        lone = data[:1] in (b"\x0f", b"\xdb") and rng.random() < 0.5
        bare = data if lone else LLC + data
        return (bare,), dataclasses.replace(expected, protocol=Protocol.APDU), Protocol.APDU
    if family is Family.HDLC_SEGMENTED:
        pieces = _split(parts.info, _cuts(rng, len(parts.info), rng.randint(2, 4), first_min=4))
        last = len(pieces) - 1
        frames = [
            build_hdlc_frame(
                piece, dest=parts.dest, src=parts.src, control=parts.control, segmented=n < last
            )
            for n, piece in enumerate(pieces)
        ]
        return tuple(frames), expected, Protocol.HDLC
    # BLOCK_TRANSFER: one general-block-transfer block per HDLC frame, each after the LLC
    blocks = encode_block_transfer(data, block_size=rng.randint(16, 160))
    frames = [
        build_hdlc_frame(LLC + block, dest=parts.dest, src=parts.src, control=parts.control)
        for block in blocks
    ]
    return tuple(frames), expected, Protocol.HDLC


def _cores_of(protocol: Protocol, frames: Sequence[bytes]) -> tuple[bytes, ...]:
    out: list[bytes] = []
    for frame in frames:
        cores = [frame] if protocol is Protocol.APDU else checked_cores(frame, protocol)
        if cores is None:  # pragma: no cover - seeds come from the encoder
            raise AssertionError(f"a {protocol} seed frame does not check")
        out += cores
    return tuple(out)


def build_seed(run_seed: int, family: Family, generation: int, group: int, slot: int) -> Seed:
    """The seed message ``slot`` of one group: deterministic in its arguments."""
    base = f"{run_seed}:{family}:{generation}:{group}"
    chosen = draw_group(random.Random(f"{base}:group"), family)
    frames, expected, protocol = _message(random.Random(f"{base}:{slot}"), family, chosen)
    return Seed(
        key=f"{base}:{slot}",
        family=family,
        layout=chosen.layout,
        wire=b"".join(frames),
        frames=frames,
        cores=_cores_of(protocol, frames),
        expected=None if family is Family.WRONG_KEY else expected,
        options=chosen.options,
        protocol=protocol,
    )


# ---------------------------------------------------------------- mutators

_INTERESTING: Final = bytes.fromhex(
    "00ff7e7d6816 0f dbe6e7 0d0a 2f21 2829 2a2e 3039 807f a0a8 0c09 02 01"
)
_P1_TOKENS: Final = (
    b"",
    b"(",
    b")",
    b"*",
    b"**",
    b".",
    b"-",
    b"+",
    b":",
    b"!",
    b"/",
    b"\r\n",
    b"\n",
    b"\r",
    b"0",
    b"-0",
    b"1e308",
    b"NaN",
    b"inf",
    b"9" * 40,
    b"0." + b"0" * 30 + b"1",
    b"\xb2\xb3\xb9",  # latin-1 superscript digits: str.isdigit() says yes, int() says no
    b"\xff\xfe",
    b"1-0:1.8.0",
    b"0-0:1.0.0",
    b"1-0:21.7.0",
    b"999-999:999.999.999.999",
    b"1-0:1.8.0.255",
    b"*kWh",
    b"*kW",
    b"*kvar",
    b"*A",
    b"*V",
    b"*Hz",
    b"*W",
    b"*",
    b"(0001.727*kW)",
    b"(00)(1)",
    b"(991231235959W)",
    b"(000229000000S)",
    b"(4530303330303639323930303033)",
    b"(" + b"41" * 60 + b")",
    b"\\2",
)
_START_PATTERNS: Final = (
    b"\x7e\xa0",
    b"\x7e\xa8\x7e",
    b"\x7e\xa1\x23\x41\x08\x83\x13",
    b"\x68\xfa\xfa\x68",
    b"\x68\x10\x10\x68",
    b"\x68\x01\x01\x68",
    b"/ABC5",
    b"/KFM5\r\n",
    b"!",
    b"\x0f",
    b"\x0f\x40\x00\x00\x00\x00\x02\x7f",
    b"\xe6\xe7\x00",
    b"\xe6\xe7\x00\x0f\x00\x00\x00\x01\x00\x01\x01\x02\x02",
    b"\xdb\x08KFM",
    b"\xe6\xe7\x00\xe0\x80\x00\x01\x00\x00\x05",
    b"\r\n",
)
_NOISE_BYTES: Final = bytes(
    b for b in range(256) if b not in b"\x7e\x68\x2f\xe6\x0f\xdb\xdc\xe0" and not 0xA0 <= b <= 0xAF
)


def _noise(rng: random.Random, size: int) -> bytes:
    """Bytes that can start no frame of any kind."""
    return bytes(rng.choices(_NOISE_BYTES, k=size))


def _garbage(rng: random.Random) -> bytes:
    """Random bytes with frame starts and half-frames mixed in."""
    out = bytearray(rng.randbytes(rng.randint(0, 24)))
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(out))
        out[at:at] = rng.choice(_START_PATTERNS) + rng.randbytes(rng.randint(0, 8))
    return bytes(out)


def _byte(rng: random.Random) -> int:
    return rng.choice(_INTERESTING) if rng.random() < 0.4 else rng.randrange(256)


@dataclass(slots=True)
class Draft:
    """An input being built: the seed's frames, then bytes, and what was done to them."""

    seed: Seed
    partner: Seed
    frames: list[bytes]
    data: bytearray = field(default_factory=bytearray)
    names: list[str] = field(default_factory=list)
    partner_used: bool = False
    rechecked: bool = False


def _flip_bits(rng: random.Random, data: bytearray, count: int, *, burst: bool) -> None:
    if not data:
        return
    bits = len(data) * 8
    start = rng.randrange(bits)
    for _ in range(count):
        bit = (start + rng.randrange(24)) % bits if burst else rng.randrange(bits)
        data[bit >> 3] ^= 1 << (bit & 7)


def _edit(rng: random.Random, data: bytearray, lo: int = 0, hi: int | None = None) -> None:
    """One random edit (flip, substitute, insert, delete) within ``data[lo:hi]``."""
    hi = len(data) if hi is None else hi
    if hi <= lo:
        return
    op = rng.randrange(4)
    at = rng.randrange(lo, hi)
    if op == 0:
        data[at] ^= 1 << rng.randrange(8)
    elif op == 1:
        data[at] = _byte(rng)
    elif op == 2:
        data[at:at] = bytes(_byte(rng) for _ in range(rng.randint(1, 4)))
    else:
        del data[at : at + rng.randint(1, 4)]


# -- structural mutators: on the seed's frames, where the boundaries are known


def m_frame_dup(rng: random.Random, draft: Draft) -> str:
    """The whole message twice (both copies intact)."""
    draft.frames = draft.frames * 2
    return "message-twice"


def m_segments(rng: random.Random, draft: Draft) -> str:
    """Drop, repeat or swap a segment of a multi-frame message."""
    frames = draft.frames
    if len(frames) < 2:
        return m_frame_dup(rng, draft)
    at = rng.randrange(len(frames))
    op = rng.randrange(3)
    if op == 0:
        del frames[at]
        return "segment-drop"
    if op == 1:
        frames.insert(at, frames[at])
        return "segment-repeat"
    other = (at + 1) % len(frames)
    frames[at], frames[other] = frames[other], frames[at]
    return "segment-swap"


def m_segment_mix(rng: random.Random, draft: Draft) -> str:
    """A segment of another message (same meter) in place of one of this message's."""
    if len(draft.frames) < 2 or len(draft.partner.frames) < 2:
        return m_splice(rng, draft)
    at = rng.randrange(min(len(draft.frames), len(draft.partner.frames)))
    draft.frames[at] = draft.partner.frames[at]
    draft.partner_used = True
    return "segment-mix"


def m_splice(rng: random.Random, draft: Draft) -> str:
    """The head of this message, the tail of another one."""
    head = b"".join(draft.frames)
    tail = draft.partner.wire
    draft.frames = [head[: rng.randint(1, len(head))] + tail[rng.randrange(len(tail)) :]]
    draft.partner_used = True
    return "splice"


def m_length(rng: random.Random, draft: Draft) -> str:
    """Tamper with a length field (HDLC format, M-Bus L, A-XDR counts) or P1 CRC digits."""
    at = rng.randrange(len(draft.frames))
    frame = bytearray(draft.frames[at])
    protocol = draft.seed.protocol
    if protocol is Protocol.P1:
        bang = frame.rfind(b"!")
        op = rng.randrange(4)
        if op == 0:
            frame[bang + 1 : bang + 5] = frame[bang + 1 : bang + 5].lower()
        elif op == 1:
            digit = bang + 1 + rng.randrange(4)
            frame[digit] = rng.choice(b"0123456789ABCDEF")
        elif op == 2:
            del frame[bang + 1 : bang + 1 + rng.randint(1, 4)]
        else:
            del frame[bang]
        draft.frames[at] = bytes(frame)
        return "crc-digits"
    if protocol is Protocol.APDU:
        spots = [i + 1 for i in range(len(frame) - 1) if frame[i] in (0x01, 0x02, 0x09, 0x0A)]
        if spots:
            spot = rng.choice(spots)
            frame[spot] = (frame[spot] + rng.choice((-2, -1, 1, 2, 0x80))) & 0xFF
    elif protocol is Protocol.MBUS:
        delta = rng.choice((-3, -1, 1, 2, 7, 128))
        new = (frame[1] + delta) & 0xFF
        if rng.random() < 0.7:
            frame[1] = frame[2] = new
        else:
            frame[rng.choice((1, 2))] = new
    else:
        fmt = frame[1] << 8 | frame[2]
        op = rng.randrange(3)
        if op == 0:
            length = (fmt + rng.choice((-3, -1, 1, 2, 5, 0x100))) & 0x7FF
            fmt = fmt & 0xF800 | length
        elif op == 1:
            fmt ^= 0x0800  # the segmentation bit
        else:
            fmt = fmt & 0x0FFF | rng.choice((0xB000, 0x8000, 0xA000 | rng.randrange(0x800)))
        frame[1], frame[2] = fmt >> 8 & 0xFF, fmt & 0xFF
    draft.frames[at] = bytes(frame)
    return "length-field"


def m_crlf(rng: random.Random, draft: Draft) -> str:
    """A reader that turns LF into CR LF (OSS-brikken), fully or in part; P1 line ends changed."""
    if draft.seed.protocol is Protocol.P1:
        at = rng.randrange(len(draft.frames))
        op = rng.randrange(3)
        frame = draft.frames[at]
        if op == 0:
            draft.frames[at] = frame.replace(b"\r\n", b"\n")
        elif op == 1:
            draft.frames[at] = frame.replace(b"\n", b"\r\n")
        else:
            parts = frame.split(b"\r\n")
            keep = rng.randrange(len(parts) - 1) if len(parts) > 1 else 0
            draft.frames[at] = (
                b"\r\n".join(parts[: keep + 1]) + b"\n" + b"\r\n".join(parts[keep + 1 :])
            )
        return "p1-line-ends"
    if rng.random() < 0.75:
        draft.frames = [f.replace(b"\n", b"\r\n") for f in draft.frames]
        return "crlf-expanded"
    out = []
    for frame in draft.frames:
        pieces = frame.split(b"\n")
        joined = bytearray(pieces[0])
        for piece in pieces[1:]:
            joined += b"\r\n" if rng.random() < 0.5 else b"\n"
            joined += piece
        out.append(bytes(joined))
    draft.frames = out
    return "crlf-partly"


def m_rechecksum(rng: random.Random, draft: Draft) -> str:
    """Change the content of one frame and recompute its checksum(s) (length field too)."""
    at = rng.randrange(len(draft.frames))
    frame = draft.frames[at]
    protocol = draft.seed.protocol
    draft.rechecked = True
    edits = rng.randint(1, 3)
    if protocol is Protocol.APDU:
        data = bytearray(frame)
        for _ in range(edits):
            _edit(rng, data)
        draft.frames[at] = bytes(data)
        return "content-edit"
    if protocol is Protocol.P1:
        bang = frame.rfind(b"!")
        start = frame.find(b"\r\n") + 2
        body = bytearray(frame[:bang])
        for _ in range(edits):
            if rng.random() < 0.5 and start < len(body):
                token = rng.choice(_P1_TOKENS)
                spot = rng.randint(start, len(body))
                body[spot : spot + rng.randint(0, 4)] = token
            else:
                _edit(rng, body, min(start, len(body)))
        text = bytes(body).replace(b"!", b"?") + b"!"
        draft.frames[at] = text + f"{crc_arc(text):04X}\r\n".encode()
        return "content-rechecksummed"
    if protocol is Protocol.MBUS:
        content = bytearray(frame[9:-2])
        for _ in range(edits):
            _edit(rng, content)
        rebuilt = frame[4:9] + bytes(content[: 0xFF - 5])
        size = len(rebuilt)
        draft.frames[at] = (
            bytes((0x68, size, size, 0x68)) + rebuilt + bytes((sum(rebuilt) & 0xFF, 0x16))
        )
        return "content-rechecksummed"
    parts = _hdlc_parts(frame)
    info = bytearray(parts.info)
    for _ in range(edits):
        _edit(rng, info)
    draft.frames[at] = build_hdlc_frame(
        bytes(info[:1900]),
        dest=parts.dest,
        src=parts.src,
        control=parts.control,
        segmented=parts.segmented,
    )
    return "content-rechecksummed"


# -- byte-level mutators: anywhere in the input


def m_bitflip(rng: random.Random, data: bytearray) -> str:
    """One flipped bit."""
    _flip_bits(rng, data, 1, burst=False)
    return "bitflip"


def m_bitflips(rng: random.Random, data: bytearray) -> str:
    """Two to eight flipped bits, scattered or in a burst."""
    burst = rng.random() < 0.5
    _flip_bits(rng, data, rng.randint(2, 8), burst=burst)
    return "bitflip-burst" if burst else "bitflips"


def m_substitute(rng: random.Random, data: bytearray) -> str:
    """One to four bytes replaced."""
    for _ in range(rng.randint(1, 4)):
        if data:
            data[rng.randrange(len(data))] = _byte(rng)
    return "byte-substitute"


def m_insert(rng: random.Random, data: bytearray) -> str:
    """One to eight bytes inserted."""
    at = rng.randint(0, len(data))
    data[at:at] = bytes(_byte(rng) for _ in range(rng.randint(1, 8)))
    return "insert"


def m_delete(rng: random.Random, data: bytearray) -> str:
    """One to eight bytes deleted."""
    if data:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 8)]
    return "delete"


def m_truncate(rng: random.Random, data: bytearray) -> str:
    """The tail cut off (a read that stopped), or the head (a read that began late)."""
    if not data:
        return "truncate"
    at = rng.randrange(len(data))
    if rng.random() < 0.7:
        del data[at:]
        return "truncate"
    del data[: at + 1]
    return "truncate-head"


def m_slice_dup(rng: random.Random, data: bytearray) -> str:
    """A slice repeated in place."""
    if data:
        at = rng.randrange(len(data))
        data[at:at] = data[at : at + rng.randint(1, 64)]
    return "slice-repeat"


Structural = Callable[[random.Random, Draft], str]
ByteLevel = Callable[[random.Random, bytearray], str]

STRUCTURAL: Final[tuple[Structural, ...]] = (
    m_frame_dup,
    m_segments,
    m_segments,
    m_segment_mix,
    m_splice,
    m_splice,
    m_length,
    m_length,
    m_crlf,
    m_rechecksum,
    m_rechecksum,
    m_rechecksum,
)
BYTE_LEVEL: Final[tuple[ByteLevel, ...]] = (
    m_bitflip,
    m_bitflip,
    m_bitflips,
    m_substitute,
    m_insert,
    m_delete,
    m_truncate,
    m_slice_dup,
)
CLEAN: Final = frozenset({"chunking-only", "noise-prefix", "noise-suffix", "message-twice"})
"""Mutations that leave every frame of the seed intact with only noise between."""


def mutate(rng: random.Random, seed: Seed, partner: Seed) -> Draft:
    """Build one input from ``seed`` (and ``partner`` for splices and mixes)."""
    draft = Draft(seed=seed, partner=partner, frames=list(seed.frames))
    roll = rng.random()
    if roll < 0.05:
        draft.names.append("chunking-only")
        draft.data = bytearray(seed.wire)
        return draft
    if roll < 0.10:  # only noise around the message
        byte_level = 0
    else:
        structural = rng.random() < 0.45
        if structural:
            draft.names.append(rng.choice(STRUCTURAL)(rng, draft))
        byte_level = rng.choice((0, 1, 1, 2, 3) if structural else (1, 1, 1, 2, 3))
    draft.data = bytearray(b"".join(draft.frames))
    for _ in range(byte_level):
        draft.names.append(rng.choice(BYTE_LEVEL)(rng, draft.data))
    if roll < 0.10 or rng.random() < 0.15:
        side = rng.randrange(3)
        if side != 1:
            draft.data[:0] = _noise(rng, rng.randint(1, 48))
            draft.names.append("noise-prefix")
        if side != 0:
            draft.data += _noise(rng, rng.randint(1, 48))
            draft.names.append("noise-suffix")
    if roll >= 0.10 and rng.random() < 0.15:
        if rng.random() < 0.5:
            draft.data[:0] = _garbage(rng)
            draft.names.append("garbage-prefix")
        else:
            draft.data += _garbage(rng)
            draft.names.append("garbage-suffix")
    return draft


def chunk_cuts(rng: random.Random, size: int) -> list[int]:
    """Where the input is cut for delivery: whole, a few random cuts, or tiny pieces."""
    roll = rng.random()
    if roll < 0.35 or size < 2:
        return []
    if roll < 0.99 or size > 800:
        return _cuts(rng, size, rng.randint(2, 9))
    step = rng.randint(1, 3)
    return list(range(step, size, step))


# ---------------------------------------------------------------- P1 parser mutators


def mutate_telegram(rng: random.Random, telegram: bytes) -> tuple[bytes, list[str]]:
    """Text-aware mutations of a P1 telegram body (its CRC is not looked at)."""
    data = bytearray(telegram)
    names: list[str] = []
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        if op == 0:
            names.append(m_bitflip(rng, data))
        elif op == 1:
            names.append(m_substitute(rng, data))
        elif op == 2:
            names.append(rng.choice((m_insert, m_delete, m_truncate, m_slice_dup))(rng, data))
        elif op in (3, 4):
            spots = [i for i, b in enumerate(data) if b in b"(*):-."]
            at = rng.choice(spots) if spots else rng.randint(0, len(data))
            token = rng.choice(_P1_TOKENS)
            data[at + 1 : at + 1 + rng.randint(0, 6)] = token
            names.append("p1-token")
        else:
            lines = bytes(data).split(b"\r\n")
            at = rng.randrange(len(lines))
            kind = rng.randrange(3)
            if kind == 0 and len(lines) > 1:
                del lines[at]
                names.append("p1-line-drop")
            elif kind == 1:
                lines.insert(at, lines[at])
                names.append("p1-line-repeat")
            else:
                other = rng.randrange(len(lines))
                lines[at], lines[other] = lines[other], lines[at]
                names.append("p1-line-swap")
            data = bytearray(b"\r\n".join(lines))
    return bytes(data), names


# ---------------------------------------------------------------- running


class Stream(TypingProtocol):
    """What the fuzzer drives: ``MeterStream`` or a planted fake."""

    def feed(self, data: bytes) -> list[Reading]:
        """Add bytes; return the readings they completed."""
        ...

    def flush(self) -> list[Reading]:
        """The input ends: the readings still waiting for more (a lone bare APDU)."""
        ...


StreamFactory = Callable[[DecodeOptions], Stream]
TelegramDecoder = Callable[[bytes], Reading]


def _meter_stream(options: DecodeOptions) -> Stream:
    return MeterStream(options)


def _decode_telegram(telegram: bytes) -> Reading:
    return decode_telegram(telegram, options=DecodeOptions(country="SE"))


@dataclass(slots=True)
class Sample:
    """A failing input, with what is needed to reproduce it."""

    category: str
    index: int
    family: str
    layout: str
    mutators: list[str]
    detail: str
    data: bytes
    options: str
    prime: bytes = b""
    cuts: list[int] = field(default_factory=list)
    tail: bytes = b""
    warm: bool = False
    note: str = ""
    """Refines the breakdown (``Stats.where``): whether the values were right."""

    def render(self, run_seed: int) -> str:
        """Multi-line description with the input in hex."""
        lines = [
            f"  [{self.category}] input #{self.index} ({self.family}, {self.layout}; "
            f"{', '.join(self.mutators) or '-'})",
            f"    replay: scripts/fuzz --seed {run_seed} --replay {self.index}",
            f"    options: {self.options}",
            f"    detail: {self.detail}",
        ]
        if self.note == "soak":
            lines.append("    on the soak stream (this input followed the task's earlier ones)")
        elif self.prime:
            lines.append(f"    warm stream, after the clean message {self.prime.hex()}")
        elif self.family != Family.TELEGRAM:
            lines.append("    cold stream (fresh MeterStream)")
        if self.cuts:
            lines.append(f"    fed in pieces cut at {self.cuts}")
        lines.append(f"    input ({len(self.data)} bytes): {self.data.hex()}")
        if self.tail:
            message = self.tail[:-IDLE].hex()
            then = f"the clean message {message} and " if message else ""
            lines.append(f"    then {then}{IDLE} idle bytes {self.tail[-1:].hex()}")
        return "\n".join(lines)


@dataclass(slots=True)
class Stats:
    """Counts of one run (or task); ``merge`` adds another's."""

    inputs: int = 0
    families: Counter[str] = field(default_factory=Counter)
    mutators: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    collisions: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    where: Counter[str] = field(default_factory=Counter)
    """Failures by category and stream state (cold: a fresh stream; warm: after a clean message)."""
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    readings: int = 0
    bytes_fed: int = 0
    seeds_built: int = 0
    peak_traced: int = 0
    max_rss_kib: int = 0
    max_soak_buffer: int = 0
    elapsed: float = 0.0

    def fail(self, sample: Sample) -> None:
        """Count a failure and keep its reproducer (a few per category)."""
        self.failures[sample.category] += 1
        if sample.index >= 0 and sample.family != Family.TELEGRAM:
            soak = sample.note == "soak"
            state = "soak" if soak else "warm" if sample.warm else "cold"
            note = f", {sample.note}" if sample.note and not soak else ""
            self.where[f"{sample.category}: {state} stream{note}"] += 1
        kept = self.samples.setdefault(sample.category, [])
        if len(kept) < SAMPLES:
            kept.append(sample)

    def merge(self, other: Stats) -> None:
        """Add another run's counts to these."""
        self.inputs += other.inputs
        self.families.update(other.families)
        self.mutators.update(other.mutators)
        self.outcomes.update(other.outcomes)
        self.collisions.update(other.collisions)
        self.failures.update(other.failures)
        self.where.update(other.where)
        for category, samples in other.samples.items():
            kept = self.samples.setdefault(category, [])
            kept.extend(samples[: max(0, SAMPLES - len(kept))])
        self.readings += other.readings
        self.bytes_fed += other.bytes_fed
        self.seeds_built += other.seeds_built
        self.peak_traced = max(self.peak_traced, other.peak_traced)
        self.max_rss_kib = max(self.max_rss_kib, other.max_rss_kib)
        self.max_soak_buffer = max(self.max_soak_buffer, other.max_soak_buffer)
        self.elapsed = max(self.elapsed, other.elapsed)

    @property
    def failed(self) -> int:
        """Total failures."""
        return sum(self.failures.values())


class _Trap(logging.Handler):
    """Catches log records that carry an exception: a safety net swallowed a bug."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.caught: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.caught.append(f"{record.getMessage()}: {_exception(record.exc_info[1])}")


LIBRARY_LOGGER: Final = "custom_components.hanport.han"


@contextmanager
def trap_library_exceptions(trap: _Trap) -> Iterator[_Trap]:
    """Route the library's log records (DEBUG up) to ``trap`` instead of the root logger."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(trap)
    try:
        yield trap
    finally:
        logger.removeHandler(trap)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _describe_options(options: DecodeOptions) -> str:
    key = options.key.hex() if options.key else None
    auth = options.auth_key.hex() if options.auth_key else None
    return f"country={options.country!r} key={key} auth_key={auth}"


def _well_formed(reading: Reading) -> bool:
    values = reading.values
    return all(
        name in ALL_UNITS and isinstance(value, float) and math.isfinite(value)
        for name, value in values.items()
    )


def _values_note(reading: Reading, expected: Sequence[Reading]) -> str:
    """Whether a failing reading's values are still right (for the breakdown)."""
    return "values right" if any(_consistent(reading, e) for e in expected) else "values WRONG"


def _consistent(reading: Reading, expected: Reading) -> bool:
    """Nothing wrong in ``reading``: each identity field is missing or the expected one,
    and every value present equals the expected value of that name (a partial reading)."""
    for got, want in (
        (reading.manufacturer, expected.manufacturer),
        (reading.meter_id, expected.meter_id),
        (reading.meter_type, expected.meter_type),
        (reading.list_version, expected.list_version),
        (reading.meter_time, expected.meter_time),
    ):
        if got is not None and got != want:
            return False
    wanted = expected.values
    return all(name in wanted and wanted[name] == value for name, value in reading.values.items())


@dataclass(slots=True)
class Case:
    """One input, built and ready to feed."""

    index: int
    family: Family
    seed: Seed
    partner: Seed
    draft: Draft
    data: bytes
    cuts: list[int]
    warm: bool
    tail: bytes = b""
    """What follows the input: the next clean message (the partner's) and/or an idle line."""

    @property
    def prime(self) -> bytes:
        """The clean message a warm stream has seen first (the partner's).

        Bare APDUs: twice, back to back, as a bridge sends them; one alone shows nothing
        (a cold stream withholds it until the next starts at its end).
        """
        if not self.warm:
            return b""
        return self.partner.wire * (2 if self.partner.protocol is Protocol.APDU else 1)


SOAK_OPTIONS: Final = DecodeOptions(key=KEY, auth_key=AUTH_KEY)


class Fuzzer:
    """Runs inputs of one run seed and collects ``Stats``.

    ``stream_factory`` and ``telegram_decoder`` are the code under test
    (``MeterStream`` and ``decode_telegram`` unless a test plants a fake).
    """

    def __init__(
        self,
        run_seed: int,
        *,
        stream_factory: StreamFactory = _meter_stream,
        telegram_decoder: TelegramDecoder | None = None,
        soak: bool = True,
    ) -> None:
        self.run_seed = run_seed
        self.stream_factory = stream_factory
        self.telegram_decoder = telegram_decoder
        self.soak_enabled = soak
        self.stats = Stats()
        self._seeds: dict[tuple[Family, int, int, int], Seed] = {}
        self._soak_expected: dict[str, list[Reading]] = {}
        self._soak: Stream | None = None
        self._recent: deque[Seed] = deque(maxlen=4)
        self.trap = _Trap()
        """Collects exceptions the library's safety nets swallowed (see ``run``)."""
        self.case: Case | None = None
        """The input being run (planted fakes in the tests look at it)."""
        self.last_readings: list[Reading] = []
        """What the fresh stream made of the last input (for ``--replay``)."""

    # -- seeds

    def seed(self, family: Family, generation: int, group: int, slot: int) -> Seed:
        """The (cached, validated) seed of one slot."""
        key = (family, generation, group, slot)
        found = self._seeds.get(key)
        if found is not None:
            return found
        if len(self._seeds) > 2 * len(_FAMILIES) * GROUPS * SLOTS:
            self._seeds = {k: v for k, v in self._seeds.items() if k[1] >= generation}
        seed = build_seed(self.run_seed, family, generation, group, slot)
        self.stats.seeds_built += 1
        if family is not Family.TELEGRAM:
            wanted = [] if seed.expected is None else [seed.expected]
            try:
                readings = self.feed(seed.options, seed.wire, end=True)  # a whole capture
                problem = None if readings == wanted else f"got {readings!r}"
            except Exception as err:  # noqa: BLE001 - the finding
                problem = f"raised {_exception(err)}"
            if problem is not None:
                detail = f"seed {seed.key}: {problem}, expected {wanted!r}"
                self.stats.fail(
                    Sample(
                        F_SEED,
                        -1,
                        family,
                        seed.layout,
                        [],
                        detail,
                        seed.wire,
                        _describe_options(seed.options),
                    )
                )
        self._seeds[key] = seed
        return seed

    def feed(
        self,
        options: DecodeOptions,
        data: bytes,
        cuts: Sequence[int] = (),
        prime: bytes = b"",
        tail: bytes = TAILS[0],
        *,
        end: bool = False,
    ) -> list[Reading]:
        """A fresh stream: the prime, then ``data`` in pieces, then ``tail``.

        ``end``: then the input ends (``flush``), as a capture does; a live port never
        ends, so the fuzz inputs do not.
        """
        stream = self.stream_factory(options)
        if prime:
            stream.feed(prime)
        out: list[Reading] = []
        for piece in _split(data, cuts):
            out += stream.feed(piece)
        out += stream.feed(tail)
        if end:
            out += stream.flush()
        return out

    # -- one input

    def build(self, index: int) -> Case:
        """Input ``index``: a pure function of the run seed and the index."""
        rng = random.Random(f"{self.run_seed}:{index}")
        pick = rng.randrange(_FAMILY_CUM[-1])
        family = next(f for f, cum in zip(_FAMILIES, _FAMILY_CUM, strict=True) if pick < cum)
        generation = index // GENERATION
        group = rng.randrange(GROUPS)
        slot, other = rng.sample(range(SLOTS), 2)
        seed = self.seed(family, generation, group, slot)
        partner = self.seed(family, generation, group, other)
        if family is Family.TELEGRAM:
            text, names = mutate_telegram(rng, seed.wire)
            draft = Draft(seed, partner, [text], bytearray(text), names)
            return Case(index, family, seed, partner, draft, text, [], warm=False)
        draft = mutate(rng, seed, partner)
        data = bytes(draft.data)
        cuts = chunk_cuts(rng, len(data))
        warm = rng.random() < 0.5
        tail = rng.choice(TAILS)
        if rng.random() < 0.4:
            tail = partner.wire + tail
            draft.partner_used = True
        return Case(index, family, seed, partner, draft, data, cuts, warm, tail)

    def run_one(self, index: int) -> None:
        """Build, feed and judge input ``index``."""
        caught = self.trap.caught
        caught.clear()
        case = self.build(index)
        self.case = case
        stats = self.stats
        stats.inputs += 1
        stats.families[case.family] += 1
        stats.mutators.update(case.draft.names)
        if case.family is Family.TELEGRAM:
            self._telegram(case)
            return
        try:
            readings = self.feed(case.seed.options, case.data, case.cuts, case.prime, case.tail)
        except Exception as err:  # noqa: BLE001 - any exception out of feed is the finding
            self._fail(case, F_RAISED, _exception(err))
            readings = []
        if caught:
            self._fail(case, F_SWALLOWED, " | ".join(caught))
            caught.clear()
        self.last_readings = readings
        if case.cuts and index % SPLIT_CHECK_EVERY == 0:
            self._check_split(case, readings)
        stats.bytes_fed += len(case.data)
        stats.readings += len(readings)
        self._judge(case, readings)
        if self.soak_enabled:
            self._soak_feed(case)
            if caught:
                self._fail(case, F_SWALLOWED, "soak: " + " | ".join(caught), "soak")
                caught.clear()

    def _check_split(self, case: Case, readings: list[Reading]) -> None:
        """The same bytes in one piece: the same readings, from the same frame bytes."""
        try:
            whole = self.feed(case.seed.options, case.data, (), case.prime, case.tail)
        except Exception:  # noqa: BLE001 - reported by the chunked feed already
            return
        if [(r, r.frame) for r in whole] == [(r, r.frame) for r in readings]:
            return
        expected = [s.expected for s in (case.seed, case.partner) if s.expected is not None]
        only_whole = [r for r in whole if r not in readings]
        only_pieces = [r for r in readings if r not in whole]
        if all(
            r.protocol is Protocol.APDU and any(_consistent(r, e) for e in expected)
            for r in only_whole + only_pieces
        ) and (only_whole or only_pieces):
            # A bare APDU that ends where a read ends is taken at once (framing/apdu.py,
            # by design: the last push before a pause); fed whole, the bytes after it
            # may show it was a frame's inside. Its values are right either way.
            self.stats.outcomes[O_SPLIT_BARE] += 1
            return
        self._fail(case, F_SPLIT, f"in pieces: {readings!r}; whole: {whole!r}")

    def _fail(self, case: Case, category: str, detail: str, note: str = "") -> None:
        self.stats.fail(
            Sample(
                category,
                case.index,
                case.family,
                case.seed.layout,
                list(case.draft.names),
                detail,
                case.data,
                _describe_options(case.seed.options),
                case.prime,
                list(case.cuts),
                case.tail,
                case.warm,
                note,
            )
        )

    def _telegram(self, case: Case) -> None:
        try:
            if self.telegram_decoder is not None:
                reading = self.telegram_decoder(case.data)
            else:
                options = DecodeOptions(country=case.seed.options.country)
                reading = decode_telegram(case.data, options=options)
        except FrameError:
            self.stats.outcomes[O_TELEGRAM_REFUSED] += 1
            return
        except Exception as err:  # noqa: BLE001 - the finding
            self._fail(case, F_TELEGRAM, _exception(err))
            return
        self.stats.outcomes[O_TELEGRAM_DECODED] += 1
        if not _well_formed(reading):
            self._fail(case, F_ILL_FORMED, repr(reading))

    def _judge(self, case: Case, readings: list[Reading]) -> None:
        """Hold every reading against the oracle (see the module docstring)."""
        stats = self.stats
        seed, draft = case.seed, case.draft
        seeds = [seed, case.partner] if draft.partner_used else [seed]
        if not readings:
            stats.outcomes[O_NO_READING] += 1
        if seed.expected is None:  # wrong key: nothing may come out
            for reading in readings:
                self._fail(case, F_WRONG_KEY, repr(reading))
            return
        expected = [s.expected for s in seeds if s.expected is not None]
        clean_wires = {s.wire for s in seeds}
        exact = 0
        for reading in readings:
            if not _well_formed(reading):
                self._fail(case, F_ILL_FORMED, repr(reading))
            protocol = reading.protocol
            if protocol is Protocol.APDU:
                if reading in expected:
                    exact += reading == seed.expected
                    stats.outcomes[O_EXACT] += 1
                elif seed.protocol is Protocol.APDU:
                    stats.outcomes[O_BARE_ALTERED] += 1
                elif any(_consistent(reading, e) for e in expected):
                    stats.outcomes[O_BARE_INSIDE] += 1
                else:
                    self._fail(case, F_BARE_INSIDE, f"{reading!r} from {reading.frame.hex()}")
                continue
            known = reading.frame in clean_wires  # a seed's bytes: they check
            frames = None if known else split_frames(reading.frame)
            cores = None if frames is None else [core for _, core in frames]
            if not known and frames is None:
                note = _values_note(reading, expected)
                self._fail(case, F_CHECKSUM, f"{reading!r} from {reading.frame.hex()}", note)
            elif frames is not None and any(p is not protocol for p, _ in frames):
                note = _values_note(reading, expected)
                self._fail(case, F_FRAME_MIXED, f"{reading!r} from {reading.frame.hex()}", note)
            elif reading in expected:
                exact += reading == seed.expected
                stats.outcomes[O_EXACT] += 1
            elif cores is None or any(tuple(cores) == s.cores for s in seeds):
                self._fail(case, F_MISDECODED, f"{reading!r}, expected {expected!r}")
            elif all(any(core in s.cores for s in seeds) for core in cores):
                if seed.family in _SEQUENCED and not draft.partner_used:
                    self._fail(case, F_RESEQUENCED, f"{reading!r} from {reading.frame.hex()}")
                else:
                    stats.outcomes[O_RESEQUENCED] += 1
            elif draft.rechecked:
                stats.outcomes[O_RECHECKED] += 1
            else:
                stats.outcomes[O_COLLISION] += 1
                stats.collisions[f"{protocol} in {seed.family}"] += 1
        names = set(draft.names)
        lost_matters = names <= CLEAN
        if seed.protocol is Protocol.APDU:
            # A bare APDU has no checksum: noise around it may make it a frame's inside,
            # and on a cold stream it is withheld until the next starts at its end (the
            # message again, or the partner's right after it).
            confirmed = (
                case.warm
                or "message-twice" in names
                or (draft.partner_used and "noise-suffix" not in names)
            )
            lost_matters &= confirmed and not names & {"noise-prefix", "noise-suffix"}
        if lost_matters and not exact:
            self._fail(case, F_LOST, f"readings: {readings!r}")

    # -- the soak stream: every input back to back

    def _soak_expectation(self, seed: Seed) -> list[Reading]:
        found = self._soak_expected.get(seed.key)
        if found is None:
            try:
                found = self.feed(SOAK_OPTIONS, seed.wire)
            except Exception:  # noqa: BLE001 - reported where the input itself was fed
                found = []
            if len(self._soak_expected) > 4096:
                self._soak_expected.clear()
            self._soak_expected[seed.key] = found
        return found

    def _soak_feed(self, case: Case) -> None:
        if self._soak is None:
            self._soak = self.stream_factory(SOAK_OPTIONS)
        self._recent.append(case.seed)
        if case.draft.partner_used:
            self._recent.append(case.partner)
        readings: list[Reading] = []
        try:
            for piece in _split(case.data, case.cuts):
                readings += self._soak.feed(piece)
        except Exception as err:  # noqa: BLE001 - the finding
            self._fail(case, F_RAISED, "soak: " + _exception(err), "soak")
            self._soak = None
            return
        reader = getattr(self._soak, "_reader", None)
        buffered = getattr(reader, "buffered", 0)
        if isinstance(buffered, int):
            self.stats.max_soak_buffer = max(self.stats.max_soak_buffer, buffered)
            if buffered > SOAK_BUFFER_CAP:
                self._fail(case, F_SOAK_BUFFER, f"{buffered} bytes buffered", "soak")
        for reading in readings:
            self.stats.outcomes[O_SOAK_READINGS] += 1
            if not _well_formed(reading):
                self._fail(case, F_ILL_FORMED, "soak: " + repr(reading), "soak")
            if reading.protocol is Protocol.APDU:
                continue
            frames = split_frames(reading.frame)
            if frames is None:
                self._fail(case, F_SOAK_CHECKSUM, f"{reading!r} from {reading.frame.hex()}", "soak")
                continue
            if any(p is not reading.protocol for p, _ in frames):
                detail = f"soak: {reading!r} from {reading.frame.hex()}"
                self._fail(case, F_FRAME_MIXED, detail, "soak")
            for seed in self._recent:
                if reading.frame == seed.wire and reading not in self._soak_expectation(seed):
                    self._fail(case, F_SOAK_MISDECODED, f"{reading!r} (seed {seed.key})", "soak")

    # -- many inputs

    def run(self, start: int, count: int) -> Stats:
        """Run inputs ``[start, start + count)``; return this fuzzer's stats."""
        began = time.perf_counter()
        with trap_library_exceptions(self.trap):
            for index in range(start, start + count):
                self.run_one(index)
        stats = self.stats
        stats.elapsed += time.perf_counter() - began
        if tracemalloc.is_tracing():
            stats.peak_traced = max(stats.peak_traced, tracemalloc.get_traced_memory()[1])
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stats.max_rss_kib = max(stats.max_rss_kib, rss)
        return stats


def _exception(err: BaseException) -> str:
    """The exception and where it was raised (innermost frame)."""
    where = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    at = f" at {where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno}" if where else ""
    return f"{type(err).__name__}: {err}{at}"


# ---------------------------------------------------------------- parallel runs


def _task(
    run_seed: int,
    start: int,
    count: int,
    trace: bool,
    *,
    stream_factory: StreamFactory = _meter_stream,
    telegram_decoder: TelegramDecoder | None = None,
) -> Stats:
    """One task (a fresh fuzzer, so its soak stream is deterministic): module level, pickles."""
    if trace and not tracemalloc.is_tracing():
        tracemalloc.start()
    fuzzer = Fuzzer(run_seed, stream_factory=stream_factory, telegram_decoder=telegram_decoder)
    return fuzzer.run(start, count)


def fuzz(
    count: int,
    run_seed: int,
    *,
    workers: int = 1,
    start: int = 0,
    trace_memory: bool = True,
    memory_cap: int = MEMORY_CAP,
    progress: Callable[[Stats], None] | None = None,
    stream_factory: StreamFactory = _meter_stream,
    telegram_decoder: TelegramDecoder | None = None,
) -> Stats:
    """Run inputs ``[start, start + count)`` on ``workers`` processes (1: in this one).

    A planted ``stream_factory``/``telegram_decoder`` (tests) runs in this process only.
    """
    began = time.perf_counter()
    total = Stats()
    tasks = [
        (at, min(TASK_SIZE, start + count - at)) for at in range(start, start + count, TASK_SIZE)
    ]
    if workers > 1 and (stream_factory is not _meter_stream or telegram_decoder is not None):
        raise ValueError("a planted stream or decoder runs with workers=1 only")
    if workers <= 1:
        started = trace_memory and not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        try:
            for at, size in tasks:
                total.merge(
                    _task(
                        run_seed,
                        at,
                        size,
                        False,
                        stream_factory=stream_factory,
                        telegram_decoder=telegram_decoder,
                    )
                )
                if progress is not None:
                    progress(total)
        finally:
            if started:
                tracemalloc.stop()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_task, run_seed, at, size, trace_memory) for at, size in tasks]
            for future in futures:
                total.merge(future.result())
                if progress is not None:
                    progress(total)
    total.elapsed = time.perf_counter() - began
    if trace_memory and total.peak_traced > memory_cap:
        detail = f"peak {total.peak_traced} bytes > cap {memory_cap}"
        total.fail(Sample(F_MEMORY, -1, "-", "-", [], detail, b"", "-"))
    return total
