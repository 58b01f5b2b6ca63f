"""The parse cache, ``.flow/parsed``: the Flowfile and its includes as a run
parsed them, so that the next run of the same text does not parse it again.

Parsing is quick, but it needs the parser, and loading the parser (Lark and
its tables) is a sixth of a run that has nothing to do. An AST is a pure
function of a file's path and text and of the grammar's own code: each is
kept under the file's path and the hash of its bytes, in a file written for
this grammar (``_grammar``, a hash of the grammar package's sources). A file
that does not decode or does not parse is never kept (``flow.grammar``
says what is wrong each time). Only a run that may write in ``.flow/``
saves it; it holds what the last load read, written whole, checksummed
(``engine.cachefile``), and a damaged one is not read.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import xxhash
from flow.grammar import ast

from .. import cachefile

FILE = "parsed"
_NAME = b"flow-parsed\0"
FORMAT = 1  # raise it when what the file holds changes


class ParseCache:
    def __init__(self, directory: str = ".flow", readonly: bool = False):
        self.path = os.path.join(directory, FILE)
        self.readonly = readonly  # a dry run writes nothing in .flow/
        self.kept: dict[tuple[str, str], ast.Module] | None = None
        self.read: dict[tuple[str, str], ast.Module] = {}  # what this load parsed or took

    def parse_file(self, path: str) -> ast.Module:
        """``flow.grammar.parse_file(path)``, from the cache if this text was parsed before."""
        try:
            data = Path(path).read_bytes()
        except OSError:
            return _parse_file(path)  # (it says what is wrong)
        key = (str(Path(path)), xxhash.xxh3_128_hexdigest(data))
        module = self._kept().get(key)
        if module is None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return _parse_file(path)
            from flow.grammar import parse

            module = _as_kept(parse(text, key[0]))
        self.read[key] = module
        return module

    def save(self) -> None:
        """Keep what this load read, if it is not what is kept already. Best
        effort: a cache that cannot be written costs the next run a parse."""
        if self.readonly or not self.read or self.read.keys() == self._kept().keys():
            return
        try:
            payload = pickle.dumps((_grammar(), self.read), protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            return
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)  # (a first run's, made now, not later)
        except OSError:
            return
        cachefile.write(self.path, _NAME, payload)

    def _kept(self) -> dict[tuple[str, str], ast.Module]:
        if self.kept is None:
            self.kept = {}
            payload = cachefile.read(self.path, _NAME)
            if payload is not None:
                try:
                    grammar, kept = pickle.loads(payload)
                except Exception:  # noqa: BLE001 - a class gone since it was written, ...: not used
                    return self.kept
                if grammar == _grammar() and isinstance(kept, dict):
                    self.kept = kept
        return self.kept


def _as_kept(module: ast.Module) -> ast.Module:
    """``module`` as a run that takes it from the cache has it. The
    workflow's definitions are hashed through a pickle of its functions,
    whose bytes tell which equal strings are one object; the parser's AST
    shares fewer than one unpickled, so a run that parsed would hash other
    definitions than the next, and lose the caches keyed by them."""
    try:
        return pickle.loads(pickle.dumps(module, protocol=5))
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return module


def _parse_file(path: str) -> ast.Module:
    from flow.grammar import parse_file

    return parse_file(path)


_GRAMMAR: str | None = None


def _grammar() -> str:
    """The hash of the grammar's sources (its code and its Lark grammar) and
    of the job kinds its directives name: an AST kept by another grammar,
    even an edited one, is not used."""
    global _GRAMMAR
    if _GRAMMAR is None:
        import flow.grammar
        from flow.rules import ACTION_KINDS

        digest = xxhash.xxh3_128(repr((FORMAT, ACTION_KINDS)).encode())
        package = Path(flow.grammar.__file__).parent
        for source in sorted(package.glob("*.py")) + sorted(package.glob("*.lark")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        _GRAMMAR = digest.hexdigest()
    return _GRAMMAR
