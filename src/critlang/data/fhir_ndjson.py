"""FHIR R4 NDJSON (a Bulk Data export: one server, relative references) -> one group of
resources per patient, across files, streamed: lines are bucketed by patient key into
temporary files (when the input is larger than `fhir_input.BUCKET_BYTES`) and each
bucket is grouped on its own, so memory stays flat in cohort size. The identity and
counting rules are fhir_input.py's; one id given twice in the export is resolved by
fhir_bundles.current (copies, versions, conflicts). An unassigned line is reported by
its file and line number.

Most lines of an export are about nothing a protocol reads (an Observation of an unbound
code): such a line is decoded (typed, so a malformed one is still found and reported) and
then held only as what counting it needs, a `Stub` (its patient, type, id and place),
not as a resource: no copy of its text, no second decoding. A stub whose type and id
another line of its patient also has is read again from its file and resolved like any
line (fhir_bundles.current), so the counts and the versions rule are those of the full
path (docs/scale.md, "Ingest speed").
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from . import fhir_input
from .fhir_bound import bound_codes_in, bound_search
from .fhir_bundles import NOT_IN_FILE, SUBJECT_TWICE, Stray, current, elsewhere
from .fhir_decode import (
    _LINE,
    Entry,
    Resource,
    bundle_type,
    decode_line,
    resource_label,
)
from .fhir_duplicates import check_read, duplicate_keys, nested_raws, patient_twice
from .fhir_input import (
    NO_ID,
    PatientResources,
    Tally,
    _bundle_patients,
    _kept,
    _unassign,
    _usable,
)
from .fhir_refs import Medications, id_diagnostic, patient_target, subject_reference
from .fhir_status import YES_NO_KINDS
from .records import RecordProblem

# patient key, resourceType, id, file (index into the paths), line number, byte offset
Stub = tuple[str, str, str | None, int, int, int]
# patient key, "file line N", file index, line number, the resource
Line = tuple[str, str, int, int, Resource]
# types read whatever their codes: the patient, the Medications therapies name, Bundles
# given as lines (read as Bundles of their own)
_WHOLE = frozenset({"Patient", "Medication", "Bundle"})
STUB_SPILL = 400_000  # stubs held in memory (about 100 MB) before they go to their buckets
_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


def _reference_key(reference: str) -> tuple[str | None, str | None]:
    """A subject's Reference.reference -> (the patient key, or None and why)."""
    target, why = patient_target(reference)
    if target is None:
        return None, why
    if target.startswith("urn:"):
        return None, "its subject is a urn reference outside a Bundle (not resolvable)"
    # one export, one server: an absolute URL's [type]/[id] is the patient's key (the
    # target is a literal reference without its version: its last segment is the id)
    return "Patient/" + target.rsplit("/", 1)[1], None


def _ndjson_key(r: Resource) -> tuple[str | None, str | None]:
    if r.resourceType == "Patient":
        # the id as written, valid or not (id_diagnostic); "" is no id (json.html)
        return (f"Patient/{r.id}" if r.id else None), (None if r.id else NO_ID)
    reference, why = subject_reference(r)
    if reference is None:
        return None, why
    return _reference_key(reference)


class _Buckets:
    """Lines and stubs by bucket (zlib.crc32 of the patient key, over as many buckets as
    the input's size asks for), held in memory until their text passes
    `fhir_input.BUCKET_BYTES` (or STUB_SPILL stubs): then written to one temporary file
    per bucket, so memory stays flat in the cohort size."""

    def __init__(self, count: int, folder: str) -> None:
        self.count = count
        self.folder = folder
        self.lines: list[list[tuple[Line, bytes]]] = [[] for _ in range(count)]
        self.stubs: list[list[Stub]] = [[] for _ in range(count)]
        self.bytes = 0
        self.held = 0
        self.files: list[IO[bytes]] = []
        self.spills: list[IO[bytes]] = []
        # examines a line decoded again from its bucket file as at reading (check_read)
        self.check: Callable[[Resource, bytes], None] | None = None

    def bucket_of(self, key: str | None) -> int:
        return zlib.crc32(key.encode()) % self.count if self.count > 1 and key else 0

    def _open(self) -> None:
        if not self.files:
            for b in range(self.count):
                for kind, out in (("ndjson", self.files), ("stubs", self.spills)):
                    out.append(open(os.path.join(self.folder, f"{b}.{kind}"), "w+b"))  # noqa: SIM115

    def line(self, item: Line, line: bytes) -> None:
        self.lines[self.bucket_of(item[0])].append((item, line))
        self.bytes += len(line)
        if self.bytes > fhir_input.BUCKET_BYTES and self.count > 1:
            self._open()
            for b, held in enumerate(self.lines):
                out = self.files[b]
                for (key, where, fi, number, _), text in held:
                    head = msgspec.json.encode([key, where, fi, number])
                    out.write(head + b"\t" + text.rstrip(b"\r\n") + b"\n")
                held.clear()
            self.bytes = 0

    def spill(self) -> None:
        """Writes the stubs held to their buckets' files (one JSON array a bucket)."""
        if self.count > 1:
            self._open()
            for b, held in enumerate(self.stubs):
                if held:
                    self.spills[b].write(msgspec.json.encode(held) + b"\n")
                    held.clear()
        self.held = 0

    def bucket(self, b: int) -> tuple[list[Line], list[Stub]]:
        """The lines (those written out decoded again) and stubs of bucket b, in the
        order they were read."""
        lines: list[Line] = []
        stubs: list[Stub] = []
        if self.files:
            fh = self.files[b]
            fh.seek(0)
            for raw in fh:
                head, _, line = raw.partition(b"\t")
                key, where, fi, number = msgspec.json.decode(head)
                r, _ = decode_line(line)
                if r is not None:
                    if self.check is not None:
                        self.check(r, line)
                    lines.append((key, where, fi, number, r))
            spill = self.spills[b]
            spill.seek(0)
            for raw in spill:
                stubs += map(tuple, msgspec.json.decode(raw))  # type: ignore[arg-type]
        lines += (item for item, _ in self.lines[b])
        stubs += self.stubs[b]
        self.lines[b] = []
        self.stubs[b] = []
        return lines, stubs

    def close(self) -> None:
        for fh in (*self.files, *self.spills):
            fh.close()


def _counted_only(r: Resource, codes: frozenset[str]) -> bool:
    """Whether r is only counted (fhir_input._usable is false): the usual case, an
    Observation of an unbound code with no components, told without the call."""
    concept = r.code
    if (
        concept is not None
        and concept.coding
        and not r.component_
        and r.medicationCodeableConcept is None
        and r.medicationReference is None
        and r.malformed is None
        and r.contained is None
    ):
        for c in concept.coding:
            if c.code in codes:
                return False
        if r.resourceType in YES_NO_KINDS:  # one coded only in unbound systems is kept
            return not _usable(r, codes)
        return True  # what _usable answers for it
    return not _usable(r, codes)


def ndjson_groups(
    paths: list[Path], tally: Tally, codes: frozenset[str] | None
) -> Iterator[PatientResources]:
    sizes = []
    for p in paths:
        try:
            sizes.append(p.stat().st_size)
        except OSError:
            sizes.append(0)
    count = 1 + sum(sizes) // fhir_input.BUCKET_BYTES
    # every line is read before any patient is grouped, so a therapy finds its Medication
    # whichever file or line comes first
    medications = Medications(bulk=True)
    # resources of the export with a bound code that name no patient one can find: any
    # patient's (fhir_bundles.stray_problems); complete before the first patient is grouped
    strays: list[Stray] = []
    bundles: list[PatientResources] = []  # patients of Bundles given as lines
    with tempfile.TemporaryDirectory(prefix="critlang-ndjson-") as tmp:
        held = _Buckets(count, tmp)
        if codes:
            search = bound_search(codes)
            held.check = lambda r, line: check_read(r, codes, search, b"\\" in line)
        try:
            _ndjson_lines(paths, tally, medications, codes, strays, bundles, held)
            for b in range(count):
                lines, stubs = held.bucket(b)
                yield from _group_lines(lines, stubs, paths, tally, codes, medications, strays)
        finally:
            held.close()
    for group in bundles:
        group.strays = strays
        tally.patients += 1
        yield group


def _ndjson_lines(
    paths: list[Path],
    tally: Tally,
    medications: Medications,
    codes: frozenset[str] | None,
    strays: list[Stray],
    bundles: list[PatientResources],
    held: _Buckets,
) -> None:
    # Reference.reference -> (patient key or None, why not, bucket): most lines of a
    # patient name it alike
    keys: dict[str, tuple[str | None, str | None, int]] = {}
    stubs = held.stubs
    search = bound_search(codes) if codes else None
    for fi, path in enumerate(paths):
        tally.files += 1
        usable = 0
        try:
            fh = path.open("rb")
        except OSError as exc:
            tally.unusable_files.append((str(path), f"not readable ({exc.strerror or exc})"))
            continue
        with fh:
            offset = number = 0
            for line in fh:
                number += 1
                at = offset
                offset += len(line)
                if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                    # a UTF-8 byte order mark, as Windows tools write: RFC 8259 section
                    # 8.1 lets a parser ignore it (breaker7 F17: the line was lost)
                    line = line[3:]
                try:
                    r: Resource | None = _LINE.decode(line)
                except _DECODE_ERRORS:
                    if not line.strip():
                        continue
                    r = None
                if r is not None and r.resourceType is not None:
                    kind = r.resourceType
                    if (
                        codes is not None
                        and kind not in _WHOLE
                        and _counted_only(r, codes)
                        and not _hides(r, line, codes, search)  # type: ignore[arg-type]
                    ):
                        # read only to be counted: held as a stub (module docstring)
                        usable += 1
                        tally.resources += 1
                        ref = r.subject if r.subject is not None else r.patient
                        reference = ref.reference if ref is not None else None
                        if reference.__class__ is str and reference:
                            got = keys.get(reference)  # type: ignore[arg-type]
                            if got is None:
                                if len(keys) > 100_000:
                                    keys.clear()
                                key, why = _reference_key(reference)  # type: ignore[arg-type]
                                got = keys[reference] = (key, why, held.bucket_of(key))  # type: ignore[index]
                            key, why, b = got
                        else:
                            key, why = _ndjson_key(r)
                            b = held.bucket_of(key)
                        if key is None:
                            where = f"{path} line {number}"
                            label = f"{where}: {resource_label(r)}"
                            _unassign(tally, why or "unassigned", label, r, codes, strays)
                            continue
                        stubs[b].append((key, kind, r.id, fi, number, at))
                        held.held += 1
                        if held.held >= STUB_SPILL:
                            held.spill()
                        continue
                    if not r.raw_:
                        r.raw_ = msgspec.Raw(line)
                    why = None
                else:
                    r, why = decode_line(line)
                where = f"{path} line {number}"
                if r is None:
                    tally.not_resources += 1
                    tally.entry_problems.append(f"{where}: {why}")
                    if codes:
                        _unreadable_line(line, where, why or "", codes, strays)
                    continue
                usable += 1
                if r.resourceType == "Bundle" and r.malformed is None:
                    # a Bundle as a line: read as a Bundle of its own (self-contained)
                    tally.nested_bundles += 1
                    if codes:
                        nested_raws(r, r.entry or [])
                    found, _ = _bundle_patients(
                        r.entry or [],
                        bundle_type(r),
                        str(path),
                        f" line {number}",
                        tally,
                        codes,
                        strays,
                        1,
                    )
                    bundles.extend(found)
                    continue
                tally.resources += 1
                if search is not None:
                    # a member given twice may hide a bound code, or name another patient
                    check_read(r, codes, search, b"\\" in line)  # type: ignore[arg-type]
                if r.malformed is not None:
                    tally.malformed(where, r)
                if r.resourceType == "Medication":
                    # not about one patient (no subject): indexed for the therapies
                    # naming it, in any file of the export (Bulk Data Medication.ndjson)
                    tally.medications += 1
                    medications.add(r)
                    continue
                if r.dups_ and patient_twice(r):
                    # its subject named twice: it may be any patient's of the export
                    label = f"{where}: {resource_label(r)}"
                    _unassign(tally, SUBJECT_TWICE, label, r, codes, strays)
                    continue
                ref = r.subject if r.subject is not None else r.patient
                reference = ref.reference if ref is not None else None
                if r.resourceType != "Patient" and reference.__class__ is str and reference:
                    got = keys.get(reference)  # type: ignore[arg-type]
                    key, why = got[:2] if got is not None else _reference_key(reference)  # type: ignore[arg-type]
                else:
                    key, why = _ndjson_key(r)
                if key is None:
                    _unassign(
                        tally,
                        why or "unassigned",
                        f"{where}: {resource_label(r)}",
                        r,
                        codes,
                        strays,
                    )
                    continue
                held.line((key, where, fi, number, r), line)
        if not usable:
            tally.unusable_files.append((str(path), "no FHIR resources"))


def _hides(r: Resource, line: bytes, codes: frozenset[str], search: Any) -> bool:
    """A line of no bound code whose text names one (fhir_bound) or has an escape: it is
    examined, and one that names a member twice with a copy naming a bound code is read
    in full, never held as a stub (fhir_duplicates.check_read)."""
    if search(line) is None and b"\\" not in line:
        return False
    r.raw_ = msgspec.Raw(line)
    check_read(r, codes, search, True)
    return bool(r.hidden_)


def _unreadable_line(
    line: bytes, where: str, why: str, codes: frozenset[str], strays: list[Stray]
) -> None:
    """An NDJSON line that is not a resource one can read (truncated, not JSON) may be any
    patient's of its export: when its text names a bound code (fhir_bound.bound_codes_in)
    it is a stray for those facts, like a resource naming no patient (breaker7 F17)."""
    found = bound_codes_in(line, codes)
    if found:
        r = Resource(hidden_=tuple(sorted(found)))  # no type: fhir_decode.resource_label
        strays.append((where, r, why))


def _again(paths: list[Path], stub: Stub) -> tuple[str, Entry]:
    """A stub's line read again from its file: the resource, for fhir_bundles.current."""
    _, _, _, fi, number, at = stub
    with paths[fi].open("rb") as fh:
        fh.seek(at)
        line = fh.readline()
    if number == 1 and line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    r, _ = decode_line(line)
    return f"{paths[fi]} line {number}", Entry(None, r)


def _group_lines(
    lines: list[Line],
    stubs: list[Stub],
    paths: list[Path],
    tally: Tally,
    codes: frozenset[str] | None,
    medications: Medications,
    strays: list[Stray],
) -> Iterator[PatientResources]:
    groups: dict[str, PatientResources] = {}
    held: dict[
        str, list[tuple[tuple[int, int], str, Entry]]
    ] = {}  # key -> (place, where, resource)
    counted: dict[str, list[Stub]] = {}  # key -> its stubs
    for key, where, fi, number, r in lines:
        group = groups.get(key)
        if group is None:
            group = groups[key] = PatientResources(key.split("/", 1)[1], "")
        if r.resourceType == "Patient":
            duplicate_keys(r)
            group.patients.append(r)
            file = where.rsplit(" line ", 1)[0]
            if not group.path or file < group.path:
                group.path = file
        else:
            held.setdefault(key, []).append(((fi, number), where, Entry(None, r)))
    for stub in stubs:
        key = stub[0]
        if key not in groups:
            groups[key] = PatientResources(key.split("/", 1)[1], "")
        mine = counted.get(key)
        if mine is None:
            counted[key] = [stub]
        else:
            mine.append(stub)
    for key in sorted(groups):
        group = groups[key]
        items = held.get(key, [])
        mine = counted.get(key, [])
        if not group.patients:
            for _, where, e in items:
                tally.unassign(NOT_IN_FILE, f"{where}: {resource_label(e.resource)}")  # type: ignore[arg-type]
                if codes is not None and e.resource is not None and _usable(e.resource, codes):
                    pid, file = key.split("/", 1)[1], where.rsplit(" line ", 1)[0]
                    for one in _kept([e.resource], codes):  # with what it contains
                        found = elsewhere(pid, None, file, "", one, codes)
                        if found is not None:
                            tally.elsewhere.append(found)
            for _, kind, rid, fi, number, _ in mine:
                label = f"{kind}/{rid}" if rid else f"{kind} (no id)"
                tally.unassign(NOT_IN_FILE, f"{paths[fi]} line {number}: {label}")
            continue
        if mine:
            # a stub whose type and id another line of this patient has is resolved with
            # it as a line (fhir_bundles.current: copies, versions, conflicts)
            named = [(e.resource.resourceType, e.resource.id) for _, _, e in items]  # type: ignore[union-attr]
            named += [(s[1], s[2]) for s in mine]
            if len(set(named)) < len(named):
                seen: dict[tuple[str | None, str | None], int] = {}
                for n in named:
                    seen[n] = seen.get(n, 0) + 1
                again = [s for s in mine if s[2] and seen[(s[1], s[2])] > 1]
                if again:
                    items = sorted(
                        items + [((s[3], s[4]), *_again(paths, s)) for s in again],
                        key=lambda item: item[0],
                    )
                    mine = [s for s in mine if not (s[2] and seen[(s[1], s[2])] > 1)]
        # one export is one server's current data: one id twice is a copy, versions,
        # or a conflict (fhir_bundles.current; R4 Resource.id, bdl-7 by analogy)
        entries = [e for _, _, e in items]
        wheres = [w for _, w, _ in items]
        skip = current(entries, None, tally.drop, wheres.__getitem__) if len(items) > 1 else ()
        group.resources = [e.resource for e in entries if id(e) not in skip]  # type: ignore[misc]
        tally.assigned += len(group.patients) + len(group.resources) + len(mine)
        if len(group.patients) > 1:
            group.problems.append(
                RecordProblem(group.path, "patient", f"{key} appears more than once in the data")
            )
        problem = id_diagnostic(group.patients[0], group.path)
        if problem is not None:
            group.problems.append(problem)
        tally.patients += 1
        group.resources = _kept(group.resources, codes)
        group.strays = strays
        for r in group.resources:
            if r.medicationReference is not None:
                why = medications.resolve(r)
                if why is not None:
                    group.medication_problems[id(r)] = why
        yield group
