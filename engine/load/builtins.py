"""The built-in functions and names of Flowfile expressions: ``expand``,
``multiext``, ``glob_wildcards``, the flags (``temp``, ``protected``,
``directory``, ``ancient``, ``touch``) and the paths they mark
(``FlaggedPath``), ``zip`` as expand's combinator, ``unpack``, the pure
functions of Python that expressions may call (``_PLAIN_FUNCTIONS``), and
``os``, of which expressions see only ``os.path``'s pure helpers (``PURE_OS``).

``glob_wildcards`` is the only one that looks at the file system; the
evaluator binds it to its Env (``_Globber``) so that the engine sees, and may
hold back, each directory it walks.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import re
from collections import namedtuple
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import xxhash

from .budget import MAX_SIZE
from .env import Env
from .functions import Function, Unpack
from .patterns import PatternError, parse_pattern


class FlaggedPath(str):
    """A path with flags: temp, protected, directory, ancient, touch."""

    flags: frozenset[str] = frozenset()

    def __new__(cls, value: str, flags: frozenset[str]):
        obj = super().__new__(cls, value)
        obj.flags = flags
        return obj

    def __reduce__(self):
        return (FlaggedPath, (str(self), self.flags))


def flag(value: Any, name: str) -> Any:
    if isinstance(value, (list, tuple)):
        return [flag(v, name) for v in value]
    if not isinstance(value, str):
        raise TypeError(f"{name}() takes a path (a string), not {type(value).__name__}")
    old = value.flags if isinstance(value, FlaggedPath) else frozenset()
    return FlaggedPath(str(value), old | {name})


class ZipMarker:
    """``zip`` as the second argument of ``expand``; called, Python's ``zip``."""

    def __call__(self, *iterables: Any) -> list[tuple]:
        return list(zip(*iterables, strict=False))

    def __repr__(self) -> str:
        return "zip"


ZIP = ZipMarker()


def expand(patterns: Any, *combinators: Any, allow_missing: bool = False, **lists: Any) -> list[str]:
    """Snakemake's expand: the product (or zip) of ``lists`` formatted into each pattern."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if combinators and not all(c is ZIP for c in combinators):
        raise TypeError("expand() takes a pattern, optionally `zip`, then name=list arguments")
    out: list[str] = []
    for pattern in patterns:
        flags = sorted(f for f in getattr(pattern, "flags", ()) if not f.startswith("rule:"))
        if flags:  # as Snakemake refuses them: each path made would silently lose them
            raise ValueError(f"{', '.join(flags)}() around the pattern {str(pattern)!r} inside expand() is not "
                             f"allowed: apply it outside, as {flags[0]}(expand(...))")
        # Each pattern takes only the lists of the wildcards it has, as in Snakemake.
        fields = _fields(str(pattern))
        names = [n for n in lists if n in fields]
        values = [_as_list(lists[n]) for n in names]
        if combinators:
            if len({len(v) for v in values}) > 1:
                raise TypeError("expand(..., zip, ...) needs lists of equal length")
            combos = list(zip(*values, strict=True))
        else:
            total = 1
            for v in values:
                total *= len(v)
            if total > MAX_SIZE:
                raise TypeError(f"expand() would make {total} paths")
            combos = list(itertools.product(*values))
        for combo in combos:
            out.append(_format_expand(str(pattern), dict(zip(names, combo, strict=True)), allow_missing))
    return out


def _fields(pattern: str) -> set[str]:
    import string

    try:
        return {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(pattern) if f}
    except ValueError as e:
        raise TypeError(f"cannot format {pattern!r}: {e}") from None


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _format_expand(pattern: str, values: dict[str, Any], allow_missing: bool) -> str:
    try:
        if allow_missing:
            # keep unknown wildcards (and their constraints) as they are
            return re.sub(
                r"\{\{|\}\}|\{([^{}]*)\}",
                lambda m: _keep_or_fill(m, values),
                pattern,
            )
        return pattern.format(**values)
    except KeyError as e:
        raise TypeError(f"no values for wildcard {{{e.args[0]}}} in {pattern!r}") from None
    except (IndexError, ValueError) as e:
        raise TypeError(f"cannot format {pattern!r}: {e}") from None


def _keep_or_fill(m: re.Match, values: dict[str, Any]) -> str:
    if m.group(0) in ("{{", "}}"):
        return m.group(0)[0]
    name = m.group(1).split(",")[0].split(":")[0].strip()
    if name in values:
        return ("{" + m.group(1) + "}").format(**values)
    return m.group(0)


def _as_list(value: Any) -> list:
    """expand()'s values of one wildcard: any collection (a list, a dict's
    keys, a set...) gives its items; a string or number is one value."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def multiext(stem: str, *exts: str) -> list[str]:
    return [stem + e for e in exts]


class Glob(NamedTuple):
    """One walk of glob_wildcards: where, what it matched (the regex) and
    the hash of the paths it found (for the graph cache to compare)."""

    base: str
    regex: re.Pattern
    found: str


def glob_wildcards(pattern: str, files: list[str] | None = None,
                   guard: Callable[[str], None] | None = None,
                   seen: list[Glob] | None = None) -> Any:
    """The values of each wildcard over existing files (and directories) that match."""
    try:
        parsed = parse_pattern(pattern)
    except PatternError as e:
        raise TypeError(str(e)) from None
    regex = parsed.regex({})
    Result = namedtuple("Wildcards", parsed.names, rename=True)  # type: ignore[misc]
    if files is None:
        prefix = parsed.prefix if parsed.names else parsed.text
        base = os.path.dirname(prefix) or "."
        if guard is not None:
            guard(base)
        matched = matches(walk(base), regex)
        if seen is not None:  # (flow watch watches these directories for new matches)
            seen.append(Glob(base, regex, found_hash(matched)))
    else:
        matched = matches(files, regex)
    found: list[list[str]] = [[] for _ in parsed.names]
    for m in matched:
        for i, name in enumerate(parsed.names):
            found[i].append(m.group(name))
    return Result(*found)


def matches(files: list[str], regex: re.Pattern) -> list[re.Match]:
    return [m for m in map(regex.match, files) if m]


def found_hash(matched: list[re.Match]) -> str:
    """The hash of the paths a walk matched, in order."""
    return xxhash.xxh3_128_hexdigest("\0".join(m.string for m in matched).encode("utf-8", "surrogatepass"))


def walk(base: str) -> list[str]:
    """The files and directories under ``base``, sorted, as glob_wildcards
    sees them (links followed, never round a loop; ``.flow/`` left out)."""
    files: list[str] = []
    if not os.path.isdir(base):
        return files
    # The directories above each one walked: a symbolic link back to one of them is a loop.
    above: dict[str, tuple[tuple[int, int], ...]] = {}
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        st = os.stat(dirpath)
        chain = above.pop(dirpath, ())
        if (st.st_dev, st.st_ino) in chain:
            dirnames[:] = []
            continue
        chain += ((st.st_dev, st.st_ino),)
        dirnames[:] = [d for d in dirnames if not (dirpath == "." and d == ".flow")]
        for d in dirnames:
            above[os.path.join(dirpath, d)] = chain
        for f in itertools.chain(filenames, dirnames):
            path = os.path.join(dirpath, f)
            files.append(path[2:] if base == "." and path.startswith("./") else path)
    files.sort()
    return files


class _Globber:
    """``glob_wildcards`` of one Env (its guard and record of what it walked)."""

    __slots__ = ("env",)
    __name__ = "glob_wildcards"

    def __init__(self, env: Env):
        self.env = env

    def __call__(self, *a: Any, **k: Any) -> Any:
        return glob_wildcards(*a, guard=self.env.guard, seen=self.env.globbed, **k)

    def __repr__(self) -> str:
        return "glob_wildcards"


class PureNamespace:
    """A module as a Flowfile expression sees it: ``os`` with only ``os.path``'s
    pure helpers (they read no file), and ``os.sep``."""

    def __init__(self, name: str, members: dict[str, Any]):
        self._name, self._members = name, members

    def flow_attribute(self, name: str) -> Any:
        if name not in self._members:
            raise AttributeError(f"`{self._name}.{name}` is not available in a Flowfile expression")
        return self._members[name]

    def flow_method(self, name: str) -> Callable[..., Any] | None:
        member = self._members.get(name)
        return member if callable(member) else None

    def __repr__(self) -> str:
        return f"<{self._name}>"


PURE_OS = PureNamespace("os", {
    "path": PureNamespace("os.path", {
        "join": posixpath.join, "basename": posixpath.basename, "dirname": posixpath.dirname,
        "splitext": posixpath.splitext, "normpath": posixpath.normpath, "split": posixpath.split,
        "sep": "/",
    }),
    "sep": "/",
})


_FLAGS = ("temp", "protected", "directory", "ancient", "touch")


def _flag_function(name: str) -> Callable[..., Any]:
    def apply(*args: Any, **kwargs: Any) -> Any:
        if len(args) != 1 or kwargs:
            raise TypeError(f"{name}() takes one path or list of paths")
        return flag(args[0], name)

    apply.__name__ = name
    return apply


def _unpack(fn: Any) -> Unpack:
    if not isinstance(fn, Function):
        raise TypeError(f"unpack() takes an input function (a lambda or a def), not {type(fn).__name__}")
    return Unpack(fn)


_PLAIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "range": range, "len": len, "str": str, "int": int, "float": float, "bool": bool,
    "sorted": sorted, "list": list, "min": min, "max": max, "abs": abs, "multiext": multiext,
    "expand": expand, "tuple": tuple, "dict": dict, "set": set, "sum": sum, "any": any, "all": all,
    "enumerate": enumerate, "zip": ZIP, "reversed": reversed, "round": round, "map": map,
    "filter": filter, "repr": repr, "chr": chr, "ord": ord, "unpack": _unpack,
    **{name: _flag_function(name) for name in _FLAGS},
}
_CALLABLE_IDS = frozenset(id(f) for f in _PLAIN_FUNCTIONS.values())
