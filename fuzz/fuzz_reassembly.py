"""Fuzz the DIMSE message assembler (PS3.8 Annex E) with atheris.

Invariant: for any sequence of PDVs, the assembler returns events in a valid order
(per message: ``CommandReceived``, then ``DataFragment``s only if the command announced a
dataset, the last one flagged ``last``, then ``MessageComplete``, all on one context) or
raises ``AssemblyError`` (after which it raises that same error forever) or
``MalformedCommand`` (a ``CommandDecodeError``; the assembler stays usable), never any
other exception; the concatenated ``DataFragment`` data of each message equal the bytes of
the dataset PDVs fed for it; no event is produced for a context that was not accepted.

Input format: records of ``[control][length][data...]``: control bit 0 = command,
bit 1 = last fragment (PS3.8 E.2), bits 2-4 pick the context ID from ``CONTEXTS`` (1, 3, 5
are accepted; 7, 2, 0, 255 are not); ``length`` (one byte) data bytes follow.

Run (60 s; seeds are valid message streams made by the fragmenter)::

    .venv/bin/python fuzz/fuzz_reassembly.py -max_total_time=60 fuzz/corpus/reassembly

Rewrite the seed corpus::

    .venv/bin/python fuzz/fuzz_reassembly.py --write-corpus fuzz/corpus/reassembly

Without atheris the module still imports; ``test_one_input`` is what the tests call.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:  # pragma: no cover - only when fuzzing
    import atheris  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover
    atheris = None

if atheris is not None and __name__ == "__main__":  # pragma: no cover
    with atheris.instrument_imports():
        from aiodimse.config import Limits
        from aiodimse.dimse.assembler import (
            AssemblerState,
            CommandReceived,
            DataFragment,
            MalformedCommand,
            MessageAssembler,
            MessageComplete,
        )
        from aiodimse.errors import AssemblyError
        from aiodimse.pdu import PDV
else:
    from aiodimse.config import Limits
    from aiodimse.dimse.assembler import (
        AssemblerState,
        CommandReceived,
        DataFragment,
        MalformedCommand,
        MessageAssembler,
        MessageComplete,
    )
    from aiodimse.errors import AssemblyError
    from aiodimse.pdu import PDV

CONTEXTS = (1, 3, 5, 7, 2, 0, 255, 1)
ACCEPTED = (1, 3, 5)
LIMITS = Limits(max_command_set_length=1024)
MAX_DATASET = 8192


def parse_records(data: bytes) -> list[PDV]:
    """The PDVs an input encodes (see the module docstring); a short tail is dropped."""
    pdvs: list[PDV] = []
    i = 0
    while i + 2 <= len(data):
        control, length = data[i], data[i + 1]
        body = data[i + 2 : i + 2 + length]
        i += 2 + length
        pdvs.append(
            PDV(
                context_id=CONTEXTS[(control >> 2) & 7],
                is_command=bool(control & 1),
                is_last=bool(control & 2),
                data=body,
            )
        )
    return pdvs


def encode_records(pdvs: list[PDV]) -> bytes:
    """Inverse of :func:`parse_records` for PDVs of at most 255 bytes."""
    out = bytearray()
    for p in pdvs:
        assert len(p.data) <= 255
        control = (1 if p.is_command else 0) | (2 if p.is_last else 0)
        control |= CONTEXTS.index(p.context_id) << 2
        out += bytes((control, len(p.data))) + bytes(p.data)
    return bytes(out)


class _Checker:
    """Checks the event order and the data equality of the invariant."""

    def __init__(self) -> None:
        self.context: int | None = None  # context of the message in progress
        self.expect_data = False
        self.fed = bytearray()  # dataset bytes fed for the message in progress
        self.got = bytearray()  # dataset bytes delivered for it

    def event(self, ev: object) -> None:
        if isinstance(ev, CommandReceived):
            assert self.context is None, "command inside a message"
            assert ev.context_id in ACCEPTED
            self.context = ev.context_id
            self.expect_data = ev.message.has_dataset
            self.fed.clear()
            self.got.clear()
        elif isinstance(ev, DataFragment):
            assert self.context == ev.context_id and self.expect_data
            self.got += ev.data
        elif isinstance(ev, MessageComplete):
            assert self.context == ev.context_id
            assert self.got == self.fed, "reassembled dataset differs from what was fed"
            self.context = None
        else:  # pragma: no cover
            raise AssertionError(f"unknown event {ev!r}")


def test_one_input(data: bytes) -> None:
    """Check the invariant of the module docstring on one fuzz input."""
    asm = MessageAssembler(ACCEPTED, limits=LIMITS, max_dataset_length=MAX_DATASET)
    check = _Checker()
    for pdv in parse_records(data):
        in_dataset = asm.state is AssemblerState.DATASET
        try:
            events = asm.receive_pdv(pdv)
        except MalformedCommand:
            assert asm.state is AssemblerState.DISCARD
            check.context = None
            continue
        except AssemblyError as exc:
            assert asm.state is AssemblerState.ERROR
            try:
                asm.receive_pdv(pdv)
            except AssemblyError as again:
                assert again is exc, "the assembler must stay failed"
            else:  # pragma: no cover
                raise AssertionError("the assembler must stay failed") from None
            return
        if in_dataset and not pdv.is_command:
            check.fed += pdv.data
        for ev in events:
            check.event(ev)


def write_corpus(directory: Path) -> None:
    """Seeds: valid message streams (fragmented small) and a few classic violations."""
    from aiodimse.dimse.command_codec import encode_command
    from aiodimse.dimse.fragmenter import Fragmenter
    from aiodimse.dimse.messages import CEchoRQ, CFindRQ, CStoreRQ

    echo = encode_command(CEchoRQ(message_id=1, affected_sop_class_uid="1.2.840.10008.1.1"))
    store = encode_command(
        CStoreRQ(
            message_id=2,
            affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
            affected_sop_instance_uid="1.2.3.4.5",
        )
    )
    find = encode_command(
        CFindRQ(message_id=3, affected_sop_class_uid="1.2.840.10008.5.1.4.1.2.1.1")
    )

    def records(cid: int, cmd: bytes, ds: bytes | None, max_pdu: int = 100) -> bytes:
        frag = Fragmenter(max_pdu)
        return encode_records([p for pdu in frag.pdus(cid, cmd, ds) for p in pdu.pdvs])

    dataset = bytes(range(256)) * 3
    seeds = {
        "echo": records(1, echo, None),
        "store": records(3, store, dataset),
        "find": records(5, find, b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "),
        "two_messages": records(1, echo, None) + records(1, store, dataset[:100]),
        "store_tiny_pdus": records(1, store, dataset[:60], max_pdu=10),
        "data_first": encode_records(
            [PDV(context_id=1, is_command=False, is_last=True, data=b"ab")]
        ),
        "interleaved": encode_records(
            [p for pdu in Fragmenter(40).pdus(1, store) for p in pdu.pdvs][:-1]
        )
        + records(3, echo, None),
        "bad_command": encode_records(
            [PDV(context_id=1, is_command=True, is_last=True, data=echo[:-4] + b"\xff" * 4)]
        ),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, blob in seeds.items():
        (directory / f"seed_{name}").write_bytes(blob)


def main() -> None:  # pragma: no cover - command line
    if len(sys.argv) == 3 and sys.argv[1] == "--write-corpus":
        write_corpus(Path(sys.argv[2]))
        return
    if atheris is None:
        raise SystemExit("atheris is not installed")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    main()
