"""What every ``flow`` command shares: click's settings, the options each
takes (-C, -f, --config, --configfile, --profile), moving into the project,
loading its workflow, and writing a line of flow's own."""

from __future__ import annotations

import os

import click

from ..errors import UserError
from .report import printable

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def common_options(fn):
    """The options every command takes."""
    # main() looks for --debug and --profile anywhere in the arguments; here they are only accepted.
    fn = click.option("--debug", "_debug", is_flag=True, hidden=True)(fn)
    fn = click.option("--profile", "_profile", metavar="DIR",
                      help="Take option defaults from DIR/config.yaml (keys are long option names, as in a "
                           "Snakemake profile; also $FLOW_PROFILE; a name alone is looked for in "
                           "~/.config/flow/).")(fn)
    fn = click.option("--configfile", "configfiles", multiple=True, metavar="FILE...",
                      help="Config files (YAML or JSON) merged over the Flowfile's configfile:, "
                           "in order, before --config.")(fn)
    fn = click.option("--config", "config_items", multiple=True, metavar="KEY=VALUE...",
                      help="Override config values: an int, a float, True/False, or YAML whose "
                           "values are strings, as Snakemake reads them.")(fn)
    fn = click.option("-f", "--flowfile", "-s", "--snakefile", "flowfile", metavar="PATH",
                      help="The Flowfile to use (default: Flowfile, workflow/Flowfile, Snakefile, workflow/Snakefile).")(fn)
    fn = click.option("-C", "--directory", "directory", metavar="DIR",
                      help="Run as if started in DIR.")(fn)
    return fn


def say(text: str, err: bool = False) -> None:
    """Write a line of flow's own, escaped (``printable``): the names and
    values in it come from files and must not act on the terminal."""
    click.echo(printable(text), err=err)


def load_workflow(directory: str | None, flowfile: str | None, config_items: tuple[str, ...],
          configfiles: tuple[str, ...] = ()):
    from ..load.config import parse_config_overrides
    from ..load.loader import find_flowfile, load

    chdir(directory)
    overrides = parse_config_overrides(list(config_items), configfiles)
    return load(find_flowfile(flowfile), overrides)


def chdir(directory: str | None) -> None:
    if directory:
        try:
            os.chdir(directory)
        except OSError as e:
            raise UserError(f"-C {directory}: {e.strerror}") from None


def project_workflow(directory, flowfile, config_items, configfiles, tolerant: bool = False):
    """Move into the project (-C) and load its Flowfile, if it has one, to
    follow its ``workdir:``, where its ``.flow/`` is; None without one (the
    records can still be read). ``tolerant``: a Flowfile that does not load
    is said in a warning, and None returned (reading the records is what a
    broken Flowfile sends people to)."""
    from flow import FlowError

    from ..load.loader import FLOWFILE_NAMES

    chdir(directory)
    if flowfile or any(os.path.isfile(n) for n in FLOWFILE_NAMES):
        try:
            return load_workflow(None, flowfile, config_items, configfiles)
        except FlowError as e:
            if not tolerant:
                raise
            first = e.render().partition("\n")[0]
            say(f"warning: the Flowfile does not load, so .flow/ is read here ({first})", err=True)
    return None
