"""Streaming behaviour and the VR rules, with hand-built byte vectors (PS3.5 7.1, 6.2.2, 7.3).

Layouts: implicit VR LE element = tag (2 x uint16 LE) + uint32 LE length + value; explicit
VR = tag + 2-byte VR + (uint16 length | 2 zero bytes + uint32 length). Big endian swaps the
tag halves, the lengths and the values of binary VRs word by word.
"""

from __future__ import annotations

import struct
import tracemalloc

import numpy as np
import pytest

from aiodimse.dataset import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    Transcoder,
    transcode_bytes,
)
from tests.dataset.dicom_compare import decode, explicit_vrs

UNDEF = 0xFFFFFFFF
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)


def imp(tag: int, value: bytes, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, n) + value


def exp(tag: int, vr: bytes, value: bytes, length: int | None = None, order: str = "<") -> bytes:
    n = len(value) if length is None else length
    if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack(order + "HH2s2xI", tag >> 16, tag & 0xFFFF, vr, n) + value
    return struct.pack(order + "HH2sH", tag >> 16, tag & 0xFFFF, vr, n) + value


def item(length: int = UNDEF) -> bytes:
    return struct.pack("<HHI", 0xFFFE, 0xE000, length)


def feed_all(t: Transcoder, data: bytes, sizes: list[int]) -> bytes:
    out: list[bytes | memoryview] = []
    pos, i = 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        out += t.feed(data[pos : pos + step])
        pos += step
        i += 1
    out += t.finish()
    return b"".join(out)


@pytest.mark.parametrize(
    ("vr", "tag", "dtype"),
    [
        (b"OW", 0x7FE00010, "u2"),
        (b"OF", 0x7FE00008, "f4"),
        (b"OD", 0x7FE00009, "f8"),
        (b"OL", 0x00660040, "u4"),
        (b"OV", 0x00660047, "u8"),
    ],
)
def test_long_values_swap_across_every_chunk_boundary(vr: bytes, tag: int, dtype: str) -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 1 << 32, size=600, dtype=np.uint64).astype("<" + dtype)
    le = values.tobytes()
    be = values.astype(">" + dtype).tobytes()
    src = exp(tag, vr, le)
    for sizes in ([1], [3], [5, 7, 11], [13, 1000], [65536, 3]):
        t = Transcoder(EXPLICIT_VR_LE, EXPLICIT_VR_BE, max_buffer=64)  # streams the value
        out = feed_all(t, src, sizes)
        assert out == exp(tag, vr, be, order=">")
        back = feed_all(Transcoder(EXPLICIT_VR_BE, IMPLICIT_VR_LE, max_buffer=64), out, sizes)
        assert back == imp(tag, le)


def test_at_swaps_as_two_halves() -> None:
    # PS3.5 7.3: AT is a pair of US; (0028,0010) in BE is 00 28 00 10.
    src = exp(0x00209165, b"AT", struct.pack("<HH", 0x0028, 0x0010))
    out = transcode_bytes(src, EXPLICIT_VR_LE, EXPLICIT_VR_BE)
    assert out == exp(0x00209165, b"AT", b"\x00\x28\x00\x10", order=">")


def test_memory_stays_bounded_for_a_large_value() -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    header = exp(0x00280100, b"US", b"\x10\x00") + exp(0x7FE00010, b"OW", b"", length=64 << 20)
    for target in (IMPLICIT_VR_LE, EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE):
        t = Transcoder(EXPLICIT_VR_LE, target)
        tracemalloc.start()
        total = sum(len(c) for c in t.feed(header))
        for _ in range(64):
            total += sum(len(c) for c in t.feed(chunk))
        total += sum(len(c) for c in t.finish())
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 4 << 20, (target, peak)  # one chunk plus bookkeeping, not 64 MiB
        if target != DEFLATED_EXPLICIT_VR_LE:
            assert total == (64 << 20) + len(header) - (4 if target == IMPLICIT_VR_LE else 0)


def test_output_never_aliases_mutable_input() -> None:
    src = bytearray(
        exp(0x00100010, b"PN", b"Doe^John") + exp(0x7FE00010, b"OW", b"\x01\x02" * 50_000)
    )
    for target in (IMPLICIT_VR_LE, EXPLICIT_VR_BE):
        t = Transcoder(EXPLICIT_VR_LE, target, max_buffer=64)
        chunks = t.feed(src) + t.finish()
        before = b"".join(chunks)
        src[:] = bytes(len(src))
        assert b"".join(chunks) == before
        src[:] = bytearray(
            exp(0x00100010, b"PN", b"Doe^John") + exp(0x7FE00010, b"OW", b"\x01\x02" * 50_000)
        )
    assert all(isinstance(c, (bytes, memoryview)) for c in chunks)


def test_large_values_come_out_in_few_chunks() -> None:
    src = exp(0x00100010, b"PN", b"Doe^John") + exp(0x7FE00010, b"OW", bytes(4 << 20))
    t = Transcoder(EXPLICIT_VR_LE, IMPLICIT_VR_LE)
    chunks = [t.feed(src[i : i + (1 << 20)]) for i in range(0, len(src), 1 << 20)]
    assert all(len(c) <= 2 for c in chunks)  # header bytes joined, value slices passed on


# ----------------------------------------------------------------------- VR inference


def _vrs(data: bytes, ts: str = EXPLICIT_VR_LE) -> dict[tuple[int, ...], str]:
    return explicit_vrs(decode(data, ts), ts)


def test_implicit_to_explicit_vr_rules() -> None:
    src = b"".join(
        [
            imp(0x00080000, b"\x00\x00\x00\x00"),  # group length: dropped (PS3.5 7.2)
            imp(0x00080060, b"CT"),
            imp(0x00090010, b"ACME 1.0"),  # private creator: LO (PS3.5 7.8.1)
            imp(0x00091001, b"\x01\x00\x02\x00"),  # private data: UN (PS3.5 6.2.2)
            imp(0x00111234, b"ab"),  # odd group that is not a creator block: UN
            imp(0x00189999, b"ab"),  # unknown public tag: UN
            imp(0x00181310, b"\x01\x00" * 40_000),  # US over 0xFFFF bytes: UN (PS3.5 6.2.2)
            imp(0x00280106, b"\x05\x00"),  # US or SS, no Pixel Representation: US
        ]
    )
    for target in (EXPLICIT_VR_LE, EXPLICIT_VR_BE):
        out = transcode_bytes(src, IMPLICIT_VR_LE, target)
        assert _vrs(out, target) == {
            (0x00080060,): "CS",
            (0x00090010,): "LO",
            (0x00091001,): "UN",
            (0x00111234,): "UN",
            (0x00189999,): "UN",
            (0x00181310,): "UN",
            (0x00280106,): "US",
        }
        # UN values are never swapped (PS3.5 6.2.2): still little endian in big endian.
        ds = decode(out, target)
        assert ds.get_item(0x00181310).value == b"\x01\x00" * 40_000
        assert ds.get_item(0x00091001).value == b"\x01\x00\x02\x00"
        assert ds.get_item(0x00280106).value == (
            b"\x00\x05" if target == EXPLICIT_VR_BE else b"\x05\x00"
        )


def test_us_or_ss_follows_the_nearest_pixel_representation() -> None:
    lut_item = imp(0x00283002, b"\x01\x00\x00\x80\x10\x00") + imp(0x00283006, b"\x07\x00")
    wide_item = imp(0x00283002, b"\x00\x01\x00\x00\x10\x00") + imp(0x00283006, b"\x00\x00" * 256)
    body = lut_item + ITEM_END
    seq = imp(0x00283000, item() + body + item() + wide_item + ITEM_END + SEQ_END, UNDEF)
    for rep, want in ((b"\x00\x00", "US"), (b"\x01\x00", "SS")):
        src = imp(0x00280103, rep) + imp(0x00280106, b"\x05\x00") + seq
        vrs = _vrs(transcode_bytes(src, IMPLICIT_VR_LE, EXPLICIT_VR_LE))
        assert vrs[(0x00280106,)] == want
        assert vrs[(0x00283000, 0, 0x00283002)] == want  # from the parent data set
        assert vrs[(0x00283000, 0, 0x00283006)] == "US"  # LUT Descriptor[0] == 1
        assert vrs[(0x00283000, 1, 0x00283006)] == "OW"  # 256 entries


@pytest.mark.parametrize(("bits", "want"), [(b"\x08\x00", "OB"), (b"\x10\x00", "OW"), (None, "OW")])
def test_pixel_data_vr_from_bits_allocated(bits: bytes | None, want: str) -> None:
    src = (imp(0x00280100, bits) if bits else b"") + imp(0x7FE00010, b"\x01\x02\x03\x04")
    for target in (EXPLICIT_VR_LE, EXPLICIT_VR_BE):
        out = transcode_bytes(src, IMPLICIT_VR_LE, target)
        assert _vrs(out, target)[(0x7FE00010,)] == want
        swapped = want == "OW" and target == EXPLICIT_VR_BE
        assert out.endswith(b"\x02\x01\x04\x03" if swapped else b"\x01\x02\x03\x04")


def test_undefined_length_un_is_read_as_an_implicit_sequence() -> None:
    # PS3.5 6.2.2: an undefined-length UN holds an implicit VR LE sequence, in any syntax;
    # it comes out as an SQ in the target encoding.
    content = item() + imp(0x00100010, b"Doe^John") + ITEM_END + SEQ_END
    after = exp(0x00100020, b"LO", b"ID")
    explicit_le = exp(0x00100010, b"PN", b"Doe^John")
    explicit_be = exp(0x00100010, b"PN", b"Doe^John", order=">")
    be_item, be_item_end, be_seq_end = (
        struct.pack(">HHI", 0xFFFE, tag, length)
        for tag, length in ((0xE000, UNDEF), (0xE00D, 0), (0xE0DD, 0))
    )
    for order, src_ts in (("<", EXPLICIT_VR_LE), (">", EXPLICIT_VR_BE)):
        src = (
            exp(0x00091010, b"UN", b"", UNDEF, order)
            + content
            + exp(0x00100020, b"LO", b"ID", order=order)
        )
        for target, want in (
            (
                EXPLICIT_VR_LE,
                exp(0x00091010, b"SQ", b"", UNDEF)
                + item()
                + explicit_le
                + ITEM_END
                + SEQ_END
                + after,
            ),
            (
                EXPLICIT_VR_BE,
                exp(0x00091010, b"SQ", b"", UNDEF, ">")
                + be_item
                + explicit_be
                + be_item_end
                + be_seq_end
                + exp(0x00100020, b"LO", b"ID", order=">"),
            ),
            (IMPLICIT_VR_LE, imp(0x00091010, b"", UNDEF) + content + imp(0x00100020, b"ID")),
        ):
            if target == src_ts:
                continue  # identity passes bytes through unchanged
            out = transcode_bytes(src, src_ts, target)
            assert out == want, (src_ts, target)
            ds = decode(out, target)  # pydicom reads it
            assert ds[0x00091010].value[0].get_item(0x00100010).value == b"Doe^John"


def test_defined_lengths_become_undefined_with_delimiters() -> None:
    inner = imp(0x00100010, b"Doe^John")
    src = imp(0x00081140, item(len(inner)) + inner, len(inner) + 8)
    out = transcode_bytes(src, IMPLICIT_VR_LE, EXPLICIT_VR_LE)
    assert out == (
        exp(0x00081140, b"SQ", b"", UNDEF)
        + item()
        + exp(0x00100010, b"PN", b"Doe^John")
        + ITEM_END
        + SEQ_END
    )
    # An empty sequence of defined length; (0008,1150) is UI, so its 8 bytes stay opaque.
    src = imp(0x00081140, b"", 0) + imp(0x00081150, item(0), 8)
    out = transcode_bytes(src, IMPLICIT_VR_LE, EXPLICIT_VR_LE)
    assert out == (exp(0x00081140, b"SQ", b"", UNDEF) + SEQ_END + exp(0x00081150, b"UI", item(0)))


def test_identity_and_deflate_only_pairs_pass_bytes_through() -> None:
    junk = b"not a data set at all!"
    assert transcode_bytes(junk, EXPLICIT_VR_BE, EXPLICIT_VR_BE) == junk
    deflated = transcode_bytes(junk, EXPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE)
    assert len(deflated) % 2 == 0
    assert transcode_bytes(deflated, DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_LE) == junk
