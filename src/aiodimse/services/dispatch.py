"""Incoming DIMSE requests to the AE's handlers (either association role)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..dimse.messages import CEchoRQ, CEchoRSP, DimseRequest
from ..net.channel import Channel, Received

if TYPE_CHECKING:
    from .ae import AE

log = logging.getLogger("aiodimse.scp")

#: PS3.7 C.5.5 / Annex C: "Unrecognized Operation".
STATUS_UNRECOGNIZED_OPERATION = 0x0211
#: PS3.7 C.5.8 (used for handler exceptions in C-ECHO): "Processing failure".
STATUS_PROCESSING_FAILURE = 0x0110


async def dispatch_request(ae: AE, channel: Channel, received: object) -> None:
    """Run the handler for one request and send its response."""
    assert isinstance(received, Received)
    msg = received.message
    if isinstance(msg, CEchoRQ):
        await _echo(ae, channel, received, msg)
        return
    log.warning("%s: no service for %s; answering 0x0211", channel.peer, type(msg).__name__)
    if isinstance(msg, DimseRequest):
        # The response class pairs with the request class (PS3.7 E.1 Command Field).
        from ..dimse.messages import response_class_for

        rsp_cls = response_class_for(type(msg))
        if rsp_cls is not None:
            await channel.send_message(
                received.context_id,
                rsp_cls(
                    message_id_being_responded_to=msg.message_id,
                    status=STATUS_UNRECOGNIZED_OPERATION,
                ),
            )


async def _echo(ae: AE, channel: Channel, received: Received, msg: CEchoRQ) -> None:
    from .ae import EchoRequest

    rq = channel.request
    request = EchoRequest(
        message_id=msg.message_id,
        calling_ae_title=rq.calling_ae_title if rq else "",
        called_ae_title=rq.called_ae_title if rq else "",
        peer=channel.peer,
    )
    try:
        status = await ae.on_echo(request)
    except Exception:
        log.exception("%s: C-ECHO handler raised", channel.peer)
        status = STATUS_PROCESSING_FAILURE
    # PS3.7 9.3.5.2: the response echoes the Affected SOP Class UID.
    await channel.send_message(
        received.context_id,
        CEchoRSP(
            message_id_being_responded_to=msg.message_id,
            affected_sop_class_uid=msg.affected_sop_class_uid,
            status=status,
        ),
    )
