"""C-FIND and C-CANCEL between two aiodimse AEs over loopback, on asyncio and trio."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pydicom.dataset import Dataset

import aiodimse
from aiodimse import FindFailed, PendingMatch, QueryLevel, QueryModel
from aiodimse.config import Timeouts
from aiodimse.errors import ContextNotAccepted, DicomTimeoutError, LocalProtocolError
from aiodimse.services.contexts import VERIFICATION
from aiodimse.services.qr_models import find_contexts
from tests.find.backend import ListBackend

pytestmark = pytest.mark.anyio


def patient(
    name: str, pid: str, study: str, charset: str | None, date: str = "20240102"
) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.PatientID = pid
    ds.StudyInstanceUID = study
    ds.StudyDate = date
    ds.StudyDescription = "Prüfung" if charset else "Exam"
    return ds


DATA = [
    patient("Müller^Jürgen", "P1", "1.2.3.1", "ISO_IR 100"),
    patient("Müller^Jürgen", "P2", "1.2.3.2", "ISO_IR 192", date="20230501"),
    patient("Doe^John", "P3", "1.2.3.3", None, date="20220101"),
    patient("Иванов^Иван", "P4", "1.2.3.4", "ISO_IR 192"),
]


@asynccontextmanager
async def scp_and_scu(
    backend: Any, *, timeouts: Timeouts | None = None
) -> AsyncIterator[tuple[aiodimse.QueryRetrieveSCP, aiodimse.Association]]:
    ae = aiodimse.AE("FIND_SCP")
    scp = aiodimse.enable_find(ae, backend)
    async with ae.serve("127.0.0.1", 0) as server:
        scu = aiodimse.AE("FIND_SCU", timeouts=timeouts)
        async with scu.associate(
            "127.0.0.1",
            server.port,
            called_ae="FIND_SCP",
            contexts=[*find_contexts(), VERIFICATION],
        ) as assoc:
            yield scp, assoc


async def collect(assoc: aiodimse.Association, query: Any, **kw: Any) -> list[Dataset]:
    out = []
    async with assoc.find(query, **kw) as results:
        async for ds in results:
            out.append(ds)
    assert results.status is not None and results.status.code == 0x0000
    return out


async def test_umlaut_query_latin1_and_utf8_results() -> None:
    backend = ListBackend(DATA)
    async with scp_and_scu(backend) as (_, assoc):
        found = await collect(
            assoc, {"PatientName": "Müller*", "PatientID": "", "StudyDescription": None}
        )
    # The query could be carried in Latin-1, so ISO_IR 100 was chosen (qr_models policy).
    query = backend.queries[0][0]
    assert query.SpecificCharacterSet == "ISO_IR 100"
    assert str(query.PatientName) == "Müller*"
    assert [str(d.PatientName) for d in found] == ["Müller^Jürgen", "Müller^Jürgen"]
    assert [d.SpecificCharacterSet for d in found] == ["ISO_IR 100", "ISO_IR 192"]
    assert [d.StudyDescription for d in found] == ["Prüfung", "Prüfung"]
    assert all(d.QueryRetrieveLevel == "STUDY" for d in found)


async def test_non_latin1_query_goes_utf8() -> None:
    backend = ListBackend(DATA)
    async with scp_and_scu(backend) as (_, assoc):
        found = await collect(assoc, {"PatientName": "Иванов*", "PatientID": None})
    assert backend.queries[0][0].SpecificCharacterSet == "ISO_IR 192"
    assert [str(d.PatientName) for d in found] == ["Иванов^Иван"]


async def test_ascii_query_has_no_charset_and_ranges_work() -> None:
    backend = ListBackend(DATA)
    async with scp_and_scu(backend) as (_, assoc):
        found = await collect(assoc, {"StudyDate": "20230101-", "PatientID": ""})
    assert "SpecificCharacterSet" not in backend.queries[0][0]
    assert sorted(d.PatientID for d in found) == ["P1", "P2", "P4"]


async def test_levels_models_and_instance_synonym() -> None:
    backend = ListBackend(DATA)
    async with scp_and_scu(backend) as (_, assoc):
        await collect(assoc, {"PatientID": "P1"}, level="INSTANCE")
        await collect(assoc, {"PatientID": "P1"}, model="patient", level=QueryLevel.PATIENT)
        await collect(assoc, {"PatientID": "P1"}, model=QueryModel.MODALITY_WORKLIST)
        q = Dataset()
        q.QueryRetrieveLevel = "SERIES"
        q.PatientID = "P1"
        await collect(assoc, q)
        assert "QueryRetrieveLevel" in q and "SpecificCharacterSet" not in q  # not modified
        with pytest.raises(LocalProtocolError, match="no PATIENT level"):
            async with assoc.find({"PatientID": ""}, level="PATIENT"):
                pass
        with pytest.raises(LocalProtocolError, match="unknown DICOM keyword"):
            async with assoc.find({"PatientNmae": ""}):
                pass
    assert [(m, lv) for _, m, lv in backend.queries] == [
        (QueryModel.STUDY_ROOT, QueryLevel.IMAGE),
        (QueryModel.PATIENT_ROOT, QueryLevel.PATIENT),
        (QueryModel.MODALITY_WORKLIST, None),
        (QueryModel.STUDY_ROOT, QueryLevel.SERIES),
    ]
    assert "QueryRetrieveLevel" not in backend.queries[2][0]  # PS3.4 K.6.1.2


async def test_model_not_proposed_is_refused_locally() -> None:
    ae = aiodimse.AE("FIND_SCP")
    aiodimse.enable_find(ae, ListBackend(DATA), models=[QueryModel.STUDY_ROOT])
    async with ae.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("A").associate(
            "127.0.0.1", server.port, contexts=find_contexts()
        ) as assoc:
            with pytest.raises(ContextNotAccepted):
                async with assoc.find({"PatientID": ""}, model="patient"):
                    pass
            assert len(await collect(assoc, {"PatientID": ""})) == 4


class Endless:
    """Produces matches forever; records how many and whether it was closed."""

    def __init__(self, stall_after: int | None = None) -> None:
        self.produced = 0
        self.closed = anyio.Event()
        self.stall_after = stall_after
        self.cancelled_in_pull = False
        #: Set when it starts waiting for its source (a thread may wait for it).
        self.stalled = threading.Event()

    async def find(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel | None
    ) -> AsyncIterator[Dataset]:
        try:
            while True:
                if self.stall_after is not None and self.produced >= self.stall_after:
                    self.stalled.set()
                    try:
                        await anyio.sleep(3600)
                    except anyio.get_cancelled_exc_class():
                        self.cancelled_in_pull = True
                        raise
                ds = Dataset()
                ds.PatientID = f"P{self.produced:07d}"
                ds.PatientName = "Müller^Jürgen"
                self.produced += 1
                yield ds
        finally:
            self.closed.set()


async def test_break_sends_cancel_and_association_stays_usable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Endless()
    caplog.set_level(logging.INFO, logger="aiodimse.find")
    async with scp_and_scu(backend) as (scp, assoc):
        got = []
        async with assoc.find({"PatientID": ""}) as results:
            async for ds in results:
                got.append(ds.PatientID)
                if len(got) == 3:
                    break
        assert got == ["P0000000", "P0000001", "P0000002"]
        assert results.cancel_sent
        assert results.status is not None and results.status.code == 0xFE00
        with anyio.fail_after(5):
            await backend.closed.wait()
        assert backend.produced < 1000  # stopped long before the end it never has
        assert scp.cancelled == 1
        # The C-CANCEL named our C-FIND's Message ID (else the SCP would not have stopped).
        assert f"C-CANCEL sent for message {results.message_id}" in caplog.text
        assert (await assoc.echo()).code == 0
        backend2 = ListBackend(DATA)
        scp._backend = backend2.find  # same association, next operation
        assert len(await collect(assoc, {"PatientID": ""})) == 4


async def test_timeout_between_responses_cancels_the_pull_promptly() -> None:
    backend = Endless(stall_after=2)
    async with scp_and_scu(backend) as (_, assoc):
        got = []
        with pytest.raises(DicomTimeoutError):
            async with assoc.find({"PatientID": ""}, timeout=0.3) as results:
                async for ds in results:
                    got.append(ds)
        assert len(got) == 2
        assert results.cancel_sent and results.status is not None
        assert results.status.code == 0xFE00
        with anyio.fail_after(2):
            await backend.closed.wait()
        assert backend.cancelled_in_pull  # the backend's await was cancelled, not finished
        assert assoc.is_established
        assert (await assoc.echo()).code == 0


async def test_cancel_scope_exit_sends_cancel() -> None:
    backend = Endless(stall_after=5)
    async with scp_and_scu(backend) as (_, assoc):
        with anyio.move_on_after(0.5):
            async with assoc.find({"PatientID": ""}) as results:
                async for _ in results:
                    pass
        assert results.count == 5
        assert results.cancel_sent and results.status is not None
        assert results.status.code == 0xFE00
        assert (await assoc.echo()).code == 0


async def test_exception_in_body_sends_cancel() -> None:
    backend = Endless()
    async with scp_and_scu(backend) as (_, assoc):
        with pytest.raises(KeyError):
            async with assoc.find({"PatientID": ""}) as results:
                async for _ in results:
                    raise KeyError("user bug")
        assert results.cancel_sent and results.status is not None
        assert results.status.code == 0xFE00
        assert (await assoc.echo()).code == 0


def raising(exc: BaseException, after: int = 1) -> Callable[..., AsyncIterator[Dataset]]:
    async def find(identifier: Dataset, model: QueryModel, level: Any) -> AsyncIterator[Dataset]:
        for i in range(after):
            ds = Dataset()
            ds.PatientID = str(i)
            yield ds
        raise exc

    return find


async def test_backend_exception_is_failure_with_comment() -> None:
    async with scp_and_scu(raising(RuntimeError("database is down"))) as (_, assoc):
        got = []
        with pytest.raises(FindFailed) as info:
            async with assoc.find({"PatientID": ""}) as results:
                async for ds in results:
                    got.append(ds)
        assert len(got) == 1
        assert info.value.status.code == 0xC001
        assert info.value.status.meaning == "Error: unable to process"
        assert info.value.error_comment == "RuntimeError: database is down"
        assert not info.value.retryable
        assert not results.cancel_sent
        assert (await assoc.echo()).code == 0


async def test_backend_chooses_failure_status() -> None:
    async with scp_and_scu(raising(FindFailed(0xA700, "too many matches"), after=0)) as (
        _,
        assoc,
    ):
        with pytest.raises(FindFailed, match="0xA700 Refused: out of resources") as info:
            async with assoc.find({"PatientID": ""}) as results:
                async for _ in results:
                    pass
        assert info.value.retryable
        assert info.value.error_comment == "too many matches"


async def test_pending_warning_ff01() -> None:
    async def find(identifier: Dataset, model: QueryModel, level: Any) -> AsyncIterator[Any]:
        ds = Dataset()
        ds.PatientID = "X"
        yield PendingMatch(identifier=ds)
        yield ds

    async with scp_and_scu(find) as (_, assoc):
        async with assoc.find({"PatientID": "", "PatientName": ""}) as results:
            assert not results.optional_keys_unsupported
            ids = [ds.PatientID async for ds in results]
        assert ids == ["X", "X"]
        assert results.optional_keys_unsupported
        assert results.status is not None and results.status.is_success


async def test_invalid_level_from_peer_is_a900() -> None:
    """A raw identifier without Query/Retrieve Level (a non-conforming SCU)."""
    async with scp_and_scu(ListBackend(DATA)) as (_, assoc):
        q = Dataset()
        q.QueryRetrieveLevel = "WARD"  # not a level: refused by our SCU, so send it raw
        from aiodimse.dimse.messages import CFindRQ, CFindRSP
        from aiodimse.services.qr_models import encode_identifier

        channel = assoc._channel
        cid = assoc.context_for(QueryModel.STUDY_ROOT.sop_class_uid)
        ts = assoc.negotiated.accepted[cid].transfer_syntax
        mid = channel.next_message_id()
        async with channel.expect_responses(mid) as responses:
            await channel.send_message(
                cid,
                CFindRQ(message_id=mid, affected_sop_class_uid=QueryModel.STUDY_ROOT.value),
                encode_identifier(q, ts),
            )
            rsp = (await channel.next_response(responses, 5, "rsp")).message
        assert isinstance(rsp, CFindRSP)
        assert rsp.status == 0xA900
        assert rsp.error_comment == "invalid Query/Retrieve Level WARD"
