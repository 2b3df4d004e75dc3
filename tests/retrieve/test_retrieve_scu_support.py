"""A small test-only C-GET/C-MOVE SCP over in-memory datasets (no tests here).

It performs the sub-operations itself (C-STOREs over the same association for C-GET, over a
new association to the destination for C-MOVE) so that the SCU side is tested against a peer
whose every choice the test controls: Move Originator fields or not, gaps between
responses, hostile SOP Instance UIDs, a final failure status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import pydicom.uid as puid
from pydicom.dataset import Dataset

import aiodimse
from aiodimse.dimse.messages import CGetRQ, CGetRSP, CMoveRQ, CMoveRSP, CStoreRQ, CStoreRSP
from aiodimse.net.channel import Channel, Received
from aiodimse.services.contexts import Context
from aiodimse.services.qr_models import decode_identifier, encode_identifier
from aiodimse.services.retrieve_scu import get_contexts, move_contexts

CT = str(puid.CTImageStorage)


def instance(patient: str, study: str, series: str, sop: str, *, sop_class: str = CT) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    ds.PatientID = patient
    ds.PatientName = f"Test^{patient}"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.Modality = "CT"
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x01\x02\x03\x04"
    return ds


def corpus() -> list[Dataset]:
    """Two patients, two studies each of one series of three instances."""
    out = []
    for s in (1, 2):
        for i in range(3):
            out.append(
                instance(
                    f"P{s}",
                    f"1.2.826.0.1.9.{s}",
                    f"1.2.826.0.1.9.{s}.1",
                    f"1.2.826.0.1.9.{s}.1.{i + 1}",
                )
            )
    return out


@dataclass
class Behaviour:
    """What the test SCP does."""

    #: Send Move Originator AE Title / Message ID in the sub-operation C-STOREs.
    originator: bool = True
    #: Seconds between sub-operations (each followed by a pending response when set).
    gap: float = 0.0
    #: Send a pending response after each sub-operation.
    pending: bool = True
    #: Final status instead of the computed one (e.g. 0xA702).
    final_status: int | None = None
    #: C-MOVE destinations: AE title -> port on 127.0.0.1.
    destinations: dict[str, int] = field(default_factory=dict)
    #: SOP Instance UIDs to report as failed (not sent).
    fail: set[str] = field(default_factory=set)
    #: Stop after this many sub-operations and wait for a cancel (0: never).
    wait_cancel_after: int = 0
    seen_cancel: bool = False
    move_requests: list[CMoveRQ] = field(default_factory=list)


def _matches(identifier: Dataset, ds: Dataset) -> bool:
    for key in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        wanted = identifier.get(key)
        if wanted in (None, ""):
            continue
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        if str(ds.get(key)) not in [str(v) for v in values]:
            return False
    return True


def _context(channel: Channel, sop_class: str) -> tuple[int, str] | None:
    assert channel.negotiated is not None
    for cid, ctx in sorted(channel.negotiated.accepted.items()):
        if ctx.abstract_syntax == sop_class:
            return cid, ctx.transfer_syntax
    return None


async def _store(channel: Channel, ds: Dataset, rq_extra: dict[str, object]) -> int:
    found = _context(channel, str(ds.SOPClassUID))
    if found is None:
        return 0xA702
    cid, ts = found
    mid = channel.next_message_id()
    rq = CStoreRQ(
        message_id=mid,
        affected_sop_class_uid=str(ds.SOPClassUID),
        affected_sop_instance_uid=str(ds.SOPInstanceUID),
        **rq_extra,  # type: ignore[arg-type]
    )
    async with channel.expect_responses(mid) as responses:
        await channel.send_message(cid, rq, encode_identifier(ds, ts))
        received = await channel.next_response(responses, 10.0, "C-STORE-RSP")
    assert isinstance(received.message, CStoreRSP)
    return received.message.status


class RetrieveTestSCP:
    """Registers C-GET and C-MOVE handlers on an AE serving ``datasets``."""

    def __init__(self, datasets: Sequence[Dataset], behaviour: Behaviour | None = None) -> None:
        self.datasets = list(datasets)
        self.behaviour = behaviour or Behaviour()
        self.ae = aiodimse.AE(
            "RETR_SCP",
            contexts=[
                *get_contexts(("study", "patient"), [CT]),
                *move_contexts(("study", "patient")),
                Context(abstract_syntax=CT, scu_role=True, scp_role=True),
            ],
        )
        self.ae.request_handlers[CGetRQ] = self.handle
        self.ae.request_handlers[CMoveRQ] = self.handle

    async def handle(self, ae: aiodimse.AE, channel: Channel, received: Received) -> None:
        msg = received.message
        assert isinstance(msg, CGetRQ | CMoveRQ)
        b = self.behaviour
        rsp_cls = CGetRSP if isinstance(msg, CGetRQ) else CMoveRSP
        cancel = channel.cancellations.setdefault(msg.message_id, anyio.Event())
        assert channel.negotiated is not None and received.dataset is not None
        ts = channel.negotiated.accepted[received.context_id].transfer_syntax
        identifier = decode_identifier(received.dataset, ts)
        matches = [ds for ds in self.datasets if _matches(identifier, ds)]

        async def respond(status: int, remaining: int | None, data: bytes | None = None) -> None:
            await channel.send_message(
                received.context_id,
                rsp_cls(
                    command_data_set_type=0x0001 if data is not None else 0x0101,
                    message_id_being_responded_to=msg.message_id,
                    affected_sop_class_uid=msg.affected_sop_class_uid,
                    status=status,
                    number_of_remaining_sub_operations=remaining,
                    number_of_completed_sub_operations=completed,
                    number_of_failed_sub_operations=len(failed),
                    number_of_warning_sub_operations=0,
                ),
                data,
            )

        completed, failed = 0, []
        if isinstance(msg, CMoveRQ):
            b.move_requests.append(msg)
            if msg.move_destination.strip() not in b.destinations:
                await respond(0xA801, None)
                return
        extra: dict[str, object] = {}
        if isinstance(msg, CMoveRQ) and b.originator:
            assert channel.request is not None
            extra = {
                "move_originator_application_entity_title": channel.request.calling_ae_title,
                "move_originator_message_id": msg.message_id,
            }

        async def run(target: Channel) -> None:
            nonlocal completed
            for n, ds in enumerate(matches):
                if cancel.is_set():
                    return
                if b.wait_cancel_after and n == b.wait_cancel_after:
                    with anyio.fail_after(10):
                        await cancel.wait()
                    b.seen_cancel = True
                    return
                if b.gap:
                    await anyio.sleep(b.gap)
                if str(ds.SOPInstanceUID) in b.fail:
                    failed.append(str(ds.SOPInstanceUID))
                else:
                    status = await _store(target, ds, extra)
                    if status == 0:
                        completed += 1
                    else:
                        failed.append(str(ds.SOPInstanceUID))
                if b.pending:
                    await respond(0xFF00, len(matches) - n - 1)

        if isinstance(msg, CGetRQ):
            await run(channel)
        else:
            port = b.destinations[msg.move_destination.strip()]
            sender = aiodimse.AE("RETR_SCP")
            async with sender.associate(
                "127.0.0.1",
                port,
                called_ae=msg.move_destination.strip(),
                contexts=[Context(abstract_syntax=CT)],
            ) as assoc:
                await run(assoc._channel)
        status = b.final_status
        if status is None:
            status = 0xFE00 if cancel.is_set() else (0xB000 if failed else 0x0000)
        data = None
        if failed:
            ident = Dataset()
            ident.FailedSOPInstanceUIDList = failed
            data = encode_identifier(ident, ts)
        await respond(status, None if status != 0xFE00 else len(matches) - completed, data)
