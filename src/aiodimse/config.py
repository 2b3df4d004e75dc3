"""Per-instance configuration as frozen dataclasses (nothing mutable at module level)."""

from __future__ import annotations

from dataclasses import dataclass

from .constants import DEFAULT_MAX_ASSOCIATION_PDU, DEFAULT_MAX_PDU, UNLIMITED_PDU_CAP


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on what a peer can make us buffer.

    * ``max_pdu_length``: the maximum P-DATA-TF PDU length we advertise and enforce
      (PS3.8 D.1; 0 would mean unlimited, which we never advertise).
    * ``max_association_pdu_length``: cap on A-ASSOCIATE-RQ/AC PDUs.
    * ``unlimited_pdu_cap``: what we send at most per PDU when the peer advertises 0.
    * ``max_command_set_length``: cap on one reassembled command set.
    * ``max_in_memory_dataset``: cap on a dataset the caller asked to hold in memory.
    * ``max_async_operations``: the most outstanding operations we support per direction
      (PS3.7 D.3.3.3; the peer's 0 = unlimited or 65,535 is clamped to this).
    """

    max_pdu_length: int = DEFAULT_MAX_PDU
    max_association_pdu_length: int = DEFAULT_MAX_ASSOCIATION_PDU
    unlimited_pdu_cap: int = UNLIMITED_PDU_CAP
    max_command_set_length: int = 64 * 1024
    max_in_memory_dataset: int = 256 * 1024 * 1024
    max_async_operations: int = 16

    def __post_init__(self) -> None:
        if not 6 + 6 < self.max_pdu_length <= 0xFFFFFFFF:
            raise ValueError(f"max_pdu_length {self.max_pdu_length} out of range")
        if self.max_association_pdu_length < 68:
            raise ValueError("max_association_pdu_length must hold an A-ASSOCIATE header")
        if self.max_async_operations < 1:
            raise ValueError("max_async_operations must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Waiting policies, in seconds (``None`` waits forever). Industry defaults.

    * ``connect``: TCP connect (SYN retries alone take ~2 minutes on Linux).
    * ``acse``: association establishment and release (as acceptor this is ARTIM, running
      from TCP accept until a complete A-ASSOCIATE-RQ has arrived, PS3.8 9.1.5).
    * ``echo``: a C-ECHO response.
    * ``store``: a C-STORE without progress (sending or awaiting the response).
    * ``find``: between C-FIND responses; ``move``/``get``: between C-MOVE/C-GET responses.
    * ``dimse``: any other DIMSE response (N-services).
    * ``network``: idle time on an established association with no byte received while
      nothing is in progress (no handler running, no response awaited).
    * ``pdu``: once the first bytes of a PDU arrived, the rest must arrive within this time
      (a peer trickling one byte a second is cut off, ROBUSTNESS 40).
    * ``abort``: how long an abort or release on the way out may take before we just close.
    """

    connect: float | None = 30.0
    acse: float | None = 30.0
    echo: float | None = 10.0
    store: float | None = 60.0
    find: float | None = 120.0
    move: float | None = 300.0
    get: float | None = 300.0
    dimse: float | None = 60.0
    network: float | None = None
    pdu: float | None = 60.0
    abort: float = 5.0
