"""Test helper: a program the tests need, found on PATH or installed from
Debian's packages where this machine allows it (root, with apt-get), so that
a fresh machine runs those tests instead of skipping them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence


class InstallError(Exception):
    """The install was tried and did not give the program."""


class CannotInstall(InstallError):
    """Not there, and no way to install it on this machine (not root, no apt-get)."""


def find(names: Sequence[str]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def install(package: str, names: Sequence[str], timeout: float = 600) -> str:
    """The path of one of the programs ``names``, installing ``package`` if none is on PATH."""
    found = find(names)
    if found is not None:
        return found
    if os.name != "posix" or os.geteuid() != 0:
        raise CannotInstall(f"no {' or '.join(names)} on PATH, and not root to install {package}")
    if shutil.which("apt-get") is None:
        raise CannotInstall(f"no {' or '.join(names)} on PATH, and no apt-get to install {package} with")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    tried = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if tried.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, timeout=timeout, env=env)
        tried = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    found = find(names)
    if found is None:
        tail = (tried.stderr or tried.stdout).strip().splitlines()[-3:]
        raise InstallError(f"`apt-get install {package}` did not give {names[0]}: {' / '.join(tail)}")
    return found
