"""One criterion's status alone: the generated `evaluate` sliced down to what it reads.

`needs.py` asks, for an undetermined patient, which unknown facts could change a
criterion, by evaluating that criterion again with probe values: hundreds of
evaluations a patient. Running the whole protocol for each probe costs all criteria
every time. Here the generated module's syntax tree (Python's `ast`, never criteria
text) is cut, per criterion, to the statements its status depends on: a backward
slice over `evaluate`'s body (a statement is kept when it assigns a name still read
below it; compound statements are kept whole, so the slice is conservative and the
status is the one `evaluate` returns).

    slices = Slices(source_code, namespace, sections)
    slices.status(f, 3)  # True / False / None / NA, as evaluate(f)[1][3]

Conflicting candidates (the "#" key, python.normalise) are weighed as `evaluate` does:
one run per combination, the status they all agree on, else unknown.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ast

Status = Callable[[dict[str, Any]], Any]


def _names(node: ast.AST, ctx: type[ast.expr_context]) -> set[str]:
    import ast

    return {x.id for x in ast.walk(node) if isinstance(x, ast.Name) and isinstance(x.ctx, ctx)}


def _slice(
    fn: ast.FunctionDef, uses: list[tuple[set[str], set[str]]], result: ast.expr
) -> ast.FunctionDef:
    """`fn` returning only `result`, without the statements it does not need. `uses`:
    per statement of fn's body, the names it assigns and the names it reads."""
    import ast

    live = _names(result, ast.Load)
    kept: list[ast.stmt] = []
    for stmt, (stores, loads) in zip(reversed(fn.body[:-1]), reversed(uses), strict=True):
        if stores & live:  # the last statement (the return) is left out
            kept.append(stmt)
            live |= loads
    body: list[ast.stmt] = [*reversed(kept), ast.Return(result)]
    out = ast.FunctionDef(
        name="status",
        args=fn.args,
        body=body,
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    return ast.fix_missing_locations(ast.copy_location(out, fn))


class Slices:
    """Per-criterion status functions, built on first use."""

    def __init__(self, source: str, namespace: dict[str, Any], filename: str) -> None:
        self.source = source
        self.namespace = namespace
        self.filename = filename
        self._fns: dict[int, Status] = {}
        self._tree: tuple[ast.FunctionDef, list[ast.expr]] | None = None
        self._uses: list[tuple[set[str], set[str]]] = []

    def _evaluate_tree(self) -> tuple[ast.FunctionDef, list[ast.expr]]:
        import ast  # only when a patient is undetermined (~7 ms of a start otherwise)

        if self._tree is None:
            module = ast.parse(self.source)
            fn = next(
                s for s in module.body if isinstance(s, ast.FunctionDef) and s.name == "evaluate"
            )
            ret = fn.body[-1]
            # the generator ends evaluate with `return v, (status, ...)`
            assert isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple)
            statuses = ret.value.elts[1]
            assert isinstance(statuses, ast.Tuple)
            self._tree = fn, list(statuses.elts)
            self._uses = [(_names(x, ast.Store), _names(x, ast.Load)) for x in fn.body[:-1]]
        return self._tree

    def raw(self, index: int) -> Status:
        fn = self._fns.get(index)
        if fn is None:
            import ast

            tree, results = self._evaluate_tree()
            module = ast.Module(body=[_slice(tree, self._uses, results[index])], type_ignores=[])
            code = compile(module, self.filename, "exec")
            scope: dict[str, Any] = {}
            exec(code, self.namespace, scope)
            fn = self._fns[index] = scope["status"]
        return fn

    def status(self, f: dict[str, Any], index: int) -> Any:
        """Criterion `index`'s status for f, as `Compiled.evaluate(f)[1][index]`."""
        fn = self.raw(index)
        extra = f.get("#")
        if extra is None or not extra[0]:
            return fn(f)
        seen = []
        for world in itertools.product(*extra[0]):
            g = dict(f)
            for keys in world:
                g.update(keys)
            seen.append(fn(g))
        return seen[0] if all(s is seen[0] for s in seen) else None
