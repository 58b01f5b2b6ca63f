"""The pre-pass: the raw Flowfile text -> the text Lark parses, and the Python cut out of it.

It receives the text as read from the file and hands on a ``Prepared``:
the text normalised (no byte order mark, ``\\n`` line ends, a final line
break), the same text with each ``run:`` block (Python, not Flowfile)
replaced by ``run: @runN`` and blank lines, so that line numbers stay those
of the file, and the cut-out blocks as ``ast.RunBlock``. It also refuses
what only the raw lines show, as a ``FlowfileError``: a NUL byte, a tab in
indentation, a ``run:`` without code, Snakemake's ``onsuccess:``-style
handlers (Python too). Each check is linear in the text: no regular
expression here keeps state per character it matches (repeats are possessive).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from . import ast
from .errors import FlowfileError

__all__ = ["Prepared", "prepare"]


class Prepared(NamedTuple):
    text: str  # the whole text, normalised: what error excerpts quote
    for_lark: str  # the same lines, each run: block cut out
    runs: list[ast.RunBlock]  # the blocks cut out, @run0 first


def prepare(text: str, file: str) -> Prepared:
    """The text as Lark is to see it, or a FlowfileError."""
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
    return Prepared(text, stripped, runs)


# ------------------------------------------------------------------ run blocks

_RULE_HEADER = re.compile(r"^(rule|checkpoint)\b")
_RUN_LINE = re.compile(r"^( +)run\s*:(.*)$")


# A line that may start a run block, or a tab in the indentation of a line with code.
_MAY_CUT_OR_REFUSE = re.compile(r"^(?: +run\s*:|[ \t]*\t[ \t]*[^ \t\n])", re.MULTILINE)


def _extract_run_blocks(text: str, file: str) -> tuple[str, list[ast.RunBlock]]:
    """Replace each ``run:`` block by ``run: @runN`` and blank lines."""
    if not _MAY_CUT_OR_REFUSE.search(text):
        return text, []  # nothing for the line by line walk below to cut or refuse
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
    i = 0
    while True:
        if state is not None:  # inside a long string: find its end
            end = _LONG_REST[state].match(line, i)
            if end is None:
                return state
            i, state = end.end(), None
            continue
        found = _QUOTE_OR_COMMENT.search(line, i)
        if found is None or found.group() == "#":
            return None
        if len(found.group()) == 3:
            i, state = found.end(), found.group()
        else:  # a one-line string: skip to its end, or to the end of the line
            i = _ONE_LINE_REST[found.group()].match(line, found.end()).end()


# Possessive repeats: each match takes time linear in the line, and no memory per character.
_QUOTE_OR_COMMENT = re.compile("#|\"\"\"|'''|[\"']")
_ONE_LINE_REST = {q: re.compile(rf"(?:[^{q}\\]|\\[\s\S])*+{q}?") for q in "'\""}
_LONG_REST = {q * 3: re.compile(rf"(?:[^{q}\\]|\\[\s\S]|{q}(?!{q}{q}))*+{q * 3}") for q in "'\""}


# -------------------------------------------------------------------- handlers

_HANDLER = re.compile(r"(onstart|onsuccess|onerror)\s*:")
_ANY_HANDLER = re.compile(r"^(?:onstart|onsuccess|onerror)\s*:", re.MULTILINE)


def _check_handlers(text: str, file: str) -> None:
    """Snakemake's ``onsuccess:``-style handlers hold Python: name them
    rather than fail on their code."""
    if not _ANY_HANDLER.search(text):
        return  # the line by line walk below only tells real handlers from text in strings
    in_string: str | None = None
    for i, line in enumerate(text.split("\n")):
        m = _HANDLER.match(line) if in_string is None else None
        if m:
            raise FlowfileError(f"`{m.group(1)}:` handlers are not supported in Flowfiles", file, i + 1, 1,
                                "A Flowfile is declarative: make the step a rule, or run it after "
                                "`flow run` (its exit code says whether the run succeeded).", line)
        in_string = _long_string_state(line, in_string)
