"""An index of stored DICOM files in SQLite, for a Query/Retrieve SCP over received files.

Theory of operation
-------------------
One row per SOP instance (``sqlite3`` from the standard library; the database file lives in
the storage root as :data:`INDEX_NAME`). Each row holds the attributes C-FIND matches and
returns at each level (PS3.4 C.6.1.1, C.6.2.1) and the file's path *relative to the root*
(POSIX form). The index is a cache of the files: :meth:`FileIndex.open` adds files it does
not know and forgets rows whose file is gone, so a missing or deleted database is rebuilt
from the files. The storage handler adds each instance before its success is answered
(:meth:`FileIndex.add_file`).

All database and file work happens in worker threads, one at a time (a
``CapacityLimiter(1)`` per index; SQLite serialises writers anyway): the event loop never
waits on the disk.

Matching (PS3.4 C.2.2.2): universal (empty value), single value, wildcard ``*``/``?`` (text
VRs; Patient Name case-insensitive for ASCII letters), list of UIDs (``\\``-separated) and
date/time ranges ``A-B``, ``A-``, ``-B``. Keys at the query level and above are matched;
keys below it are ignored. A C-FIND answer is one data set per matching entity (patient,
study, series, instance), carrying the requested keys the index knows, plus counts such as
Number of Study Related Instances and Modalities in Study.

Paths read back from the database are checked to resolve inside the root (ROBUSTNESS 32):
a tampered index cannot make the SCP send files from elsewhere.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, TypeVar

import anyio
import anyio.to_thread
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .filepolicy import UnsafePathError, is_temporary_name, resolve_inside
from .qr_models import QueryLevel, QueryModel

__all__ = ["INDEX_NAME", "FileIndex", "IndexedInstance"]

log = logging.getLogger("aiodimse.file_index")

_T = TypeVar("_T")

#: The database file in the storage root.
INDEX_NAME: Final = "aiodimse-index.sqlite3"

_LEVEL_ORDER: Final = (QueryLevel.PATIENT, QueryLevel.STUDY, QueryLevel.SERIES, QueryLevel.IMAGE)


@dataclass(frozen=True, slots=True)
class _Column:
    keyword: str
    column: str
    level: QueryLevel
    kind: str  # "text", "pn", "uid", "date", "time", "int"


_COLUMNS: Final = (
    _Column("PatientID", "patient_id", QueryLevel.PATIENT, "text"),
    _Column("PatientName", "patient_name", QueryLevel.PATIENT, "pn"),
    _Column("PatientBirthDate", "patient_birth_date", QueryLevel.PATIENT, "date"),
    _Column("PatientSex", "patient_sex", QueryLevel.PATIENT, "text"),
    _Column("StudyInstanceUID", "study_uid", QueryLevel.STUDY, "uid"),
    _Column("StudyDate", "study_date", QueryLevel.STUDY, "date"),
    _Column("StudyTime", "study_time", QueryLevel.STUDY, "time"),
    _Column("AccessionNumber", "accession_number", QueryLevel.STUDY, "text"),
    _Column("StudyID", "study_id", QueryLevel.STUDY, "text"),
    _Column("StudyDescription", "study_description", QueryLevel.STUDY, "text"),
    _Column("ReferringPhysicianName", "referring_physician", QueryLevel.STUDY, "pn"),
    _Column("SeriesInstanceUID", "series_uid", QueryLevel.SERIES, "uid"),
    _Column("Modality", "modality", QueryLevel.SERIES, "text"),
    _Column("SeriesNumber", "series_number", QueryLevel.SERIES, "int"),
    _Column("SeriesDescription", "series_description", QueryLevel.SERIES, "text"),
    _Column("SOPInstanceUID", "sop_instance_uid", QueryLevel.IMAGE, "uid"),
    _Column("SOPClassUID", "sop_class_uid", QueryLevel.IMAGE, "uid"),
    _Column("InstanceNumber", "instance_number", QueryLevel.IMAGE, "int"),
)
_BY_KEYWORD: Final = {c.keyword: c for c in _COLUMNS}
#: The unique key of each level (PS3.4 C.6.1.1, C.6.2.1).
_UNIQUE: Final = {
    QueryLevel.PATIENT: "patient_id",
    QueryLevel.STUDY: "study_uid",
    QueryLevel.SERIES: "series_uid",
    QueryLevel.IMAGE: "sop_instance_uid",
}
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS instances ("
    + ", ".join(
        f"{c.column} TEXT NOT NULL DEFAULT ''" for c in _COLUMNS if c.column != "sop_instance_uid"
    )
    + ", sop_instance_uid TEXT PRIMARY KEY, transfer_syntax TEXT NOT NULL DEFAULT '',"
    " path TEXT NOT NULL, size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0)"
)
_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS i_study ON instances(study_uid)",
    "CREATE INDEX IF NOT EXISTS i_series ON instances(series_uid)",
    "CREATE INDEX IF NOT EXISTS i_patient ON instances(patient_id)",
    "CREATE INDEX IF NOT EXISTS i_path ON instances(path)",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexedInstance:
    """One indexed file: its UIDs and where it is (absolute)."""

    sop_instance_uid: str
    sop_class_uid: str
    path: Path


def _level_index(level: QueryLevel) -> int:
    return _LEVEL_ORDER.index(level)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _glob(pattern: str) -> str:
    # SQLite GLOB: '*' and '?' as in PS3.4 C.2.2.2.4; '[' must be literal.
    return pattern.replace("[", "[[]")


def _condition(col: _Column, value: str) -> tuple[str, list[str]] | None:
    """SQL for one matching key (PS3.4 C.2.2.2), or None for universal matching."""
    value = value.strip()
    if not value or value == "*":
        return None
    name = col.column
    if col.kind == "uid":
        uids = [u.strip() for u in value.split("\\") if u.strip()]
        return f"{name} IN ({', '.join('?' * len(uids))})", uids
    if col.kind in ("date", "time") and "-" in value:
        low, _, high = value.partition("-")
        parts: list[str] = []
        args: list[str] = []
        if low.strip():
            parts.append(f"{name} >= ?")
            args.append(low.strip())
        if high.strip():
            # A time range's upper bound covers its fractions (PS3.4 C.2.2.2.5).
            parts.append(f"{name} <= ?")
            args.append(high.strip() + ("~" if col.kind == "time" else ""))
        if not parts:
            return None
        return f"({name} != '' AND {' AND '.join(parts)})", args
    wildcard = "*" in value or "?" in value
    if col.kind == "pn":
        if wildcard:
            return f"lower({name}) GLOB lower(?)", [_glob(value)]
        return f"lower({name}) = lower(?)", [value]
    if wildcard and col.kind == "text":
        return f"{name} GLOB ?", [_glob(value)]
    return f"{name} = ?", [value]


class FileIndex:
    """The SQLite index of the DICOM files under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, *, database: Path | None = None) -> None:
        self.root = Path(root)
        self.database = database if database is not None else self.root / INDEX_NAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    # -- life cycle ------------------------------------------------------------------------

    async def open(self) -> tuple[int, int]:
        """Open (or create) the database and reconcile it with the files, off the loop.

        Returns (files added, rows removed).
        """
        return await self._run(self.open_sync)

    def open_sync(self) -> tuple[int, int]:
        """Blocking :meth:`open` (start-up before the loop, or in a worker thread)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._conn is None:
                conn = sqlite3.connect(str(self.database), check_same_thread=False)
                conn.execute(_SCHEMA)
                for stmt in _INDEXES:
                    conn.execute(stmt)
                conn.commit()
                self._conn = conn
            known: dict[str, tuple[int, int]] = {
                path: (mtime, size)
                for path, mtime, size in self._conn.execute(
                    "SELECT path, mtime_ns, size FROM instances"
                )
            }
        on_disk: dict[str, Path] = {}
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                if not name.endswith(".dcm") or is_temporary_name(name):
                    continue
                full = Path(dirpath) / name
                on_disk[full.relative_to(self.root).as_posix()] = full
        added = 0
        settled: list[tuple[int, str]] = []
        for rel, full in sorted(on_disk.items()):
            try:
                st = full.stat()
            except OSError:
                continue
            mtime, size = known.get(rel, (-1, -1))
            if mtime == st.st_mtime_ns:
                continue
            if mtime == 0 and size == st.st_size:
                # Indexed by the storage handler before the rename (mtime unknown then).
                settled.append((st.st_mtime_ns, rel))
                continue
            if self.add_file_sync(full, commit=False):  # one commit below, not one per file
                added += 1
        if settled:
            with self._lock:
                conn = self._require()
                conn.executemany("UPDATE instances SET mtime_ns = ? WHERE path = ?", settled)
                conn.commit()
        gone = [rel for rel in known if rel not in on_disk]
        with self._lock:
            conn = self._require()
            conn.executemany("DELETE FROM instances WHERE path = ?", [(g,) for g in gone])
            conn.commit()
        if added or gone:
            log.info("index %s: %d file(s) added, %d removed", self.database, added, len(gone))
        return added, len(gone)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the file index is not open")
        return self._conn

    async def _run(self, func: Callable[..., _T], *args: object) -> _T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    # -- adding ----------------------------------------------------------------------------

    async def add_file(self, source: Path, destination: Path | None = None) -> bool:
        """Index ``source`` (read now) as the file ``destination`` (default: ``source``)."""
        return bool(await self._run(self.add_file_sync, source, destination))

    def add_file_sync(
        self, source: Path, destination: Path | None = None, *, commit: bool = True
    ) -> bool:
        """Blocking :meth:`add_file`; False when ``source`` is not a readable DICOM file."""
        where = Path(destination if destination is not None else source)
        try:
            rel = where.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            log.warning("not indexing %s: outside %s", where, self.root)
            return False
        try:
            ds = dcmread(source, stop_before_pixels=True)
            st = source.stat()
        except Exception as exc:  # pydicom raises many kinds on malformed files
            log.warning("not indexing %s: %s", source, exc)
            return False
        row = {c.column: _text(ds.get(c.keyword)) for c in _COLUMNS}
        if not row["sop_instance_uid"]:
            log.warning("not indexing %s: no SOP Instance UID", source)
            return False
        meta = getattr(ds, "file_meta", None)
        row["transfer_syntax"] = _text(meta.get("TransferSyntaxUID")) if meta else ""
        row["path"] = rel
        row["size"] = str(st.st_size)
        row["mtime_ns"] = str(st.st_mtime_ns if destination is None else 0)
        cols = ", ".join(row)
        marks = ", ".join("?" * len(row))
        with self._lock:
            conn = self._require()
            conn.execute(
                f"INSERT OR REPLACE INTO instances ({cols}) VALUES ({marks})", list(row.values())
            )
            if commit:
                conn.commit()
        return True

    # -- queries ---------------------------------------------------------------------------

    def _where(self, identifier: Dataset, level: QueryLevel) -> tuple[str, list[str]]:
        top = _level_index(level)
        parts: list[str] = []
        args: list[str] = []
        for elem in identifier:
            col = _BY_KEYWORD.get(elem.keyword)
            if col is None or _level_index(col.level) > top or elem.VR == "SQ":
                continue
            cond = _condition(col, _text(elem.value))
            if cond is not None:
                parts.append(cond[0])
                args.extend(cond[1])
        return (" AND ".join(parts) or "1"), args

    def find_sync(self, identifier: Dataset, model: QueryModel, level: QueryLevel) -> list[Dataset]:
        """Blocking C-FIND: one answer per matching entity at ``level``."""
        where, args = self._where(identifier, level)
        key = _UNIQUE[level]
        top = _level_index(level)
        cols = [c for c in _COLUMNS if _level_index(c.level) <= top]
        select = ", ".join(f"MIN({c.column})" for c in cols)
        sql = (
            f"SELECT {key}, {select}, COUNT(*), COUNT(DISTINCT series_uid),"
            f" COUNT(DISTINCT study_uid), GROUP_CONCAT(DISTINCT modality)"
            f" FROM instances WHERE {where} GROUP BY {key} ORDER BY MIN(study_date), {key}"
        )
        with self._lock:
            rows = self._require().execute(sql, args).fetchall()
        out = []
        for row in rows:
            values = {c.keyword: v for c, v in zip(cols, row[1 : 1 + len(cols)], strict=True)}
            n_inst, n_series, n_studies, modalities = row[1 + len(cols) :]
            computed: dict[str, object] = {
                "NumberOfPatientRelatedStudies": n_studies,
                "NumberOfPatientRelatedSeries": n_series,
                "NumberOfPatientRelatedInstances": n_inst,
                "NumberOfStudyRelatedSeries": n_series,
                "NumberOfStudyRelatedInstances": n_inst,
                "NumberOfSeriesRelatedInstances": n_inst,
                "ModalitiesInStudy": sorted(m for m in (modalities or "").split(",") if m),
            }
            out.append(self._answer(identifier, level, model, values, computed))
        return out

    def _answer(
        self,
        identifier: Dataset,
        level: QueryLevel,
        model: QueryModel,
        values: dict[str, str],
        computed: dict[str, object],
    ) -> Dataset:
        ds = Dataset()
        top = _level_index(level)
        for elem in identifier:
            kw = elem.keyword
            if kw in ("QueryRetrieveLevel", "SpecificCharacterSet") or not kw:
                continue
            if kw in values:
                value: object = values[kw]
            elif kw in computed and self._computed_applies(kw, level):
                value = computed[kw]
            else:
                value = None  # a key we do not keep: returned empty (PS3.4 C.4.1.1.3.2)
            if elem.VR == "SQ":
                setattr(ds, kw, [])
                continue
            setattr(ds, kw, value if value not in ("",) else None)
        # PS3.4 C.4.1.2.3.1: the unique keys of the level and above are always returned.
        for lv in _LEVEL_ORDER[: top + 1]:
            if lv is QueryLevel.PATIENT and model is QueryModel.STUDY_ROOT:
                continue
            col = _BY_KEYWORD_BY_COLUMN[_UNIQUE[lv]]
            if col.keyword not in ds:
                setattr(ds, col.keyword, values.get(col.keyword) or None)
        ds.QueryRetrieveLevel = level.value
        return ds

    @staticmethod
    def _computed_applies(keyword: str, level: QueryLevel) -> bool:
        wanted = {
            "NumberOfPatientRelatedStudies": QueryLevel.PATIENT,
            "NumberOfPatientRelatedSeries": QueryLevel.PATIENT,
            "NumberOfPatientRelatedInstances": QueryLevel.PATIENT,
            "NumberOfStudyRelatedSeries": QueryLevel.STUDY,
            "NumberOfStudyRelatedInstances": QueryLevel.STUDY,
            "ModalitiesInStudy": QueryLevel.STUDY,
            "NumberOfSeriesRelatedInstances": QueryLevel.SERIES,
        }
        return wanted.get(keyword) is level

    def instances_sync(self, identifier: Dataset, level: QueryLevel) -> list[IndexedInstance]:
        """Blocking: the instances below the entities matching ``identifier`` at ``level``."""
        where, args = self._where(identifier, level)
        sql = (
            "SELECT sop_instance_uid, sop_class_uid, path FROM instances WHERE "
            f"{where} ORDER BY study_uid, series_uid, CAST(instance_number AS INTEGER), path"
        )
        with self._lock:
            rows = self._require().execute(sql, args).fetchall()
        out = []
        for uid, sop_class, rel in rows:
            try:
                path = resolve_inside(self.root, PurePosixPath(rel))
            except UnsafePathError:
                log.error("index row for %s points outside the root: %r", uid, rel)
                continue
            out.append(IndexedInstance(sop_instance_uid=uid, sop_class_uid=sop_class, path=path))
        return out

    def count_sync(self) -> int:
        with self._lock:
            row = self._require().execute("SELECT COUNT(*) FROM instances").fetchone()
        return int(row[0])

    # -- the Q/R SCP backends --------------------------------------------------------------

    async def find(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel | None
    ) -> AsyncIterator[Dataset]:
        """C-FIND backend (:func:`aiodimse.services.find_scp.enable_find`)."""
        if level is None:
            return
        found = await self._run(self.find_sync, identifier, model, level)
        for ds in found:
            yield ds

    async def retrieve(
        self, identifier: Dataset, model: QueryModel, level: QueryLevel
    ) -> AsyncIterator[Path]:
        """C-GET/C-MOVE backend (:func:`aiodimse.services.retrieve_scp.enable_retrieve`)."""
        found = await self._run(self.instances_sync, identifier, level)
        for inst in found:
            yield inst.path


_BY_KEYWORD_BY_COLUMN: Final = {c.column: c for c in _COLUMNS}


def level_keywords(level: QueryLevel) -> Sequence[str]:
    """The attributes the index keeps at ``level`` (for documentation and tools)."""
    return [c.keyword for c in _COLUMNS if c.level is level]
