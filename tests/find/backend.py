"""A small in-memory C-FIND backend for tests: a list of datasets and simple matching.

Matching follows PS3.4 C.2.2.2 only as far as the tests need: universal matching (empty
value), single value, ``*``/``?`` wildcards (C.2.2.2.4) and ``a-b`` date ranges (C.2.2.2.5.1).
The response holds exactly the keys asked for (C.4.1.1.3.2).
"""

from __future__ import annotations

import fnmatch
from collections.abc import AsyncIterator, Sequence

from pydicom.dataset import Dataset

from aiodimse.services.qr_models import QueryLevel, QueryModel

_LEVEL_KEY = {
    QueryLevel.PATIENT: "PatientID",
    QueryLevel.STUDY: "StudyInstanceUID",
    QueryLevel.SERIES: "SeriesInstanceUID",
    QueryLevel.IMAGE: "SOPInstanceUID",
}


def value_matches(want: str, have: str, vr: str) -> bool:
    if want in ("", "*"):
        return True
    if vr in ("DA", "TM", "DT") and "-" in want:
        lo, hi = want.split("-", 1)
        return (not lo or have >= lo) and (not hi or have <= hi)
    if "*" in want or "?" in want:
        return fnmatch.fnmatchcase(have, want)
    return want == have


def matches(query: Dataset, candidate: Dataset) -> bool:
    for elem in query:
        if elem.keyword in ("QueryRetrieveLevel", "SpecificCharacterSet") or elem.VR == "SQ":
            continue
        want = "" if elem.value is None else str(elem.value)
        have = candidate.get(elem.keyword)
        if want and not value_matches(want, "" if have is None else str(have), elem.VR):
            return False
    return True


def project(query: Dataset, candidate: Dataset) -> Dataset:
    out = Dataset()
    if "SpecificCharacterSet" in candidate:
        out.SpecificCharacterSet = candidate.SpecificCharacterSet
    for elem in query:
        if elem.keyword == "SpecificCharacterSet":
            continue
        if elem.keyword == "QueryRetrieveLevel":
            out.QueryRetrieveLevel = elem.value
        elif elem.keyword in candidate:
            out.add(candidate[elem.tag])
        else:
            out.add_new(elem.tag, elem.VR, None)
    return out


class ListBackend:
    """Matches ``datasets`` at any level (one response per distinct level key)."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)
        self.queries: list[tuple[Dataset, QueryModel, QueryLevel | None]] = []

    async def find(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel | None
    ) -> AsyncIterator[Dataset]:
        self.queries.append((identifier, model, level))
        seen: set[str] = set()
        key = _LEVEL_KEY[level] if level is not None else None
        for ds in self.datasets:
            if not matches(identifier, ds):
                continue
            if key is not None:
                k = str(ds.get(key, ""))
                if k in seen:
                    continue
                seen.add(k)
            yield project(identifier, ds)
