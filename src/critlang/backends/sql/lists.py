"""List conditions (`any / no / all / majority / at least k of LIST with (...)`): each
condition's body is compiled over the item row `i`, and counted per patient (items
true, unknown, false) in one pass over the list's items; the counts are joined to the
patient row and decide the condition as runtime's quantifiers do (Kleene)."""

from __future__ import annotations

from sqlglot import exp

from ... import nodes as n
from ...checker import Ref
from ...future_events import past_date_fields
from ...typesys import BoolT, EnumT, ListT
from . import intervals as iv
from .base import CompilerBase, Quantifier
from .calendar import num
from .sqltree import case, col, is_, is_null, lit, null, paren, same
from .windows import Windows

FACTS = "critlang_facts"


class Lists(Windows):
    """List conditions, compiled inside one list's item scope."""

    def quantified(self, e: n.Quantified) -> exp.Expression:
        if self.in_item is not None:
            raise self.unsupported("a list condition inside another list condition", e)
        for x in e.body.walk():
            if isinstance(x, n.Name) and self.c.refs.get(id(x), Ref("", "")).kind == "param":
                raise self.unsupported("a list condition on a function's parameter", e)
        t = self.c.facts[e.list_name].type
        assert isinstance(t, ListT)
        fields = self.item_fields.setdefault(e.list_name, {})
        for fname, _ in t.fields:
            fields.setdefault(fname, f"x{len(fields) + 1}")
        saved_arm = self.arm
        self.in_item = e.list_name
        self.plain_fields = set()
        try:
            body = self.cond(e.body)
        finally:
            self.in_item = None
        self.all_plain |= {f"{e.list_name}.{f}" for f in self.plain_fields}
        if self.plain_fields:  # an item whose field read plainly is an interval: unknown
            ranged = [iv.field_is_range("i", fields[f]) for f in sorted(self.plain_fields)]
            body = case(exp.or_(*ranged, copy=False), null(), body)
        future = self.future_only(e)
        # the same body on the same list (a criterion compiled again per arm, say) is
        # counted once
        shared = next(
            (
                q
                for q in self.quantifiers
                if q.node.list_name == e.list_name
                and hash(q.body) == hash(body)
                and same(q.body, body)
            ),
            None,
        )
        if shared is None:
            shared = Quantifier(f"q{len(self.quantifiers) + 1}", e, body)
            self.quantifiers.append(shared)
        shared.need(e.quantifier)
        alias = shared.alias
        self.arm = saved_arm
        known = self.column(e.list_name)  # the item count; NULL when the list is unknown
        yes = col(f"{alias}_yes", "w")
        unk = col(f"{alias}_unknown", "w")
        total = known.copy()
        q = e.quantifier
        if q in ("any", "no"):  # Kleene OR over the items: the highest code
            some = col(f"{alias}_max", "w")
            result = exp.Case(
                ifs=[
                    exp.If(this=_is_code(some, TRUE_CODE), true=exp.Boolean(this=q == "any")),
                    exp.If(this=_is_code(some.copy(), UNKNOWN_CODE), true=null()),
                    exp.If(this=future, true=null()),
                ],
                default=exp.Boolean(this=q == "no"),
            )
        elif q == "all":  # Kleene AND over the items: the lowest code
            every = col(f"{alias}_min", "w")
            result = exp.Case(
                ifs=[
                    exp.If(this=_is_code(every, FALSE_CODE), true=exp.false()),
                    exp.If(this=_is_code(every.copy(), UNKNOWN_CODE), true=null()),
                ],
                default=exp.true(),
            )
        elif q == "majority":
            result = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.GT(this=exp.Mul(this=num(2), expression=yes), expression=total),
                        true=exp.true(),
                    ),
                    exp.If(
                        this=exp.LTE(
                            this=exp.Mul(
                                this=num(2),
                                expression=paren(exp.Add(this=yes.copy(), expression=unk)),
                            ),
                            expression=total.copy(),
                        ),
                        true=exp.false(),
                    ),
                ],
                default=null(),
            )
        else:
            k = num(int(e.count or 0))
            result = exp.Case(
                ifs=[
                    exp.If(this=exp.GTE(this=yes, expression=k), true=exp.true()),
                    exp.If(
                        this=exp.and_(
                            exp.LT(
                                this=paren(exp.Add(this=yes.copy(), expression=unk)),
                                expression=k.copy(),
                            ),
                            exp.Not(this=paren(future)),
                            copy=False,
                        ),
                        true=exp.false(),
                    ),
                ],
                default=null(),
            )
        return self.let(case(is_null(known), null(), result))

    def future_only(self, e: n.Quantified) -> exp.Expression:
        """TRUE when only an item dated after the evaluation date could meet e's body
        (future_events.py): the body compiled over the two hypothetical items, on the
        patient row (a field read plainly is NULL there, as the Python evaluator's
        hypothetical items hold no plain value for it either)."""
        dates = past_date_fields(self.c, e)
        if not dates:
            return exp.false()
        results = []
        for past in (True, False):
            as_of = num(self.as_of.toordinal())
            self.hypothetical = (
                {d: iv.Iv(null(), as_of, plain=False) for d in dates} if past else {}
            )
            try:
                results.append(self.let(self.cond(e.body)))
            finally:
                self.hypothetical = None
        return paren(
            exp.and_(is_(results[0], False), exp.Not(this=is_(results[1], False)), copy=False)
        )


FALSE_CODE, UNKNOWN_CODE, TRUE_CODE = 0, 1, 2  # a body's value, ordered as Kleene's


def _is_code(e: exp.Expression, code: int) -> exp.Expression:
    return exp.EQ(this=e, expression=exp.Literal.number(code))


def _code(value: exp.Expression) -> exp.Expression:
    """A body's three-valued result as a code: MAX over the items is their Kleene OR,
    MIN their AND."""
    return exp.Case(
        ifs=[
            exp.If(this=value.copy(), true=exp.Literal.number(TRUE_CODE)),
            exp.If(this=is_null(value), true=exp.Literal.number(UNKNOWN_CODE)),
        ],
        default=exp.Literal.number(FALSE_CODE),
    )


# each aggregate over the items of a patient, and its value for a patient without items
AGGREGATES = {
    "yes": (
        lambda v: exp.Count(this=exp.Case(ifs=[exp.If(this=v, true=exp.Literal.number(1))])),
        0,
    ),
    "unknown": (
        lambda v: exp.Sub(this=exp.Count(this=exp.Star()), expression=exp.Count(this=v)),
        0,
    ),
    "max": (lambda v: exp.Max(this=_code(v)), FALSE_CODE),  # OR of nothing: false
    "min": (lambda v: exp.Min(this=_code(v)), TRUE_CODE),  # AND of nothing: true
}


def item_rows(comp: CompilerBase, list_name: str) -> exp.Select:
    """One row per item of the list (`pid`, `item`, then one column per field, named
    as `comp.item_fields` says, with a field's interval columns) from the facts table."""
    fields = comp.item_fields[list_name]
    item_cols: list[exp.Expression] = [col("pid"), col("item")]
    t = comp.c.facts[list_name].type
    assert isinstance(t, ListT)
    ftypes = dict(t.fields)
    for fname, cname in fields.items():
        is_field = exp.EQ(this=col("field"), expression=lit(fname))
        ft = ftypes[fname]
        if isinstance(ft, EnumT):
            v = exp.Max(this=case(is_field, col("text"), null()))
        elif isinstance(ft, BoolT):
            raw = exp.Max(this=case(is_field, col("value"), null()))
            v = case(is_null(raw), null(), exp.NEQ(this=raw.copy(), expression=num(0)))
        else:
            v = exp.Max(this=case(is_field, col("value"), null()))
        item_cols.append(exp.alias_(v, cname, copy=False))
        if iv.capable(ft):
            item_cols += iv.item_columns(is_field, cname)
    return (
        exp.select(*item_cols, copy=False)
        .from_(FACTS, copy=False)
        .where(
            exp.and_(
                exp.EQ(this=col("fact"), expression=lit(list_name)),
                exp.Not(this=is_null(col("item"))),
                is_null(col("problem")),
                copy=False,
            ),
            copy=False,
        )
        .group_by(col("pid"), col("item"), copy=False)
    )


def join_list_counts(
    comp: CompilerBase,
    query: exp.Select,
    stored: dict[str, str] | None = None,
    patient: exp.Select | None = None,
) -> exp.Select:
    """`query` (over the patient row `w0`) with every list condition's per-patient
    counts joined as columns `q1_yes`, `q1_unknown`, `q1_no` (0 without items). The
    items come from the facts table, or with `stored` (list fact -> table written at
    ingest, values.py: `item_rows` stored) from that table directly. A condition that
    reads the patient's own values joins the patient row: the CTE `critlang_wide`, or
    `patient` where given (inlined: no CTE to materialise)."""
    by_list: dict[str, list[Quantifier]] = {}
    for q in comp.quantifiers:
        by_list.setdefault(q.node.list_name, []).append(q)
    for number, (list_name, quantifiers) in enumerate(by_list.items(), 1):
        items: exp.Expression
        if stored is None:
            items = item_rows(comp, list_name).subquery("i", copy=False)
        else:
            items = exp.alias_(exp.to_table(stored[list_name]), "i", table=True, copy=False)
        # every condition on this list, counted in one pass over its items: each body
        # evaluated once per item (a column `qN` of the item rows `b`), then only the
        # counts its quantifiers read
        bodies: list[exp.Expression] = [exp.alias_(col("pid", "i"), "pid", copy=False)]
        sums: list[exp.Expression] = [exp.alias_(col("pid", "b"), "pid", copy=False)]
        needs_patient = False
        for q in quantifiers:
            body = q.body
            needs_patient = needs_patient or any(c.table == "w" for c in body.find_all(exp.Column))
            bodies.append(exp.alias_(body, q.alias, copy=False))
            value = col(q.alias, "b")
            for suffix in q.counts():
                counted = AGGREGATES[suffix][0](value.copy())
                sums.append(exp.alias_(counted, f"{q.alias}_{suffix}", copy=False))
        rows = exp.select(*bodies, copy=False).from_(items, copy=False)
        if needs_patient:  # a condition reads the patient's own values (an anchor date)
            row = (
                exp.alias_(exp.to_table("critlang_wide"), "w", table=True, copy=False)
                if patient is None
                else patient.copy().subquery("w", copy=False)
            )
            rows = rows.join(
                row,
                on=exp.EQ(this=col("pid", "w"), expression=col("pid", "i")),
                copy=False,
            )
        counts = exp.select(*sums, copy=False).from_(rows.subquery("b", copy=False), copy=False)
        counts = counts.group_by(col("pid", "b"), copy=False)
        alias = f"n{number}"
        query = query.join(
            counts.subquery(alias, copy=False),
            on=exp.EQ(this=col("pid", alias), expression=col("pid", "w0")),
            join_type="left",
            copy=False,
        )
        for q in quantifiers:
            for suffix in q.counts():
                name = f"{q.alias}_{suffix}"
                none = AGGREGATES[suffix][1]  # without items (an integer, as the counts)
                query = query.select(
                    exp.alias_(
                        exp.Coalesce(this=col(name, alias), expressions=[exp.Literal.number(none)]),
                        name,
                        copy=False,
                    ),
                    copy=False,
                )
    return query
