"""Explanations a coordinator can verify: each criterion's clauses with the values used.

Walks the checked AST over the same normalised values the compiled evaluator reads
(`Compiled.normalise`: facts in their declared units, dates as day numbers, values known
only as an interval as `runtime.Range`), with the same three-valued rules, and says for
each clause what it compared: the value as recorded (date, source) and converted into
the unit of the threshold that decided, the threshold by value (marked when it is an
assumption), derived values (age, a formula such as Cockcroft-Gault, 2 x ULN, the
reference range) with their inputs, lists summarised by their rule. A censored value, a
partial date or an ongoing end says why its interval decides ("every value below 2 is
below 3"); conflicting values are walked candidate by candidate, as the evaluator weighs
them. Met: the clauses that made it true. Not met: every clause that failed. Unknown: the
clauses still open.

The walker is in parts: explain_words (clauses, words, intervals), explain_compare
(comparisons), explain_time (dates against anchors), explain_lists (list rules),
explain_worlds (conflicting values), explain_lines (the printed lines).

No pint here (explanations must be cheap to start): units convert through
`units.conversion_factor`, exact fractions. The walker's value for the whole rule is
held against the compiled status; where they differ (a form this walker does not know
yet) only the compiled status is shown, never a made-up reason.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

from . import nodes as n
from .backends.python import Compiled
from .backends.runtime import (
    NA,
    Alt,
    agreed,
    alt_map,
    alt_op,
    alt_product,
    choice,
    elapsed_years,
    r_between,
    sig,
)
from .backends.runtime_math import EXPORT_NAME, MATH_EXPORTS
from .checker import Ref
from .data.records import Observation, Record
from .explain_compare import Comparisons
from .explain_lines import deciding_sources, reasons
from .explain_lists import ListClauses
from .explain_time import TimeClauses
from .explain_words import (
    MARK,
    Clause,
    Unsupported,
    Val,
    day_text,
    is_range,
    merge,
    num,
    span_words,
)
from .explain_worlds import weighed, worlds
from .functions import MATH, ORDERING, undefined_why
from .typesys import DateT, IntT, NumberT, QuantT, ScaleT, Type
from .units import Unit, conversion_factor, parse_unit

__all__ = ["MARK", "Clause", "Explainer", "Val", "deciding_sources", "reasons"]


class Explainer(Comparisons, TimeClauses, ListClauses):
    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self.c = compiled.checked
        self.roots = n.arithmetic_roots(self.c.protocol)
        self.src = self.c.source.text
        self.criteria = {id(c.node): c for c in compiled.criteria}
        self.fixed: dict[int, Val] = {}  # operand -> one possibility (over_alternatives)

    # ------------------------------------------------------------------ words
    def label(self, name: str) -> str:
        info = self.c.facts.get(name)
        if info is not None:
            label = info.node.option("label")
            if label is not None and label.text:
                # whole: a label cut at its first "(" or ";" can say the opposite
                # ("History of (non-infectious) pneumonitis ..." was "History of")
                return " ".join(label.text.split())
        if name == "enrollment":
            return "enrollment"
        anchor = self.c.anchors.get(name)
        if anchor is not None and anchor.label:
            return anchor.label
        return name.replace("_", " ")

    def source(self, node: n.Node) -> str:
        return " ".join(self.src[node.span.start : node.span.end].split())

    def type(self, e: n.Expr) -> Type | None:
        return self.c.types.get(id(e))

    def carrier(self, e: n.Expr) -> Unit | None:
        t = self.type(e)
        return t.unit if isinstance(t, QuantT) else None

    def ref(self, e: n.Name) -> Ref:
        return self.c.refs[id(e)]

    def molar(self, e: n.Expr) -> Fraction | None:
        if isinstance(e, n.Name) and self.c.refs.get(id(e), Ref("", "")).kind == "fact":
            return self.c.facts[e.name].molar_mass
        return None

    # ------------------------------------------------------------------ entry
    def explain(
        self, crit: n.Criterion, status: Any, f: dict[str, Any], record: Record
    ) -> Clause | None:
        """The criterion's clause tree, or None when the walker cannot follow it (or,
        never expected, reaches another status than the compiled evaluator)."""
        compiled = self.criteria.get(id(crit))
        section = compiled.section if compiled is not None else "inclusion"
        deps = compiled.facts if compiled is not None else frozenset()
        try:
            each = worlds(self.conflicted(record), f, record, deps)
            if each is None:
                clause = self.one(crit, section, f, record)
            else:  # conflicting values: walked world by world, as the evaluator weighs them
                clauses = [self.one(crit, section, g, r) for _, g, r in each]
                clause = weighed([p for p, _, _ in each], clauses, self.label)
        except (Unsupported, KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError):
            return None
        if clause.value is not status:
            return None  # disagrees with the compiled evaluator: show no reasons
        return clause

    def conflicted(self, record: Record) -> list[str]:
        """The facts with conflicting candidates, in the order `Compiled.normalise` puts
        their options under "#"."""
        return [k for k in sorted(record.alternatives) if k in self.compiled.normalisers]

    def one(self, crit: n.Criterion, section: str, f: dict[str, Any], record: Record) -> Clause:
        """The criterion's clause tree for one set of values, with its status as the
        generated code computes it (python_codegen.criterion)."""
        self.f, self.record = f, record
        self._defined: dict[str, Val] = {}  # a definition's value, computed once per patient
        a = None
        if crit.applies is not None:
            a = self.cond(crit.applies, {})
            if a.value is False:
                return Clause(NA, a.text, [a], "applies", source=a.source)  # type: ignore[arg-type]
        if crit.rule is None:
            raise Unsupported(crit)
        rule = self.cond(crit.rule, {})
        harmless = section == "inclusion"  # applies unknown: decided when it passes anyway
        if a is not None and a.value is None and rule.value is not harmless:
            return Clause(None, f"{a.text} and {rule.text}", [a, rule], "and")  # open either way
        return rule

    # ------------------------------------------------------------------ values
    def fact_val(self, name: str) -> Val:
        obs = self.record.facts.get(name)
        v = self.f.get(name)
        if obs is None or v is None:
            why = self.record.why_unknown.get(name, "not in the record")
            return Val(None, f"{self.label(name)} unknown ({why})")
        return Val(v, f"{self.label(name)} {self.obs_text(obs)}")

    def obs_text(self, obs: Observation) -> str:
        return obs.shown()

    def value(
        self,
        e: n.Expr,
        env: dict[str, Val],
        target: Unit | None = None,
        molar: Fraction | None = None,
    ) -> Val:
        """e's value in its carrier unit (or `target`), as the compiled code computes it."""
        if isinstance(e, n.DualQuantityLit):
            e = e.primary
        if isinstance(e, n.QuantityLit):
            unit = target or parse_unit(e.unit)
            k = conversion_factor(parse_unit(e.unit), unit, molar)
            if k is None:
                raise Unsupported(e)
            return Val(float(e.value * k), e.raw or e.text)
        v = self._value(e, env)
        if target is not None and v.value is not None:
            src = self.carrier(e)
            if src is not None and src != target:
                k = conversion_factor(src, target, molar or self.molar(e))
                if k is None:
                    raise Unsupported(e)
                v = Val(_scaled(v.value, float(k)), v.shown, v.derived)
        return v

    def plain(self, v: Val) -> Val:
        """A value where one possibility is needed (python_codegen.plain): several
        possibilities (a conditional whose condition is unknown) are unknown."""
        if isinstance(v.value, Alt):
            return Val(None, f"{v.shown} (depends on a condition not known)", v.derived)
        return v

    def _value(self, e: n.Expr, env: dict[str, Val]) -> Val:
        if self.fixed and id(e) in self.fixed:
            return self.fixed[id(e)]
        if isinstance(e, n.NumberLit):
            return Val(float(e.value), self.source(e))
        if isinstance(e, n.DateLit):
            return Val(e.value.toordinal(), e.value.isoformat())
        if isinstance(e, n.BoolLit):
            return Val(e.value, "yes" if e.value else "no")
        if isinstance(e, n.Name):
            return self.name(e, env)
        if isinstance(e, n.Call):
            return self.call(e, env)
        if isinstance(e, n.Magnitude):
            inner = self.value(e.expr, env, parse_unit(e.unit))
            return Val(inner.value, inner.shown, inner.derived)
        if isinstance(e, n.WithUnit):
            return self.value(e.expr, env)
        if isinstance(e, n.Arith):
            a = self.value(e.left, env)
            b = self.value(e.right, env, self.carrier(e.left) if e.op in "+-" else None)
            shown = f"({a.shown} {'×' if e.op == '*' else e.op} {b.shown})"
            derived = merge(a.derived, b.derived)
            if a.value is None or b.value is None or (e.op == "/" and b.value == 0):
                return Val(None, shown, derived)
            if isinstance(a.value, Alt) or isinstance(b.value, Alt):  # runtime.alt_op
                r = alt_op(e.op, a.value, b.value, id(e) in self.roots)
                return Val(r, shown, derived)
            r = {
                "+": lambda: a.value + b.value,
                "-": lambda: a.value - b.value,
                "*": lambda: a.value * b.value,
                "/": lambda: a.value / b.value,
            }[e.op]()
            if id(e) in self.roots:
                r = sig(r)
            return Val(r, shown, derived)
        if isinstance(e, n.Neg):
            x = self.value(e.operand, env)
            return Val(_scaled(x.value, -1.0), f"-{x.shown}", x.derived)
        if isinstance(e, n.Conditional):
            return self.conditional(e, env)
        if isinstance(e, n.FirstAvailable):
            target = self.carrier(e.options[0])
            for option in e.options:
                v = self.value(option, env, target)
                if v.value is not None:
                    return v
            return Val(None, "none of the alternatives is known")
        if isinstance(e, n.DateOf):
            day = self.f.get(e.fact + "@date")
            obs = self.record.facts.get(e.fact)
            where = f" ({obs.shown()})" if obs is not None else ""
            return Val(day, f"date of {self.label(e.fact)} {day_text(day)}{where}")
        if isinstance(e, n.Attribute):  # a blood pressure's part
            whole = self.fact_val(e.obj)
            if whole.value is None:
                return Val(None, f"{e.attr} unknown ({whole.shown})")
            part = whole.value[0 if e.attr == "systolic" else 1]
            t = self.type(e)
            unit = f" {t.unit.text}" if isinstance(t, QuantT) else ""
            if is_range(part):  # a censored part ("> 170"): the interval it stands for
                return Val(part, f"{e.attr} {span_words(part, unit.strip())} ({whole.shown})")
            if part is not None and float(num(part)) != part:
                # converted (21.33 kPa is 159.9917 mm[Hg]): no rounded number that could
                # contradict the verdict; the comparison shows it with enough digits
                return Val(part, f"{e.attr} of {whole.shown}")
            shown = "unknown" if part is None else f"{num(part)}{unit}"
            return Val(part, f"{e.attr} {shown} ({whole.shown})")
        c = self.cond(e, env)
        return Val(c.value, c.text)

    def name(self, e: n.Name, env: dict[str, Val]) -> Val:
        r = self.ref(e)
        if r.kind == "member":
            t = self.type(e)
            if isinstance(t, ScaleT):
                return Val(t.members.index(r.name), r.name)
            return Val(r.name, r.name.replace("_", " "))
        if r.kind in ("param", "field"):
            return env[r.name]
        if r.kind in ("fact", "arm"):
            if r.kind == "arm" or r.name == "arm":
                v = self.f.get("arm")
                return Val(v, f"arm {v if v is not None else 'unknown'}")
            return self.fact_val(r.name)
        if r.kind == "anchor":
            day = self.f.get("@" + r.name)
            when = dt.date.fromordinal(day).isoformat() if day else "unknown"
            return Val(day, f"{self.label(r.name)} {when}")
        if r.kind == "assume":
            value = self.c.assumed[r.name].value
            v = self.value(value, env, self.carrier(e))
            return Val(v.value, f"{v.shown} (assumed: {r.name})")
        if r.kind == "define":
            return self.defined(r.name, env)
        raise Unsupported(r)

    def defined(self, name: str, env: dict[str, Val]) -> Val:
        # Memoised: a definition used twice by another (d2 = d1 + d1) would otherwise be walked
        # an exponential number of times (test_security: forty self-doubling definitions).
        cached = self._defined.get(name)
        if cached is None:
            cached = self._defined[name] = self._define(name)
        return cached

    def _define(self, name: str) -> Val:
        body = self.c.defines[name].body
        inner = self.value(body, {})
        t = self.type(body)
        unit = f" {t.unit.text}" if isinstance(t, QuantT) and t.unit.text else ""
        words = name.replace("_", " ")
        if inner.value is None:
            return Val(None, f"{words} unknown", inner.derived)
        shown = f"{words} {self.fmt(inner.value, t)}{unit}"
        line = f"{words} = {self.fmt(inner.value, t)}{unit}, from {inner.shown}"
        return Val(inner.value, shown, merge(inner.derived, [line]))

    def conditional(self, e: n.Conditional, env: dict[str, Val]) -> Val:
        """The branch taken and every condition that chose it, in order ("2 (✗ total
        bilirubin 2.34 mg/dL < 2 mg/dL, ✓ ... ≤ 3 mg/dL)"): a coordinator checks
        a score against the CRF from its inputs, not from its result alone."""
        steps: list[str] = []
        derived: list[str] = []
        node: n.Expr = e
        while isinstance(node, n.Conditional) and not (self.fixed and id(node) in self.fixed):
            c = self.cond(node.cond, env)
            if c.value is None:
                break
            steps.append(f"{MARK[c.value]} {c.text}")
            derived = merge(derived, c.notes)
            node = node.then if c.value else node.otherwise
        if not steps:
            c = self.cond(e.cond, env)  # both possibilities (runtime.choice), decided if they agree
            t = self.value(e.then, env, self.carrier(e))
            o = self.value(e.otherwise, env, self.carrier(e))
            shown = f"{t.shown} or {o.shown} ({c.text}: not known)"
            return Val(choice(t.value, o.value), shown, merge(t.derived, o.derived))
        v = self.value(node, env, self.carrier(e))
        return Val(v.value, f"{v.shown} ({', '.join(steps)})", merge(derived, v.derived))

    def fmt(self, x: Any, t: Type | None) -> str:
        if isinstance(x, Alt) and not isinstance(t, QuantT | NumberT | IntT):
            return " or ".join(self.fmt(v, t) for v in x)  # dates, categories
        if isinstance(t, DateT) and isinstance(x, int):
            return day_text(x)
        if isinstance(t, ScaleT) and isinstance(x, int):
            return t.members[x]
        if isinstance(x, bool):
            return "yes" if x else "no"
        if isinstance(x, (int, float, Alt)) or is_range(x):
            return span_words(x)
        return str(x)

    def call(self, e: n.Call, env: dict[str, Val]) -> Val:
        if e.func in MATH:
            return self.math(e, env)
        if e.func == "elapsed_years":
            a, b = (self.plain(self.value(x, env)) for x in e.args)
            years = elapsed_years(a.value, b.value)
            shown = f"completed years from {a.shown} to {b.shown}"
            return Val(years, shown, merge(a.derived, b.derived))
        d = self.c.defines.get(e.func)
        if d is None or d.params is None:
            raise Unsupported(e)
        inner: dict[str, Val] = {}
        args = []
        derived: list[str] = []
        for arg, p in zip(e.args, d.params, strict=True):
            unit = parse_unit(p.type.unit) if isinstance(p.type, n.QuantityTypeExpr) else None
            v = self.value(arg, env, unit)
            derived = merge(derived, v.derived)
            if v.value is None:
                shown = f"{p.name} unknown"
            elif is_range(v.value) or (
                isinstance(v.value, (int, float, Alt)) and not isinstance(v.value, bool)
            ):
                shown = span_words(v.value, unit.text if unit is not None else "")
            else:
                shown = str(v.value)
            # an interval inside a formula in brackets: "(140 - (57-58 years))"
            inner[p.name] = Val(v.value, f"({shown})" if is_range(v.value) else shown)
            args.append(f"{p.name} {shown}")
        body = self.value(d.body, inner)
        words = e.func.replace("_", "-" if "gault" in e.func else " ")
        t = self.type(e)
        unit_text = f" {t.unit.text}" if isinstance(t, QuantT) and t.unit.text else ""
        if body.value is None and all(v.value is not None for v in inner.values()):
            # every input known: the formula itself has no value (a domain error)
            return Val(None, f"{words} unknown: {body.shown}", derived)
        if body.value is None:
            return Val(None, f"{words} unknown (needs {', '.join(args)})", derived)
        result = f"{span_words(body.value)}{unit_text}"
        line = f"{words} = {body.shown} = {result} ({'; '.join(args)})"
        return Val(body.value, f"{words} {result}", merge(derived, [line]))

    def math(self, e: n.Call, env: dict[str, Val]) -> Val:
        """A built-in function as the compiled code computes it (runtime_math), shown
        with its inputs: `pow(1.286, -1.2) = 0.7396`; outside its domain, why."""
        target = self.carrier(e.args[0]) if e.func in ORDERING else None
        vals = [self.value(a, env, target) for a in e.args]
        derived = merge(*(v.derived for v in vals))
        shown = f"{e.func}({', '.join(v.shown for v in vals)})"
        fn = MATH_EXPORTS[EXPORT_NAME[e.func]]
        r = fn(id(e) in self.roots, *(v.value for v in vals))  # type: ignore[operator]
        if r is None and all(v.value is not None for v in vals):
            inputs = ", ".join(
                self.fmt(v.value, self.type(a)) for v, a in zip(vals, e.args, strict=True)
            )
            return Val(
                None, f"{shown} has no value ({e.func}({inputs}): {undefined_why(e.func)})", derived
            )
        if r is None or e.func in ORDERING:
            return Val(r, shown, derived)
        return Val(r, f"{shown} = {span_words(r)}", derived)

    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr, env: dict[str, Val]) -> Clause:
        c = self._cond(e, env)
        c.source = c.source or self.source(e)
        return c

    def _cond(self, e: n.Expr, env: dict[str, Val]) -> Clause:
        if isinstance(e, n.BoolLit):
            return Clause(e.value, "always" if e.value else "never")
        if isinstance(e, n.Not):
            inner = self.cond(e.operand, env)
            v = None if inner.value is None else not inner.value
            return Clause(v, f"not ({inner.text})", [inner], "not")
        if isinstance(e, (n.And, n.Or)):
            terms = [self.cond(t, env) for t in _chain(e)]
            values = [t.value for t in terms]
            stop = isinstance(e, n.Or)
            v = stop if stop in values else (None if None in values else not stop)
            kind = "or" if stop else "and"
            return Clause(v, f" {kind} ".join(t.text for t in terms), terms, kind)
        if isinstance(e, n.Unless):
            rule = self.cond(e.rule, env)
            exc = self.cond(e.exception, env)
            nexc = None if exc.value is None else not exc.value
            if rule.value is False or nexc is False:
                v: bool | None = False
            elif rule.value is None or nexc is None:
                v = None
            else:
                v = True
            return Clause(v, f"{rule.text} unless {exc.text}", [rule, exc], "unless")
        if isinstance(e, n.Implies):
            p, c = self.cond(e.premise, env), self.cond(e.conclusion, env)
            if p.value is False or c.value is True:
                v = True
            elif p.value is None or c.value is None:
                v = None
            else:
                v = False
            return Clause(v, f"if {p.text} then {c.text}", [p, c], "implies")
        if n.compared(e):
            lifted = self.over_alternatives(e, env)
            if lifted is not None:
                return lifted
        if isinstance(e, n.Compare) and (
            isinstance(e.left, n.PressureLit) or isinstance(e.right, n.PressureLit)
        ):
            return self.pressure(e)
        if isinstance(e, n.Compare):
            return self.compare(e, env)
        if isinstance(e, n.CompareRef):
            return self.compare_ref(e, env)
        if isinstance(e, n.InNormalRange):
            return self.in_range(e, env)
        if isinstance(e, n.Between):
            a = self.plain(self.value(e.subject, env))
            m = self.molar(e.subject)
            lo = self.plain(self.value(e.low, env, self.carrier(e.subject), m))
            hi = self.plain(self.value(e.high, env, self.carrier(e.subject), m))
            text = f"{a.shown} between {lo.shown} and {hi.shown}"
            if any(v.value is None for v in (a, lo, hi)):
                return Clause(None, text, notes=a.derived)
            if any(is_range(v.value) for v in (a, lo, hi)):  # runtime.r_between
                ok = r_between(a.value, lo.value, hi.value)
                unit = self.carrier(e.subject)
                u = unit.text if unit is not None else ""
                span = span_words(a.value, u)
                text += {
                    True: f": every value {span} lies between them",
                    False: f": no value {span} lies between them",
                    None: f": only some values {span} lie between them",
                }[ok]
                return Clause(ok, text, notes=a.derived)
            return Clause(lo.value <= a.value <= hi.value, text, notes=a.derived)
        if isinstance(e, n.Member):
            a = self.plain(self.value(e.subject, env))
            t = self.type(e.subject)
            members = [m.replace("_", " ") for m in e.members]
            verb = "none of" if e.negated else "one of"
            shown = a.shown
            if isinstance(t, ScaleT) and isinstance(a.value, int):
                shown = f"{self.label_of(e.subject)} {t.members[a.value]}"
            text = f"{shown}: {verb} {', '.join(members)}"
            if a.value is None:
                return Clause(None, text, notes=a.derived)
            value = t.members[a.value] if isinstance(t, ScaleT) else a.value
            return Clause((value in e.members) != e.negated, text, notes=a.derived)
        if isinstance(e, n.IsKnown):
            a = self.value(e.subject, env)
            return Clause(a.value is not None, f"{a.shown} is known")
        if isinstance(e, n.Window):
            return self.window(e, env)
        if isinstance(e, n.Order):
            return self.order(e, env)
        if isinstance(e, n.DateBound):
            return self.date_bound(e, env)
        if isinstance(e, n.WindowBetween):
            return self.window_between(e, env)
        if isinstance(e, n.Period):
            return self.period(e, env)
        if isinstance(e, n.Quantified):
            return self.quantified(e, env)
        if isinstance(e, (n.Name, n.Call, n.FirstAvailable, n.Conditional)):
            v = self.plain(self.value(e, env))
            if v.value is None or isinstance(v.value, bool):
                shown = v.shown
                return Clause(v.value, shown, notes=v.derived)
        raise Unsupported(e)

    def over_alternatives(self, e: n.Expr, env: dict[str, Val]) -> Clause | None:
        """A comparison form (nodes.compared) over values with several possibilities:
        the form per combination, decided when all agree (python_conditions.
        over_alternatives); None when no operand has several (the form as usual)."""
        literal = (n.QuantityLit, n.DualQuantityLit, n.NumberLit, n.DateLit)
        operands = [x for x in n.compared(e) if not isinstance(x, literal)]
        vals = [self._value(x, env) for x in operands]  # each in its own carrier unit
        if not any(isinstance(v.value, Alt) for v in vals):
            return None
        combos = alt_product(tuple(v.value for v in vals))
        saved = self.fixed
        try:
            value = None
            if combos is not None:
                results = []
                for combo in combos:
                    self.fixed = {**saved}
                    for x, v, one in zip(operands, vals, combo, strict=True):
                        self.fixed[id(x)] = Val(one, v.shown, v.derived)
                    results.append(self._cond(e, env).value)
                value = agreed(results)
            # the words: each operand shown with its possibilities ("flat 1 or 3")
            self.fixed = {
                **saved,
                **{
                    id(x): Val(None, v.shown, v.derived)
                    for x, v in zip(operands, vals, strict=True)
                },
            }
            shown = self._cond(e, env)
        finally:
            self.fixed = saved
        says = {
            True: "holds for every possibility",
            False: "fails for every possibility",
            None: "holds for some possibilities only",
        }[value]
        return Clause(value, f"{shown.text}: {says}", notes=merge(*(v.derived for v in vals)))


def _chain(e: n.And | n.Or) -> list[n.Expr]:
    kind = type(e)
    out: list[n.Expr] = []
    for side in (e.left, e.right):
        out += _chain(side) if type(side) is kind else [side]  # type: ignore[arg-type]
    return out


def _scaled(x: Any, k: float) -> Any:
    """x times a constant (a unit conversion, a sign) as the compiled code scales it."""
    if x is None:
        return None
    if isinstance(x, Alt):
        return alt_map(x, k)
    return x * k
