"""Query/Retrieve vocabulary for C-FIND: information models, levels, identifiers, statuses.

Theory of operation
-------------------
A C-FIND carries an *Identifier* data set (PS3.4 C.4.1.1.3): matching keys with values and
return keys with empty values, plus Query/Retrieve Level (0008,0052) for the Q/R models
(PS3.4 C.6) and none for Modality Worklist (PS3.4 K.6). This module builds that data set
from keyword/value pairs or takes a pydicom ``Dataset``, chooses its Specific Character Set,
and encodes/decodes it in the transfer syntax of the presentation context (Implicit VR LE,
Explicit VR LE or Explicit VR BE; PS3.5 7.1) with pydicom's reader and writer in memory.

Character set policy (PS3.5 6.1, PS3.3 C.12.1.1.2): when every text value is ASCII no
Specific Character Set is sent (the default repertoire). When a value is not ASCII we send
``ISO_IR 100`` (Latin-1) if every value fits in it, else ``ISO_IR 192`` (UTF-8). Latin-1
first because it is the repertoire older SCPs most often support; an SCP that cannot
handle the query's character set may answer a failure (PS3.4 C.4.1.1.3.1), so the caller
can force one with ``charset=``. A data set that already has (0008,0005) keeps it.
Received identifiers are decoded by pydicom with their own Specific Character Set.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence

from ..constants import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from ..dimse.status import Service, StatusInfo, status_info
from ..errors import DicomError, LocalProtocolError
from .contexts import UNCOMPRESSED, Context

__all__ = [
    "EXPLICIT_VR_BIG_ENDIAN",
    "FindFailed",
    "IdentifierError",
    "Query",
    "QueryLevel",
    "QueryModel",
    "build_identifier",
    "choose_charset",
    "decode_identifier",
    "encode_identifier",
    "find_contexts",
]

#: PS3.4 C.4.1.1.4 status codes the SCP framework sends.
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_IDENTIFIER_DOES_NOT_MATCH = 0xA900
STATUS_UNABLE_TO_PROCESS = 0xC000
#: Our Cxxx code for "the backend raised" (PS3.4 C.4.1.1.4: C000-CFFF unable to process).
STATUS_BACKEND_FAILED = 0xC001
STATUS_CANCEL = 0xFE00
STATUS_PENDING = 0xFF00
STATUS_PENDING_WARNING = 0xFF01
STATUS_SUCCESS = 0x0000

#: PS3.5 6.2: value representations whose values are text in the Specific Character Set.
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})
_INT_VRS = frozenset({"US", "UL", "SS", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})


class QueryModel(enum.Enum):
    """C-FIND information models and their SOP classes (PS3.4 C.6, K.6; UIDs PS3.6 A.1)."""

    PATIENT_ROOT = "1.2.840.10008.5.1.4.1.2.1.1"  # PS3.4 C.6.1
    STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"  # PS3.4 C.6.2
    MODALITY_WORKLIST = "1.2.840.10008.5.1.4.31"  # PS3.4 K.6.1

    @property
    def sop_class_uid(self) -> str:
        return self.value

    @property
    def levels(self) -> tuple[QueryLevel, ...]:
        """Query/Retrieve levels of the model (PS3.4 C.6.1.1, C.6.2.1; none for worklist)."""
        if self is QueryModel.PATIENT_ROOT:
            return (QueryLevel.PATIENT, QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.IMAGE)
        if self is QueryModel.STUDY_ROOT:
            return (QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.IMAGE)
        return ()

    @property
    def default_level(self) -> QueryLevel | None:
        return self.levels[0] if self.levels else None

    def context(self, transfer_syntaxes: Sequence[str] = UNCOMPRESSED) -> Context:
        """A presentation context proposing (or supporting) this model's FIND SOP class."""
        return Context(abstract_syntax=self.value, transfer_syntaxes=tuple(transfer_syntaxes))

    @classmethod
    def parse(cls, value: QueryModel | str) -> QueryModel:
        """A model from itself, its SOP class UID or a name (``study``, ``patient``, ``mwl``)."""
        if isinstance(value, QueryModel):
            return value
        text = value.strip().lower().replace("-", "_").replace(" ", "_")
        aliases = {
            "study": cls.STUDY_ROOT,
            "study_root": cls.STUDY_ROOT,
            "s": cls.STUDY_ROOT,
            "patient": cls.PATIENT_ROOT,
            "patient_root": cls.PATIENT_ROOT,
            "p": cls.PATIENT_ROOT,
            "worklist": cls.MODALITY_WORKLIST,
            "modality_worklist": cls.MODALITY_WORKLIST,
            "mwl": cls.MODALITY_WORKLIST,
            "w": cls.MODALITY_WORKLIST,
        }
        if text in aliases:
            return aliases[text]
        for model in cls:
            if model.value == value.strip():
                return model
        raise LocalProtocolError(f"unknown C-FIND information model {value!r}")

    @classmethod
    def from_sop_class(cls, uid: str) -> QueryModel | None:
        for model in cls:
            if model.value == uid:
                return model
        return None


class QueryLevel(enum.Enum):
    """Query/Retrieve Level (0008,0052) values (PS3.4 C.6.1.1.1)."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"

    @classmethod
    def parse(cls, value: QueryLevel | str) -> QueryLevel:
        """A level from its name; ``INSTANCE`` is accepted as a synonym of ``IMAGE``."""
        if isinstance(value, QueryLevel):
            return value
        text = value.strip().upper()
        if text == "INSTANCE":
            return cls.IMAGE
        try:
            return cls(text)
        except ValueError:
            raise LocalProtocolError(f"unknown Query/Retrieve Level {value!r}") from None


def find_contexts(
    models: Iterable[QueryModel] = tuple(QueryModel),
    transfer_syntaxes: Sequence[str] = UNCOMPRESSED,
) -> list[Context]:
    """Presentation contexts for the given C-FIND models (to propose or to support)."""
    return [m.context(transfer_syntaxes) for m in models]


class FindFailed(DicomError):
    """A C-FIND ended with a failure status (PS3.4 C.4.1.1.4), or a backend refuses one.

    As SCU: raised while iterating results when the final response is a failure; carries the
    peer's ``status`` (with its meaning), ``error_comment`` and ``offending_element``.
    As SCP: a backend raises it to choose the failure status and Error Comment sent back.
    ``retryable`` is true for 0xA7xx "Refused: out of resources".
    """

    def __init__(
        self,
        status: StatusInfo | int,
        error_comment: str | None = None,
        *,
        offending_element: tuple[int, ...] | None = None,
    ) -> None:
        info = status if isinstance(status, StatusInfo) else status_info(status, Service.FIND)
        text = f"C-FIND failed: 0x{info.code:04X} {info.meaning}"
        if error_comment:
            text += f": {error_comment}"
        super().__init__(text)
        self.status = info
        self.error_comment = error_comment
        self.offending_element = offending_element
        self.retryable = 0xA700 <= info.code <= 0xA7FF


class IdentifierError(DicomError):
    """An identifier cannot be encoded or decoded (bad value, depth, transfer syntax).

    ``status`` is what an SCP answers with when the identifier came from the peer.
    """

    def __init__(self, message: str, *, status: int = STATUS_UNABLE_TO_PROCESS) -> None:
        super().__init__(message)
        self.status = status


# -------------------------------------------------------------------- building identifiers

#: A query as the user gives it: keyword (or tag) -> value; ``None``/``""`` asks for a key.
Query = Mapping[Any, Any] | Dataset


def _tag_of(key: str | int) -> int:
    if isinstance(key, int):
        return key
    text = key.strip()
    if text.startswith("(") and text.endswith(")") and "," in text:
        group, elem = text[1:-1].split(",", 1)
        try:
            return (int(group, 16) << 16) | int(elem, 16)
        except ValueError:
            pass
    tag = tag_for_keyword(text)
    if tag is None:
        raise LocalProtocolError(f"unknown DICOM keyword {key!r} (PS3.6)")
    return int(tag)


def _element(tag: int, value: object) -> DataElement:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise LocalProtocolError(f"tag ({tag >> 16:04X},{tag & 0xFFFF:04X}) not in PS3.6") from None
    if vr == "SQ":
        # Sequence matching (PS3.4 C.2.2.2.6): one item of keys; empty means "return it".
        items: list[Dataset] = []
        if value not in (None, "", []):
            seq_items: list[Any] = (
                [value] if isinstance(value, Mapping | Dataset) else list(value)  # type: ignore[call-overload]
            )
            for item in seq_items:
                if isinstance(item, Dataset):
                    items.append(item)
                elif isinstance(item, Mapping):
                    items.append(_dataset_from_mapping(item))
                else:
                    raise LocalProtocolError(f"sequence item must be a mapping, got {item!r}")
        return DataElement(tag, vr, DicomSequence(items))
    if value is None or value == "":
        return DataElement(tag, vr, None)  # universal matching / return key (C.2.2.2.3)
    if "|" in vr:  # ambiguous VR (US or SS...): the first one will do for a key
        vr = vr.split(" or ")[0]
    if isinstance(value, str) and (vr in _INT_VRS or vr in _FLOAT_VRS):
        conv = int if vr in _INT_VRS else float
        try:
            value = [conv(v) for v in value.split("\\")] if "\\" in value else conv(value)
        except ValueError:
            raise LocalProtocolError(f"{keyword_for_tag(tag)}: {value!r} is not {vr}") from None
    return DataElement(tag, vr, value)


def _dataset_from_mapping(query: Mapping[Any, Any]) -> Dataset:
    ds = Dataset()
    for key, value in query.items():
        elem = _element(_tag_of(key), value)
        ds.add(elem)
    return ds


def _text_values(ds: Dataset) -> Iterable[str]:
    for elem in ds.iterall():
        if elem.VR not in _TEXT_VRS or elem.value is None:
            continue
        values = elem.value if isinstance(elem.value, MultiValue | list) else [elem.value]
        for v in values:
            yield str(v)


def choose_charset(ds: Dataset) -> str | None:
    """The Specific Character Set able to carry ``ds``'s text (policy: module docstring)."""
    texts = list(_text_values(ds))
    if all(t.isascii() for t in texts):
        return None
    try:
        for t in texts:
            t.encode("latin-1")
    except UnicodeEncodeError:
        return "ISO_IR 192"
    return "ISO_IR 100"


def apply_charset(ds: Dataset, charset: str | None = None) -> None:
    """Set (0008,0005) when needed: ``charset`` if given, else :func:`choose_charset`.

    A data set that already has Specific Character Set keeps it.
    """
    if "SpecificCharacterSet" in ds:
        return
    chosen = charset or choose_charset(ds)
    if chosen:
        ds.SpecificCharacterSet = chosen


def build_identifier(
    query: Query,
    model: QueryModel,
    level: QueryLevel | None,
    *,
    charset: str | None = None,
) -> Dataset:
    """The C-FIND Identifier (PS3.4 C.4.1.1.3.1) for ``query``.

    ``query`` is a mapping of keyword, ``(gggg,eeee)`` or int tag to value (``None`` or ``""``
    asks for a return key; a list of mappings is a sequence match; ``a\\b`` lists values)
    or a ``Dataset`` (copied, never modified). Query/Retrieve Level is set to ``level``
    (Q/R models) unless the data set already has one and ``level`` is ``None``; Modality
    Worklist carries none (PS3.4 K.6.1.2). Specific Character Set as :func:`apply_charset`.
    """
    if isinstance(query, Dataset):
        ds = Dataset()
        ds.update(query)  # shallow: the caller's data set stays as it was
    else:
        ds = _dataset_from_mapping(query)
    if model is QueryModel.MODALITY_WORKLIST:
        if level is not None:
            raise LocalProtocolError("Modality Worklist queries have no Query/Retrieve Level")
    else:
        if level is None:
            given = ds.get("QueryRetrieveLevel")
            level = QueryLevel.parse(str(given)) if given else model.default_level
        assert level is not None  # every Q/R model has levels
        if level not in model.levels:
            # PS3.4 C.6.2.1: Study Root has no PATIENT level.
            raise LocalProtocolError(f"{model.name} has no {level.value} level")
        ds.QueryRetrieveLevel = level.value
    apply_charset(ds, charset)
    return ds


# -------------------------------------------------------------------- wire encoding


def _syntax(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of an uncompressed transfer syntax (PS3.5 A.1-A.3)."""
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, True
    if transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN:
        return False, True
    if transfer_syntax == EXPLICIT_VR_BIG_ENDIAN:
        return False, False
    raise IdentifierError(
        f"identifiers in transfer syntax {transfer_syntax} are not supported",
        status=STATUS_UNABLE_TO_PROCESS,
    )


def encode_identifier(ds: Dataset, transfer_syntax: str) -> bytes:
    """``ds`` encoded in ``transfer_syntax`` (no preamble, no file meta; PS3.7 6.3.1)."""
    implicit, little = _syntax(transfer_syntax)
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    try:
        write_dataset(fp, ds)
    except (ValueError, TypeError, LookupError, OverflowError, AttributeError) as exc:
        raise IdentifierError(f"cannot encode identifier: {exc}") from exc
    return fp.getvalue()


#: Deepest sequence nesting accepted in an identifier (ROBUSTNESS 28: 64 passes, 65 fails).
MAX_SEQUENCE_DEPTH = 64


def _check_depth(ds: Dataset) -> None:
    """Walk the sequences without recursion; only SQ elements are converted (text stays lazy)."""
    stack: list[tuple[Dataset, int]] = [(ds, 0)]
    while stack:
        current, depth = stack.pop()
        for raw in current.elements():
            vr = raw.VR
            if vr is None:  # implicit VR: the dictionary says (PS3.5 7.1.3)
                try:
                    vr = dictionary_VR(raw.tag)
                except KeyError:
                    vr = "SQ" if getattr(raw, "length", 0) == 0xFFFFFFFF else "UN"
            if vr != "SQ":
                continue
            if depth + 1 > MAX_SEQUENCE_DEPTH:
                raise IdentifierError(f"sequences nested deeper than {MAX_SEQUENCE_DEPTH}")
            value = current[raw.tag].value
            stack.extend((item, depth + 1) for item in value if isinstance(item, Dataset))


def decode_identifier(data: bytes | memoryview, transfer_syntax: str) -> Dataset:
    """Decode an identifier; text is decoded lazily with its own Specific Character Set.

    Raises :class:`IdentifierError` (status 0xC000) for anything pydicom cannot read and
    for sequences nested deeper than :data:`MAX_SEQUENCE_DEPTH` (ROBUSTNESS 28). Other
    values are converted lazily by pydicom, when the caller reads them.
    """
    implicit, little = _syntax(transfer_syntax)
    try:
        ds = read_dataset(io.BytesIO(bytes(data)), implicit, little)
        _check_depth(ds)
    except IdentifierError:
        raise
    except RecursionError:
        raise IdentifierError("identifier nested too deeply") from None
    except Exception as exc:  # pydicom raises many kinds for malformed input
        raise IdentifierError(f"cannot decode identifier: {exc}") from exc
    return ds
