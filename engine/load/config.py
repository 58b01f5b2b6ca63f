"""The workflow's ``config``: the configfile: files, and the ``--configfile``
files and ``--config KEY=VALUE`` values that override them, read and merged
as Snakemake does."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from flow.grammar import FlowfileError, ast

from ..errors import UserError

MAX_CONFIG_VALUES = 1_000_000


_KEY = re.compile(r"[A-Za-z_][\w-]*\Z")


def parse_config_overrides(items: list[str], configfiles: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The overrides of the Flowfile's configfile:: each ``--configfile``
    merged in order, then each ``--config KEY=VALUE`` (as Snakemake orders them)."""
    out: dict[str, Any] = {}
    for name in configfiles:
        merge(out, read_override_file(name))
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--config {item!r}: expected KEY=VALUE")
        if not _KEY.match(key):
            raise UserError(f"--config {item!r}: a config key starts with a letter or _ and holds only "
                            "letters, digits, _ and -")
        parsed = parse_config_value(value)
        problem = config_problem(parsed)
        if problem:
            raise UserError(f"--config {key}: {problem}")
        merge(out, {key: parsed})
    return out


def parse_config_value(text: str) -> Any:
    """A ``--config`` value as Snakemake reads it, so that a Snakefile's
    config means the same under flow: surrounding quotes dropped; empty is
    None; then an int (``010`` is 10), a float (``1e3``), ``True``/``False``
    (only so spelled), YAML with every scalar a string (``[1,2]`` is
    ``['1', '2']``, ``true`` is ``'true'``), else the text itself."""
    text = text.strip("'\"")
    if text == "":
        return None
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    if text in ("True", "False"):
        return text == "True"
    try:
        value = _yaml().load(text, Loader=_yaml().BaseLoader)
    except Exception:  # noqa: BLE001 - not YAML (e.g. `a: b: c`): the text as it is
        return text
    return text if value is None else value


def read_config_file(name: str, pos: ast.Pos) -> dict:
    """A configfile:'s mapping (YAML, or JSON by its extension); what is
    wrong with it is a ``FlowfileError`` at the configfile: line."""
    try:
        return _read_mapping(name)
    except FileNotFoundError:
        raise FlowfileError.at(pos, f"config file {name} does not exist",
                               f"Create it, or remove the configfile: line (looked in {os.getcwd()}).") from None
    except _Unreadable as e:
        raise FlowfileError.at(pos, str(e)) from None


def read_override_file(name: str) -> dict:
    """A ``--configfile``'s mapping; what is wrong with it is a ``UserError``
    naming the flag and the file."""
    try:
        return _read_mapping(name)
    except FileNotFoundError:
        raise UserError(f"--configfile {name}: no such file (looked in {os.getcwd()})") from None
    except _Unreadable as e:
        raise UserError(f"--configfile {name}: {e}") from None


class _Unreadable(Exception):
    """A config file that exists but holds no usable mapping: why, in words."""


def _read_mapping(name: str) -> dict:
    """The mapping in config file ``name`` (YAML, or JSON by its extension)."""
    try:
        with open(name, encoding="utf-8") as f:
            data = json.load(f) if name.endswith(".json") else _yaml().safe_load(f)
    except FileNotFoundError:
        raise
    except UnicodeDecodeError as e:
        raise _Unreadable(f"config file {name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise _Unreadable(f"cannot read config file {name}: {e.strerror}") from None
    except Exception as e:  # noqa: BLE001 - YAML's and JSON's errors, and their converters' (dates, tags)
        raise _Unreadable(f"cannot read config file {name}: {e}") from None
    if data is None:
        data = {}
    problem = config_problem(data)
    if problem:
        raise _Unreadable(f"config file {name}: {problem}")
    if not isinstance(data, dict):
        raise _Unreadable(f"config file {name} must hold a mapping, not {type(data).__name__}")
    return data


def config_problem(data: Any) -> str | None:
    """Why a config value cannot be used: YAML aliases can make it refer to
    itself, or (a "billion laughs") stand for more values than memory holds."""
    count, stack = 0, [data]
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            return (f"it holds more than {MAX_CONFIG_VALUES:,} values, or refers to itself "
                    "through YAML aliases (&name / *name)")
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            stack.extend(value)
    return None


def merge(base: dict, new: dict) -> None:
    """Update nested dicts in place (Snakemake merges config files this way)."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v


def _yaml():
    """PyYAML, imported only for a workflow with a config (it costs start-up time)."""
    import yaml

    return yaml
