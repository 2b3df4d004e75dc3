"""The acceptor side of issue 8: transfer syntax preference per SOP class, the requestor's
order (``prefer_requestor_order``), and converting on receipt (``StorageOptions.convert_to``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

import aiodimse
from aiodimse.association.negotiation import AcceptorPolicy, negotiate
from aiodimse.net.filesource import read_file_info
from aiodimse.pdu import AAssociateAC, AAssociateRQ, PresentationContextRQ
from aiodimse.services.contexts import Context
from aiodimse.services.sending import send_files
from aiodimse.services.storage_scp import StorageOptions, enable_storage
from aiodimse.services.ts_strategies import Strategy
from tests.transfer.support import assert_same_instance, write_ct, write_source

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def _chosen(
    policy: AcceptorPolicy, offers: Mapping[int, tuple[str, tuple[str, ...]]]
) -> dict[int, str | None]:
    rq = AAssociateRQ(
        called_ae_title="SCP",
        calling_ae_title="SCU",
        presentation_contexts=tuple(
            PresentationContextRQ(context_id=cid, abstract_syntax=a, transfer_syntaxes=t)
            for cid, (a, t) in offers.items()
        ),
    )
    ac = negotiate(rq, policy)
    assert isinstance(ac, AAssociateAC)
    return {pc.context_id: pc.transfer_syntax for pc in ac.presentation_contexts}


def test_prefer_requestor_order_per_sop_class() -> None:
    ours = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
    offers = {
        1: (CT, (ImplicitVRLittleEndian, ExplicitVRLittleEndian)),
        3: (MR, (ExplicitVRBigEndian, ImplicitVRLittleEndian)),
        5: (MR, (JPEGBaseline8Bit, ImplicitVRLittleEndian)),  # first one we do not support
    }
    supported = {CT: ours, MR: ours}
    assert _chosen(AcceptorPolicy(supported=supported), offers) == {
        1: ExplicitVRLittleEndian,
        3: ImplicitVRLittleEndian,
        5: ImplicitVRLittleEndian,
    }
    assert _chosen(AcceptorPolicy(supported=supported, prefer_requestor_order=True), offers) == {
        1: ImplicitVRLittleEndian,
        3: ExplicitVRBigEndian,
        5: ImplicitVRLittleEndian,
    }
    only_ct = AcceptorPolicy(supported=supported, prefer_requestor_order=frozenset({CT}))
    assert _chosen(only_ct, offers) == {
        1: ImplicitVRLittleEndian,
        3: ImplicitVRLittleEndian,
        5: ImplicitVRLittleEndian,
    }


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("requestor_order", [False, True])
async def test_requestor_order_keeps_an_implicit_file_bit_for_bit(
    tmp_path: Path, requestor_order: bool
) -> None:
    path = write_ct(tmp_path / "in", ImplicitVRLittleEndian, seed=11)
    ae = aiodimse.AE("SCP")
    ae.prefer_requestor_order = requestor_order
    enable_storage(ae, StorageOptions(output_directory=tmp_path / "out", durable=False))
    async with ae.serve("127.0.0.1", 0) as server:
        # CONSERVATIVE proposes one context (Implicit, Explicit): the file's own syntax first.
        (r,) = await send_files(
            aiodimse.AE("SCU"), "127.0.0.1", server.port, [path], strategy=Strategy.CONSERVATIVE
        )
    assert r.ok
    assert r.converted is not requestor_order
    assert r.transfer_syntax == (
        ImplicitVRLittleEndian if requestor_order else ExplicitVRLittleEndian
    )


@pytest.mark.anyio
async def test_preference_per_sop_class_through_supported_contexts(tmp_path: Path) -> None:
    path = write_ct(tmp_path / "in", ExplicitVRLittleEndian, seed=12)
    # Listed before enable_storage: CT is accepted in Implicit VR Little Endian only.
    ae = aiodimse.AE(
        "SCP", contexts=[Context(abstract_syntax=CT, transfer_syntaxes=(ImplicitVRLittleEndian,))]
    )
    enable_storage(ae, StorageOptions(output_directory=tmp_path / "out", durable=False))
    async with ae.serve("127.0.0.1", 0) as server:
        (r,) = await send_files(aiodimse.AE("SCU"), "127.0.0.1", server.port, [path])
    assert r.ok and r.transfer_syntax == ImplicitVRLittleEndian and r.converted
    (stored,) = (tmp_path / "out").glob("*.dcm")
    assert read_file_info(stored).transfer_syntax_uid == ImplicitVRLittleEndian
    assert_same_instance(dcmread(stored), path, ExplicitVRLittleEndian)


@pytest.mark.anyio
@pytest.mark.parametrize("target", [ImplicitVRLittleEndian, ExplicitVRBigEndian])
async def test_convert_on_receipt(tmp_path: Path, target: str) -> None:
    sources = {
        ExplicitVRLittleEndian: write_ct(tmp_path / "in", ExplicitVRLittleEndian, seed=13),
        JPEGBaseline8Bit: write_source(tmp_path / "in", JPEGBaseline8Bit, colour=True, seed=13),
    }
    ae = aiodimse.AE("SCP")
    enable_storage(
        ae, StorageOptions(output_directory=tmp_path / "out", durable=False, convert_to=target)
    )
    async with ae.serve("127.0.0.1", 0) as server:
        results = await send_files(
            aiodimse.AE("SCU"), "127.0.0.1", server.port, list(sources.values())
        )
    # Sent bit for bit (the SCP accepts every syntax), converted when kept.
    assert all(r.ok and not r.converted for r in results)
    stored = {read_file_info(p).sop_instance_uid: p for p in (tmp_path / "out").glob("*.dcm")}
    assert len(stored) == 2
    for ts, path in sources.items():
        kept = stored[read_file_info(path).sop_instance_uid]
        assert read_file_info(kept).transfer_syntax_uid == target
        assert_same_instance(dcmread(kept), path, ts)
    assert not [p for p in (tmp_path / "out").iterdir() if not p.name.endswith(".dcm")]


@pytest.mark.anyio
async def test_convert_on_receipt_keeps_what_it_cannot_convert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No codec for a received JPEG: the file is kept as received, with a warning."""
    from pydicom.pixels.decoders.base import Decoder

    path = write_source(tmp_path / "in", JPEGBaseline8Bit, seed=14)
    ae = aiodimse.AE("SCP")
    enable_storage(
        ae,
        StorageOptions(
            output_directory=tmp_path / "out", durable=False, convert_to=ImplicitVRLittleEndian
        ),
    )
    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    async with ae.serve("127.0.0.1", 0) as server:
        (r,) = await send_files(aiodimse.AE("SCU"), "127.0.0.1", server.port, [path])
    assert r.ok and not r.converted
    (kept,) = (tmp_path / "out").glob("*.dcm")
    assert (
        kept.read_bytes()[read_file_info(kept).dataset_offset :]
        == path.read_bytes()[read_file_info(path).dataset_offset :]
    )
    assert "cannot convert" in caplog.text and "aiodimse[codecs]" in caplog.text


def _deflate_bomb(path: Path, pixel_bytes: int) -> None:
    """A Deflated CT whose Pixel Data is ``pixel_bytes`` zeros: tiny on disk, huge inflated."""
    import zlib

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from tests.support import datagen

    ds = datagen.make_dataset(datagen.Spec(kind=datagen.Kind.CT, seed=15))
    del ds.PixelData
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_dataset(head, ds)
    packer = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    with path.open("wb") as out:
        out.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(out, ds.file_meta)  # type: ignore[arg-type]
        out.write(packer.compress(head.getvalue()))
        out.write(
            packer.compress(b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_bytes.to_bytes(4, "little"))
        )
        zeros = bytes(1 << 20)
        for _ in range(pixel_bytes >> 20):
            out.write(packer.compress(zeros))
        out.write(packer.flush())


@pytest.mark.anyio
async def test_convert_on_receipt_refuses_a_deflate_bomb(tmp_path: Path) -> None:
    """ROBUSTNESS 30: a received Deflated dataset inflating past the cap is kept as is."""
    bomb = tmp_path / "in" / "bomb.dcm"
    bomb.parent.mkdir()
    _deflate_bomb(bomb, 260 << 20)  # the cap: 256 MiB for a small file
    assert bomb.stat().st_size < 2 << 20  # inflates over 100 times
    ae = aiodimse.AE("SCP")
    enable_storage(
        ae,
        StorageOptions(
            output_directory=tmp_path / "out", durable=False, convert_to=ExplicitVRLittleEndian
        ),
    )
    async with ae.serve("127.0.0.1", 0) as server:
        (r,) = await send_files(aiodimse.AE("SCU"), "127.0.0.1", server.port, [bomb])
    assert r.ok and not r.converted
    (kept,) = (tmp_path / "out").glob("*.dcm")
    assert read_file_info(kept).transfer_syntax_uid == "1.2.840.10008.1.2.1.99"
    assert (
        kept.read_bytes()[read_file_info(kept).dataset_offset :]
        == bomb.read_bytes()[read_file_info(bomb).dataset_offset :]
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == [kept.name]  # no leftovers
