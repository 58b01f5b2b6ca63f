"""The job graph: receives a ``Workflow`` and the targets; hands on a ``DAG``
of ``Job``s (a rule and its wildcard values, with its files formatted),
inferred backwards from the targets' file names; and draws it (DOT, Mermaid)."""
