"""critlang: eligibility criteria as a checked, compiled language.

One front end feeding several back ends (docs/architecture.md):

    source.py        text and spans (file:line:col)
    parser.py        Lark grammar -> AST (nodes.py): ast_builder.py, syntax_errors.py
    units.py         clinical units, exact conversion factors (ucum.py for UCUM codes)
    checker/         names, types, units, ranges, header conflicts -> diagnostics (passes)
    diagnostics.py   one report object, rendered as text or JSON
    backends/        python.py (compiled evaluator: python_normalise, python_codegen,
                     python_conditions + runtime.py); interpreter.py is the reference
    data/            records.py (native patient records), fhir.py (FHIR R4 -> records)
    evaluate.py      verdicts and explanations; screen.py runs cohorts
    semantics.py     z3 encoding -> diff.py
    cli.py           `critlang check|eval|screen|fmt|test|render|diff|impact`
                     (commands in cli_check, cli_screen, cli_amend; cli_inputs)
"""

__version__ = "0.1.0"
