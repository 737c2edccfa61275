"""Patient data -> the normalised facts table (DuckDB), for the SQL back end.

One row per usable value of a fact the protocol declares, read by the very reader
`eval` and `screen` use (data/records.py, each entry validated and its unit checked;
FHIR through data/fhir.py's extractor first), and converted once, here, to the fact's
declared unit by the compiled protocol's own normalisers (backends/python.py), so the
SQL query does no unit work and its values are bit for bit those the Python evaluator
compares. For a scalar fact only the value the reader picks as of the cohort's date is
written (the newest usable one inside the look-back window: one reading path), with a
`fact#conflict` row where candidates conflict; the query's own pick (backends/sql/pivot.py)
is then the identity on an ingested cohort, and decides only on facts tables written by
other means (a warehouse's, bench/bench_scale.py's lab histories).

Tables (docs/scale.md):
  critlang_patients(pid, id, path, deceased)  one row per patient read, also without
                                       facts; `deceased` as screen.deceased says
  critlang_facts(pid, fact, seq, item, field, value, text, day, instant,
                 recorded_value, recorded_unit, comparator, status, source,
                 low, high, problem, value_low, value_high, low_open, high_open,
                 ongoing)
  critlang_meta(key, value)            the protocol the facts were read for

`fact` is a declared fact, `@anchor` for an anchor date; a list fact has one row with
`item` NULL and `value` its item count, then per item one row with `field` NULL and one
row per known field; `value` holds
numbers in the declared unit, grades as their rank, dates and yes/no as day numbers and
1/0; `text` holds categories (and grade names); `day` is the observation's date as a
day number (proleptic Gregorian ordinal, 0001-01-01 = 1); a row with `problem` set is a
per-fact diagnostic (the reason a value could not be used), never a value. A value
known only as an interval (runtime.Range) has `value` NULL and its bounds in
`value_low` / `value_high` (NULL: unbounded) with `low_open`, `high_open`, `ongoing`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.python import Compiled, _range_limits
from ..backends.python_normalise import limit_product
from ..backends.runtime import Range
from ..checker import ENROLLMENT
from ..typesys import BoolT, EnumT, ErrorT, ListT, ScaleT, Type
from .ingest_signature import protocol_signature
from .ingest_worlds import worlds
from .reader import Reader
from .records import (
    CONFLICT,
    NOLIMITS,
    WORLD,
    Observation,
    Record,
    RecordError,
    preliminary_notes,
)
from .values import exact_number

COLUMNS = (
    ("pid", "INTEGER"),
    ("fact", "VARCHAR"),
    ("seq", "INTEGER"),
    ("item", "INTEGER"),
    ("field", "VARCHAR"),
    ("value", "DOUBLE"),
    ("text", "VARCHAR"),
    ("day", "INTEGER"),
    ("instant", "VARCHAR"),
    ("recorded_value", "VARCHAR"),
    ("recorded_unit", "VARCHAR"),
    ("comparator", "VARCHAR"),
    ("status", "VARCHAR"),
    ("source", "VARCHAR"),
    ("low", "DOUBLE"),
    ("high", "DOUBLE"),
    ("problem", "VARCHAR"),
    # a value known only as an interval (runtime.Range; `value` NULL): its bounds (NULL:
    # unbounded), 1 where a bound is excluded, 1 for an exposure not ended (Ongoing)
    ("value_low", "DOUBLE"),
    ("value_high", "DOUBLE"),
    ("low_open", "INTEGER"),
    ("high_open", "INTEGER"),
    ("ongoing", "INTEGER"),
)
PATIENT_COLUMNS = (
    ("pid", "INTEGER"),
    ("id", "VARCHAR"),
    ("path", "VARCHAR"),
    ("deceased", "VARCHAR"),  # why the patient had died by the ingest date, else NULL
)
NULL = "\\N"  # how NULL is spelled in the staging CSV

Row = tuple[Any, ...]


def _scalar(t: Type, v: Any) -> tuple[float | None, str | None]:
    """(value, text) columns for a normalised scalar of type t. A value known only as an
    interval (runtime.Range) has neither: see `_interval`."""
    if v is None or isinstance(v, Range):
        return None, None
    if isinstance(t, BoolT):
        return (1.0 if v else 0.0), None
    if isinstance(t, ScaleT):
        return float(v), t.members[v]
    if isinstance(t, EnumT):
        return None, str(v)
    return float(v), None


Interval = tuple[float | None, float | None, int, int, int]


def _interval(v: Any) -> Interval | None:
    """(value_low, value_high, low_open, high_open, ongoing) of a value known only as an
    interval (runtime.Range: a censored value, a partial date, an ongoing end), an
    infinite bound as NULL; None for any other value. backends/sql/intervals.py reasons
    over these as runtime.Range does."""
    if not isinstance(v, Range):
        return None
    lo = None if math.isinf(v.lo) else float(v.lo)
    hi = None if math.isinf(v.hi) else float(v.hi)
    return lo, hi, int(v.lo_open), int(v.hi_open), int(v.ongoing)


def _supported(compiled: Compiled) -> None:
    """Refuse (SqlUnsupported) a protocol with value kinds the facts table cannot hold."""
    from ..backends.sql import compile_sql

    compile_sql(compiled, dt.date(2000, 1, 1))


def _deceased(native: Any, as_of: dt.date) -> str | None:
    from ..screen import deceased

    return deceased(native, as_of) if isinstance(native, dict) else None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


@dataclass
class PatientRows:
    id: str
    rows: list[Row]  # without pid


def record_rows(
    compiled: Compiled,
    data: Any,
    path: str,
    extra_problems: Iterable[Any] = (),
    as_of: dt.date | None = None,
) -> PatientRows:
    """A native record (docs/patients.md) as facts rows (pid left out); `as_of` bounds
    dates that must lie in the past (none when the cohort is read for any date)."""
    checked = compiled.checked
    reader = Reader(checked, path, as_of or dt.date.max)
    rows: list[Row] = []
    if not isinstance(data, dict):
        return PatientRows(
            Path(path).stem, [_problem("record", "a patient record is a JSON object")]
        )
    pid = data.get("id")
    pid = str(pid) if isinstance(pid, (str, int)) else Path(path).stem
    raw_anchors = data.get("anchors") or {}
    if not isinstance(raw_anchors, dict):
        reader.problem("anchors", "`anchors` must be an object of dates")
        raw_anchors = {}
    for name in checked.anchors:
        if name == ENROLLMENT or raw_anchors.get(name) is None:
            continue
        raw = raw_anchors[name]
        day = reader.date(f"anchor {name}", raw)
        if day is not None:
            rows.append(_row("@" + name, 0, value=float(day.toordinal()), recorded_value=raw))
    chosen: Record | None = None
    try:
        chosen = Reader(checked, path, as_of or dt.date.max).read(data)
    except RecordError as exc:
        rows.append(_problem("record", str(exc)))
    raw_facts = data.get("facts") or {}
    if not isinstance(raw_facts, dict):
        reader.problem("facts", "`facts` must be an object")
        raw_facts = {}
    for name, t in checked.record_types.items():
        if isinstance(t, ErrorT):
            continue
        raw = raw_facts.get(name)
        if raw is None:
            continue
        normalise = compiled.normalisers[name]
        if isinstance(t, ListT):
            obs = reader.list_fact(name, t, raw)
            if obs is None:
                continue  # a list the reader could not use whole is unknown, as in Python
            # else used as Python uses it: an item that is not an object has no known
            # field, fields the protocol does not declare are ignored (sqltest7 #2)
            items = normalise(obs) or []
            rows.append(_row(name, 0, value=float(len(items))))
            ftypes = dict(t.fields)
            for i, item in enumerate(items):
                rows.append(_row(name, 0, item=i))  # the item, also when no field is known
                for fname, v in item.items():
                    value, text = _scalar(ftypes[fname], v)
                    interval = _interval(v)
                    if value is None and text is None and interval is None:
                        continue
                    raw_item = raw[i] if isinstance(raw[i], dict) else {}
                    raw_v = raw_item.get(fname)
                    unit = raw_v.get("unit") if isinstance(raw_v, dict) else None
                    rv = raw_v.get("value") if isinstance(raw_v, dict) else raw_v
                    rows.append(
                        _row(
                            name,
                            0,
                            item=i,
                            field=fname,
                            value=value,
                            text=text,
                            recorded_value=rv,
                            recorded_unit=unit,
                            interval=interval,
                        )
                    )
            continue
        # the value the Python evaluator uses: newest by instant inside the look-back
        # window, conflicts unknown (data/reader.py) — one reading path, so SQL never picks
        # a value Python would not (the cohort is screened at the date it was read for)
        obs = chosen.facts.get(name) if chosen is not None else None
        if chosen is not None and name in chosen.alternatives:
            # conflicting candidates: Python weighs each combination (python.py); the mark
            # keeps the fact unknown where no world row replaces it (a list condition
            # reading it: backends/sql/worlds.py), never decided by another value (a
            # `first available` would otherwise fall through to its next option)
            rows.append(_row(name + CONFLICT, 0, value=float(len(chosen.alternatives[name]))))
        if obs is None:
            continue
        rows += _value_rows(compiled, name, t, obs)
    if chosen is not None:  # each combination of conflicting candidates (ingest_worlds.py)
        for w, name, obs in worlds(chosen, checked.record_types):
            for row in _value_rows(compiled, name, checked.record_types[name], obs, w):
                rows.append((row[0] + WORLD, *row[1:]))
    # the problems the Python engine lists (screen.py: the FHIR reading's, then the
    # record's): those of the full read, which decides every fact (breaker7 F12: only the
    # list reader's were kept, so a refused value left no problem in the cohort)
    said = chosen.problems if chosen is not None else reader.problems
    for p in (*extra_problems, *said):
        rows.append(_problem(p.fact, p.message))
    for note in preliminary_notes(chosen) if chosen is not None else ():
        fact, _, message = note.partition(": ")  # a preliminary value used, said so
        rows.append(_problem(fact, message))
    return PatientRows(pid, rows)


def _value_rows(
    compiled: Compiled, name: str, t: Type, obs: Observation, seq: int = 0
) -> list[Row]:
    """The rows of a fact's value: the value, its `k x ULN` products and, where its
    reported reference ranges leave the limits unknown, the NOLIMITS mark."""
    checked = compiled.checked
    rows = []
    day = obs.date.toordinal() if obs.date else None  # dated as the value: in its window
    if obs.range_unknown and _range_limits(None, checked, name) != (None, None):
        # reported ranges, none surely the patient's: Python leaves the limits unknown,
        # but the SQL pivot reads empty limits as "use the protocol's default"; the mark
        # makes the limits (only them) unknown there too (backends/sql/pivot.py)
        rows.append(_row(name + NOLIMITS, seq, value=1.0, day=day))
    rows.append(_observation_row(compiled, name, t, seq, {}, obs))
    for key, fact, which, factor in compiled.products:  # `k x ULN`, exact (python.py)
        product = limit_product(obs, checked, name, which, factor) if fact == name else None
        if product is not None:
            rows.append(_row(key, seq, value=product, day=day))
    return rows


def _observation_row(
    compiled: Compiled, name: str, t: Type, seq: int, entry: Any, obs: Observation
) -> Row:
    normalised = compiled.normalisers[name](obs)  # a date: a day number, or a Range
    value, text = _scalar(t, normalised)
    meta = entry if isinstance(entry, dict) else {}
    low = high = None
    if obs.low is not None or obs.high is not None:
        low, high = _range_limits(obs, compiled.checked, name)
    return _row(
        name,
        seq,
        value=value,
        text=text,
        day=obs.date.toordinal() if obs.date else None,
        instant=_text(meta.get("date")),
        recorded_value=meta.get("value", entry if not meta else None),
        recorded_unit=meta.get("unit"),
        comparator=meta.get("comparator"),
        status=meta.get("status"),
        source=obs.source,
        low=low,
        high=high,
        interval=_interval(normalised),
    )


def _row(
    fact: str,
    seq: int | None,
    *,
    item: int | None = None,
    field: str | None = None,
    value: float | None = None,
    text: str | None = None,
    day: int | None = None,
    instant: str | None = None,
    recorded_value: Any = None,
    recorded_unit: Any = None,
    comparator: Any = None,
    status: Any = None,
    source: str | None = None,
    low: float | None = None,
    high: float | None = None,
    problem: str | None = None,
    interval: Interval | None = None,
) -> Row:
    return (
        fact, seq, item, field, value, text, day, instant, _text(recorded_value),
        _text(recorded_unit), _text(comparator), _text(status), source, low, high, problem,
        *(interval or (None,) * 5),
    )  # fmt: skip


def _problem(fact: str, message: str) -> Row:
    return _row(fact, None, problem=message)


# ---------------------------------------------------------------------- writing


def _cell(v: Any) -> Any:
    if v is None:
        return NULL
    if isinstance(v, float):
        return repr(v)  # shortest text that reads back as the same double
    return v


class CohortWriter:
    """Streams patients' rows to a staging CSV, then loads them into DuckDB in one COPY
    (memory stays flat in the cohort size)."""

    def __init__(self, target: Path, compiled: Compiled, as_of: dt.date | None) -> None:
        self.target = target
        self.compiled = compiled
        self.as_of = as_of
        # feasibility mode's facts (kind -> facts read as "no" when absent), kept in the
        # cohort so that screening it says so as `screen` does (breaker8 F13)
        self.absent_means_no: dict[str, list[str]] = {}
        self.dir = tempfile.TemporaryDirectory(prefix="critlang-ingest-")
        self.facts_path = Path(self.dir.name) / "facts.csv"
        self.patients_path = Path(self.dir.name) / "patients.csv"
        self._facts = self.facts_path.open("w", encoding="utf-8", newline="")
        self._patients = self.patients_path.open("w", encoding="utf-8", newline="")
        self.facts = csv.writer(self._facts, lineterminator="\n")
        self.patients = csv.writer(self._patients, lineterminator="\n")
        self.count = 0
        self.rows = 0

    def add(self, patient: PatientRows, path: str, deceased: str | None = None) -> None:
        self.count += 1
        pid = self.count
        self.patients.writerow((pid, patient.id, path, _cell(deceased)))
        self.facts.writerows([(pid, *(_cell(v) for v in row)) for row in patient.rows])
        self.rows += len(patient.rows)

    def close(self) -> None:
        """Write the cohort file, or nothing when no patient was read: an existing file is
        replaced only by a complete one (written beside it, then renamed: os.replace is
        atomic on one file system), never by an empty or half-written cohort."""
        self._facts.close()
        self._patients.close()
        if self.count == 0:
            self.dir.cleanup()
            return
        from ..backends.sql.engines import connect_duckdb
        from ..backends.sql.values import write_values

        try:
            work = Path(tempfile.mkdtemp(prefix=".critlang-ingest-", dir=self.target.parent))
        except BaseException:
            self.dir.cleanup()
            raise
        staged = work / self.target.name
        con = connect_duckdb(staged)
        done = False
        try:
            create_tables(con)
            for table, path, cols in (
                ("critlang_patients", self.patients_path, PATIENT_COLUMNS),
                ("critlang_facts", self.facts_path, COLUMNS),
            ):
                con.execute(
                    f"INSERT INTO {table} SELECT * FROM read_csv(?, header = false, "
                    f"nullstr = ?, quote = '\"', escape = '\"', delim = ',', auto_detect = false, "
                    f"columns = {_columns_struct(cols)})",
                    [str(path), NULL],
                )
            meta = protocol_signature(self.compiled)
            meta["as_of"] = self.as_of.isoformat() if self.as_of else ""
            if self.absent_means_no:
                meta["absent_means_no"] = json.dumps(
                    {k: sorted(v) for k, v in sorted(self.absent_means_no.items())}
                )
            con.executemany("INSERT INTO critlang_meta VALUES (?, ?)", sorted(meta.items()))
            if self.as_of is not None:
                # the per-patient tables the query reads instead of the facts rows: what it
                # picks depends on the date, known here (backends/sql/values.py)
                write_values(con, self.compiled, self.as_of)
            con.close()
            os.replace(staged, self.target)
            done = True
        finally:
            if not done:
                con.close()
            shutil.rmtree(work, ignore_errors=True)
            self.dir.cleanup()


def _columns_struct(cols: tuple[tuple[str, str], ...]) -> str:
    # fixed names and types from this module, never from input
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in cols) + "}"


def create_tables(con: Any) -> None:
    con.execute(
        "CREATE TABLE critlang_patients (" + ", ".join(f"{n} {k}" for n, k in PATIENT_COLUMNS) + ")"
    )
    con.execute("CREATE TABLE critlang_facts (" + ", ".join(f"{n} {k}" for n, k in COLUMNS) + ")")
    con.execute("CREATE TABLE critlang_meta (key VARCHAR, value VARCHAR)")


def native_records(paths: Iterable[Path]) -> Iterator[tuple[str, Any]]:
    """(path, parsed JSON) of native patient records."""
    for path in paths:
        try:
            # every digit of a decimal a float cannot hold is kept (values.exact_number)
            yield str(path), json.loads(path.read_text(encoding="utf-8"), parse_float=exact_number)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            yield str(path), _Broken(f"not a readable JSON record: {exc}")


class _Broken:
    def __init__(self, message: str) -> None:
        self.message = message


def ingest_records(
    compiled: Compiled,
    records: Iterable[tuple[str, Any]],
    target: Path,
    as_of: dt.date | None = None,
) -> int:
    """Native records -> a DuckDB cohort file; returns the number of patients. Native
    records read the same on any date (`as_of` None: the cohort can be screened as of
    any date)."""
    _supported(compiled)
    writer = CohortWriter(target, compiled, as_of)
    try:
        for path, data in records:
            if isinstance(data, _Broken):
                writer.add(PatientRows(Path(path).stem, [_problem("record", data.message)]), path)
            else:
                dead = _deceased(data, as_of) if as_of is not None else None
                writer.add(record_rows(compiled, data, path, (), as_of), path, dead)
    except BaseException:
        writer.dir.cleanup()
        raise
    writer.close()
    return writer.count


def ingest_fhir(
    compiled: Compiled,
    files: list[Path],
    target: Path,
    as_of: dt.date,
    extractor: Any = None,
    tally: Any = None,
    jobs: int = 1,
) -> int:
    """FHIR Bundles / NDJSON -> a DuckDB cohort file, through the very reading path
    `screen` uses (data/fhir.read_fhir); returns the number of patients. Bundle files are
    read on up to `jobs` processes; the file written is the same for any number. What FHIR means
    can depend on the screening date (a condition abated by then), so the cohort is read
    as of `as_of` and records it."""
    from ..screen_jobs import fork_map, split_for_jobs
    from .fhir import Extractor, read_fhir
    from .fhir_input import Tally

    extractor = extractor or Extractor(compiled.checked)
    tally = tally if tally is not None else Tally()
    _supported(compiled)
    writer = CohortWriter(target, compiled, as_of)
    for fact, no in extractor.absent_facts.items():  # as screen.py counts them
        kind = "medications" if isinstance(no, list) else "conditions"
        writer.absent_means_no.setdefault(kind, []).append(fact)

    Read = tuple[PatientRows, str, str | None, Where]

    def patients(paths: list[Path], part: Tally) -> Iterator[Read]:
        for fp in read_fhir(paths, extractor, as_of, part):
            rows = record_rows(compiled, fp.record, fp.path, fp.problems, as_of)
            yield rows, fp.path, _deceased(fp.record, as_of), (fp.path, fp.bundle, fp.base)

    def work(run: list[Path]) -> tuple[list[Read], Tally]:
        part = Tally()
        return list(patients(run, part)), part

    # bundle files on `jobs` processes (screen_jobs.py), in file order; NDJSON after them,
    # here (a patient's lines may be in any file), as read_groups orders them
    runs, rest = split_for_jobs(files, jobs)
    read: dict[str, set[Where]] = {}  # patient id -> where it was read (file, Bundle, base)
    try:
        for done, part in fork_map(work, runs, jobs) if runs else ():
            tally.merge(part)
            for rows, path, dead, at in done:
                read.setdefault(rows.id, set()).add(at)
                writer.add(rows, path, dead)
        for rows, path, dead, at in patients(rest, tally):
            read.setdefault(rows.id, set()).add(at)
            writer.add(rows, path, dead)
        _refuse_elsewhere(tally, read)
    except BaseException:
        writer.dir.cleanup()
        raise
    writer.close()
    return writer.count


Where = tuple[str, str, str | None]  # (file, nested Bundle or "", server base or None)


class NamedElsewhere(ValueError):
    """Resources with a bound code name a patient read from another file."""


def _refuse_elsewhere(tally: Any, read: dict[str, set[Where]]) -> None:
    """`screen` makes the criteria such resources could change unknown for that patient
    (screen_elsewhere.py); a cohort table has no place for "these facts are unknown
    because of another file", so ingest refuses rather than store a patient without them.
    A patient is matched as screen_elsewhere matches it: its id, a server that may be the
    same (fhir_refs.same_server), another file or another Bundle of the same file."""
    from .fhir_refs import same_server  # FHIR reading only (screening a cohort needs none)

    found = set()
    for pid, base, path, inside, label, _ in tally.elsewhere:
        others = sorted(
            f"{file}{bundle}"
            for file, bundle, server in read.get(pid, ())
            if same_server(base, server) and (file, bundle) != (path, inside)
        )
        if others:
            found.add(f"{path}{inside}: {label} names Patient/{pid}, read from {', '.join(others)}")
    if found:
        shown = sorted(found)
        raise NamedElsewhere(
            f"{len(shown)} resource(s) name a patient read from another file or Bundle (a "
            "Bundle is read on its own, so they would be left out of that patient's facts): "
            + "; ".join(shown[:3])
            + ". Put each patient's resources in one Bundle, or screen the files with "
            "`critlang screen`, which makes what they could change unknown"
        )
