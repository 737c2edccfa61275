"""Every decided criterion explains itself; every unknown one names what it needs.

Over every protocol in protocols/: its example patients and generated ones (tests/cohort.py),
each also with values known only as intervals and conflicts (censored lab values, partial
dates, ongoing ends, two values of one fact on one day: cohort.with_intervals). For each
criterion met, not met or not applicable, the explanation is not empty (the explainer
followed the rule to the compiled evaluator's status); for each unknown one, at least one
missing fact is named; an undetermined verdict names at least one.

With `CI` set the sample is fixed (seed 7); otherwise a new seed each run, shown on failure.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from cohort import AS_OF, generate, with_intervals
from critlang.backends.python import compile_protocol
from critlang.data.records import read_record
from critlang.evaluate import Evaluator
from critlang.frontend import analyse_file
from helpers import ROOT

PROTOCOLS = sorted(p for p in (ROOT / "protocols").rglob("*.crit") if "lib" not in p.parts)
SEED = 7 if os.environ.get("CI") else random.randrange(1_000_000)
GENERATED = 80


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_decided_criterion_is_explained(protocol) -> None:
    analysis = analyse_file(protocol)
    checked = analysis.result
    if checked is None or not analysis.ok or not checked.protocol.criteria:
        pytest.skip(f"{protocol.name}: a library or a protocol with errors")
    evaluator = Evaluator(compile_protocol(checked))
    own = protocol.parent / "examples" / "eligible_baseline.json"
    base = json.loads(own.read_text())["facts"] if own.exists() else {}
    patients = [json.loads(x.read_text()) for x in sorted(protocol.parent.glob("examples/*.json"))]
    patients += generate(checked, GENERATED, seed=SEED, base=base)
    patients += [with_intervals(p, checked, SEED + i) for i, p in enumerate(patients)]
    kinds = {"met": 0, "not met": 0, "not applicable": 0, "unknown": 0}
    for i, patient in enumerate(patients):
        where = f"seed {SEED}, patient {i} ({patient.get('id')})"
        record = read_record(checked, patient, AS_OF, str(patient.get("id")))
        e = evaluator.evaluate(record)
        for c in e.criteria:
            kinds[c.status] += 1
            if c.status == "unknown":
                assert c.missing, f"{where}: {c.id} unknown names nothing missing"
            else:
                assert c.explanation, f"{where}: {c.id} {c.status} has no explanation"
                assert all(line.strip() for line in c.explanation), (where, c.id)
        if e.verdict == "undetermined":
            assert e.missing, f"{where}: undetermined names nothing missing"
    assert kinds["met"] and kinds["not met"] and kinds["unknown"], kinds
