"""Running: receives the jobs the targets need; hands on their outputs,
recorded. The ``Plan`` knows which jobs are ready, the ``Scheduler`` starts
them in order on an ``Executor`` (a process pool) within ``-j`` and
resources, ``Outputs`` checks and records what a job wrote, the ``RunLock``
keeps a second run out, and observers (``events``) hear what happens."""
