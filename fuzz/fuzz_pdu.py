"""Fuzz the PDU decoder (PS3.8 9.3) with atheris.

Invariant: for any byte string fed in any split (whole, in chunks through ``feed``, in
chunks through ``get_buffer``/``buffer_updated``), the decoder returns the same PDUs and
then either asks for more bytes or raises ``PDUDecodeError`` with the same abort reason,
and raises nothing else; every PDU it returns re-encodes (``encode_pdu(strict=False)``)
to bytes that decode to an equal PDU; the buffer it holds never exceeds twice the most
bytes it held unconsumed plus twice the largest chunk plus a constant.

Input format: byte 0 chooses the chunk size (``data[0] % 61 + 1``, but at least 1/64 of
the stream so one input stays fast); the rest is the stream.

Run (60 s, seed corpus written from the golden vectors in tests/pdu/vectors.py)::

    .venv/bin/python fuzz/fuzz_pdu.py -max_total_time=60 fuzz/corpus/pdu

libFuzzer adds the inputs it finds to that directory; only the ``seed_*`` files are kept
in git (``fuzz/corpus/pdu/.gitignore``). Rewrite the seed corpus::

    .venv/bin/python fuzz/fuzz_pdu.py --write-corpus fuzz/corpus/pdu

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
        from aiodimse.errors import PDUDecodeError
        from aiodimse.pdu import PDUDecoder, encode_pdu
        from aiodimse.pdu.decoder import FEED_BUFFER_SIZE
        from aiodimse.pdu.pdus import PDU
else:
    from aiodimse.config import Limits
    from aiodimse.errors import PDUDecodeError
    from aiodimse.pdu import PDUDecoder, encode_pdu
    from aiodimse.pdu.decoder import FEED_BUFFER_SIZE
    from aiodimse.pdu.pdus import PDU

LIMITS = Limits(max_pdu_length=4096, max_association_pdu_length=4096)
REENCODE_LIMITS = Limits(max_pdu_length=1 << 20, max_association_pdu_length=1 << 20)

Outcome = tuple[list[PDU], int | None]


def _drain(decoder: PDUDecoder, out: list[PDU]) -> None:
    while (pdu := decoder.next_pdu()) is not None:
        out.append(pdu)


def _run_feed(stream: bytes, chunk: int) -> Outcome:
    decoder = PDUDecoder(LIMITS)
    out: list[PDU] = []
    peak = 0
    try:
        for i in range(0, len(stream), chunk):
            decoder.feed(stream[i : i + chunk])
            peak = max(peak, decoder.buffered_bytes)
            assert decoder.buffer_capacity <= 2 * peak + 2 * chunk + FEED_BUFFER_SIZE
            _drain(decoder, out)
    except PDUDecodeError as exc:
        try:
            decoder.next_pdu()
        except PDUDecodeError as again:
            assert again is exc, "the decoder must stay failed"
        else:
            raise AssertionError("the decoder must stay failed") from None
        return out, int(exc.abort_reason)
    return out, None


def _run_zero_copy(stream: bytes, chunk: int) -> Outcome:
    decoder = PDUDecoder(LIMITS)
    out: list[PDU] = []
    try:
        for i in range(0, len(stream), chunk):
            piece = stream[i : i + chunk]
            view = decoder.get_buffer()
            view[: len(piece)] = piece
            decoder.buffer_updated(len(piece))
            _drain(decoder, out)
    except PDUDecodeError as exc:
        return out, int(exc.abort_reason)
    return out, None


def test_one_input(data: bytes) -> None:
    """Check the invariant of the module docstring on one fuzz input."""
    if not data:
        return
    stream = data[1:]
    chunk = max(data[0] % 61 + 1, len(stream) // 64)
    whole = _run_feed(stream, max(1, len(stream)))
    assert _run_feed(stream, chunk) == whole
    assert _run_zero_copy(stream, chunk) == whole
    for pdu in whole[0]:
        again = PDUDecoder(REENCODE_LIMITS)
        again.feed(encode_pdu(pdu, strict=False))
        assert again.next_pdu() == pdu
        assert again.buffered_bytes == 0


def write_corpus(directory: Path) -> None:
    """Write one seed per golden vector, the whole stream, and a few hostile headers."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.pdu.vectors import PDU_VECTORS, STREAM

    directory.mkdir(parents=True, exist_ok=True)
    seeds = {name: b"\x00" + wire for name, wire, _ in PDU_VECTORS}
    seeds.update({f"{name}_chunk3": b"\x02" + wire for name, wire, _ in PDU_VECTORS[:2]})
    seeds["stream_bytewise"] = b"\x00" + STREAM
    seeds["stream_chunk7"] = b"\x06" + STREAM
    seeds["http_get"] = b"\x05GET / HTTP/1.1\r\n\r\n"
    seeds["tls_client_hello"] = b"\x10" + bytes.fromhex("16030100c4010000c00303") + bytes(8)
    for name, seed in seeds.items():
        (directory / f"seed_{name}").write_bytes(seed)


def main() -> None:  # pragma: no cover
    if len(sys.argv) == 3 and sys.argv[1] == "--write-corpus":
        write_corpus(Path(sys.argv[2]))
        return
    if atheris is None:
        raise SystemExit("atheris is not installed")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    main()
