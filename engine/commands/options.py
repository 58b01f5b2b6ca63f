"""Turning the command line and a ``--profile`` into ``RunOptions``.

What the words after ``flow`` mean before any command runs, kept apart from
the commands that use them (``cli.py``): the options of a build and which jobs
count, declared once for ``flow run``, ``watch`` and ``status``, and their
values parsed into ``RunOptions`` fields (``--resources``, ``--set-threads``,
``--set-resources``); options that take several words spread out for click
(``--config a=1 b=2``, as in Snakemake); and the option defaults of a profile
(``--profile`` or ``$FLOW_PROFILE``), read and checked against the options
each command has. A value that does not parse is refused here, as click's
``BadParameter`` or a ``UserError``; ``cli.main`` alone decides the exit code.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import click

from ..errors import UserError

if TYPE_CHECKING:
    from .build import RunOptions


# ---------------------------------------------------------------------- a build's options


def selection_flags(fn: Callable) -> Callable:
    """Which jobs count, shared by ``flow run``, ``flow watch`` and ``flow status``."""
    from ..decide.triggers import TRIGGER_ALIASES, TRIGGERS

    for option in reversed([
        click.option("-U", "--until", multiple=True, metavar="RULE...",
                     help="Run only the jobs of RULE (or of the rule making a file) and what they need "
                          "(its words run to the next option: put targets first)."),
        click.option("-O", "--omit-from", multiple=True, metavar="RULE...",
                     help="Leave out the jobs of RULE (or making a file) and every job that needs them; "
                          "run the rest."),
        click.option("--rerun-triggers", multiple=True, metavar="TRIGGER...",
                     type=click.Choice([*TRIGGERS, *TRIGGER_ALIASES]),
                     help="What makes a job run again: content (of inputs), code, params, input (the set of "
                          "inputs); all by default. A missing output, -R/-F, and an input another job made "
                          "again always do. Snakemake's mtime means content; software-env, nothing."),
    ]):
        fn = option(fn)
    return fn


def build_flags(fn: Callable) -> Callable:
    """The options of a build, shared by ``flow run`` and ``flow watch``."""
    for option in reversed([
        click.argument("targets", nargs=-1),
        click.option("-j", "--cores", type=click.IntRange(min=1), default=None,
                     help="Run at most this many threads' worth of jobs at once (default: all CPUs)."),
        click.option("-F", "--forceall", is_flag=True, help="Run every job the targets need."),
        click.option("-R", "--forcerun", multiple=True, metavar="RULE", help="Run every job of RULE (repeatable)."),
        click.option("-k", "--keep-going", is_flag=True,
                     help="After a failure, go on with jobs that do not depend on it."),
        click.option("--resources", "resource_items", multiple=True, metavar="NAME=N",
                     help="Bound the sum of a resource over running jobs (repeatable)."),
        click.option("--set-threads", multiple=True, metavar="RULE=N...",
                     help="Give RULE's jobs N threads, whatever its threads: says."),
        click.option("--set-resources", multiple=True, metavar="RULE:NAME=VALUE...",
                     help="Set a resource of RULE's jobs: a number, or a string the job receives "
                          "(e.g. partition=gpu; never counted against --resources)."),
        click.option("--retries", type=click.IntRange(min=0), default=None, metavar="N",
                     help="Run a failed job up to N more times, for rules without retries:."),
        click.option("--notemp", is_flag=True, help="Keep temp() outputs."),
        click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                     help="Where jobs run: this machine's process pool, or a Dask cluster (needs flow[dask]; "
                          "localrules: still run here)."),
        click.option("--scheduler-address", envvar="DASK_SCHEDULER_ADDRESS", metavar="ADDRESS",
                     help="With --executor dask: the cluster's scheduler, e.g. tcp://host:8786 (default: "
                          "$DASK_SCHEDULER_ADDRESS, else a local cluster started for the run)."),
        click.option("--cache", "cache", metavar="DIR", envvar="FLOW_CACHE", type=click.Path(resolve_path=True),
                     help="Share job results through DIR (a directory, perhaps on a shared file system): a job "
                          "whose key DIR holds has its outputs restored instead of running; one that runs "
                          "stores them there. Also FLOW_CACHE. See `flow cache stats`."),
        click.option("--latency-wait", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
                     help="Wait up to this long for a finished job's outputs to appear, as a shared file "
                          "system may show them late (default: 5 with --executor dask, else 0)."),
        click.option("--no-graph-cache", is_flag=True, envvar="FLOW_NO_GRAPH_CACHE",
                     help="Infer and decide every job again instead of using what .flow/ keeps (the graph, "
                          "the keys, the stamp; the decisions are the same; for comparison). "
                          "Also FLOW_NO_GRAPH_CACHE=1."),
        click.option("-p", "--printshellcmds", is_flag=True, help="Print shell commands."),
        click.option("-q", "--quiet", is_flag=True, help="Print only errors and the summary."),
        click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
                     help="json: one JSON object a line per event on stdout, for other tools (docs/events.md); "
                          "the terminal shows only errors and the summary."),
        click.option("--events", metavar="FILE",
                     help="Append the run's events as JSON lines to FILE (- for stdout); the terminal "
                          "output stays as it is."),
    ]):
        fn = option(fn)
    return fn


def run_options(targets, forcerun, resource_items, config_items, configfiles, until, omit_from, rerun_triggers,
                set_threads, set_resources, **options) -> RunOptions:
    """The click options of a build as ``RunOptions``."""
    from .build import RunOptions

    return RunOptions(targets=tuple(targets), forcerun=tuple(forcerun), resources=_parse_resources(resource_items),
                      config_items=tuple(config_items), configfiles=tuple(configfiles),
                      set_threads=_parse_set_threads(set_threads), set_resources=_parse_set_resources(set_resources),
                      **selection(until, omit_from, rerun_triggers), **options)


def selection(until, omit_from, rerun_triggers) -> dict:
    """``selection_flags`` as ``RunOptions`` fields."""
    from ..decide.triggers import TRIGGERS, parse_triggers

    return {"until": tuple(until), "omit_from": tuple(omit_from),
            "rerun_triggers": parse_triggers(rerun_triggers or TRIGGERS)}


def _parse_resources(items: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value) if "." in value else int(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=NUMBER", param_hint="--resources")
    return out


def _parse_set_threads(items: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for item in items:
        rule, sep, value = item.partition("=")
        if not (sep and rule and value.strip().isdigit()):
            raise click.BadParameter(f"{item!r}: expected RULE=N, N a whole number", param_hint="--set-threads")
        out[rule] = int(value)
    return out


def _parse_set_resources(items: tuple[str, ...]) -> dict[str, dict[str, int | float | str]]:
    out: dict[str, dict[str, int | float | str]] = {}
    for item in items:
        rule, colon, assignment = item.partition(":")
        name, sep, value = assignment.partition("=")
        if not (colon and sep and rule and name):
            raise click.BadParameter(f"{item!r}: expected RULE:NAME=VALUE", param_hint="--set-resources")
        parsed = _resource_value(value)
        if not isinstance(parsed, str) and not 0 <= parsed < math.inf:
            raise click.BadParameter(f"{item!r}: a resource is a number from 0 (not negative, infinite or NaN)",
                                     param_hint="--set-resources")
        out.setdefault(rule, {})[name] = parsed
    return out


def _resource_value(text: str) -> int | float | str:
    """A number if it reads as one, else the text (quotes dropped): a string
    resource, passed to the job (``partition=gpu``)."""
    text = text.strip("'\"")
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text


# ---------------------------------------------------------------------- several words


# Options that take several words, as in Snakemake (argparse's nargs="+"):
# the words after one are more values, up to the next option, while they
# look like its values; each is given to click as an option of its own.
def _assignment(word: str) -> bool:
    return "=" in word  # (so that `--config a=1 result.txt` still has a target)


def _anything(word: str) -> bool:
    return True


def _trigger(word: str) -> bool:
    from ..decide.triggers import TRIGGER_ALIASES, TRIGGERS

    return word in TRIGGERS or word in TRIGGER_ALIASES


_MANY = {"--config": _assignment, "--set-threads": _assignment, "--set-resources": _assignment,
         "--configfile": _anything, "--until": _anything, "-U": _anything, "--omit-from": _anything,
         "-O": _anything, "--rerun-triggers": _trigger}


def spread_values(args: list[str]) -> list[str]:
    """``--config a=1 b=2`` as click's ``--config a=1 --config b=2``, and so
    for each option of ``_MANY``."""
    out: list[str] = []
    taking: str | None = None
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if taking and not arg.startswith("-") and _MANY[taking](arg):
            out += [taking, arg]
            continue
        taking = None
        if arg.startswith("--") and arg.partition("=")[0] in _MANY and "=" in arg:  # --config=a=1: more may follow
            taking = arg.partition("=")[0]
        elif i > 0 and args[i - 1] in _MANY and not arg.startswith("-"):
            taking = args[i - 1]
        out.append(arg)
    return out


# ---------------------------------------------------------------------- profiles


def profile_defaults(args: list[str], commands: Mapping[str, click.Command]) -> dict | None:
    """Click's ``default_map`` from the profile that ``--profile`` or
    ``$FLOW_PROFILE`` names, if any: each of ``commands``' defaults by parameter."""
    name = _profile_name(args)
    if not name:
        return None
    path = _profile_file(name)
    values = _read_profile(path)
    defaults: dict[str, dict] = {}
    for key, value in values.items():
        known = False
        for cmd_name, cmd in commands.items():
            param = _option_named(cmd, key)
            if param is not None:
                known = True
                if value is not None:
                    defaults.setdefault(cmd_name, {})[param.name] = _profile_value(path, key, param, value)
        if not known:
            raise UserError(f"profile {path}: flow has no option --{key}",
                            "A profile's keys are long option names, as `flow run --help` lists them.")
    return defaults


def _profile_name(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--profile" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--profile="):
            return arg.partition("=")[2]
    return os.environ.get("FLOW_PROFILE") or None


def _profile_file(name: str) -> str:
    """The profile's config.yaml: NAME itself if a file, NAME/config.yaml, or,
    for a bare name, ~/.config/flow/NAME/config.yaml (as Snakemake looks in
    ~/.config/snakemake/)."""
    if os.path.isfile(name):
        return name
    candidates = [os.path.join(name, "config.yaml")]
    if os.sep not in name and not os.path.isdir(name):
        home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        candidates.append(os.path.join(home, "flow", name, "config.yaml"))
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise UserError(f"--profile {name}: no profile there (looked for {' and '.join(candidates)})",
                    "A profile is a directory holding a config.yaml of option defaults.")


def _read_profile(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise UserError(f"profile {path}: {e.strerror}") from None
    except Exception as e:  # noqa: BLE001 - YAML's errors
        raise UserError(f"profile {path} is not YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"profile {path} must hold a mapping of option: value, not {type(data).__name__}")
    return {str(k).replace("_", "-"): v for k, v in data.items()}


def _option_named(cmd: click.Command, key: str) -> click.Option | None:
    """``cmd``'s option whose long name is ``--key`` (never --profile or a hidden one)."""
    if key == "profile":
        return None
    for param in cmd.params:
        if isinstance(param, click.Option) and not param.hidden and f"--{key}" in param.opts + param.secondary_opts:
            return param
    return None


def _profile_value(path: str, key: str, param: click.Option, value):
    """A profile's value as the option's default: a list (or, for KEY=VALUE
    options, a mapping, as Snakemake allows) for one that takes many."""
    if param.is_flag:
        if not isinstance(value, bool):
            raise UserError(f"profile {path}: {key}: expected true or false, not {value!r}")
        return value
    if not param.multiple:
        if isinstance(value, (list, dict)):
            raise UserError(f"profile {path}: {key}: expected one value, not {type(value).__name__}")
        if isinstance(param.type, click.Choice) and str(value) not in param.type.choices:
            raise UserError(f"profile {path}: {key}: {value!r} is not one of {', '.join(param.type.choices)}")
        return value
    if isinstance(value, dict):
        if key == "set-resources":
            if not all(isinstance(v, dict) for v in value.values()):
                raise UserError(f"profile {path}: set-resources: expected RULE: {{NAME: VALUE}} entries")
            return [f"{rule}:{name}={_word(v)}" for rule, d in value.items() for name, v in d.items()]
        return [f"{k}={_word(v)}" for k, v in value.items()]
    return [_word(v) for v in value] if isinstance(value, list) else [_word(value)]


def _word(value) -> str:
    """A YAML value as the command-line word that means it."""
    import json

    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
