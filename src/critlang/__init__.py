"""critlang: eligibility criteria as a checked, compiled language.

The pipeline, one module per phase:

    source.py       text and spans (file:line:col)
    parser.py       Lark grammar -> AST (nodes.py)
    units.py        clinical units, exact conversion factors (pint underneath)
    checker.py      names, types, units, ranges, header conflicts -> diagnostics
    diagnostics.py  one report object, rendered as text or JSON
    cli.py          `critlang check ...`
"""

__version__ = "0.1.0"
