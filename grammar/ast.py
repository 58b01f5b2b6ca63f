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
class DictExpr(_Nested, Expr):
    items: tuple[tuple[Expr, Expr], ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return tuple(e for pair in self.items for e in pair)


@dataclass(frozen=True, slots=True)
class Subscript(_Nested, Expr):
    value: Expr | None = None
    index: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.value, self.index)


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
    op: str = "-"
    operand: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return _present(self.operand)


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str
    value: Expr


@dataclass(frozen=True, slots=True)
class Call(_Nested, Expr):
    """A call of a built-in function (``func`` is a Name) or of a pure method
    (``func`` is an Attribute, e.g. ``config.get``)."""

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
    name: str
    value: Expr
    pos: Pos


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
