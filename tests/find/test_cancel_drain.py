"""After C-CANCEL the SCU drains the operation's remaining responses (PS3.7 9.3.2.3).

The bound is on *silence* (``Timeouts.abort`` between responses), not on the drain's total
time: an SCP that honours the cancel late but keeps sending is drained to its final
response; one that goes silent is aborted. The peer is pynetdicom's C-FIND SCP in a thread,
whose handler ignores ``event.is_cancelled`` (a real peer behaving as some PACS do).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pydicom.dataset import Dataset

import aiodimse
from aiodimse.config import Timeouts
from aiodimse.services.find_scu import FindResults
from aiodimse.services.qr_models import find_contexts

pytestmark = pytest.mark.anyio

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


@contextmanager
def stubborn_scp(count: int, interval: float, stall: float = 0.0) -> Iterator[int]:
    """pynetdicom SCP answering ``count`` matches, ``interval`` s apart, ignoring C-CANCEL.

    With ``stall``, it sleeps that long after the third match before going on.
    """
    from pynetdicom import AE, evt

    def handle(event: object) -> Iterator[tuple[int, Dataset | None]]:
        for i in range(count):
            if i == 3 and stall:
                time.sleep(stall)
            ds = Dataset()
            ds.PatientID = f"P{i:05d}"
            ds.QueryRetrieveLevel = "PATIENT"
            yield 0xFF00, ds
            time.sleep(interval)
        yield 0x0000, None

    ae = AE(ae_title="STUBBORN")
    ae.add_supported_context(PATIENT_ROOT_FIND)
    ae.add_supported_context(STUDY_ROOT_FIND)
    ae.network_timeout = 10
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, handle)])
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


async def _first_three(port: int, abort_timeout: float) -> tuple[FindResults, bool, float]:
    """Break off after three matches; (results, still established?, seconds in the drain)."""
    ae = aiodimse.AE("FINDSCU", timeouts=Timeouts(abort=abort_timeout))
    async with ae.associate(
        "127.0.0.1", port, called_ae="STUBBORN", contexts=find_contexts()
    ) as assoc:
        async with assoc.find({"PatientID": ""}, model="patient", level="PATIENT") as results:
            async for _ in results:
                if results.count == 3:
                    started = time.monotonic()
                    break
        drained = time.monotonic() - started
        return results, assoc.is_established, drained


async def test_drain_outlasting_the_abort_timeout_completes_while_responses_keep_coming() -> None:
    # 40 matches 30 ms apart: draining the 37 after the break takes ~1.1 s, well over
    # the 0.3 s silence bound, and must still end with the SCP's final response.
    with stubborn_scp(count=40, interval=0.03) as port:
        results, established, drained = await _first_three(port, abort_timeout=0.3)
    assert results.cancel_sent
    assert results.status is not None and results.status.code == 0x0000  # it never cancelled
    assert established  # not aborted
    assert drained > 0.3


async def test_silence_after_cancel_aborts_the_association() -> None:
    with stubborn_scp(count=10, interval=0.0, stall=3.0) as port:
        results, established, drained = await _first_three(port, abort_timeout=0.3)
    assert results.cancel_sent
    assert results.status is None  # no final response: we gave up and aborted
    assert not established
    assert drained < 2.5  # did not wait for the stalled SCP
