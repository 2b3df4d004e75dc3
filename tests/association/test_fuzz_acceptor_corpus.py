"""Smoke test: fuzz/fuzz_acceptor.py's invariant holds on its seed corpus and a few mutations."""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus" / "acceptor"


def _harness() -> Callable[[bytes], None]:
    spec = importlib.util.spec_from_file_location(
        "fuzz_acceptor", ROOT / "fuzz" / "fuzz_acceptor.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.test_one_input  # type: ignore[no-any-return]


SEEDS = sorted(CORPUS.iterdir())


def test_corpus_is_there() -> None:
    assert len(SEEDS) >= 2


@pytest.mark.parametrize("seed", SEEDS, ids=[p.name for p in SEEDS])
def test_seed(seed: Path) -> None:
    _harness()(seed.read_bytes())


def test_mutations() -> None:
    run = _harness()
    rng = random.Random(1234)
    for seed in SEEDS:
        data = bytearray(seed.read_bytes())
        for _ in range(40):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                if mutated:
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            run(bytes(mutated))
