"""The examples in examples/ run with the real `flow` command, and a second
run has nothing to do."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
from conftest import Project
from flow.rules.mlx import load_shard

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _copy(name: str, tmp_path: Path) -> Project:
    shutil.copytree(EXAMPLES / name, tmp_path / name,
                    ignore=shutil.ignore_patterns(".flow", "work", "results", "clean", "consolidated",
                                                  "tokens", "corpus", "shards"))
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


def test_energy_example_builds_the_summary_from_every_region_and_year(tmp_path):
    p = _copy("energy", tmp_path)
    p.run()
    lines = p.read("results/summary.csv").splitlines()
    assert lines[0].startswith("year,region,energy_gwh,avg_price_eur_mwh,")
    assert [ln.split(",")[:2] for ln in lines[1:]] == [
        [y, r] for y in ("2024", "2025") for r in ("north", "south", "west")]
    hours = duckdb.sql(f"SELECT count(*), count(DISTINCT (ts, region)) FROM '{p.root}/consolidated/all.parquet'")
    assert hours.fetchall()[0] == (2 * 3 * 8760 + 3 * 24, 2 * 3 * 8760 + 3 * 24)  # 2024 is a leap year; no repeats


def test_energy_example_reruns_only_what_a_changed_feed_affects(tmp_path):
    p = _copy("energy", tmp_path)
    p.run()
    feed = p.root / "raw/north/2025-03.csv"
    feed.write_text(feed.read_text().replace("2025-03-01 00:00,", "2025-03-01 00:00,1", 1))
    assert sorted(p.ran()) == ["clean_csv_feed (region=north, year=2025, month=03)", "consolidate_all",
                               "consolidate_year (year=2025)", "summary"]
    assert p.ran() == []


def test_text_example_makes_ring_attention_shards_from_text(tmp_path):
    p = _copy("text", tmp_path)
    p.run()
    meta = json.loads(p.read("shards/meta.json"))
    assert (meta["world_size"], meta["seq_len"], meta["layout"]) == (4, 512, "zigzag")
    paragraphs = sum(len([q for q in (p.root / "docs" / name).read_text().split("\n\n") if q.strip()])
                     for name in os.listdir(p.root / "docs"))
    assert meta["num_documents"] == paragraphs
    shard = load_shard(str(p.root / "shards"), 3)
    assert shard["input_ids"].shape == (meta["num_sequences"], 128)


def test_text_example_reruns_only_the_shards_for_another_layout(tmp_path):
    p = _copy("text", tmp_path)
    p.run()
    assert p.ran("--config", "layout=contiguous") == ["shards"]
