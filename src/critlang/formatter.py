"""`critlang fmt`: one canonical layout for criteria files.

The AST is printed back with fixed indentation and spacing, keeping what the author
chose: numbers and units exactly as written (the QUANTITY token's text), parentheses
the author wrote, the order of everything, blank lines between blocks (at most one),
and every comment (a comment inside a multi-line item moves to just above it).
Long rules break at their `or`/`and` runs, one operand per line, nested groups one step
deeper when they are still too long. Formatting is
idempotent, and the formatted file parses to the same AST (tests/test_format.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache

import lark
from lark import Token

from . import nodes as n
from .diagnostics import Diagnostic
from .parser import lark_parser, parse, to_ast
from .source import SourceFile

WIDTH = 100
INDENT = "  "

# binding strength, lowest first (see grammar/critlang.lark)
UNLESS, OR, AND, NOT, COMPARE, SUM, PRODUCT, UNARY, ATOM = range(1, 10)


def quote(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + body.replace("\t", "\\t") + '"'


def _level(e: n.Expr) -> int:
    if isinstance(e, (n.Unless, n.Implies)):
        return UNLESS
    if isinstance(e, n.Or):
        return OR
    if isinstance(e, n.And):
        return AND
    if isinstance(e, n.Not):
        return NOT
    if isinstance(
        e,
        (
            n.Compare,
            n.CompareRef,
            n.Between,
            n.Member,
            n.InNormalRange,
            n.IsKnown,
            n.Window,
            n.Order,
            n.DateBound,
            n.WindowBetween,
            n.Period,
        ),
    ):
        return COMPARE
    if isinstance(e, n.Arith):
        return SUM if e.op in "+-" else PRODUCT
    if isinstance(e, n.Neg):
        return UNARY
    return ATOM


def expr(e: n.Expr, min_level: int = UNLESS) -> str:
    """An expression on one line; parentheses where the author wrote them or needed."""
    text = _bare(e)
    parens = e.parens or (1 if _level(e) < min_level else 0)
    return "(" * parens + text + ")" * parens


def _bare(e: n.Expr) -> str:
    if isinstance(e, n.Unless):
        return f"{expr(e.rule, OR)} unless {expr(e.exception, OR)}"
    if isinstance(e, n.Implies):
        if e.form == "if":
            return f"if {expr(e.premise, OR)} then {expr(e.conclusion, OR)}"
        return f"{expr(e.premise, OR)} implies {expr(e.conclusion, OR)}"
    if isinstance(e, (n.Or, n.And)):
        # a run of one operator along the left spine, without recursion (runs may be long)
        word, level, right_level = ("or", OR, AND) if isinstance(e, n.Or) else ("and", AND, NOT)
        rights = [e.right]
        node = e.left
        while type(node) is type(e) and not node.parens:
            rights.append(node.right)  # type: ignore[attr-defined]
            node = node.left  # type: ignore[attr-defined]
        parts = [expr(node, level), *(expr(r, right_level) for r in reversed(rights))]
        return f" {word} ".join(parts)
    if isinstance(e, n.Not):
        return f"not {expr(e.operand, NOT)}"
    if isinstance(e, n.Compare):
        return f"{expr(e.left, SUM)} {e.op} {expr(e.right, SUM)}"
    if isinstance(e, n.CompareRef):
        return f"{expr(e.left, SUM)} {e.op} {e.factor.text} x {e.limit}"
    if isinstance(e, n.Between):
        return f"{expr(e.subject, SUM)} between {expr(e.low, SUM)} and {expr(e.high, SUM)}"
    if isinstance(e, n.Member):
        neg = "not in" if e.negated else "in"
        return f"{expr(e.subject, SUM)} {neg} {{{', '.join(e.members)}}}"
    if isinstance(e, n.InNormalRange):
        return f"{expr(e.subject, SUM)} within normal range"
    if isinstance(e, n.IsKnown):
        return f"{expr(e.subject, SUM)} is known"
    if isinstance(e, n.Window):
        kind = {"within": "within", "more": "more than", "less": "less than"}[e.kind]
        return (
            f"{expr(e.subject, SUM)} {kind} {_quantity(e.duration)} {e.direction} "
            f"{expr(e.anchor, SUM)}"
        )
    if isinstance(e, n.Order):
        return f"{expr(e.subject, SUM)} {e.direction} {expr(e.anchor, SUM)}"
    if isinstance(e, n.DateBound):
        subject, anchor = expr(e.subject, SUM), expr(e.anchor, SUM)
        if e.duration is not None:
            return f"{subject} at least {_quantity(e.duration)} {e.direction} {anchor}"
        if e.wording == "on_or":
            return f"{subject} on or {'before' if e.op == '<=' else 'after'} {anchor}"
        return f"{subject} no {'later' if e.op == '<=' else 'earlier'} than {anchor}"
    if isinstance(e, n.WindowBetween):
        return (
            f"{expr(e.subject, SUM)} between {expr(e.low, SUM)} and {expr(e.high, SUM)} "
            f"{e.direction} {expr(e.anchor, SUM)}"
        )
    if isinstance(e, n.Period):
        period = f"{expr(e.start, SUM)} to {expr(e.end, SUM)}"
        if e.kind == "ongoing":
            return f"{period} ongoing at {expr(e.anchor, SUM)}"
        assert e.duration is not None
        return f"{period} overlaps {_quantity(e.duration)} {e.direction} {expr(e.anchor, SUM)}"
    if isinstance(e, n.Arith):
        if e.op in "+-":
            return f"{expr(e.left, SUM)} {e.op} {expr(e.right, PRODUCT)}"
        return f"{expr(e.left, PRODUCT)} {e.op} {expr(e.right, UNARY)}"
    if isinstance(e, n.Neg):
        return f"-{expr(e.operand, UNARY)}"
    if isinstance(e, n.NumberLit):
        return e.text
    if isinstance(e, n.QuantityLit):
        return _quantity(e)
    if isinstance(e, n.DualQuantityLit):
        return f"{_quantity(e.primary)} ({_quantity(e.secondary)})"
    if isinstance(e, n.PressureLit):
        pair = f"{e.systolic}/{e.diastolic}"
        return e.raw or (f"{pair} {e.unit}" if e.unit else pair)
    if isinstance(e, n.DateOf):
        return f"date of {e.fact}"
    if isinstance(e, n.DateLit):
        return e.text or e.value.isoformat()
    if isinstance(e, n.BoolLit):
        return "true" if e.value else "false"
    if isinstance(e, n.Name):
        return e.name
    if isinstance(e, n.Call):
        return f"{e.func}({', '.join(expr(a) for a in e.args)})"
    if isinstance(e, n.Attribute):
        return f"{e.obj}.{e.attr}"
    if isinstance(e, n.Magnitude):
        return f"({expr(e.expr, SUM)} in {e.unit})"
    if isinstance(e, n.WithUnit):
        return f"({expr(e.expr, SUM)} as {e.unit})"
    if isinstance(e, n.Conditional):
        return f"({expr(e.then)} if {expr(e.cond)} else {expr(e.otherwise)})"
    if isinstance(e, n.FirstAvailable):
        return f"first available ({', '.join(expr(o) for o in e.options)})"
    if isinstance(e, n.Quantified):
        lead = {
            "any": f"any {e.list_name}",
            "all": f"all {e.list_name}",
            "no": f"no {e.list_name}",
            "majority": f"majority of {e.list_name}",
            "at_least": f"at least {e.count} of {e.list_name}",
        }[e.quantifier]
        return f"{lead} with ({expr(e.body)})"
    raise AssertionError(type(e))


def _quantity(q: n.QuantityLit) -> str:
    return q.raw or f"{q.number_text} {q.unit}"


def _chain(e: n.Expr) -> tuple[str, list[n.Expr]] | None:
    """An `or`/`and` run along the left spine (the node's own parentheses aside), to break
    one operand per line; None for any other expression."""
    if not isinstance(e, (n.Or, n.And)):
        return None
    word, kind = ("or", n.Or) if isinstance(e, n.Or) else ("and", n.And)
    items: list[n.Expr] = []
    node: n.Expr = e
    while isinstance(node, kind) and (node is e or not node.parens):
        items.append(node.right)
        node = node.left
    items.append(node)
    return word, items[::-1]


def _broken(prefix: str, e: n.Expr, min_level: int, cont: str) -> list[str]:
    """`prefix` and `e` on one line, or, when that is too long and `e` is an `or`/`and`
    run (parenthesised or not, at any depth), one operand per line: each continuation
    starts with its operator, indented one step past `cont`, and a nested group is broken
    the same way, its closing parenthesis on its last operand's line."""
    flat = prefix + expr(e, min_level)
    chain = _chain(e)
    if len(flat) <= WIDTH or chain is None:
        return [flat]
    word, items = chain
    parens = e.parens or (1 if _level(e) < min_level else 0)
    level, next_level = (OR, AND) if word == "or" else (AND, NOT)
    inner = cont + INDENT
    lines = _broken(prefix + "(" * parens, items[0], level, inner)
    for x in items[1:]:
        lines += _broken(f"{inner}{word} ", x, next_level, inner)
    lines[-1] += ")" * parens
    return lines


def clause_lines(keyword: str, e: n.Expr) -> list[str]:
    return _broken(f"{INDENT}{keyword} ", e, UNLESS, INDENT)


def type_text(t: n.TypeExpr) -> str:
    if isinstance(t, n.QuantityTypeExpr):
        return f"quantity {t.unit}"
    if isinstance(t, n.NumberTypeExpr):
        return "number"
    if isinstance(t, n.IntegerTypeExpr):
        return f"integer {t.low}..{t.high}"
    if isinstance(t, n.EnumTypeExpr):
        return "enum {" + ", ".join(t.members) + "}"
    if isinstance(t, n.ScaleTypeExpr):
        return "scale {" + " < ".join(t.members) + "}"
    if isinstance(t, n.BooleanTypeExpr):
        return "attestation" if t.attestation else "boolean"
    if isinstance(t, n.BloodPressureTypeExpr):
        return "blood pressure"
    if isinstance(t, n.DateTypeExpr):
        return "date"
    if isinstance(t, n.ListTypeExpr):
        return "list of {" + ", ".join(f"{f.name}: {type_text(f.type)}" for f in t.fields) + "}"
    raise AssertionError(type(t))


@dataclass
class _Line:
    text: str
    start: int  # source offsets of the node the line prints (for comments)
    end: int


@dataclass
class _Block:
    lines: list[_Line] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.lines[0].start

    @property
    def end(self) -> int:
        return max(line.end for line in self.lines)


def _header_lines(h: n.Header) -> list[_Line]:
    out = [_Line(f"protocol {quote(h.identifier)}", h.span.start, h.identifier_span.end)]
    done_arms = False
    notes = iter(h.amendment_notes)
    for key, span in sorted(h.item_spans, key=lambda kv: kv[1].start):
        if key == "title":
            text = f"title {quote(h.title or '')}"
        elif key == "version":
            text = f"version {quote(h.version or '')}"
        elif key == "date":
            text = f"date {h.date_text or (h.date.isoformat() if h.date else '')}"
        elif key == "sex":
            text = f"sex {h.sex}"
        elif key == "minimum_age" and h.minimum_age:
            text = f"minimum age {_quantity(h.minimum_age)}"
        elif key == "maximum_age" and h.maximum_age:
            text = f"maximum age {_quantity(h.maximum_age)}"
        elif key == "healthy_volunteers":
            text = f"healthy volunteers {'yes' if h.healthy_volunteers else 'no'}"
        elif key == "amends":
            text = f"amends {quote(h.amends or '')}"
        elif key == "amendment_note":
            text = f"amendment note {quote(next(notes))}"
        elif key == "tolerance" and h.tolerance:
            text = f"dual unit tolerance {_quantity(h.tolerance)}"
        elif key == "arms" and not done_arms:
            done_arms = True
            arms = ", ".join(
                f"{a.name} {quote(a.label)}" if a.label is not None else a.name for a in h.arms
            )
            text = f"arms {arms}"
        else:
            continue
        out.append(_Line(INDENT + text, span.start, span.end))
    return out


def _option_text(o: n.FactOption) -> str:
    if o.kind == "label":
        return f"label {quote(o.text or '')}"
    if o.kind == "source":
        return f"source {quote(o.text or '')}"
    if o.kind == "molar_mass" and o.quantity:
        return f"molar mass {_quantity(o.quantity)} source {quote(o.text or '')}"
    if o.kind == "convert" and o.units and o.coefficients:
        slope, intercept = o.coefficients
        sign, magnitude = intercept[0], intercept[1:]
        tail = "" if Fraction(magnitude) == 0 else f" {sign} {magnitude}"
        return (
            f"convert {o.units[0]} to {o.units[1]} as {slope} x{tail} source {quote(o.text or '')}"
        )
    if o.kind == "lookback" and o.quantity:
        return f"measured within {_quantity(o.quantity)} before {o.anchor}"
    if o.kind == "history":
        return f"history {o.text}"
    if o.kind == "refrange_reported":
        return "reference range reported"
    if o.kind == "refrange" and o.quantity and o.high:
        return f"reference range {_quantity(o.quantity)} to {_quantity(o.high)}"
    if o.kind == "plausible" and o.quantity and o.high:
        unit = f" {o.high.unit}" if o.high.unit else ""
        if o.quantity.unit and o.quantity.unit != o.high.unit:  # the low end's own unit kept
            return f"plausible {_quantity(o.quantity)} ..{o.high.number_text}{unit}"
        return f"plausible {o.quantity.number_text}..{o.high.number_text}{unit}"
    raise AssertionError(o.kind)


def _lines_of(node: n.Node, lines: list[str]) -> list[_Line]:
    return [_Line(text, node.span.start, node.span.end) for text in lines]


def _decl_blocks(d: n.Node) -> list[_Block]:
    if isinstance(d, n.Fact):
        b = _Block([_Line(f"fact {d.name}: {type_text(d.type)}", d.span.start, d.type.span.end)])
        b.lines += [_Line(INDENT + _option_text(o), o.span.start, o.span.end) for o in d.options]
        return [b]
    if isinstance(d, n.Anchor):
        label = f" {quote(d.label)}" if d.label is not None else ""
        return [_Block(_lines_of(d, [f"anchor {d.name}{label}"]))]
    if isinstance(d, n.Define):
        params = ""
        if d.params is not None:
            params = "(" + ", ".join(f"{p.name}: {type_text(p.type)}" for p in d.params) + ")"
        head = f"define {d.name}{params} ="
        body = expr(d.body)
        if len(head) + 1 + len(body) <= WIDTH:
            return [_Block(_lines_of(d, [f"{head} {body}"]))]
        return [_Block(_lines_of(d, [head, INDENT + body]))]
    if isinstance(d, n.AssumeValue):
        lines = [f"assume {d.name} = {expr(d.value)}", f"{INDENT}because {quote(d.reason)}"]
        return [_Block(_lines_of(d, lines))]
    if isinstance(d, n.AssumeText):
        return [_Block(_lines_of(d, [f"assume {quote(d.text)}"]))]
    if isinstance(d, n.Import):
        return [_Block(_lines_of(d, [f"import {quote(d.path)}"]))]
    if isinstance(d, n.Codes):
        target = d.fact + (f".{d.member}" if d.member else "")
        codes = ", ".join(f"{c.system} {quote(c.value)}" for c in d.codes)
        return [_Block(_lines_of(d, [f"codes {target}: {codes}"]))]
    if isinstance(d, n.Section):
        # the heading line ends after its two words, wherever the first criterion starts
        heading_end = d.span.start + len(d.kind)
        blocks = [_Block([_Line(f"{d.kind} criteria", d.span.start, heading_end)])]
        for c in d.criteria:
            b = _Block([_Line(f"{c.id} {quote(c.text)}", c.span.start, c.id_span.end)])
            for cl in c.clauses:
                if cl.kind in ("rule", "applies") and cl.expr is not None:
                    keyword = "rule" if cl.kind == "rule" else "applies if"
                    b.lines += _lines_of(cl, clause_lines(keyword, cl.expr))
                else:
                    word = "assumption" if cl.kind == "assumption" else "note"
                    b.lines += _lines_of(cl, [f"{INDENT}{word} {quote(cl.text or '')}"])
            blocks.append(b)
        return blocks
    raise AssertionError(type(d))


@cache
def _comment_parser() -> Callable[[str], tuple[lark.Tree, list[Token]]]:
    comments: list[Token] = []
    parser = lark_parser(lexer_callbacks={"COMMENT": comments.append})

    def run(text: str) -> tuple[lark.Tree, list[Token]]:
        comments.clear()
        tree = parser.parse(text)
        return tree, list(comments)

    return run


_BLANK = re.compile(r"\n[ \t]*\n")


def format_source(source: SourceFile) -> tuple[str | None, list[Diagnostic]]:
    """The file in canonical layout, or None and the syntax errors that prevent it."""
    protocol, diags = parse(source)
    if protocol is None:
        return None, diags
    tree, comments = _comment_parser()(source.text)
    protocol, limits = to_ast(tree, source)  # same AST; the comments came with it
    if protocol is None:
        return None, limits
    blocks: list[_Block] = []
    if protocol.header is not None:
        blocks.append(_Block(_header_lines(protocol.header)))
    for d in protocol.decls:
        blocks += _decl_blocks(d)
    return _assemble(source.text, blocks, comments), []


def _assemble(text: str, blocks: list[_Block], comments: list[Token]) -> str:
    def line_no(pos: int) -> int:
        return text.count("\n", 0, pos)

    # where each output line's node ends in the source, to attach trailing comments
    ends = {
        (bi, li): line_no(max(line.end - 1, line.start))
        for bi, b in enumerate(blocks)
        for li, line in enumerate(b.lines)
    }
    leading: dict[int, list[tuple[int, str]]] = {}
    trailing: dict[tuple[int, int], str] = {}
    tail: list[tuple[int, str]] = []
    for c in comments:  # in source order
        pos = c.start_pos or 0
        here = line_no(pos)
        line_start = text.rfind("\n", 0, pos) + 1
        if text[line_start:pos].strip():  # code before it on its line: a trailing comment
            owners = [key for key, end_line in ends.items() if end_line == here]
            if owners:
                trailing[max(owners)] = str(c).rstrip()
                continue
        for bi, b in enumerate(blocks):
            if b.end > pos:  # the first block not yet over: the comment leads it
                leading.setdefault(bi, []).append((pos, str(c).rstrip()))
                break
        else:
            tail.append((pos, str(c).rstrip()))
    out: list[str] = []
    previous_end = 0

    def blank_before(start: int) -> None:
        # keep one blank line where the author had one or more
        if out and start > previous_end and _BLANK.search(text, previous_end, start):
            out.append("")

    for bi, b in enumerate(blocks):
        indent = INDENT if b.lines[0].text.startswith(INDENT) else ""
        for pos, comment in leading.get(bi, []):
            blank_before(pos)
            out.append(indent + comment)
            previous_end = max(previous_end, pos + len(comment))
        blank_before(b.start)
        for li, line in enumerate(b.lines):
            comment = trailing.get((bi, li))
            out.append(line.text + (f"  {comment}" if comment else ""))
        previous_end = max(previous_end, b.end)
    for pos, comment in tail:
        blank_before(pos)
        out.append(comment)
        previous_end = pos + len(comment)
    return "\n".join(out).rstrip("\n") + "\n"
