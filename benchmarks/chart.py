"""A PNG chart of one ``make bench`` run: one panel per section, one bar per row.

Bars are medians with min–max whiskers; aiodimse rows are drawn in a different colour;
rows without samples are listed with "no data". matplotlib (the ``bench`` extra) with the
non-interactive Agg backend; nothing is shown on screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import Row


def _sections(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    """One panel per section and unit (a section's page-cache probe, in µs per file, gets
    a panel of its own beside the section's instances/s)."""
    out: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        out.setdefault((row.section, row.unit), []).append(row)
    return [(section, panel) for (section, _), panel in out.items()]


def write_chart(rows: Sequence[Row], path: Path, *, title: str) -> Path:
    """Draw ``rows`` into ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = _sections(rows)
    ncols = 2
    nrows = max(1, math.ceil(len(sections) / ncols))
    heights = []
    for r in range(nrows):
        chunk = sections[r * ncols : (r + 1) * ncols]
        heights.append(max(len(rs) for _, rs in chunk) * 0.32 + 0.9)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(17, sum(heights) + 1),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for index, ax in enumerate(axes.flat):
        if index >= len(sections):
            ax.axis("off")
            continue
        name, section_rows = sections[index]
        labels, medians, lows, highs, colours = [], [], [], [], []
        for row in section_rows:
            med = row.median()
            note = "" if med is not None else "  (no data)"
            labels.append((row.label[:58] + note)[:70])
            m = med or 0.0
            medians.append(m)
            lows.append(m - min(row.samples) if row.samples else 0.0)
            highs.append(max(row.samples) - m if row.samples else 0.0)
            colours.append("tab:blue" if row.impl.startswith("aiodimse") else "tab:gray")
        ypos = list(range(len(section_rows)))
        ax.barh(ypos, medians, xerr=[lows, highs], color=colours, capsize=2)
        ax.set_yticks(ypos)
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        unit = section_rows[0].unit
        better = "higher" if section_rows[0].higher_is_better else "lower"
        ax.set_title(f"{name[:80]}\n[{unit}, {better} is better]", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        for y, m in zip(ypos, medians, strict=True):
            if m:
                ax.text(m, y, f" {m:,.3g}", va="center", fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
