"""The commands: receive the command line; hand on the exit status. ``cli``
parses it (click), ``build`` puts the stages together for one run,
``report`` writes what the user reads, ``watch`` builds again on every save,
``clean`` removes what flow made."""
