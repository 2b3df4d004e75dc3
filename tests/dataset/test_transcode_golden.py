"""Golden cases: tests/support/datagen objects transcoded between all four syntaxes.

The reference for "A transcoded to B" is pydicom's own encoding of the same data set in B
(``make_dataset`` with the target syntax, UIDs copied from the source so the two data sets are
equal). Every check decodes both with pydicom and compares the encoding-independent form of
:mod:`tests.dataset.dicom_compare`; where the source is explicit VR (so no VR is inferred),
the bytes must also be identical to pydicom's (after inflation for Deflated).
"""

from __future__ import annotations

import io
import random
from itertools import product

import pytest
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from aiodimse.dataset import Transcoder, can_transcode, transcode_bytes
from tests.dataset.dicom_compare import canonical, decode, explicit_vrs, inflate_if_deflated
from tests.support.datagen import Charset, Kind, Spec, make_dataset

SYNTAXES = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)
SPECS = [
    Spec(kind=Kind.CT),
    Spec(kind=Kind.MR, charset=Charset.UTF8),
    Spec(kind=Kind.SC),
    Spec(kind=Kind.SC, samples_per_pixel=3),
    Spec(kind=Kind.ENHANCED_CT, frames=3),
    Spec(kind=Kind.CT, undefined_length_sequences=False),
    Spec(kind=Kind.MR, charset=Charset.UTF8, undefined_length_sequences=False),
]


def _copy_uids(src: Dataset, dst: Dataset) -> None:
    """Make ``dst`` equal to ``src`` in every UI value (UIDs derive from the spec's syntax)."""
    for elem in src:
        if elem.tag not in dst:
            continue
        if elem.VR == "UI":
            dst[elem.tag].value = elem.value
        elif elem.VR == "SQ":
            for a, b in zip(elem.value, dst[elem.tag].value, strict=True):
                _copy_uids(a, b)


def _encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    data = buf.getvalue()
    return data[144 + int.from_bytes(data[140:144], "little") :]


def _pair(spec: Spec, a: str, b: str) -> tuple[bytes, bytes]:
    """(the data set encoded in ``a``, the same data set encoded in ``b``), both by pydicom."""
    ds_a = make_dataset(Spec(**{**_fields(spec), "transfer_syntax": a}))
    ds_b = make_dataset(Spec(**{**_fields(spec), "transfer_syntax": b}))
    _copy_uids(ds_a, ds_b)
    return _encode(ds_a), _encode(ds_b)


def _fields(spec: Spec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def _chunked(data: bytes, a: str, b: str, seed: int, max_buffer: int = 1 << 20) -> bytes:
    rng = random.Random(seed)
    transcoder = Transcoder(a, b, max_buffer=max_buffer)
    out: list[bytes | memoryview] = []
    pos = 0
    while pos < len(data):
        step = rng.choice((1, 2, 3, 7, 64, 1000, 4096, 65536))
        out += transcoder.feed(data[pos : pos + step])
        pos += step
    out += transcoder.finish()
    return b"".join(out)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.kind.value}-{s.charset.name}")
@pytest.mark.parametrize(("a", "b"), list(product(SYNTAXES, SYNTAXES)), ids=lambda u: u.name)
def test_golden_against_pydicom(spec: Spec, a: str, b: str) -> None:
    src, ref = _pair(spec, a, b)
    whole = transcode_bytes(src, a, b)
    # Arbitrary chunking and a small max_buffer (values stream) give the same bytes.
    assert _chunked(src, a, b, seed=1) == whole
    assert _chunked(src, a, b, seed=2, max_buffer=64) == whole
    got, want = decode(whole, b), decode(ref, b)
    assert canonical(got, b) == canonical(want, b)
    plain_got, ts = inflate_if_deflated(whole, b)
    plain_ref, _ = inflate_if_deflated(ref, b)
    if a == b:
        assert whole == src  # identity is bit-preserving
    elif a != ImplicitVRLittleEndian and spec.undefined_length_sequences:
        # No VR inferred and pydicom also wrote undefined lengths: byte-identical.
        assert plain_got == plain_ref
    elif ts != ImplicitVRLittleEndian:
        vrs_got = explicit_vrs(decode(plain_got, ts), ts)
        vrs_ref = explicit_vrs(decode(plain_ref, ts), ts)
        if a != ImplicitVRLittleEndian:
            assert vrs_got == vrs_ref  # explicit source: every VR kept
            return
        assert vrs_got.keys() <= vrs_ref.keys() | {k for k in vrs_got if _private(k)}
        for path, vr in vrs_got.items():
            if _private(path):
                # Implicit VR source: private VRs are unknowable (PS3.5 6.2.2).
                assert vr in ("UN", "LO", "SQ"), (path, vr)
            else:
                assert vr == vrs_ref[path], (path, vr, vrs_ref[path])


def _private(path: tuple[int, ...]) -> bool:
    return bool((path[-1] >> 16) & 1)


def test_patient_name_bytes_survive_in_both_charsets() -> None:
    for charset, codec in ((Charset.LATIN1, "latin-1"), (Charset.UTF8, "utf-8")):
        spec = Spec(kind=Kind.CT, charset=charset)
        src, _ = _pair(spec, ExplicitVRLittleEndian, ImplicitVRLittleEndian)
        for b in SYNTAXES:
            out = transcode_bytes(src, ExplicitVRLittleEndian, b)
            ds = decode(out, b)
            assert ds.get_item(0x00100010).value.rstrip(b" ") == "Müller^Jürgen".encode(codec)


def test_can_transcode() -> None:
    for a, b in product(SYNTAXES, SYNTAXES):
        assert can_transcode(a, b)
    assert not can_transcode("1.2.840.10008.1.2.4.50", ExplicitVRLittleEndian)
    assert not can_transcode(ExplicitVRLittleEndian, "1.2.840.10008.1.2.5")
