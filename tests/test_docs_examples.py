"""Every ``python`` block in README.md and docs/ that runs itself (``anyio.run(``) runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for n, code in enumerate(BLOCK.findall(path.read_text(encoding="utf-8"))):
            if "anyio.run(" in code:
                found.append((f"{path.name}#{n}", code))
    return found


EXAMPLES = _examples()


def test_there_are_runnable_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("code", [c for _, c in EXAMPLES], ids=[i for i, _ in EXAMPLES])
def test_example_runs(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "0x0" in result.stdout.lower() or "success" in result.stdout.lower(), result.stdout


def test_generated_state_diagram_is_current() -> None:
    """docs/ shows the diagram of the table as implemented (run ``make docs`` to refresh)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "docs" / "gen_state_diagram.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for path, text in gen.render().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run make docs"
