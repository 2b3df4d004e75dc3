"""Malformed input: every fault is a TranscodeError naming the tag and offset, never garbage.

Byte vectors are built by hand with the PS3.5 7.1 layouts (explicit VR LE unless stated):
tag (group, element as two uint16), VR (2 ASCII bytes), then either a uint16 length, or two
reserved zero bytes and a uint32 length (OB, OW, SQ, UN, UT ...).
"""

from __future__ import annotations

import struct
import zlib

import pytest

from aiodimse.dataset import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    TranscodeError,
    Transcoder,
    transcode_bytes,
)
from aiodimse.errors import LocalProtocolError
from tests.support.datagen import Kind, Spec, dataset_bytes

UNDEF = 0xFFFFFFFF


def short(group: int, element: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    return struct.pack("<HH2sH", group, element, vr, n) + value


def long(group: int, element: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    return struct.pack("<HH2s2xI", group, element, vr, n) + value


def item(length: int = UNDEF) -> bytes:
    return struct.pack("<HHI", 0xFFFE, 0xE000, length)


ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
PATIENT = short(0x0010, 0x0010, b"PN", b"Doe^John")


def run(data: bytes, src: str = EXPLICIT_VR_LE, dst: str = IMPLICIT_VR_LE, step: int = 0) -> bytes:
    t = Transcoder(src, dst, max_buffer=64)
    out: list[bytes | memoryview] = []
    if step:
        for i in range(0, len(data), step):
            out += t.feed(data[i : i + step])
    else:
        out += t.feed(data)
    out += t.finish()
    return b"".join(out)


def raises(data: bytes, *words: str, src: str = EXPLICIT_VR_LE, dst: str = IMPLICIT_VR_LE) -> None:
    for step in (0, 1, 5):
        with pytest.raises(TranscodeError) as info:
            run(data, src, dst, step)
        for word in words:
            assert word in str(info.value), (word, str(info.value))


def test_error_is_a_local_protocol_error_with_tag_and_offset() -> None:
    with pytest.raises(LocalProtocolError) as info:
        run(PATIENT + short(0x0010, 0x0020, b"LO", b"abc"))
    err = info.value
    assert isinstance(err, TranscodeError)
    assert err.tag == 0x00100020 and err.offset == len(PATIENT)
    assert str(err).startswith(f"(0010,0020) at offset {len(PATIENT)}: odd value length 3")


def test_odd_lengths() -> None:
    raises(short(0x0010, 0x0010, b"PN", b"Doe"), "(0010,0010)", "odd value length 3")
    raises(long(0x0009, 0x1010, b"SQ", item(3) + b"abc", UNDEF), "(FFFE,E000)", "odd item length")


def test_unknown_explicit_vr() -> None:
    raises(PATIENT + short(0x0010, 0x0020, b"ZZ", b"ab"), "(0010,0020)", "unknown explicit VR")


@pytest.mark.parametrize(
    "data",
    [
        PATIENT[:3],  # inside a tag
        PATIENT[:7],  # inside a short header
        PATIENT[:-1],  # inside a value
        long(0x7FE0, 0x0010, b"OW", b"\x00" * 100, length=1000),  # value runs past the end
        long(0x0008, 0x1140, b"SQ", item() + PATIENT, length=UNDEF),  # open sequence and item
        long(0x0008, 0x1140, b"SQ", item(), length=UNDEF),
        long(0x0008, 0x1140, b"SQ", b"", length=UNDEF),
        long(0x0008, 0x1140, b"SQ", item(len(PATIENT)) + PATIENT[:-2], length=UNDEF),
    ],
)
def test_truncated_input(data: bytes) -> None:
    for src, dst in ((EXPLICIT_VR_LE, IMPLICIT_VR_LE), (EXPLICIT_VR_LE, EXPLICIT_VR_BE)):
        raises(data, "input ended", src=src, dst=dst)


def test_every_truncation_of_a_real_dataset_fails_or_ends_on_a_top_level_boundary() -> None:
    data = dataset_bytes(Spec(kind=Kind.CT, rows=8, columns=8))
    whole = transcode_bytes(data, EXPLICIT_VR_LE, IMPLICIT_VR_LE)
    ok = 0
    for cut in range(len(data)):
        try:
            out = transcode_bytes(data[:cut], EXPLICIT_VR_LE, IMPLICIT_VR_LE)
        except TranscodeError:
            continue
        ok += 1
        assert whole.startswith(out)  # a shorter but complete data set: a prefix
    assert 0 < ok < 80  # only the top-level element boundaries (one per element)


def test_length_past_the_end_of_a_defined_length_item() -> None:
    inner = short(0x0010, 0x0010, b"PN", b"Doe^John", length=40)
    raises(
        long(0x0008, 0x1140, b"SQ", item(len(inner)) + inner + b"\x00" * 40, length=UNDEF),
        "(0010,0010)",
        "runs past the end",
    )
    # An item longer than its defined-length sequence.
    body = item(len(PATIENT) + 8) + PATIENT
    raises(long(0x0008, 0x1140, b"SQ", body, length=len(body) - 8), "(FFFE,E000)", "past")


def test_misplaced_delimiters_and_items() -> None:
    raises(PATIENT + ITEM_END, "(FFFE,E00D)", "unexpected delimitation item")
    raises(PATIENT + SEQ_END, "(FFFE,E0DD)", "unexpected")
    raises(PATIENT + item(0), "(FFFE,E000)", "item outside a sequence")
    raises(long(0x0008, 0x1140, b"SQ", PATIENT, length=UNDEF), "(0010,0010)", "expected")
    raises(
        long(0x0008, 0x1140, b"SQ", item() + struct.pack("<HHI", 0xFFFE, 0xE00D, 4)),
        "must be 0",
    )
    raises(struct.pack("<HHI", 0xFFFE, 0xE0AA, 0), "(FFFE,E0AA)", "unknown item tag")


def test_undefined_length_on_a_plain_vr() -> None:
    raises(long(0x0010, 0x1010, b"UT", b"", length=UNDEF), "undefined length on VR UT")


def test_encapsulated_pixel_data_is_rejected_in_both_vr_forms() -> None:
    frags = item(0) + item(4) + b"\xff\xd8\xff\xd9" + SEQ_END
    raises(long(0x7FE0, 0x0010, b"OB", frags, length=UNDEF), "(7FE0,0010)", "encapsulated")
    implicit = struct.pack("<HHI", 0x7FE0, 0x0010, UNDEF) + frags
    raises(implicit, "(7FE0,0010)", "encapsulated", src=IMPLICIT_VR_LE, dst=EXPLICIT_VR_LE)
    # A real JPEG Baseline data set read as if it were Explicit VR LE.
    jpeg = dataset_bytes(Spec(kind=Kind.SC, transfer_syntax="1.2.840.10008.1.2.4.50"))
    with pytest.raises(TranscodeError, match="encapsulated"):
        transcode_bytes(jpeg, EXPLICIT_VR_LE, EXPLICIT_VR_BE)


def _nested(depth: int) -> bytes:
    data = PATIENT
    for _ in range(depth):
        data = long(0x0008, 0x1140, b"SQ", item() + data + ITEM_END + SEQ_END, length=UNDEF)
        data = data[: -len(ITEM_END + SEQ_END)] + ITEM_END + SEQ_END
    return data


def test_nesting_depth_is_bounded_without_recursion() -> None:
    assert transcode_bytes(_nested(64), EXPLICIT_VR_LE, IMPLICIT_VR_LE)
    raises(_nested(65), "nested deeper than 64")
    deep = b"".join(long(0x0008, 0x1140, b"SQ", item(), length=UNDEF) for _ in range(100_000))
    with pytest.raises(TranscodeError, match="nested deeper"):
        transcode_bytes(deep, EXPLICIT_VR_LE, IMPLICIT_VR_LE)


def test_swap_unit_mismatch_when_byte_order_changes() -> None:
    fd = short(0x0018, 0x9087, b"FD", b"\x00" * 6)
    raises(fd, "(0018,9087)", "multiple of 8", dst=EXPLICIT_VR_BE)
    # Same byte order: nothing to swap, the value passes unchanged.
    assert run(short(0x0018, 0x9087, b"FD", b"\x00" * 6), EXPLICIT_VR_LE, IMPLICIT_VR_LE)


def test_deflate_faults() -> None:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    good = packer.compress(PATIENT) + packer.flush()
    assert (
        run(good, DEFLATED_EXPLICIT_VR_LE, IMPLICIT_VR_LE)
        == struct.pack("<HHI", 0x0010, 0x0010, 8) + b"Doe^John"
    )
    assert run(good + b"\x00", DEFLATED_EXPLICIT_VR_LE, IMPLICIT_VR_LE)  # pad byte allowed
    raises(good[:-2], "deflate stream truncated", src=DEFLATED_EXPLICIT_VR_LE)
    raises(good + b"junk", "after the end of the deflate stream", src=DEFLATED_EXPLICIT_VR_LE)
    raises(b"\xff" * 20, "corrupt deflate data", src=DEFLATED_EXPLICIT_VR_LE)
    # zlib-wrapped (wbits 15) instead of raw deflate (PS3.5 A.5 says raw).
    raises(zlib.compress(PATIENT), "deflate", src=DEFLATED_EXPLICIT_VR_LE)


def test_inflation_cap() -> None:
    bomb_src = long(0x7FE0, 0x0010, b"OB", bytes(10 << 20))
    packer = zlib.compressobj(9, wbits=-zlib.MAX_WBITS)
    bomb = packer.compress(bomb_src) + packer.flush()
    assert len(bomb) < 20_000
    t = Transcoder(DEFLATED_EXPLICIT_VR_LE, IMPLICIT_VR_LE, max_inflated=1 << 20)
    with pytest.raises(TranscodeError, match="inflated data set exceeds 1048576 bytes"):
        t.feed(bomb)


def test_misuse() -> None:
    with pytest.raises(TranscodeError, match="cannot transcode"):
        Transcoder("1.2.840.10008.1.2.4.50", EXPLICIT_VR_LE)
    with pytest.raises(ValueError, match="max_buffer"):
        Transcoder(EXPLICIT_VR_LE, IMPLICIT_VR_LE, max_buffer=8)
    t = Transcoder(EXPLICIT_VR_LE, IMPLICIT_VR_LE)
    t.feed(PATIENT)
    t.finish()
    with pytest.raises(TranscodeError, match="already finished"):
        t.feed(PATIENT)
    t = Transcoder(EXPLICIT_VR_LE, IMPLICIT_VR_LE)
    with pytest.raises(TranscodeError):
        t.feed(short(0x0010, 0x0010, b"PN", b"abc"))
    with pytest.raises(TranscodeError, match="already failed"):
        t.feed(PATIENT)
