"""Resources as Snakemake users write them: time spans and sizes with units."""

from __future__ import annotations

import pytest
from flow.engine.load.resources import ResourceError, megabytes, minutes, normalized


@pytest.mark.parametrize(("text", "expected"), [("90", 90), ("30m", 30), ("1h", 60), ("1h 30m", 90),
                                                ("2d", 2880), ("45s", 0.75), ("1.5h", 90)])
def test_a_text_runtime_is_minutes(text, expected):
    assert minutes(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("100", 100), ("5MB", 5), ("2GB", 2000), ("1G", 1000),
                                                ("512MiB", 537), ("1GiB", 1074), ("500kb", 1)])
def test_a_size_is_megabytes_rounded_up(text, expected):
    assert megabytes(text) == expected


def test_mem_and_disk_with_units_also_give_their_mb_forms():
    assert normalized({"mem": "5MB", "disk": "2GB", "runtime": "1h", "tier": "fast"}) == {
        "mem": "5MB", "disk": "2GB", "runtime": 60, "tier": "fast", "mem_mb": 5, "disk_mb": 2000}


def test_an_mb_form_given_is_kept():
    assert normalized({"mem": "5GB", "mem_mb": 100})["mem_mb"] == 100


@pytest.mark.parametrize("bad", ["soon", "1x", ""])
def test_a_runtime_that_is_no_time_span_is_an_error(bad):
    with pytest.raises(ResourceError, match="is not a time span"):
        normalized({"runtime": bad})


def test_a_mem_that_is_no_size_is_an_error():
    with pytest.raises(ResourceError, match="is not a size"):
        normalized({"mem": "lots"})


def test_a_bad_runtime_in_a_flowfile_names_its_line(project):
    project.flowfile('rule a:\n    output: "a.txt"\n    resources: runtime="soon"\n    shell: "touch {output}"\n')
    r = project.flow("run")
    assert r.returncode == 2 and "Flowfile:3:" in r.stderr and "'soon' is not a time span" in r.stderr


def test_set_resources_mem_replaces_the_rules_mem_mb(project):
    project.flowfile('rule a:\n    output: "a.txt"\n    resources: mem_mb=512\n'
                     '    shell: "echo {resources.mem_mb} > {output}"\n')
    project.run("--set-resources", "a:mem=1GB")
    assert project.read("a.txt") == "1000\n"


def test_a_retry_asking_for_more_than_the_resources_option_allows_fails_saying_so(project):
    project.flowfile('rule a:\n    output: "a.txt"\n    resources: mem_mb=lambda wildcards, attempt: 1000 * attempt\n'
                     '    retries: 2\n    shell: "exit 1"\n')
    r = project.flow("run", "--resources", "mem_mb=1500")
    assert r.returncode != 0
    assert "not retried: rule a needs mem_mb=2000, but --resources allows mem_mb=1500" in r.stderr


def test_set_resources_refuses_nan(project):
    project.flowfile('rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n')
    r = project.flow("run", "--set-resources", "a:mem_mb=nan")
    assert r.returncode == 2 and "not negative, infinite or NaN" in r.stderr
