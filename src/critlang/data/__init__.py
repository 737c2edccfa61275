"""Reading patient data: native records (`records`) and FHIR R4 (`fhir`)."""
