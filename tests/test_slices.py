"""The per-criterion slices of the generated evaluator (backends/python_slices.py, used
by needs.py for probing) give exactly the status the whole `evaluate` gives, criterion
by criterion, on generated patients of every protocol, conflicts included."""

from __future__ import annotations

import json

import pytest

from cohort import AS_OF, generate
from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.frontend import analyse_file
from helpers import ROOT

PROTOCOLS = sorted(p for p in (ROOT / "protocols").rglob("*.crit") if "lib" not in p.parts)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_slices_equal_evaluate(protocol) -> None:
    analysis = analyse_file(protocol)
    checked = analysis.result
    if checked is None or not analysis.ok or not checked.protocol.criteria:
        pytest.skip(f"{protocol.name}: a library or a protocol with errors")
    compiled = compile_protocol(checked)
    own = protocol.parent / "examples" / "eligible_baseline.json"
    base = json.loads(own.read_text())["facts"] if own.exists() else {}
    patients = [json.loads(x.read_text()) for x in sorted(protocol.parent.glob("examples/*.json"))]
    patients += generate(checked, 300, seed=7, base=base)
    compared = 0
    for patient in patients:
        f = compiled.normalise(read_record(checked, patient, AS_OF, str(patient.get("id"))))
        _, statuses = compiled.evaluate(f)
        for index, expected in enumerate(statuses):
            assert compiled.status(f, index) is expected, (patient["id"], index)
            compared += 1
    assert compared > 0
