"""FHIR R4 literal references, resource ids, and the Medication resources therapies name.

- `literal(reference)`: Reference.reference -> (base, type, id) for the literal forms of
  R4 references.html: relative `[type]/[id]`, absolute `[base]/[type]/[id]`, each
  optionally versioned (`/_history/[vid]`, which names a version of the same resource).
  The id is taken exactly as written: FHIR ids are case-sensitive, so `a`, `A` and `a `
  are three resources, never one.
- `patient_target(reference)`: the normalised name of the patient a subject reference
  names (`Patient/[id]`, an absolute URL, a URN), or why it names none (contained,
  conditional, not a Patient, not a literal reference).
- `id_problem(id)`: why an id is not a valid FHIR id (R4 datatypes.html#id,
  `[A-Za-z0-9\\-\\.]{1,64}`), or None; `id_diagnostic(patient, path)` the per-patient
  problem saying so (the patient is still read under that id).
- `patient_server(entry)`: (base, id) of a Patient entry whose fullUrl is RESTful.
- `rest_base(url, type, id)`: the server base of a RESTful fullUrl, or None.
- `same_server(a, b)`: whether two bases may name one server (an unknown base may).
- `Medications`: the Medication resources of one Bundle or of one NDJSON export, indexed
  by the ways a reference can name them, and `resolve`, which gives a therapy
  (MedicationRequest/-Statement/-Administration) the code of the Medication its
  `medicationReference` names. Two Medication resources under one name that disagree on
  their code make the name a conflict: every therapy naming it gets a diagnostic and no
  code, never the first or last by file order.
"""

from __future__ import annotations

import re
from typing import Any

from .fhir_decode import Coding, Concept, Entry, Resource
from .fhir_duplicates import duplicate_keys
from .records import RecordProblem

HISTORY = re.compile(r"/_history/[^/]*\Z")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # R4 datatypes.html#id
_TYPE = re.compile(r"[A-Z][A-Za-z]+")
# R4 transaction conditional references: `[type]?[search]` (relative, no id)
_CONDITIONAL = re.compile(r"[A-Z][A-Za-z]+\?")

NOT_IN_DATA = "that is not in the data"
MALFORMED = "that is malformed"


def unversioned(reference: str) -> str:
    """The reference without `/_history/[vid]` (R4 references.html: a version of the
    same resource), an absolute URL's scheme and host in lower case and without the
    scheme's default port (`http://A.org:80/fhir` is `http://a.org/fhir`: RFC 3986
    6.2.2.1 and 6.2.3), so one server spelt two ways is one server (breaker8 F9)."""
    if "/_history/" in reference:
        reference = HISTORY.sub("", reference)
    return canonical_url(reference) if "://" in reference else reference


# scheme://authority, the rest (path, query, fragment) case-sensitive (RFC 3986 6.2.2.1)
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)", re.S)
_DEFAULT_PORT = {"http": ":80", "https": ":443"}


def canonical_url(url: str) -> str:
    """An absolute URL with its scheme and host lower-cased and a default port dropped."""
    m = _URL.fullmatch(url)
    if m is None:
        return url
    scheme, authority, rest = m.group(1).lower(), m.group(2), m.group(3)
    user, at, host = authority.rpartition("@")
    host = host.lower()
    port = _DEFAULT_PORT.get(scheme)
    if port is not None and host.endswith(port):
        host = host[: -len(port)]
    return f"{scheme}://{user}{at}{host}{rest}"


def literal(reference: str) -> tuple[str, str, str] | None:
    """(base, type, id) of a literal reference, base "" when relative; None when the
    reference is not of the form `[base/][type]/[id][/_history/vid]`.

    A relative reference is exactly `[type]/[id]` (relative to the server base, R4
    references.html); an absolute URL's last two segments are its type and id.
    """
    ref = unversioned(reference)
    if "://" in ref:
        if "?" in ref or "#" in ref:
            return None  # a search or a fragment, not a resource's URL
        scheme, _, rest = ref.partition("://")
        parts = rest.split("/")
        if len(parts) < 3:
            return None
        base = scheme + "://" + "/".join(parts[:-2])
        kind, rid = parts[-2], parts[-1]
    else:
        parts = ref.split("/")
        if len(parts) != 2:
            return None
        base, (kind, rid) = "", parts
    if not rid or _TYPE.fullmatch(kind) is None:
        return None
    return base, kind, rid


def conditional(reference: str) -> bool:
    """A conditional reference (`Patient?identifier=...`), resolved only by a server."""
    return _CONDITIONAL.match(reference) is not None or ("://" in reference and "?" in reference)


def id_problem(rid: str) -> str | None:
    """Why `rid` is not a valid FHIR id (R4 datatypes.html#id), or None."""
    if _ID.fullmatch(rid) is not None:
        return None
    if not rid:
        return "is empty"
    if len(rid) > 64:
        return f"is {len(rid)} characters long (at most 64)"
    bad = sorted({c for c in rid if _ID.fullmatch(c) is None})
    return "contains " + ", ".join(repr(c) for c in bad[:5])


def patient_target(reference: str) -> tuple[str | None, str | None]:
    """Reference.reference -> (a normalised target, or None and why it is no patient).

    Targets: `Patient/<id>` (relative, absolute or versioned, R4 references.html
    "Literal references": [type]/[id], optionally /_history/[vid]) or a URN.
    """
    if reference.startswith("#"):
        # contained resources have no identity outside their container (R4 dom-3)
        return None, "its subject is a contained resource, not a patient of the cohort"
    if conditional(reference):
        return None, "its subject is a conditional reference (not resolved)"
    ref = unversioned(reference)
    if ref.startswith(("urn:uuid:", "urn:oid:")):
        return ref, None
    parts = literal(ref)
    if parts is None:
        return None, f"its subject reference {reference!r} is not of the form Patient/[id]"
    if parts[1] != "Patient":
        return None, f"its subject is a {parts[1]}, not a Patient"
    return ref, None


def id_diagnostic(r: Resource, path: str) -> RecordProblem | None:
    """A Patient read under an id that is not a valid FHIR id says so: read as written
    (references must spell it exactly), never dropped nor merged with a look-alike."""
    why = id_problem(r.id) if r.id else None  # no id or "": named otherwise, or not at all
    if why is None:
        return None
    assert r.id is not None
    shown = repr(r.id) if len(r.id) <= 80 else repr(r.id[:64]) + "..."  # bounded output
    return RecordProblem(
        path,
        "patient",
        f"Patient.id {shown} is not a valid FHIR id (R4 datatypes.html#id: "
        f"[A-Za-z0-9-.]{{1,64}}; it {why}): read as written",
    )


# R4 link-type: how the Patient holding the link relates to the one it names
LINK_TYPES = {
    "replaced-by": "this record must no longer be used: it was replaced by",
    "replaces": "this record replaces (has absorbed)",
    "refer": "this record is not the main source of information: see",
    "seealso": "the same person as",
}


def link_diagnostics(patients: list[Resource], path: str) -> list[RecordProblem]:
    """Patient.active false and Patient.link, both modifier elements (R4 Patient): the
    record is out of use, or the person has other records. Said for each patient, as
    the records are screened apart and never merged (critlang cannot see whether the
    other record is in the data, nor which values to keep)."""
    out: list[RecordProblem] = []
    for p in patients:
        name = f"Patient/{p.id}" if p.id else "Patient (no id)"
        if p.active is False:
            out.append(
                RecordProblem(
                    path,
                    "patient",
                    f"{name} has active false: the record is not in active use (R4 "
                    "Patient.active, a modifier element); screened as given",
                )
            )
        for link in p.link or ():
            other = link.other.reference if link.other is not None else None
            how = LINK_TYPES.get(link.type or "")
            if link.modifierExtension:
                # BackboneElement.modifierExtension (R4 extensibility.html): the link's
                # meaning is unknown, whatever its type says
                message = f"{name} has a Patient.link to {other} with a modifierExtension"
            elif how is None:
                message = f"{name} has a Patient.link of unknown type {link.type!r} to {other}"
            else:
                message = f"{name}: {how} {other} (Patient.link {link.type})"
            out.append(RecordProblem(path, "patient", message + "; screened apart, not merged"))
    unique = {x.message: x for x in out}  # copies of one Patient (flagged elsewhere): once
    return [unique[m] for m in sorted(unique)]


def patient_server(e: Entry) -> tuple[str, str] | None:
    """(server base, id) of a Patient entry whose fullUrl is its RESTful URL."""
    parts = literal(e.fullUrl) if e.fullUrl and "://" in e.fullUrl else None
    r = e.resource
    if parts is None or r is None or parts[1] != "Patient" or parts[2] != r.id:
        return None
    return parts[0], parts[2]


def rest_base(url: str | None, kind: str | None = None, rid: str | None = None) -> str | None:
    """The server base of a RESTful fullUrl (`[base]/[type]/[id]`, R4 bundle.html
    "Resolving references in Bundles"), or None when the url is not one (a `urn:uuid:`,
    absent); with `kind` and `rid`, only when the url names that resource."""
    if not url or "://" not in url:
        return None
    parts = literal(url)
    if parts is None or (kind is not None and (parts[1], parts[2]) != (kind, rid)):
        return None
    return parts[0]


def same_server(a: str | None, b: str | None) -> bool:
    """Whether two server bases may be one server: a resource's identity is (base, type,
    id) where its base is known (R4 Resource.id: ids are unique per server), so only two
    known bases that differ name two servers; an unknown base (no RESTful fullUrl, an
    NDJSON export, a relative reference) may be either."""
    return a is None or b is None or a == b


def _form(m: Resource) -> tuple[tuple[str, str], ...] | str:
    """A Medication's code as sorted (system, code) pairs, so that two copies that list
    the same codings in another order agree; or why it gives none."""
    duplicate_keys(m)  # `"code"` given twice would be a code chosen by file order
    if m.malformed is not None:
        return f"{MALFORMED} ({m.malformed})"
    if m.modifierExtension:
        # DomainResource.modifierExtension (extensibility.html#modifierExtension): one
        # critlang cannot read may change what the Medication is; its code is not used
        return "that has a modifierExtension critlang cannot read"
    # Medication.status is a modifier element (R4 medication.html: "changes the
    # interpretation of all descriptive attributes"); value set medication-status:
    # active | inactive | entered-in-error. inactive is a formulary state, not a fact about
    # this patient's therapy, so the code is used; entered-in-error and codes outside the
    # value set are not.
    if m.status == "entered-in-error":
        return "that is entered-in-error (Medication.status)"
    if m.status is not None and m.status not in ("active", "inactive"):
        return f"whose status {str(m.status)[:40]!r} is not a medication-status code"
    coding = m.code.coding if m.code is not None else None
    pairs = {(c.system or "", c.code) for c in coding or () if isinstance(c.code, str)}
    return tuple(sorted(pairs)) if pairs else "that has no code (Medication.code)"


class Medications:
    """The Medication resources of one Bundle or one NDJSON export.

    `add(m, url)` indexes a Medication under its `fullUrl` (R4 bundle.html#references)
    and, when that gives no server base (a `urn:uuid:`, none, NDJSON, contained), under
    `Medication/[id]`; `resolve(r, base)` sets the therapy's `medicationCodeableConcept`
    to the Medication's code, or returns why it cannot. A Medication's identity is (base,
    type, id) where its base is known: `Medication/x` from an entry on server B names
    B's x (or an x of no known server), never another server's x. In NDJSON
    (`bulk=True`, one export from one server) an absolute reference is matched by its
    `[type]/[id]`, as patients are. Memory: one small entry per Medication name.
    """

    def __init__(self, bulk: bool = False) -> None:
        self.bulk = bulk
        self.forms: dict[str, set[tuple[tuple[str, str], ...] | str]] = {}
        self.servers: dict[str, set[str]] = {}  # id -> the known bases it is given on

    def __bool__(self) -> bool:
        return bool(self.forms)

    def add(self, m: Resource, url: str | None = None) -> None:
        form = _form(m)
        names = []
        url = unversioned(url) if url else None
        base = rest_base(url, "Medication", m.id)
        if url:
            names.append(url)
        if m.id and base is None:
            names.append(f"Medication/{m.id}")
        elif m.id and base is not None:
            self.servers.setdefault(m.id, set()).add(base)
        for name in names:
            self.forms.setdefault(name, set()).add(form)

    def _lookup(self, names: list[str], shown: str) -> tuple[Concept | None, str | None]:
        known = [self.forms[n] for n in names if n in self.forms]
        if not known:
            return None, NOT_IN_DATA
        forms = set().union(*known)
        if len(forms) > 1:
            malformed = sorted(f for f in forms if isinstance(f, str) and f.startswith(MALFORMED))
            if malformed:
                return None, f"{malformed[0]} ({shown})"
            # R4 Resource.id: one resource, one content; copies that disagree are a
            # conflict, and which one a reader met first is file order
            return None, f"that the data give with {len(forms)} different codes ({shown})"
        (form,) = forms
        if isinstance(form, str):
            return None, f"{form} ({shown})"
        return Concept([Coding(system or None, code) for system, code in form]), None

    def resolve(self, r: Resource, base: str | None = None) -> str | None:
        """Gives r the code of the Medication its medicationReference names (contained
        `#id`, in this Bundle or export); returns None when done or when r has a
        medicationCodeableConcept, else why not ("that is not in the data", a conflict...).
        `base`: the fullUrl of r's Bundle entry when RESTful."""
        ref = r.medicationReference.reference if r.medicationReference else None
        if r.medicationCodeableConcept is not None or r.medicationReference is None:
            return None
        if not ref:
            return NOT_IN_DATA  # identifier-only: no Medication resource to read
        if ref.startswith("#"):
            # a contained Medication: named by its local id within r alone (R4
            # references.html#contained, dom-3); said so, since no Medication resource
            # of the data has that name
            inner = Medications()
            for c in r.contained or ():
                if c.resourceType == "Medication":
                    inner.add(c)
            shown = f"contained in the resource as {ref[:65]}"
            concept, why = inner._lookup([f"Medication/{ref[1:]}"], shown)
            if concept is not None:
                r.medicationCodeableConcept = concept
            return why
        if conditional(ref):
            return NOT_IN_DATA
        name = unversioned(ref)
        parts = literal(name) if not name.startswith(("urn:uuid:", "urn:oid:")) else None
        if parts is not None and parts[1] != "Medication":
            return f"that is a {parts[1]}, not a Medication ({name})"
        names = [name]
        if self.bulk:
            if parts is None:
                return NOT_IN_DATA  # a urn outside a Bundle names nothing of the export
            name = f"Medication/{parts[2]}"
            names = [name]
        elif parts is not None and not parts[0]:
            # relative [type]/[id]: against the base of the entry's RESTful fullUrl (R4
            # bundle.html "Resolving references in Bundles": "extract the [root] from the
            # fullUrl, and append the reference (type/id) to it"); another server's
            # Medication of that id is not this one. From an entry of no known server,
            # any server's (two that disagree are a conflict).
            own = rest_base(base)
            servers = [own] if own is not None else sorted(self.servers.get(parts[2], ()))
            names = [f"{b}/{name}" for b in servers if b is not None] + [name]
        concept, why = self._lookup(names, name)
        if concept is not None:
            r.medicationCodeableConcept = concept
        return why


# resource types that describe one patient (R4 compartment "Patient" members critlang reads
# or counts); anything else in a bundle (Organization, Practitioner...) is not patient data
PATIENT_DATA = frozenset(
    {
        "Observation",
        "Condition",
        "Procedure",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationAdministration",
        "MedicationDispense",
        "Encounter",
        "AllergyIntolerance",
        "Immunization",
        "DiagnosticReport",
        "CarePlan",
        "CareTeam",
        "Goal",
        "ImagingStudy",
        "Claim",
        "ExplanationOfBenefit",
        "DocumentReference",
        "Device",
        "ServiceRequest",
        "Specimen",
        "FamilyMemberHistory",
    }
)


def subject_reference(r: Resource) -> tuple[str | None, str | None]:
    """The reference naming r's patient, or (None, why there is none)."""
    for ref in (r.subject, r.patient):
        if ref is None:
            continue
        if isinstance(ref.reference, str) and ref.reference:
            return ref.reference, None
        if ref.identifier is not None:
            return None, "its subject is an identifier-only reference (no Patient resource)"
        if _display(ref):
            return None, DISPLAY_ONLY
        return None, "its subject reference is empty"
    if r.resourceType in PATIENT_DATA:
        return None, "it names no patient (no subject)"
    return None, f"not patient data ({r.resourceType})"


# R4 Reference.display: "Text alternative for the resource": a subject given only by its
# text names someone, but no resource one can resolve
DISPLAY_ONLY = "its subject is display-only (text, no reference to a Patient)"


def _display(ref: Any) -> str | None:
    text = getattr(ref, "display", None)
    return text[:60] if isinstance(text, str) and text.strip() else None


def display_only(r: Resource) -> str | None:
    for ref in (r.subject, r.patient):
        if ref is not None:
            return _display(ref)
    return None
