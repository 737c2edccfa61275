"""Generated protocols for lint/diff timing and property tests.

`generate(n, seed)` writes a protocol of n criteria over common laboratory quantities,
yes/no and category facts, a dated list and an age, with thresholds inside each fact's
plausible range (src/critlang/semantics/plausible.py): inclusions a typical patient meets,
exclusions a typical patient does not, so the protocol can be satisfied and every check
of `critlang lint` runs. The same (n, seed) gives the same text.
"""

from __future__ import annotations

import random

# name, declaration, typical value, unit as written
QUANTITIES = [
    ("hemoglobin", "quantity g/dL", 13.5, "g/dL"),
    ("platelets", "quantity x10^9/L", 250, "x10^9/L"),
    ("wbc", "quantity x10^9/L", 7, "x10^9/L"),
    ("serum_creatinine", "quantity mg/dL", 0.9, "mg/dL"),
    ("total_bilirubin", "quantity mg/dL", 0.7, "mg/dL"),
    ("albumin", "quantity g/dL", 4.2, "g/dL"),
    ("fasting_glucose", "quantity mg/dL", 95, "mg/dL"),
    ("ldl", "quantity mg/dL", 110, "mg/dL"),
    ("hba1c", "quantity %", 5.5, "%"),
    ("weight", "quantity kg", 75, "kg"),
    ("ki67", "quantity %", 10, "%"),
]
# the plausible ranges of src/critlang/semantics/plausible.py, in the units above
PLAUSIBLE = {
    "hemoglobin": (3, 25),
    "platelets": (5, 1500),
    "wbc": (0.1, 150),
    "serum_creatinine": (0.2, 15),
    "total_bilirubin": (0.1, 30),
    "albumin": (1, 6),
    "fasting_glucose": (20, 1000),
    "ldl": (10, 600),
    "hba1c": (3, 20),
    "weight": (30, 250),
    "ki67": (0, 100),
}
FLAGS = ["pregnant", "cirrhosis", "ascites", "brain_metastases", "diabetes"]


def _number(x: float) -> str:
    return f"{x:.1f}" if x < 20 else f"{round(x)}"


def _atom(rng: random.Random, inclusion: bool) -> str:
    """A condition a typical patient meets (inclusion) or does not meet (exclusion)."""
    kind = rng.random()
    if kind < 0.6:
        name, _, typical, unit = rng.choice(QUANTITIES)
        if inclusion:
            op, k = rng.choice([(">", rng.uniform(0.4, 0.9)), ("<", rng.uniform(1.2, 2.5))])
        else:
            op, k = rng.choice([("<", rng.uniform(0.2, 0.7)), (">", rng.uniform(1.5, 3.0))])
        op += rng.choice(["", "="])
        low, high = PLAUSIBLE[name]  # keep thresholds well inside the plausible range
        x = min(max(typical * k, low + (high - low) / 20), high - (high - low) / 20)
        return f"{name} {op} {_number(x)} {unit}"
    if kind < 0.75:
        flag = rng.choice(FLAGS)
        return f"not {flag}" if inclusion else flag
    if kind < 0.85:
        if inclusion:
            return rng.choice(["tumour_grade in {G1, G2}", "nyha_class <= II"])
        return rng.choice(["tumour_grade = G3", "nyha_class >= III"])
    if kind < 0.95:
        weeks = rng.choice([2, 4, 8, 12])
        q = "no" if inclusion else "any"
        return (
            f"{q} prior_therapies with (kind = {rng.choice(['chemotherapy', 'radiotherapy'])} "
            f"and end within {weeks} weeks before enrollment)"
        )
    return f"age >= {rng.choice([18, 21, 40])} years" if inclusion else "age > 85 years"


def _rule(rng: random.Random, inclusion: bool) -> str:
    parts = [_atom(rng, inclusion) for _ in range(rng.choice([1, 1, 2, 3]))]
    # an inclusion met by a typical patient: and of met atoms; an exclusion not met: or
    return (" and " if inclusion else " or ").join(parts)


def generate(n: int = 60, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = [
        'protocol "GEN-1"',
        '  version "1"',
        "  date 2024-05-01",
        "",
        "fact birth_date: date",
        "fact tumour_grade: scale {G1 < G2 < G3}",
        "fact nyha_class: scale {I < II < III < IV}",
        "fact prior_therapies: list of {kind: enum {chemotherapy, radiotherapy}, end: date}",
    ]
    lines += [f"fact {name}: {decl}" for name, decl, _, _ in QUANTITIES]
    lines += [f"fact {flag}: boolean" for flag in FLAGS]
    lines += ["define age = elapsed_years(birth_date, enrollment)", ""]
    inclusions = n // 2
    lines.append("inclusion criteria")
    for i in range(1, inclusions + 1):
        lines += [f'I{i} "generated inclusion {i}"', f"  rule {_rule(rng, True)}"]
    lines.append("")
    lines.append("exclusion criteria")
    for i in range(1, n - inclusions + 1):
        lines += [f'E{i} "generated exclusion {i}"', f"  rule {_rule(rng, False)}"]
    return "\n".join(lines) + "\n"
