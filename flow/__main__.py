"""``python -m flow``: the same as the ``flow`` command."""

from flow.engine.commands.cli import entry

entry()
