"""The store sections' rows measured in turns (``suite_store.run_interleaved``): no peers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks import suite_store
from benchmarks.harness import Row, Unavailable


def _row(name: str) -> Row:
    r = Row(section="s", impl=name, label=name, metric="m", unit="u", higher_is_better=True)
    r.details["id"] = name
    return r


def _opener(
    name: str, log: list[str], *, start: Exception | None = None, fail_at: int | None = None,
    stop: Exception | None = None,
) -> Callable[[Path], contextlib.AbstractContextManager[Callable[[int], float]]]:  # fmt: skip
    @contextlib.contextmanager
    def opened(out: Path) -> Iterator[Callable[[int], float]]:
        if start is not None:
            raise start
        log.append(f"start {name} {out.name}")
        runs = 0

        def measure(_: int) -> float:
            nonlocal runs
            runs += 1
            if runs == fail_at:
                raise RuntimeError(f"{name} broke")
            log.append(f"{name}{runs}")
            return float(runs)

        yield measure
        log.append(f"stop {name}")
        if stop is not None:
            raise stop

    return opened


def test_repetitions_alternate_between_rows_and_each_row_gets_its_own_output(
    tmp_path: Path,
) -> None:
    log: list[str] = []
    a, b = _row("a"), _row("b")
    suite_store.run_interleaved(
        [(a, _opener("a", log)), (b, _opener("b", log))], tmp_path, repeat=3, time_budget=60
    )
    assert log == ["start a out-0", "start b out-1", "a1", "b1", "a2", "b2", "a3", "b3",
                   "stop b", "stop a"]  # fmt: skip
    assert a.samples == b.samples == [1.0, 2.0, 3.0]
    assert a.error is None and b.error is None


def test_a_row_that_fails_is_skipped_and_the_others_go_on(tmp_path: Path) -> None:
    log: list[str] = []
    rows = [_row("a"), _row("b"), _row("c"), _row("d")]
    suite_store.run_interleaved(
        [
            (rows[0], _opener("a", log, start=Unavailable("no storescp here"))),
            (rows[1], _opener("b", log, fail_at=2)),
            (rows[2], _opener("c", log, start=OSError("port in use"))),
            (rows[3], _opener("d", log, stop=RuntimeError("would not stop"))),
        ],
        tmp_path,
        repeat=3,
        time_budget=60,
    )
    a, b, c, d = rows
    assert a.error == "no storescp here" and a.samples == []
    assert b.error == "RuntimeError: b broke" and b.samples == [1.0]
    assert c.error == "OSError: port in use" and c.samples == []
    assert d.samples == [1.0, 2.0, 3.0] and d.error == "RuntimeError: would not stop"
    assert log == ["start b out-1", "start d out-3", "b1", "d1", "d2", "d3", "stop d", "stop b"]


def test_a_row_past_its_time_budget_stops_with_a_note(tmp_path: Path) -> None:
    log: list[str] = []
    a = _row("a")
    suite_store.run_interleaved([(a, _opener("a", log))], tmp_path, repeat=3, time_budget=0)
    assert a.samples == [1.0]
    assert a.error == "time budget 0 s spent after 1 repetitions"
