"""Run the reassembly harness's invariant (fuzz/fuzz_reassembly.py) over its seeds and more."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus" / "reassembly"


def _load_harness() -> ModuleType:
    path = ROOT / "fuzz" / "fuzz_reassembly.py"
    spec = importlib.util.spec_from_file_location("fuzz_reassembly", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HARNESS = _load_harness()
SEEDS = sorted(CORPUS.glob("seed_*"))


def test_corpus_has_seeds() -> None:
    assert len(SEEDS) >= 5


@pytest.mark.parametrize("seed", SEEDS, ids=[p.name for p in SEEDS])
def test_harness_on_seed(seed: Path) -> None:
    HARNESS.test_one_input(seed.read_bytes())


def test_records_roundtrip() -> None:
    for seed in SEEDS:
        blob = seed.read_bytes()
        assert HARNESS.encode_records(HARNESS.parse_records(blob)) == blob


def test_harness_detects_a_wrong_reassembly() -> None:
    # The checker must be able to fail: feed it a fragment that was never fed.
    checker = HARNESS._Checker()
    from aiodimse.dimse.assembler import CommandReceived, DataFragment, MessageComplete
    from aiodimse.dimse.messages import CStoreRQ

    msg = CStoreRQ(message_id=1, affected_sop_class_uid="1.2", affected_sop_instance_uid="1.3")
    checker.event(CommandReceived(context_id=1, message=msg))
    checker.event(DataFragment(context_id=1, data=memoryview(b"xx"), last=True))
    with pytest.raises(AssertionError):
        checker.event(MessageComplete(context_id=1))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_harness_on_random_bytes(data: bytes) -> None:
    HARNESS.test_one_input(data)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SEEDS), st.binary(max_size=64), st.integers(0, 2000))
def test_harness_on_mutated_seeds(seed: Path, patch: bytes, at: int) -> None:
    blob = bytearray(seed.read_bytes())
    at %= len(blob) + 1
    blob[at : at + len(patch)] = patch
    HARNESS.test_one_input(bytes(blob))
