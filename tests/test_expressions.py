"""Patterns, built-in functions and evaluation of Flowfile expressions
(flow.engine.load.patterns, flow.engine.load.expressions, and top-level assignments
through flow.engine.load.model.load), as FLOWFILE.md describes them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from flow.engine.graph.dag import DAG
from flow.engine.load.config import parse_config_overrides
from flow.engine.load.expressions import (
    Env,
    EvalError,
    FlaggedPath,
    evaluate,
    expand,
    glob_wildcards,
)
from flow.engine.load.index import PatternIndex
from flow.engine.load.loader import load
from flow.engine.load.patterns import PatternError, parse_pattern
from flow.grammar import FlowfileError, parse

# ---------------------------------------------------------------- helpers


def ev(expr_text: str, **names):
    """Evaluate one expression with ``names`` bound."""
    stmt = parse(f"X = {expr_text}\n", "Flowfile").statements[0]
    return evaluate(stmt.value, Env(names=dict(names)))


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def load_flowfile(tmp_path, monkeypatch, flowfile: str, files: dict[str, str] | None = None,
                  overrides: dict | None = None):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"Flowfile": flowfile, **(files or {})})
    return load("Flowfile", overrides)


def names(tmp_path, monkeypatch, flowfile: str, files: dict[str, str] | None = None,
          overrides: dict | None = None) -> dict:
    wf = load_flowfile(tmp_path, monkeypatch, flowfile, files, overrides)
    return {k: v for k, v in wf.env.names.items() if k not in ("config", "rules", "checkpoints")}


def load_error(tmp_path, monkeypatch, flowfile: str, files: dict[str, str] | None = None,
               overrides: dict | None = None) -> FlowfileError:
    with pytest.raises(FlowfileError) as info:
        load_flowfile(tmp_path, monkeypatch, flowfile, files, overrides)
    return info.value


CONFIG_YAML = """
region: north
repeat: 3
samples: [a, b]
db:
  path: data/db.duckdb
  threads: 4
"""


# =============================================================== patterns


def test_pattern_names_in_order_of_first_appearance():
    assert parse_pattern("{b}/{a}_{b}.txt").names == ("b", "a")


def test_pattern_without_wildcards_has_no_names():
    p = parse_pattern("data/all.csv")
    assert p.names == ()
    assert p.format({}) == "data/all.csv"


def test_pattern_prefix_is_the_literal_start():
    assert parse_pattern("results/{sample}_{n}.txt").prefix == "results/"
    assert parse_pattern("{a}/x/{b}").prefix == ""


@pytest.mark.parametrize("path, fits", [
    ("results/s1_2.txt", True),
    ("results/s_1_2.txt", True),
    ("results/_2.txt", False),   # {sample} takes at least one character
    ("results/s1_.txt", False),
    ("results/s1-2.txt", False),  # the `_` literal is missing
    ("results/s1_2.csv", False),
    ("other/s1_2.txt", False),
])
def test_pattern_skeleton_fits_exactly_the_paths_the_regex_matches(path, fits):
    p = parse_pattern("results/{sample}_{n}.txt")
    assert p.skeleton({}).fits(path) is fits
    assert (p.regex({}).match(path) is not None) is fits


def test_constrained_wildcard_may_take_no_characters_in_the_skeleton():
    p = parse_pattern("a{x,[0-9]*}b")
    assert p.skeleton({}).fits("ab")
    assert p.regex({}).match("ab")


def test_many_wildcards_on_a_long_path_that_does_not_match_is_answered_at_once(tmp_path):
    # Without the skeleton check the regex backtracks through every split of
    # the path among the twelve wildcards (it did not finish in ten minutes).
    write(tmp_path, {"Flowfile": """
        rule a:
            output: "{a}-{b}-{c}-{d}-{e}-{f}-{g}-{h}/{i}-{j}-{k}-{l}.txt"
            shell: "touch {output}"
        """})
    wf = load(str(tmp_path / "Flowfile"))
    index = PatternIndex(wf.rules.values(), wf.constraints)
    assert index.candidates("-".join(["x"] * 80) + ".txt") == []
    assert len(index.candidates("-".join(["x"] * 8) + "/" + "-".join(["y"] * 4) + ".txt")) == 1


def test_inline_constraint_with_braces_is_kept_whole():
    p = parse_pattern("{year,[0-9]{4}}/{name}.csv")
    assert p.names == ("year", "name")
    assert p.regex({}).pattern == r"(?P<year>[0-9]{4})/(?P<name>.+)\.csv\Z"


def test_inline_constraint_with_a_comma_inside_braces():
    p = parse_pattern("{code,[A-Z]{2,3}}.txt")
    rx = p.regex({})
    assert rx.match("AB.txt").group("code") == "AB"
    assert rx.match("ABCD.txt") is None


def test_inline_constraint_restricts_the_match():
    rx = parse_pattern("{year,[0-9]{4}}/{name}.csv").regex({})
    assert rx.match("2023/a.csv").groupdict() == {"year": "2023", "name": "a"}
    assert rx.match("23/a.csv") is None
    assert rx.match("abcd/a.csv") is None


def test_wildcard_matches_across_slashes_by_default():
    m = parse_pattern("raw/{path}.csv").regex({}).match("raw/x/y/z.csv")
    assert m.group("path") == "x/y/z"


def test_regex_matches_the_whole_path_only():
    rx = parse_pattern("{s}.txt").regex({})
    assert rx.match("a.txt.bak") is None
    assert rx.match("a.txt").group("s") == "a"


def test_literal_dots_in_patterns_are_escaped():
    rx = parse_pattern("{s}.txt").regex({})
    assert rx.match("aXtxt") is None


def test_double_braces_are_literal_braces():
    p = parse_pattern("a{{b}}c/{x}")
    assert p.names == ("x",)
    assert p.regex({}).match("a{b}c/foo").group("x") == "foo"
    assert p.format({"x": "1"}) == "a{b}c/1"


def test_repeated_wildcard_must_have_the_same_value():
    rx = parse_pattern("{a}/{b}_{a}.txt").regex({})
    assert rx.match("x/y_x.txt").groupdict() == {"a": "x", "b": "y"}
    assert rx.match("x/y_z.txt") is None


def test_constraints_argument_applies_to_unconstrained_wildcards():
    rx = parse_pattern("{sample}.txt").regex({"sample": "[0-9]+"})
    assert rx.match("12.txt").group("sample") == "12"
    assert rx.match("ab.txt") is None


def test_inline_constraint_wins_over_constraints_argument():
    rx = parse_pattern("{sample,[a-z]+}.txt").regex({"sample": "[0-9]+"})
    assert rx.match("ab.txt") is not None
    assert rx.match("12.txt") is None


def test_format_fills_wildcards_and_drops_constraints():
    p = parse_pattern("{year,[0-9]{4}}/{name}.csv")
    assert p.format({"year": 2024, "name": "north"}) == "2024/north.csv"


def test_format_fills_a_repeated_wildcard_everywhere():
    assert parse_pattern("{a}/{a}.txt").format({"a": "x"}) == "x/x.txt"


def test_format_without_a_value_raises_pattern_error():
    with pytest.raises(PatternError):
        parse_pattern("{a}/{b}.txt").format({"a": "x"})


def test_spaces_around_a_wildcard_name_are_ignored():
    assert parse_pattern("{ sample }.txt").names == ("sample",)


@pytest.mark.parametrize(
    "text",
    ["a}b", "{a", "x/{1x}.txt", "{}", "{a-b}"],
    ids=["single-close", "unclosed", "digit-name", "empty", "dash-name"],
)
def test_malformed_pattern_raises_pattern_error(text):
    with pytest.raises(PatternError):
        parse_pattern(text)


def test_bad_inline_regex_raises_pattern_error():
    with pytest.raises(PatternError, match=r"bad constraint .* for wildcard \{a\}"):
        parse_pattern("{a,[}.txt").regex({})


# ================================================================= expand


def test_expand_is_the_product_in_argument_order():
    assert expand("{a}_{b}.txt", a=[1, 2], b=["x", "y"]) == [
        "1_x.txt", "1_y.txt", "2_x.txt", "2_y.txt",
    ]


def test_expand_zip_pairs_values():
    assert ev('expand("{a}_{b}", zip, a=[1, 2], b=["x", "y"])') == ["1_x", "2_y"]


def test_expand_zip_of_unequal_lengths_is_an_error():
    with pytest.raises(EvalError):
        ev('expand("{a}_{b}", zip, a=[1, 2], b=["x"])')


def test_expand_keeps_double_braced_wildcards():
    assert expand("{a}/{{sample}}.txt", a=[1, 2]) == ["1/{sample}.txt", "2/{sample}.txt"]


def test_expand_allow_missing_keeps_unknown_wildcards():
    assert expand("{a}/{sample}.txt", a=[1, 2], allow_missing=True) == [
        "1/{sample}.txt", "2/{sample}.txt",
    ]


def test_expand_allow_missing_keeps_unknown_wildcard_constraints():
    assert expand("{a}/{s,[0-9]+}.txt", a=["x"], allow_missing=True) == ["x/{s,[0-9]+}.txt"]


def test_expand_allow_missing_still_turns_double_braces_into_a_wildcard():
    # As Snakemake: {{x}} becomes {x} whether or not allow_missing is given.
    assert expand("{a}/{{sample}}.txt", a=[1], allow_missing=True) == ["1/{sample}.txt"]


def test_expand_without_a_value_for_a_wildcard_is_an_error():
    with pytest.raises(EvalError) as info:
        ev('expand("{a}/{b}.txt", a=[1])')
    assert info.value.message == "expand(): no values for wildcard {b} in '{a}/{b}.txt'"


def test_expand_of_a_list_of_patterns_goes_pattern_by_pattern():
    assert expand(["{a}.bam", "{a}.bai"], a=["x", "y"]) == ["x.bam", "y.bam", "x.bai", "y.bai"]


def test_expand_of_a_list_of_patterns_uses_only_each_patterns_wildcards():
    # Snakemake formats each pattern with the lists of its own wildcards only,
    # so no pattern is repeated for values it does not use.
    assert expand(["{a}.x", "{b}.y"], a=[1, 2], b=[3]) == ["1.x", "2.x", "3.y"]


def test_expand_string_value_is_one_value_not_its_characters():
    assert expand("{s}.txt", s="abc") == ["abc.txt"]


def test_expand_accepts_range_and_ints():
    assert ev('expand("part{i}", i=range(3))') == ["part0", "part1", "part2"]


def test_expand_with_an_empty_list_gives_no_paths():
    assert expand("{s}.txt", s=[]) == []


def test_expand_accepts_a_format_spec():
    assert expand("{i:03d}.txt", i=[7]) == ["007.txt"]


# ========================================================= glob_wildcards


@pytest.fixture
def tree(tmp_path, monkeypatch) -> Path:
    for name in ["raw/a.csv", "raw/b.csv", "raw/notes.txt", "raw/sub/c.csv",
                 "data/2022_north.txt", "data/2023_south.txt", "data/abcd_x.txt",
                 ".flow/state.csv", "top.csv"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_glob_wildcards_finds_values_of_matching_files(tree):
    assert glob_wildcards("raw/{name}.csv").name == ["a", "b", "sub/c"]


def test_glob_wildcards_result_is_indexable_by_position(tree):
    result = glob_wildcards("raw/{name}.csv")
    assert result[0] == ["a", "b", "sub/c"]
    assert result._fields == ("name",)


def test_glob_wildcards_constraint_excludes_subdirectories(tree):
    assert glob_wildcards("raw/{name,[^/]+}.csv").name == ["a", "b"]


def test_glob_wildcards_with_two_wildcards_keeps_values_aligned(tree):
    result = glob_wildcards("data/{year,[0-9]{4}}_{region}.txt")
    assert (result.year, result.region) == (["2022", "2023"], ["north", "south"])


def test_glob_wildcards_over_the_working_directory_skips_flow_state(tree):
    assert glob_wildcards("{f}.csv").f == ["raw/a", "raw/b", "raw/sub/c", "top"]


def test_glob_wildcards_of_a_missing_directory_gives_empty_lists(tree):
    assert glob_wildcards("nothere/{x}.csv").x == []


def test_glob_wildcards_matches_directories_too(tree):
    assert glob_wildcards("raw/{d,[^/.]+}").d == ["sub"]


def test_glob_wildcards_attribute_in_a_flowfile_expression(tree):
    assert ev('expand("out/{s}.txt", s=glob_wildcards("raw/{s,[^/]+}.csv").s)') == [
        "out/a.txt", "out/b.txt",
    ]


def test_glob_wildcards_unknown_attribute_is_an_error(tree):
    with pytest.raises(EvalError) as info:
        ev('glob_wildcards("raw/{name}.csv").sample')
    assert info.value.message == "Wildcards has no attribute `sample`"


# ================================================================== flags


@pytest.mark.parametrize("flag", ["temp", "protected", "directory", "ancient"])
def test_flag_function_makes_a_flagged_path(flag):
    value = ev(f'{flag}("out/x.txt")')
    assert isinstance(value, FlaggedPath)
    assert value == "out/x.txt"
    assert value.flags == frozenset({flag})


def test_flags_combine_when_nested():
    value = ev('temp(directory("parts"))')
    assert value.flags == frozenset({"temp", "directory"})


def test_flag_of_a_list_flags_each_path():
    value = ev('temp(expand("{s}.tmp", s=["a", "b"]))')
    assert value == ["a.tmp", "b.tmp"]
    assert [v.flags for v in value] == [frozenset({"temp"})] * 2


def test_flag_of_a_number_is_an_error():
    with pytest.raises(EvalError):
        ev("temp(3)")


def test_flag_takes_exactly_one_argument():
    with pytest.raises(EvalError) as info:
        ev('temp("a", "b")')
    assert info.value.message == "temp() takes one path or list of paths"


def test_flags_reach_the_rule_outputs_and_inputs(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        rule a:
            input: ancient("ref.txt"), "plain.txt"
            output: temp("a.tmp"), protected("a.final"), directory("a.d")
            shell: "true"
    """)
    rule = wf.rules["a"]
    assert [(s.pattern.text, s.flags) for s in rule.outputs.specs] == [
        ("a.tmp", frozenset({"temp"})),
        ("a.final", frozenset({"protected"})),
        ("a.d", frozenset({"directory"})),
    ]
    assert [(s.pattern.text, s.flags) for s in rule.inputs.specs] == [
        ("ref.txt", frozenset({"ancient"})),
        ("plain.txt", frozenset()),
    ]


# =============================================================== multiext


def test_multiext_appends_each_extension():
    assert ev('multiext("out/sample", ".bam", ".bam.bai")') == ["out/sample.bam", "out/sample.bam.bai"]


def test_multiext_in_output_gives_one_output_per_extension(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        rule a:
            output: multiext("out/{s}", ".one", ".two")
            shell: "true"
    """)
    rule = wf.rules["a"]
    assert [s.pattern.text for s in rule.outputs.specs] == ["out/{s}.one", "out/{s}.two"]
    assert rule.wildcard_names == ("s",)


# ======================================================= plain built-ins


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("range(2, 5)", [2, 3, 4]),
        ("len([1, 2, 3])", 3),
        ("str(7) + 'x'", "7x"),
        ("int('12') + 1", 13),
        ("sorted(['b', 'c', 'a'])", ["a", "b", "c"]),
        ("'-'.join(['a', 'b'])", "a-b"),
        ("'A.csv'.lower().replace('.csv', '')", "a"),
    ],
)
def test_builtin_function_evaluates_as_in_python(expr, value):
    assert ev(expr) == value


# ============================================ top-level assignments via load


def test_assignment_is_visible_to_later_assignments(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, """
        OUT = "results"
        ALL = OUT
    """)
    assert got == {"OUT": "results", "ALL": "results"}


def test_string_plus_string(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, """
        OUT = "results"
        REPORT = OUT + "/report.txt"
    """)
    assert got["REPORT"] == "results/report.txt"


def test_list_plus_list(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, 'A = ["a"] + ["b", "c"]\n')
    assert got["A"] == ["a", "b", "c"]


def test_list_times_int(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, """
        S = ["a", "b"]
        TWICE = S * 2
    """)
    assert got["TWICE"] == ["a", "b", "a", "b"]


def test_repeated_doubling_by_plus_is_bounded_like_times(tmp_path, monkeypatch):
    text = "A = [0] * 1000\n" + "".join(f"A{i + 1} = A{i or ''} + A{i or ''}\n" for i in range(30))
    with pytest.raises(FlowfileError) as info:
        names(tmp_path, monkeypatch, text)
    assert "elements" in str(info.value)


def test_int_times_list(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, 'Z = 3 * [0]\n')
    assert got["Z"] == [0, 0, 0]


def test_subscripts_of_lists_and_dicts(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, """
        YEARS = [2022, 2023, 2024]
        LAST = YEARS[2]
        D = {"a": [1, {"b": "deep"}]}
        DEEP = D["a"][1]["b"]
    """)
    assert (got["LAST"], got["DEEP"]) == (2024, "deep")


def test_tuple_and_dict_values(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, 'T = ("x", 1)\nD = {"k": None, 2: True}\n')
    assert got["T"] == ("x", 1)
    assert got["D"] == {"k": None, 2: True}


def test_arithmetic_on_numbers(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, "A = -3 + 10 // 3\nB = 7 % 4\nC = 1 / 4\n")
    assert (got["A"], got["B"], got["C"]) == (0, 3, 0.25)


def test_expand_over_assigned_names(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, """
        YEARS = [2022, 2023]
        OUT = "results"
        FILES = expand(OUT + "/{year}.parquet", year=YEARS)
    """)
    assert got["FILES"] == ["results/2022.parquet", "results/2023.parquet"]


def test_glob_wildcards_in_a_flowfile_sees_files_of_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "raw").mkdir()
    for s in ["s1", "s2"]:
        (tmp_path / "raw" / f"{s}.fastq").write_text("")
    got = names(tmp_path, monkeypatch, """
        SAMPLES = glob_wildcards("raw/{sample}.fastq").sample
        OUTS = expand("out/{sample}.bam", sample=SAMPLES)
    """)
    assert got["SAMPLES"] == ["s1", "s2"]
    assert got["OUTS"] == ["out/s1.bam", "out/s2.bam"]


# ----------------------------------------------------------------- config


def test_config_from_a_yaml_configfile(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, 'configfile: "config.yaml"\n',
                       {"config.yaml": CONFIG_YAML})
    assert wf.config == {
        "region": "north", "repeat": 3, "samples": ["a", "b"],
        "db": {"path": "data/db.duckdb", "threads": 4},
    }


def test_config_from_a_json_configfile(tmp_path, monkeypatch):
    cfg = {"region": "west", "years": [2020, 2021], "db": {"path": "x.db"}}
    got = names(tmp_path, monkeypatch, """
        configfile: "config.json"
        REGION = config["region"]
        YEARS = config["years"]
        DB = config["db"]["path"]
    """, {"config.json": json.dumps(cfg)})
    assert got == {"REGION": "west", "YEARS": [2020, 2021], "DB": "x.db"}


def test_config_nested_subscript_in_an_assignment(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, """
        configfile: "config.yaml"
        DB = config["db"]["path"]
    """, {"config.yaml": CONFIG_YAML})
    assert got["DB"] == "data/db.duckdb"


def test_config_get_with_a_default(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, """
        configfile: "config.yaml"
        REGION = config.get("region", "none")
        MISSING = config.get("missing", "fallback")
        NOTHING = config.get("missing")
    """, {"config.yaml": CONFIG_YAML})
    assert got == {"REGION": "north", "MISSING": "fallback", "NOTHING": None}


def test_config_values_reach_rule_directives(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        configfile: "config.yaml"
        rule a:
            output: "out/{sample}.txt"
            params: region=config["region"], n=config["repeat"]
            threads: config["db"]["threads"]
            shell: "true"
    """, {"config.yaml": CONFIG_YAML})
    rule = wf.rules["a"]
    assert rule.params == {"region": "north", "n": 3}
    assert rule.threads == 4


def test_override_replaces_a_configfile_value(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, """
        configfile: "config.yaml"
        REGION = config["region"]
        REPEAT = config["repeat"]
    """, {"config.yaml": CONFIG_YAML}, overrides={"region": "south"})
    assert (got["REGION"], got["REPEAT"]) == ("south", 3)


def test_override_adds_a_key_the_configfile_lacks(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, 'configfile: "config.yaml"\n',
                       {"config.yaml": CONFIG_YAML}, overrides={"extra": 1})
    assert wf.config["extra"] == 1
    assert wf.config["region"] == "north"


def test_override_without_a_configfile_is_the_config(tmp_path, monkeypatch):
    got = names(tmp_path, monkeypatch, 'N = config["n"] * 2\n', overrides={"n": 21})
    assert got["N"] == 42


def test_nested_override_merges_into_the_configfile_mapping(tmp_path, monkeypatch):
    # `--config 'db={threads: 8}'` changes db.threads and keeps db.path (as Snakemake does).
    wf = load_flowfile(tmp_path, monkeypatch, 'configfile: "config.yaml"\n',
                       {"config.yaml": CONFIG_YAML}, overrides={"db": {"threads": 8}})
    assert wf.config["db"] == {"path": "data/db.duckdb", "threads": 8}


def test_override_dict_is_not_modified_by_load(tmp_path, monkeypatch):
    overrides = {"db": {"threads": 8}}
    load_flowfile(tmp_path, monkeypatch, 'configfile: "config.yaml"\n',
                  {"config.yaml": CONFIG_YAML}, overrides=overrides)
    assert overrides == {"db": {"threads": 8}}


def test_config_overrides_from_the_command_line_are_read_as_snakemake_reads_them():
    # int, float, then True/False, then YAML whose scalars are strings (Snakemake 9)
    assert parse_config_overrides(["n=3", "ratio=0.5", "flag=true", "yes=True", "name=north", "empty=",
                                   "list=[1, 2]"]) == {
        "n": 3, "ratio": 0.5, "flag": "true", "yes": True, "name": "north", "empty": None, "list": ["1", "2"],
    }


def test_second_configfile_merges_over_the_first(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        configfile: "config.yaml"
        configfile: "local.yaml"
    """, {"config.yaml": CONFIG_YAML, "local.yaml": "region: east\ndb:\n  threads: 16\n"})
    assert wf.config["region"] == "east"
    assert wf.config["db"] == {"path": "data/db.duckdb", "threads": 16}


def test_empty_configfile_is_an_empty_config(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, 'configfile: "config.yaml"\n', {"config.yaml": ""})
    assert wf.config == {}


# ------------------------------------------------------ include / workdir


def test_include_path_is_relative_to_the_including_file(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        include: "rules/more.flow"
        ALL = SHARED + ["top"]
        rule all:
            input: ALL
    """, {
        "rules/more.flow": 'include: "common.flow"\nSHARED = BASE + ["more"]\n',
        "rules/common.flow": 'BASE = ["common"]\n',
    })
    assert wf.env.names["ALL"] == ["common", "more", "top"]


def test_workdir_changes_the_working_directory(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        workdir: "work"
        configfile: "config.yaml"
        REGION = config["region"]
    """, {"work/config.yaml": "region: inner\n"})
    assert wf.workdir == str(tmp_path / "work")
    assert wf.env.names["REGION"] == "inner"


# ------------------------------------------------------------ rule values


def test_rule_values_are_evaluated(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        MEM = 2000
        rule extract:
            input: "raw/{year}.csv", lookup="ref/regions.csv"
            output: "data/{year}.parquet"
            params: tag="y{year}", n=len([1, 2])
            threads: 2
            resources: mem_mb=MEM, runtime=10
            retries: 1
            priority: 5
            shell: "python extract.py {input[0]} {output}"
    """)
    rule = wf.rules["extract"]
    assert rule.wildcard_names == ("year",)
    assert [s.pattern.text for s in rule.inputs.specs] == ["raw/{year}.csv", "ref/regions.csv"]
    assert rule.inputs.names == {"lookup": 1}
    assert rule.params == {"tag": "y{year}", "n": 2}
    assert (rule.threads, rule.resources, rule.retries, rule.priority) == (
        2, {"mem_mb": 2000, "runtime": 10}, 1, 5,
    )
    assert rule.action.kind == "shell"


def test_first_rule_is_the_default_target(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        rule first:
            output: "a"
        rule second:
            output: "b"
    """)
    assert wf.default_target == "first"


def test_default_target_directive_overrides_the_first_rule(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        rule first:
            output: "a"
        rule all:
            input: "a"
            default_target: True
    """)
    assert wf.default_target == "all"


def test_ruleorder_is_kept_in_the_workflow(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        ruleorder: b > a
        rule a:
            output: "{x}.txt"
        rule b:
            output: "{x}.txt"
    """)
    assert wf.ruleorder == [("b", "a")]


def test_run_and_duckdb_actions_have_their_kind(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        rule r:
            output: "r.txt"
            run:
                open(output[0], "w").close()
        rule d:
            output: "d.csv"
            duckdb: "SELECT 1 AS x"
    """)
    assert (wf.rules["r"].action.kind, wf.rules["d"].action.kind) == ("run", "duckdb")


# ====================================================== evaluation errors


def test_undefined_name_is_an_error_at_its_line_and_column(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, """
        A = 1
        B = C + 1
    """)
    assert (Path(e.file).name, e.line, e.column) == ("Flowfile", 2, 5)
    assert e.message == "name `C` is not defined"


def test_name_used_before_its_assignment_is_undefined(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, """
        X = Y
        Y = 1
    """)
    assert (e.line, e.column, e.message) == (1, 5, "name `Y` is not defined")


def test_undefined_name_in_a_rule_directive(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, """
        rule a:
            output: "x"
            params: p=FOO
            shell: "true"
    """)
    assert (e.line, e.column, e.message) == (3, 15, "name `FOO` is not defined")


def test_missing_config_key_names_the_key_and_the_known_ones(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, """
        configfile: "config.yaml"
        X = config["regoin"]
    """, {"config.yaml": "region: north\nrepeat: 3\n"})
    assert (Path(e.file).name, e.line, e.column) == ("Flowfile", 2, 12)
    assert e.message == "no key 'regoin'"
    assert e.hint == "Known keys: 'region', 'repeat'."


def test_missing_nested_config_key_points_at_the_inner_key(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, """
        configfile: "config.yaml"
        X = config["db"]["nope"]
    """, {"config.yaml": CONFIG_YAML})
    assert (e.line, e.column, e.message) == (2, 18, "no key 'nope'")


def test_index_out_of_range_is_an_error(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, "X = [1, 2][5]\n")
    assert (e.line, e.column) == (1, 12)
    assert e.message == "index 5 is out of range (length 2)"


def test_adding_a_string_and_a_number_is_an_error(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, 'A = 1\nX = "a" + A\n')
    assert (e.line, e.column) == (2, 5)
    assert e.message.startswith("`+`:")


def test_attribute_of_a_string_is_an_error(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, 'X = "a".sample\n')
    assert (e.line, e.column, e.message) == (1, 5, "str has no attribute `sample`")


def test_error_in_an_included_file_names_that_file(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, 'A = 1\ninclude: "rules/more.flow"\n',
                   {"rules/more.flow": "B = 2\nC = UNDEFINED\n"})
    assert (e.file, e.line, e.column) == (str(tmp_path / "rules" / "more.flow"), 2, 5)
    assert e.message == "name `UNDEFINED` is not defined"


def test_config_cannot_be_reassigned(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, 'A = 1\nconfig = {"a": 1}\n')
    assert (e.line, e.column, e.message) == (2, 1, "`config` cannot be reassigned")


def test_missing_configfile_is_an_error_at_the_directive(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, 'A = 1\nconfigfile: "nope.yaml"\n')
    assert (e.line, e.column) == (2, 1)
    assert e.message == "config file nope.yaml does not exist"


def test_configfile_that_is_not_a_mapping_is_an_error(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, 'configfile: "c.yaml"\n', {"c.yaml": "- a\n- b\n"})
    assert (e.line, e.message) == (1, "config file c.yaml must hold a mapping, not list")


def test_error_renders_with_the_source_line_and_caret(tmp_path, monkeypatch):
    e = load_error(tmp_path, monkeypatch, 'A = 1\nB = A + MISSING\n')
    assert e.render().splitlines()[:3] == [
        f"{tmp_path / 'Flowfile'}:2:9: error: name `MISSING` is not defined",
        "    B = A + MISSING",
        "            ^",
    ]


# ================================================= wildcards not in the output


@pytest.mark.parametrize(("directive", "line"), [
    ('input: "raw/{b}.txt"', 3),
    ('log: "logs/{b}.log"', 3),
    ('benchmark: "bench/{b}.tsv"', 3),
    ('params: tag="run-{b}"', 3),
])
def test_a_wildcard_the_output_lacks_is_an_error_at_its_directive(tmp_path, monkeypatch, directive, line):
    e = load_error(tmp_path, monkeypatch, f"""
        rule r:
            output: "out/{{a}}.txt"
            {directive}
            shell: "touch {{output}}"
    """)
    what = directive.split(":")[0]
    assert e.line == line
    assert e.message.startswith(f"{what} ")
    assert e.message.endswith("of rule r uses wildcard {b}, which its output does not have")


def test_a_wildcard_of_the_output_may_be_used_everywhere(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        rule r:
            output: "out/{a}.txt"
            input: "raw/{a}.txt"
            log: "logs/{a}.log"
            benchmark: "bench/{a}.tsv"
            params: tag="run-{a}", code="{ not a pattern"
            shell: "touch {output}"
    """)
    assert wf.rules["r"].benchmark.names == ("a",)


def test_inputs_evaluated_after_a_checkpoint_get_the_same_wildcard_check(tmp_path, monkeypatch):
    wf = load_flowfile(tmp_path, monkeypatch, """
        checkpoint split:
            output: directory("parts")
            shell: "mkdir -p {output}"
        rule gather:
            input: expand("parts/{p}/{{other}}.txt", p=glob_wildcards("parts/{p}.txt").p)
            output: "all.txt"
            shell: "cat {input} > {output}"
    """)
    dag = DAG(wf)
    [gather] = dag.targets(["all.txt"])
    assert gather.pending == {"parts"}
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "x.txt").write_text("x")
    dag.checkpoint_done(gather.deps[0])
    with pytest.raises(FlowfileError) as info:
        dag.expand(gather)
    assert info.value.line == 5
    assert "uses wildcard {other}, which its output does not have" in info.value.message
