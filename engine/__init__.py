"""The engine: from a Flowfile to files on disk, in five stages, each a
sub-package that imports only the stages before it (and ``errors``):

    load/      Flowfile AST -> Workflow (rules with patterns, config, globals)
    graph/     Workflow + targets -> DAG of Jobs (rule + wildcard values)
    decide/    Job -> run or not, and why (file hashes, the state store)
    run/       the jobs to run -> run in order in parallel, outputs recorded
    commands/  the command line: ``flow run``, ``watch``, ``clean``, ...

As "Build systems a la carte" puts it, a build system is a scheduler (the
order: ``run/``) times a rebuilder (run or not: ``decide/``). Modules are
imported where they are needed, so that ``flow --version`` stays fast.
"""
