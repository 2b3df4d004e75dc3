"""Write docs/state-machine.md from the implementation's PS3.8 Table 9-10 (``make docs``)."""

from __future__ import annotations

from pathlib import Path

from aiodimse.association import fsm

HEADER = """# The association state machine

PS3.8 9.2 defines the DICOM upper layer as 13 states (Sta1-Sta13), 19 events (Evt1-Evt19)
and actions AE-1..8, DT-1..2, AR-1..10 and AA-1..8, tabulated in PS3.8 Table 9-10.
aiodimse keeps that table as data (`aiodimse.association.fsm`); this page is generated
from it by `docs/gen_state_diagram.py`, so it cannot drift from the code.

"""


def main() -> None:
    text = HEADER + "```mermaid\n" + fsm.state_diagram_mermaid().strip() + "\n```\n"
    out = Path(__file__).with_name("state-machine.md")
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
