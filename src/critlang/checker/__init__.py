"""The checker: names, types, units, ranges and header conflicts, all problems in one run.

It walks the AST once per declaration and criterion, gives every expression a type
(recorded for the compiler), and returns diagnostics; it never stops at the first one.
Quantities are compared through exact rational conversion factors (units.py).

The work is split into passes, one module each: `declarations` (the data dictionary, names,
definitions), `expressions` (types), `forms` (blood pressure, date windows, implication),
`comparisons` (units, ranges, dual units), `protocol` (criteria, header, bindings, unused
declarations and the run that orders them).
"""

from __future__ import annotations

from .. import nodes as n
from ..source import SourceFile
from .comparisons import ComparisonsPass
from .declarations import DeclarationsPass
from .expressions import ExpressionsPass
from .forms import FormsPass
from .functions import FunctionsPass
from .protocol import ProtocolPass
from .result import BUILTINS, DEFAULT_TOLERANCE, ENROLLMENT, CheckResult, DualCheck, FactInfo, Ref

__all__ = [
    "BUILTINS",
    "DEFAULT_TOLERANCE",
    "ENROLLMENT",
    "CheckResult",
    "DualCheck",
    "FactInfo",
    "Ref",
    "check",
]


class _Checker(
    DeclarationsPass, ExpressionsPass, FunctionsPass, FormsPass, ComparisonsPass, ProtocolPass
):
    """One checking run; each pass is a mixin over the shared state set in DeclarationsPass."""


def check(
    protocol: n.Protocol, source: SourceFile, library: list[n.Codes] | None = None
) -> CheckResult:
    """Check one protocol; `library` holds the code bindings of the files it imports."""
    return _Checker(protocol, source, library).run()
