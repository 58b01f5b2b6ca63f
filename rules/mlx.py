"""``mlx:`` actions: built-in MLX transforms configured by ``params:``.

Known transforms are listed in ``TRANSFORMS``; a Flowfile naming another is
refused when it is loaded, before anything runs.
"""

from __future__ import annotations

from .base import ActionError, JobContext, Prepared

TRANSFORMS: dict[str, object] = {}


class MLXAction:
    kind = "mlx"

    def __init__(self, name: str):
        if name not in TRANSFORMS:
            known = ", ".join(sorted(TRANSFORMS)) or "none in this version of flow"
            raise ActionError(f"unknown mlx: transform {name!r} (known: {known})")
        self.name = name

    def prepare(self, ctx: JobContext) -> Prepared:
        return Prepared("mlx", "mlx " + self.name, self.name, f"mlx {self.name}")


def execute(name: str, ctx: JobContext) -> None:
    TRANSFORMS[name](ctx)  # type: ignore[operator]
