"""Result types shared by the per-format parsers and the frame reader.

Every parser looks at one candidate start in the reader's buffer and answers
with exactly one of: ``None`` (wait for more bytes), ``Found`` (a checked frame
and where it ends), ``Bad`` (a frame was there but failed a check: counted and
reported) or ``NOT_A_FRAME`` (the bytes only looked like a start: plain garbage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from ..errors import RejectReason


class Skip(Enum):
    """The candidate was not a frame at all (not counted as a rejection)."""

    NOT_A_FRAME = 0


NOT_A_FRAME: Final = Skip.NOT_A_FRAME

LLC: Final = b"\xe6\xe7\x00"
"""LLC header before the APDU: destination LSAP, source LSAP, quality."""
APDU_TAGS: Final = frozenset({0x0F, 0xDB, 0xDC, 0xE0})
"""APDUs a meter pushes: data-notification, glo/ded-ciphering, general block transfer."""


@dataclass(frozen=True, slots=True)
class Found[T]:
    """A frame that passed every check.

    ``end`` is the buffer index just after the frame; ``trailer`` counts the bytes
    after ``end`` that belong to it when present (a closing HDLC flag that may also
    open the next frame, the CRLF after a P1 checksum) so they are not counted as
    discarded.
    """

    item: T
    end: int
    trailer: int = 0


@dataclass(frozen=True, slots=True)
class Bad:
    """A frame that failed a check.

    ``evidence`` is True when a checksum-protected part held (an HDLC header with
    a valid HCS): a real checksummed frame was there, so its inner bytes must not
    be taken for a bare APDU.
    """

    reason: RejectReason
    detail: str
    frame: bytes
    evidence: bool = False


@dataclass(slots=True)
class StreamCounters:
    """What a stream has seen; public state for diagnostics.

    ``frames_ok`` counts messages that became a reading; ``rejected`` counts every
    frame or message that yielded nothing because a check failed; bytes outside
    any accepted frame (garbage, rejected frames) are ``bytes_discarded``.
    """

    frames_ok: int = 0
    rejected: dict[RejectReason, int] = field(default_factory=dict)
    bytes_discarded: int = 0
    bytes_received: int = 0

    @property
    def frames_total(self) -> int:
        """Messages accepted plus messages rejected."""
        return self.frames_ok + sum(self.rejected.values())

    def count_reject(self, reason: RejectReason) -> None:
        """Count one rejection."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
