"""flow: a rule engine for data and ML pipelines.

The package is laid out in three layers, imported one way only:
``flow.grammar`` (text -> AST), ``flow.rules`` (what one job does) and
``flow.engine`` (model, DAG, state, scheduler, executors, CLI).
"""

__version__ = "0.1.0"
