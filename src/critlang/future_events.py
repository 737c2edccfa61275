"""Events after the evaluation date in list conditions (docs/patients.md, "Events after
the evaluation date"), one static rule shared by every evaluator, SQL and the proofs.

A list records what happened: an item's dates other than an end or a planned date
(data/reader_lists.may_lie_ahead) are never after the evaluation date (the reader
refuses them). So an `any`, `no` or `at least N`
condition whose dates only an item dated after the evaluation date could meet ("a urine
pregnancy test taken on Day -1", Day -1 ahead) is not decided by the absence of such an
item: the event may still happen. Each evaluator decides it per patient by evaluating
the condition's body on two hypothetical items: `past`, every such date field any day
up to the evaluation date and every other field unknown, and `any`, every field
unknown. When `past` is not met and `any` is not "not met", only a future item could
meet it: the condition is unknown unless the recorded items already decide it (`any`
met, `no` not met, `at least N` met).

The rule is applied only where every read of such a date field in the body is an
operand of a comparison form (nodes.compared, `<`, `=`, ...), which every back end
decides over an interval alike; elsewhere (a date passed to a formula) the condition is
evaluated as before.
"""

from __future__ import annotations

from . import nodes as n
from .checker import CheckResult
from .data.reader_lists import may_lie_ahead
from .typesys import DateT, ListT

QUANTIFIERS = ("any", "no", "at_least")


def past_date_fields(checked: CheckResult, e: n.Quantified) -> tuple[str, ...]:
    """The list's date fields (not `end`) whose reads decide the rule for `e`, or ()
    when the rule does not apply to `e` (see the module's docstring)."""
    if e.quantifier not in QUANTIFIERS:
        return ()
    t = checked.facts[e.list_name].type
    if not isinstance(t, ListT):
        return ()
    dates = {name for name, ft in t.fields if isinstance(ft, DateT) and not may_lie_ahead(name)}
    read: set[str] = set()
    stack: list[n.Node] = [e.body]
    while stack:
        node = stack.pop()
        operands = n.compared(node)
        if isinstance(node, n.Compare):
            operands = (node.left, node.right)
        for child in node.children():
            if isinstance(child, n.Name) and _field(checked, child) in dates:
                if not any(child is x for x in operands):
                    return ()  # read otherwise than as a compared value
                read.add(child.name)
            elif isinstance(child, n.Quantified):
                return ()
            else:
                stack.append(child)
    return tuple(sorted(read))


def _field(checked: CheckResult, e: n.Name) -> str | None:
    r = checked.refs.get(id(e))
    return r.name if r is not None and r.kind == "field" else None


def only_future(past: bool | None, anything: bool | None) -> bool:
    """The rule's test on the body's statuses over the two hypothetical items."""
    return past is False and anything is not False
