"""FHIR R4 data -> critlang patient records, through the protocol's code bindings.

Reads Bundles (collection, transaction, batch, searchset), NDJSON files (one resource a
line, several patients, resources of one type per file or mixed) and single resources.
Only what the protocol binds is extracted: an index from (code system, code) to facts is
built once per protocol, and each resource is looked at once. What comes out is a record
in critlang's native format, so the native reader's validation (units, look-back windows,
categories) applies to EHR data exactly as to hand-written records.

Resource rules (documented in docs/fhir.md):
- Patient: birthDate and gender, through `codes birth_date: fhir "Patient.birthDate"`.
- Observation: valueQuantity (UCUM `code`, else `unit`), valueInteger, valueBoolean;
  effective[x] or issued for the date; referenceRange low/high. Status entered-in-error,
  cancelled and registered are ignored.
- Condition: yes when clinicalStatus is active, recurrence or relapse (or absent); no when
  every matching condition is inactive, resolved or in remission; refuted and
  entered-in-error ones are ignored. No matching condition leaves the fact unknown.
- MedicationRequest / MedicationStatement / MedicationAdministration / Procedure: items of
  a list fact (`codes prior_therapies.capecitabine: atc "L01BC06"`) with start and end
  dates; a Procedure also makes a yes/no fact yes. Cancelled, entered-in-error, not-done
  and not-taken ones are ignored.
Malformed resources give per-fact diagnostics and never stop the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checker import CheckResult
from ..source import find_files
from ..typesys import BoolT, NumberT, QuantT
from .records import RecordProblem

SYSTEMS: dict[str, tuple[str, ...]] = {
    "loinc": ("http://loinc.org",),
    "snomed": ("http://snomed.info/sct",),
    "icd10": ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"),
    "rxnorm": ("http://www.nlm.nih.gov/research/umls/rxnorm",),
    "atc": ("http://www.whocc.no/atc",),
    "cpt": ("http://www.ama-assn.org/go/cpt",),
}
UCUM = "http://unitsofmeasure.org"
IGNORED_STATUS = {"entered-in-error", "cancelled", "not-done", "not-taken", "registered"}
ACTIVE = {"active", "recurrence", "relapse"}
INACTIVE = {"inactive", "resolved", "remission"}
MEDICATIONS = ("MedicationRequest", "MedicationStatement", "MedicationAdministration")
RELEVANT = frozenset({"Observation", "Condition", "Procedure", *MEDICATIONS})


@dataclass
class PatientData:
    """One patient's resources, as read from one or more files."""

    id: str
    path: str
    patient: dict[str, Any] | None = None
    resources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)


def _date(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) and len(value) >= 10 else None


def _codings(concept: Any) -> Iterator[tuple[str, str]]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if isinstance(codings, list):
        for c in codings:
            if isinstance(c, dict) and isinstance(c.get("code"), str):
                yield c.get("system") or "", c["code"]


def _status(resource: dict[str, Any], key: str) -> str | None:
    """A CodeableConcept status (Condition) or a plain code."""
    value = resource.get(key)
    if isinstance(value, str):
        return value
    for _, code in _codings(value):
        return code
    return None


def _period(resource: dict[str, Any], *names: str) -> tuple[str | None, str | None]:
    """(start, end) from the first of `xDateTime` / `xPeriod` present."""
    for name in names:
        if name.endswith("Period") and isinstance(resource.get(name), dict):
            p = resource[name]
            start, end = _date(p.get("start")), _date(p.get("end"))
            return start or end, end or start
        d = _date(resource.get(name))
        if d:
            return d, d
    return None, None


def _patient_ref(resource: dict[str, Any]) -> str | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            r = ref["reference"]
            return r.rsplit("/", 1)[-1].removeprefix("urn:uuid:")
    return None


class Extractor:
    """Everything a protocol needs from FHIR, prepared once per protocol."""

    def __init__(self, checked: CheckResult) -> None:
        self.c = checked
        self.index: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        self.patient_fields: dict[str, str] = {}  # fact -> Patient element
        for fact, codes in checked.bindings.items():
            for code in codes:
                self._bind(code.system, code.value, (fact, None))
        for (fact, member), codes in checked.item_bindings.items():
            for code in codes:
                self._bind(code.system, code.value, (fact, member))
        self.codes = frozenset(code for _, code in self.index)

    def _bind(self, system: str, value: str, target: tuple[str, str | None]) -> None:
        if system == "fhir":
            self.patient_fields[target[0]] = value.removeprefix("Patient.")
            return
        for uri in SYSTEMS[system]:
            self.index.setdefault((uri, value), []).append(target)

    # ------------------------------------------------------------------ reading files
    def patients(self, paths: Iterable[Path]) -> Iterator[PatientData]:
        """Patients from bundles (one file at a time) and NDJSON (grouped across files)."""
        ndjson: list[Path] = []
        for path in paths:
            if path.suffix in (".ndjson", ".jsonl"):
                ndjson.append(path)
                continue
            yield from self._bundle_file(path)
        if ndjson:
            yield from self._ndjson(ndjson)

    def _bundle_file(self, path: Path) -> Iterator[PatientData]:
        try:
            with path.open("rb") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            broken = PatientData(path.stem, str(path))
            broken.problems.append(RecordProblem(str(path), "file", f"not readable JSON: {exc}"))
            yield broken
            return
        if isinstance(data, dict) and data.get("resourceType") == "Bundle":
            entries = data.get("entry") or []
            resources = [e.get("resource") if e.__class__ is dict else e for e in entries]
        else:
            resources = [data]
        yield from self._group(resources, str(path), single_file=True)

    def _ndjson(self, paths: list[Path]) -> Iterator[PatientData]:
        resources: list[Any] = []
        for path in paths:
            with path.open(encoding="utf-8") as fh:
                for number, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        resources.append(json.loads(line))
                    except ValueError:
                        resources.append({"__broken__": f"{path.name} line {number}"})
        yield from self._group(resources, ",".join(str(p) for p in paths), single_file=False)

    def _group(self, resources: list[Any], path: str, single_file: bool) -> Iterator[PatientData]:
        by_id: dict[str, PatientData] = {}
        orphans: list[dict[str, Any]] = []
        problems: list[RecordProblem] = []
        if single_file:
            patients: list[dict[str, Any]] = []
            others: list[dict[str, Any]] = []
            broken = 0
            for r in resources:
                kind = r.get("resourceType") if r.__class__ is dict else None
                if kind is None:
                    broken += 1
                elif kind == "Patient":
                    patients.append(r)
                else:
                    others.append(r)
            if len(patients) == 1:
                # the common case, a one-patient bundle: no need to follow references
                p = patients[0]
                data = PatientData(str(p.get("id") or Path(path).stem), path, p, others)
                if broken:
                    data.problems.append(
                        RecordProblem(path, "resource", f"{broken} entries are not FHIR resources")
                    )
                yield data
                return
        for r in resources:
            if not isinstance(r, dict) or "resourceType" not in r:
                where = r.get("__broken__") if isinstance(r, dict) else None
                problems.append(
                    RecordProblem(path, "resource", f"not a FHIR resource ({where or 'skipped'})")
                )
                continue
            if r["resourceType"] == "Patient":
                pid = str(r.get("id") or f"patient-{len(by_id) + 1}")
                by_id.setdefault(pid, PatientData(pid, path)).patient = r
                continue
            ref = _patient_ref(r)
            if ref is not None:
                by_id.setdefault(ref, PatientData(ref, path)).resources.append(r)
            else:
                orphans.append(r)
        if single_file and len(by_id) == 1:
            # a one-patient bundle: unreferenced resources are that patient's
            only = next(iter(by_id.values()))
            only.resources.extend(orphans)
            orphans = []
        first = next(iter(by_id.values()), None)
        if orphans and first is not None:
            problems.append(
                RecordProblem(path, "resource", f"{len(orphans)} resource(s) name no patient")
            )
        if first is not None:
            first.problems.extend(problems)
        yield from by_id.values()

    # ------------------------------------------------------------------ extraction
    def record(self, data: PatientData) -> dict[str, Any]:
        """The patient as a native record (see docs/patients.md)."""
        facts: dict[str, Any] = {}
        problems = data.problems
        if data.patient is not None:
            for fact, element in self.patient_fields.items():
                value = data.patient.get(element)
                if value is not None:
                    facts[fact] = value
        index, codes = self.index, self.codes
        for r in data.resources:
            # the hot loop of screening: most resources carry a code bound to nothing,
            # so the bare code is tested first and everything else only on a hit
            concept = r.get("code") or r.get("medicationCodeableConcept")
            if concept.__class__ is not dict:
                continue
            codings = concept.get("coding")
            if codings.__class__ is not list:
                continue
            targets = []
            for c in codings:
                if c.__class__ is dict and c.get("code") in codes:
                    hit = index.get((c.get("system") or "", c["code"]))
                    if hit:
                        targets.extend(hit)
            if not targets:
                continue
            kind = r.get("resourceType")
            if kind not in RELEVANT:
                continue
            if kind in MEDICATIONS and "medicationCodeableConcept" not in r:
                continue
            status = _status(r, "status")
            if status in IGNORED_STATUS:
                continue
            for fact, member in targets:
                try:
                    self._extract(kind, r, fact, member, facts)
                except (TypeError, ValueError, AttributeError, KeyError) as exc:
                    problems.append(
                        RecordProblem(data.path, fact, f"{kind}/{r.get('id')} is malformed ({exc})")
                    )
        return {"id": data.id, "facts": facts}

    def _extract(
        self, kind: str, r: dict[str, Any], fact: str, member: str | None, facts: dict[str, Any]
    ) -> None:
        source = f"{kind}/{r.get('id')}"
        if member is not None:
            start, end = self._dates(kind, r)
            facts.setdefault(fact, []).append({"kind": member, "start": start, "end": end})
            return
        t = self.c.facts[fact].type
        if kind == "Observation":
            entry = self._observation(r, t, source)
            if entry is not None:
                facts.setdefault(fact, []).append(entry)
        elif kind == "Condition" and isinstance(t, BoolT):
            verification = _status(r, "verificationStatus")
            if verification in ("refuted", "entered-in-error"):
                return
            clinical = _status(r, "clinicalStatus")
            present = clinical is None or clinical in ACTIVE
            if clinical is not None and clinical not in ACTIVE | INACTIVE:
                raise ValueError(f"unknown clinicalStatus {clinical!r}")
            facts[fact] = facts.get(fact) is True or present
        elif kind == "Procedure" and isinstance(t, BoolT):
            facts[fact] = True

    def _dates(self, kind: str, r: dict[str, Any]) -> tuple[str | None, str | None]:
        if kind == "MedicationRequest":
            start = _date(r.get("authoredOn"))
            validity = (r.get("dispenseRequest") or {}).get("validityPeriod") or {}
            return start, _date(validity.get("end")) or start
        if kind == "Procedure":
            return _period(r, "performedPeriod", "performedDateTime")
        return _period(r, "effectivePeriod", "effectiveDateTime")

    def _observation(self, r: dict[str, Any], t: Any, source: str) -> dict[str, Any] | None:
        when = _period(r, "effectivePeriod", "effectiveDateTime", "effectiveInstant")[0]
        when = when or _date(r.get("issued"))
        entry: dict[str, Any] = {"source": source}
        if when:
            entry["date"] = when
        if isinstance(t, (QuantT, NumberT)):
            vq = r.get("valueQuantity")
            if vq is None and "valueInteger" in r:
                vq = {"value": r["valueInteger"]}
            if not isinstance(vq, dict):
                raise ValueError("no valueQuantity")
            if vq.get("value") is None:
                raise ValueError("valueQuantity has no value")
            entry["value"] = vq["value"]
            unit = vq.get("code") if vq.get("system") in (UCUM, None) else None
            unit = unit or vq.get("unit")
            if isinstance(t, QuantT) and unit:
                entry["unit"] = unit
            rr = self._reference_range(r, unit)
            if rr:
                entry["reference_range"] = rr
            return entry
        if isinstance(t, BoolT) and isinstance(r.get("valueBoolean"), bool):
            entry["value"] = r["valueBoolean"]
            return entry
        raise ValueError(f"no value of the kind {t.describe()}")

    def _reference_range(self, r: dict[str, Any], unit: str | None) -> dict[str, Any] | None:
        for rr in r.get("referenceRange") or ():
            if not isinstance(rr, dict):
                continue
            out: dict[str, Any] = {}
            for key in ("low", "high"):
                q = rr.get(key)
                if isinstance(q, dict) and q.get("value") is not None:
                    out[key] = q["value"]
                    out["unit"] = q.get("code") or q.get("unit") or unit
            if out:
                return out
        return None


def data_files(paths: Iterable[str]) -> tuple[list[Path], list[str]]:
    """FHIR files given as files or folders (*.json, *.ndjson, *.jsonl), in a stable order."""
    return find_files(tuple(paths), (".json", ".ndjson", ".jsonl"))
