"""Immutable AST of a Flowfile.

The parser turns text into these dataclasses and nothing else: no expression
is evaluated here, so parsing never runs user code. Every node keeps its
position so that the engine can point at the exact spot of a mistake found
later (an unknown name, a wildcard that is not in the output, ...).
Nodes have slots and no ``__dict__``: a node and its position take about a
hundred bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Pos:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# ----------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Expr:
    pos: Pos = field(compare=False, repr=False)
    # How many expression levels this one spans: 1 for a constant or a name, else
    # one more than its deepest sub-expression. Worked out once, as the node is
    # made, so that nothing needs to recurse to know it.
    depth: int = field(init=False, default=1, compare=False, repr=False)

    def children(self) -> tuple[Expr, ...]:
        """The sub-expressions, in source order."""
        return ()


class _Nested:
    """What the nodes that hold sub-expressions share: their depth is one
    more than their deepest sub-expression's."""

    __slots__ = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", 1 + max((e.depth for e in self.children()), default=0))


@dataclass(frozen=True, slots=True)
class Const(Expr):
    value: object = None


@dataclass(frozen=True, slots=True)
class Name(Expr):
    id: str = ""


@dataclass(frozen=True, slots=True)
class ListExpr(_Nested, Expr):
    items: tuple[Expr, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class TupleExpr(_Nested, Expr):
    items: tuple[Expr, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class SetExpr(_Nested, Expr):
    items: tuple[Expr, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class DictExpr(_Nested, Expr):
    """``{k: v, **other}``: a key of None stands for ``**value``."""

    items: tuple[tuple[Expr | None, Expr], ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return tuple(e for pair in self.items for e in pair if e is not None)


@dataclass(frozen=True, slots=True)
class Starred(_Nested, Expr):
    """``*value`` in a list, tuple, set or call, or a target that takes the rest."""

    value: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.value)


@dataclass(frozen=True, slots=True)
class Subscript(_Nested, Expr):
    value: Expr | None = None
    index: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.value, self.index)


@dataclass(frozen=True, slots=True)
class Slice(_Nested, Expr):
    """``lower:upper:step`` as the index of a subscript; a part left out is None."""

    lower: Expr | None = None
    upper: Expr | None = None
    step: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.lower, self.upper, self.step)


@dataclass(frozen=True, slots=True)
class Attribute(_Nested, Expr):
    value: Expr | None = None
    attr: str = ""

    def children(self) -> tuple[Expr, ...]:
        return _present(self.value)


@dataclass(frozen=True, slots=True)
class BinOp(_Nested, Expr):
    op: str = "+"
    left: Expr | None = None
    right: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.left, self.right)


@dataclass(frozen=True, slots=True)
class UnaryOp(_Nested, Expr):
    op: str = "-"  # "-", "+" or "not"
    operand: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.operand)


@dataclass(frozen=True, slots=True)
class BoolOp(_Nested, Expr):
    """``a and b and c`` or ``a or b``: the values in order, evaluated as far as needed."""

    op: str = "and"
    values: tuple[Expr, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return self.values


@dataclass(frozen=True, slots=True)
class Compare(_Nested, Expr):
    """``a < b <= c``: ``ops`` are "==", "!=", "<", "<=", ">", ">=", "in",
    "not in", "is", "is not", one between each two operands."""

    left: Expr | None = None
    ops: tuple[str, ...] = ()
    comparators: tuple[Expr, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return (*_present(self.left), *self.comparators)


@dataclass(frozen=True, slots=True)
class IfExp(_Nested, Expr):
    """``body if test else orelse``."""

    test: Expr | None = None
    body: Expr | None = None
    orelse: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.body, self.test, self.orelse)


@dataclass(frozen=True, slots=True)
class FormattedValue(_Nested, Expr):
    """One ``{value!conversion:format_spec}`` field of an f-string."""

    value: Expr | None = None
    conversion: str | None = None  # "r", "s", "a" or None
    format_spec: Expr | None = None  # a JoinedStr: the spec may hold fields too

    def children(self) -> tuple[Expr, ...]:
        return _present(self.value, self.format_spec)


@dataclass(frozen=True, slots=True)
class JoinedStr(_Nested, Expr):
    """An f-string: its literal parts (Const) and fields (FormattedValue), in order."""

    values: tuple[Expr, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return self.values


@dataclass(frozen=True, slots=True)
class CompFor:
    """``for target in iter if cond ...`` of a comprehension."""

    target: Expr  # a Name, or a TupleExpr/ListExpr of targets (a Starred among them)
    iter: Expr
    ifs: tuple[Expr, ...] = ()


@dataclass(frozen=True, slots=True)
class Comprehension(_Nested, Expr):
    """``[elt for ...]`` (kind "list"), ``{elt for ...}`` ("set"), ``{key: elt
    for ...}`` ("dict") or ``(elt for ...)`` ("generator": evaluated to a list,
    no effects can tell)."""

    kind: str = "list"
    elt: Expr | None = None
    key: Expr | None = None
    generators: tuple[CompFor, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        inner = tuple(e for g in self.generators for e in (g.target, g.iter, *g.ifs))
        return (*_present(self.key, self.elt), *inner)


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter of a lambda or def, with its default value if it has one."""

    name: str
    default: Expr | None = None


@dataclass(frozen=True, slots=True)
class Lambda(_Nested, Expr):
    params: tuple[Param, ...] = ()
    body: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return (*(p.default for p in self.params if p.default is not None), *_present(self.body))


# Statements of a ``def`` body. They are nodes like expressions (a position and
# a depth, so that nesting is bounded as the file is read), but only a
# FunctionDef holds them.


@dataclass(frozen=True, slots=True)
class LocalAssign(_Nested, Expr):
    """``target = value`` in a def body; the target is a Name, or a TupleExpr
    or ListExpr of targets (``a, b = ...``), one of them maybe Starred."""

    target: Expr | None = None
    value: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.target, self.value)


@dataclass(frozen=True, slots=True)
class ExprStmt(_Nested, Expr):
    """A bare expression in a def body: evaluated, its value dropped (such as
    ``checkpoints.NAME.get(**wildcards)``, which only waits for the checkpoint)."""

    value: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.value)


@dataclass(frozen=True, slots=True)
class Return(_Nested, Expr):
    value: Expr | None = None  # None: ``return`` alone, which returns None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.value)


@dataclass(frozen=True, slots=True)
class If(_Nested, Expr):
    """``if test: body`` with ``elif`` as an If alone in ``orelse``."""

    test: Expr | None = None
    body: tuple[Expr, ...] = ()
    orelse: tuple[Expr, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return (*_present(self.test), *self.body, *self.orelse)


@dataclass(frozen=True, slots=True)
class Pass(Expr):
    pass


@dataclass(frozen=True, slots=True)
class FunctionDef(_Nested, Expr):
    """``def name(params): body`` at the top level: a value like a Lambda (the
    statement is an ``Assign`` of it to ``name``). Every path through ``body``
    ends in a Return (the builder checks it)."""

    name: str = ""
    params: tuple[Param, ...] = ()
    body: tuple[Expr, ...] = ()
    docstring: str | None = None

    def children(self) -> tuple[Expr, ...]:
        return (*(p.default for p in self.params if p.default is not None), *self.body)


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str | None  # None in a call: ``**value``
    value: Expr


@dataclass(frozen=True, slots=True)
class Call(_Nested, Expr):
    """A call of a built-in function or a Flowfile function (``func`` is a
    Name), of a pure method (``func`` is an Attribute, e.g. ``config.get``),
    or of another value that is a function. ``args`` may hold Starred,
    ``kwargs`` a Keyword without a name (``**value``)."""

    func: Expr | None = None
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return (*_present(self.func), *self.args, *(k.value for k in self.kwargs))


def _present(*exprs: Expr | None) -> tuple[Expr, ...]:
    return tuple(e for e in exprs if e is not None)


# ------------------------------------------------------------------ statements


@dataclass(frozen=True, slots=True)
class Arguments:
    """The value of a directive: positional and named entries, in order."""

    positional: tuple[Expr, ...] = ()
    named: tuple[Keyword, ...] = ()


@dataclass(frozen=True, slots=True)
class Directive:
    """``name: value`` inside a rule or at the top level."""

    name: str
    value: Arguments
    pos: Pos


@dataclass(frozen=True, slots=True)
class RunBlock:
    """The Python source of a ``run:`` block, kept as text; it runs only inside a job."""

    code: str
    pos: Pos  # position of the first line of code


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    checkpoint: bool
    directives: tuple[Directive, ...]
    run: RunBlock | None
    pos: Pos

    def directive(self, name: str) -> Directive | None:
        for d in self.directives:
            if d.name == name:
                return d
        return None


@dataclass(frozen=True, slots=True)
class Assign:
    """``NAME = value`` at the top level; also ``def NAME(...)`` (its value a
    FunctionDef) and each name of ``A, B = value`` (its value an UnpackItem)."""

    name: str
    value: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class UnpackItem(_Nested, Expr):
    """Item ``index`` of ``value``, which must have exactly ``count`` items:
    one name's share of a top-level ``A, B = value``."""

    value: Expr | None = None
    index: int = 0
    count: int = 1

    def children(self) -> tuple[Expr, ...]:
        return _present(self.value)


@dataclass(frozen=True, slots=True)
class RuleOrder:
    names: tuple[str, ...]  # highest priority first
    pos: Pos


Statement = Assign | Directive | RuleOrder | Rule


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed file (includes are resolved by the engine, which evaluates their paths)."""

    path: str
    statements: tuple[Statement, ...]
