"""Write the state diagram generated from the PS3.8 Table 9-10 implementation into the docs.

Run by ``make docs``; ``tests/test_docs_examples.py`` checks that the committed pages are
current, so the docs cannot drift from the code.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiodimse.association import fsm

DOCS = Path(__file__).resolve().parent
START, END = "<!-- state-diagram:start -->", "<!-- state-diagram:end -->"

HEADER = """# The association state machine

PS3.8 9.2 defines the DICOM upper layer as 13 states (Sta1-Sta13), 19 events (Evt1-Evt19)
and actions AE-1..8, DT-1..2, AR-1..10 and AA-1..8, tabulated in PS3.8 Table 9-10.
aiodimse keeps that table as data (`aiodimse.association.fsm`); this page is generated
from it by `docs/gen_state_diagram.py`, so it cannot drift from the code.

"""


def diagram() -> str:
    return "```mermaid\n" + fsm.state_diagram_mermaid().strip() + "\n```\n"


def render() -> dict[Path, str]:
    """The generated pages: path -> full text."""
    index = DOCS / "index.md"
    text = index.read_text(encoding="utf-8")
    block = f"{START}\n{diagram()}{END}"
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    return {DOCS / "state-machine.md": HEADER + diagram(), index: text}


def main() -> None:
    for path, text in render().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
