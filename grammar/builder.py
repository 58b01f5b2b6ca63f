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

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput

from . import ast
from .errors import clip, did_you_mean
from .vocabulary import (
    ACTIONS,
    BUILTIN_FUNCTIONS,
    DECLARATIVE_HINT,
    DEPTH_HINT,
    KEYWORD_MESSAGES,
    MAX_DEPTH,
    OTHER_PYTHON_BUILTINS,
    PATH_FUNCTIONS,
    PURE_METHODS,
    PYTHON_KEYWORDS,
    RULE_DIRECTIVES,
    TOPLEVEL_DIRECTIVES,
)

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
        self._locate = None  # while an f-string's field is parsed: its tokens' file positions

    def begin(self, file: str, runs: list[ast.RunBlock]) -> None:
        self.file, self.runs, self._locate = file, runs, None

    def _at(self, token: Token) -> ast.Pos:
        if self._locate is not None:
            return self._locate(token)
        return ast.Pos(self.file, token.line or 0, token.column or 0)

    # statements
    def start(self, *stmts):
        out = []
        for s in stmts:
            if isinstance(s, list):  # A, B = value: one Assign a name
                out.extend(s)
            elif s is not None:
                out.append(s)
        return out

    def assign(self, name: Token, value: ast.Expr) -> ast.Assign:
        return ast.Assign(str(name), value, self._at(name))

    def unpack_assign(self, *parts) -> list[ast.Assign]:
        *names, value = [p for p in parts if p is not None]
        seen: set[str] = set()
        for n in names:
            if str(n) in seen:
                raise AstError(self._at(n), f"`{clip(str(n))}` is assigned twice here")
            seen.add(str(n))
        return [ast.Assign(str(n), _bounded(ast.UnpackItem(value.pos, value, i, len(names))), self._at(n))
                for i, n in enumerate(names)]

    def toplevel_call(self, *parts) -> None:
        """A call alone at the top level: ``shell.executable("bash")``, which
        Snakefiles start with (flow's shell is bash), is accepted and
        changes nothing; any other is refused, naming it."""
        *names, arguments = parts
        chain = [str(n) for n in names]
        pos = self._at(names[0])
        args = arguments or ast.Arguments()
        if chain == ["shell", "executable"]:
            (value,) = args.positional if len(args.positional) == 1 and not args.named else (None,)
            if isinstance(value, ast.Const) and isinstance(value.value, str) \
                    and value.value.rsplit("/", 1)[-1] == "bash":
                return None
            raise AstError(pos, "flow runs `shell:` commands with bash only",
                           'Remove shell.executable(...), or give it "bash".')
        func: ast.Expr = ast.Name(pos, chain[0])
        for attr in chain[1:]:
            func = ast.Attribute(pos, func, attr)
        if chain[0] in ("shell", "workflow", "onstart", "onsuccess", "onerror", "localrules", "ruleorder"):
            raise AstError(pos, f"`{clip('.'.join(chain))}()` is not supported in a Flowfile", DECLARATIVE_HINT)
        _check_callable(func)
        raise AstError(pos, f"a call alone at the top level (`{clip('.'.join(chain))}(...)`) does nothing in a Flowfile",
                       "Name its value (X = ...) to use it. " + DECLARATIVE_HINT)

    def toplevel_string(self, value: ast.Expr) -> None:
        return None  # a docstring

    def ruleorder(self, keyword: Token, *names: Token) -> ast.RuleOrder:
        return ast.RuleOrder(tuple(str(n) for n in names), self._at(keyword))

    def directive(self, name: Token, arguments: ast.Arguments) -> ast.Directive:
        if str(name) in KEYWORD_MESSAGES:  # `try:`, `else:`: a statement a Flowfile does not have here
            raise AstError(self._at(name), *KEYWORD_MESSAGES[str(name)])
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

    # input functions
    def funcdef(self, keyword: Token, name: Token, params, *body) -> ast.Assign:
        pos = self._at(keyword)
        label = f"function `{clip(str(name))}`"
        statements = list(_statements(body))
        docstring = None
        first = statements[0] if statements else None
        if isinstance(first, ast.ExprStmt) and isinstance(first.value, ast.Const) \
                and isinstance(first.value.value, str):
            docstring = first.value.value
            statements = statements[1:]
        _check_returns(statements, pos, label)
        node = _bounded(ast.FunctionDef(pos, str(name), params or (), tuple(statements), docstring))
        return ast.Assign(str(name), node, self._at(name))

    def parameters(self, *params) -> tuple[ast.Param, ...]:
        params = tuple(p for p in params if p is not None)
        seen: set[str] = set()
        defaulted = False
        for p, at in params:
            if p.name in seen:
                raise AstError(at, f"parameter `{clip(p.name)}` appears twice")
            seen.add(p.name)
            if p.default is None and defaulted:
                raise AstError(at, f"parameter `{clip(p.name)}` without a default follows one with a default",
                               "Put the parameters with defaults last, as in Python.")
            defaulted = defaulted or p.default is not None
        return tuple(p for p, _ in params)

    def parameter(self, name: Token, default: ast.Expr | None):
        if str(name) in PYTHON_KEYWORDS or str(name) in _CONSTANTS:
            raise AstError(self._at(name), f"`{str(name)}` cannot be a parameter")
        return ast.Param(str(name), default), self._at(name)

    def local_assign(self, target: ast.Expr, value: ast.Expr) -> ast.LocalAssign:
        _check_target(target)
        return _bounded(ast.LocalAssign(target.pos, target, value))

    def expr_stmt(self, value: ast.Expr) -> ast.ExprStmt:
        return _bounded(ast.ExprStmt(value.pos, value))

    def return_stmt(self, keyword: Token, value: ast.Expr | None) -> ast.Return:
        return _bounded(ast.Return(self._at(keyword), value))

    def pass_stmt(self, keyword: Token) -> ast.Pass:
        return ast.Pass(self._at(keyword))

    def if_stmt(self, keyword: Token, test: ast.Expr, *rest) -> ast.If:
        body = _statements(r for r in rest if not isinstance(r, _Clause))
        clauses = [r for r in rest if isinstance(r, _Clause)]
        orelse: tuple[ast.Expr, ...] = ()
        for clause in reversed(clauses):  # each elif is an If alone in the else of the one before
            if clause.test is None:
                orelse = clause.body
            else:
                orelse = (_bounded(ast.If(clause.pos, clause.test, clause.body, orelse)),)
        return _bounded(ast.If(self._at(keyword), test, body, orelse))

    def elif_clause(self, keyword: Token, test: ast.Expr, *body) -> _Clause:
        return _Clause(self._at(keyword), test, _statements(body))

    def else_clause(self, keyword: Token, *body) -> _Clause:
        return _Clause(self._at(keyword), None, _statements(body))

    def tuple_list(self, *items) -> ast.TupleExpr:
        items = tuple(i for i in items if i is not None)
        return _bounded(ast.TupleExpr(items[0].pos, items))

    # expressions
    def strings(self, *tokens: Token) -> ast.Expr:
        pos = self._at(tokens[0])
        parts: list[ast.Expr] = []
        for t in tokens:
            prefix = _PREFIX.match(t).group(0).lower()
            if "f" in prefix:
                parts.extend(self._fstring(t, prefix))
            else:
                parts.append(ast.Const(self._at(t), self._string(t, prefix)))
        merged: list[ast.Expr] = []
        for part in parts:  # neighbouring literal parts are one
            if merged and isinstance(part, ast.Const) and isinstance(merged[-1], ast.Const):
                merged[-1] = ast.Const(merged[-1].pos, merged[-1].value + part.value)
            else:
                merged.append(part)
        if all(isinstance(p, ast.Const) for p in merged):
            return ast.Const(pos, "".join(p.value for p in merged))
        return _bounded(ast.JoinedStr(pos, tuple(merged)))

    def _string(self, token: Token, prefix: str) -> str:
        pos = self._at(token)
        if "b" in prefix or set(prefix) - {"r", "u"}:
            raise AstError(pos, f"string prefix `{prefix}` is not supported")
        return _string_value(str(token), pos)

    def _fstring(self, token: Token, prefix: str) -> list[ast.Expr]:
        if "b" in prefix or set(prefix) - {"r", "f"}:
            raise AstError(self._at(token), f"string prefix `{prefix}` is not supported")
        return _FString(self, token, "r" in prefix).parts()

    def parse_field(self, text: str, locate) -> ast.Expr:
        """The expression of an f-string field, ``text``, parsed by the
        expression parser; ``locate(offset)`` is the file position of a
        character of ``text``."""
        saved = self._locate
        self._locate = lambda t: locate((t.column or 1) - 1)
        try:
            return _field_parser()(text.replace("\n", " ").replace("\r", " "))
        except UnexpectedInput as e:
            found = getattr(e, "token", None)
            if found is not None and found.type == "$END":
                where = locate(len(text.rstrip()))
            elif isinstance(e.column, int) and e.column > 0:
                where = locate(e.column - 1)
            else:
                where = locate(0)
            what = f"`{found}`" if found is not None and found.type != "$END" and str(found) else (
                f"{e.char!r}" if isinstance(e, UnexpectedCharacters) else "end of field")
            raise AstError(where, f"f-string field: unexpected {what}",
                           "A field holds an expression, as in {name}, {x.attr}, {d['k']} or "
                           "{f(x):>8}; write {{ and }} for literal braces.") from None
        finally:
            self._locate = saved

    def fexpr(self, value: ast.Expr) -> ast.Expr:
        return value

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

    def set(self, brace: Token, *items) -> ast.SetExpr:
        return _bounded(ast.SetExpr(self._at(brace), tuple(i for i in items if i is not None)))

    def dict(self, brace: Token, *pairs) -> ast.DictExpr:
        items = tuple((None, p.value) if isinstance(p, _DoubleStar) else p for p in pairs if p is not None)
        return _bounded(ast.DictExpr(self._at(brace), items))

    def pair(self, key: ast.Expr, value: ast.Expr) -> tuple[ast.Expr, ast.Expr]:
        return (key, value)

    def starred(self, value: ast.Expr) -> ast.Starred:
        return _bounded(ast.Starred(value.pos, value))

    def double_starred(self, value: ast.Expr) -> _DoubleStar:
        return _DoubleStar(value)

    # comprehensions
    def list_comp(self, bracket: Token, elt: ast.Expr, gens) -> ast.Comprehension:
        return _bounded(ast.Comprehension(self._at(bracket), "list", elt, None, gens))

    def set_comp(self, brace: Token, elt: ast.Expr, gens) -> ast.Comprehension:
        return _bounded(ast.Comprehension(self._at(brace), "set", elt, None, gens))

    def dict_comp(self, brace: Token, pair, gens) -> ast.Comprehension:
        key, value = pair
        return _bounded(ast.Comprehension(self._at(brace), "dict", value, key, gens))

    def generator(self, paren: Token, elt: ast.Expr, gens) -> ast.Comprehension:
        return _bounded(ast.Comprehension(self._at(paren), "generator", elt, None, gens))

    def generator_arg(self, elt: ast.Expr, gens) -> ast.Arguments:
        return ast.Arguments((_bounded(ast.Comprehension(elt.pos, "generator", elt, None, gens)),), ())

    def comp(self, *clauses) -> tuple[ast.CompFor, ...]:
        gens: list[ast.CompFor] = []
        for c in clauses:
            if isinstance(c, ast.CompFor):
                gens.append(c)
            else:
                last = gens[-1]
                gens[-1] = ast.CompFor(last.target, last.iter, (*last.ifs, c))
        return tuple(gens)

    def comp_for(self, keyword: Token, target: ast.Expr, _in: Token, iterable: ast.Expr) -> ast.CompFor:
        _check_target(target)
        return ast.CompFor(target, iterable)

    def comp_if(self, keyword: Token, test: ast.Expr) -> ast.Expr:
        return test

    # operators
    add, sub, mul = _binop("+"), _binop("-"), _binop("*")
    div, floordiv, mod = _binop("/"), _binop("//"), _binop("%")

    def neg(self, minus: Token, operand: ast.Expr) -> ast.UnaryOp:
        return _bounded(ast.UnaryOp(self._at(minus), "-", operand))

    def pos(self, plus: Token, operand: ast.Expr) -> ast.UnaryOp:
        return _bounded(ast.UnaryOp(self._at(plus), "+", operand))

    def not_test(self, keyword: Token, operand: ast.Expr) -> ast.UnaryOp:
        return _bounded(ast.UnaryOp(self._at(keyword), "not", operand))

    def and_test(self, *parts) -> ast.BoolOp:  # (a chain is one node: built once, not once per operand)
        return _bounded(ast.BoolOp(parts[0].pos, "and", tuple(parts[0::2])))

    def or_test(self, *parts) -> ast.BoolOp:
        return _bounded(ast.BoolOp(parts[0].pos, "or", tuple(parts[0::2])))

    def compare(self, left: ast.Expr, *rest) -> ast.Compare:
        ops = tuple(rest[0::2])
        return _bounded(ast.Compare(left.pos, left, ops, tuple(rest[1::2])))

    def comp_op(self, *tokens: Token) -> str:
        return " ".join(str(t) for t in tokens)

    def ifexp(self, body: ast.Expr, _if: Token, test: ast.Expr, _else: Token, orelse: ast.Expr) -> ast.IfExp:
        return _bounded(ast.IfExp(body.pos, test, body, orelse))

    def lambdef(self, keyword: Token, params, body: ast.Expr) -> ast.Lambda:
        return _bounded(ast.Lambda(self._at(keyword), params or (), body))

    lambdef_nocond = lambdef

    # postfix
    def subscript(self, value: ast.Expr, index: ast.Expr) -> ast.Subscript:
        return _bounded(ast.Subscript(value.pos, value, index))

    def slice(self, *parts) -> ast.Slice:
        groups: list[ast.Expr | None] = [None]
        colon = None
        for p in parts:
            if isinstance(p, Token):
                colon = colon or p
                groups.append(None)
            elif p is not None:
                groups[-1] = p
        groups += [None] * (3 - len(groups))
        lower, upper, step = groups[:3]
        first = lower or colon
        pos = first.pos if isinstance(first, ast.Expr) else self._at(first)
        return _bounded(ast.Slice(pos, lower, upper, step))

    def attribute(self, value: ast.Expr, name: Token) -> ast.Attribute:
        return _bounded(ast.Attribute(value.pos, value, str(name)))

    def callargs(self, *args) -> ast.Arguments:
        return _split_call_args(args)

    def call(self, func: ast.Expr, arguments: ast.Arguments | None) -> ast.Call:
        _check_callable(func)
        arguments = arguments or ast.Arguments()
        return _bounded(ast.Call(func.pos, func, arguments.positional, arguments.named))


def _statements(items) -> tuple[ast.Expr, ...]:
    """A def body's statements; a ``def`` among them (an Assign of its
    FunctionDef, as at the top level) names a local function."""
    out = []
    for item in items:
        if isinstance(item, ast.Assign):
            out.append(_bounded(ast.LocalAssign(item.value.pos, ast.Name(item.pos, item.name), item.value)))
        elif item is not None:
            out.append(item)
    return tuple(out)


class _Clause:
    """An ``elif``/``else`` of an ``if`` statement, until its If is made."""

    __slots__ = ("pos", "test", "body")

    def __init__(self, pos: ast.Pos, test: ast.Expr | None, body: tuple[ast.Expr, ...]):
        self.pos, self.test, self.body = pos, test, body


class _DoubleStar:
    """``**value`` in a call or a dict, until its Keyword or item is made."""

    __slots__ = ("value",)

    def __init__(self, value: ast.Expr):
        self.value = value


def _check_target(target: ast.Expr) -> None:
    """What a def body or a comprehension may assign: names, and tuples or
    lists of them (one starred)."""
    if isinstance(target, ast.Name):
        return
    if isinstance(target, (ast.TupleExpr, ast.ListExpr)) and target.items:
        if sum(isinstance(i, ast.Starred) for i in target.items) > 1:
            raise AstError(target.pos, "two starred names in one assignment")
        for item in target.items:
            _check_target(item.value if isinstance(item, ast.Starred) else item)
        return
    what = {ast.Subscript: "an item", ast.Attribute: "an attribute"}.get(type(target), "this expression")
    raise AstError(target.pos, f"cannot assign to {what}",
                   "A Flowfile function only names values (x = ..., a, b = ...): "
                   "it changes none in place. Build a new value instead.")


def _check_returns(body: list[ast.Expr], pos: ast.Pos, label: str) -> None:
    """Every path through a def body ends in ``return VALUE``."""
    if not _returns(body):
        at = body[-1].pos if body else pos
        raise AstError(at, f"{label} must end in `return VALUE`",
                       "A Flowfile function names values (x = ...) and returns one; "
                       "each branch of a final `if`/`else` ends in `return`.")


def _returns(body) -> bool:
    if not body:
        return False
    last = body[-1]
    if isinstance(last, ast.Return):
        return True
    if isinstance(last, ast.If):
        return _returns(last.body) and _returns(last.orelse)
    return False


_FIELD_HINT = "Write {{ and }} for literal braces in an f-string."


class _FString:
    """The parts of one f-string literal: Const for its text, FormattedValue
    for each ``{field!conversion:spec}``, as Python 3.11 reads them; each
    field's expression is parsed by the Flowfile's expression parser."""

    def __init__(self, builder: AstBuilder, token: Token, raw: bool):
        self.builder, self.token, self.raw = builder, token, raw
        text = str(token)
        prefix = _PREFIX.match(text).group(0)
        quotes = 3 if text[len(prefix):len(prefix) + 3] in ('"""', "'''") else 1
        self.text = text
        self.start = len(prefix) + quotes  # offset of the body in the token
        self.end = len(text) - quotes
        self.base = builder._at(token)

    def locate(self, offset: int) -> ast.Pos:
        """The file position of the character at ``offset`` in the token."""
        before = self.text[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            return ast.Pos(self.base.file, self.base.line, self.base.column + offset)
        return ast.Pos(self.base.file, self.base.line + newlines, offset - before.rfind("\n"))

    def parts(self) -> list[ast.Expr]:
        parts, i = self._parts(self.start, nested=False)
        return parts

    def _parts(self, i: int, nested: bool) -> tuple[list[ast.Expr], int]:
        """Text and fields from offset ``i`` up to the end of the body, or (in
        a format spec, ``nested``) up to its closing brace."""
        text, out = self.text, []
        literal: list[str] = []
        literal_at = i

        def flush() -> None:
            if literal:
                out.append(ast.Const(self.locate(literal_at), self._decode("".join(literal), literal_at)))
                literal.clear()

        while i < self.end:
            ch = text[i]
            if ch == "{":
                if not nested and text[i + 1:i + 2] == "{":
                    literal.append("{")
                    i += 2
                    continue
                flush()
                field, i = self._field(i + 1)
                out.append(field)
                literal_at = i
                continue
            if ch == "}":
                if nested:
                    flush()
                    return out, i
                if text[i + 1:i + 2] == "}":
                    literal.append("}")
                    i += 2
                    continue
                raise AstError(self.locate(i), "f-string: single '}' is not allowed", _FIELD_HINT)
            if ch == "\\" and not self.raw:
                if text[i + 1:i + 3] == "N{":  # a named character: its braces are not a field
                    close = text.find("}", i)
                    close = self.end - 1 if close < 0 or close >= self.end else close
                    literal.append(text[i:close + 1])
                    i = close + 1
                    continue
                if text[i + 1:i + 2] not in ("{", "}", ""):
                    literal.append(text[i:i + 2])
                    i += 2
                    continue
            literal.append(ch)
            i += 1
        if nested:
            raise AstError(self.locate(i), "f-string: expecting '}'", _FIELD_HINT)
        flush()
        return out, i

    def _decode(self, chunk: str, at: int) -> str:
        value = chunk if self.raw else _decode_escapes(chunk, self.locate(at))
        return _checked_text(value, self.locate(at))

    def _field(self, i: int) -> tuple[ast.FormattedValue, int]:
        """The field whose expression starts at offset ``i`` (just after its
        '{'), and the offset just after its closing '}'."""
        text, start = self.text, i
        depth, debug = 0, None
        while i < self.end:
            ch = text[i]
            if ch in "\'\"":
                i = self._skip_string(i)
                continue
            if ch == "\\":
                raise AstError(self.locate(i), "f-string: a field cannot hold a backslash",
                               "Name the value first (X = ...), then use {X}.")
            if ch == "#":
                raise AstError(self.locate(i), "f-string: a field cannot hold '#'")
            if ch in "([{":
                depth += 1
            elif ch in ")]}" and depth > 0:
                depth -= 1
            elif depth == 0 and ch in "}:!=":
                if ch == "!" and text[i + 1:i + 2] == "=":
                    i += 2
                    continue
                if ch == "=":
                    if text[i + 1:i + 2] == "=" or text[i - 1:i] in ("=", "!", "<", ">"):
                        i += 1
                        continue
                    debug = i
                    i += 1
                    while i < self.end and text[i] in " \t":
                        i += 1
                    if i >= self.end or text[i] not in "}!:":
                        raise AstError(self.locate(debug), "f-string: unexpected '='", _FIELD_HINT)
                    break
                break
            i += 1
        if i >= self.end:
            raise AstError(self.locate(start - 1), "f-string: expecting '}'", _FIELD_HINT)
        source = text[start:debug if debug is not None else i]
        if not source.strip():
            raise AstError(self.locate(start), "f-string: empty expression not allowed", _FIELD_HINT)
        value = self.builder.parse_field(source, lambda off: self.locate(start + off))
        conversion, spec = None, None
        if text[i] == "!":
            conversion = text[i + 1:i + 2]
            if conversion not in ("r", "s", "a") or text[i + 2:i + 3] not in (":", "}"):
                raise AstError(self.locate(i), "f-string: invalid conversion character: expected 's', 'r', or 'a'")
            i += 2
        if text[i] == ":":
            spec_parts, i = self._parts(i + 1, nested=True)
            spec = _bounded(ast.JoinedStr(self.locate(start), tuple(spec_parts)))
        if i >= self.end or text[i] != "}":
            raise AstError(self.locate(min(i, self.end - 1)), "f-string: expecting '}'", _FIELD_HINT)
        if debug is not None and conversion is None and spec is None:
            conversion = "r"  # {x=} shows repr(x), as Python does
        field = _bounded(ast.FormattedValue(value.pos, value, conversion, spec))
        if debug is not None:  # {x=}: the text of the field, then its value
            return _Debug(self.locate(start), text[start:i if text[i] == "}" else i], field), i + 1
        return field, i + 1

    def _skip_string(self, i: int) -> int:
        text = self.text
        q = text[i]
        quote = q * 3 if text[i:i + 3] == q * 3 else q
        end = text.find(quote, i + len(quote))
        if end < 0 or end >= self.end:
            raise AstError(self.locate(i), "f-string: a string in a field is never closed")
        return end + len(quote)


def _Debug(pos: ast.Pos, shown: str, field: ast.FormattedValue) -> ast.JoinedStr:
    """``{x=}``: the field's text up to its conversion or spec, then its value."""
    cut = min([k for k in (shown.find("!", shown.rfind("=")), shown.find(":", shown.rfind("="))) if k >= 0],
              default=len(shown))
    return _bounded(ast.JoinedStr(pos, (ast.Const(pos, shown[:cut]), field)))


_ESCAPE = re.compile(r"\\(\n|[\\'\"abfnrtv]|[0-7]{1,3}|x[0-9a-fA-F]{0,2}|u[0-9a-fA-F]{0,4}"
                     r"|U[0-9a-fA-F]{0,8}|N\{[^}\n]*\}|N)")


def _decode_escapes(text: str, pos: ast.Pos) -> str:
    """The backslash escapes of an f-string's text, as Python reads them
    (an unknown one, such as \\d, stays as written)."""
    if "\\" not in text:
        return text

    def one(m: re.Match) -> str:
        return _evaluated('"' + m.group(0) + '"', pos)

    return _ESCAPE.sub(one, text)


def _checked_text(value: str, pos: ast.Pos) -> str:
    try:
        value.encode("utf-8")  # no lone surrogates: no file name, command or text can hold one
    except UnicodeEncodeError:
        raise AstError(pos, "invalid string: it holds a lone surrogate (\\ud800-\\udfff)") from None
    if "\x00" in value:
        raise AstError(pos, "invalid string: it holds a NUL character (\\x00)")
    return value


def _string_value(literal: str, pos: ast.Pos) -> str:
    """The value of a string literal, as Python reads it, or an AstError."""
    plain = "\\" not in literal and "\r" not in literal  # Python reads a lone \r as a line break
    value = _unescaped(literal) if plain else _evaluated(literal, pos)
    return _checked_text(value, pos)


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
    """What may be called: a built-in function, a function the Flowfile
    defines (any other name: the evaluator checks it is one), a pure method,
    ``os.path``'s pure helpers, or a value that is a function (``f(x)(y)``)."""
    if isinstance(func, ast.Name):
        if func.id in OTHER_PYTHON_BUILTINS:
            raise AstError(
                func.pos, f"unknown function `{func.id}`",
                "Flowfile expressions may call: " + ", ".join(sorted(BUILTIN_FUNCTIONS))
                + ", and functions the Flowfile defines.\n" + DECLARATIVE_HINT,
            )
    elif isinstance(func, ast.Attribute):
        chain = _dotted(func)
        if chain is not None and chain[0] == "os" and len(chain) > 1:
            if len(chain) != 3 or chain[1] != "path" or chain[2] not in PATH_FUNCTIONS:
                raise AstError(
                    func.pos, f"`{clip('.'.join(chain))}()` is not allowed in a Flowfile expression",
                    "Flowfile expressions read no files and no environment; the pure path helpers are "
                    + ", ".join(f"os.path.{n}" for n in sorted(PATH_FUNCTIONS)) + ".\n" + DECLARATIVE_HINT,
                )
        elif func.attr not in PURE_METHODS:
            raise AstError(
                func.pos, f"method `.{func.attr}()` is not allowed here",
                "Allowed methods (none changes a value in place): " + ", ".join(sorted(PURE_METHODS))
                + ".\n" + DECLARATIVE_HINT,
            )
    elif not isinstance(func, (ast.Call, ast.Subscript, ast.Lambda, ast.IfExp)):
        raise AstError(func.pos, "this value cannot be called", DECLARATIVE_HINT)


def _dotted(e: ast.Expr) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None if ``e`` is not such a chain of names."""
    parts: list[str] = []
    while isinstance(e, ast.Attribute):
        parts.append(e.attr)
        e = e.value
    if not isinstance(e, ast.Name):
        return None
    parts.append(e.id)
    return parts[::-1]


def _check_rule_body(label: str, pos: ast.Pos, directives: tuple[ast.Directive, ...], runs: int) -> None:
    seen: set[str] = set()
    for d in directives:
        if d.name in TOPLEVEL_DIRECTIVES - {"wildcard_constraints"} or d.name not in RULE_DIRECTIVES:
            suggestion = did_you_mean(d.name, sorted(RULE_DIRECTIVES | {"run"}))
            raise AstError(d.pos, f"unknown directive `{d.name}:` in {label}" + (f". {suggestion}" if suggestion else ""),
                           _directive_hint(d.name))
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


def _split_call_args(args) -> ast.Arguments:
    """A call's arguments: positional ones (``*value`` among them) before
    named ones (``**value`` among them), as Python has them."""
    positional, named = [], []
    for a in args:
        if a is None:
            continue
        if isinstance(a, _DoubleStar):
            named.append(ast.Keyword(None, a.value))
        elif isinstance(a, ast.Keyword):
            if a.name is not None and any(k.name == a.name for k in named):
                raise AstError(a.value.pos, f"keyword argument `{clip(a.name)}` repeated")
            named.append(a)
        elif named and not isinstance(a, ast.Starred):
            raise AstError(a.pos, "a positional argument follows a named one",
                           "Put positional arguments first, as in Python.")
        elif any(k.name is None for k in named):
            raise AstError(a.pos, "a positional argument follows **", "Put positional arguments first, as in Python.")
        else:
            positional.append(a)
    return ast.Arguments(tuple(positional), tuple(named))


def _field_parser():
    """A parser of one f-string field's expression: the grammar's ``fexpr``
    start, without the indenter (a field is one line), building with the
    one builder (under the parser's lock, as the outer parse)."""
    from .parser import field_parser  # the parser module owns the Lark instances

    return field_parser()


def _directive_hint(name: str) -> str:
    if name in {"conda", "container", "singularity", "envmodules", "wrapper", "notebook",
                "cwl", "shadow", "group", "handover", "template_engine"}:
        return f"Snakemake's `{name}:` is not supported by flow."
    return "Rule directives: " + ", ".join(sorted(RULE_DIRECTIVES | {"run"})) + "."
