"""The examples in examples/ run with the real `flow` command, and a second
run has nothing to do."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import Project

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _copy(name: str, tmp_path: Path) -> Project:
    shutil.copytree(EXAMPLES / name, tmp_path / name,
                    ignore=shutil.ignore_patterns(".flow", "work", "results"))
    return Project(tmp_path / name)


def test_sales_example_builds_the_summary(tmp_path):
    p = _copy("sales", tmp_path)
    p.run()
    lines = p.read("results/summary.tsv").splitlines()
    assert lines[0] == "year\tregion\ttotal\tcurrency"
    assert len(lines) == 1 + 3 * 4  # three years, four regions
    years = {ln.split("\t")[0] for ln in lines[1:]}
    assert years == {"2022", "2023", "2024"}


def test_sales_example_second_run_does_nothing(tmp_path):
    p = _copy("sales", tmp_path)
    p.run()
    assert p.ran() == []


def test_sales_example_config_override_limits_the_years(tmp_path):
    p = _copy("sales", tmp_path)
    p.run("--config", "years=[2023]")
    lines = p.read("results/summary.tsv").splitlines()[1:]
    assert {ln.split("\t")[0] for ln in lines} == {"2023"}
