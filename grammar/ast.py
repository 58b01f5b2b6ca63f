"""Immutable AST of a Flowfile.

The parser turns text into these dataclasses and nothing else: no expression
is evaluated here, so parsing never runs user code. Every node keeps its
position so that the engine can point at the exact spot of a mistake found
later (an unknown name, a wildcard that is not in the output, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# ----------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    pos: Pos = field(compare=False, repr=False)


@dataclass(frozen=True)
class Const(Expr):
    value: object = None


@dataclass(frozen=True)
class Name(Expr):
    id: str = ""


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class TupleExpr(Expr):
    items: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class DictExpr(Expr):
    items: tuple[tuple[Expr, Expr], ...] = ()


@dataclass(frozen=True)
class Subscript(Expr):
    value: Expr | None = None
    index: Expr | None = None


@dataclass(frozen=True)
class Attribute(Expr):
    value: Expr | None = None
    attr: str = ""


@dataclass(frozen=True)
class BinOp(Expr):
    op: str = "+"
    left: Expr | None = None
    right: Expr | None = None


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: str = "-"
    operand: Expr | None = None


@dataclass(frozen=True)
class Keyword:
    name: str
    value: Expr


@dataclass(frozen=True)
class Call(Expr):
    """A call of a built-in function (``func`` is a Name) or of a pure method
    (``func`` is an Attribute, e.g. ``config.get``)."""

    func: Expr | None = None
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()


# ------------------------------------------------------------------ statements


@dataclass(frozen=True)
class Arguments:
    """The value of a directive: positional and named entries, in order."""

    positional: tuple[Expr, ...] = ()
    named: tuple[Keyword, ...] = ()


@dataclass(frozen=True)
class Directive:
    """``name: value`` inside a rule or at the top level."""

    name: str
    value: Arguments
    pos: Pos


@dataclass(frozen=True)
class RunBlock:
    """The Python source of a ``run:`` block, kept as text; it runs only inside a job."""

    code: str
    pos: Pos  # position of the first line of code


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Assign:
    name: str
    value: Expr
    pos: Pos


@dataclass(frozen=True)
class RuleOrder:
    names: tuple[str, ...]  # highest priority first
    pos: Pos


Statement = Assign | Directive | RuleOrder | Rule


@dataclass(frozen=True)
class Module:
    """One parsed file (includes are resolved by the engine, which evaluates their paths)."""

    path: str
    statements: tuple[Statement, ...]
