"""Seeded random patients for the trial, built around an eligible example record."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "protocols" / "nct05610826" / "examples"
AS_OF = dt.date(2026, 11, 27)


def _date(rng: random.Random, around: dt.date, spread: int) -> str:
    return (around - dt.timedelta(days=rng.randint(-spread // 10, spread))).isoformat()


def _lab(rng: random.Random, low: float, high: float, unit: str, **extra: Any) -> dict[str, Any]:
    entry = {"value": round(rng.uniform(low, high), 2), "unit": unit}
    entry["date"] = _date(rng, AS_OF, 40)  # some fall outside the 28-day window
    entry.update(extra)
    return entry


def generate(count: int, seed: int = 20261127) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    base = json.loads((EXAMPLES / "eligible_arm1.json").read_text())["facts"]
    kinds = ["somatostatin_analogue", "chemotherapy", "capecitabine", "tace", "yttrium_90"]
    makers = {
        "hemoglobin": lambda: _lab(rng, 6, 16, rng.choice(["g/dL", "mmol/L"])),
        "wbc": lambda: _lab(rng, 1, 12, rng.choice(["x10^9/L", "10*3/uL"])),
        "platelets": lambda: _lab(rng, 40, 400, "x10^9/L"),
        "total_bilirubin": lambda: _lab(rng, 0.2, 5, "mg/dL"),
        "albumin": lambda: _lab(rng, 2, 5, "g/dL"),
        "serum_creatinine": lambda: _lab(rng, 40, 250, "umol/L"),
        "weight": lambda: _lab(rng, 40, 120, "kg"),
        "fasting_glucose": lambda: _lab(
            rng, 60, 300, "mg/dL", reference_range={"low": 70, "high": 100, "unit": "mg/dL"}
        ),
        "ki67": lambda: {"value": rng.randint(1, 40), "unit": "%"},
        "tumour_grade": lambda: rng.choice(["G1", "G2", "G3"]),
        "birth_date": lambda: _date(rng, dt.date(1960, 1, 1), 9000),
        "sex": lambda: rng.choice(["female", "male"]),
        "arm": lambda: rng.choice(["arm_1", "arm_2"]),
        "pet_lesions": lambda: [{"krenning": rng.randint(0, 4)} for _ in range(rng.randint(0, 5))],
        "prior_therapies": lambda: [
            {"kind": rng.choice(kinds), "start": "2020-01-01", "end": _date(rng, AS_OF, 800)}
            for _ in range(rng.randint(0, 3))
        ],
        "liver_tumour_burden": lambda: {"value": rng.randint(5, 80), "unit": "%"},
    }
    patients = []
    for i in range(count):
        facts = copy.deepcopy(base)
        for name in rng.sample(sorted(makers), rng.randint(0, 4)):
            facts[name] = makers[name]()
        for name in rng.sample(sorted(facts), rng.randint(0, 2)):
            facts[name] = None  # missing
        anchors = {"prrt_start": _date(rng, AS_OF + dt.timedelta(days=30), 60)}
        patients.append({"id": f"P{i:05d}", "facts": facts, "anchors": anchors})
    return patients
