"""The pre-pass: the raw Flowfile text -> the text Lark parses, and the Python cut out of it.

It receives the text as read from the file and hands on a ``Prepared``:
the text normalised (no byte order mark, ``\\n`` line ends, a final line
break), the same text with each ``run:`` block (Python, not Flowfile)
replaced by ``run: @runN`` and blank lines, so that line numbers stay those
of the file, and the cut-out blocks as ``ast.RunBlock``. It also refuses
what only the raw lines show, as a ``FlowfileError``: a NUL byte, a ``run:``
without code, a ``run:`` block indented inconsistently with tabs and spaces
(as Python refuses it), Snakemake's ``onsuccess:``-style handlers (Python
too). Indentation may hold tabs, read as Python reads them: a tab advances
to the next multiple of 8 columns (``indent_width``). Each check is linear in
the text: no regular expression here keeps state per character it matches
(repeats are possessive).
"""

from __future__ import annotations

import ast as pyast
import re
from typing import NamedTuple

from . import ast
from .errors import FlowfileError

__all__ = ["TAB_SIZE", "MIXED_INDENT_HINT", "Prepared", "indent_width", "prepare"]

TAB_SIZE = 8  # as Python and Snakemake read a tab in indentation
MIXED_INDENT_HINT = (
    "Indent this block as the lines around it: with tabs only or with spaces only "
    "(Python reads a tab as up to 8 columns, but refuses indentation whose depth "
    "depends on that)."
)


class Prepared(NamedTuple):
    text: str  # the whole text, normalised: what error excerpts quote
    for_lark: str  # the same lines, each run: block cut out
    runs: list[ast.RunBlock]  # the blocks cut out, @run0 first


def prepare(text: str, file: str) -> Prepared:
    """The text as Lark is to see it, or a FlowfileError."""
    _check_handlers(text, file)
    _check_run_on_rule_line(text, file)
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
_RUN_LINE = re.compile(r"^([ \t]+)run\s*:(.*)$")


# A line that may start a run block.
_MAY_CUT = re.compile(r"^[ \t]+run\s*:", re.MULTILINE)


def indent_width(whitespace: str) -> int:
    """The column (from 0) that indentation ``whitespace`` reaches, as Python
    reads it: a space advances one column, a tab to the next multiple of 8."""
    if "\t" not in whitespace:
        return len(whitespace)
    col = 0
    for ch in whitespace:
        col = (col // TAB_SIZE + 1) * TAB_SIZE if ch == "\t" else col + 1
    return col


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _extract_run_blocks(text: str, file: str) -> tuple[str, list[ast.RunBlock]]:
    """Replace each ``run:`` block by ``run: @runN`` and blank lines."""
    if not _MAY_CUT.search(text):
        return text, []  # nothing for the line by line walk below to cut
    lines = text.split("\n")
    blocks: list[ast.RunBlock] = []
    in_rule = False
    in_long_string: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if in_long_string is None:
            if _RULE_HEADER.match(line):
                in_rule = True
            elif line.strip() and not line[0].isspace() and not line.lstrip().startswith("#"):
                in_rule = False
            m = _RUN_LINE.match(line)
            if in_rule and m:
                indent = indent_width(m.group(1))
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
                    if in_string is None and nxt.strip() and indent_width(_lead(nxt)) <= indent:
                        break
                    body.append(nxt)
                    in_string = _long_string_state(nxt, in_string)
                    j += 1
                while body and not body[-1].strip():
                    body.pop()
                if not body:
                    raise FlowfileError(
                        "`run:` has no code: indent the Python block below it",
                        file, i + 1, len(m.group(1)) + 1, source_line=line,
                    )
                _check_run_indentation(m.group(1), body, i + 2, file)
                code = _dedent_code(body)
                first_col = len(_lead(body[0])) + 1
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
    lines of a triple-quoted string (their text is the string's content).
    The indentation of a code line is read in columns (a tab reaches the next
    multiple of 8, as Python reads it), and what is left of it is spaces:
    the block's lines keep their depths, whatever mix of tabs and spaces they
    were indented with (``_check_run_indentation`` has refused a mix whose
    depths Python would not accept)."""
    first = next(ln for ln in body if ln.strip())
    width = indent_width(_lead(first))
    out, state = [], None
    for ln in body:
        if state is None:
            lead = _lead(ln)
            if "\t" in lead:
                out.append(" " * max(indent_width(lead) - width, 0) + ln[len(lead):])
            else:
                out.append(ln[min(len(lead), width):])
        else:
            out.append(ln)
        state = _long_string_state(ln, state)
    return "\n".join(out)


def _check_run_indentation(run_indent: str, body: list[str], first_line: int, file: str) -> None:
    """A ``run:`` block whose indentation mixes tabs and spaces in a way Python
    refuses (its depth would depend on how wide a tab is) is refused here, at
    its line, as Python would refuse it inside Snakemake's ``run:``. Python's
    own tokenizer judges: only the lines that start a statement count."""
    if "\t" not in run_indent and not any("\t" in _lead(ln) for ln in body):
        return
    # `if 1:` lines give the block the depths it has in the file: the rule's, then the run:'s.
    source = "if 1:\n" + run_indent + "if 1:\n" + "\n".join(body) + "\n"
    try:
        compile(source, file, "exec", flags=pyast.PyCF_ONLY_AST, dont_inherit=True)
    except TabError as e:
        index = (e.lineno or 3) - 3
        line = body[index] if 0 <= index < len(body) else ""
        raise FlowfileError("inconsistent use of tabs and spaces in indentation", file,
                            first_line + index, len(_lead(line)) + 1, MIXED_INDENT_HINT, line) from None
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        pass  # any other mistake in the block is the job's to report, where it runs


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


_RUN_ON_RULE_LINE = re.compile(r"^(?:rule|checkpoint)\b[^\n:]*:[ \t]*run[ \t]*:", re.MULTILINE)


def _check_run_on_rule_line(text: str, file: str) -> None:
    """``rule a: run: ...``: a ``run:`` block is Python, cut out line by line
    below its ``run:`` line; it cannot share the rule's line."""
    if not _RUN_ON_RULE_LINE.search(text):
        return
    in_string: str | None = None
    for i, line in enumerate(text.split("\n")):
        m = _RUN_ON_RULE_LINE.match(line) if in_string is None else None
        if m:
            raise FlowfileError("a `run:` block cannot start on the `rule` line", file, i + 1,
                                line.rfind("run", 0, m.end()) + 1,
                                "Put `run:` on its own indented line under `rule NAME:`, "
                                "and its code indented below it.", line)
        in_string = _long_string_state(line, in_string)


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
