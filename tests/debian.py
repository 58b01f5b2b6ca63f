"""Test helper: a program the tests need, found on PATH or installed from
Debian's packages where this machine allows it (root, with apt-get), so that
a fresh machine runs those tests. Where it can be neither found nor
installed, the tests that need it fail, saying what to install: they are
never skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest


class InstallError(Exception):
    """Not there, and not installed: no way to (not root, no apt-get), or the install did not give it."""


def find(names: Sequence[str]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def install(package: str, names: Sequence[str], timeout: float = 600) -> str:
    """The path of one of the programs ``names``, installing ``package`` if none is on PATH."""
    found = find(names)
    if found is not None:
        return found
    if os.name != "posix" or os.geteuid() != 0:
        raise InstallError(f"no {' or '.join(names)} on PATH, and not root to install {package}")
    if shutil.which("apt-get") is None:
        raise InstallError(f"no {' or '.join(names)} on PATH, and no apt-get to install {package} with")
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


def required(package: str, names: Sequence[str], needed_for: str) -> str:
    """The path of one of ``names`` (``install``); else the test fails, saying what to install."""
    try:
        return install(package, names)
    except (InstallError, OSError, subprocess.SubprocessError) as e:
        pytest.fail(f"{needed_for} needs {names[0]}, which is not here: {e}. Install the package {package} "
                    "(Debian: apt-get install " + package + "), or run the tests as root where apt-get can.")
