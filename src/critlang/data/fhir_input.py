"""FHIR R4 files -> one group of resources per patient, with every resource accounted for.

Identity follows FHIR R4 references.html (Reference.reference) and bundle.html#references:

- `Patient/x`, `Patient/x/_history/2` (a version of patient x), an absolute URL ending in
  `Patient/x`, and inside a Bundle the `fullUrl` of a Patient entry (`urn:uuid:...` in
  transaction and batch bundles) all name a patient. In a Bundle an absolute reference
  is matched against the entries' `fullUrl`; a relative one against the base of its own
  entry's RESTful `fullUrl` (R4 bundle.html "Resolving references in Bundles"), else
  against a Patient entry of that id whose server is not known to differ: identity is
  (base, type, id) where a base is known (fhir_refs.same_server).
- A resource belongs to the patient its `subject` (or `patient`) names, never to "the
  patient of this bundle". A reference to a patient that is not in the data, a
  conditional reference (`Patient?identifier=...`), an identifier-only reference, a
  contained subject (`#p`) and a non-Patient subject (Group, Location, Device) create no
  patient: the resource is counted as unassigned, with that reason.
- Bundles are read one file at a time and are self-contained. NDJSON files (a Bulk Data
  export: one server, relative references) are grouped by patient across files, streamed
  (fhir_ndjson.py).
- Only the current state of a resource is read: versions, DELETE entries, copies and one
  id with different contents are resolved by fhir_bundles.current for every Bundle.type
  (R4 bundle.html, bdl-7, http.html#history); what is not used is counted in
  `Tally.not_used`. A Bundle in a Bundle entry is read as a Bundle of its own
  (`Tally.nested_bundles`). A resource with a bound code that names no patient one can
  find is kept as a "stray" of its file (NDJSON: export), and may be any of its
  patients' (fhir_bundles.stray_problems).
- A Patient is named by its id exactly as written (FHIR ids are case-sensitive). An id
  that is not a valid FHIR id (R4 datatypes.html#id: `[A-Za-z0-9-.]{1,64}`) is still
  that patient's name, with a per-patient diagnostic; a Patient with no id (or an empty
  one) is named by its Bundle entry's `fullUrl`, and with neither it can be named by
  nothing: counted unassigned ("a Patient with no id"), never a patient of its own.
- Medication resources are about no patient: counted in `Tally.medications`, indexed
  (fhir_refs.Medications), and their code given to the therapies whose
  `medicationReference` names them, within a bundle or across an NDJSON export.
- Files whose JSON object is a critlang patient record (`facts`, no `resourceType`) are
  read as native records (docs/patients.md).

Every resource read is either assigned to exactly one patient, a Medication
(`Tally.medications`), counted in `Tally.unassigned` under its reason, or in
`Tally.not_used` (superseded, deleted, copies);
`Tally.reconciles()` checks the sums. The order of entries in a bundle or of lines in
NDJSON never changes the groups or their order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from .fhir_bound import bound_search, kept, usable, usable_own
from .fhir_bundles import (
    KNOWN_TYPES,
    MAYBE_UNKNOWN_SERVER,
    NOT_IN_BUNDLE,
    NOT_IN_FILE,
    SUBJECT_TWICE,
    Stray,
    current,
    elsewhere,
    may_be_anyone,
)
from .fhir_contained import with_contained
from .fhir_decode import (
    NOT_USED,
    Decoded,
    Entry,
    Resource,
    bundle_type,
    decode_file,
    resource_label,
)
from .fhir_duplicates import check_read, duplicate_keys, nested_raws, patient_twice
from .fhir_refs import (
    DISPLAY_ONLY,
    Medications,
    display_only,
    id_diagnostic,
    literal,
    patient_server,
    patient_target,
    rest_base,
    same_server,
    subject_reference,
    unversioned,
)
from .fhir_status import entry_unread
from .fhir_tally import Tally
from .records import RecordProblem
from .values import exact_number

BUCKET_BYTES = 64 * 1024 * 1024  # NDJSON held in memory at a time, at most about this much
NO_ID = "a Patient with no id"


@dataclass
class PatientResources:
    """One patient's resources, as read; or a native critlang record (`native`)."""

    id: str
    path: str
    patients: list[Resource] = field(default_factory=list)  # the Patient resource(s)
    resources: list[Resource] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)
    native: dict[str, Any] | None = None
    # id() of a kept therapy -> why the Medication its medicationReference names gives
    # no code (fhir_refs.Medications.resolve); read by the extractor
    medication_problems: dict[int, str] = field(default_factory=dict)
    # resources of the same file (NDJSON: export) with a bound code that name no patient
    # one can find, and may be this one's (fhir_bundles.stray_problems); shared, not copied
    strays: list[Stray] = field(default_factory=list)
    # the server base of the patient's RESTful fullUrl, None when not known (NDJSON, urn),
    # and the nested Bundle it was read from ("" for the file's own): with the id and the
    # file, what a reference from another file or Bundle is matched against
    base: str | None = None
    bundle: str = ""


class _BundleIndex:
    """fullUrl and Patient/id -> patient key, for one bundle (R4 bundle.html#references).

    A Patient is named by `Patient/[id]` (its id as written, valid or not: see
    `fhir_refs.id_diagnostic`), else by its `fullUrl` (a transaction's `urn:uuid:`); one with
    neither can be named by nothing and is counted unassigned (NO_ID). Entries of one id
    whose RESTful fullUrls name different servers are different patients, named by
    their fullUrl (R4 bundle.html: the fullUrl of a resource on a server is
    [base]/[type]/[id]). A name two different patients claim (`Patient/[id]` then, or
    one fullUrl with two ids) resolves to neither (bdl-7). A patient's identity is
    (base, Patient, id) where its base is known (`fhir_refs.same_server`).
    """

    def __init__(self, patients: list[tuple[int, Entry]], path: str, tally: Tally) -> None:
        self.path = path
        self.keys: dict[str, set[str]] = {}  # name -> the patient keys claiming it
        self.groups: dict[str, PatientResources] = {}
        self.bases: dict[str, set[str | None]] = {}  # key -> its entries' bases
        self.duplicates: list[str] = []
        servers: dict[str, set[str]] = {}  # id -> servers its entries' fullUrls name
        for _, e in patients:
            own = patient_server(e)
            if own is not None:
                servers.setdefault(own[1], set()).add(own[0])
        for _, e in patients:
            url, r = e.fullUrl, e.resource
            assert r is not None
            url = unversioned(url) if url else None
            own = patient_server(e)
            if r.id and len(servers.get(r.id, ())) > 1 and own is not None:
                key, pid = url, r.id  # type: ignore[assignment]
            elif r.id:
                key, pid = f"Patient/{r.id}", r.id
            elif url:
                key, pid = url, url.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            else:
                tally.unassign(NO_ID, f"{path}: Patient (no id, no fullUrl)")
                continue
            tally.assigned += 1
            self.bases.setdefault(key, set()).add(own[0] if own is not None else None)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = PatientResources(pid, path)
                if r.id == "":  # json.html: no empty strings; its fullUrl names it
                    group.problems.append(
                        RecordProblem(path, "patient", f"Patient.id is empty: named {url}")
                    )
                problem = id_diagnostic(r, path)
                if problem is not None:
                    group.problems.append(problem)
                if key == url and r.id:
                    group.problems.append(
                        RecordProblem(
                            path,
                            "patient",
                            f"Patient/{r.id} is in this file from {len(servers[r.id])} "
                            f"servers: {url} screened apart",
                        )
                    )
            else:
                self.duplicates.append(key)
            duplicate_keys(r)
            group.patients.append(r)
            for name in (url, f"Patient/{r.id}" if r.id else None):
                if name:
                    self.keys.setdefault(name, set()).add(key)
        for key, group in self.groups.items():
            known = self.bases[key] - {None}
            # the server of the patient, for matching references across files
            # (screen_elsewhere.py); several (flagged above) or none: not known
            group.base = next(iter(known)) if len(known) == 1 else None

    def resolve(self, reference: str, url: str | None) -> tuple[str | None, str | None]:
        target, why = patient_target(reference)
        if target is None:
            return None, why
        if target.startswith("urn:"):
            return self._one(self.keys.get(target, set()))
        if "://" in target:
            exact = self.keys.get(target)
            if exact:
                return self._one(exact)
            # No entry has that fullUrl, so by bundle.html the reference is outside the
            # Bundle. A Patient of that id on that very server is it; one whose server is
            # not known (a urn:uuid entry) may be it or not: the resource may be that
            # patient's, so it hides their older values (a stray), never dropped as
            # "not in the data" while the older value decides (breaker8 F1)
            parts = literal(target)
            if parts is None:
                return None, NOT_IN_FILE
            claims = self.keys.get(f"{parts[1]}/{parts[2]}", set())
            same = {k for k in claims if parts[0] in self.bases[k]}
            if same:
                return self._one(same)
            if any(None in self.bases[k] for k in claims):
                return None, MAYBE_UNKNOWN_SERVER
            return None, NOT_IN_FILE
        # relative [type]/[id]: R4 bundle.html "Resolving references in Bundles": "if the
        # fullUrl for the bundle entry containing the resource is a RESTful one, extract
        # the [root] from the fullUrl, and append the reference (type/id) to it, then try
        # to resolve within the bundle"; "If no resolution is possible, then the reference
        # has no defined meaning". So another server's Patient of that id is not this
        # one. A Patient of no known server (no RESTful fullUrl), or a reference from an
        # entry of no known server, is matched by type/id (a reading beyond the spec, as
        # tools write such Bundles; docs/fhir.md)
        own = rest_base(url) if url else None
        if own is not None and f"{own}/{target}" in self.keys:
            return self._one(self.keys[f"{own}/{target}"])
        claims = self.keys.get(target, set())
        return self._one({k for k in claims if any(same_server(own, b) for b in self.bases[k])})

    @staticmethod
    def _one(keys: set[str]) -> tuple[str | None, str | None]:
        if not keys:
            return None, NOT_IN_FILE
        if len(keys) > 1:
            return None, "its subject names two different Patient entries"
        return next(iter(keys)), None


def read_groups(
    paths: Iterable[Path], tally: Tally | None = None, codes: frozenset[str] | None = None
) -> Iterator[PatientResources]:
    """Patients from bundles and single resources (per file), then NDJSON (across files).

    Yields PatientResources in a stable order: files in the order given, patients of one
    bundle by id; NDJSON patients by bucket, then id. `tally` collects the counts. With
    `codes` (the bound codes of a protocol), a patient keeps only the resources that can
    carry one (all are still counted).
    """
    tally = tally if tally is not None else Tally()
    ndjson: list[Path] = []
    for path in paths:
        if path.suffix.lower() in (".ndjson", ".jsonl"):
            ndjson.append(path)
            continue
        yield from _json_file(path, tally, codes)
    if ndjson:
        from .fhir_ndjson import ndjson_groups  # it builds on this module

        yield from ndjson_groups(ndjson, tally, codes)


def _json_file(
    path: Path, tally: Tally, codes: frozenset[str] | None
) -> Iterator[PatientResources]:
    tally.files += 1
    where = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        tally.unusable_files.append((where, f"not readable ({exc.strerror or exc})"))
        return
    yield from groups_from_bytes(data, where, tally, codes)


def groups_from_bytes(
    data: bytes, where: str, tally: Tally, codes: frozenset[str] | None = None
) -> Iterator[PatientResources]:
    """The patients of one JSON file's bytes (a Bundle, a resource, an array, a record)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte order mark: RFC 8259 section 8.1 lets it be ignored
    decoded = decode_file(data)
    if decoded.problem is not None and decoded.problem.startswith("not FHIR: the JSON object"):
        native = _native(data)
        if native is not None:
            tally.native_records += 1
            tally.patients += 1
            pid = native.get("id")
            yield PatientResources(
                str(pid) if isinstance(pid, (str, int)) else Path(where).stem, where, native=native
            )
            return
    yield from _group_bundle(decoded, where, tally, codes)


# native records keep every digit of a decimal a float cannot hold (values.exact_number)
_NATIVE = msgspec.json.Decoder(float_hook=exact_number)


def _native(data: bytes) -> dict[str, Any] | None:
    try:
        top = _NATIVE.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if isinstance(top, dict) and "resourceType" not in top and isinstance(top.get("facts"), dict):
        return top
    return None


# a JSON file that is one resource (or an array of them) and no Patient: how the R4 spec
# and most IGs publish examples. Read on its own like a Bundle (its references carry no
# server; one folder often mixes several sources, where `Patient/example` is not one
# patient), it cannot reach its patient; NDJSON lines are one export and are read together
LONE = (
    "no Patient in this file, which is read on its own (it is not a Bundle); to read such "
    'files together, give them as NDJSON lines (docs/fhir.md, "One resource a file")'
)


def _lone(entries: list[Entry]) -> str:
    """Why a JSON file of resources (not a Bundle) with no Patient is unusable: what it
    holds, the patients it names, and how to give such files (LONE)."""
    kinds = sorted({e.resource.resourceType or "?" for e in entries if e.resource is not None})
    named = set()
    for e in entries:
        r = e.resource
        ref = (r.subject if r.subject is not None else r.patient) if r is not None else None
        if ref is not None and isinstance(ref.reference, str) and ref.reference:
            named.add(ref.reference[:80])
    what = f"one {kinds[0]}" if len(entries) == 1 and kinds else f"{len(entries)} resources"
    names = sorted(named)
    said = f" naming {', '.join(names[:2])}{' ...' if len(names) > 2 else ''}" if names else ""
    return f"{what}{said}: {LONE}"


MAX_NESTING = 8  # Bundles in Bundles read this deep; deeper ones are reported, not read


def _group_bundle(
    decoded: Decoded, where: str, tally: Tally, codes: frozenset[str] | None
) -> Iterator[PatientResources]:
    for i, why in decoded.broken:
        tally.not_resources += 1
        tally.entry_problems.append(f"{where}: entry {i + 1}: {why}")
    if decoded.problem is not None:
        tally.unusable_files.append((where, decoded.problem))
        return
    entries = decoded.items
    if not entries:
        why = "an empty Bundle" if decoded.bundle else "no FHIR resources"
        tally.unusable_files.append((where, why))
        return
    strays: list[Stray] = []
    found = _bundle_patients(
        entries, decoded.type, where, "", tally, codes, strays, 0, decoded.escapes
    )
    if not found[0]:
        tally.unusable_files.append((where, found[1] if decoded.bundle else _lone(entries)))
        return
    for group in found[0]:
        # a resource of this file naming no patient one can find may be any of its
        # patients' (F12; fhir_bundles.stray_problems), nested Bundles included
        group.strays = strays
        tally.patients += 1
        yield group


def _bundle_patients(
    entries: list[Entry],
    kind: str | None,
    path: str,
    inside: str,
    tally: Tally,
    codes: frozenset[str] | None,
    strays: list[Stray],
    depth: int,
    escapes: bool = True,
) -> tuple[list[PatientResources], str]:
    """The patients of one Bundle (self-contained: bundle.html#references), then those
    of the Bundles in its entries; or none, and why. `inside` names a nested Bundle;
    `escapes`: the file's text has a backslash (fhir_bound.py)."""
    where = path + inside
    search = bound_search(codes) if codes else None
    if kind is not None and kind not in KNOWN_TYPES:
        tally.entry_problems.append(
            f"{where}: Bundle.type {kind!r} is not an R4 bundle-type: read as a collection"
        )
    # the current state of each resource: versions, deletions, copies (fhir_bundles.py)
    skip = current(entries, kind, tally.drop, lambda i: f"{where} entry {i + 1}")
    # the hot loop of reading, one pass: resources gathered by the reference naming their
    # patient (resolved once each, below); with `codes`, only resources that can matter
    # to the protocol are kept (the others are still counted and assigned)
    patients: list[tuple[int, Entry]] = []
    medications = Medications()
    by_ref: dict[tuple[str, str | None], list[Resource]] = {}
    nested: list[tuple[int, Resource]] = []
    resources = 0
    for i, e in enumerate(entries):
        r = e.resource
        if r is None:
            tally.not_resources += 1
            request = e.request
            if request is not None and isinstance(request.method, str):
                # history or transaction: a DELETE (http.html#history), dealt with above
                tally.entry_problems.append(
                    f"{where}: entry {i + 1}: {request.method} {request.url} (no resource)"
                )
            else:
                tally.entry_problems.append(f"{where}: entry {i + 1} has no resource")
            continue
        if r.resourceType == "Bundle" and r.malformed is None:
            # Bundle.entry.resource is any Resource: a Bundle in a Bundle (a document or
            # search collected in a collection) holds patients, read as its own Bundle
            if depth + 1 < MAX_NESTING:
                nested.append((i, r))
                continue
        resources += 1
        if skip and id(e) in skip:
            continue  # counted in tally.not_used by fhir_bundles.current
        if e.modifierExtension and r.malformed is None:
            # Bundle.entry is a BackboneElement: a modifierExtension on it may change what
            # the entry means (R4 extensibility.html#modifierExtension), so its resource
            # cannot be used: a per-fact diagnostic, the facts it names unknown
            r.malformed = f"{NOT_USED}{entry_unread(e)}"
        if search is not None:
            # a member given twice may hide a bound code, or name another patient: found
            # before the resource is given to anyone (fhir_duplicates.check_read)
            check_read(r, codes, search, escapes)  # type: ignore[arg-type]
        if r.malformed is not None:
            tally.malformed(where, r)
        if r.resourceType == "Bundle":
            tally.unassign(
                f"a Bundle nested more than {MAX_NESTING} deep, or malformed: not read",
                f"{where}: {resource_label(r)}",
            )
            continue
        if r.resourceType == "OperationOutcome":
            # searchset mode outcome, or a response's outcome: the server's word on the
            # request (bundle.html Bundle.entry.search.mode): perhaps an incomplete search
            tally.entry_problems.append(
                f"{where}: entry {i + 1} is an OperationOutcome: the server reports issues "
                "about this Bundle (its data may be incomplete)"
            )
        if r.resourceType == "Patient":
            patients.append((i, e))
            continue
        if r.resourceType == "Medication":
            # not about one patient: indexed for the therapies naming it (fhir_refs)
            tally.medications += 1
            medications.add(r, e.fullUrl)
            continue
        ref = r.subject if r.subject is not None else r.patient
        reference = ref.reference if ref is not None else None
        if r.dups_ and patient_twice(r):
            # `"subject"` named twice: the reference read is the last by file order, so
            # the resource may be any patient's of the file (RFC 8259 section 4; R4
            # json.html), never only the last one named (breaker7 F2)
            _unassign(tally, SUBJECT_TWICE, f"{where}: {resource_label(r)}", r, codes, strays)
            continue
        if not reference:
            _unassign(
                tally,
                subject_reference(r)[1] or "unassigned",
                f"{where}: {resource_label(r)}",
                r,
                codes,
                strays,
            )
            continue
        url = e.fullUrl
        key = (reference, url if url is not None and "://" in url else None)
        held = by_ref.get(key)
        if held is None:
            held = by_ref[key] = []
        held.append(r)
    tally.resources += resources
    index = _BundleIndex(patients, path, tally)
    for key in index.duplicates:
        index.groups[key].problems.append(
            RecordProblem(path, "patient", f"{key} appears more than once in this file")
        )
    for (reference, base), held in by_ref.items():
        target, why = index.resolve(reference, base)
        if target is None:
            if why == NOT_IN_FILE and inside:
                why = NOT_IN_BUNDLE  # it may be in the Bundle around this one: not "no data"
            # the entry's RESTful fullUrl tells apart one id on two servers (F7)
            at = f" ({base})" if base else ""
            for r in held:
                where_r = f"{where}: {resource_label(r)}{at}"
                _unassign(tally, why or "unassigned", where_r, r, codes, strays, base, path, inside)
            continue
        tally.assigned += len(held)
        group = index.groups[target]
        kept = _kept(held, codes)
        group.resources.extend(kept)
        for r in kept:
            if r.medicationReference is not None:
                why = medications.resolve(r, base)
                if why is not None:
                    group.medication_problems[id(r)] = why
    out = [index.groups[key] for key in sorted(index.groups)]
    if inside:
        for group in out:
            group.bundle = inside
            group.problems.append(
                RecordProblem(path, "patient", f"read from the Bundle at{inside}")
            )
    for i, r in nested:
        tally.nested_bundles += 1
        label = f" entry {i + 1} (Bundle/{r.id})" if r.id else f" entry {i + 1} (a Bundle)"
        entries = r.entry or []
        if codes:
            nested_raws(r, entries)  # each entry's resource text, for check_read
        inner, _ = _bundle_patients(
            entries, bundle_type(r), path, inside + label, tally, codes, strays, depth + 1
        )
        out.extend(inner)
    if not out:
        return (
            [],
            "no Patient resource with an id or a fullUrl" if patients else "no Patient resource",
        )
    return out, ""


def _unassign(
    tally: Tally,
    why: str,
    where: str,
    r: Resource,
    codes: frozenset[str] | None,
    strays: list[Stray],
    base: str | None = None,
    path: str | None = None,
    inside: str = "",
) -> None:
    """Counts r as unassigned; one with a bound code is kept as a stray of its file (it
    may be any patient's) or, when it names a patient that is not in its Bundle, for the
    check across files and Bundles (screen_elsewhere.py). `base`: the RESTful fullUrl of
    r's entry; `path` and `inside`: its file and nested Bundle."""
    display = display_only(r) if why == DISPLAY_ONLY else None
    tally.unassign(why, where + (f" (display {display!r})" if display else ""))
    if codes is None or not _usable(r, codes):
        return
    if r.contained:  # what it contains goes where it goes (fhir_contained.py)
        for one in with_contained(r, codes, usable_own):
            _stray(one, why, where, codes, strays, tally, base, path, inside)
        return
    _stray(r, why, where, codes, strays, tally, base, path, inside)


def _stray(
    r: Resource,
    why: str,
    where: str,
    codes: frozenset[str],
    strays: list[Stray],
    tally: Tally,
    base: str | None,
    path: str | None,
    inside: str,
) -> None:
    """An unassigned resource with a bound code: a stray of its file, or one naming a
    patient of another file or Bundle (_unassign)."""
    duplicate_keys(r)
    if patient_twice(r):
        # `"subject"` named twice: the reference read is the last by file order, so the
        # resource may be any patient's of the file (RFC 8259 section 4; R4 json.html)
        strays.append((where.rsplit(": ", 1)[0], r, f"{SUBJECT_TWICE} ({r.malformed})"))
    elif may_be_anyone(why):
        strays.append((where.rsplit(": ", 1)[0], r, why))
    elif why in (NOT_IN_FILE, NOT_IN_BUNDLE):
        ref, _ = subject_reference(r)
        target = patient_target(ref)[0] if ref else None
        parts = literal(target) if target and not target.startswith("urn:") else None
        if parts is None:
            return
        # the patient's identity: an absolute URL's base, else that of r's entry (R4
        # bundle.html "Resolving references in Bundles"), else not known
        server = parts[0] or rest_base(base)
        file = path if path is not None else where.rsplit(": ", 1)[0]
        found = elsewhere(parts[2], server, file, inside, r, codes)
        if found is not None:
            tally.elsewhere.append(found)


# which resources a protocol can use (fhir_bound.py); names kept for fhir_ndjson
_kept = kept
_usable = usable
