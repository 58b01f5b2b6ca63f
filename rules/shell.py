"""``shell:`` actions and the formatting of commands.

Every substituted value is shell-quoted unless it needs no quoting, so a file
named ``x;rm -rf ~`` stays a file name; ``{x:raw}`` opts out. A path of
``{input}``, ``{output}`` or ``{log}`` that starts with ``-`` is written
``./-...`` (raw too), so no command takes a file named
``--checkpoint-action=exec=sh`` for an option; params, wildcards and config
values are left as they are, since passing options is what they are for.

A ``params`` or ``config`` string is split into shell words as the shell
would split it, and each word is quoted: ``extra="-r -u"`` passes two
options, as under Snakemake (which pastes the value unquoted), yet no value
can run a command. ``{x:q}`` keeps the whole value one word, as Snakemake's
``:q`` does. ``{wildcards}`` alone is ``name=value,...``, sorted by name,
as Snakemake writes it.
"""

from __future__ import annotations

import _string
import functools
import os
import re
import shlex
import string
from collections.abc import Mapping
from typing import Any, NamedTuple

from .base import ActionBase, ActionError, JobContext, NamedList, Prepared

_PATH_FIELDS = frozenset({"input", "output", "log"})  # their values are file paths
_WORD_FIELDS = frozenset({"params", "config"})  # their strings are split into shell words
_SPLITS = re.compile(r"[\s'\"\\]")  # what can make a string more or less than one word


def _flatten(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        if all(type(v) is str for v in value):  # (the common case: a list of paths)
            return list(value)
        out: list[str] = []
        for v in value:
            out.extend(_flatten(v))
        return out
    return [str(value)]


class _Words:
    """A params or config value met by ``vformat`` (a template with nested
    fields): its strings are split into words when formatted."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class _CommandFormatter(string.Formatter):
    def __init__(self, quote: bool):
        super().__init__()
        self.quote = quote

    def format_field(self, value: Any, format_spec: str, words: bool = False) -> str:
        """The text of one field; with ``words`` (a params or config field),
        each string is split into shell words before quoting, unless ``:q``."""
        if isinstance(value, _Words):
            value, words = value.value, True
        raw = format_spec == "raw"
        if format_spec == "q":
            words = False
        if format_spec in ("raw", "q"):
            format_spec = ""
        if format_spec and not isinstance(value, (list, tuple)):
            if re.search(r"\d{5,}", format_spec):
                raise ActionError(f"the format {format_spec!r} asks for a width of 10000 or more")
            value = format(value, format_spec)
        parts = _flatten(value)
        if self.quote and not raw:
            if words:
                parts = [w for p in parts for w in shell_words(p)]
            parts = [shlex.quote(p) for p in parts]
        return " ".join(parts)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if isinstance(value, _Words):
            return _Words(super().convert_field(value.value, conversion))
        return super().convert_field(value, conversion)

    def get_value(self, key, args, kwargs):
        if isinstance(key, int):
            raise ActionError(f"positional placeholder {{{key}}}; name a value, e.g. {{input[{key}]}}")
        if key not in kwargs:
            known = ", ".join(sorted(kwargs))
            raise ActionError(f"unknown placeholder {{{key}}} (known: {known}); "
                              "write literal braces as {{ and }}")
        return kwargs[key]

    def get_field(self, field_name, args, kwargs):
        try:
            value, used = super().get_field(field_name, args, kwargs)
            root = _field_path(field_name)[0]
            if self.quote and root in _PATH_FIELDS:
                value = _dashless(value)
            elif self.quote and root in _WORD_FIELDS:
                value = _Words(value)
            return _whole_wildcards(field_name, value), used
        except ActionError:
            raise
        except (AttributeError, KeyError, IndexError, TypeError) as e:
            raise ActionError(f"cannot resolve {{{field_name}}}: {_clean(e)}") from None


def shell_words(text: str) -> list[str]:
    """``text`` split as the shell splits words (quotes and backslashes
    honoured, nothing expanded); one word if the shell could not split it
    (an unbalanced quote)."""
    if not _SPLITS.search(text):  # (the common case: one plain word)
        return [text] if text else []
    try:
        return shlex.split(text)  # (a # is text here, never a comment)
    except ValueError:
        return [text]


def _whole_wildcards(field: str, value: Any) -> Any:
    """``{wildcards}`` alone: ``name=value,...`` sorted by name, as Snakemake writes it."""
    if field != "wildcards" or not hasattr(value, "items"):
        return value
    return ",".join(f"{name}={v}" for name, v in sorted(value.items()))


def _clean(e: Exception) -> str:
    text = str(e)
    return text.strip("'\"") if isinstance(e, KeyError) else text


def format_command(template: str, namespace: Mapping[str, Any], quote: bool = True) -> str:
    """Format ``template`` with ``{input}``-style fields; quote values if ``quote``."""
    formatter = _CommandFormatter(quote)
    pieces = _pieces(template)
    try:
        if pieces is None:  # nested fields, positional ones or a syntax error: let string.Formatter say
            return formatter.vformat(template, (), dict(namespace))
        out = []
        for literal, field, spec, conversion, is_path, words in pieces:
            out.append(literal)
            if field is None:
                continue
            value = _whole_wildcards(field, _resolve(field, namespace, formatter))
            if conversion:
                value = formatter.convert_field(_dashless(value) if is_path and quote else value, conversion)
            text = formatter.format_field(value, spec, words)
            if is_path and quote and "-" in text and _dashed_word(text):  # (rare: format it again)
                text = formatter.format_field(_dashless(value), spec)
            out.append(text)
        return "".join(out)
    except ActionError:
        raise
    except ValueError as e:  # a single '{' or '}', a bad format spec
        raise ActionError(f"{e} (write literal braces as {{{{ and }}}})") from None


def _resolve(field: str, namespace: Mapping[str, Any], formatter: _CommandFormatter) -> Any:
    """The value of ``{field}``, as ``string.Formatter.get_field`` finds it."""
    first, rest = _field_path(field)
    if first not in namespace:
        return formatter.get_value(first, (), namespace)  # (says which names there are)
    value = namespace[first]
    try:
        for is_attr, key in rest:
            value = getattr(value, key) if is_attr else value[key]
    except ActionError:
        raise
    except (AttributeError, KeyError, IndexError, TypeError) as e:
        raise ActionError(f"cannot resolve {{{field}}}: {_clean(e)}") from None
    return value


@functools.lru_cache(maxsize=4096)
def _field_path(field: str) -> tuple[str, tuple[tuple[bool, Any], ...]]:
    first, rest = _string.formatter_field_name_split(field)
    return first, tuple(rest)


def _dashed_word(text: str) -> bool:
    """Whether a word of formatted paths may start with ``-`` (quoted, it
    starts with ``'-``). Checking the text is faster than checking each path."""
    return text.startswith(("-", "'-")) or " -" in text or " '-" in text


def _dashless(value: Any) -> Any:
    """``value`` with ``./`` before each path in it that starts with ``-``:
    the same file, which no program can take for an option."""
    if isinstance(value, (list, tuple)):
        items = [_dashless(v) for v in value]
        return NamedList(items, value._names) if isinstance(value, NamedList) else items
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    return "./" + text if isinstance(text, str) and text.startswith("-") else value


@functools.lru_cache(maxsize=1024)
def _pieces(template: str) -> tuple[tuple[str, str | None, str, str | None, bool, bool], ...] | None:
    """The template parsed once (a rule formats it for every job): literal
    text and named fields, each marked if it is a path and if its strings
    are split into words, or None when ``vformat`` must handle it."""
    try:
        parsed = tuple(string.Formatter().parse(template))
    except ValueError:
        return None
    for _, field, spec, _ in parsed:
        if field is not None and (field == "" or field[0].isdigit() or "{" in spec):
            return None
    return tuple((literal, field, spec, conversion, field is not None and _first_name(field) in _PATH_FIELDS,
                  field is not None and _first_name(field) in _WORD_FIELDS)
                 for literal, field, spec, conversion in parsed)


def _first_name(field: str) -> str:
    """``input`` for ``input``, ``input[0]`` or ``input.ref``."""
    return re.match(r"[^.\[]*", field).group()


class ShellAction(ActionBase):
    """A ``shell:`` command, run by bash as a subprocess of flow, never in a worker."""

    kind = "shell"
    in_worker = False
    what = "command"
    takes = "command (a string)"

    def __init__(self, template: str):
        self.template = template

    def prepare(self, ctx: JobContext) -> Prepared:
        namespace = ctx.format_namespace()
        command = format_command(self.template, namespace)
        signature = command
        if "threads" in self.template or "resources" in self.template:
            # threads and resources are not in the key (FLOWFILE.md): -j 1 and
            # -j 8 run the same job.
            signature = format_command(self.template, {**namespace, "threads": _Unkeyed("threads"),
                                                       "resources": _Unkeyed("resources")})
        return self.prepared(signature, command, command)


class _Unkeyed:
    """Stands for a value left out of the job's key: formats as its own placeholder."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attr: str) -> _Unkeyed:
        return _Unkeyed(f"{self.name}.{attr}")

    def __getitem__(self, key) -> _Unkeyed:
        return _Unkeyed(f"{self.name}[{key}]")

    def __str__(self) -> str:
        return "{" + self.name + "}"

    def __format__(self, spec: str) -> str:
        return str(self)


def bash_argv(command: str) -> list[str]:
    """How a shell job runs: strict bash, as Snakemake does."""
    return ["bash", "-euo", "pipefail", "-c", command]


# A word bash passes on unchanged but for its quotes: letters, digits and
# _ . / : , + @ % = -, and single-quoted strings (how flow quotes a value).
_PLAIN_WORD = re.compile(r"(?:[A-Za-z0-9_./:,+@%=-]+|'[^']*')+")
_BLANKS = re.compile(r"[ \t]+")
# Builtins and keywords (`compgen -b -k`): bash gives these words a meaning of its own.
_BASH_WORDS = frozenset("""
    . : [ [[ ]] ! { } alias bg bind break builtin caller case cd command compgen complete compopt continue
    coproc declare dirs disown do done echo elif else enable esac eval exec exit export false fc fg fi for
    function getopts hash help history if in jobs kill let local logout mapfile popd printf pushd pwd read
    readarray readonly return select set shift shopt source suspend test then time times trap true type
    typeset ulimit umask unalias unset until wait while
""".split())


class Direct(NamedTuple):
    """A command bash would run as one program: its arguments, and the files
    its input and output are redirected from and to (``<``, ``>`` or
    ``>>``, each path), in the order bash opens them."""

    argv: list[str]
    redirects: tuple[tuple[str, str], ...] = ()


def direct_command(command: str) -> Direct | None:
    """The program, arguments and redirections of a command that is one
    program run with plain words (``python3 fit.py 'data/a b.csv' >
    out/model.txt``), which bash would run as they are; None for anything
    else: a pipe, a variable, a glob, a newline, an assignment, a builtin,
    another quote, any other redirection (of another descriptor, a second
    one of the same stream, a here-document). Run directly, such a command
    skips bash's start-up and nothing else (bash runs the last simple
    command of ``-c`` by exec, without a fork, too)."""
    words, redirects = _plain_words(command.strip(" \t\n"))  # (a newline inside is a second command: not plain)
    if not words:
        return None
    first = words[0]
    if "=" in first or first.startswith("%") or first.replace("'", "") in _BASH_WORDS:
        return None
    argv = [_unquoted(w) for w in words]
    if not argv[0] or len({op.startswith(">") for op, _ in redirects}) != len(redirects):
        return None  # (two redirections of one stream: bash would open both)
    return Direct(argv, tuple((op, _unquoted(path)) for op, path in redirects))


def _unquoted(word: str) -> str:
    return word.replace("'", "")  # (no quote inside a quoted part: removing them unquotes)


def _plain_words(text: str) -> tuple[list[str] | None, list[tuple[str, str]]]:
    """``text`` as plain words between blanks, and the redirections among
    them (an operator after a blank, then a plain word); no words if
    anything else is in it."""
    words, redirects, pos = [], [], 0
    while pos < len(text):
        operator = _REDIRECT.match(text, pos) if words else None
        if operator is not None:
            pos = operator.end()
        word = _PLAIN_WORD.match(text, pos)
        if word is None:
            return None, []
        if operator is not None:
            redirects.append((operator.group(1), word.group()))
        else:
            words.append(word.group())
        pos = word.end()
        blank = _BLANKS.match(text, pos)
        if blank is not None:
            pos = blank.end()
        elif pos < len(text):
            return None, []
    return words, redirects


# Input from a file, output to one (truncated or appended to), then blanks:
# not <<, <>, <&, <(, >&, >|, nor one after a word without a blank (2>).
_REDIRECT = re.compile(r"(>>|>|<)(?![<>&(|])[ \t]*")
