"""The body-shape cache gives exactly what axdr.decode gives, for any bytes, in any order."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.hanport.han.dlms import axdr, shapes
from custom_components.hanport.han.dlms.axdr import DateTimeField, Encodable, Typed
from custom_components.hanport.han.dlms.shapes import ShapeCache, make_template, same
from custom_components.hanport.han.errors import FrameError, RejectReason

HEADER = b"\x0f\x40\x00\x00\x00\x00"
OBIS = bytes.fromhex("0100010700ff")
CLOCK = bytes.fromhex("07ea0105010d0000ff800000")


def _item(c: int, value: Typed, scaler: int, unit: int) -> tuple[Encodable, ...]:
    return (bytes((1, 0, c, 7, 0, 255)), value, (Typed(0x0F, scaler), Typed(0x16, unit)))


def aidon_like(power: int = 1769, current: int = -12, clock: bytes = CLOCK) -> bytes:
    """An Aidon-style array of OBIS structures, with identity strings and a clock."""
    body: Encodable = [
        (bytes.fromhex("0101000281ff"), "AIDON_V0001"),
        (bytes.fromhex("0000600100ff"), "7359992895913195"),
        _item(1, Typed(0x06, power), 0, 27),
        _item(31, Typed(0x10, current), -1, 33),
        _item(32, Typed(0x12, 2301), -1, 35),
        (bytes.fromhex("0000010000ff"), clock),
        _item(1, Typed(0x06, 123456789), 1, 30),
    ]
    return HEADER + axdr.encode(body)


def kamstrup_like(power: int = 1769, pf: int = 95) -> bytes:
    """A Kamstrup-style flat structure: list id, then code/value pairs, nulls, a float."""
    body: Encodable = (
        "Kamstrup_V0001",
        OBIS,
        Typed(0x06, power),
        None,
        None,
        OBIS,
        Typed(0x11, pf),  # a one-byte number outside a scaler-unit: a field
        OBIS,
        Typed(0x17, 1.5),
        OBIS,
        Typed(0x14, -5),
        OBIS,
        True,
        OBIS,
        DateTimeField(0x19, CLOCK),
        OBIS,
        b"\x01\x02",
        [],
        (),
        [Typed(0x12, 7)],
        (Typed(0x12, 8),),
    )
    return HEADER + axdr.encode(body)


def decode_both(cache: ShapeCache, buf: bytes, pos: int = 6) -> tuple[Any, Any]:
    """(cache result, axdr.decode result), each a value/end pair or the error raised."""
    results: list[Any] = []
    for decode in (cache.decode, axdr.decode):
        try:
            results.append(decode(buf, pos))
        except FrameError as err:
            results.append((err.reason, err.detail))
    return results[0], results[1]


def check(cache: ShapeCache, buf: bytes, pos: int = 6) -> None:
    """The cache and axdr.decode agree: the same tree (type for type) and end, or error."""
    got, want = decode_both(cache, buf, pos)
    if isinstance(want[0], RejectReason):
        assert got == want
        return
    assert same(got[0], want[0]), (buf.hex(), got, want)
    assert got[1] == want[1]


def test_repeated_lists_come_from_templates_and_equal_decode() -> None:
    cache = ShapeCache()
    frames = [aidon_like(power, current) for power, current in ((1, -1), (70000, 5), (0, -32768))]
    frames += [aidon_like(clock=bytes(12)), kamstrup_like(1769, 95), kamstrup_like(0, 100)]
    for _ in range(3):
        for frame in frames:
            check(cache, frame)
    templates = [t for t in cache._templates.values() if isinstance(t, shapes.Template)]
    assert len(templates) == 2
    assert all(t.hits > 0 for t in templates)


def test_new_values_in_the_fields_are_read_from_the_frame() -> None:
    cache = ShapeCache()
    for power in (1, 2, 3, 4):
        body, _ = cache.decode(aidon_like(power, -power, clock=bytes([power] * 12)), 6)
        assert isinstance(body, list)
        values = [item[1] for item in body if isinstance(item, tuple)]
        assert values[2:6] == [power, -power, 2301, bytes([power] * 12)]


def test_arrays_are_new_lists_and_constants_are_shared_tuples() -> None:
    cache = ShapeCache()
    frame = aidon_like()
    first = [cache.decode(frame, 6)[0] for _ in range(4)]  # templates from the 2nd on
    assert first[2] == first[3]
    assert first[2] is not first[3]
    body_a, body_b = first[2], first[3]
    assert isinstance(body_a, list)
    assert isinstance(body_b, list)
    assert body_a[0] is body_b[0]  # an all-constant structure (list id item) is shared
    body_a.append(None)  # mutating one result does not touch the next
    assert len(cache.decode(frame, 6)[0]) == 7  # type: ignore[arg-type]


def test_every_byte_changed_gives_what_decode_gives() -> None:
    """Structural bytes fall back to decode (or its error); field bytes are read."""
    for frame in (aidon_like(), kamstrup_like()):
        cache = ShapeCache()
        check(cache, frame)
        check(cache, frame)  # the template is made
        for index in range(6, len(frame)):
            for bit in (0x01, 0x80):
                broken = bytearray(frame)
                broken[index] ^= bit
                check(cache, bytes(broken))
                check(cache, frame)  # and the original still comes out right


def test_a_template_that_never_fits_is_given_up() -> None:
    cache = ShapeCache()
    a = kamstrup_like()
    b = HEADER + axdr.encode(("Kamstrup_V0002", OBIS, Typed(0x06, 1)))
    c = HEADER + axdr.encode(("Kamstrup_V0003", OBIS, Typed(0x06, 1)))
    assert len(b) == len(c)
    check(cache, b)
    check(cache, c)  # template made from c's shape
    check(cache, b)  # it never fitted another frame: given up for this key
    key = len(b) << 16 | 6
    assert cache._templates[key] is shapes._OFF
    check(cache, c)
    check(cache, a)
    # a template that served and then meets another shape is remade
    check(cache, a)
    check(cache, a)
    other = bytearray(a)
    other[a.index(b"Kamstrup") + 8] ^= 1
    check(cache, bytes(other))
    assert isinstance(cache._templates[len(a) << 16 | 6], shapes.Template)
    check(cache, bytes(other))
    check(cache, a)


def test_the_cache_is_bounded() -> None:
    cache = ShapeCache()
    for size in range(shapes.MAX_TEMPLATES * 3):
        check(cache, HEADER + axdr.encode(("x" * size, Typed(0x12, size))))
        assert len(cache._templates) <= shapes.MAX_TEMPLATES
    cache.clear()
    assert not cache._templates


@pytest.mark.parametrize(
    "body",
    [
        None,
        Typed(0x12, 5),
        CLOCK,
        [],
        (),
        (Typed(0x0F, -1), Typed(0x16, 27)),  # a lone scaler-unit: all constant
        [(Typed(0x0F, -1), Typed(0x16, 27))],
        [[[Typed(0x06, 1), [Typed(0x06, 2)]]]],
        (float("nan"), Typed(0x17, float("inf"))),
        ("æ", b"\x00" * 200, Typed(0x0D, 9), Typed(0x15, 2**64 - 1)),
    ],
)
def test_shapes_of_every_kind(body: Encodable) -> None:
    cache = ShapeCache()
    frame = HEADER + axdr.encode(body)
    for _ in range(3):
        check(cache, frame)


def test_same_is_type_exact() -> None:
    assert same([1, (2.0, b"x")], [1, (2.0, b"x")])
    assert not same(True, 1)
    assert not same([1], (1,))
    assert not same((1, 2), (1,))
    assert same(math.nan, math.nan)
    assert not same(math.nan, 1.0)


def test_make_template_on_a_long_form_length() -> None:
    frame = HEADER + axdr.encode([Typed(0x12, n) for n in range(200)])
    value, end = axdr.decode(frame, 6)
    template = make_template(frame, 6, value, end)
    assert template is not None
    assert template.fits(frame)
    assert template.build(frame) == value


_NUMBER_TAGS = (0x05, 0x06, 0x0F, 0x10, 0x11, 0x12, 0x14, 0x15, 0x16, 0x0D)

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.binary(max_size=14),
    st.text(alphabet="abcKFM_0123", max_size=8),
    st.builds(lambda tag, n: Typed(tag, n % 100), st.sampled_from(_NUMBER_TAGS), st.integers(0)),
    st.floats(width=32).map(lambda f: Typed(0x17, f)),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
    ),
    max_leaves=25,
)


@given(tree=trees, seed=st.integers(0, 2**32))
@settings(max_examples=300, deadline=None)
def test_random_trees_and_mutations_match_decode(tree: Encodable, seed: int) -> None:
    rng = random.Random(seed)
    frame = HEADER + axdr.encode(tree)
    cache = ShapeCache()
    for _ in range(2):
        check(cache, frame)
    for _ in range(20):
        broken = bytearray(frame)
        for _ in range(rng.randint(1, 3)):
            broken[rng.randrange(6, len(frame))] = rng.randrange(256)
        check(cache, bytes(broken))
        check(cache, frame)
