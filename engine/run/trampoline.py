"""The first of a flow job that a Dask worker runs: a function the worker
can read without flow installed, so that a worker without flow answers
why, instead of failing to read the task (which Dask would leave waiting
for ever). Dask pickles a task by reference to its function's module,
unless it cannot: the function is therefore made inside ``entry``, which
cloudpickle sends by value, and the job's arguments travel pickled apart.
"""

from __future__ import annotations

NO_FLOW = "no flow"


def entry():
    """The function to submit, with the pickled arguments of ``remote.run_job``:
    it returns how the job ended, or ``(NO_FLOW, why)``."""

    def run_flow_job(blob: bytes):
        import pickle

        try:
            from flow.engine.run.remote import run_job
        except ImportError as e:
            return "no flow", f"{type(e).__name__}: {e}"
        return run_job(*pickle.loads(blob))

    return run_flow_job
