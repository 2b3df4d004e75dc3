"""``Fragmenter.batches`` for a small message in memory (a command and a dataset that each
fit one PDV): its shortcut gives exactly the groups, PDUs and PDVs of the general path
(PS3.8 E.2: each a single last fragment; the command never shares a PDU with the data)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.constants import PDV_HEADER_LENGTH
from aiodimse.dimse.fragmenter import BATCH_BYTES, Fragmenter
from aiodimse.errors import LocalProtocolError
from aiodimse.pdu import PDataTF


def _shape(groups: list[list[PDataTF]]) -> list[list[list[tuple[int, bool, bool, bytes]]]]:
    return [
        [[(v.context_id, v.is_command, v.is_last, bytes(v.data)) for v in pdu.pdvs] for pdu in g]
        for g in groups
    ]


@settings(max_examples=60, deadline=None)
@given(
    max_pdu=st.sampled_from([4096, 16384, 65536, 1 << 20, 4 << 20]),
    command_size=st.integers(1, 300),
    dataset_size=st.integers(1, 300_000),
    context_id=st.sampled_from([1, 3, 255]),
)
def test_shortcut_matches_the_general_path(
    max_pdu: int, command_size: int, dataset_size: int, context_id: int
) -> None:
    fragmenter = Fragmenter(max_pdu)
    command = bytes(range(256)) * 2
    command = command[:command_size]
    dataset = bytes(i % 251 for i in range(dataset_size))
    fast = list(fragmenter.batches(context_id, command, dataset))
    general = list(fragmenter.batches(context_id, command, bytearray(dataset)))  # no shortcut
    assert _shape(fast) == _shape(general)
    if dataset_size <= max_pdu - PDV_HEADER_LENGTH:
        assert len(fast) == 1 and len(fast[0]) == 2  # one gathered write, two PDUs
    assert sum(len(g) for g in fast) >= 2


def test_shortcut_checks_the_context_id() -> None:
    with pytest.raises(LocalProtocolError):
        list(Fragmenter(16384).batches(2, b"\x00" * 10, b"\x00" * 100))
    assert BATCH_BYTES > 300  # the commands above are below a group's size
