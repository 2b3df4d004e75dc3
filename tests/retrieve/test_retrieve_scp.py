"""C-GET and C-MOVE SCP (aiodimse.services.retrieve_scp) with pynetdicom as the SCU oracle.

pynetdicom runs in a worker thread (its API blocks); our SCP runs on the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE as PynAE
from pynetdicom import build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

import aiodimse
from aiodimse import QueryLevel, QueryModel
from aiodimse.services.qr_models import FindFailed
from aiodimse.services.retrieve_scp import MoveDestination, RetrieveSCP, enable_retrieve
from tests.support import datagen
from tests.support.peers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FilesBackend:
    """Yields the files whose study (or SOP instance) matches; records what was asked."""

    def __init__(self, files: list[datagen.Generated]) -> None:
        self.files = files
        self.asked: list[tuple[Dataset, QueryModel, QueryLevel]] = []

    async def retrieve(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel
    ) -> AsyncIterator[Path]:
        self.asked.append((identifier, model, level))
        for f in self.files:
            if str(identifier.get("StudyInstanceUID", "")) in ("", f.study_instance_uid):
                yield f.path


@pytest.fixture
def three(tmp_path: Path) -> list[datagen.Generated]:
    """CT, MR and SC instances of one study (seed 7)."""
    specs = [
        datagen.Spec(kind=datagen.Kind.CT, seed=7),
        datagen.Spec(kind=datagen.Kind.MR, seed=7),
        datagen.Spec(kind=datagen.Kind.SC, seed=7),
    ]
    return datagen.write_corpus(tmp_path / "src", specs)


@asynccontextmanager
async def serving(backend: Any, **kw: Any) -> AsyncIterator[tuple[RetrieveSCP, int]]:
    ae = aiodimse.AE("QRSCP")
    scp = enable_retrieve(ae, backend, **kw)
    async with ae.serve("127.0.0.1", 0) as server:
        yield scp, server.port


def study_query(uid: str, level: str = "STUDY") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = uid
    return ds


def c_get(
    port: int,
    query: Dataset,
    storage: list[str],
    *,
    model: str = StudyRootQueryRetrieveInformationModelGet,
    on_store: Callable[[Any], int] | None = None,
) -> tuple[list[Dataset], list[tuple[Dataset, Dataset | None]]]:
    """pynetdicom C-GET with SCP role for ``storage``; (received datasets, responses)."""
    received: list[Dataset] = []

    def handle_store(event: Any) -> int:
        received.append(event.dataset)
        if on_store is not None:
            return on_store(event)
        return 0x0000

    ae = PynAE(ae_title="GETSCU")
    ae.add_requested_context(model)
    for uid in storage:
        ae.add_requested_context(uid)
    roles = [build_role(uid, scp_role=True) for uid in storage]
    assoc = ae.associate(
        "127.0.0.1",
        port,
        ae_title="QRSCP",
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, handle_store)],
    )
    assert assoc.is_established
    try:
        responses = list(assoc.send_c_get(query, model))
    finally:
        assoc.release()
    return received, responses


def counts(status: Dataset) -> tuple[int | None, ...]:
    return tuple(
        status.get(k)
        for k in (
            "NumberOfRemainingSuboperations",
            "NumberOfCompletedSuboperations",
            "NumberOfFailedSuboperations",
            "NumberOfWarningSuboperations",
        )
    )


async def test_c_get_study_sends_every_instance_back_over_the_association(
    three: list[datagen.Generated],
) -> None:
    backend = FilesBackend(three)
    async with serving(backend) as (scp, port):
        storage = [CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage]
        got, responses = await anyio.to_thread.run_sync(
            c_get, port, study_query(three[0].study_instance_uid), storage
        )
    assert sorted(str(d.SOPInstanceUID) for d in got) == sorted(f.sop_instance_uid for f in three)
    statuses = [r[0].Status for r in responses]
    assert statuses == [0xFF00, 0xFF00, 0x0000]
    assert counts(responses[0][0]) == (2, 1, 0, 0)
    assert counts(responses[1][0]) == (1, 2, 0, 0)
    assert counts(responses[2][0])[1:] == (3, 0, 0)
    identifier, model, level = backend.asked[0]
    assert (model, level) == (QueryModel.STUDY_ROOT, QueryLevel.STUDY)
    assert identifier.StudyInstanceUID == three[0].study_instance_uid
    assert scp.operations == 1
    # Bytes as sent: pixel data equal to the source files'.
    import pydicom

    for ds in got:
        src = next(f for f in three if f.sop_instance_uid == ds.SOPInstanceUID)
        assert ds.PixelData == pydicom.dcmread(src.path).PixelData


async def test_c_get_without_scp_role_context_fails_those_with_list(
    three: list[datagen.Generated],
) -> None:
    async with serving(FilesBackend(three)) as (_, port):
        got, responses = await anyio.to_thread.run_sync(
            c_get, port, study_query(three[0].study_instance_uid), [CTImageStorage]
        )
    assert [str(d.SOPInstanceUID) for d in got] == [three[0].sop_instance_uid]
    final, ident = responses[-1]
    assert final.Status == 0xB000  # PS3.4 C.4.3.1.4: one or more failures
    assert counts(final)[1:] == (1, 2, 0)
    assert ident is not None
    assert sorted(ident.FailedSOPInstanceUIDList) == sorted(f.sop_instance_uid for f in three[1:])


async def test_c_get_all_refused_by_requestor_is_a702(three: list[datagen.Generated]) -> None:
    storage = [CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage]
    async with serving(FilesBackend(three)) as (_, port):
        got, responses = await anyio.to_thread.run_sync(
            lambda: c_get(
                port,
                study_query(three[0].study_instance_uid),
                storage,
                on_store=lambda e: 0xA700,
            )
        )
    assert len(got) == 3
    final, ident = responses[-1]
    assert final.Status == 0xA702
    assert counts(final)[1:] == (0, 3, 0)
    assert ident is not None and len(ident.FailedSOPInstanceUIDList) == 3


async def test_c_get_warning_status_from_requestor_counts_as_warning(
    three: list[datagen.Generated],
) -> None:
    storage = [CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage]
    async with serving(FilesBackend(three)) as (_, port):
        _, responses = await anyio.to_thread.run_sync(
            lambda: c_get(
                port,
                study_query(three[0].study_instance_uid),
                storage,
                on_store=lambda e: 0xB000 if e.request.AffectedSOPClassUID == CTImageStorage else 0,
            )
        )
    final, _ = responses[-1]
    assert final.Status == 0xB000
    assert counts(final)[1:] == (2, 0, 1)


async def test_c_get_no_match_is_success_with_zero(three: list[datagen.Generated]) -> None:
    async with serving(FilesBackend(three)) as (_, port):
        got, responses = await anyio.to_thread.run_sync(
            c_get, port, study_query("1.2.3.999"), [CTImageStorage]
        )
    assert got == []
    assert [r[0].Status for r in responses] == [0x0000]


async def test_c_get_patient_root_and_bad_level(three: list[datagen.Generated]) -> None:
    backend = FilesBackend(three)
    async with serving(backend) as (_, port):
        q = study_query(three[0].study_instance_uid, "SERIES")
        q.PatientID = "AIODIMSE-0001"
        got, responses = await anyio.to_thread.run_sync(
            lambda: c_get(
                port, q, [CTImageStorage], model=PatientRootQueryRetrieveInformationModelGet
            )
        )
        assert responses[-1][0].Status == 0xB000
        assert backend.asked[-1][1:] == (QueryModel.PATIENT_ROOT, QueryLevel.SERIES)
        bad = study_query(three[0].study_instance_uid, "PATIENT")  # not in Study Root
        _, responses = await anyio.to_thread.run_sync(c_get, port, bad, [CTImageStorage])
        assert [r[0].Status for r in responses] == [0xA900]
        missing = Dataset()
        missing.StudyInstanceUID = three[0].study_instance_uid
        _, responses = await anyio.to_thread.run_sync(c_get, port, missing, [CTImageStorage])
        assert [r[0].Status for r in responses] == [0xA900]
    assert len(got) == 1


async def test_backend_failures_choose_the_status(three: list[datagen.Generated]) -> None:
    async def refuses(ds: Dataset, m: QueryModel, lv: QueryLevel) -> AsyncIterator[Path]:
        raise FindFailed(0xA701, "too many")
        yield three[0].path  # pragma: no cover

    async def breaks(ds: Dataset, m: QueryModel, lv: QueryLevel) -> AsyncIterator[Path]:
        yield three[0].path
        raise RuntimeError("disk on fire")

    for backend, status in ((refuses, 0xA701), (breaks, 0xC001)):
        async with serving(backend) as (_, port):
            got, responses = await anyio.to_thread.run_sync(
                c_get, port, study_query("1.2"), [CTImageStorage]
            )
        assert got == []
        assert [r[0].Status for r in responses] == [status]


async def test_c_get_missing_file_and_datasets(three: list[datagen.Generated]) -> None:
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.2.1125.99"
    ds.PatientName = "Mem^Ory"

    async def backend(q: Dataset, m: QueryModel, lv: QueryLevel) -> AsyncIterator[Any]:
        yield three[0].path
        yield three[0].path.with_name("gone.dcm")
        yield ds

    storage = [CTImageStorage, SecondaryCaptureImageStorage]
    async with serving(backend) as (_, port):
        got, responses = await anyio.to_thread.run_sync(c_get, port, study_query("1.2"), storage)
    assert sorted(str(d.SOPInstanceUID) for d in got) == sorted(
        [three[0].sop_instance_uid, ds.SOPInstanceUID]
    )
    final, _ = responses[-1]
    assert final.Status == 0xB000
    assert counts(final)[1:] == (2, 1, 0)


async def test_c_cancel_stops_sub_operations(tmp_path: Path) -> None:
    files = datagen.write_corpus(
        tmp_path / "many", [datagen.Spec(kind=datagen.Kind.CT, seed=100 + i) for i in range(6)]
    )
    stores: list[str] = []

    async def backend(q: Dataset, m: QueryModel, lv: QueryLevel) -> AsyncIterator[Path]:
        for f in files:
            yield f.path

    def on_store(event: Any) -> int:
        stores.append(str(event.request.AffectedSOPInstanceUID))
        if len(stores) == 2:
            cx = next(
                c.context_id
                for c in event.assoc.accepted_contexts
                if c.abstract_syntax == StudyRootQueryRetrieveInformationModelGet
            )
            event.assoc.send_c_cancel(1, cx)
        return 0x0000

    async with serving(backend) as (scp, port):
        got, responses = await anyio.to_thread.run_sync(
            lambda: c_get(port, study_query("1.2"), [CTImageStorage], on_store=on_store)
        )
    final, _ = responses[-1]
    assert final.Status == 0xFE00
    remaining, completed, failed, warning = counts(final)
    assert completed == len(got) and 2 <= completed < 6
    assert remaining == 6 - completed and failed == 0 and warning == 0
    assert scp.cancelled == 1


@contextmanager
def pyn_storescp(port: int) -> Iterator[list[tuple[str, str | None, int | None]]]:
    """A pynetdicom Storage SCP recording (SOP UID, Move Originator AET, Message ID)."""
    seen: list[tuple[str, str | None, int | None]] = []
    lock = threading.Lock()

    def handle(event: Any) -> int:
        rq = event.request
        with lock:
            seen.append(
                (
                    str(rq.AffectedSOPInstanceUID),
                    rq.MoveOriginatorApplicationEntityTitle,
                    rq.MoveOriginatorMessageID,
                )
            )
        return 0x0000

    ae = PynAE(ae_title="DEST")
    for uid in (CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage):
        ae.add_supported_context(uid)
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, handle)]
    )
    try:
        yield seen
    finally:
        server.shutdown()


def c_move(
    port: int, query: Dataset, dest: str, model: str = StudyRootQueryRetrieveInformationModelMove
) -> list[tuple[Dataset, Dataset | None]]:
    ae = PynAE(ae_title="MOVESCU")
    ae.add_requested_context(model)
    assoc = ae.associate("127.0.0.1", port, ae_title="QRSCP")
    assert assoc.is_established
    try:
        return list(assoc.send_c_move(query, dest, model, msg_id=7))
    finally:
        assoc.release()


async def test_c_move_to_a_configured_destination_with_originator(
    three: list[datagen.Generated],
) -> None:
    dest_port = free_port()
    table = {"DEST": MoveDestination(host="127.0.0.1", port=dest_port)}
    with pyn_storescp(dest_port) as seen:
        async with serving(FilesBackend(three), move_destinations=table) as (_, port):
            responses = await anyio.to_thread.run_sync(
                c_move, port, study_query(three[0].study_instance_uid), "DEST"
            )
    assert sorted(s[0] for s in seen) == sorted(f.sop_instance_uid for f in three)
    # PS3.7 9.1.1.1: each sub-operation names the C-MOVE's originator and Message ID.
    assert {(s[1], s[2]) for s in seen} == {("MOVESCU", 7)}
    assert [r[0].Status for r in responses] == [0xFF00, 0xFF00, 0x0000]
    assert counts(responses[0][0]) == (2, 1, 0, 0)
    assert counts(responses[-1][0])[1:] == (3, 0, 0)


async def test_c_move_unknown_destination_a801(three: list[datagen.Generated]) -> None:
    async with serving(FilesBackend(three), move_destinations={}) as (_, port):
        responses = await anyio.to_thread.run_sync(
            lambda: c_move(
                port,
                study_query(three[0].study_instance_uid, "STUDY"),
                "NOWHERE",
                PatientRootQueryRetrieveInformationModelMove,
            )
        )
    assert [r[0].Status for r in responses] == [0xA801]


async def test_c_move_destination_down_fails_all(three: list[datagen.Generated]) -> None:
    table = {"DEST": ("127.0.0.1", free_port())}  # nobody listens
    async with serving(FilesBackend(three), move_destinations=table) as (_, port):
        responses = await anyio.to_thread.run_sync(
            c_move, port, study_query(three[0].study_instance_uid), "DEST"
        )
    final, ident = responses[-1]
    assert final.Status == 0xA702
    assert counts(final)[1:] == (0, 3, 0)
    assert ident is not None
    assert sorted(ident.FailedSOPInstanceUIDList) == sorted(f.sop_instance_uid for f in three)


async def test_install_accepts_scp_role_for_existing_storage_contexts(tmp_path: Path) -> None:
    ae = aiodimse.AE("X")
    aiodimse_storage = aiodimse.services.storage_scp.StorageSCP(
        aiodimse.services.storage_scp.StorageOptions(output_directory=tmp_path)
    ).install(ae)
    assert aiodimse_storage is not None
    before = {c.abstract_syntax: c.transfer_syntaxes for c in ae.supported_contexts}
    enable_retrieve(ae, FilesBackend([]), get=True, move=False)
    ct = next(c for c in ae.supported_contexts if c.abstract_syntax == CTImageStorage)
    assert (ct.scu_role, ct.scp_role) == (True, True)
    assert ct.transfer_syntaxes == before[CTImageStorage]
    uids = [c.abstract_syntax for c in ae.supported_contexts]
    assert len(uids) == len(set(uids))
    assert StudyRootQueryRetrieveInformationModelGet in uids
    assert StudyRootQueryRetrieveInformationModelMove not in uids


async def test_c_move_cancel_from_the_destination_side(tmp_path: Path) -> None:
    files = datagen.write_corpus(
        tmp_path / "many", [datagen.Spec(kind=datagen.Kind.CT, seed=200 + i) for i in range(6)]
    )

    async def backend(q: Dataset, m: QueryModel, lv: QueryLevel) -> AsyncIterator[Path]:
        for f in files:
            yield f.path

    holder: dict[str, Any] = {}
    stored: list[str] = []

    def on_store(event: Any) -> int:
        stored.append(str(event.request.AffectedSOPInstanceUID))
        if len(stored) == 2:
            assoc = holder["assoc"]
            cx = next(
                c.context_id
                for c in assoc.accepted_contexts
                if c.abstract_syntax == StudyRootQueryRetrieveInformationModelMove
            )
            assoc.send_c_cancel(7, cx)
        return 0x0000

    dest = PynAE(ae_title="DEST")
    dest.add_supported_context(CTImageStorage)
    dest_port = free_port()
    server = dest.start_server(
        ("127.0.0.1", dest_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )

    def move() -> list[tuple[Dataset, Dataset | None]]:
        ae = PynAE(ae_title="MOVESCU")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        assoc = ae.associate("127.0.0.1", port, ae_title="QRSCP")
        holder["assoc"] = assoc
        try:
            return list(
                assoc.send_c_move(
                    study_query("1.2"), "DEST", StudyRootQueryRetrieveInformationModelMove, msg_id=7
                )
            )
        finally:
            assoc.release()

    try:
        table = {"DEST": ("127.0.0.1", dest_port)}
        async with serving(backend, move_destinations=table) as (scp, port):
            responses = await anyio.to_thread.run_sync(move)
    finally:
        server.shutdown()
    final, _ = responses[-1]
    assert final.Status == 0xFE00
    remaining, completed, failed, _warning = counts(final)
    assert completed == len(stored) and 2 <= completed < 6
    assert remaining == 6 - completed and failed == 0
    assert scp.cancelled == 1
