"""The code systems a protocol binds in (`codes FACT: loinc "..."`), by every URI FHIR R4
data name them with.

`SYSTEMS[name] -> tuple of URIs`. R4 terminologies-systems.html gives each system one
canonical URI; R4 namingsystem-terminologies.html ("Uri" and "OID" of each) gives the
same system's OID, which C-CDA-to-FHIR converters and older interfaces write as
`urn:oid:...` (R4 datatypes.html#uri: "urn:oid:" URIs are OIDs). A code under either
name is the same code (breaker8 F7: an ICD-10-CM E11.9 under `urn:oid:2.16.840.1.113883.6.90`
was read as a system the protocol binds nothing in, so an active diabetes was "no").
"""

from __future__ import annotations

# ICD-10 (WHO) and ICD-10-CM share one binding (`icd10`): the CM codes extend the WHO
# ones and protocols cite either
SYSTEMS: dict[str, tuple[str, ...]] = {
    "loinc": ("http://loinc.org", "urn:oid:2.16.840.1.113883.6.1"),
    "snomed": ("http://snomed.info/sct", "urn:oid:2.16.840.1.113883.6.96"),
    "icd10": (
        "http://hl7.org/fhir/sid/icd-10-cm",
        "urn:oid:2.16.840.1.113883.6.90",  # ICD-10-CM
        "http://hl7.org/fhir/sid/icd-10",
        "urn:oid:2.16.840.1.113883.6.3",  # ICD-10 (WHO)
    ),
    "rxnorm": ("http://www.nlm.nih.gov/research/umls/rxnorm", "urn:oid:2.16.840.1.113883.6.88"),
    "atc": ("http://www.whocc.no/atc", "urn:oid:2.16.840.1.113883.6.73"),
    "cpt": ("http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12"),
    # NDC (realfhir7 F6: half the R4 example Medications, and many US exports, carry only
    # NDC codes)
    "ndc": ("http://hl7.org/fhir/sid/ndc", "urn:oid:2.16.840.1.113883.6.69"),
}
# LOINC by either name, or a coding with no system (the panel's own components)
LOINC_URIS = frozenset({*SYSTEMS["loinc"], None})
