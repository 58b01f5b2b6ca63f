"""Flowfile text -> AST (flow.grammar.ast).

Three steps, each small:
1. ``_extract_run_blocks`` cuts ``run:`` blocks out of the text (they are Python,
   not Flowfile) and leaves a placeholder, keeping line numbers intact;
2. Lark's LALR parser, fed by ``FlowIndenter``, builds a parse tree;
3. ``_ToAst`` turns the tree into frozen dataclasses and checks what the tree
   alone can tell (known functions and directives, one action per rule).
Every failure becomes a ``FlowfileError`` with file, line and column.
"""

from __future__ import annotations

import ast as pyast
import re
import warnings
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.indenter import Indenter

from . import ast
from .errors import FlowfileError

BUILTIN_FUNCTIONS = frozenset(
    {
        "expand", "glob_wildcards", "temp", "protected", "directory", "ancient", "multiext",
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
ACTIONS = ("shell", "run", "script", "duckdb", "mlx")
RULE_DIRECTIVES = frozenset(
    {
        "input", "output", "params", "threads", "resources", "retries", "priority", "log",
        "benchmark", "message", "wildcard_constraints", "shell", "script", "duckdb", "mlx",
        "schema", "default_target", "localrule",
    }
)
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

_GRAMMAR = Path(__file__).with_name("flowfile.lark")


class FlowIndenter(Indenter):
    """Lark's Indenter, plus Snakemake's rule that a directive's value continues
    on every following line indented deeper than the directive itself.

    ``input:`` followed by an indented list is thus the same token stream as
    the one-line form, which keeps the grammar LALR(1)."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def __init__(self) -> None:
        super().__init__()
        self.open_brackets: list[Token] = []

    def process(self, stream):
        self.open_brackets = []
        return super().process(stream)

    def _process(self, stream):
        line_tokens: list[str] = []  # token types since the start of the logical line
        continuing_from: int | None = None  # indent of the directive whose value continues
        last = None
        for token in stream:
            last = token
            if token.type == self.NL_type:
                if self.paren_level > 0:
                    continue
                indent = _indent_of(token)
                if continuing_from is None and line_tokens[:2] == ["NAME", "COLON"]:
                    continuing_from = self.indent_level[-1]
                if continuing_from is not None and indent > continuing_from:
                    continue  # the directive's value goes on
                continuing_from = None
                line_tokens = []
                yield from self._handle_nl(token, indent)
                continue
            line_tokens.append(token.type)
            yield token
            if token.type in self.OPEN_PAREN_types:
                self.paren_level += 1
                self.open_brackets.append(token)
            elif token.type in self.CLOSE_PAREN_types:
                self.paren_level -= 1
                if self.paren_level < 0 or not self.open_brackets:
                    raise _Positioned(f"unmatched '{token.value}'", token.line, token.column)
                self.open_brackets.pop()
        if self.paren_level > 0:
            tok = self.open_brackets[-1]
            raise _Positioned(f"'{tok.value}' is never closed", tok.line, tok.column)
        while len(self.indent_level) > 1:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, "", last) if last else Token(self.DEDENT_type, "")

    def _handle_nl(self, token: Token, indent: int):
        yield token
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, "", token)
            return
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, "", token)
        if indent != self.indent_level[-1]:
            line = token.end_line if token.end_line is not None else token.line
            raise _Positioned(
                "this line's indentation matches no enclosing block", line, indent + 1
            )


def _indent_of(nl_token: Token) -> int:
    return len(nl_token.rsplit("\n", 1)[-1]) if "\n" in nl_token else 0


class _Positioned(Exception):
    def __init__(self, message: str, line: int, column: int, hint: str | None = None):
        super().__init__(message)
        self.message, self.line, self.column, self.hint = message, line, column, hint


_INDENTER = FlowIndenter()


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        postlex=_INDENTER,
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


# ------------------------------------------------------------------ run blocks

_RULE_HEADER = re.compile(r"^(rule|checkpoint)\b")
_RUN_LINE = re.compile(r"^( +)run\s*:(.*)$")


def _extract_run_blocks(text: str, file: str) -> tuple[str, list[ast.RunBlock]]:
    """Replace each ``run:`` block by ``run: @runN`` and blank lines."""
    lines = text.split("\n")
    blocks: list[ast.RunBlock] = []
    in_rule = False
    in_long_string: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if in_long_string is None:
            _check_tabs(line, i + 1, file)
            if _RULE_HEADER.match(line):
                in_rule = True
            elif line.strip() and not line[0].isspace() and not line.lstrip().startswith("#"):
                in_rule = False
            m = _RUN_LINE.match(line)
            if in_rule and m:
                indent = len(m.group(1))
                rest = m.group(2)
                if rest.strip() and not rest.strip().startswith("#"):
                    code, first = rest.strip(), i + 1
                    lines[i] = f"{m.group(1)}run: @run{len(blocks)}"
                    col = len(line) - len(rest.lstrip()) + 1
                    blocks.append(ast.RunBlock(code, ast.Pos(file, first, col)))
                    i += 1
                    continue
                j = i + 1
                body: list[str] = []
                in_string: str | None = None  # a triple-quoted string may reach column 0
                while j < len(lines):
                    nxt = lines[j]
                    if in_string is None and nxt.strip() and len(nxt) - len(nxt.lstrip(" \t")) <= indent:
                        break
                    body.append(nxt)
                    in_string = _long_string_state(nxt, in_string)
                    j += 1
                while body and not body[-1].strip():
                    body.pop()
                if not body:
                    if j < len(lines):
                        _check_tabs(lines[j], j + 1, file)
                    raise FlowfileError(
                        "`run:` has no code: indent the Python block below it",
                        file, i + 1, indent + 1, source_line=line,
                    )
                code = _dedent_code(body)
                first_col = len(body[0]) - len(body[0].lstrip()) + 1
                blocks.append(ast.RunBlock(code, ast.Pos(file, i + 2, first_col)))
                lines[i] = f"{m.group(1)}run: @run{len(blocks) - 1}"
                for k in range(i + 1, i + 1 + len(body)):
                    lines[k] = ""
                i += 1 + len(body)
                continue
        in_long_string = _long_string_state(line, in_long_string)
        i += 1
    return "\n".join(lines), blocks


def _dedent_code(body: list[str]) -> str:
    """Remove the block's indentation from its code lines, but not from the
    lines of a triple-quoted string (their text is the string's content)."""
    first = next(ln for ln in body if ln.strip())
    width = len(first) - len(first.lstrip())
    out, state = [], None
    for ln in body:
        if state is None:
            lead = len(ln) - len(ln.lstrip(" "))
            out.append(ln[min(lead, width):])
        else:
            out.append(ln)
        state = _long_string_state(ln, state)
    return "\n".join(out)


def _check_tabs(line: str, lineno: int, file: str) -> None:
    stripped = line.lstrip(" \t")
    if stripped and "\t" in line[: len(line) - len(stripped)]:
        col = line.index("\t") + 1
        raise FlowfileError(
            "a tab in indentation", file, lineno, col,
            hint="Indent Flowfiles with spaces only (as Snakemake and Python style do).",
            source_line=line,
        )


def _long_string_state(line: str, state: str | None) -> str | None:
    """Whether a line ends inside a triple-quoted string: ``state`` is the
    open quote (or None) before the line, the result the one after it.
    Quotes inside comments and one-line strings do not count."""
    i, n = 0, len(line)
    while i < n:
        if state is not None:  # inside a long string: find its end
            if line[i] == "\\":
                i += 2
            elif line.startswith(state, i):
                i, state = i + 3, None
            else:
                i += 1
            continue
        c = line[i]
        if c == "#":
            break
        if c in "'\"":
            if line.startswith(c * 3, i):
                i, state = i + 3, c * 3
                continue
            i += 1
            while i < n and line[i] != c:  # a one-line string
                i += 2 if line[i] == "\\" else 1
        i += 1
    return state


# ----------------------------------------------------------- tree -> dataclasses


def _pos(file: str, meta_or_token) -> ast.Pos:
    return ast.Pos(file, getattr(meta_or_token, "line", 0) or 0, getattr(meta_or_token, "column", 0) or 0)


class _AstError(Exception):
    def __init__(self, pos: ast.Pos, message: str, hint: str | None = None):
        super().__init__(message)
        self.pos, self.message, self.hint = pos, message, hint


@v_args(meta=True, inline=True)
class _ToAst(Transformer):
    def __init__(self, file: str, runs: list[ast.RunBlock]):
        super().__init__()
        self.file = file
        self.runs = runs

    def p(self, meta) -> ast.Pos:
        return _pos(self.file, meta)

    # statements
    def start(self, meta, *stmts):
        return [s for s in stmts if s is not None]

    def assign(self, meta, name, value):
        return ast.Assign(str(name), value, _pos(self.file, name))

    def ruleorder(self, meta, *names):
        return ast.RuleOrder(tuple(str(n) for n in names), self.p(meta))

    def directive(self, meta, name, arguments):
        return ast.Directive(str(name), arguments, _pos(self.file, name))

    def run(self, meta, ref):
        index = int(str(ref)[4:])
        if index >= len(self.runs):  # `@runN` written by hand where no block was cut out
            raise _AstError(self.p(meta), "`run:` must be followed by Python code")
        return self.runs[index]

    def rule(self, meta, kind, name, *body):
        pos = self.p(meta)
        rule_name = str(name) if name is not None else None
        directives = tuple(d for d in body if isinstance(d, ast.Directive))  # a docstring is dropped
        runs = [b for b in body if isinstance(b, ast.RunBlock)]
        label = f"rule {rule_name}" if rule_name else "this rule"
        seen: dict[str, ast.Directive] = {}
        for d in directives:
            if d.name in TOPLEVEL_DIRECTIVES - {"wildcard_constraints"} or d.name not in RULE_DIRECTIVES:
                raise _AstError(d.pos, f"unknown directive `{d.name}:` in {label}", _directive_hint(d.name))
            if d.name in seen:
                raise _AstError(d.pos, f"`{d.name}:` appears twice in {label}")
            seen[d.name] = d
        actions = [d.name for d in directives if d.name in ACTIONS] + ["run"] * len(runs)
        if len(actions) > 1:
            raise _AstError(
                pos, f"{label} has {len(actions)} actions ({', '.join(actions)})",
                "A rule has exactly one of shell:, run:, script:, duckdb:, mlx: (or none).",
            )
        return ast.Rule(
            rule_name or "", str(kind) == "checkpoint", directives, runs[0] if runs else None, pos
        )

    def arguments(self, meta, *args):
        return _split_args(args)

    def keyword(self, meta, name, value):
        return ast.Keyword(str(name), value)

    # expressions
    def strings(self, meta, *tokens):
        return ast.Const(self.p(meta), "".join(self._string(t) for t in tokens))

    def _string(self, token: Token) -> str:
        prefix = re.match(r"[a-zA-Z]*", str(token)).group(0).lower()
        pos = _pos(self.file, token)
        if "f" in prefix:
            raise _AstError(pos, "f-strings are not supported in Flowfiles",
                            "Join strings with + or use expand(); wildcards like {sample} stay as they are.")
        if "b" in prefix or set(prefix) - {"r", "u"}:
            raise _AstError(pos, f"string prefix `{prefix}` is not supported")
        try:
            with warnings.catch_warnings():  # "\{" stays "\{", as in Python, without its warning
                warnings.simplefilter("ignore")
                value = pyast.literal_eval(str(token))
            value.encode("utf-8")  # no lone surrogates: no file name, command or text can hold one
        except UnicodeEncodeError:
            raise _AstError(pos, "invalid string: it holds a lone surrogate (\\ud800-\\udfff)") from None
        except (SyntaxError, ValueError) as e:  # a bad escape such as \N{BOGUS} or \x4
            reason = re.sub(r"^\(unicode error\) '\w+' codec can't decode bytes in position [\d-]+: ", "",
                            getattr(e, "msg", None) or str(e))
            raise _AstError(pos, f"invalid string: {reason}",
                            'Write a backslash as \\\\, or use a raw string r"...".') from None
        if "\x00" in value:
            raise _AstError(pos, "invalid string: it holds a NUL character (\\x00)")
        return value

    def number(self, meta, token):
        text = str(token).replace("_", "")
        try:
            value = int(text, 0)
        except ValueError:
            try:
                if text.isdigit():  # 08: Python refuses leading zeros too
                    raise ValueError(text)
                value = float(text)
            except ValueError:
                raise _AstError(self.p(meta), f"invalid number {str(token)!r}") from None
        return ast.Const(self.p(meta), value)

    def name(self, meta, token):
        s = str(token)
        if s in ("True", "False", "None"):
            return ast.Const(self.p(meta), {"True": True, "False": False, "None": None}[s])
        if s in PYTHON_KEYWORDS:
            raise _AstError(self.p(meta), f"`{s}` is not allowed here", DECLARATIVE_HINT)
        return ast.Name(self.p(meta), s)

    def list(self, meta, *items):
        return ast.ListExpr(self.p(meta), tuple(i for i in items if i is not None))

    def empty_tuple(self, meta):
        return ast.TupleExpr(self.p(meta), ())

    def tuple(self, meta, first, *rest):
        return ast.TupleExpr(self.p(meta), (first, *[i for i in rest if i is not None]))

    def dict(self, meta, *pairs):
        return ast.DictExpr(self.p(meta), tuple(p for p in pairs if p is not None))

    def pair(self, meta, key, value):
        return (key, value)

    def _binop(self, meta, op, left, right):
        return ast.BinOp(self.p(meta), op, left, right)

    def add(self, meta, left, right):
        return self._binop(meta, "+", left, right)

    def sub(self, meta, left, right):
        return self._binop(meta, "-", left, right)

    def mul(self, meta, left, right):
        return self._binop(meta, "*", left, right)

    def div(self, meta, left, right):
        return self._binop(meta, "/", left, right)

    def floordiv(self, meta, left, right):
        return self._binop(meta, "//", left, right)

    def mod(self, meta, left, right):
        return self._binop(meta, "%", left, right)

    def neg(self, meta, operand):
        return ast.UnaryOp(self.p(meta), "-", operand)

    def subscript(self, meta, value, index):
        return ast.Subscript(self.p(meta), value, index)

    def attribute(self, meta, value, name):
        return ast.Attribute(self.p(meta), value, str(name))

    def callargs(self, meta, *args):
        return _split_args(args)

    def call(self, meta, func, arguments):
        arguments = arguments or ast.Arguments()
        if isinstance(func, ast.Name):
            if func.id not in BUILTIN_FUNCTIONS:
                raise _AstError(
                    func.pos, f"unknown function `{func.id}`",
                    "Flowfile expressions may call: " + ", ".join(sorted(BUILTIN_FUNCTIONS))
                    + ".\n" + DECLARATIVE_HINT,
                )
        elif isinstance(func, ast.Attribute):
            if func.attr not in PURE_METHODS:
                raise _AstError(
                    func.pos, f"method `.{func.attr}()` is not allowed here",
                    "Allowed methods: " + ", ".join(sorted(PURE_METHODS)) + ".\n" + DECLARATIVE_HINT,
                )
        else:
            raise _AstError(func.pos, "only named functions can be called here", DECLARATIVE_HINT)
        return ast.Call(self.p(meta), func, arguments.positional, arguments.named)


def _split_args(args) -> ast.Arguments:
    positional, named = [], []
    for a in args:
        if a is None:
            continue
        if isinstance(a, ast.Keyword):
            named.append(a)
        elif named:
            raise _AstError(a.pos, "a positional entry follows a named one",
                            "Put positional entries first, as in a Python call.")
        else:
            positional.append(a)
    return ast.Arguments(tuple(positional), tuple(named))


def _directive_hint(name: str) -> str:
    if name in {"conda", "container", "singularity", "envmodules", "wrapper", "notebook",
                "cwl", "shadow", "group", "cache", "handover", "template_engine"}:
        return f"Snakemake's `{name}:` is not supported by flow."
    return "Rule directives: " + ", ".join(sorted(RULE_DIRECTIVES | {"run"})) + "."


# -------------------------------------------------------------------- errors

_READABLE = {
    "NAME": "a name", "STRING": "a string", "LONG_STRING": "a string", "NUMBER": "a number",
    "COLON": "':'", "COMMA": "','", "EQUAL": "'='", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "_NL": "end of line",
    "_INDENT": "an indented block", "_DEDENT": "end of block", "$END": "end of file",
    "RULE": "`rule`", "CHECKPOINT": "`checkpoint`", "MORETHAN": "'>'", "DOT": "'.'",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "RUNREF": "a run block",
}


def _describe_token(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "_INDENT":
        return "indentation"
    if tok.type == "_DEDENT":
        return "end of block"
    if tok.type == "$END":
        return "end of file"
    return f"`{tok.value}`"


def _blank_strings(line: str) -> str:
    return re.sub(r"(\"[^\"]*\"|'[^']*')", lambda m: " " * len(m.group(0)), line)


def _keyword_on_line(source_line: str, column: int) -> tuple[str, int] | None:
    """The first Python keyword on the line up to ``column``, outside strings,
    with its column."""
    code = _blank_strings(source_line)
    for m in re.finditer(r"[^\W\d]\w*", code[: max(column, 1) + 20]):
        if m.group(0) in PYTHON_KEYWORDS and m.start() < max(column, 1):
            return m.group(0), m.start() + 1
    return None


def _after_block_header(lines: list[str], line: int) -> bool:
    """Whether the line before ``line`` (1-based) opens a block (``rule a:``)."""
    for prev in reversed(lines[: max(line - 1, 0)]):
        code = _blank_strings(prev).split("#", 1)[0].strip()
        if code:
            return code.endswith(":") and code.split()[0] in ("rule", "checkpoint")
    return False


def _from_lark(e: UnexpectedInput, text: str, file: str) -> FlowfileError:
    lines = text.split("\n")
    line, column = e.line, e.column
    if isinstance(e, UnexpectedToken) and e.token.type == "_INDENT":
        line, column = e.token.end_line or line, e.token.end_column or column
    elif isinstance(e, UnexpectedToken) and e.token.type in ("_NL", "_DEDENT", "$END"):
        # point at the end of the previous line rather than at the next one
        tok = e.token
        line = tok.line if tok.line is not None else len(lines)
        if tok.type == "$END" or line > len(lines):
            line = len([ln for ln in lines if True]) or 1
            while line > 1 and not lines[line - 1].strip():
                line -= 1
        column = len(lines[line - 1].rstrip()) + 1 if 0 < line <= len(lines) else 1
    source = lines[line - 1] if 0 < (line or 0) <= len(lines) else ""
    found = None
    if isinstance(e, UnexpectedToken) and e.token.type == "NAME" and e.token.value in PYTHON_KEYWORDS:
        found = (e.token.value, column)
    elif source:
        found = _keyword_on_line(source, column or 1)
    if found is not None:
        keyword, kcol = found
        what = {
            "import": "`import` statements are",
            "from": "`from ... import` statements are",
            "def": "function definitions (`def`) are",
            "class": "class definitions are",
            "lambda": "`lambda` functions are",
            "for": "loops and comprehensions (`for`) are",
            "if": "`if` statements and expressions are",
            "while": "`while` loops are",
        }.get(keyword, f"`{keyword}` is")
        return FlowfileError(
            f"{what} not allowed in a Flowfile", file, line,
            kcol, DECLARATIVE_HINT, source,
        )
    if isinstance(e, UnexpectedCharacters):
        rest = source[(column or 1) - 1:]
        if rest[:3] in ('"""', "'''"):
            return FlowfileError(f"the string {rest[:3]} is never closed", file, line, column,
                                 f"End it with {rest[:3]}.", source)
        if e.char in "\"'":
            return FlowfileError(f"the string {e.char} is never closed on this line", file, line, column,
                                 f"End it with {e.char} on the same line, or use triple quotes "
                                 "for text over several lines.", source)
        return FlowfileError(f"unexpected character {e.char!r}", file, line, column, None, source)
    if isinstance(e, UnexpectedToken):
        expected = sorted({_READABLE.get(t, f"'{t}'" if not t.isupper() else t.lower())
                           for t in e.expected if not t.startswith("__")})
        msg = f"unexpected {_describe_token(e.token)}"
        hint = None
        if _INDENTER.open_brackets and _INDENTER.open_brackets[-1].line < line:
            b = _INDENTER.open_brackets[-1]
            return FlowfileError(msg, file, line, column,
                                 f"The '{b.value}' at line {b.line}, column {b.column} is never closed.", source)
        if e.token.type == "_INDENT":
            msg = "unexpected indentation"
        elif "_INDENT" in e.expected or _after_block_header(lines, line):
            hint = "Expected an indented block: indent the lines under it with spaces."
        elif expected and len(expected) <= 6:
            hint = "Expected " + " or ".join(expected) + "."
        return FlowfileError(msg, file, line, column, hint, source)
    if isinstance(e, UnexpectedEOF):
        return FlowfileError("unexpected end of file", file, len(lines), 1, None, lines[-1] if lines else "")
    return FlowfileError(str(e), file, line, column, None, source)


_HANDLER = re.compile(r"(onstart|onsuccess|onerror)\s*:")


def _check_handlers(text: str, file: str) -> None:
    """Snakemake's ``onsuccess:``-style handlers hold Python: name them
    rather than fail on their code."""
    in_string: str | None = None
    for i, line in enumerate(text.split("\n")):
        m = _HANDLER.match(line) if in_string is None else None
        if m:
            raise FlowfileError(f"`{m.group(1)}:` handlers are not supported in Flowfiles", file, i + 1, 1,
                                "A Flowfile is declarative: make the step a rule, or run it after "
                                "`flow run` (its exit code says whether the run succeeded).", line)
        in_string = _long_string_state(line, in_string)


MAX_DEPTH = 150  # syntax tree levels; far beyond any real Flowfile, well within Python's stack


def _check_depth(tree: Tree) -> None:
    """Refuse expressions nested so deep that building or evaluating them
    would exhaust the stack, pointing at where the nesting gets too deep.
    Iterative, so that it cannot itself run out of stack."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Positioned("expression nested too deeply", node.meta.line, node.meta.column,
                              "Split it into named parts (X = ...) and combine those.")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def parse(text: str, file: str = "Flowfile") -> ast.Module:
    """Parse Flowfile text. Raises FlowfileError, never anything else."""
    if "on" in text:
        _check_handlers(text, file)
    if "\x00" in text:
        idx = text.index("\x00")
        ln = text.count("\n", 0, idx) + 1
        col = idx - (text.rfind("\n", 0, idx) + 1) + 1
        raise FlowfileError("the file contains a NUL byte; is it a binary file?", file, ln, col)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    stripped, runs = _extract_run_blocks(text, file)
    try:
        tree = _lark().parse(stripped)
        _check_depth(tree)
        statements = _ToAst(file, runs).transform(tree)
    except _Positioned as e:
        src = stripped.split("\n")
        raise FlowfileError(e.message, file, e.line, e.column, e.hint,
                            src[e.line - 1] if 0 < e.line <= len(src) else None) from None
    except UnexpectedInput as e:
        raise _from_lark(e, stripped, file) from None
    except VisitError as e:
        inner = e.orig_exc
        if isinstance(inner, _AstError):
            src = text.split("\n")
            line = inner.pos.line
            raise FlowfileError(inner.message, file, line, inner.pos.column, inner.hint,
                                src[line - 1] if 0 < line <= len(src) else None) from None
        if isinstance(inner, (SyntaxError, ValueError)):  # a string literal Python rejects
            raise FlowfileError(f"invalid literal: {inner}", file, None, None) from None
        raise
    except RecursionError:
        raise FlowfileError("expression nested too deeply", file, 1, 1) from None
    for stmt in statements:
        if isinstance(stmt, ast.Directive) and stmt.name not in TOPLEVEL_DIRECTIVES:
            if stmt.name in RULE_DIRECTIVES:
                raise FlowfileError.at(stmt.pos, f"`{stmt.name}:` belongs inside a rule",
                                       "Indent it under a `rule NAME:` line.")
            raise FlowfileError.at(
                stmt.pos, f"unknown top-level directive `{stmt.name}:`",
                "Top-level directives: " + ", ".join(sorted(TOPLEVEL_DIRECTIVES | {"ruleorder"})) + ".",
            )
    return ast.Module(file, tuple(statements))


def parse_file(path: str | Path) -> ast.Module:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FlowfileError(f"cannot read {path}: {e.strerror}", str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(e, data, str(path)) from None
    return parse(text, str(path))


def _not_utf8(e: UnicodeDecodeError, data: bytes, file: str) -> FlowfileError:
    """Point at the first byte that is not UTF-8, by line and character column."""
    start = data.rfind(b"\n", 0, e.start) + 1
    end = data.find(b"\n", e.start)
    line = data[start:end if end >= 0 else len(data)]
    column = len(data[start:e.start].decode("utf-8", "replace")) + 1
    return FlowfileError(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x}: {e.reason})",
                         file, data.count(b"\n", 0, e.start) + 1, column,
                         "Save it as UTF-8.", line.decode("utf-8", "replace"))
