"""FHIR R4 NDJSON (a Bulk Data export: one server, relative references) -> one group of
resources per patient, across files, streamed: lines are bucketed by patient key into
temporary files (when the input is larger than `fhir_input.BUCKET_BYTES`) and each
bucket is grouped on its own, so memory stays flat in cohort size. The identity and
counting rules are fhir_input.py's; one id given twice in the export is resolved by
fhir_bundles.current (copies, versions, conflicts). An unassigned line is reported by
its file and line number.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec

from . import fhir_input
from .fhir_bound import bound_codes_in, bound_search
from .fhir_bundles import NOT_IN_FILE, SUBJECT_TWICE, Stray, current, elsewhere
from .fhir_decode import Entry, Resource, bundle_type, decode_line, nested_raws
from .fhir_duplicates import check_read, duplicate_keys, patient_twice
from .fhir_input import (
    NO_ID,
    PatientResources,
    Tally,
    _bundle_patients,
    _kept,
    _label,
    _unassign,
    _usable,
)
from .fhir_refs import Medications, id_diagnostic, patient_target, subject_reference
from .records import RecordProblem


def _ndjson_key(r: Resource) -> tuple[str | None, str | None]:
    if r.resourceType == "Patient":
        # the id as written, valid or not (id_diagnostic); "" is no id (json.html)
        return (f"Patient/{r.id}" if r.id else None), (None if r.id else NO_ID)
    reference, why = subject_reference(r)
    if reference is None:
        return None, why
    target, why = patient_target(reference)
    if target is None:
        return None, why
    if target.startswith("urn:"):
        return None, "its subject is a urn reference outside a Bundle (not resolvable)"
    # one export, one server: an absolute URL's [type]/[id] is the patient's key (the
    # target is a literal reference without its version: its last segment is the id)
    return "Patient/" + target.rsplit("/", 1)[1], None


def ndjson_groups(
    paths: list[Path], tally: Tally, codes: frozenset[str] | None
) -> Iterator[PatientResources]:
    sizes = []
    for p in paths:
        try:
            sizes.append(p.stat().st_size)
        except OSError:
            sizes.append(0)
    buckets = 1 + sum(sizes) // fhir_input.BUCKET_BYTES
    # every line is read before any patient is grouped, so a therapy finds its Medication
    # whichever file or line comes first
    medications = Medications(bulk=True)
    # resources of the export with a bound code that name no patient one can find: any
    # patient's (fhir_bundles.stray_problems); complete before the first patient is grouped
    strays: list[Stray] = []
    bundles: list[PatientResources] = []  # patients of Bundles given as lines
    lines = _ndjson_lines(paths, tally, medications, codes, strays, bundles)
    if buckets == 1:
        held: list[tuple[str, str, Resource]] = []
        for key, where, _, r in lines:
            held.append((key, where, r))
        yield from _group_lines(held, tally, codes, medications, strays)
        yield from _bundle_lines(bundles, tally, strays)
        return
    with tempfile.TemporaryDirectory(prefix="critlang-ndjson-") as tmp:
        files = [open(os.path.join(tmp, f"{b}.ndjson"), "wb") for b in range(buckets)]  # noqa: SIM115
        try:
            for key, where, line, _ in lines:
                b = zlib.crc32(key.encode()) % buckets
                files[b].write(
                    msgspec.json.encode([key, where]) + b"\t" + line.rstrip(b"\r\n") + b"\n"
                )
        finally:
            for fh in files:
                fh.close()
        for b in range(buckets):
            bucket: list[tuple[str, str, Resource]] = []
            search = bound_search(codes) if codes else None
            with open(os.path.join(tmp, f"{b}.ndjson"), "rb") as fh:
                for raw in fh:
                    head, _, line = raw.partition(b"\t")
                    key, where = msgspec.json.decode(head)
                    r, _ = decode_line(line)
                    if r is not None:
                        if search is not None:  # decoded again: examined again
                            check_read(r, codes, search, b"\\" in line)  # type: ignore[arg-type]
                        bucket.append((key, where, r))
            yield from _group_lines(bucket, tally, codes, medications, strays)
    yield from _bundle_lines(bundles, tally, strays)


def _bundle_lines(
    bundles: list[PatientResources], tally: Tally, strays: list[Stray]
) -> Iterator[PatientResources]:
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
) -> Iterator[tuple[str, str, bytes, Resource]]:
    search = bound_search(codes) if codes else None
    for path in paths:
        tally.files += 1
        usable = 0
        try:
            fh = path.open("rb")
        except OSError as exc:
            tally.unusable_files.append((str(path), f"not readable ({exc.strerror or exc})"))
            continue
        with fh:
            for number, line in enumerate(fh, 1):
                if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                    # a UTF-8 byte order mark, as Windows tools write: RFC 8259 section
                    # 8.1 lets a parser ignore it (breaker7 F17: the line was lost)
                    line = line[3:]
                if not line.strip():
                    continue
                where = f"{path} line {number}"
                r, why = decode_line(line)
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
                    _unassign(tally, SUBJECT_TWICE, f"{where}: {_label(r)}", r, codes, strays)
                    continue
                key, why = _ndjson_key(r)
                if key is None:
                    _unassign(tally, why or "unassigned", f"{where}: {_label(r)}", r, codes, strays)
                    continue
                yield key, where, line, r
        if not usable:
            tally.unusable_files.append((str(path), "no FHIR resources"))


def _unreadable_line(
    line: bytes, where: str, why: str, codes: frozenset[str], strays: list[Stray]
) -> None:
    """An NDJSON line that is not a resource one can read (truncated, not JSON) may be any
    patient's of its export: when its text names a bound code (fhir_bound.bound_codes_in)
    it is a stray for those facts, like a resource naming no patient (breaker7 F17)."""
    found = bound_codes_in(line, codes)
    if found:
        r = Resource(hidden_=tuple(sorted(found)))  # no resourceType: fhir_bundles._label
        strays.append((where, r, why))


def _group_lines(
    lines: list[tuple[str, str, Resource]],
    tally: Tally,
    codes: frozenset[str] | None,
    medications: Medications,
    strays: list[Stray],
) -> Iterator[PatientResources]:
    groups: dict[str, PatientResources] = {}
    held: dict[str, list[tuple[str, Entry]]] = {}  # key -> (file and line, resource)
    for key, where, r in lines:
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
            held.setdefault(key, []).append((where, Entry(None, r)))
    for key in sorted(groups):
        group = groups[key]
        items = held.get(key, [])
        if not group.patients:
            for where, e in items:
                tally.unassign(NOT_IN_FILE, f"{where}: {_label(e.resource)}")  # type: ignore[arg-type]
                if codes is not None and e.resource is not None and _usable(e.resource, codes):
                    pid, file = key.split("/", 1)[1], where.rsplit(" line ", 1)[0]
                    found = elsewhere(pid, None, file, "", e.resource, codes)
                    if found is not None:
                        tally.elsewhere.append(found)
            continue
        # one export is one server's current data: one id twice is a copy, versions,
        # or a conflict (fhir_bundles.current; R4 Resource.id, bdl-7 by analogy)
        entries = [e for _, e in items]
        wheres = [w for w, _ in items]
        skip = current(entries, None, tally.drop, wheres.__getitem__) if len(items) > 1 else ()
        group.resources = [e.resource for e in entries if id(e) not in skip]  # type: ignore[misc]
        tally.assigned += len(group.patients) + len(group.resources)
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
