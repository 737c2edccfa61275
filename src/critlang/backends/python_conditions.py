"""Python back end, part 3 of 3: code generation for conditions (comparisons,
and/or/unless, windows, periods, quantifiers).

`_Conditions` holds these methods of the code generator; `_Codegen`
(backends/python_codegen.py) inherits them, so they read its state and helpers
(`self.w`, `self.value`, `self.tmp`, ...).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from .. import nodes as n
from ..checker import ENROLLMENT, Ref
from ..future_events import past_date_fields
from ..time_edges import edge_side
from ..typesys import ListT, PressureT, ScaleT
from ..units import TIME, parse_unit
from .python_normalise import limit_key

_MEMBERSHIP = re.compile(r" else \w+ (not )?in K\d+$")


def _chain(e: n.And | n.Or) -> list[n.Expr]:
    """The operands of a run of the same operator: a or b or c -> [a, b, c]."""
    kind = type(e)
    out: list[n.Expr] = []
    stack: list[n.Expr] = [e]  # explicit: a run may be hundreds of terms long
    while stack:
        node = stack.pop()
        if type(node) is kind:
            stack += [node.right, node.left]  # type: ignore[attr-defined]
        else:
            out.append(node)
    return out


class _Conditions:
    # ------------------------------------------------------------------ conditions
    def cond(self, e: n.Expr) -> str:
        """Code for a three-valued condition: a variable holding True, False or None."""
        self.at(e)
        if isinstance(e, n.BoolLit):
            return self.const(e.value)
        if isinstance(e, (n.Name, n.Call, n.FirstAvailable, n.Conditional)):
            if self.alt(e):
                return self.plain(e)
            return self._value(e)
        out = self.tmp("t")
        if any(self.alt(x) for x in n.compared(e)):
            self.over_alternatives(e, out)
            return out
        if isinstance(e, n.Not):
            a = self.cond(e.operand)
            self.w(f"{out} = None if {a} is None else not {a}")
        elif isinstance(e, (n.And, n.Or)) and all(map(self.cheap, terms := _chain(e))):
            self.flat_junction(isinstance(e, n.Or), terms, out)
        elif isinstance(e, (n.And, n.Or)):
            self.chain_junction(isinstance(e, n.Or), _chain(e), out)
        elif isinstance(e, n.Unless):
            self.junction(e, out)
        elif isinstance(e, n.Implies):
            a = self.cond(e.premise)
            self.w(f"if {a} is False:")
            with self.w.indent():
                self.w(f"{out} = True")
            self.w("else:")
            with self.w.indent():
                b = self.cond(e.conclusion)
                unknown = self.unknown(a, b)
                self.w(f"{out} = True if {b} is True else (None if {unknown} else False)")
        elif isinstance(e, n.Compare):
            self.compare(e.op, e.left, e.right, out)
        elif isinstance(e, n.Between):
            a = self.plain(e.subject)
            target = self.carrier(e.subject)
            lo = self.plain(e.low, target, self.molar(e.subject))
            hi = self.plain(e.high, target, self.molar(e.subject))
            plain = f"{lo} <= {a} <= {hi}"
            test = self.ranged(plain, f"r_between({a}, {lo}, {hi})", a, lo, hi)
            self.w(f"{out} = None if {self.unknown(a, lo, hi)} else {test}")
        elif isinstance(e, n.Member):
            a = self.plain(e.subject)
            t = self.type(e.subject)
            members: frozenset[Any]
            if isinstance(t, ScaleT):
                members = frozenset(t.positions[m] for m in e.members)
            else:
                members = frozenset(e.members)
            op = "not in" if e.negated else "in"
            self.w(f"{out} = None if {a} is None else {a} {op} {self.const(members)}")
        elif isinstance(e, n.IsKnown):
            a = self.value(e.subject)
            self.w(f"{out} = {a} is not None")
        elif isinstance(e, n.CompareRef):
            assert isinstance(e.left, n.Name)
            a = self.plain(e.left)
            # k x the limit, computed exactly and rounded once (limit_products)
            limit = self.load(limit_key(e.left.name, e.limit, e.factor.value), e)
            op = "==" if e.op == "=" else e.op
            self.w(f"{out} = None if {self.unknown(a, limit)} else {a} {op} {limit}")
        elif isinstance(e, n.InNormalRange):
            assert isinstance(e.subject, n.Name)
            a = self.value(e.subject)
            lo = self.load(e.subject.name + "#low", e)
            hi = self.load(e.subject.name + "#high", e)
            plain = f"({lo} is None or {lo} <= {a}) and ({hi} is None or {a} <= {hi})"
            test = self.ranged(plain, f"r_in_range({a}, {lo}, {hi})", a)
            self.w(f"{out} = None if {a} is None or ({lo} is None and {hi} is None) else {test}")
        elif isinstance(e, n.Window):
            self.window(e, out)
        elif isinstance(e, n.DateBound):
            self.date_bound(e, out)
        elif isinstance(e, n.WindowBetween):
            self.window_between(e, out)
        elif isinstance(e, n.Period):
            self.period(e, out)
        elif isinstance(e, n.Order):
            d, a = self.plain(e.subject), self.plain(e.anchor)
            op = "<" if e.direction == "before" else ">"
            self.w(f"{out} = None if {self.unknown(d, a)} else {d} {op} {a}")
        elif isinstance(e, n.Quantified):
            self.quantified(e, out)
        else:
            raise AssertionError(type(e))
        return out

    def over_alternatives(self, e: n.Expr, out: str) -> None:
        """A comparison form (nodes.compared) over values with several possibilities
        (runtime.Alt): the form once per combination (runtime.alt_product, the same
        bound as alt_op), decided when all agree (runtime.agreed), as `compare` is."""
        operands = [x for x in n.compared(e) if self.alt(x)]
        codes = [self._value(x) for x in operands]  # each in its own carrier unit
        combos, results = self.tmp("c"), self.tmp("r")
        names = [self.tmp("a") for _ in operands]
        self.w(f"{combos} = alt_product(({', '.join(codes)},))")
        self.w(f"if {combos} is None:")
        with self.w.indent():
            self.w(f"{out} = None")
        self.w("else:")
        with self.w.indent():
            self.w(f"{results} = []")
            self.w(f"for {', '.join(names)}, in {combos}:")
            saved = self.bound
            self.bound = {**saved, **{id(x): v for x, v in zip(operands, names, strict=True)}}
            try:
                with self.w.indent():
                    self.w(f"{results}.append({self.cond(e)})")
            finally:
                self.bound = saved
            self.w(f"{out} = agreed({results})")

    def ranged(self, plain: str, call: str, *codes: str) -> str:
        """`plain` for plain values, `call` (a runtime function) when one of the codes
        holds a Range (an interval-valued fact: runtime.Range); chained comparisons on
        a Range would not be three-valued, so they never see one."""
        names = [c for c in dict.fromkeys(codes) if c.isidentifier() and not c.startswith("K")]
        if not names:
            return plain
        check = " or ".join(f"{c}.__class__ is Range" for c in names)
        return f"({call} if {check} else {plain})"

    def unknown(self, *codes: str) -> str:
        """`a is None or b is None` over the non-literal operands."""
        names = [c for c in codes if c.isidentifier() and not c.startswith("K")]
        names = [c for c in names if c not in ("True", "False", "None")]
        return " or ".join(f"{c} is None" for c in dict.fromkeys(names)) or "False"

    def molar(self, e: n.Expr) -> Fraction | None:
        if isinstance(e, n.Name) and self.c.refs.get(id(e), Ref("", "")).kind == "fact":
            return self.c.facts[e.name].molar_mass
        return None

    def compare(self, op: str, left: n.Expr, right: n.Expr, out: str) -> None:
        lt, rt = self.type(left), self.type(right)
        flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
        if isinstance(rt, (ScaleT, PressureT)) and not isinstance(lt, type(rt)):
            left, right = right, left
            op = flip.get(op, op)
        elif isinstance(left, n.PressureLit):
            left, right, op = right, left, flip.get(op, op)
        if isinstance(right, n.PressureLit):
            self.pressure_compare(op, left, right, out)
            return
        a = self.value(left)
        b = self.value(right, self.carrier(left), self.molar(left))
        pyop = {"=": "==", "!=": "!="}.get(op, op)
        if self.alt(left) or self.alt(right):
            self.w(f"{out} = decided(alt_op({pyop!r}, {a}, {b}))")
            return
        self.w(f"{out} = None if {self.unknown(a, b)} else {a} {pyop} {b}")

    def pressure_compare(self, op: str, left: n.Expr, pair: n.PressureLit, out: str) -> None:
        """Systolic and diastolic each compared; `<`, `<=`, `=` need both, `>`, `>=`, `!=`
        either (nodes.PRESSURE_COMBINE): "BP < 140/90" both below, "BP > 160/100" either
        above."""
        bp = self.value(left)
        k = 1  # the pair's unit is `mmHg` or `mm[Hg]` (the PRESSURE_PAIR terminal): the fact's
        pyop = {"=": "==", "!=": "!="}.get(op, op)
        parts = []
        for index, limit in enumerate((pair.systolic, pair.diastolic)):
            part = self.tmp("t")
            value = f"{bp}[{index}]"
            self.w(
                f"{part} = None if {bp} is None or {value} is None else "
                f"{value} {pyop} {self.const(float(limit * k))}"
            )
            parts.append(part)
        s, d = parts
        stop = n.PRESSURE_COMBINE[op] == "any"  # the value that decides alone
        self.w(
            f"{out} = {stop} if {s} is {stop} or {d} is {stop} else "
            f"(None if {s} is None or {d} is None else {not stop})"
        )

    def cheap(self, e: n.Expr) -> bool:
        """Cheap to evaluate eagerly: no list loops, calls or formulas inside."""
        for x in e.walk():
            if isinstance(x, (n.Quantified, n.Call, n.Arith, n.FirstAvailable)):
                return False
            if isinstance(x, n.Name) and self.ref(x).kind == "define":
                return False
        return True

    def flat_junction(self, is_or: bool, terms: list[n.Expr], out: str) -> None:
        """A chain of cheap conditions: every term, then one Kleene combination."""
        codes = [self.cond(t) for t in terms]
        stop = "True" if is_or else "False"
        decided = " or ".join(f"{c} is {stop}" for c in codes)
        unknown = " or ".join(f"{c} is None" for c in codes)
        self.w(f"{out} = {stop} if {decided} else (None if {unknown} else {not is_or})")

    def junction(self, e: n.And | n.Or | n.Unless, out: str) -> None:
        """Kleene and/or with short-circuit: the deciding value stops evaluation."""
        if isinstance(e, n.Or):
            stop, left, right, negate_right = True, e.left, e.right, False
        elif isinstance(e, n.And):
            stop, left, right, negate_right = False, e.left, e.right, False
        else:  # rule unless exception == rule and not exception
            stop, left, right, negate_right = False, e.rule, e.exception, True
        a = self.cond(left)
        self.w(f"if {a} is {stop}:")
        with self.w.indent():
            self.w(f"{out} = {stop}")
        self.w("else:")
        with self.w.indent():
            b = self.cond(right)
            if negate_right:
                nb = self.tmp("t")
                self.w(f"{nb} = None if {b} is None else not {b}")
                b = nb
            self.w(f"if {b} is {stop}:")
            with self.w.indent():
                self.w(f"{out} = {stop}")
            self.w(f"elif {a} is None or {b} is None:")
            with self.w.indent():
                self.w(f"{out} = None")
            self.w("else:")
            with self.w.indent():
                self.w(f"{out} = {not stop}")

    def edge(
        self, node: n.Expr, anchor: n.Expr, duration: n.QuantityLit, sign: int, side: str = "lo"
    ) -> str:
        """The day number `anchor + sign * duration` (None when the anchor is unknown).

        Weeks and days are fixed lengths; months and years are calendar steps added to the
        earlier date: after the anchor add_months, before it months_back's `side` edge
        (runtime_calendar: `lo` for tests of add_months(d) >= A, `hi` for <= A).
        """
        unit = parse_unit(duration.unit)
        amount = duration.value * unit.factor

        def make_edge() -> str:
            a = self.plain(anchor)
            edge = self.tmp()
            if unit.dims == (("[calendar]", 1),) and amount.denominator == 1 and sign < 0:
                shift = f"months_back({a}, {int(amount)}, {side!r})"
            elif unit.dims == (("[calendar]", 1),) and amount.denominator == 1:
                shift = f"add_months({a}, {sign * int(amount)})"
            else:
                days = amount * (Fraction(30436875, 1000000) if unit.dims != TIME else 1)
                days = days / 86400 if unit.dims == TIME else days
                shift = f"{a} + {self.const(float(sign * days))}"
            self.w(f"{edge} = None if {self.unknown(a)} else {shift}")
            return edge

        hoistable = isinstance(anchor, n.Name) and self.ref(anchor).kind in ("anchor", "fact")
        if hoistable and self.loop_depth:
            # inside a list condition the edge depends on the anchor only: computed once
            assert isinstance(anchor, n.Name)
            key = ("edge", anchor.name, str(sign * amount), str(unit.dims), side)
            return self.once(key, node, make_edge)
        return make_edge()

    def window(self, e: n.Window, out: str) -> None:
        d = self.plain(e.subject)
        a = self.plain(e.anchor)
        sign = -1 if e.direction == "before" else 1
        edge = self.edge(e, e.anchor, e.duration, sign, edge_side(e))
        if e.direction == "before":
            test = {
                "within": f"{edge} <= {d} <= {a}",
                "more": f"{d} < {edge}",
                "less": f"{edge} < {d} <= {a}",
            }[e.kind]
        else:
            test = {
                "within": f"{a} <= {d} <= {edge}",
                "more": f"{d} > {edge}",
                "less": f"{a} <= {d} < {edge}",
            }[e.kind]
        before = e.direction == "before"
        test = self.ranged(test, f"r_window({e.kind!r}, {before}, {d}, {a}, {edge})", d, a)
        self.w(f"{out} = None if {self.unknown(d, a)} else {test}")

    def date_bound(self, e: n.DateBound, out: str) -> None:
        """`S at least D before A`: S <= A - D; `no later than A`: S <= A; and mirrors."""
        d = self.plain(e.subject)
        if e.duration is not None:
            sign = -1 if e.direction == "before" else 1
            edge = self.edge(e, e.anchor, e.duration, sign, edge_side(e))
        else:
            edge = self.plain(e.anchor)
        # one comparison: three-valued when a date is a Range (a partial date, an ongoing
        # end), decided when every day it may be decides it (interpreter.date_form)
        self.w(f"{out} = None if {self.unknown(d, edge)} else {d} {e.op} {edge}")

    def window_between(self, e: n.WindowBetween, out: str) -> None:
        """`S between D1 and D2 before A`: A - D2 <= S <= A - D1 (after: A + D1 .. A + D2)."""
        ends = e.durations()
        assert ends is not None  # the checker requires written durations
        d = self.plain(e.subject)
        sign = -1 if e.direction == "before" else 1
        near = self.edge(e, e.anchor, ends[0], sign, "hi")  # add_months(S, D1) <= A
        far = self.edge(e, e.anchor, ends[1], sign, "lo")  # add_months(S, D2) >= A
        low, high = (far, near) if sign < 0 else (near, far)
        test = self.ranged(
            f"{low} <= {d} <= {high}", f"r_between({d}, {low}, {high})", d, low, high
        )
        self.w(f"{out} = None if {self.unknown(d, low, high)} else {test}")

    def period(self, e: n.Period, out: str) -> None:
        """START..END against a window [LOW, HIGH]: START <= HIGH and END >= LOW (Kleene).

        Each comparison is three-valued on a Range: an ongoing end (no latest day) is at
        least the evaluation date, so a period is ongoing at it and overlaps any window
        reaching it; a window after it is unknown (interpreter.date_form)."""
        start, end = self.plain(e.start), self.plain(e.end)
        a = self.plain(e.anchor)
        low = high = a
        if e.duration is not None:
            sign = -1 if e.direction == "before" else 1
            shifted = self.edge(e, e.anchor, e.duration, sign)
            low, high = (shifted, a) if sign < 0 else (a, shifted)
        first, second = self.tmp("t"), self.tmp("t")
        self.w(f"{first} = None if {self.unknown(start, high)} else {start} <= {high}")
        self.w(f"{second} = None if {self.unknown(end, low)} else {end} >= {low}")
        # an unknown end is never before its start (R4 Period per-1: "start SHALL have a
        # lower value than end"): a start surely on or after LOW decides END >= LOW
        # (realfhir7 F3: an order 14 days ago with no end overlaps 4 weeks before)
        self.w(
            f"if {second} is None and not ({self.unknown(start, low)}) "
            f"and ({start} >= {low}) is True:"
        )
        with self.w.indent():
            self.w(f"{second} = True")
        test = (
            f"False if {first} is False or {second} is False else "
            f"(None if {first} is None or {second} is None else True)"
        )
        self.w(f"{out} = {test}")
        # an end before the start is no period (swapped dates): unknown, never decided
        exact = " and ".join(f"{c}.__class__ is not Range" for c in (start, end))
        self.w(f"if not ({self.unknown(start, end)}) and {exact} and {end} < {start}:")
        with self.w.indent():
            self.w(f"{out} = None")

    def chain_junction(self, is_or: bool, terms: list[n.Expr], out: str) -> None:
        """Kleene and/or over a run of terms, short-circuit, one `if` per term at one level
        (flat however long the run)."""
        stop = is_or
        first = self.cond(terms[0])
        self.w(f"{out} = {first}")
        for term in terms[1:]:
            self.w(f"if {out} is not {stop}:")
            with self.w.indent():
                b = self.cond(term)
                self.w(
                    f"{out} = {stop} if {b} is {stop} else "
                    f"(None if {out} is None or {b} is None else {not stop})"
                )

    def quantified(self, e: n.Quantified, out: str) -> None:
        items = self.list_key(e)
        t = self.type_of_list(e)
        yes, unknown = self.tmp("c"), self.tmp("c")
        self.w(f"if {items} is None:")
        with self.w.indent():
            self.w(f"{out} = None")
        self.w("else:")
        with self.w.indent():
            self.w(f"{yes} = 0")
            self.w(f"{unknown} = 0")
            el = self.tmp("el")
            self.w(f"for {el} in {items}:")
            saved = dict(self.env)
            self.loop_depth += 1
            with self.w.indent():
                for fname, _ in t.fields:
                    self.env[("field", fname)] = f"{el}[{fname!r}]"
                b = self.cond(e.body)
                unknown_test, true_test = self.fuse_last(b)
                self.w(f"if {unknown_test}:")
                with self.w.indent():
                    self.w(f"{unknown} += 1")
                self.w(f"elif {true_test}:")
                with self.w.indent():
                    self.w(f"{yes} += 1")
                    if e.quantifier in ("any", "no"):
                        self.w("break")
                if e.quantifier == "all":
                    self.w("else:")
                    with self.w.indent():
                        self.w(f"{yes} = -1")
                        self.w("break")
            self.env = saved
            self.loop_depth -= 1
            total = f"len({items})"
            q = e.quantifier
            if q == "any":
                expr = f"True if {yes} else (None if {unknown} else False)"
            elif q == "no":
                expr = f"False if {yes} else (None if {unknown} else True)"
            elif q == "all":
                expr = f"False if {yes} < 0 else (None if {unknown} else True)"
            elif q == "majority":
                expr = (
                    f"True if 2 * {yes} > {total} else "
                    f"(False if 2 * ({yes} + {unknown}) <= {total} else None)"
                )
            else:
                k = e.count
                expr = f"True if {yes} >= {k} else (False if {yes} + {unknown} < {k} else None)"
            self.w(f"{out} = {expr}")
            self.future_only(e, t, out)

    def future_only(self, e: n.Quantified, t: ListT, out: str) -> None:
        """`any` / `at least N` not met, `no` met, by the recorded items: unknown when only
        an item dated after the evaluation date could meet the body (future_events.py),
        the body evaluated on its two hypothetical items (runtime.future_items)."""
        dates = past_date_fields(self.c, e)
        if not dates:
            return
        self.w(f"if {out} is {e.quantifier == 'no'}:")
        with self.w.indent():
            as_of = self.load("@" + ENROLLMENT, e)
            fields = tuple(name for name, _ in t.fields)
            hyp, el = self.tmp("h"), self.tmp("el")
            self.w(f"{hyp} = []")
            self.w(f"for {el} in future_items({as_of}, {self.const(dates)}, {self.const(fields)}):")
            saved = dict(self.env)
            self.loop_depth += 1
            with self.w.indent():
                for fname, _ in t.fields:
                    self.env[("field", fname)] = f"{el}[{fname!r}]"
                self.w(f"{hyp}.append({self.cond(e.body)})")
            self.env = saved
            self.loop_depth -= 1
            self.w(f"if only_future({hyp}):")
            with self.w.indent():
                self.w(f"{out} = None")

    def fuse_last(self, var: str) -> tuple[str, str]:
        """Tests for "unknown" and "true" of a condition just computed into `var`.

        When its last line is `var = None if GUARD else TEST` (one comparison), the line
        is taken back and GUARD / TEST are tested directly: one statement less per list
        item, in the loops that run most often.
        """
        text, _ = self.w.lines[-1]
        prefix = "    " * self.w.level + f"{var} = None if "
        # only a membership test is fused: a comparison may meet a Range and be None,
        # which `elif TEST:` would count as "no"
        if text.startswith(prefix) and text.count(" else ") == 1 and _MEMBERSHIP.search(text):
            guard, test = text[len(prefix) :].split(" else ")
            self.w.lines.pop()
            return guard, test
        return f"{var} is None", var

    def list_key(self, e: n.Quantified) -> str:
        return self.load(e.list_name, e)

    def type_of_list(self, e: n.Quantified) -> ListT:
        t = self.c.facts[e.list_name].type
        assert isinstance(t, ListT)
        return t
