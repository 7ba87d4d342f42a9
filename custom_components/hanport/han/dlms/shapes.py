"""A per-meter cache of A-XDR body shapes: decode a push list's body without parsing it again.

A meter sends the same few lists over and over: the tags, lengths, OBIS codes,
scaler-units and identity strings repeat; only the numbers (and the clock)
change. ``ShapeCache.decode`` gives exactly what ``axdr.decode`` gives, and
takes the first frame of each shape the slow way, recording its *template*:

* every byte ``axdr.decode`` reads to decide what comes next (tags, lengths) or
  that it keeps as a constant is **structural**; the bytes of the numbers and of
  12-byte octet-strings (clocks) are **fields**;
* the next body of the same length at the same position is taken from the
  template only when **every structural byte is equal** (one big-integer
  compare). ``axdr.decode`` reads the same positions and makes the same
  decisions then, because only structural bytes steer it; the fields are read
  with the same ``struct`` formats in one ``unpack_from``, and the tree is
  rebuilt around them (constant sub-trees shared: they are tuples of immutable
  values; arrays are always new lists).
* Every template is checked on the frame it came from (the rebuilt tree must
  equal the decoded one, type for type) before it is used.

A structure of exactly two one-byte integers (a scaler-unit) is kept as a
constant; every other number is a field. That choice only decides how often
the template is used, never what a decode returns: any other difference in a
structural byte falls back to ``axdr.decode``. Templates are keyed by the body's
length and position, made the second time a key is seen, and a key whose
template never fits a later frame is not tried again (a shape whose "constant"
bytes change every time).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Final

from . import axdr
from .axdr import Data

MAX_TEMPLATES: Final = 16
"""Shapes kept per cache (a meter sends two to four lists)."""
_CLOCK_SIZE: Final = 12
_ONE_BYTE_INTEGERS: Final = frozenset({axdr.INT8, axdr.UINT8, axdr.ENUM})
_FORMATS: Final = {tag: unpacker.format.lstrip(">") for tag, unpacker in axdr._FIXED.items()}

type _Getter = Callable[[tuple[Data, ...]], Data]


class _Const:
    """A sub-tree that is the same in every frame of the shape."""

    __slots__ = ("value",)

    def __init__(self, value: Data) -> None:
        self.value = value


class _Field:
    """A number or clock read from the frame: its index among the unpacked fields."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _Container:
    """A structure or array with at least one field below it."""

    __slots__ = ("array", "children")

    def __init__(self, array: bool, children: list[_Node]) -> None:
        self.array = array
        self.children = children


type _Node = _Const | _Field | _Container


class _Walk:
    """Follows ``axdr.decode`` through a body it has decoded, recording the shape."""

    __slots__ = ("buf", "end", "fields", "mask")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.end = len(buf)
        self.fields: list[tuple[int, str]] = []  # (offset, struct format)
        self.mask = bytearray(len(buf))  # 0xFF on structural bytes

    def structural(self, start: int, stop: int) -> None:
        self.mask[start:stop] = b"\xff" * (stop - start)

    def field(self, start: int, fmt: str) -> _Field:
        self.fields.append((start, fmt))
        return _Field(len(self.fields) - 1)

    def node(self, pos: int, constant: bool = False) -> tuple[_Node, int]:
        buf = self.buf
        tag = buf[pos]
        unpacker = axdr._FIXED.get(tag)
        if unpacker is not None:
            nxt = pos + 1 + unpacker.size
            if constant:
                self.structural(pos, nxt)
                return _Const(unpacker.unpack_from(buf, pos + 1)[0]), nxt
            self.structural(pos, pos + 1)
            return self.field(pos + 1, _FORMATS[tag]), nxt
        if tag in (axdr.STRUCTURE, axdr.ARRAY):
            count, first = axdr.read_length(buf, pos + 1)
            self.structural(pos, first)
            array = tag == axdr.ARRAY
            pair = (
                not array
                and count == 2
                and first + 3 < self.end
                and buf[first] in _ONE_BYTE_INTEGERS
                and buf[first + 2] in _ONE_BYTE_INTEGERS
            )
            children: list[_Node] = []
            for _ in range(count):
                child, first = self.node(first, constant=pair)
                children.append(child)
            if not array and all(type(child) is _Const for child in children):
                return _Const(tuple(child.value for child in children)), first  # type: ignore[union-attr]
            return _Container(array, children), first
        if tag == axdr.OCTET_STRING and pos + 1 < self.end and buf[pos + 1] == _CLOCK_SIZE:
            self.structural(pos, pos + 2)
            nxt = pos + 2 + _CLOCK_SIZE
            return self.field(pos + 2, f"{_CLOCK_SIZE}s"), nxt
        if tag == axdr.NULL:
            value: Data = None
            nxt = pos + 1
        else:
            value, nxt = axdr._decode_scalar(buf, pos, self.end)
        self.structural(pos, nxt)
        return _Const(value), nxt


class _Single:
    """A one-element structure (``itemgetter`` of one index returns the item itself)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, ext: tuple[Data, ...]) -> Data:
        return (ext[self.index],)


class _Array:
    """An array: always a new list."""

    __slots__ = ("indices",)

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = tuple(indices)

    def __call__(self, ext: tuple[Data, ...]) -> Data:
        return [ext[index] for index in self.indices]


type _Ref = tuple[int, int] | _Container
"""Where a node's value sits in ``ext``: (0, i) constant i, (1, i) field i, or a container."""


class Template:
    """One body shape: where its fields are and how to rebuild its tree around them."""

    __slots__ = ("_consts", "_levels", "_root", "_unpack", "bits", "end", "hits", "mask")

    def __init__(self, buf: bytes, pos: int, root: _Node, walk: _Walk, end: int) -> None:
        self.end = end
        self.hits = 0
        self.mask = int.from_bytes(walk.mask)
        """0xFF on every structural byte of a body of this length (0 elsewhere)."""
        self.bits = int.from_bytes(buf) & self.mask
        """The structural bytes themselves: a body fits when ``(body ^ bits) & mask == 0``."""
        layout = [f">{pos}x"]
        at = pos
        for offset, fmt in walk.fields:
            layout.append(f"{offset - at}x{fmt}")
            at = offset + struct.calcsize(f">{fmt}")
        self._unpack = struct.Struct("".join(layout)).unpack_from
        # Per frame, ext = constants + fields + containers (lowest first), and each
        # container is built from ext by one getter.
        consts: list[Data] = []
        by_height: dict[int, list[_Container]] = {}
        refs: dict[int, list[_Ref]] = {}  # id(container) -> its children's refs

        def place(node: _Node) -> tuple[int, _Ref]:
            if type(node) is _Const:
                consts.append(node.value)
                return 0, (0, len(consts) - 1)
            if type(node) is _Field:
                return 0, (1, node.index)
            container: _Container = node  # type: ignore[assignment]
            placed = [place(child) for child in container.children]
            height = 1 + max((h for h, _ in placed), default=0)
            by_height.setdefault(height, []).append(container)
            refs[id(container)] = [ref for _, ref in placed]
            return height, container

        root_ref = place(root)[1]
        fields = len(consts)
        built: dict[int, int] = {}

        def index(ref: _Ref) -> int:
            if type(ref) is _Container:
                return built[id(ref)]
            kind, number = ref  # type: ignore[misc]
            return number if kind == 0 else fields + number

        slot = fields + len(walk.fields)
        levels: list[tuple[_Getter, ...]] = []
        for height in sorted(by_height):
            getters: list[_Getter] = []
            for container in by_height[height]:
                indices = [index(ref) for ref in refs[id(container)]]
                if container.array:
                    getters.append(_Array(indices))
                elif len(indices) == 1:
                    getters.append(_Single(indices[0]))
                else:
                    getters.append(itemgetter(*indices))
                built[id(container)] = slot
                slot += 1
            levels.append(tuple(getters))
        self._consts = tuple(consts)
        self._levels = tuple(levels)
        self._root = index(root_ref)

    def fits(self, buf: bytes) -> bool:
        """Tell whether every structural byte of ``buf`` is the template's."""
        return not (int.from_bytes(buf) ^ self.bits) & self.mask

    def build(self, buf: bytes) -> Data:
        """Return the tree ``axdr.decode`` gives for ``buf`` (call only when it ``fits``)."""
        ext: tuple[Data, ...] = self._consts + self._unpack(buf)
        for level in self._levels:
            ext += tuple([getter(ext) for getter in level])
        return ext[self._root]


def same(a: Data, b: Data) -> bool:
    """Equal trees, type for type (``True`` is not ``1``; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    return a == b


def make_template(buf: bytes, pos: int, value: Data, end: int) -> Template | None:
    """Record the shape of the body ``axdr.decode(buf, pos)`` gave ``(value, end)``.

    None when the rebuilt tree would not be exactly ``value`` (checked here).
    """
    walk = _Walk(buf)
    root, stop = walk.node(pos)
    template = Template(buf, pos, root, walk, end)
    if stop != end or not template.fits(buf) or not same(template.build(buf), value):
        return None  # pragma: no cover - the walk follows decode; a safety net
    return template


_SEEN: Final = object()
"""A key seen once: its template is made the second time (random bytes that happen to
parse, as a bare-APDU hunt meets them, rarely repeat a length)."""
_OFF: Final = object()
"""A key whose template never fitted another frame: not tried again."""


class ShapeCache:
    """``decode(buf, pos)`` = ``axdr.decode(buf, pos)``, from a template when one fits."""

    __slots__ = ("_templates",)

    def __init__(self) -> None:
        self._templates: dict[int, Template | object] = {}

    def clear(self) -> None:
        """Forget every shape."""
        self._templates.clear()

    def decode(self, buf: bytes, pos: int) -> tuple[Data, int]:
        """Decode the ``Data`` element at ``pos`` (raises like ``axdr.decode``)."""
        key = len(buf) << 16 | pos
        templates = self._templates
        template = templates.get(key)
        if type(template) is Template:
            if not (int.from_bytes(buf) ^ template.bits) & template.mask:  # fits(), inlined
                template.hits += 1
                return template.build(buf), template.end
        elif template is _OFF:
            return axdr.decode(buf, pos)
        value, end = axdr.decode(buf, pos)
        if template is None:
            if len(templates) >= MAX_TEMPLATES:
                templates.clear()
            templates[key] = _SEEN
        elif type(template) is Template and not template.hits:
            templates[key] = _OFF
        else:  # seen once, or a template that served and now met another shape
            made = make_template(buf, pos, value, end)
            templates[key] = _OFF if made is None else made
        return value, end
