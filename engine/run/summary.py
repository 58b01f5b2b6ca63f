"""What a run came to: the scheduler's answer, and what every observer and
command reports from (a module of its own: a run a stamp proves reports
one without loading the scheduler)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..decide.rebuild import Reason
    from ..graph.job import Job


@dataclass
class Summary:
    ran: int = 0
    cached: int = 0  # restored from a shared cache instead of run
    up_to_date: int = 0
    failed: list[str] = field(default_factory=list)
    blocked: int = 0
    user_errors: int = 0  # failures that are mistakes in the Flowfile (exit 2)
    would_run: list[tuple[Job, Reason]] = field(default_factory=list)
    undetermined: list[Job] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: int | None = None  # the signal that stopped the run
