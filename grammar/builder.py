"""The parser's reductions, made straight into AST nodes (flow.grammar.ast).

Lark calls ``AstBuilder``'s methods as it reduces each grammar rule, handing
them the tokens and the nodes already built, so no parse tree is ever made:
the AST is made in the same pass as the parse, and a node's position is that
of its first token. ``begin`` hands it the file name and the ``run:`` blocks
the pre-pass cut out, which it puts back where ``run: @runN`` stands. It also
checks what a rule's parts alone can tell (known functions and directives,
one action per rule, expressions not nested too deeply), raising ``AstError``
with a position. The vocabulary those checks use is here too; the action
directives are those of the registry of job kinds (``flow.rules.ACTION_KINDS``).
"""

from __future__ import annotations

import ast as pyast
import re
import warnings

from flow.rules import ACTION_KINDS
from lark import Token, Transformer, v_args

from . import ast
from .errors import clip

BUILTIN_FUNCTIONS = frozenset(
    {
        "expand", "glob_wildcards", "temp", "protected", "directory", "ancient", "touch", "multiext",
        "range", "len", "str", "int", "float", "bool", "sorted", "list", "min", "max", "abs",
    }
)
# Pure methods of str/dict/list values, e.g. ``config.get("x", 1)`` or ``" ".join(X)``.
PURE_METHODS = frozenset(
    {"get", "keys", "values", "items", "format", "join", "replace", "split", "strip",
     "lower", "upper", "startswith", "endswith"}
)
TOPLEVEL_DIRECTIVES = frozenset(
    {"configfile", "include", "workdir", "wildcard_constraints", "localrules"}
)
# The directives that say what a rule's jobs do: those of the registry of job kinds.
# `run:` holds Python, so the grammar has a rule of its own for it; the others are directives.
ACTIONS: tuple[str, ...] = ACTION_KINDS
RULE_DIRECTIVES = frozenset(
    {
        "input", "output", "params", "threads", "resources", "retries", "priority", "log",
        "benchmark", "message", "wildcard_constraints", "schema", "default_target", "localrule",
    }
) | frozenset(ACTIONS).difference({"run"})
PYTHON_KEYWORDS = frozenset(
    {
        "import", "from", "if", "elif", "else", "for", "while", "def", "class", "lambda",
        "with", "try", "except", "finally", "return", "yield", "global", "nonlocal", "assert",
        "del", "async", "await", "pass", "break", "continue", "raise", "not", "and", "or",
        "in", "is",
    }
)
DECLARATIVE_HINT = (
    "Flowfiles are declarative: Python belongs in `run:` blocks and `script:` files, "
    "which run only inside jobs."
)
MAX_DEPTH = 150  # expression levels; far beyond any real Flowfile, well within Python's stack
DEPTH_HINT = "Split it into named parts (X = ...) and combine those."
_PREFIX = re.compile(r"[a-zA-Z]*")
_CONSTANTS = {"True": True, "False": False, "None": None}


class AstError(Exception):
    def __init__(self, pos: ast.Pos, message: str, hint: str | None = None):
        super().__init__(message)
        self.pos, self.message, self.hint = pos, message, hint


def _binop(op: str):
    """The builder's method for a binary operator: the node sits where its left operand starts."""

    def build(self, left: ast.Expr, right: ast.Expr) -> ast.Expr:
        return _bounded(ast.BinOp(left.pos, op, left, right))

    return build


@v_args(inline=True)
class AstBuilder(Transformer):
    """One instance serves every parse: ``begin`` sets the file and the cut-out
    ``run:`` blocks of the text about to be parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.file = "Flowfile"
        self.runs: list[ast.RunBlock] = []

    def begin(self, file: str, runs: list[ast.RunBlock]) -> None:
        self.file, self.runs = file, runs

    def _at(self, token: Token) -> ast.Pos:
        return ast.Pos(self.file, token.line or 0, token.column or 0)

    # statements
    def start(self, *stmts):
        return [s for s in stmts if s is not None]

    def assign(self, name: Token, value: ast.Expr) -> ast.Assign:
        return ast.Assign(str(name), value, self._at(name))

    def ruleorder(self, keyword: Token, *names: Token) -> ast.RuleOrder:
        return ast.RuleOrder(tuple(str(n) for n in names), self._at(keyword))

    def directive(self, name: Token, arguments: ast.Arguments) -> ast.Directive:
        return ast.Directive(str(name), arguments, self._at(name))

    def run(self, keyword: Token, ref: Token) -> ast.RunBlock:
        index = int(str(ref)[4:])
        if index >= len(self.runs):  # `@runN` written by hand where no block was cut out
            raise AstError(self._at(keyword), "`run:` must be followed by Python code")
        return self.runs[index]

    def rule(self, kind: Token, name: Token | None, *body) -> ast.Rule:
        pos = self._at(kind)
        rule_name = str(name) if name is not None else None
        directives = tuple(d for d in body if isinstance(d, ast.Directive))  # a docstring is dropped
        runs = [b for b in body if isinstance(b, ast.RunBlock)]
        _check_rule_body(f"rule {clip(rule_name)}" if rule_name else "this rule", pos, directives, len(runs))
        return ast.Rule(
            rule_name or "", str(kind) == "checkpoint", directives, runs[0] if runs else None, pos
        )

    def arguments(self, *args) -> ast.Arguments:
        return _split_args(args)

    def keyword(self, name: Token, value: ast.Expr) -> ast.Keyword:
        return ast.Keyword(str(name), value)

    # expressions
    def strings(self, *tokens: Token) -> ast.Const:
        return ast.Const(self._at(tokens[0]), "".join(self._string(t) for t in tokens))

    def _string(self, token: Token) -> str:
        prefix = _PREFIX.match(token).group(0).lower()
        pos = self._at(token)
        if "f" in prefix:
            raise AstError(pos, "f-strings are not supported in Flowfiles",
                           "Join strings with + or use expand(); wildcards like {sample} stay as they are.")
        if "b" in prefix or set(prefix) - {"r", "u"}:
            raise AstError(pos, f"string prefix `{prefix}` is not supported")
        return _string_value(str(token), pos)

    def number(self, token: Token) -> ast.Const:
        text = str(token).replace("_", "")
        try:
            value = int(text, 0)
        except ValueError:
            try:
                if text.isdigit():  # 08: Python refuses leading zeros too
                    raise ValueError(text)
                value = float(text)
            except ValueError:
                raise AstError(self._at(token), f"invalid number {clip(str(token))!r}") from None
        return ast.Const(self._at(token), value)

    def name(self, token: Token) -> ast.Expr:
        s = str(token)
        if s in _CONSTANTS:
            return ast.Const(self._at(token), _CONSTANTS[s])
        if s in PYTHON_KEYWORDS:
            raise AstError(self._at(token), f"`{s}` is not allowed here", DECLARATIVE_HINT)
        return ast.Name(self._at(token), s)

    def list(self, bracket: Token, *items) -> ast.ListExpr:
        return _bounded(ast.ListExpr(self._at(bracket), tuple(i for i in items if i is not None)))

    def empty_tuple(self, paren: Token) -> ast.TupleExpr:
        return ast.TupleExpr(self._at(paren), ())

    def tuple(self, paren: Token, first: ast.Expr, *rest) -> ast.TupleExpr:
        return _bounded(ast.TupleExpr(self._at(paren), (first, *[i for i in rest if i is not None])))

    def dict(self, brace: Token, *pairs) -> ast.DictExpr:
        return _bounded(ast.DictExpr(self._at(brace), tuple(p for p in pairs if p is not None)))

    def pair(self, key: ast.Expr, value: ast.Expr) -> tuple[ast.Expr, ast.Expr]:
        return (key, value)

    add, sub, mul = _binop("+"), _binop("-"), _binop("*")
    div, floordiv, mod = _binop("/"), _binop("//"), _binop("%")

    def neg(self, minus: Token, operand: ast.Expr) -> ast.UnaryOp:
        return _bounded(ast.UnaryOp(self._at(minus), "-", operand))

    def subscript(self, value: ast.Expr, index: ast.Expr) -> ast.Subscript:
        return _bounded(ast.Subscript(value.pos, value, index))

    def attribute(self, value: ast.Expr, name: Token) -> ast.Attribute:
        return _bounded(ast.Attribute(value.pos, value, str(name)))

    def callargs(self, *args) -> ast.Arguments:
        return _split_args(args)

    def call(self, func: ast.Expr, arguments: ast.Arguments | None) -> ast.Call:
        _check_callable(func)
        arguments = arguments or ast.Arguments()
        return _bounded(ast.Call(func.pos, func, arguments.positional, arguments.named))


def _string_value(literal: str, pos: ast.Pos) -> str:
    """The value of a string literal, as Python reads it, or an AstError."""
    plain = "\\" not in literal and "\r" not in literal  # Python reads a lone \r as a line break
    value = _unescaped(literal) if plain else _evaluated(literal, pos)
    try:
        value.encode("utf-8")  # no lone surrogates: no file name, command or text can hold one
    except UnicodeEncodeError:
        raise AstError(pos, "invalid string: it holds a lone surrogate (\\ud800-\\udfff)") from None
    if "\x00" in value:
        raise AstError(pos, "invalid string: it holds a NUL character (\\x00)")
    return value


def _unescaped(literal: str) -> str:
    """A literal without backslashes (or carriage returns) means the text between its quotes."""
    body = literal.lstrip("rRuU")
    quotes = 3 if body[:3] in ('"""', "'''") else 1
    return body[quotes:-quotes]


def _evaluated(literal: str, pos: ast.Pos) -> str:
    try:
        with warnings.catch_warnings():  # "\{" stays "\{", as in Python, without its warning
            warnings.simplefilter("ignore")
            return pyast.literal_eval(literal)
    except (SyntaxError, ValueError) as e:  # a bad escape such as \N{BOGUS} or \x4
        reason = re.sub(r"^\(unicode error\) '\w+' codec can't decode bytes in position [\d-]+: ", "",
                        getattr(e, "msg", None) or str(e))
        raise AstError(pos, f"invalid string: {reason}",
                       'Write a backslash as \\\\, or use a raw string r"...".') from None


def _check_callable(func: ast.Expr) -> None:
    if isinstance(func, ast.Name):
        if func.id not in BUILTIN_FUNCTIONS:
            raise AstError(
                func.pos, f"unknown function `{func.id}`",
                "Flowfile expressions may call: " + ", ".join(sorted(BUILTIN_FUNCTIONS))
                + ".\n" + DECLARATIVE_HINT,
            )
    elif isinstance(func, ast.Attribute):
        if func.attr not in PURE_METHODS:
            raise AstError(
                func.pos, f"method `.{func.attr}()` is not allowed here",
                "Allowed methods: " + ", ".join(sorted(PURE_METHODS)) + ".\n" + DECLARATIVE_HINT,
            )
    else:
        raise AstError(func.pos, "only named functions can be called here", DECLARATIVE_HINT)


def _check_rule_body(label: str, pos: ast.Pos, directives: tuple[ast.Directive, ...], runs: int) -> None:
    seen: set[str] = set()
    for d in directives:
        if d.name in TOPLEVEL_DIRECTIVES - {"wildcard_constraints"} or d.name not in RULE_DIRECTIVES:
            raise AstError(d.pos, f"unknown directive `{d.name}:` in {label}", _directive_hint(d.name))
        if d.name in seen:
            raise AstError(d.pos, f"`{d.name}:` appears twice in {label}")
        seen.add(d.name)
    actions = [d.name for d in directives if d.name in ACTIONS] + ["run"] * runs
    if len(actions) > 1:
        raise AstError(
            pos, f"{label} has {len(actions)} actions ({', '.join(actions)})",
            "A rule has exactly one of " + ", ".join(f"{a}:" for a in ACTIONS) + " (or none).",
        )


def _bounded(expr: ast.Expr) -> ast.Expr:
    """``expr``, unless it nests so deep that evaluating it could exhaust the
    stack: refused as soon as it is made, so that a hostile file costs no more."""
    if expr.depth > MAX_DEPTH:
        raise AstError(expr.pos, "expression nested too deeply", DEPTH_HINT)
    return expr


def _split_args(args) -> ast.Arguments:
    positional, named = [], []
    for a in args:
        if a is None:
            continue
        if isinstance(a, ast.Keyword):
            named.append(a)
        elif named:
            raise AstError(a.pos, "a positional entry follows a named one",
                           "Put positional entries first, as in a Python call.")
        else:
            positional.append(a)
    return ast.Arguments(tuple(positional), tuple(named))


def _directive_hint(name: str) -> str:
    if name in {"conda", "container", "singularity", "envmodules", "wrapper", "notebook",
                "cwl", "shadow", "group", "cache", "handover", "template_engine"}:
        return f"Snakemake's `{name}:` is not supported by flow."
    return "Rule directives: " + ", ".join(sorted(RULE_DIRECTIVES | {"run"})) + "."
