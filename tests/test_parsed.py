"""The parse cache (``engine/load/parsed.py``): a run whose Flowfile and
includes were parsed before takes their ASTs from ``.flow/parsed`` and never
loads the parser; any other text, grammar or damaged file is parsed anew."""

from __future__ import annotations

import pytest
from flow.engine.load import parsed
from flow.engine.load.parsed import ParseCache
from flow.grammar import FlowfileError, parser

FLOWFILE = """\
include: "more.smk"

rule all:
    input: "b.txt"
"""
MORE = """\
rule b:
    output: "b.txt"
    shell: "echo b > {output}"
"""


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".flow").mkdir()
    (tmp_path / "Flowfile").write_text(FLOWFILE)
    (tmp_path / "more.smk").write_text(MORE)
    return tmp_path


def parses(monkeypatch) -> list[str]:
    """The files parsed (not taken from the cache) from now on."""
    seen: list[str] = []
    real = parser.parse
    monkeypatch.setattr(parser, "parse", lambda text, file="Flowfile": seen.append(file) or real(text, file))
    return seen


def test_a_kept_file_is_not_parsed_again_and_its_ast_is_the_parsers(files, monkeypatch):
    first = ParseCache(".flow")
    ast = first.parse_file(str(files / "Flowfile"))
    first.save()
    seen = parses(monkeypatch)
    assert ParseCache(".flow").parse_file(str(files / "Flowfile")) == ast == parser.parse_file(str(files / "Flowfile"))
    assert seen == [str(files / "Flowfile")]  # (only the direct call above)


def test_an_edited_file_is_parsed_again(files, monkeypatch):
    cache = ParseCache(".flow")
    cache.parse_file(str(files / "more.smk"))
    cache.save()
    (files / "more.smk").write_text(MORE.replace("echo b", "echo bee"))
    seen = parses(monkeypatch)
    module = ParseCache(".flow").parse_file(str(files / "more.smk"))
    assert seen == [str(files / "more.smk")]
    assert "echo bee" in repr(module)


def test_asts_kept_by_another_grammar_are_not_used(files, monkeypatch):
    cache = ParseCache(".flow")
    cache.parse_file(str(files / "Flowfile"))
    cache.save()
    monkeypatch.setattr(parsed, "_GRAMMAR", "another grammar")
    seen = parses(monkeypatch)
    ParseCache(".flow").parse_file(str(files / "Flowfile"))
    assert seen == [str(files / "Flowfile")]


def test_a_damaged_cache_is_not_read(files, monkeypatch):
    cache = ParseCache(".flow")
    cache.parse_file(str(files / "Flowfile"))
    cache.save()
    path = files / ".flow" / parsed.FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    seen = parses(monkeypatch)
    ParseCache(".flow").parse_file(str(files / "Flowfile"))
    assert seen == [str(files / "Flowfile")]


def test_a_dry_run_keeps_nothing(files):
    cache = ParseCache(".flow", readonly=True)
    cache.parse_file(str(files / "Flowfile"))
    cache.save()
    assert not (files / ".flow" / parsed.FILE).exists()


def test_a_file_that_does_not_parse_says_where_each_time_and_is_not_kept(files):
    (files / "Flowfile").write_text('rule a:\n    output: "a.txt"\n    shell: "x" "y\n')
    for _ in range(2):
        cache = ParseCache(".flow")
        with pytest.raises(FlowfileError) as e:
            cache.parse_file(str(files / "Flowfile"))
        assert "Flowfile:3:" in e.value.render()
        cache.save()
    assert not (files / ".flow" / parsed.FILE).exists()


def test_a_run_whose_flowfile_was_parsed_before_does_not_load_the_parser(project):
    project.flowfile(FLOWFILE)
    project.write("more.smk", MORE)
    first = project.run(env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert "lark" in first.stderr and project.read("b.txt") == "b\n"
    again = project.run(env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert "nothing to do" in again.stderr and "lark" not in again.stderr
    project.write("more.smk", MORE.replace("echo b", "echo bee"))
    edited = project.run(env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert "lark" in edited.stderr and project.read("b.txt") == "bee\n"


def test_the_run_after_the_one_that_parsed_finds_the_caches_it_left(files):
    """An AST from the parser and one from the cache hash the same
    definitions (the key memo, the graph cache and the stamp are keyed by
    them): the run after the one that parsed is proved, inferring nothing."""
    from flow.engine.commands.build import RunOptions, build

    (files / "Flowfile").write_text(FLOWFILE.replace('input: "b.txt"', "input: inputs") + (
        "\ndef inputs(wildcards):\n    return expand('{b}.txt', b=glob_wildcards('{b}.smk').b)[:0] + ['b.txt']\n"))
    first = build(RunOptions(quiet=True), freeze=False, summary_line=False)
    assert first.summary.ran == 1
    second = build(RunOptions(quiet=True), freeze=False, summary_line=False)
    assert second.dag is None and second.summary.up_to_date == 1
