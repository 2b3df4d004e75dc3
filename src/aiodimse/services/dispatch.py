"""Incoming DIMSE requests to the AE's services (either association role).

An :class:`~aiodimse.services.ae.AE` holds two registries, filled by the services it
enables (verification always; storage, query/retrieve when configured):

* ``request_handlers``: request class -> ``async handler(ae, channel, received)`` that
  performs the operation and sends the response(s);
* ``request_starters``: request class -> ``starter(channel, received, done)`` that
  performs a request without a task when it can (see
  :data:`~aiodimse.net.inbound.RequestStarter`; the storage SCP's C-STORE), else False;
* ``sink_factories``: request class -> ``factory(channel, context_id, message)`` choosing
  where the request's dataset streams while it arrives (a temporary file for C-STORE);
  none registered: the dataset is kept in memory (bounded by ``Limits``).

The same registries serve associations we accepted and associations we opened (C-GET
brings C-STOREs back over our own association).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..dimse.messages import CEchoRQ, CEchoRSP, DimseMessage, DimseRequest, response_class_for
from ..net.channel import Channel, Received, RequestDone
from ..net.sinks import DatasetSink

if TYPE_CHECKING:
    from .ae import AE

log = logging.getLogger("aiodimse.scp")

#: PS3.7 C.5 / Annex C: "Unrecognized Operation".
STATUS_UNRECOGNIZED_OPERATION = 0x0211
#: PS3.7 Annex C: "Processing failure" (a handler raised).
STATUS_PROCESSING_FAILURE = 0x0110

RequestHandler = Callable[["AE", Channel, Received], Awaitable[None]]
SinkFactory = Callable[[Channel, int, DimseMessage], "DatasetSink | None"]


async def dispatch_request(ae: AE, channel: Channel, received: Received) -> None:
    """Run the registered handler for one request; unknown requests get 0x0211."""
    msg = received.message
    handler = ae.request_handlers.get(type(msg))
    if handler is not None:
        await handler(ae, channel, received)
        return
    log.warning("%s: no service for %s; answering 0x0211", channel.peer, type(msg).__name__)
    if isinstance(msg, DimseRequest):
        # The response class pairs with the request class (PS3.7 E.1 Command Field).
        rsp_cls = response_class_for(type(msg))
        if rsp_cls is not None:
            await channel.send_message(
                received.context_id,
                rsp_cls(
                    message_id_being_responded_to=msg.message_id,
                    status=STATUS_UNRECOGNIZED_OPERATION,
                ),
            )


def start_request(ae: AE, channel: Channel, received: Received, done: RequestDone) -> bool:
    """The channel's request starter: the service's (see ``ae.request_starters``), else
    False (the request's handler performs it in a task)."""
    starter = ae.request_starters.get(type(received.message))
    return starter is not None and starter(channel, received, done)


def choose_sink(
    ae: AE, channel: Channel, context_id: int, message: DimseMessage
) -> DatasetSink | None:
    """The channel's sink factory: the service's, else ``None`` (memory)."""
    factory = ae.sink_factories.get(type(message))
    return factory(channel, context_id, message) if factory is not None else None


async def handle_echo(ae: AE, channel: Channel, received: Received) -> None:
    """C-ECHO SCP (PS3.7 9.1.5): the AE's ``on_echo`` handler gives the status."""
    from .ae import EchoRequest

    msg = received.message
    assert isinstance(msg, CEchoRQ)
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
