"""The workflow's ``config``: ``--config KEY=VALUE`` overrides and the
configfile: files they override, read and merged as Snakemake does."""

from __future__ import annotations

import json
import os
from typing import Any

from flow.grammar import FlowfileError, ast

from ..errors import UserError

MAX_CONFIG_VALUES = 1_000_000


def parse_config_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items, each value read as YAML (``n=3`` is a number)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--config {item!r}: expected KEY=VALUE")
        try:
            out[key] = _yaml().safe_load(value) if value else ""
        except Exception:  # noqa: BLE001 - not YAML (e.g. 2024-13-45): the text as it is
            out[key] = value
        problem = config_problem(out[key])
        if problem:
            raise UserError(f"--config {key}: {problem}")
    return out


def read_config_file(name: str, pos: ast.Pos) -> dict:
    """A configfile:'s mapping (YAML, or JSON by its extension); what is
    wrong with it is a ``FlowfileError`` at the configfile: line."""
    try:
        with open(name, encoding="utf-8") as f:
            data = json.load(f) if name.endswith(".json") else _yaml().safe_load(f)
    except FileNotFoundError:
        raise FlowfileError.at(pos, f"config file {name} does not exist",
                               f"Create it, or remove the configfile: line (looked in {os.getcwd()}).") from None
    except UnicodeDecodeError as e:
        raise FlowfileError.at(pos, f"config file {name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise FlowfileError.at(pos, f"cannot read config file {name}: {e.strerror}") from None
    except Exception as e:  # noqa: BLE001 - YAML's and JSON's errors, and their converters' (dates, tags)
        raise FlowfileError.at(pos, f"cannot read config file {name}: {e}") from None
    if data is None:
        data = {}
    problem = config_problem(data)
    if problem:
        raise FlowfileError.at(pos, f"config file {name}: {problem}")
    if not isinstance(data, dict):
        raise FlowfileError.at(pos, f"config file {name} must hold a mapping, not {type(data).__name__}")
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
