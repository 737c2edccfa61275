"""`critlang render`: the protocol's criteria for people, as Markdown or one HTML page.

What a reviewer signs off: the header, then every inclusion and exclusion criterion in
order with its id, the verbatim protocol text, and the rule in plain words, with
thresholds in the author's units (both units of a dual-unit threshold), time windows in
words, and every assumption highlighted.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from . import nodes as n
from .checker import CheckResult
from .formatter import expr as formula

Words = str | tuple[str, list["Words"]]  # a phrase, or (heading, items) for a list


@dataclass
class _Crit:
    id: str
    section: str
    text: str
    rule: Words
    applies: Words | None = None
    assumptions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_OPS = {
    "<": "is below",
    "<=": "is at most",
    ">": "is above",
    ">=": "is at least",
    "=": "is",
    "!=": "is not",
}


class _Words:
    def __init__(self, checked: CheckResult) -> None:
        self.c = checked

    def name(self, name: str) -> str:
        if name in self.c.facts:
            label = self.c.facts[name].node.option("label")
            if label and label.text:
                return label.text  # whole: a cut label can say something else
            return name.replace("_", " ")
        if name in self.c.assumed:
            value = formula(self.c.assumed[name].value)
            return f"{name.replace('_', ' ')} ({value}, assumed)"
        if name == "enrollment":
            return "the enrollment date"
        if name in self.c.anchors and self.c.anchors[name] is not None:
            anchor = self.c.anchors[name]
            return anchor.label if anchor and anchor.label else name.replace("_", " ")
        if name in self.c.defines:
            return f"{name.replace('_', ' ')} (see Definitions)"
        return name.replace("_", " ")

    def value(self, e: n.Expr) -> str:
        if isinstance(e, n.Name):
            return self.name(e.name)
        if isinstance(e, n.QuantityLit):
            return e.raw or e.text
        if isinstance(e, n.DualQuantityLit):
            return f"{e.primary.raw} ({e.secondary.raw})"
        if isinstance(e, n.Call) and e.func in self.c.defines:
            return f"{e.func.replace('_', ' ')} (see Definitions)"
        if isinstance(e, n.Call) and e.func == "elapsed_years":
            a, b = (self.value(x) for x in e.args)
            return f"completed years from {a} to {b}"
        if isinstance(e, n.FirstAvailable):
            return "the first available of " + ", else ".join(self.value(o) for o in e.options)
        if isinstance(e, n.DateOf):
            return f"the date of {self.name(e.fact)}"
        if isinstance(e, n.Attribute):
            return f"{self.name(e.obj)} ({e.attr})"
        if isinstance(e, n.PressureLit):
            return f"{e.systolic}/{e.diastolic} {e.unit or 'mm[Hg]'}"
        return formula(e)

    def cond(self, e: n.Expr) -> Words:
        if isinstance(e, (n.Or, n.And)):
            items = _flatten(e)
            head = "any of:" if isinstance(e, n.Or) else "all of:"
            return (head, [self.cond(x) for x in items])
        if isinstance(e, n.Unless):
            rule, exception = self.cond(e.rule), self.cond(e.exception)
            if isinstance(rule, str):
                return (f"{rule}, unless:", [exception])
            return ("all of:", [rule, ("unless:", [exception])])
        if isinstance(e, n.Implies):
            return (f"if {_one_line(self.cond(e.premise))}, then:", [self.cond(e.conclusion)])
        if isinstance(e, n.Not):
            inner = self.cond(e.operand)
            if isinstance(inner, str):
                return f"not: {inner}"
            return ("none of:" if inner[0] == "any of:" else "not:", [inner])
        if isinstance(e, n.Compare) and isinstance(e.right, n.PressureLit):
            both = n.PRESSURE_COMBINE[e.op] == "all"
            return (
                f"{self.value(e.left)} {_OPS[e.op]} {self.value(e.right)} "
                f"({'systolic and diastolic both' if both else 'systolic or diastolic'})"
            )
        if isinstance(e, n.Compare):
            return f"{self.value(e.left)} {_OPS[e.op]} {self.value(e.right)}"
        if isinstance(e, n.CompareRef):
            limit = "upper limit of normal" if e.limit == "ULN" else "lower limit of normal"
            return f"{self.value(e.left)} {_OPS[e.op]} {e.factor.text} × the {limit}"
        if isinstance(e, n.Between):
            return (
                f"{self.value(e.subject)} is between {self.value(e.low)} and "
                f"{self.value(e.high)} (both included)"
            )
        if isinstance(e, n.Member):
            verb = "is none of" if e.negated else "is one of"
            members = ", ".join(m.replace("_", " ") for m in e.members)
            return f"{self.value(e.subject)} {verb}: {members}"
        if isinstance(e, n.InNormalRange):
            return f"{self.value(e.subject)} is within the normal range"
        if isinstance(e, n.IsKnown):
            return f"{self.value(e.subject)} is known"
        if isinstance(e, n.Window):
            kind = {"within": "within", "more": "more than", "less": "less than"}[e.kind]
            return (
                f"{self.value(e.subject)} is {kind} {e.duration.raw or e.duration.text} "
                f"{e.direction} {self.value(e.anchor)}"
            )
        if isinstance(e, n.Order):
            return f"{self.value(e.subject)} is {e.direction} {self.value(e.anchor)}"
        if isinstance(e, n.DateBound):
            subject, anchor = self.value(e.subject), self.value(e.anchor)
            if e.duration is not None:
                return (
                    f"{subject} is at least {e.duration.raw or e.duration.text} {e.direction} "
                    f"{anchor} (that day included)"
                )
            side = "on or before" if e.op == "<=" else "on or after"
            return f"{subject} is {side} {anchor}"
        if isinstance(e, n.WindowBetween):
            ends = e.durations()
            low, high = (q.raw or q.text for q in ends) if ends else ("?", "?")
            return (
                f"{self.value(e.subject)} is between {low} and {high} {e.direction} "
                f"{self.value(e.anchor)} (both ends included)"
            )
        if isinstance(e, n.Period):
            period = f"the period from {self.value(e.start)} to {self.value(e.end)}"
            if e.kind == "ongoing":
                return f"{period} is ongoing on {self.value(e.anchor)}"
            assert e.duration is not None
            return (
                f"{period} overlaps the {e.duration.raw or e.duration.text} {e.direction} "
                f"{self.value(e.anchor)}"
            )
        if isinstance(e, n.Quantified):
            what = self.name(e.list_name)
            lead = {
                "any": f"at least one of {what} with",
                "all": f"every one of {what} with",
                "no": f"none of {what} with",
                "majority": f"more than half of {what} with",
                "at_least": f"at least {e.count} of {what} with",
            }[e.quantifier]
            body = self.cond(e.body)
            return (lead + ":", [body])
        if isinstance(e, n.Name):
            return self.name(e.name)
        if isinstance(e, n.BoolLit):
            return "always" if e.value else "never"
        return formula(e)


def _one_line(w: Words) -> str:
    if isinstance(w, str):
        return w
    head, items = w
    return f"{head} " + "; ".join(_one_line(x) for x in items)


def _flatten(e: n.And | n.Or) -> list[n.Expr]:
    kind = type(e)
    out: list[n.Expr] = []
    for side in (e.left, e.right):
        if type(side) is kind:
            out += _flatten(side)  # type: ignore[arg-type]
        else:
            out.append(side)
    return out


def _criteria(checked: CheckResult) -> list[_Crit]:
    w = _Words(checked)
    out = []
    for section, c in checked.protocol.criteria:
        rule = w.cond(c.rule) if c.rule is not None else "(no rule)"
        out.append(
            _Crit(
                c.id,
                section,
                c.text,
                rule,
                w.cond(c.applies) if c.applies is not None else None,
                [cl.text or "" for cl in c.assumptions],
                [cl.text or "" for cl in c.clauses if cl.kind == "note"],
            )
        )
    return out


def _file_assumptions(checked: CheckResult) -> list[str]:
    out = []
    for d in checked.protocol.decls:
        if isinstance(d, n.AssumeValue):
            out.append(f"{d.name.replace('_', ' ')} = {formula(d.value)}: {d.reason}")
        elif isinstance(d, n.AssumeText):
            out.append(d.text)
    return out


_ARITH = {"+": "+", "-": "−", "*": "×", "/": "÷"}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def formula_words(checked: CheckResult, e: n.Expr, w: _Words | None = None) -> str:
    """A formula as a clinician reads it: labels, ×, ÷, units in brackets.

    `(140 - (age in years)) * (weight in kg) / ...` reads
    "(140 − age [years]) × weight [kg] ÷ (72 × creatinine [mg/dL]) × ...".
    """
    w = w or _Words(checked)

    def go(x: n.Expr, parent: int = 0) -> str:
        if isinstance(x, n.Arith):
            p = _PRECEDENCE[x.op]
            text = f"{go(x.left, p)} {_ARITH[x.op]} {go(x.right, p + (x.op in '-/'))}"
            return f"({text})" if p < parent else text
        if isinstance(x, n.Magnitude):
            return f"{go(x.expr, 3)} [{x.unit}]"
        if isinstance(x, n.WithUnit):
            return f"{go(x.expr, parent)}, in {x.unit}"
        if isinstance(x, n.Neg):
            return f"−{go(x.operand, 3)}"
        if isinstance(x, n.Conditional):
            cond = w.cond(x.cond)
            cond_text = cond if isinstance(cond, str) else formula(x.cond)
            return f"({go(x.then)} if {cond_text}, otherwise {go(x.otherwise)})"
        if isinstance(x, n.FirstAvailable):
            return "the first available of: " + "; else ".join(go(o) for o in x.options)
        if isinstance(x, n.Call) and x.func in checked.defines:
            args = ", ".join(go(a) for a in x.args)
            return f"{x.func.replace('_', ' ')} of ({args})"
        if isinstance(x, n.Name) and checked.refs.get(id(x)) is not None:
            if checked.refs[id(x)].kind == "param":
                return x.name.replace("_", " ")
        return w.value(x)

    return go(e)


def _definitions(checked: CheckResult) -> list[tuple[str, str]]:
    out = []
    for d in checked.protocol.of_type(n.Define):
        params = ""
        if d.params is not None:
            params = "(" + ", ".join(p.name for p in d.params) + ")"
        out.append((f"{d.name}{params}", formula(d.body)))
    return out


def _header_rows(checked: CheckResult) -> list[tuple[str, str]]:
    h = checked.protocol.header
    if h is None:
        return []
    rows = [
        ("Version", h.version or "(not stated)"),
        ("Date", h.date_text or "(not stated)"),
        ("Sex", h.sex or "(not stated)"),
        ("Minimum age", h.minimum_age.raw if h.minimum_age else "(none)"),
        ("Maximum age", h.maximum_age.raw if h.maximum_age else "(none)"),
        (
            "Healthy volunteers",
            {True: "yes", False: "no", None: "(not stated)"}[h.healthy_volunteers],
        ),
    ]
    if h.arms:
        rows.append(("Arms", "; ".join(f"{a.name}: {a.label or ''}" for a in h.arms)))
    if h.amends:
        rows.append(("Amends version", h.amends))
    if h.amendment_notes:
        rows.append(("Amendment notes", "; ".join(h.amendment_notes)))
    if h.tolerance:
        rows.append(("Dual-unit tolerance", h.tolerance.raw))
    return rows


# ---------------------------------------------------------------------- Markdown

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|"})


def _md(text: str) -> str:
    """Text from the criteria file as inert Markdown: no raw HTML, no markup.

    CommonMark passes raw HTML through (spec section 6.6, "Raw HTML") and reads `*`, `_`,
    backticks, brackets and (in tables) `|` as markup: `<` and `&` become entities, the
    others are backslash-escaped (section 2.4), so a criterion's text shows as written.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").translate(_MD_SPECIAL)


def _md_words(words: Words, depth: int = 0) -> list[str]:
    pad = "  " * depth
    if isinstance(words, str):
        return [f"{pad}- {_md(words)}"]
    head, items = words
    lines = [f"{pad}- {_md(head)}"]
    for item in items:
        lines += _md_words(item, depth + 1)
    return lines


def markdown(checked: CheckResult) -> str:
    h = checked.protocol.header
    title = f"{h.identifier}: {h.title}" if h and h.title else (h.identifier if h else "Protocol")
    lines = [f"# {_md(title)}", "", "| | |", "| --- | --- |"]
    lines += [f"| {_md(k)} | {_md(v)} |" for k, v in _header_rows(checked)]
    assumptions = _file_assumptions(checked)
    if assumptions:
        lines += [
            "",
            "> **Assumptions** (chosen by the encoder where the protocol text is garbled or "
            "silent):",
            ">",
        ]
        lines += [f"> - ⚠ {_md(a)}" for a in assumptions]
    for section in ("inclusion", "exclusion"):
        crits = [c for c in _criteria(checked) if c.section == section]
        if not crits:
            continue
        verb = "Met when" if section == "inclusion" else "Excludes when"
        lines += ["", f"## {section.capitalize()} criteria"]
        for c in crits:
            lines += ["", f"### {c.id}", "", f"> {_md(c.text)}", ""]
            if c.applies is not None:
                lines.append("Applies only when:")
                lines.append("")
                lines += _md_words(c.applies)
                lines.append("")
            lines.append(f"{verb}:")
            lines.append("")
            lines += _md_words(c.rule)
            for a in c.assumptions:
                lines += ["", f"> ⚠ **Assumption:** {_md(a)}"]
            for note in c.notes:
                lines += ["", f"*Note:* {_md(note)}"]
    defs = _definitions(checked)
    if defs:
        lines += ["", "## Definitions", ""]
        lines += [f"- `{name}` = `{body.replace('`', '')}`" for name, body in defs]
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:920px;margin:2rem auto;
padding:0 1rem;color:#1d2733;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.5rem}h2{margin-top:2rem;border-bottom:2px solid #d0d7de}
table{border-collapse:collapse;margin:1rem 0}td,th{padding:.2rem .8rem;text-align:left;
border-bottom:1px solid #e5e9ee;vertical-align:top}th{background:#f6f8fa}
table.header td:first-child{font-weight:600;color:#52606d}
table.glance td:first-child a{font-weight:700;text-decoration:none}
.crit{border:1px solid #d0d7de;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0}
.crit h3{margin:.2rem 0;font-size:1.05rem}.crit .id{display:inline-block;min-width:2.6rem;
font-weight:700;color:#fff;background:#2f6f4f;border-radius:4px;padding:0 .4rem;margin-right:.4rem}
.exclusion .id{background:#9b2c2c}blockquote{margin:.4rem 0;padding:.3rem .8rem;background:#f6f8fa;
border-left:4px solid #8c959f;font-style:italic}.assume{background:#fff4d6;border:1px solid #e5b84a;
border-radius:4px;padding:.3rem .6rem;margin:.4rem 0}.assume b{color:#8a5a00}
ul{margin:.2rem 0 .2rem 1.2rem;padding:0}.verb{font-weight:600;margin-top:.4rem}
.window{color:#52606d;font-size:.9rem;margin-top:.3rem}
code{background:#f0f2f4;padding:0 .25rem;border-radius:3px}
footer{margin-top:2rem;border-top:1px solid #d0d7de;padding-top:.6rem;font-size:.8rem;color:#52606d}
footer code{word-break:break-all}
table.dictionary{width:100%;table-layout:fixed;font-size:.9rem}
table.dictionary td{overflow-wrap:anywhere}
@media print{body{max-width:none;margin:0}.crit,tr,.assume{break-inside:avoid}
h2{break-after:avoid}a{color:inherit;text-decoration:none}}
"""


def _html_words(words: Words) -> str:
    if isinstance(words, str):
        return f"<li>{html.escape(words)}</li>"
    head, items = words
    inner = "".join(_html_words(i) for i in items)
    return f"<li>{html.escape(head)}<ul>{inner}</ul></li>"


def _lookback(checked: CheckResult, name: str) -> str:
    info = checked.facts.get(name)
    opt = info.node.option("lookback") if info is not None else None
    if opt is None or opt.quantity is None:
        return ""
    anchor = _Words(checked).name(opt.anchor or "enrollment")
    return f"measured within {opt.quantity.raw or opt.quantity.text} before {anchor}"


def _type_words(checked: CheckResult, name: str) -> str:
    info = checked.facts[name]
    t = info.node.type
    if isinstance(t, n.QuantityTypeExpr):
        return f"quantity in {t.unit}"
    return formula_type(t)


def formula_type(t: n.TypeExpr) -> str:
    if isinstance(t, n.EnumTypeExpr):
        return "one of: " + ", ".join(m.replace("_", " ") for m in t.members)
    if isinstance(t, n.ScaleTypeExpr):
        return "scale " + " < ".join(t.members)
    if isinstance(t, n.IntegerTypeExpr):
        return f"whole number {t.low} to {t.high}"
    if isinstance(t, n.BooleanTypeExpr):
        return "investigator attestation (yes/no)" if t.attestation else "yes/no"
    if isinstance(t, n.DateTypeExpr):
        return "date"
    if isinstance(t, n.NumberTypeExpr):
        return "number (no unit)"
    fields = getattr(t, "fields", None)
    if fields:
        return "list of items with: " + "; ".join(
            f"{f.name} ({formula_type(f.type)})" for f in fields
        )
    return "value"


def _codes(checked: CheckResult, name: str) -> str:
    parts = [f"{c.system} {c.value}" for c in checked.bindings.get(name, [])]
    for (fact, member), codes in sorted(checked.item_bindings.items()):
        if fact == name:
            parts.append(f"{member}: " + ", ".join(f"{c.system} {c.value}" for c in codes))
    return "; ".join(parts)


def _facts_read(checked: CheckResult, c: n.Criterion) -> list[str]:
    """Facts a criterion reads, through definitions, in first-use order."""
    out: dict[str, None] = {}
    seen: set[str] = set()

    def visit(node: n.Node) -> None:
        for x in node.walk():
            if isinstance(x, n.Name):
                r = checked.refs.get(id(x))
                if r is None:
                    continue
                if r.kind == "fact":
                    out[r.name] = None
                elif r.kind == "define" and r.name not in seen:
                    seen.add(r.name)
                    visit(checked.defines[r.name].body)
            elif isinstance(x, n.Call) and x.func in checked.defines and x.func not in seen:
                seen.add(x.func)
                visit(checked.defines[x.func].body)
            elif isinstance(x, n.Quantified):
                out[x.list_name] = None

    visit(c)
    return list(out)


def html_page(checked: CheckResult) -> str:
    import hashlib

    from . import __version__

    h = checked.protocol.header
    title = f"{h.identifier}: {h.title}" if h and h.title else (h.identifier if h else "Protocol")
    e = html.escape
    crits = _criteria(checked)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        '<table class="header">',
        *(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _header_rows(checked)),
        "</table>",
    ]
    assumptions = _file_assumptions(checked)
    if assumptions:
        parts.append(
            '<div class="assume"><b>Assumptions</b> (chosen by the encoder where the protocol '
            "text is garbled or silent):<ul>"
            + "".join(f"<li>⚠ {e(a)}</li>" for a in assumptions)
            + "</ul></div>"
        )
    parts.append("<h2>At a glance</h2>")
    parts.append('<table class="glance"><tr><th>criterion</th><th>protocol text</th></tr>')
    for c in crits:
        mark = " ⚠" if c.assumptions else ""
        short = c.text if len(c.text) <= 110 else c.text[:107] + "..."
        parts.append(
            f'<tr><td><a href="#{e(c.id)}">{e(c.id)}</a>{mark}</td><td>{e(short)}</td></tr>'
        )
    parts.append("</table>")
    nodes = {c.id: c for _, c in checked.protocol.criteria}
    for section in ("inclusion", "exclusion"):
        section_crits = [c for c in crits if c.section == section]
        if not section_crits:
            continue
        verb = "Met when" if section == "inclusion" else "Excludes when"
        parts.append(f"<h2>{section.capitalize()} criteria</h2>")
        for c in section_crits:
            parts.append(f'<div class="crit {section}" id="{e(c.id)}">')
            parts.append(f'<h3><span class="id">{e(c.id)}</span></h3>')
            parts.append(f"<blockquote>{e(c.text)}</blockquote>")
            if c.applies is not None:
                parts.append('<div class="verb">Applies only when:</div>')
                parts.append(f"<ul>{_html_words(c.applies)}</ul>")
            parts.append(f'<div class="verb">{verb}:</div><ul>{_html_words(c.rule)}</ul>')
            windows = [
                f"{_Words(checked).name(f)}: {_lookback(checked, f)}"
                for f in _facts_read(checked, nodes[c.id])
                if _lookback(checked, f)
            ]
            if windows:
                parts.append(
                    '<div class="window">Values count only when '
                    + "; ".join(e(x) for x in windows)
                    + ".</div>"
                )
            parts += [
                f'<div class="assume"><b>⚠ Assumption:</b> {e(a)}</div>' for a in c.assumptions
            ]
            parts += [f"<p><i>Note:</i> {e(x)}</p>" for x in c.notes]
            parts.append("</div>")
    defs = [d for d in checked.protocol.of_type(n.Define)]
    if defs:
        parts.append("<h2>Definitions</h2><ul>")
        for d in defs:
            params = ""
            if d.params is not None:
                params = " of (" + ", ".join(p.name.replace("_", " ") for p in d.params) + ")"
            words = formula_words(checked, d.body)
            parts.append(
                f"<li><b>{e(d.name.replace('_', ' '))}{e(params)}</b> = {e(words)}"
                f"<br><code>{e(formula(d.body))}</code></li>"
            )
        parts.append("</ul>")
    parts.append("<h2>Data dictionary</h2>")
    parts.append(
        '<table class="dictionary"><tr><th style="width:30%">fact</th>'
        '<th style="width:25%">kind and unit</th><th style="width:16%">look-back</th>'
        "<th>codes</th></tr>"
    )
    for name in checked.facts:
        label = checked.facts[name].node.option("label")
        text = label.text or "" if label else ""
        parts.append(
            f"<tr><td>{e(text)}<br><code>{e(name)}</code></td>"
            f"<td>{e(_type_words(checked, name))}</td>"
            f"<td>{e(_lookback(checked, name).removeprefix('measured '))}</td>"
            f"<td>{e(_codes(checked, name))}</td></tr>"
        )
    parts.append("</table>")
    digest = hashlib.sha256(checked.source.text.encode("utf-8")).hexdigest()
    version = f"version {h.version or '(not stated)'} of {h.date_text or '(no date)'}" if h else ""
    parts.append(
        f"<footer>Rendered from {e(checked.source.path)} (SHA-256 <code>{digest}</code>), "
        f"{e(h.identifier if h else '')} {e(version)}, by critlang {e(__version__)}. "
        "Review this page against the protocol text; every ⚠ marks a reading the protocol "
        "does not state.</footer>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
