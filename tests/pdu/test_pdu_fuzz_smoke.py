"""Run the atheris harness's invariant (fuzz/fuzz_pdu.py) over its seed corpus and more."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.pdu.vectors import PDU_VECTORS

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus" / "pdu"


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_pdu", ROOT / "fuzz" / "fuzz_pdu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HARNESS = _load_harness()
SEEDS = sorted(CORPUS.glob("seed_*"))


def test_seed_corpus_holds_every_golden_vector() -> None:
    names = {p.name for p in SEEDS}
    assert {f"seed_{name}" for name, _, _ in PDU_VECTORS} <= names
    for name, wire, _ in PDU_VECTORS:
        assert (CORPUS / f"seed_{name}").read_bytes()[1:] == wire


@pytest.mark.parametrize("seed", SEEDS, ids=[p.name for p in SEEDS])
def test_harness_on_seed(seed: Path) -> None:
    HARNESS.test_one_input(seed.read_bytes())


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SEEDS), st.binary(max_size=8), st.integers(min_value=0))
def test_harness_on_spliced_seeds(seed: Path, noise: bytes, at: int) -> None:
    data = seed.read_bytes()
    at = at % (len(data) + 1)
    HARNESS.test_one_input(data[:at] + noise + data[at:])
