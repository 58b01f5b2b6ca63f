"""Snakemake's everyday command-line flags under flow: --until, --omit-from,
--set-threads, --set-resources, --configfile, --config values, --retries,
--profile, --list-target-rules, --rerun-triggers, and `flow status`'s exit
code. Each runs the real `flow` on a Flowfile in a temporary directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import FLOW
from flow.engine.decide.triggers import parse_triggers
from flow.engine.load.config import parse_config_overrides, parse_config_value

SNAKEMAKE = Path(__file__).resolve().parents[1] / ".venv-snakemake" / "bin" / "snakemake"

# a -> b -> c, and d beside them; all gathers c, d and w/{s}.out (w1 -> w2, from a).
CHAIN = """\
rule all:
    input: "c.txt", "d.txt", expand("w/{s}.out", s=["x", "y"])
rule a:
    output: "a.txt"
    shell: "echo a > {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} > {output}"
rule c:
    input: "b.txt"
    output: "c.txt"
    shell: "cat {input} > {output}"
rule d:
    output: "d.txt"
    shell: "echo d > {output}"
rule e:
    output: "e.txt"
    shell: "echo e > {output}"
rule w1:
    input: "a.txt"
    output: "w/{s}.mid"
    shell: "cat {input} > {output}"
rule w2:
    input: "w/{s}.mid"
    output: "w/{s}.out"
    shell: "cat {input} > {output}"
"""


def _user_error(result) -> str:
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr


# --config values, as Snakemake reads them ----------------------------------------


def test_config_value_with_a_leading_zero_is_a_decimal_int():
    assert parse_config_value("010") == 10


def test_config_value_in_exponent_form_is_a_float():
    assert parse_config_value("1e3") == 1000.0


def test_config_value_true_capitalized_is_a_boolean():
    assert parse_config_value("True") is True and parse_config_value("False") is False


def test_config_value_true_in_lower_case_stays_a_string():
    assert parse_config_value("true") == "true"
    assert parse_config_value("yes") == "yes"


def test_config_list_value_holds_strings():
    assert parse_config_value("[1,2]") == ["1", "2"]


def test_config_mapping_value_holds_strings():
    assert parse_config_value("{a: 1}") == {"a": "1"}


def test_config_value_empty_is_none():
    assert parse_config_value("") is None


def test_config_value_in_quotes_loses_them():
    assert parse_config_value("'a b'") == "a b"


def test_config_value_yaml_cannot_read_is_the_text():
    assert parse_config_value("a: b: c") == "a: b: c"


def test_config_overrides_of_one_key_merge():
    assert parse_config_overrides(["d={a: 1}", "d={b: 2}"]) == {"d": {"a": "1", "b": "2"}}


def test_config_key_that_is_not_a_name_is_an_error(project):
    project.flowfile(CHAIN)
    err = _user_error(project.flow("run", "-n", "--config", "a.b=1"))
    assert "--config 'a.b=1'" in err


CONFIG_DUMP = """\
rule all:
    output: "out.txt"
    run:
        with open(output[0], "w") as f:
            for k, v in sorted(config.items()):
                f.write(f"{k}={v!r} {type(v).__name__}\\n")
"""
CONFIG_VALUES = ["nn=010", "xx=1e3", "flag=true", "FF=True", "lst=[1,2]", "ss=yes", "dd={a: 1}", "ee=",
                 "qq='a b'", "nul=null", "bad=a: b: c", "hex=0x10", "nested={a: [1, {b: 2}]}"]


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="Snakemake is not installed beside flow")
def test_config_values_reach_a_run_block_as_under_snakemake(tmp_path):
    for tool in ("snakemake", "flow"):
        (tmp_path / tool).mkdir()
        (tmp_path / tool / "Snakefile").write_text(CONFIG_DUMP)
    subprocess.run([str(SNAKEMAKE), "-c1", "-q", "--config", *CONFIG_VALUES], cwd=tmp_path / "snakemake",
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*FLOW, "run", "-q", "--config", *CONFIG_VALUES], cwd=tmp_path / "flow",
                   check=True, capture_output=True, timeout=120)
    assert (tmp_path / "flow/out.txt").read_bytes() == (tmp_path / "snakemake/out.txt").read_bytes()


# --configfile ---------------------------------------------------------------------


CONFIG_ECHO = """\
configfile: "config.yaml"
rule all:
    output: "out.txt"
    params: a=config["a"], b=config["b"], c=config["c"]
    shell: "echo {params.a} {params.b} {params.c} > {output}"
"""


def test_configfile_overrides_the_flowfile_configfile_and_config_overrides_it(project):
    project.flowfile(CONFIG_ECHO)
    project.write("config.yaml", "a: base\nb: base\nc: base\n")
    project.write("more.yaml", "b: more\nc: more\n")
    project.run("--configfile", "more.yaml", "--config", "c=cli")
    assert project.read("out.txt") == "base more cli\n"


def test_configfiles_merge_in_the_order_given(project):
    project.flowfile(CONFIG_ECHO)
    project.write("config.yaml", "a: base\nb: base\nc: base\n")
    project.write("one.yaml", "b: one\nc: one\n")
    project.write("two.json", '{"c": "two"}')
    project.run("--configfile", "one.yaml", "two.json")
    assert project.read("out.txt") == "base one two\n"


def test_configfile_that_does_not_exist_is_an_error_naming_it(project):
    project.flowfile(CONFIG_ECHO)
    project.write("config.yaml", "a: 1\nb: 1\nc: 1\n")
    err = _user_error(project.flow("run", "--configfile", "nope.yaml"))
    assert "--configfile nope.yaml" in err


# --until and --omit-from ---------------------------------------------------------------


def test_until_runs_the_rule_and_what_it_needs_only(project):
    project.flowfile(CHAIN)
    assert project.would_run("--until", "b") == ["a", "b"]


def test_until_a_rule_with_wildcards_runs_its_jobs_among_the_targets(project):
    project.flowfile(CHAIN)
    assert sorted(project.would_run("--until", "w1")) == ["a", "w1 (s=x)", "w1 (s=y)"]


def test_until_a_rule_without_wildcards_outside_the_targets_runs_it(project):
    project.flowfile(CHAIN)
    assert project.would_run("--until", "e") == ["e"]


def test_until_a_file_runs_the_job_making_it_and_what_it_needs(project):
    project.flowfile(CHAIN)
    assert project.would_run("--until", "w/x.mid") == ["a", "w1 (s=x)"]


def test_until_takes_several_rules(project):
    project.flowfile(CHAIN)
    assert sorted(project.would_run("--until", "c", "d")) == ["a", "b", "c", "d"]


def test_until_makes_only_those_files(project):
    project.flowfile(CHAIN)
    project.run("--until", "b")
    assert project.exists("b.txt") and not project.exists("c.txt") and not project.exists("d.txt")


def test_omit_from_leaves_out_the_rule_and_what_needs_it(project):
    project.flowfile(CHAIN)
    assert sorted(project.would_run("--omit-from", "b")) == [
        "a", "d", "w1 (s=x)", "w1 (s=y)", "w2 (s=x)", "w2 (s=y)"]


def test_omit_from_a_file_leaves_out_the_job_making_it(project):
    project.flowfile(CHAIN)
    assert sorted(project.would_run("--omit-from", "w/x.mid")) == ["a", "b", "c", "d", "w1 (s=y)", "w2 (s=y)"]


def test_omit_from_the_first_rule_runs_only_what_does_not_need_it(project):
    project.flowfile(CHAIN)
    project.run("--omit-from", "a")
    assert project.exists("d.txt") and not project.exists("a.txt") and not project.exists("c.txt")


def test_omit_from_applies_to_status(project):
    project.flowfile(CHAIN)
    r = project.flow("status", "--omit-from", "a")
    assert r.returncode == 1, r.output
    assert "  d:" in r.stdout and "  b:" not in r.stdout


def test_until_with_an_unknown_rule_names_the_flag_and_the_rules(project):
    project.flowfile(CHAIN)
    err = _user_error(project.flow("run", "--until", "zz"))
    assert "--until zz" in err and "a, all, b, c, d, e, w1, w2" in err


def test_omit_from_with_an_unknown_rule_is_an_error(project):
    project.flowfile(CHAIN)
    assert "--omit-from zz" in _user_error(project.flow("run", "-n", "--omit-from", "zz"))


def test_until_words_before_the_next_option_are_all_its_rules(project):
    project.flowfile(CHAIN)
    assert sorted(project.would_run("--until", "b", "d", "-j", "1")) == ["a", "b", "d"]


# --set-threads, --set-resources, --retries -----------------------------------------------


RESOURCES = """\
rule r:
    output: "r.txt"
    threads: 1
    resources: mem_mb=100
    shell: "echo {threads} {resources.mem_mb} > {output}"
"""


def test_set_threads_overrides_the_rule_threads(project):
    project.flowfile(RESOURCES)
    project.run("-j", "4", "--set-threads", "r=3")
    assert project.read("r.txt") == "3 100\n"


def test_set_threads_with_an_unknown_rule_is_an_error_naming_the_rules(project):
    project.flowfile(RESOURCES)
    err = _user_error(project.flow("run", "--set-threads", "zz=3"))
    assert "--set-threads zz" in err and "The rules are: r." in err


def test_set_threads_that_is_not_a_number_is_an_error(project):
    project.flowfile(RESOURCES)
    assert "--set-threads" in _user_error(project.flow("run", "--set-threads", "r=x"))


def test_set_resources_overrides_a_number(project):
    project.flowfile(RESOURCES)
    project.run("--set-resources", "r:mem_mb=250")
    assert project.read("r.txt") == "1 250\n"


def test_set_resources_passes_a_string_to_the_job(project):
    project.flowfile(RESOURCES.replace("{resources.mem_mb}", "{resources.partition}"))
    project.run("--set-resources", "r:partition=gpu")
    assert project.read("r.txt") == "1 gpu\n"


def test_string_resource_is_not_counted_against_resources(project):
    project.flowfile(RESOURCES.replace("{resources.mem_mb}", "{resources.partition}"))
    project.run("--resources", "mem_mb=200", "--set-resources", "r:partition=gpu")
    assert project.read("r.txt") == "1 gpu\n"


def test_string_resource_that_resources_bounds_is_an_error(project):
    project.flowfile(RESOURCES)
    err = _user_error(project.flow("run", "--resources", "mem_mb=200", "--set-resources", "r:mem_mb=big"))
    assert "--set-resources r:mem_mb=big" in err


def test_set_resources_with_an_unknown_rule_is_an_error(project):
    project.flowfile(RESOURCES)
    assert "--set-resources zz" in _user_error(project.flow("run", "--set-resources", "zz:mem_mb=1"))


FLAKY = """\
rule flaky:
    output: "out.txt"
    shell: "if [ -e tried ]; then echo ok > {output}; else touch tried; exit 1; fi"
"""


def test_retries_reruns_a_failed_job_of_a_rule_without_retries(project):
    project.flowfile(FLAKY)
    project.run("--retries", "1")
    assert project.read("out.txt") == "ok\n"


def test_retries_leaves_a_rule_that_says_retries_alone(project):
    project.flowfile(FLAKY.replace("    shell:", "    retries: 0\n    shell:"))
    r = project.flow("run", "--retries", "1")
    assert r.returncode == 1, r.output
    assert not project.exists("out.txt")


# --profile -------------------------------------------------------------------------------


def test_profile_gives_option_defaults(project):
    project.flowfile(CONFIG_ECHO)
    project.write("config.yaml", "a: base\nb: base\nc: base\n")
    project.write("prof/config.yaml", "config: [a=prof]\nquiet: true\nset-threads: {all: 2}\n")
    r = project.run("--profile", "prof")
    assert project.read("out.txt") == "prof base base\n"
    assert "done" not in r.stderr  # quiet


def test_profile_config_as_a_mapping(project):
    project.flowfile(CONFIG_ECHO)
    project.write("config.yaml", "a: base\nb: base\nc: base\n")
    project.write("prof/config.yaml", "config:\n  b: mapped\n")
    project.run("--profile", "prof")
    assert project.read("out.txt") == "base mapped base\n"


def test_command_line_overrides_the_profile(project):
    project.flowfile(CONFIG_ECHO)
    project.write("config.yaml", "a: base\nb: base\nc: base\n")
    project.write("prof/config.yaml", "config: [a=prof]\n")
    project.run("--profile", "prof", "--config", "a=cli")
    assert project.read("out.txt") == "cli base base\n"


def test_flow_profile_environment_variable_names_the_profile(project):
    project.flowfile(CHAIN)
    project.write("prof/config.yaml", "until: [b]\n")
    r = project.flow("run", "-n", env={"FLOW_PROFILE": str(project.root / "prof")})
    assert r.returncode == 0, r.output
    assert [ln.split(":")[0] for ln in r.stdout.splitlines() if ln.startswith("would run")] == [
        "would run  a", "would run  b"]


def test_profile_key_flow_does_not_know_is_an_error_naming_file_and_key(project):
    project.flowfile(CHAIN)
    project.write("prof/config.yaml", "cores: 2\nslurm-account: lab\n")
    err = _user_error(project.flow("run", "-n", "--profile", "prof"))
    assert "prof/config.yaml" in err and "--slurm-account" in err


def test_profile_value_outside_an_options_choices_is_an_error_naming_file_and_choices(project):
    project.flowfile(CHAIN)
    project.write("prof/config.yaml", "executor: slurm\n")
    err = _user_error(project.flow("run", "-n", "--profile", "prof"))
    assert "prof/config.yaml" in err and "'slurm'" in err and "local, dask" in err


def test_profile_that_does_not_exist_is_an_error(project):
    project.flowfile(CHAIN)
    assert "--profile nowhere" in _user_error(project.flow("run", "--profile", "nowhere"))


# --list-target-rules ---------------------------------------------------------------------


def test_list_target_rules_lists_the_rules_without_wildcards_sorted(project):
    project.flowfile(CHAIN)
    r = project.run("--list-target-rules")
    assert r.stdout.split() == ["a", "all", "b", "c", "d", "e"]


# --rerun-triggers -----------------------------------------------------------------------


TRIGGERED = """\
rule all:
    input: "up.txt", "down.txt"
rule up:
    input: "src.txt"
    output: "up.txt"
    params: p=config.get("p", 1)  # (not in the command, whose text is its code)
    shell: "cat {input} > {output}"
rule down:
    input: "up.txt"
    output: "down.txt"
    shell: "cat {input} > {output}"
"""
CODE_CHANGED = TRIGGERED.replace('> {output}"\nrule down', '> {output}; echo >> {output}"\nrule down')


def _built(project, flowfile: str = TRIGGERED):
    project.flowfile(flowfile)
    project.write("src.txt", "s\n")
    project.run()
    return project


def test_code_change_is_ignored_without_the_code_trigger(project):
    _built(project).flowfile(CODE_CHANGED)
    assert project.would_run("--rerun-triggers", "content", "params", "input") == []


def test_code_change_reruns_by_default(project):
    _built(project).flowfile(CODE_CHANGED)
    assert project.would_run() == ["up", "down"]


def test_params_change_is_ignored_without_the_params_trigger(project):
    _built(project)
    assert project.would_run("--config", "p=2", "--rerun-triggers", "code", "content") == []


def test_source_content_change_is_ignored_without_the_content_trigger(project):
    _built(project).write("src.txt", "changed\n")
    assert project.ran("--rerun-triggers", "code", "params", "input") == []


def test_snakemake_mtime_trigger_means_content(project):
    _built(project).write("src.txt", "changed\n")
    assert project.ran("--rerun-triggers", "mtime") == ["up", "down"]


def test_input_remade_by_another_job_counts_whatever_the_triggers(project):
    _built(project).write("src.txt", "changed\n")
    assert project.ran("-R", "up", "--rerun-triggers", "code") == ["up", "down"]


def test_triggers_parse_snakemake_words():
    assert parse_triggers(["mtime", "code", "software-env"]) == {"content", "code"}


# flow status's exit code ------------------------------------------------------------------


def test_status_exits_1_when_something_is_out_of_date(project):
    project.flowfile(CHAIN)
    assert project.flow("status").returncode == 1


def test_status_exits_0_when_everything_is_up_to_date(project):
    project.flowfile(CHAIN)
    project.run()
    r = project.flow("status")
    assert r.returncode == 0, r.output


def test_dry_run_exits_0_when_something_is_out_of_date(project):
    project.flowfile(CHAIN)
    assert project.flow("run", "-n").returncode == 0


# help --------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--until", "--omit-from", "--set-threads", "--set-resources", "--configfile",
                                  "--retries", "--profile", "--list-target-rules", "--rerun-triggers", "--config"])
def test_run_help_describes_the_flag(project, flag):
    r = project.flow("run", "--help")
    line = next((ln for ln in r.stdout.splitlines() if flag in ln.split()[:3] or f"{flag}," in ln), None)
    assert line is not None, r.stdout
    assert len(line.split(flag, 1)[1].strip()) > 10, line
