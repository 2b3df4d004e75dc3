"""Transfer syntaxes against real peers (issue 8): every source reaches a peer that accepts
one syntax, converted on the way, and decodes to the source.

* dcmtk ``storescp +xi`` (Implicit VR Little Endian only) receives Explicit VR LE, Explicit
  VR BE, Deflated, JPEG Baseline, RLE, JPEG-LS and JPEG 2000 Lossless files sent by the
  ``aiodimse storescu`` CLI.
* pynetdicom's AE as an SCP accepting exactly one given uncompressed syntax (a small script
  in a subprocess), for each of the four.
* Orthanc restricted to uncompressed syntaxes (``/tools/accepted-transfer-syntaxes``, the
  run-time form of ``AcceptedTransferSyntaxes``, Orthanc >= 1.9) receives compressed files
  decompressed.

Received files are compared with pydicom (:func:`tests.transfer.support.assert_same_instance`):
public elements equal, private ones present, pixels equal (within 2 for lossy JPEG), the
colour attributes decoding sets.
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

import anyio
import pytest
from pydicom import dcmread
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

import aiodimse
from aiodimse.net.filesource import read_file_info
from aiodimse.services.sending import send_files
from aiodimse.services.storage_contexts import Conversion
from aiodimse.services.ts_strategies import Strategy
from tests.support import orthanc_peer, peers
from tests.transfer.support import (
    COMPRESSED,
    UNCOMPRESSED,
    assert_same_instance,
    write_ct,
    write_source,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, str]:
    """Path -> transfer syntax: SC grey and RGB multi-frame in every syntax, CT (16-bit,
    private tags, undefined-length sequences) in each uncompressed one."""
    root = tmp_path_factory.mktemp("transfer-sources")
    out: dict[Path, str] = {}
    # Distinct seeds: the SOP Instance UIDs derive from them.
    for n, ts in enumerate((*UNCOMPRESSED, *COMPRESSED)):
        out[write_source(root, ts, seed=100 + 3 * n)] = ts
        out[write_source(root, ts, seed=101 + 3 * n, colour=True, frames=2)] = ts
        if ts in UNCOMPRESSED:
            out[write_ct(root / ts, ts, seed=102 + 3 * n)] = ts
    return out


def check_received(received: list[Path], sources: dict[Path, str], expect_ts: str) -> None:
    by_uid = {read_file_info(p).sop_instance_uid: p for p in received}
    assert len(by_uid) == len(sources)
    for path, ts in sources.items():
        got = by_uid[read_file_info(path).sop_instance_uid]
        ds = dcmread(got)
        assert ds.file_meta.TransferSyntaxUID == expect_ts, path.name
        assert_same_instance(ds, path, ts)


# ------------------------------------------------------------------------- dcmtk


async def test_dcmtk_implicit_only_receives_every_syntax_via_the_cli(
    sources: dict[Path, str], tmp_path: Path
) -> None:
    exe = peers.require_peer("dcmtk storescp", "storescp")
    send = {p: ts for p, ts in sources.items() if ts != ImplicitVRLittleEndian}
    with peers.start_dcmtk_storescp(
        tmp_path / "scp", binary=exe, accept_all=False, extra_args=["+xi"]
    ) as peer:
        proc = await anyio.run_process(
            [sys.executable, "-m", "aiodimse", "storescu", "-aec", peer.ae_title,
             "127.0.0.1", str(peer.port), *map(str, send)],
            check=False,
        )  # fmt: skip
        received = peer.wait_for_files(len(send))
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().startswith(f"sent {len(send)} of {len(send)} instances, 0 failed")
    check_received(received, send, ImplicitVRLittleEndian)


# ------------------------------------------------------------------------- pynetdicom

#: pynetdicom's AE as a Storage SCP accepting exactly one transfer syntax for every storage
#: SOP class; each dataset is written as received (file meta + raw dataset).
_ONE_SYNTAX_SCP = """
import sys
from pathlib import Path
from pynetdicom import AE, evt, StoragePresentationContexts
port, ts, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
ae = AE(ae_title="ONE-TS")
for cx in StoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, [ts])
def on_store(event):
    name = event.request.AffectedSOPInstanceUID + ".dcm"
    (out / name).write_bytes(event.encoded_dataset(include_meta=True))
    return 0x0000
ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])
"""


@pytest.mark.parametrize("accepted", UNCOMPRESSED)
async def test_pynetdicom_accepting_one_syntax(
    sources: dict[Path, str], tmp_path: Path, accepted: str
) -> None:
    python = peers.require_peer("pynetdicom", "python:pynetdicom")
    out = tmp_path / "received"
    out.mkdir()
    with peers.launch_peer(
        name="pynetdicom-one-ts",
        ae_title="ONE-TS",
        workdir=tmp_path,
        version="pynetdicom",
        make_argv=lambda port: [python, "-c", _ONE_SYNTAX_SCP, str(port), accepted, str(out)],
        output_dir=out,
    ) as peer:
        # STANDARD offers Big Endian; Deflated needs COMPRESSION (it is compressed, losslessly).
        strategy = (
            Strategy.COMPRESSION
            if accepted == DeflatedExplicitVRLittleEndian
            else Strategy.STANDARD
        )
        results = await send_files(
            aiodimse.AE("AIODIMSE"),
            "127.0.0.1",
            peer.port,
            list(sources),
            called_ae="ONE-TS",
            strategy=strategy,
            fallback=False,
        )
        assert [r.describe() for r in results if not r.ok] == []
        received = peer.wait_for_files(len(sources))
    for r in results:
        assert r.transfer_syntax == accepted and r.strategy is strategy
        assert r.converted is (r.source_transfer_syntax != accepted)
    check_received(received, sources, accepted)


@pytest.mark.parametrize("accepted", COMPRESSED[1:], ids=["rle", "jpeg-ls", "j2k"])
async def test_pynetdicom_accepting_one_lossless_compressed_syntax(
    sources: dict[Path, str], tmp_path: Path, accepted: str
) -> None:
    """Uncompressed sources are encoded losslessly (COMPRESSION proposes it); the source
    already in that syntax goes bit for bit; pynetdicom writes what it received."""
    python = peers.require_peer("pynetdicom", "python:pynetdicom")
    out = tmp_path / "received"
    out.mkdir()
    send = {p: ts for p, ts in sources.items() if ts in (*UNCOMPRESSED, accepted)}
    with peers.launch_peer(
        name="pynetdicom-one-ts",
        ae_title="ONE-TS",
        workdir=tmp_path,
        version="pynetdicom",
        make_argv=lambda port: [python, "-c", _ONE_SYNTAX_SCP, str(port), accepted, str(out)],
        output_dir=out,
    ) as peer:
        results = await send_files(
            aiodimse.AE("AIODIMSE"),
            "127.0.0.1",
            peer.port,
            list(send),
            called_ae="ONE-TS",
            strategy=Strategy.COMPRESSION,
            fallback=False,
        )
        assert [r.describe() for r in results if not r.ok] == []
        received = peer.wait_for_files(len(send))
    for r in results:
        assert r.transfer_syntax == accepted
        want = Conversion.NONE if r.source_transfer_syntax == accepted else Conversion.ENCODE
        assert r.conversion is want
    check_received(received, send, accepted)


# ------------------------------------------------------------------------- Orthanc


async def test_orthanc_refusing_compressed_syntaxes_receives_them_decompressed(
    sources: dict[Path, str], orthanc: orthanc_peer.OrthancPeer
) -> None:
    rest = orthanc.rest
    compressed = {p: ts for p, ts in sources.items() if ts in COMPRESSED}
    before = await anyio.to_thread.run_sync(rest.get, "/tools/accepted-transfer-syntaxes")
    await anyio.to_thread.run_sync(
        rest.request,
        "PUT",
        "/tools/accepted-transfer-syntaxes",
        [ImplicitVRLittleEndian, ExplicitVRLittleEndian],
    )
    try:
        results = await send_files(
            aiodimse.AE("AIODIMSE"),
            "127.0.0.1",
            orthanc.port,
            list(compressed),
            called_ae=orthanc.ae_title,
        )
    finally:
        await anyio.to_thread.run_sync(
            rest.request, "PUT", "/tools/accepted-transfer-syntaxes", before
        )
    assert [r.describe() for r in results if not r.ok] == []
    assert all(r.conversion is Conversion.DECODE for r in results)
    for path, ts in compressed.items():
        uid = read_file_info(path).sop_instance_uid
        oid = await anyio.to_thread.run_sync(rest.find_instance, uid)
        assert oid is not None, path.name
        stored = dcmread(BytesIO(await anyio.to_thread.run_sync(rest.instance_file, oid)))
        assert stored.file_meta.TransferSyntaxUID in (
            ImplicitVRLittleEndian,
            ExplicitVRLittleEndian,
        )
        assert_same_instance(stored, path, ts)


async def test_orthanc_accepting_big_endian_only_gets_it_via_standard(
    sources: dict[Path, str], orthanc: orthanc_peer.OrthancPeer
) -> None:
    rest = orthanc.rest
    some = {p: ts for p, ts in sources.items() if ts in (ExplicitVRLittleEndian, *COMPRESSED[:2])}
    before = await anyio.to_thread.run_sync(rest.get, "/tools/accepted-transfer-syntaxes")
    await anyio.to_thread.run_sync(
        rest.request, "PUT", "/tools/accepted-transfer-syntaxes", [ExplicitVRBigEndian]
    )
    try:
        results = await send_files(
            aiodimse.AE("AIODIMSE"),
            "127.0.0.1",
            orthanc.port,
            list(some),
            called_ae=orthanc.ae_title,
            strategy=Strategy.STANDARD,
        )
    finally:
        await anyio.to_thread.run_sync(
            rest.request, "PUT", "/tools/accepted-transfer-syntaxes", before
        )
    outcome = {r.path: (r.ok, r.transfer_syntax, r.strategy) for r in results}
    assert [r.describe() for r in results if not r.ok] == []
    assert {v[1] for v in outcome.values()} == {ExplicitVRBigEndian}
    for path, ts in some.items():
        oid = await anyio.to_thread.run_sync(
            rest.find_instance, read_file_info(path).sop_instance_uid
        )
        assert oid is not None
        stored = dcmread(BytesIO(await anyio.to_thread.run_sync(rest.instance_file, oid)))
        assert_same_instance(stored, path, ts)


# ------------------------------------------------------------------------- memory


async def test_1gb_explicit_to_implicit_only_dcmtk_with_bounded_sender_rss(
    tmp_path: Path,
) -> None:
    """Issue 8 benchmark: a 1 GiB Explicit VR LE instance, transcoded on the fly for dcmtk
    ``storescp +xi --ignore``, by the storescu CLI whose peak RSS stays under 100 MB.
    ``AIODIMSE_BIG_TRANSCODE_MB`` changes the size."""
    import os

    from tests.support import datagen
    from tests.support.rss import ResourceProbe

    exe = peers.require_peer("dcmtk storescp", "storescp")
    size = int(os.environ.get("AIODIMSE_BIG_TRANSCODE_MB", "1024")) << 20
    big = await anyio.to_thread.run_sync(
        lambda: datagen.write_streamed(tmp_path / "big", size, seed=8).path
    )
    assert read_file_info(big).transfer_syntax_uid == ExplicitVRLittleEndian
    with peers.start_dcmtk_storescp(
        tmp_path / "scp", binary=exe, accept_all=False, extra_args=["+xi", "--ignore"]
    ) as peer:
        argv = [sys.executable, "-m", "aiodimse", "storescu", "127.0.0.1", str(peer.port), str(big)]

        def run() -> tuple[int, str, float]:
            import subprocess

            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            with ResourceProbe(proc) as probe:
                out, err = proc.communicate(timeout=600)
            return proc.returncode, out.decode() + err.decode(), probe.result.peak_rss_mib

        code, output, peak_mib = await anyio.to_thread.run_sync(run)
    big.unlink()
    assert code == 0, output
    assert output.startswith("sent 1 of 1 instances, 0 failed"), output
    assert peak_mib < 100, f"sender peak RSS {peak_mib:.1f} MiB for {size >> 20} MiB"
