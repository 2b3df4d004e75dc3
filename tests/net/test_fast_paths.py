"""Hot-path shortcuts of the shell (issue 9) keep the behaviour of the general path.

* The default C-ECHO SCP is performed by the association's reader itself (no task per
  request); a user's ``on_echo`` handler still runs in a task of its own.
* ``AE.associate`` builds an A-ASSOCIATE-RQ once per distinct request and reuses it.
"""

from __future__ import annotations

import anyio
import pytest

import aiodimse
from aiodimse.dimse.messages import CEchoRQ, CFindRQ
from aiodimse.services.ae import EchoRequest

pytestmark = pytest.mark.anyio


def test_default_echo_is_inline_a_custom_handler_is_not() -> None:
    ae = aiodimse.AE("SCP")
    echo = CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1")
    assert ae._performs_inline(echo)
    assert not ae._performs_inline(
        CFindRQ(message_id=2, affected_sop_class_uid="1.2.840.10008.5.1.4.1.2.2.1")
    )

    async def custom(request: EchoRequest) -> int:
        return 0

    ae.on_echo = custom
    assert not ae._performs_inline(echo)


async def test_echo_inline_and_with_a_slow_custom_handler() -> None:
    scp = aiodimse.AE("SCP")
    async with scp.serve("127.0.0.1", 0) as server:
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port) as assoc:
            for _ in range(3):
                assert (await assoc.echo()).code == 0
        release = anyio.Event()
        started = anyio.Event()

        async def slow(request: EchoRequest) -> int:
            started.set()
            await release.wait()
            return 0x0110

        scp.on_echo = slow
        async with aiodimse.AE("SCU").associate("127.0.0.1", server.port) as assoc:
            async with anyio.create_task_group() as tg:

                async def echo() -> None:
                    assert (await assoc.echo()).code == 0x0110

                tg.start_soon(echo)
                # The handler runs in its own task: the reader is free meanwhile.
                with anyio.fail_after(5):
                    await started.wait()
                assert assoc.is_established
                release.set()
    assert server.total_associations == 2


async def test_association_request_is_built_once_per_distinct_request() -> None:
    scp = aiodimse.AE("SCP")
    scu = aiodimse.AE("SCU")
    rq1 = scu._association_request("ANY-SCP", None, None)
    assert scu._association_request("ANY-SCP", None, None) is rq1
    assert scu._association_request("OTHER", None, None) is not rq1
    scu.ae_title = "SCU2"
    rq2 = scu._association_request("ANY-SCP", None, None)
    assert rq2 is not rq1 and rq2.calling_ae_title == "SCU2"
    for i in range(40):  # bounded
        scu._association_request(f"AE{i}", None, None)
    assert len(scu._rq_cache) <= 32
    async with scp.serve("127.0.0.1", 0) as server:
        for _ in range(2):
            async with scu.associate("127.0.0.1", server.port) as assoc:
                assert (await assoc.echo()).code == 0
    with pytest.raises(aiodimse.LocalProtocolError):
        scu._association_request("", None, None)  # still validated (not cached)
