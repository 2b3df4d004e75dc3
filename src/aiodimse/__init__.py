"""aiodimse: DICOM networking (PS3.8 upper layer, PS3.7 DIMSE) for asyncio.

Layers, bottom up (see docs/index.md):

* ``aiodimse.constants``, ``aiodimse.errors``, ``aiodimse.config``: vocabulary.
* ``aiodimse.pdu``: the seven PDUs of PS3.8 9.3 and an incremental, bounded decoder.
* ``aiodimse.association``: the PS3.8 9.2 state machine and negotiation.
* ``aiodimse.dimse``: PS3.7 command sets, fragmentation and streaming reassembly.

Nothing up to here does I/O. The anyio shell, services and CLIs sit above.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0.dev0"

logging.getLogger("aiodimse").addHandler(logging.NullHandler())

__all__ = ["__version__"]
