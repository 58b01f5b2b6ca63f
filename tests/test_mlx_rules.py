"""mlx: rules: ring-attention shards and tensors, computed with MLX and
checked element by element against a plain reference written here."""

from __future__ import annotations

import json
import shutil

import mlx.core as mx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import Project, kill_9_everything, wait_for
from flow.rules import ActionError
from flow.rules.mlx import Packed, load_shard, ring_params
from hypothesis import given, settings
from hypothesis import strategies as st

IGNORE = -100


# the reference: one token at a time, as the layout is described --------------------------------


def reference(docs, world_size, seq_len, layout="zigzag", pad_id=0, eos_id=None):
    """Per rank: input_ids, labels, position_ids, segment_ids as numpy arrays."""
    stream, owner = [], []
    for d, doc in enumerate(docs):
        if doc is None:
            continue  # a null row is no document
        tokens = list(doc) + ([eos_id] if eos_id is not None else [])
        stream += tokens
        owner += [d] * len(tokens)
    num_seq = -(-len(stream) // seq_len)
    full = {name: np.zeros((num_seq, seq_len), np.int64) for name in ("input_ids", "labels", "position_ids",
                                                                        "segment_ids")}
    for s in range(num_seq):
        piece, position = 0, 0
        for t in range(seq_len):
            i = s * seq_len + t
            if i >= len(stream):
                full["input_ids"][s, t], full["labels"][s, t] = pad_id, IGNORE
                continue  # position 0, segment 0
            if t == 0 or owner[i] != owner[i - 1]:
                piece, position = piece + 1, 0
            else:
                position += 1
            full["input_ids"][s, t] = stream[i]
            full["segment_ids"][s, t] = piece
            full["position_ids"][s, t] = position
            same = t + 1 < seq_len and i + 1 < len(stream) and owner[i + 1] == owner[i]
            full["labels"][s, t] = stream[i + 1] if same else IGNORE
    ranks = []
    for r in range(world_size):
        if layout == "contiguous":
            size = seq_len // world_size
            cols = list(range(r * size, (r + 1) * size))
        else:
            size = seq_len // (2 * world_size)
            other = 2 * world_size - 1 - r
            cols = list(range(r * size, (r + 1) * size)) + list(range(other * size, (other + 1) * size))
        ranks.append({name: a[:, cols] for name, a in full.items()})
    return ranks


def transform(docs, block_tokens=None, int64_positions=False, **params):
    p = ring_params({"column": "tokens", **params})
    block, int32 = Packed.BLOCK_TOKENS, Packed.INT32_POSITIONS
    Packed.BLOCK_TOKENS = block_tokens or block
    Packed.INT32_POSITIONS = 0 if int64_positions else int32
    try:
        packed = Packed(pa.array(docs, pa.list_(pa.int64())), p)
        return [{name: np.array(a) for name, a in shard.items()} for _, shard in packed.shards()]
    finally:
        Packed.BLOCK_TOKENS, Packed.INT32_POSITIONS = block, int32


def assert_same(docs, block_tokens=None, int64_positions=False, **params):
    ours, ref = transform(docs, block_tokens, int64_positions, **params), reference(docs, **params)
    assert len(ours) == len(ref)
    for rank, (a, b) in enumerate(zip(ours, ref, strict=True)):
        for name in b:
            assert a[name].shape == b[name].shape, (rank, name)
            assert (a[name] == b[name]).all(), f"rank {rank}, {name}:\n{a[name]}\n!=\n{b[name]}"


# the transform against the reference ----------------------------------------------------------

DOCS = [[5, 6, 7], [8] * 20, [], [9], [10, 11, 12, 13, 14, 15, 16], [17, 18]]


@pytest.mark.parametrize("world_size", [1, 2, 4])
@pytest.mark.parametrize("layout", ["zigzag", "contiguous"])
def test_shards_match_the_reference_for_each_world_size_and_layout(world_size, layout):
    assert_same(DOCS, world_size=world_size, seq_len=8 * world_size, layout=layout)


@pytest.mark.parametrize("layout", ["zigzag", "contiguous"])
def test_eos_ends_every_document_and_is_labelled_within_it(layout):
    assert_same(DOCS, world_size=2, seq_len=8, layout=layout, eos_id=3, pad_id=1)


def test_a_document_longer_than_several_sequences_is_cut_into_pieces():
    assert_same([list(range(1, 50)), [7, 7]], world_size=2, seq_len=8)


@pytest.mark.parametrize("eos", [None, 2])
def test_sequences_made_in_several_blocks_match_the_reference(eos):
    docs = [list(range(3, 3 + n)) for n in (1, 30, 0, 7, 64, 2, 19)]
    assert_same(docs, block_tokens=16, world_size=2, seq_len=8, eos_id=eos)


def test_empty_documents_and_a_single_token():
    assert_same([[], [4], [], []], world_size=1, seq_len=4)
    assert_same([[], [4], [], []], world_size=2, seq_len=4, eos_id=2)


@pytest.mark.parametrize("eos", [None, 2])
def test_a_null_row_is_no_document(eos):
    assert_same([[5, 6], None, [], None, [7]], world_size=1, seq_len=4, eos_id=eos)


def test_more_positions_than_int32_counts_are_counted_in_int64_alike():
    assert_same(DOCS, int64_positions=True, world_size=2, seq_len=8, eos_id=2)


def test_no_tokens_at_all_gives_no_sequences():
    shards = transform([[], []], world_size=2, seq_len=8)
    assert [s["input_ids"].shape for s in shards] == [(0, 4), (0, 4)]


def test_labels_are_shifted_before_sharding_not_after():
    # zigzag puts chunks 0 and 3 on rank 0: the label of chunk 0's last token
    # is the first token of chunk 1, which rank 0 does not hold.
    rank0 = transform([[1, 2, 3, 4, 5, 6, 7, 8]], world_size=2, seq_len=8)[0]
    assert rank0["input_ids"].tolist() == [[1, 2, 7, 8]]
    assert rank0["labels"].tolist() == [[2, 3, 8, IGNORE]]
    assert rank0["position_ids"].tolist() == [[0, 1, 6, 7]]


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(st.lists(st.integers(4, 1000), max_size=40), max_size=12),
       world_size=st.sampled_from([1, 2, 3, 4]), per_chunk=st.integers(1, 5),
       layout=st.sampled_from(["zigzag", "contiguous"]), eos=st.booleans(), block=st.sampled_from([None, 1, 37]))
def test_random_documents_match_the_reference(docs, world_size, per_chunk, layout, eos, block):
    chunks = 2 * world_size if layout == "zigzag" else world_size
    assert_same(docs, block_tokens=block, world_size=world_size, seq_len=chunks * per_chunk, layout=layout,
                eos_id=2 if eos else None, pad_id=0)


# params --------------------------------------------------------------------------------------


@pytest.mark.parametrize("params, message", [
    ({"world_size": 4, "seq_len": 100}, "seq_len=100 must be divisible by 2 * world_size = 8 (world_size=4, "
                                        "layout zigzag); the nearest valid seq_len: 96 or 104"),
    ({"world_size": 3, "seq_len": 10, "layout": "contiguous"}, "divisible by world_size = 3"),
    ({"world_size": 0, "seq_len": 8}, "world_size must be at least 1"),
    ({"world_size": 2, "seq_len": 8, "layout": "ring"}, "layout must be"),
    ({"world_size": 2, "seq_len": 8, "dtype": "float32"}, "dtype must be one of"),
    ({"world_size": 2, "seq_len": 8, "eos": 2}, "unknown eos"),
    ({"seq_len": 8}, "world_size= is required"),
    ({"world_size": None, "seq_len": 8}, "world_size= is required"),
    ({"world_size": 2, "seq_len": 8, "eos_id": 70000, "dtype": "uint16"}, "eos_id=70000 does not fit dtype uint16"),
    ({"world_size": 2, "seq_len": 8, "pad_id": 2**31}, "pad_id=2147483648 does not fit dtype int32"),
    ({"world_size": 2, "seq_len": 8, "column": 3}, "column must be a column name"),
])
def test_bad_params_are_refused_clearly(params, message):
    with pytest.raises(ActionError, match=None) as e:
        ring_params({"column": "tokens", **params} if "column" not in params else params)
    assert message in str(e.value)


# in a run -----------------------------------------------------------------------------------------


def _tokens(project, docs, name="tokens.parquet"):
    pq.write_table(pa.table({"doc": list(range(len(docs))), "tokens": pa.array(docs, pa.list_(pa.int32()))}),
                   project.root / name)


RING = '''
rule shards:
    input: "tokens.parquet"
    output: directory("shards")
    params: column="tokens", world_size={ws}, seq_len={sl}, layout="{layout}", eos_id=2
    mlx: "ring_attention"
'''


def test_a_ring_attention_rule_writes_shards_that_round_trip_through_load_shard(project):
    _tokens(project, DOCS)
    project.flowfile(RING.format(ws=2, sl=8, layout="zigzag"))
    project.run()
    expected = reference(DOCS, world_size=2, seq_len=8, eos_id=2)
    for rank in range(2):
        shard = load_shard(str(project.root / "shards"), rank)
        assert set(shard) == {"input_ids", "labels", "position_ids", "segment_ids"}
        assert shard["input_ids"].dtype == mx.int32
        for name, array in shard.items():
            assert np.array(array).tolist() == expected[rank][name].tolist()
    meta = json.loads(project.read("shards/meta.json"))
    assert meta["world_size"] == 2 and meta["seq_len"] == 8 and meta["layout"] == "zigzag"
    assert meta["num_tokens"] == sum(len(d) + 1 for d in DOCS) and meta["num_sequences"] == expected[0]["input_ids"].shape[0]
    assert meta["eos_id"] == 2 and meta["pad_id"] == 0 and len(meta["source_hash"]) == 32
    assert sorted(p.name for p in (project.root / "shards").iterdir()) == [
        "meta.json", "rank00.safetensors", "rank01.safetensors"]


def test_load_shard_refuses_a_rank_the_shards_do_not_have(project):
    _tokens(project, DOCS)
    project.flowfile(RING.format(ws=2, sl=8, layout="contiguous"))
    project.run()
    with pytest.raises(ValueError, match="ranks 0 to 1"):
        load_shard(str(project.root / "shards"), 2)


def test_a_seq_len_that_does_not_divide_is_refused_before_any_data_is_read(project):
    project.write("tokens.parquet", "not even parquet")
    project.flowfile(RING.format(ws=4, sl=100, layout="zigzag"))
    r = project.flow("run", "-n")
    assert r.returncode == 2
    assert "seq_len=100 must be divisible by 2 * world_size = 8" in r.stderr and "96 or 104" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_column_fails_the_job_naming_the_columns_there_are(project):
    _tokens(project, DOCS)
    project.flowfile(RING.format(ws=2, sl=8, layout="zigzag").replace('column="tokens"', 'column="ids"'))
    r = project.flow("run")
    assert r.returncode == 1
    assert "has no column 'ids' (it has: doc, tokens)" in r.stderr
    assert not project.exists("shards")


def test_ring_attention_needs_a_directory_output(project):
    project.flowfile('''
        rule shards:
            input: "tokens.parquet"
            output: "shards.safetensors"
            params: column="tokens", world_size=2, seq_len=8
            mlx: "ring_attention"
    ''')
    r = project.flow("list")
    assert r.returncode == 2
    assert "directory('shards.safetensors')" in r.stderr


def test_the_tensors_transform_writes_columns_as_mlx_arrays(project):
    pq.write_table(pa.table({
        "x": pa.array([1.5, 2.5, 3.5], pa.float64()),
        "label": pa.array([0, 1, 1], pa.int64()),
        "emb": pa.array([[1, 2], [3, 4], [5, 6]], pa.list_(pa.int32(), 2)),
        "ragged": pa.array([[1], [2, 3], []], pa.list_(pa.int32())),
        "flag": [True, False, True],
        "name": ["a", "b", "c"],
    }), project.root / "table.parquet")
    project.flowfile('''
        rule tensors:
            input: "table.parquet"
            output: "table.safetensors"
            params: columns=["x", "label", "emb", "ragged", "flag"], dtype="float32"
            mlx: "tensors"
    ''')
    project.run()
    arrays, meta = mx.load(str(project.root / "table.safetensors"), return_metadata=True)
    assert np.array(arrays["x"]).tolist() == [1.5, 2.5, 3.5] and arrays["x"].dtype == mx.float32
    assert np.array(arrays["emb"]).tolist() == [[1, 2], [3, 4], [5, 6]]
    assert np.array(arrays["ragged"]).tolist() == [1, 2, 3]
    assert np.array(arrays["ragged.offsets"]).tolist() == [0, 1, 3, 3]
    assert np.array(arrays["flag"]).tolist() == [1.0, 0.0, 1.0]
    assert meta["num_rows"] == "3"


def test_tensors_are_laid_out_by_type_and_a_dtype_never_wraps_values(project):
    pq.write_table(pa.table({"x": pa.array([0.1], pa.float64()), "big": pa.array([2**40], pa.int64()),
                             "same_length": pa.array([[1, 2]], pa.list_(pa.int64()))}), project.root / "t.parquet")
    project.flowfile('''
        rule keep:
            input: "t.parquet"
            output: "keep.safetensors"
            params: columns=["x", "same_length"]
            mlx: "tensors"

        rule narrow:
            input: "t.parquet"
            output: "narrow.safetensors"
            params: columns=["big"], dtype="int32"
            mlx: "tensors"
    ''')
    project.run("keep.safetensors")
    arrays = mx.load(str(project.root / "keep.safetensors"))
    assert arrays["x"].dtype == mx.float32  # MLX's float: it writes no float64
    assert arrays["same_length"].shape == (2,) and "same_length.offsets" in arrays  # by type, not by values
    r = project.flow("run", "narrow.safetensors")
    assert r.returncode == 1
    assert "column 'big' does not fit dtype int32" in r.stderr


def test_null_token_ids_inside_a_document_fail_the_job_clearly(project):
    pq.write_table(pa.table({"tokens": pa.array([[5, None], [6]], pa.list_(pa.int32()))}),
                   project.root / "tokens.parquet")
    project.flowfile(RING.format(ws=1, sl=4, layout="zigzag"))
    r = project.flow("run")
    assert r.returncode == 1
    assert "column 'tokens' has 1 missing token ids" in r.stderr


def test_tokens_in_several_row_groups_are_packed_as_one_column(project):
    docs = [[3 + (i * 7 + j) % 50 for j in range(i % 13)] for i in range(200)]
    pq.write_table(pa.table({"tokens": pa.array(docs, pa.list_(pa.int32()))}), project.root / "tokens.parquet",
                   row_group_size=17)
    project.flowfile(RING.format(ws=2, sl=16, layout="contiguous"))
    project.run()
    expected = reference(docs, world_size=2, seq_len=16, layout="contiguous", eos_id=2)
    for rank in range(2):
        shard = load_shard(str(project.root / "shards"), np.int64(rank))
        for name, array in shard.items():
            assert np.array(array).tolist() == expected[rank][name].tolist()


def test_the_tensors_transform_refuses_text_and_missing_values(project):
    pq.write_table(pa.table({"name": ["a"], "v": pa.array([None], pa.float64())}), project.root / "t.parquet")
    project.flowfile('''
        rule tensors:
            input: "t.parquet"
            output: "t_{c}.safetensors"
            params: columns=["{c}"]
            mlx: "tensors"
    ''')
    r = project.flow("run", "-k", "t_name.safetensors", "t_v.safetensors")
    assert r.returncode == 1
    assert "column 'name' is string" in r.stderr
    assert "column 'v' has 1 missing values" in r.stderr


def test_without_mlx_the_job_says_how_to_install_it(project, tmp_path):
    # An `mlx` package that cannot be imported, first on the path: as on a machine without MLX.
    shadow = tmp_path / "shadow" / "mlx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named mlx.core')\n")
    _tokens(project, DOCS)
    project.flowfile(RING.format(ws=2, sl=8, layout="zigzag"))
    r = project.flow("run", env={"PYTHONPATH": str(tmp_path / "shadow")})
    assert r.returncode == 1
    assert "MLX is not installed: `pip install 'mlx[cpu]'` on Linux, `pip install mlx` on macOS" in r.stderr
    assert "Traceback" not in r.stderr


def _files_made(root, *given: str) -> dict[str, bytes]:
    """Every file under ``root`` but ``.flow/``, flow's stderr and the ``given``
    ones, with its bytes: what the job wrote, whatever it named it."""
    made = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] != ".flow" and rel not in ("flow.err", *given) and path.is_file():
            try:
                made[rel] = path.read_bytes()
            except OSError:  # (renamed or removed meanwhile)
                pass
    return made


def test_a_kill_9_mid_write_leaves_nothing_taken_as_done_and_the_next_run_makes_it_whole(project, tmp_path_factory):
    lengths = [5000] * 1000  # 5 million tokens: about a second of packing and writing
    offsets = pa.array([0, *np.cumsum(lengths).tolist()], pa.int32())
    values = pa.array(np.arange(sum(lengths), dtype=np.int32) % 30000 + 3)
    pq.write_table(pa.table({"tokens": pa.ListArray.from_arrays(offsets, values)}), project.root / "tokens.parquet")
    project.flowfile(RING.format(ws=64, sl=128 * 64, layout="zigzag"))
    given = ("Flowfile", "tokens.parquet")
    proc = project.start("run")
    wait_for(lambda: any(_files_made(project.root, *given).values()), timeout=60,
             what="the job to start writing")
    kill_9_everything(project.root, proc)
    assert not project.exists("shards"), "a crash left a half-written output under its name"
    plan = project.run("-n").stdout.splitlines()
    assert plan == ["would run  shards: output shards is missing"], plan
    assert project.ran() == ["shards"]
    # The same files, byte for byte, as a run nothing interrupted; and nothing else left.
    whole = Project(tmp_path_factory.mktemp("whole"))
    for name in given:
        shutil.copyfile(project.root / name, whole.root / name)
    whole.run()
    expected = _files_made(whole.root, *given)
    assert len(expected) == 65  # 64 ranks and meta.json
    assert _files_made(project.root, *given) == expected
    assert project.run("-n").stdout == ""
