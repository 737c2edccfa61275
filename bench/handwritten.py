"""NCT05610826 (current.crit) written by hand: the baseline of the evaluation benchmark.

Plain Python over the same pre-normalised records the compiled evaluator reads
(quantities as floats in the declared units, grades as indices, dates as day numbers,
None for unknown), with the same three-valued logic. Written the way a careful engineer
would without critlang: small helpers, straightforward conditions.
"""

from __future__ import annotations

import datetime as dt

from critlang.backends.runtime import NA, Range, add_months

SYSTEMIC = {
    "somatostatin_analogue",
    "chemotherapy",
    "capecitabine",
    "temozolomide",
    "targeted_therapy",
    "other_systemic",
}


def _and(a, b):
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or(a, b):
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _not(a):
    return None if a is None else not a


def _cmp(v, test):
    return None if v is None else test(v)


def _age(birth, on):
    if birth is None or on is None:
        return None
    a, b = dt.date.fromordinal(birth), dt.date.fromordinal(on)
    return b.year - a.year - ((b.month, b.day) < (a.month, a.day))


def _count(items, test):
    yes = unknown = 0
    for item in items:
        r = test(item)
        if r is None:
            unknown += 1
        elif r:
            yes += 1
    return yes, unknown


def _any(items, test):
    if items is None:
        return None
    yes, unknown = _count(items, test)
    return True if yes else (None if unknown else False)


def evaluate(f):
    enr = f["@enrollment"]
    # I1
    i1 = f["pnet_liver_metastases"]
    # I2
    g, d, k = f["tumour_grade"], f["differentiation"], f["ki67"]
    i2 = _and(
        _and(_cmp(g, lambda x: x <= 1), _cmp(d, lambda x: x in ("well", "moderate"))),
        _cmp(k, lambda x: x <= 20.0),
    )
    # I3
    i3 = _cmp(f["planned_hepatic_cytoreduction"], lambda x: x >= 90.0)
    # I4: a majority of lesions with Krenning >= 2
    lesions = f["pet_lesions"]
    if lesions is None:
        i4 = None
    else:
        yes, unknown = _count(lesions, lambda e: _cmp(e["krenning"], lambda x: x >= 2))
        n = len(lesions)
        i4 = True if 2 * yes > n else (False if 2 * (yes + unknown) <= n else None)
    # I5
    age = _age(f["birth_date"], enr)
    i5 = _cmp(age, lambda x: x >= 18)
    # I6, arm 2 only
    arm = f["arm"]
    applies = None if arm is None else arm == "arm_2"
    therapies = f["prior_therapies"]
    prrt = f["@prrt_start"]

    def in_prrt_window(e):
        kind, end = e["kind"], e["end"]
        a = None if kind is None else kind in SYSTEMIC
        b = None if end is None or prrt is None else _within(end, prrt - 28, prrt)
        return _and(a, b)

    if applies is False:
        i6 = NA
    else:
        r = _not(_any(therapies, in_prrt_window))
        i6 = r if applies is True or r is True else None
    # E1
    e1 = _or(
        _or(_cmp(g, lambda x: x == 2), _cmp(d, lambda x: x == "poor")),
        _cmp(k, lambda x: x > 20.0),
    )
    # E2
    year_before = None if enr is None else add_months(enr, -12)

    def y90(e):
        return _cmp(e["kind"], lambda x: x == "yttrium_90")

    def recent_embolisation(e):
        kind, end = e["kind"], e["end"]
        a = None if kind is None else kind in ("tace", "tae")
        if end is None or year_before is None:
            b = None
        elif end.__class__ is Range:  # ongoing: at least until end.lo
            b = True if end.lo >= year_before else None
        else:
            b = not end < year_before
        return _and(a, b)

    e2 = _or(_any(therapies, y90), _any(therapies, recent_embolisation))

    # E3
    def recent_cape_temo(e):
        kind, end = e["kind"], e["end"]
        a = None if kind is None else kind in ("capecitabine", "temozolomide")
        b = None if end is None or year_before is None else _within(end, year_before, enr)
        return _and(a, b)

    e3 = _any(therapies, recent_cape_temo)
    # E4: no uptake on any lesion
    if lesions is None:
        e4 = None
    else:
        e4 = True
        for e in lesions:
            r = _cmp(e["krenning"], lambda x: x == 0)
            if r is False:
                e4 = False
                break
            if r is None:
                e4 = None
    # E5
    e5 = _cmp(f["liver_tumour_burden"], lambda x: x > 50.0)
    # E6
    pt, lo, hi = f["prothrombin_time"], f["prothrombin_time#low"], f["prothrombin_time#high"]
    if pt is None or (lo is None and hi is None):
        pt_normal = None
    else:
        pt_normal = (lo is None or lo <= pt) and (hi is None or pt <= hi)
    albumin = _and(_cmp(f["albumin"], lambda x: x < 3.0), _not(pt_normal))
    e6 = _or(
        _or(
            _or(_cmp(f["total_bilirubin"], lambda x: x > 3.0), _cmp(f["inr"], lambda x: x > 1.5)),
            albumin,
        ),
        _or(f["cirrhosis"], f["ascites"]),
    )
    # E7: measured clearance if present, else Cockcroft-Gault
    crcl = f["measured_clearance"]
    e7 = _cmp(crcl, lambda x: x < 50.0)
    if crcl is None:
        w, scr, sex = f["weight"], f["serum_creatinine"], f["sex"]
        if age is not None and w is not None and scr:
            base = (140 - age) * w / (72 * scr)
            if sex is not None:
                e7 = base * (0.85 if sex == "female" else 1) < 50.0
            elif (base * 0.85 < 50.0) == (base < 50.0):
                e7 = base < 50.0  # sex unknown, but both branches decide alike
    # E8: 5.0 mmol/L haemoglobin is 8.057 g/dL at 16114 g/mol
    e8 = _or(
        _or(_cmp(f["hemoglobin"], lambda x: x < 8.057), _cmp(f["wbc"], lambda x: x < 2.0)),
        _cmp(f["platelets"], lambda x: x < 75.0),
    )
    # E9
    e9 = _and(f["brain_metastases"], _not(f["brain_metastases_treated_and_stable"]))
    # E10
    e10 = _and(f["congestive_heart_failure_uncontrolled"], _cmp(f["nyha_class"], lambda x: x >= 1))
    # E11
    glu, uln = f["fasting_glucose"], f["fasting_glucose#high"]
    e11 = None if glu is None or uln is None else glu > 2.0 * uln
    # E12
    e12 = _or(f["pregnant"], f["lactating"])
    # E13
    sex, lm, sterile = f["sex"], f["last_menstruation"], f["surgically_sterile"]
    recent = None if lm is None or enr is None else lm <= enr < add_months(lm, 24)
    female = _and(_and(_cmp(sex, lambda x: x == "female"), recent), _not(sterile))
    male = _and(
        _cmp(sex, lambda x: x == "male"), _or(_not(sterile), f["partner_of_childbearing_potential"])
    )
    e13 = _and(_or(female, male), _not(f["effective_nonhormonal_contraception"]))
    # E14, E15
    e14 = _cmp(f["bone_marrow_irradiated"], lambda x: x > 25.0)
    e15 = f["urinary_incontinence_unsafe"]

    # E16
    def other_cancer(e):
        kind = e["kind"]
        a = (
            None
            if kind is None
            else kind not in ("non_melanoma_skin_cancer", "cervical_carcinoma_in_situ")
        )
        cured = _and(e["definitively_treated"], _not(e["evidence_of_recurrence"]))
        return _and(a, _not(cured))

    e16 = _any(f["other_malignancies"], other_cancer)
    # E17
    e17 = _not(f["informed_consent_signed"])

    inclusions = (i1, i2, i3, i4, i5, i6)
    exclusions = (e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14, e15, e16, e17)
    if any(s is False for s in inclusions) or any(s is True for s in exclusions):
        return "ineligible"
    if any(s is None for s in inclusions) or any(s is None for s in exclusions):
        return "undetermined"
    return "eligible"


def _within(end, edge, anchor):
    """edge <= end <= anchor; an ongoing end (a Range from the evaluation date on) counts
    as ending at the anchor at the latest (docs/patients.md, "Ongoing therapies")."""
    if end.__class__ is Range:
        lo = min(end.lo, anchor)
        return True if lo >= edge else None
    return edge <= end <= anchor
