"""Protocol pass: criteria, header conflicts, code bindings, unused declarations, the run."""

from __future__ import annotations

from fractions import Fraction

from .. import nodes as n
from ..diagnostics import sorted_diagnostics
from ..source import Span
from ..typesys import (
    EnumT,
    ListT,
    QuantT,
)
from ..units import (
    CALENDAR,
    UnitError,
    describe,
    parse_unit,
)
from .result import (
    _YEARS,
    ENROLLMENT,
    CheckResult,
    FactInfo,
    Ref,
    _conjuncts,
    _did_you_mean,
)

AGE_NOTE = " after `define age = elapsed_years(birth_date, enrollment)` (age is not built in)"


class ProtocolPass:
    # ------------------------------------------------------------------ criteria
    def criterion(self, kind: str, c: n.Criterion, seen: dict[str, Span]) -> set[str]:
        self.refs_out = set()
        self.current_criterion = c  # its protocol text, for W601
        if c.id in seen:
            self.err(
                "E004",
                f"criterion id {c.id} is used twice",
                c.id_span,
                related=((seen[c.id], "first used here"),),
                hint="ids are how amendments and reports refer to a criterion: keep them unique",
            )
        seen.setdefault(c.id, c.id_span)
        for k in ("rule", "applies"):
            found = [cl for cl in c.clauses if cl.kind == k]
            for extra in found[1:]:
                self.err(
                    "E003",
                    f"{c.id} has more than one `{k}` clause",
                    extra.span,
                    hint="combine them with `and`",
                )
        if c.rule is None:
            self.err(
                "E002",
                f"{c.id} has no `rule`",
                c.id_span,
                hint=f"add a line `rule ...` saying when the patient "
                f"{'meets' if kind == 'inclusion' else 'is excluded by'} {c.id}",
            )
        for cl in c.clauses:
            if cl.kind == "rule" and cl.expr is not None:
                self.boolean(cl.expr, {}, "a rule")
            elif cl.kind == "applies" and cl.expr is not None:
                self.boolean(cl.expr, {}, "the condition after `applies if`")
            elif cl.kind == "assumption":
                self.warn(
                    "W001",
                    f"assumption in {c.id}: {cl.text}",
                    cl.span,
                    label="stated by the author, not by the protocol",
                )
        return self.refs_out

    def header(self) -> None:
        h = self.p.header
        if h is None:
            self.warn(
                "W002",
                "the file has no `protocol` header",
                self.r.source.span(0, 0),
                hint='start with `protocol "NCT..."` and its title, version and date',
            )
            return
        for key in ("title", "version", "date"):
            if getattr(h, key) is None and key not in dict(h.item_spans):
                self.warn("W002", f"the header has no {key}", h.span)
        if "date" in dict(h.item_spans) and h.date is None:
            self.err("E006", "the header date is not a calendar date", h.item_span("date"))
        for key in ("minimum_age", "maximum_age"):
            q = getattr(h, key)
            if q is not None:
                u = self.unit(q.unit, q.span)
                if u and u.dims != CALENDAR:
                    self.err(
                        "E307",
                        f"an age is written in years or months, not {describe(u.dims)}",
                        q.span,
                    )
        if h.tolerance is not None:
            u = self.unit(h.tolerance.unit, h.tolerance.span)
            if u and not u.is_dimensionless:
                self.err("E302", "the tolerance is a percentage, e.g. `2 %`", h.tolerance.span)
            elif u:
                self.tolerance = h.tolerance.value * u.factor

    def age_conflicts(self) -> None:
        """Compare the registry header's age limits with the inclusion criteria on age."""
        h = self.p.header
        if h is None or (h.minimum_age is None and h.maximum_age is None):
            return
        # (op, years, node, crit id, from an exclusion); an exclusion `age < X` sets the
        # minimum `age >= X`, `age <= X` the minimum `age > X`, and so on
        bounds: list[tuple[str, Fraction, n.QuantityLit, str, bool, tuple[str, Fraction]]] = []
        negate = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
        ages = self.age_names()
        for kind, c in self.p.criteria:
            if c.rule is None or c.applies is not None:
                continue
            exclusion = kind == "exclusion"
            # an exclusion's alternatives each exclude: `exclude age < 18 or pregnant`
            parts = _disjuncts(c.rule) if exclusion else _conjuncts(c.rule)
            for part in parts:
                for op, subject, value in _age_comparisons(part, ages):
                    t = self.r.types.get(id(subject))
                    if not (isinstance(t, QuantT) and t.unit.dims == CALENDAR):
                        continue
                    if not isinstance(value, n.QuantityLit):
                        continue
                    u = parse_unit(value.unit)
                    if u.dims != CALENDAR:
                        continue
                    if exclusion:
                        if op not in negate:
                            continue
                        op = negate[op]
                    years = value.value * u.factor / _YEARS.factor
                    written = (op, years)
                    if self.whole_years(subject):
                        op, years = _whole_year_bound(op, years)
                    bounds.append((op, years, value, c.id, exclusion, written))
        for key, ops in (("minimum_age", (">", ">=")), ("maximum_age", ("<", "<="))):
            q = getattr(h, key)
            if q is None:
                continue
            try:
                limit = q.value * parse_unit(q.unit).factor / _YEARS.factor
            except UnitError:
                continue
            mine = [b for b in bounds if b[0] in ops]
            word = "minimum" if key == "minimum_age" else "maximum"
            # an exclusion the header already covers (`exclude age < 12` under 18 and up)
            # neither conflicts with it nor enforces it
            mine = [
                b
                for b in mine
                if not (b[4] and (b[1] < limit if key == "minimum_age" else b[1] > limit))
            ]
            if not mine:
                self.warn(
                    "W201",
                    f"the header's {word} age ({q.text}) is not enforced by any "
                    "inclusion criterion",
                    q.span,
                    hint=f"add an inclusion criterion, e.g. `rule age {ops[1]} {q.text}`"
                    + ("" if "age" in self.r.defines or "age" in self.r.facts else AGE_NOTE),
                )
                continue
            for op, years, node, cid, exclusion, written in mine:
                self.age_bound(key, op, years, limit, node, cid, q, exclusion, written)

    def age_names(self) -> set[str]:
        """`age`, and each definition of an age at another date (`define age_at_consent =
        elapsed_years(birth_date, consent_date)`): the protocol may set its age limits at
        consent, screening or enrolment (author7 F14: the header is about age in general).
        The birth date is the fact `birth_date` or one bound to FHIR Patient.birthDate."""
        births = {
            name
            for name in self.r.facts
            if name == "birth_date"
            or any(
                c.system == "fhir" and c.value == "Patient.birthDate"
                for c in self.r.bindings.get(name, ())
            )
        }
        out = {"age"}
        for name, d in self.r.defines.items():
            body = d.body
            if (
                d.params is None
                and isinstance(body, n.Call)
                and body.func == "elapsed_years"
                and body.args
                and isinstance(body.args[0], n.Name)
                and body.args[0].name in births
            ):
                out.add(name)
        return out

    def whole_years(self, subject: n.Expr) -> bool:
        """Is `subject` an age in completed whole years (`define age = elapsed_years(...)`)?

        Then `age > 14 years` and `age >= 15 years` select the same patients, and the header
        is compared with the whole-year bound (an age of 14 years 11 months is 14)."""
        if not isinstance(subject, n.Name) or self.r.refs.get(id(subject)) is None:
            return False
        if self.r.refs[id(subject)].kind != "define":
            return False
        d = self.r.defines.get(subject.name)
        return (
            d is not None
            and d.params is None
            and isinstance(d.body, n.Call)
            and d.body.func == "elapsed_years"
        )

    def sex_conflicts(self) -> None:
        """W201 for the header's `sex female|male`: enforced by no criterion, or contradicted.

        An inclusion part is read as the sexes it lets in, an exclusion part as the sexes it
        keeps out (`exclude sex = male` enforces `sex female`), on a category fact with the
        members `female` and `male`."""
        h = self.p.header
        if h is None or h.sex not in ("female", "male"):
            return
        other = "male" if h.sex == "female" else "female"
        span = h.item_span("sex")
        enforced = False
        for kind, c in self.p.criteria:
            if c.rule is None or c.applies is not None:
                continue
            exclusion = kind == "exclusion"
            for part in _disjuncts(c.rule) if exclusion else _conjuncts(c.rule):
                true_for = self.sexes_meeting(part)
                if true_for is None:
                    continue
                admitted = ({"female", "male"} - true_for) if exclusion else true_for
                if other not in admitted:
                    enforced = True
                if h.sex not in admitted:
                    self.warn(
                        "W201",
                        f"{c.id} {'excludes' if exclusion else 'leaves out'} {h.sex} patients, "
                        f"but the registry header says sex {h.sex}",
                        part.span,
                        related=((span, "header"),),
                        hint="make the header and the criterion say the same",
                    )
        if enforced:
            return
        declared = any(
            isinstance(info.type, EnumT) and {"female", "male"} <= set(info.type.members)
            for name, info in self.r.facts.items()
            if name == "sex"
        )
        self.warn(
            "W201",
            f"the header's sex ({h.sex}) is not enforced by any criterion",
            span,
            label=f"no criterion keeps {other} patients out",
            hint=f"add an inclusion criterion, e.g. `rule sex = {h.sex}`"
            + ("" if declared else " after declaring `fact sex: enum {female, male}`")
            + ", or correct the header",
        )

    def sexes_meeting(self, e: n.Expr) -> set[str] | None:
        """The sexes (of female, male) for which `e` holds, when `e` tests only sex."""
        if isinstance(e, n.Not):
            inner = self.sexes_meeting(e.operand)
            return None if inner is None else {"female", "male"} - inner
        if isinstance(e, n.Compare) and e.op in ("=", "!="):
            for subject, value in ((e.left, e.right), (e.right, e.left)):
                if self.is_sex(subject) and isinstance(value, n.Name):
                    # a member on the left (`female = sex`) is checked against the fact's
                    # type after the swap, so it may carry no reference
                    if self.r.refs.get(id(value), Ref("member", "")).kind != "member":
                        continue
                    hit = {value.name} & {"female", "male"}
                    return hit if e.op == "=" else {"female", "male"} - hit
            return None
        if isinstance(e, n.Member) and self.is_sex(e.subject):
            hit = set(e.members) & {"female", "male"}
            return {"female", "male"} - hit if e.negated else hit
        return None

    def is_sex(self, e: n.Expr) -> bool:
        if not isinstance(e, n.Name) or self.r.refs.get(id(e), Ref("", "")).kind != "fact":
            return False
        t = self.r.facts[e.name].type
        return isinstance(t, EnumT) and {"female", "male"} <= set(t.members)

    def age_bound(
        self,
        key: str,
        op: str,
        years: Fraction,
        limit: Fraction,
        node: n.QuantityLit,
        cid: str,
        q: n.QuantityLit,
        exclusion: bool = False,
        written: tuple[str, Fraction] | None = None,
    ) -> None:
        # `written`: the bound as written, before reading it on whole years (`age > 18`
        # under "18 and up" leaves out 18-year-olds, said so rather than "stricter")
        if written is not None and written[0] in (">", "<") and written[1] == limit:
            op, years = written
        shown = written[0] if written is not None else op
        strict = op in (">", "<")
        word = "minimum" if key == "minimum_age" else "maximum"
        hdr = f"the registry header says {word} age {q.text}"
        related = ((q.span, "header"),)
        if years == limit and strict:
            who = f"patients aged exactly {q.text}"
            written = {">": "<=", "<": ">="}[op] if exclusion else op
            fixed = {">": "<", "<": ">"}[op] if exclusion else f"{op}="
            verb = "excludes age" if exclusion else "requires age"
            self.warn(
                "W201",
                f"{cid} {verb} {written} {node.text}, but {hdr}: {who} are left out",
                node.span,
                label="excludes the boundary age",
                related=related,
                hint=f"if they may enter, write `age {fixed} {node.text}` and record the "
                "reading in an `assumption`; otherwise correct the header",
            )
        elif (key == "minimum_age" and years > limit) or (key == "maximum_age" and years < limit):
            self.warn(
                "W201",
                f"{cid} requires age {shown} {node.text}, stricter than the header ({hdr})",
                node.span,
                related=related,
                hint="make the header and the criterion say the same",
            )
        elif years != limit:
            self.warn(
                "W201",
                f"{cid} allows ages the header excludes ({hdr})",
                node.span,
                related=related,
                hint="make the header and the criterion say the same",
            )

    # ------------------------------------------------------------------ the run
    def run(self) -> CheckResult:
        self.header()
        self.collect()
        used: set[str] = set()
        for d in self.p.decls:
            if isinstance(d, n.Define):
                self.define_type(d)
            elif isinstance(d, n.AssumeValue) and d.name in self.r.assumed:
                self.assumed_type(d.name)
                self.warn(
                    "W001",
                    f"assumption `{d.name}`: {d.reason}",
                    d.span,
                    label="stated by the author, not by the protocol",
                )
            elif isinstance(d, n.AssumeText):
                self.warn(
                    "W001",
                    f"assumption: {d.text}",
                    d.span,
                    label="stated by the author, not by the protocol",
                )
            elif isinstance(d, n.Fact):
                look = d.option("lookback")
                if look and look.anchor and look.anchor not in self.r.anchors:
                    self.err(
                        "E101",
                        f"unknown anchor `{look.anchor}`",
                        look.span,
                        hint=_did_you_mean(look.anchor, self.r.anchors),
                    )
        self.bind()
        self.partial_bindings()
        seen: dict[str, Span] = {}
        for kind, c in self.p.criteria:
            used |= self.criterion(kind, c, seen)
        self.age_conflicts()
        self.sex_conflicts()
        self.unused(used)
        self.r.diagnostics = sorted_diagnostics(self.diags)
        return self.r

    def bind(self) -> None:
        """Collect code bindings: the library's for declared facts, then the file's own.

        A fact (or list kind) the file binds itself takes only the file's codes: the
        library's are a default, not an addition (author7 F4: the library's MDRD eGFR
        33914-3 was read into a protocol's CKD-EPI `egfr` bound to 62238-1)."""
        own = [d for d in self.p.decls if isinstance(d, n.Codes)]
        mine = {(d.fact, d.member) for d in own}
        for d in self.library:
            if (d.fact, d.member) not in mine and self.binding_target(d, report=False):
                self.add_binding(d)
        for d in own:
            if self.binding_target(d, report=True):
                self.add_binding(d)

    def binding_target(self, d: n.Codes, report: bool) -> bool:
        if d.fact not in self.r.facts and d.fact != "arm":
            if report:
                self.err(
                    "E101",
                    f"codes for unknown fact `{d.fact}`",
                    d.span,
                    hint=_did_you_mean(d.fact, self.r.facts),
                )
            return False
        if d.member is None:
            return True
        t = self.r.facts[d.fact].type if d.fact in self.r.facts else None
        kind = t.field("kind") if isinstance(t, ListT) else None
        if not isinstance(kind, EnumT):
            if report:
                self.err(
                    "E103",
                    f"`{d.fact}.{d.member}`: only a list with a `kind` category field has members",
                    d.span,
                )
            return False
        if d.member not in kind.members:
            if report:
                self.err(
                    "E102",
                    f"`{d.member}` is not a kind of {d.fact}: {', '.join(kind.members)}",
                    d.span,
                    hint=_did_you_mean(d.member, kind.members),
                )
            return False
        return True

    def partial_bindings(self) -> None:
        """W102: a list fact whose `kind` members have codes for some kinds but not all.

        FHIR data show only the kinds bound to codes (data/fhir.py), and a list read from
        resources is open (an item with nothing known stands for what is not recorded):
        a rule on an uncoded kind stays undetermined on FHIR data, and
        `--absent-means-no medications` cannot read the list as complete. A list with no
        codes at all is taken to come from chart review and is not reported."""
        bound: dict[str, set[str]] = {}
        for fact, member in self.r.item_bindings:
            bound.setdefault(fact, set()).add(member)
        for fact in sorted(bound):
            info = self.r.facts[fact]
            kind = info.type.field("kind") if isinstance(info.type, ListT) else None
            if not isinstance(kind, EnumT):
                continue
            missing = [m for m in kind.members if m not in bound[fact]]
            if not missing:
                continue
            coded = [m for m in kind.members if m in bound[fact]]
            # at the file's first binding of a kind (where the writer adds the others),
            # else (all from a library) at the fact
            own = [d for d in self.p.decls if isinstance(d, n.Codes) and d.fact == fact]
            span = next((d.span for d in own if d.member is not None), info.node.span)
            self.warn(
                "W102",
                f"`{fact}`: kinds {', '.join(missing)} have no codes, while {', '.join(coded)} do",
                span,
                hint=(
                    "FHIR data can show only the kinds with codes: criteria on the others stay "
                    f"undetermined there. Add `codes {fact}.{missing[0]}: ...` for each kind "
                    "EHR data can hold"
                ),
            )

    def add_binding(self, d: n.Codes) -> None:
        if d.member is None:
            self.r.bindings.setdefault(d.fact, []).extend(d.codes)
        else:
            self.r.item_bindings.setdefault((d.fact, d.member), []).extend(d.codes)

    def unused(self, used: set[str]) -> None:
        # follow definitions: a fact used only by a used definition is used
        frontier = list(used)
        while frontier:
            name = frontier.pop()
            for dep in self.define_refs.get(name, ()):
                if dep not in used:
                    used.add(dep)
                    frontier.append(dep)
        reported_ranges = False
        for d in self.p.decls:
            if isinstance(d, n.Fact) and d.option("lookback"):
                used.add(d.option("lookback").anchor or "")  # type: ignore[union-attr]
            if isinstance(d, n.Fact) and d.name in used and d.option("refrange_reported"):
                reported_ranges = True
        if reported_ranges:
            # the reader chooses among a result's reference ranges by the patient's sex
            # and age (FHIR R4 Observation.referenceRange.appliesTo and .age; reader.py
            # sex_and_birth): the facts bound to Patient.gender / Patient.birthDate are
            # used even when no rule names them (author7 F13: removing `sex` as W101
            # advised made a woman's creatinine range undecidable)
            for fact, codes in self.r.bindings.items():
                if any(
                    c.system == "fhir" and c.value in ("Patient.gender", "Patient.birthDate")
                    for c in codes
                ):
                    used.add(fact)
        for table, what in (
            (self.r.facts, "fact"),
            (self.r.defines, "definition"),
            (self.r.assumed, "assumed value"),
            (self.r.anchors, "anchor"),
        ):
            for name, item in table.items():
                if name in used or name == ENROLLMENT:
                    continue
                node = item.node if isinstance(item, FactInfo) else item
                if node is None:
                    continue
                self.warn(
                    "W101",
                    f"{what} `{name}` is declared but no criterion uses it",
                    node.span,
                    hint="remove it, or use it in a rule",
                )


def _disjuncts(e: n.Expr) -> list[n.Expr]:
    if isinstance(e, n.Or):
        return _disjuncts(e.left) + _disjuncts(e.right)
    return [e]


def _whole_year_bound(op: str, years: Fraction) -> tuple[str, Fraction]:
    """The bound on completed whole years that `age OP years` sets, inclusive.

    `age > 14` is `age >= 15`, `age < 27` is `age <= 26`, `age >= 17.5` is `age >= 18`."""
    floor = years.numerator // years.denominator
    ceil = -(-years.numerator // years.denominator)
    if op == ">":
        return ">=", Fraction(floor + 1)
    if op == ">=":
        return ">=", Fraction(ceil)
    if op == "<":
        return "<=", Fraction(ceil - 1)
    if op == "<=":
        return "<=", Fraction(floor)
    return op, years


def _age_comparisons(e: n.Expr, ages: set[str]) -> list[tuple[str, n.Expr, n.Expr]]:
    """(op, subject, value) for `age OP value` and `age between a and b`, subject left;
    `ages`: the names that are an age (Protocol.age_names)."""
    flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}
    if isinstance(e, n.Compare):
        if isinstance(e.left, n.Name) and e.left.name in ages:
            return [(e.op, e.left, e.right)]
        if isinstance(e.right, n.Name) and e.right.name in ages:
            return [(flip[e.op], e.right, e.left)]
    if isinstance(e, n.Between) and isinstance(e.subject, n.Name) and e.subject.name in ages:
        return [(">=", e.subject, e.low), ("<=", e.subject, e.high)]
    return []
