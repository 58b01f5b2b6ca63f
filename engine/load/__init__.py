"""Loading: receives a Flowfile's AST (``flow.grammar``) with its includes
and config files; hands on a ``Workflow``: its rules, their output patterns
(and the index that finds the rule for a file name), config and globals.
Everything that can be checked without looking at files is checked here.

``loader`` walks the Flowfile; ``evaluate`` turns directive values into
paths and params (with ``expressions``, the evaluator, and ``patterns``);
``config`` reads config files; ``model`` is what they build.
"""
