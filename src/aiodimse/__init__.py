"""aiodimse: DICOM networking (PS3.8 upper layer, PS3.7 DIMSE) for asyncio.

Layers, bottom up (see docs/index.md):

* ``aiodimse.constants``, ``aiodimse.errors``, ``aiodimse.config``: vocabulary.
* ``aiodimse.pdu``: the seven PDUs of PS3.8 9.3 and an incremental, bounded decoder.
* ``aiodimse.association``: the PS3.8 9.2 state machine and negotiation.
* ``aiodimse.dimse``: PS3.7 command sets, fragmentation and streaming reassembly.

Nothing up to here does I/O. The anyio shell (``aiodimse.net``), the services and the AE
(``aiodimse.services``) and the CLIs (``aiodimse.apps``) sit above. The names below are
imported lazily so that using the sans-I/O core alone never imports anyio.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .config import Limits, Timeouts
from .errors import (
    AssociationAborted,
    AssociationError,
    AssociationRejected,
    DicomError,
    DicomTimeoutError,
    LocalProtocolError,
    NetworkError,
    RemoteProtocolError,
)

__version__ = "0.1.0.dev0"

logging.getLogger("aiodimse").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .net.filesource import DicomFileError
    from .services.ae import AE, EchoRequest
    from .services.association import Association
    from .services.contexts import Context
    from .services.file_index import FileIndex
    from .services.filepolicy import Layout
    from .services.find_scp import PendingMatch, QueryRetrieveSCP, enable_find
    from .services.find_scu import FindResults
    from .services.pool import AssociationPool
    from .services.qr_models import FindFailed, QueryLevel, QueryModel
    from .services.retrieve_scp import MoveDestination, RetrieveSCP, enable_retrieve
    from .services.server import Server
    from .services.storage_contexts import NoPresentationContext, propose_contexts
    from .services.storage_scp import (
        DuplicatePolicy,
        StorageOptions,
        StorageSCP,
        StoredInstance,
        enable_storage,
    )
    from .services.storage_scu import StoreResult
    from .services.ts_strategies import Strategy

_LAZY = {
    "AE": "services.ae",
    "EchoRequest": "services.ae",
    "Association": "services.association",
    "AssociationPool": "services.pool",
    "Context": "services.contexts",
    "FindFailed": "services.qr_models",
    "FindResults": "services.find_scu",
    "PendingMatch": "services.find_scp",
    "QueryLevel": "services.qr_models",
    "QueryModel": "services.qr_models",
    "QueryRetrieveSCP": "services.find_scp",
    "enable_find": "services.find_scp",
    "Server": "services.server",
    "StoreResult": "services.storage_scu",
    "Strategy": "services.ts_strategies",
    "NoPresentationContext": "services.storage_contexts",
    "propose_contexts": "services.storage_contexts",
    "DicomFileError": "net.filesource",
    "DuplicatePolicy": "services.storage_scp",
    "StorageOptions": "services.storage_scp",
    "StorageSCP": "services.storage_scp",
    "StoredInstance": "services.storage_scp",
    "enable_storage": "services.storage_scp",
    "Layout": "services.filepolicy",
    "MoveCoordinator": "services.move_coordinator",
    "RetrieveFailed": "services.retrieve_scu",
    "RetrieveOperation": "services.retrieve_scu",
    "RetrievedInstance": "services.retrieve_scu",
    "get_contexts": "services.retrieve_scu",
    "move_contexts": "services.retrieve_scu",
    "MoveDestination": "services.retrieve_scp",
    "RetrieveSCP": "services.retrieve_scp",
    "enable_retrieve": "services.retrieve_scp",
    "FileIndex": "services.file_index",
    "run": "net.loop",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiodimse' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "AE",
    "Association",
    "AssociationAborted",
    "AssociationError",
    "AssociationPool",
    "AssociationRejected",
    "Context",
    "DicomError",
    "DicomFileError",
    "DicomTimeoutError",
    "DuplicatePolicy",
    "EchoRequest",
    "FileIndex",
    "FindFailed",
    "FindResults",
    "Layout",
    "Limits",
    "LocalProtocolError",
    "MoveCoordinator",
    "MoveDestination",
    "NetworkError",
    "NoPresentationContext",
    "PendingMatch",
    "QueryLevel",
    "QueryModel",
    "QueryRetrieveSCP",
    "RemoteProtocolError",
    "RetrieveFailed",
    "RetrieveOperation",
    "RetrieveSCP",
    "RetrievedInstance",
    "Server",
    "StorageOptions",
    "StorageSCP",
    "StoreResult",
    "StoredInstance",
    "Strategy",
    "Timeouts",
    "__version__",
    "enable_find",
    "enable_retrieve",
    "enable_storage",
    "get_contexts",
    "move_contexts",
    "propose_contexts",
    "run",
]
