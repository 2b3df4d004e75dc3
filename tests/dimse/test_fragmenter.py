"""Fragmenter unit tests: sizes, zero copy, flags, options (PS3.8 9.3.5.1, D.1, Annex E)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import pytest

from aiodimse.config import Limits
from aiodimse.dimse.fragmenter import (
    MIN_PEER_MAX_PDU_LENGTH,
    Fragmenter,
    MaxPDULengthTooSmall,
    resolve_max_pdu_length,
)
from aiodimse.errors import LocalProtocolError
from aiodimse.pdu import PDataTF, pdata_tf_parts

CMD = bytes(range(80))  # any even-length command bytes; the fragmenter does not parse them


def pdu_length(pdu: PDataTF) -> int:
    """The PDU-length field value: PDV items including their 6-byte headers (PS3.8 9.3.5)."""
    return sum(6 + len(p.data) for p in pdu.pdvs)


def split_streams(pdus: Iterable[PDataTF]) -> tuple[bytes, bytes, list[PDataTF]]:
    out = list(pdus)
    cmd = b"".join(bytes(p.data) for pdu in out for p in pdu.pdvs if p.is_command)
    data = b"".join(bytes(p.data) for pdu in out for p in pdu.pdvs if not p.is_command)
    return cmd, data, out


def test_pdu_length_counts_pdv_headers_and_never_exceeds_max() -> None:
    frag = Fragmenter(1000)
    data = bytes(10_000)
    pdus = list(frag.pdus(1, CMD, data))
    assert all(pdu_length(p) <= 1000 for p in pdus)
    # Full PDUs are exactly the maximum: one PDV of 994 bytes + its 6-byte header.
    data_pdus = [p for p in pdus if not p.pdvs[0].is_command]
    assert [len(p.pdvs[0].data) for p in data_pdus[:-1]] == [994] * 10
    assert len(data_pdus[-1].pdvs[0].data) == 10_000 - 9940
    # The encoded PDU-length field agrees with the count above.
    for p in pdus:
        parts = pdata_tf_parts(p.pdvs)
        wire = b"".join(bytes(x) for x in parts)
        assert int.from_bytes(wire[2:6], "big") == pdu_length(p) == len(wire) - 6


def test_fragments_are_even_when_max_payload_is_odd() -> None:
    # max 1001 leaves 995 bytes for data: odd, so fragments are 994 (PS3.8 E.1 even rule).
    _, data, pdus = split_streams(Fragmenter(1001).pdus(3, CMD, bytes(range(256)) * 40))
    assert data == bytes(range(256)) * 40
    for pdu in pdus:
        for pdv in pdu.pdvs:
            if not pdv.is_last:
                assert len(pdv.data) % 2 == 0


def test_payload_is_not_copied_for_one_buffer() -> None:
    data = bytearray(b"\x01\x02" * 50_000)
    pdus = list(Fragmenter(16_384).pdus(1, CMD, data))
    data_pdvs = [pdv for pdu in pdus for pdv in pdu.pdvs if not pdv.is_command]
    for pdv in data_pdvs:
        assert isinstance(pdv.data, memoryview)
        assert pdv.data.obj is data  # a slice of the caller's buffer
    data[0] = 0xFF
    assert bytes(data_pdvs[0].data[:1]) == b"\xff"  # proves it is a view, not a copy


def test_flags_command_then_data_last_bits() -> None:
    pdus = list(Fragmenter(64).pdus(5, CMD, bytes(300)))
    flags = [(pdv.is_command, pdv.is_last) for pdu in pdus for pdv in pdu.pdvs]
    n_cmd = sum(1 for c, _ in flags if c)
    assert flags[:n_cmd] == [(True, False)] * (n_cmd - 1) + [(True, True)]
    assert flags[n_cmd:] == [(False, False)] * (len(flags) - n_cmd - 1) + [(False, True)]
    assert {pdv.context_id for pdu in pdus for pdv in pdu.pdvs} == {5}


def test_no_dataset_gives_command_only() -> None:
    cmd, data, pdus = split_streams(Fragmenter(0).pdus(1, CMD))
    assert cmd == CMD and data == b""
    assert len(pdus) == 1 and pdus[0].pdvs[0].is_last


def test_empty_dataset_still_sends_a_last_fragment() -> None:
    for source in (b"", [], [b"", b""]):
        _, data, pdus = split_streams(Fragmenter(100).pdus(1, CMD, source))
        last = pdus[-1].pdvs[-1]
        assert data == b"" and not last.is_command and last.is_last


def test_command_and_data_separate_by_default() -> None:
    pdus = list(Fragmenter(1000).pdus(1, CMD, bytes(100)))
    assert len(pdus) == 2
    assert [p.is_command for p in pdus[0].pdvs] == [True]
    assert [p.is_command for p in pdus[1].pdvs] == [False]


def test_command_and_data_in_one_pdu_option() -> None:
    frag = Fragmenter(1000, command_and_data_in_one_pdu=True)
    assert frag.command_and_data_in_one_pdu
    pdus = list(frag.pdus(1, CMD, bytes(100)))
    assert len(pdus) == 1
    assert [(p.is_command, p.is_last) for p in pdus[0].pdvs] == [(True, True), (False, True)]
    # When the command fills the PDU, the data simply starts the next PDU.
    pdus = list(Fragmenter(86, command_and_data_in_one_pdu=True).pdus(1, CMD, bytes(100)))
    assert all(pdu_length(p) <= 86 for p in pdus)
    assert split_streams(pdus)[1] == bytes(100)


def test_zero_maximum_uses_unlimited_cap() -> None:
    assert resolve_max_pdu_length(0) == Limits().unlimited_pdu_cap
    assert resolve_max_pdu_length(0, Limits(unlimited_pdu_cap=65_536)) == 65_536
    frag = Fragmenter(0, limits=Limits(unlimited_pdu_cap=65_536))
    assert frag.max_pdu_length == 65_536
    assert all(pdu_length(p) <= 65_536 for p in frag.pdus(1, CMD, bytes(300_000)))


def test_maximum_above_32_bits_is_clamped() -> None:
    assert resolve_max_pdu_length(2**40) == 0xFFFFFFFF


@pytest.mark.parametrize("peer_max", [-1, 1, 6, 7])
def test_too_small_maximum_is_refused(peer_max: int) -> None:
    with pytest.raises(MaxPDULengthTooSmall) as info:
        Fragmenter(peer_max)
    assert isinstance(info.value, LocalProtocolError)
    assert info.value.peer_max_pdu_length == peer_max
    assert info.value.minimum == MIN_PEER_MAX_PDU_LENGTH == 8


def test_smallest_maximum_works() -> None:
    cmd, data, pdus = split_streams(Fragmenter(8).pdus(1, CMD, bytes(range(21))))
    assert cmd == CMD and data == bytes(range(21))
    assert all(pdu_length(p) <= 8 for p in pdus)
    assert [len(p.pdvs[0].data) for p in pdus][-1] == 1  # only the odd tail is odd


@pytest.mark.parametrize("cid", [0, 2, 256, -1])
def test_invalid_context_id_is_local_error(cid: int) -> None:
    with pytest.raises(LocalProtocolError):
        list(Fragmenter(100).pdus(cid, CMD, b""))


def test_empty_command_is_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        list(Fragmenter(100).pdus(1, b""))


def test_chunks_are_repacked_into_full_pdus() -> None:
    chunks = [bytes([i % 251]) * 100 for i in range(1000)]  # 100 KB in 100-byte chunks
    _, data, pdus = split_streams(Fragmenter(16_384).pdus(1, CMD, chunks))
    assert data == b"".join(chunks)
    data_pdus = [p for p in pdus if not p.pdvs[0].is_command]
    # Tiny chunks are joined: one PDV per PDU, each full.
    assert all(len(p.pdvs) == 1 for p in data_pdus)
    assert all(pdu_length(p) == 16_384 for p in data_pdus[:-1])


def test_large_chunks_pass_through_without_copy() -> None:
    chunks = [bytes([i]) * 65_536 for i in range(8)]
    pdus = list(Fragmenter(16_384 + 100).pdus(1, CMD, iter(chunks)))
    data_pdvs = [pdv for pdu in pdus for pdv in pdu.pdvs if not pdv.is_command]
    owners = {id(pdv.data.obj) for pdv in data_pdvs if isinstance(pdv.data, memoryview)}
    assert owners <= {id(c) for c in chunks}  # every PDV is a slice of a caller chunk
    assert b"".join(bytes(p.data) for p in data_pdvs) == b"".join(chunks)
    # A PDU straddling two chunks holds two PDVs rather than a copy.
    assert any(len(pdu.pdvs) == 2 for pdu in pdus)
    assert all(pdu_length(p) <= 16_484 for p in pdus)


def test_odd_chunks_keep_fragments_even() -> None:
    chunks = [b"\x07" * 5001, b"\x08" * 4999, b"\x09" * 7, b"\x0a" * 10_001]
    _, data, pdus = split_streams(Fragmenter(3000, join_threshold=1000).pdus(1, CMD, chunks))
    assert data == b"".join(chunks)
    for pdu in pdus:
        for pdv in pdu.pdvs:
            if not pdv.is_command and not pdv.is_last:
                assert len(pdv.data) % 2 == 0 and len(pdv.data) > 0


def test_gather_lists_match_pdus() -> None:
    frag = Fragmenter(500)
    data = bytes(range(256)) * 10
    via_pdus = [b"".join(bytes(x) for x in pdata_tf_parts(p.pdvs)) for p in frag.pdus(1, CMD, data)]
    via_gather = [b"".join(bytes(x) for x in parts) for parts in frag.gather(1, CMD, data)]
    assert via_pdus == via_gather
    assert all(w[0] == 0x04 for w in via_gather)


def test_generator_is_lazy() -> None:
    pulled: list[int] = []

    def source() -> Iterable[bytes]:
        for i in range(100):
            pulled.append(i)
            yield bytes(1000)

    gen = Fragmenter(4000).pdus(1, CMD, source())
    next(gen)  # the command PDU
    next(gen)  # the first data PDU needs only ~4 chunks
    assert len(pulled) < 10


async def _achunks(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def test_async_source_gives_same_pdus_as_sync() -> None:
    chunks = [bytes([i]) * (37 * i + 1) for i in range(60)]
    frag = Fragmenter(2048)

    async def collect() -> list[bytes]:
        return [
            b"".join(bytes(x) for x in parts)
            async for parts in frag.agather(7, CMD, _achunks(chunks))
        ]

    async def collect_plain() -> list[bytes]:
        # apdus also accepts a plain (sync) source.
        return [
            b"".join(bytes(x) for x in pdata_tf_parts(p.pdvs))
            async for p in frag.apdus(7, CMD, b"".join(chunks))
        ]

    sync = [b"".join(bytes(x) for x in parts) for parts in frag.gather(7, CMD, chunks)]
    assert asyncio.run(collect()) == sync
    assert b"".join(asyncio.run(collect_plain())) != b""
    assert split_streams(PDataTF(pdvs=p.pdvs) for p in frag.pdus(7, CMD, b"".join(chunks)))[
        1
    ] == b"".join(chunks)


def test_message_pdus_encodes_and_checks_dataset_agreement() -> None:
    from aiodimse.dimse.command_codec import decode_command
    from aiodimse.dimse.messages import CEchoRQ, CStoreRQ

    echo = CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1")
    store = CStoreRQ(message_id=2, affected_sop_class_uid="1.2", affected_sop_instance_uid="1.3")
    frag = Fragmenter(100)
    cmd, data, _ = split_streams(frag.message_pdus(1, store, b"abcd"))
    assert decode_command(cmd) == store and data == b"abcd"
    assert decode_command(split_streams(frag.message_pdus(1, echo))[0]) == echo
    with pytest.raises(LocalProtocolError):
        frag.message_pdus(1, store)
    with pytest.raises(LocalProtocolError):
        frag.message_pdus(1, echo, b"ab")

    async def collect() -> bytes:
        return b"".join(
            [
                bytes(p.data)
                async for pdu in frag.amessage_pdus(1, store, _achunks([b"ab", b"cd"]))
                for p in pdu.pdvs
                if not p.is_command
            ]
        )

    assert asyncio.run(collect()) == b"abcd"
