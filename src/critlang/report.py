"""The screening report: one self-contained HTML page (or JSON) a sponsor reads.

`critlang screen --report report.html` writes it: the attrition funnel as a chart (inline
SVG, no script, no network), counts with percentages, each criterion with its protocol
text, which facts the data actually holds (coverage per fact), the facts most often
missing with anchors and arms explained, and the run's provenance (protocol file, its
SHA-256, protocol version and date, critlang version, data files, screening date).
Same inputs, same bytes: no wall-clock time is written, the screening date stands in.
`screen --format json` gives the same content for tools.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Any

from . import __version__
from . import nodes as n
from .backends.python import Compiled
from .screen import Screening


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _label(compiled: Compiled, name: str) -> str:
    info = compiled.checked.facts.get(name)
    if info is not None:
        label = info.node.option("label")
        if label is not None and label.text:
            return label.text  # whole: a cut label can say something else
    return name.replace("_", " ")


def explain_missing(compiled: Compiled, name: str) -> str:
    """Why a fact is often missing, in words: anchors and arms are not EHR data."""
    checked = compiled.checked
    base = name.split("[")[0].split(".reference_range")[0].lstrip("@")
    users = [c.id for c in compiled.criteria if base in c.facts or "@" + base in c.facts]
    where = f" (read by {', '.join(users)})" if users else ""
    if name.startswith("@"):
        anchor = checked.anchors.get(base)
        label = anchor.label if anchor is not None and anchor.label else base
        return (
            f"anchor date “{label}”: a date the trial sets, not in EHR data; give it per "
            f"patient to decide{where}"
        )
    if base == "arm":
        h = checked.protocol.header
        arms = ", ".join(a.name for a in h.arms) if h is not None else ""
        return (
            f"randomisation arm ({arms}): not known before randomisation; criteria that "
            f"apply to one arm stay open until it is{where}"
        )
    if ".reference_range." in name:
        return f"reference range of {_label(compiled, base)}: not reported with the value{where}"
    if "[" in name:
        return f"a field of a list item ({_label(compiled, base)}){where}"
    return f"{_label(compiled, base)}{where}"


def provenance(compiled: Compiled, data: list[str], s: Screening) -> dict[str, Any]:
    checked = compiled.checked
    h = checked.protocol.header
    text = checked.source.text.encode("utf-8")
    return {
        "protocol_file": checked.source.path,
        "protocol_sha256": hashlib.sha256(text).hexdigest(),
        "protocol": h.identifier if h is not None else None,
        "protocol_version": h.version if h is not None else None,
        "protocol_date": h.date_text if h is not None else None,
        "critlang_version": __version__,
        "data": sorted(data),
        "screening_date": s.as_of.isoformat(),
    }


def report_data(compiled: Compiled, s: Screening, data: list[str]) -> dict[str, Any]:
    """Everything the report shows, as plain values (the JSON form)."""
    total = len(s.patients)
    crits = {c.id: c.node for c in compiled.criteria}
    rows = []
    for r in s.attrition:
        node: n.Criterion = crits[r.id]
        rows.append(
            {
                "criterion": r.id,
                "section": r.section,
                "text": node.text,
                "met": r.met,
                "not_met": r.not_met,
                "unknown": r.unknown,
                "not_applicable": r.not_applicable,
                "passed_so_far": r.passed,
                "not_ruled_out": r.not_ruled_out,
            }
        )
    coverage = []
    for name, known in s.coverage.items():  # in the data dictionary's order
        coverage.append(
            {"fact": name, "label": _label(compiled, name), "known": known, "patients": total}
        )
    missing = [
        {"fact": name, "patients": count, "explanation": explain_missing(compiled, name)}
        for name, count in s.missing_counts()
    ]
    return {
        "provenance": provenance(compiled, data, s),
        # what was read, in numbers that reconcile, with every unusable file and entry
        # (breaker7 F18: a tool could not see the unusable files)
        "read": (
            {**s.tally.to_dict(), "entry_problems": list(s.tally.entry_problems)}
            if s.tally is not None
            else None
        ),
        "patients": total,
        "deceased": s.deceased,
        # not eligible yet, and not past the deceased step (screen.Screening)
        "maybe_deceased": s.maybe_deceased,
        "verdicts": s.verdicts(),
        "attrition": rows,
        "coverage": coverage,
        "missing": missing,
    }


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;margin:2rem auto;
padding:0 1rem;color:#1d2733;line-height:1.45}
h1{font-size:1.45rem;margin-bottom:.3rem}h2{margin-top:2rem;border-bottom:2px solid #d0d7de}
.cards{display:flex;gap:1rem;margin:1rem 0}.card{flex:1;border:1px solid #d0d7de;border-radius:6px;
padding:.6rem 1rem}.card b{display:block;font-size:1.6rem}.eligible b{color:#2f6f4f}
.ineligible b{color:#9b2c2c}.undetermined b{color:#8a5a00}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{padding:.3rem .5rem;
border-bottom:1px solid #e5e9ee;text-align:left;vertical-align:top}td.n{text-align:right;
white-space:nowrap;font-variant-numeric:tabular-nums}th{background:#f6f8fa}
.text{color:#52606d;font-size:.85rem}svg text{font-family:inherit;font-size:12px}
.legend span{display:inline-block;width:.9rem;height:.9rem;margin:0 .3rem 0 1rem;
vertical-align:middle}footer{margin-top:2rem;border-top:1px solid #d0d7de;padding-top:.6rem;
font-size:.8rem;color:#52606d}footer code{word-break:break-all}
.bar{display:inline-block;height:.7rem;background:#3b7dd8;vertical-align:middle}
@media print{body{max-width:none}tr,.card,svg{break-inside:avoid}}
"""


def _funnel(rows: list[dict[str, Any]], total: int, deceased: int = 0, maybe: int = 0) -> str:
    """Attrition as horizontal bars: not ruled out (light) and passed so far (dark).

    Deceased patients leave before the first criterion: their own step, so the drop is not
    drawn against I1 (whose table row shows none of them as not met). Patients who may
    have died have not passed that step but are not ruled out (as an unknown status)."""
    width, left, bar_h, gap = 900, 70, 16, 6
    scale = (width - left - 240) / max(total, 1)
    height = (len(rows) + 1) * (bar_h + gap) + 10
    parts = [
        f'<svg role="img" aria-label="attrition funnel" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    items = [{"criterion": "start", "not_ruled_out": total, "passed_so_far": total}]
    if deceased or maybe:
        alive = total - deceased
        items.append({"criterion": "alive", "not_ruled_out": alive, "passed_so_far": alive - maybe})
    items += rows
    for i, r in enumerate(items):
        y = 5 + i * (bar_h + gap)
        a, p = r["not_ruled_out"], r["passed_so_far"]
        parts.append(
            f'<text x="{left - 8}" y="{y + bar_h - 4}" text-anchor="end">'
            f"{html.escape(r['criterion'])}</text>"
        )
        parts.append(
            f'<rect x="{left}" y="{y}" width="{a * scale:.1f}" height="{bar_h}" fill="#b6d0f2">'
            f"<title>{html.escape(r['criterion'])}: {a} not ruled out</title></rect>"
        )
        parts.append(
            f'<rect x="{left}" y="{y}" width="{p * scale:.1f}" height="{bar_h}" fill="#2b63b5">'
            f"<title>{html.escape(r['criterion'])}: {p} passed so far</title></rect>"
        )
        parts.append(
            f'<text x="{left + a * scale + 6:.1f}" y="{y + bar_h - 4}">{a} ({_pct(a, total)})'
            f"{f' · {p} passed' if p else ''}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def html_report(compiled: Compiled, s: Screening, data: list[str]) -> str:
    d = report_data(compiled, s, data)
    e = html.escape
    prov = d["provenance"]
    total = d["patients"]
    title = f"Screening report: {prov['protocol'] or prov['protocol_file']}"
    v = d["verdicts"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<div>{total} patients screened as of {e(prov['screening_date'])}; protocol version "
        f"{e(str(prov['protocol_version']))} ({e(str(prov['protocol_date']))}).</div>",
        '<div class="cards">',
    ]
    for word in ("eligible", "ineligible", "undetermined"):
        parts.append(
            f'<div class="card {word}"><b>{v[word]}</b>{word} ({_pct(v[word], total)})</div>'
        )
    parts.append("</div>")
    if d["deceased"]:
        parts.append(
            f"<p>{d['deceased']} patients ({_pct(d['deceased'], total)}) are recorded as "
            "deceased: ineligible whatever the criteria say, they leave the funnel at its "
            "first step.</p>"
        )
    if d["maybe_deceased"]:
        parts.append(
            f"<p>{d['maybe_deceased']} patients ({_pct(d['maybe_deceased'], total)}) may have "
            "died by the screening date (a partial or conflicting date of death): not eligible, "
            "not past the funnel's first step, but not ruled out.</p>"
        )
    parts.append("<h2>Attrition</h2>")
    parts.append(
        "<p>Criteria applied in protocol order. <i>Not ruled out</i>: patients who cleared "
        "every criterion so far or whose status is still unknown; <i>passed so far</i>: "
        "those who cleared every one of them with the data at hand.</p>"
    )
    parts.append(
        '<div class="legend"><span style="background:#b6d0f2"></span>not ruled out'
        '<span style="background:#2b63b5"></span>passed so far</div>'
    )
    parts.append(_funnel(d["attrition"], total, d["deceased"], d["maybe_deceased"]))
    parts.append(
        "<table><tr><th>criterion</th><th>met</th><th>not met</th><th>unknown</th>"
        "<th>not applicable</th><th>passed so far</th><th>not ruled out</th></tr>"
    )
    for r in d["attrition"]:
        cells = "".join(
            f'<td class="n">{r[k]}<br><span class="text">{_pct(r[k], total)}</span></td>'
            for k in ("met", "not_met", "unknown", "not_applicable", "passed_so_far")
        )
        cells += f'<td class="n">{r["not_ruled_out"]}<br><span class="text">'
        cells += f"{_pct(r['not_ruled_out'], total)}</span></td>"
        parts.append(
            f'<tr id="{e(r["criterion"])}"><td><b>{e(r["criterion"])}</b> {e(r["section"])}'
            f'<div class="text">{e(r["text"])}</div></td>{cells}</tr>'
        )
    parts.append("</table>")
    parts.append('<h2 id="coverage">What the data holds</h2>')
    parts.append(
        "<p>For each fact the protocol reads: how many patients have a usable value (in its "
        "time window, in a unit of its scale). A fact no patient has cannot clear any "
        "criterion; those patients stay undetermined.</p>"
    )
    parts.append("<table><tr><th>fact</th><th>patients with a value</th><th></th></tr>")
    for c in d["coverage"]:
        share = c["known"] / total if total else 0
        parts.append(
            f'<tr><td>{e(c["label"])} <span class="text">({e(c["fact"])})</span></td>'
            f'<td class="n">{c["known"]} of {total} ({_pct(c["known"], total)})</td>'
            f'<td><span class="bar" style="width:{200 * share:.0f}px"></span></td></tr>'
        )
    parts.append("</table>")
    if d["missing"]:
        parts.append('<h2 id="missing">Most often missing</h2>')
        parts.append(
            "<p>The facts whose value would still change an undetermined verdict, by the "
            "number of undetermined patients that need them.</p><table>"
            "<tr><th>fact</th><th>patients</th><th>what it is</th></tr>"
        )
        for m in d["missing"][:15]:
            parts.append(
                f'<tr><td><code>{e(m["fact"])}</code></td><td class="n">{m["patients"]} '
                f"({_pct(m['patients'], total)})</td><td>{e(m['explanation'])}</td></tr>"
            )
        parts.append("</table>")
    files = prov["data"]
    shown = ", ".join(e(f) for f in files[:5]) + (
        f" and {len(files) - 5} more" if len(files) > 5 else ""
    )
    parts.append(
        "<footer>"
        f"Protocol file {e(prov['protocol_file'])} (SHA-256 <code>{prov['protocol_sha256']}"
        f"</code>), {e(str(prov['protocol']))} version {e(str(prov['protocol_version']))} of "
        f"{e(str(prov['protocol_date']))}. Data: {shown}. Screening date "
        f"{e(prov['screening_date'])}. critlang {e(prov['critlang_version'])}."
        "</footer></body></html>"
    )
    return "\n".join(parts) + "\n"


def data_names(paths: list[Path]) -> list[str]:
    return sorted(str(p) for p in paths)
