"""Where a job may write: inside the working directory (not through a
symbolic link that leads out of it), never into flow's own state (``.flow/``)
nor over a file the workflow is read from. Checked for every job the graph
makes, before anything runs; ``leads_outside`` is asked again just before a
job runs (an earlier job may have made the link)."""

from __future__ import annotations

import os

from ..errors import UserError
from ..load.evaluate import path_problem
from .job import Job


class Confinement:
    def __init__(self, sources: list[str]):
        self.root = os.path.realpath(os.getcwd())
        self._cwd = os.path.join(os.getcwd(), "")
        self._safe_dirs: set[str] = set()  # directories already known to stay inside
        self._absolute: set[str] = set()  # outputs written as absolute paths, found inside
        self._sources = set(sources)
        self._state_dir = os.path.abspath(".flow")

    def check(self, job: Job) -> None:
        """Refuse a job whose paths no file could have, or that would write
        where it must not."""
        for path in job.inputs + job.outputs:
            problem = path_problem(path)
            if problem:
                raise UserError(f"rule {job.label}: {problem}", pos=job.rule.where("output"))
        for out in job.written:
            self._check_written(job, out)

    def _check_written(self, job: Job, out: str) -> None:
        norm = os.path.normpath(out)
        if os.path.isabs(norm) or norm == ".." or norm.startswith("../") or norm == ".":
            if not os.path.isabs(norm) or not inside(self.root, os.path.realpath(norm)):
                raise UserError(
                    f"rule {job.label} would write {out}, outside the working directory {self.root}",
                    "Outputs, logs and benchmarks must stay inside the working directory.",
                )
            self._absolute.add(norm)
        absolute = norm if os.path.isabs(norm) else self._cwd + norm  # (abspath, without normalizing again)
        in_state = inside(self._state_dir, absolute)
        if in_state or absolute in self._sources:
            what = "in flow's own state (.flow/)" if in_state else "a file the workflow is read from"
            raise UserError(f"rule {job.label} would write {out}, {what}",
                            "Choose another output path.", pos=job.rule.where("output"))
        parent = os.path.dirname(absolute)
        if parent not in self._safe_dirs:
            if self.leads_outside(out):
                raise UserError(
                    f"rule {job.label} would write {out}, which a symbolic link leads outside the working directory",
                    "Outputs must stay inside the working directory.",
                )
            self._safe_dirs.add(parent)

    @property
    def checked(self) -> tuple[list[str], list[str]]:
        """What was found to stay inside: the directories outputs go to, and
        the outputs written as absolute paths."""
        return sorted(self._safe_dirs), sorted(self._absolute)

    def still_inside(self, dirs: list[str], absolute: list[str]) -> bool:
        """Whether what ``checked`` found inside still is (no link made since
        leads out); if so, it counts as checked."""
        if any(not inside(self.root, os.path.realpath(p)) for p in (*dirs, *absolute)):
            return False
        self._safe_dirs.update(dirs)
        self._absolute.update(absolute)
        return True

    def leads_outside(self, path: str) -> bool:
        """Whether writing ``path`` would land outside the working directory
        through a symbolic link."""
        return not inside(self.root, os.path.realpath(os.path.dirname(os.path.abspath(path))))


def inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
