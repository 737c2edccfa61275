"""What reading FHIR input found: files, resources, patients, and what could not be used,
in numbers that reconcile (the reading line of `critlang screen` and `ingest`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from .fhir_bundles import Elsewhere
from .fhir_decode import Resource, resource_label, unusable


@dataclass
class Tally:
    """What was read and what could not be used; the counts reconcile."""

    files: int = 0
    unusable_files: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    native_records: int = 0
    resources: int = 0  # FHIR resources read (entries and lines that are resources)
    not_resources: int = 0  # entries and lines that are not resources (reported, not counted)
    assigned: int = 0
    # Medication resources: not about one patient (no subject), read for the therapies
    # that name them (R4 MedicationRequest.medication[x])
    medications: int = 0
    patients: int = 0
    unassigned: Counter[str] = field(default_factory=Counter)  # reason -> resources
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> a few of them
    entry_problems: list[str] = field(default_factory=list)  # "file: entry 3: why"
    # resources read but not used: superseded versions, deleted ones, copies, conflicts
    # (fhir_bundles.py), reason -> resources, and a few of them
    not_used: Counter[str] = field(default_factory=Counter)
    not_used_examples: dict[str, list[str]] = field(default_factory=dict)
    nested_bundles: int = 0  # Bundles inside Bundle entries, read as Bundles of their own
    # resources with a bound code naming a patient that is not in their file (a Bundle is
    # read on its own) or export: (patient id, file, label, bound codes); the patient may
    # be in another file, whose verdict they could change (screen_elsewhere.py)
    elsewhere: list[Elsewhere] = field(default_factory=list)

    def unassign(self, reason: str, where: str) -> None:
        self.unassigned[reason] += 1
        _example(self.examples, reason, where)

    def drop(self, reason: str, where: str) -> None:
        """A resource read and counted, but not used (fhir_bundles.py says why)."""
        self.not_used[reason] += 1
        _example(self.not_used_examples, reason, where)

    def malformed(self, where: str, r: Resource) -> None:
        """A resource whose elements do not have their R4 datatypes: used only for identity."""
        self.entry_problems.append(f"{where}: {resource_label(r)} {unusable(r.malformed)}")

    def merge(self, other: Tally) -> None:
        """Adds the counts of files read apart (screen_jobs.py), `other`'s after these:
        numbers add up, lists follow in order, `examples` keep the first three in sorted
        order (as `unassign` does), whatever fields the tally holds."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name in ("examples", "not_used_examples"):
                for reason, shown in theirs.items():
                    mine[reason] = sorted([*mine.get(reason, []), *shown])[:3]
            elif isinstance(mine, Counter):
                mine.update(theirs)
            elif isinstance(mine, (int, list)):
                setattr(self, f.name, mine + theirs)
            else:
                raise TypeError(f"Tally.{f.name}: no rule to merge a {type(mine).__name__}")

    def reconciles(self) -> bool:
        used = self.assigned + self.medications
        return self.resources == used + sum(self.unassigned.values()) + sum(self.not_used.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "unusable_files": [{"path": p, "why": w} for p, w in self.unusable_files],
            "native_records": self.native_records,
            "resources": self.resources,
            "assigned": self.assigned,
            "medications": self.medications,
            "unassigned": dict(sorted(self.unassigned.items())),
            "not_used": dict(sorted(self.not_used.items())),
            "nested_bundles": self.nested_bundles,
            "not_resources": self.not_resources,
            "patients": self.patients,
        }


def _example(examples: dict[str, list[str]], reason: str, where: str) -> None:
    # the first three in sorted order, so that file order never shows
    shown = examples.setdefault(reason, [])
    if len(shown) < 3 or where < shown[-1]:
        shown.append(where)
        shown.sort()
        del shown[3:]
