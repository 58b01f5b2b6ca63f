"""The MLX ring-attention transform against a numpy implementation of the
same layout, on 10 million tokens in documents of mixed length. Writes the
block "mlx" of docs/benchmarks.md.

    python benchmarks/ring_attention.py                     # 10,000,000 tokens, 5 runs
    python benchmarks/ring_attention.py --quick --out X.md  # 100,000 tokens, one run

Each measurement runs in a fresh process (``--one``): the transform from the
token column in memory to the four arrays of every rank, evaluated, and the
process's peak memory above what it held before the transform (its resident
set after reading the data; ``ru_maxrss`` is the whole process's peak).
The two implementations' outputs are compared element by element first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PARAMS = {"column": "tokens", "world_size": 8, "seq_len": 8192, "layout": "zigzag", "eos_id": 2, "pad_id": 0}


def make_tokens(path: Path, tokens: int) -> None:
    """Documents of mixed length (log-normal, 20 to 60,000 tokens) adding up to ``tokens``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    lengths = []
    while sum(lengths) < tokens:
        lengths.append(int(min(60_000, max(20, rng.lognormal(6.5, 1.2)))))
    lengths[-1] -= sum(lengths) - tokens
    values = rng.integers(3, 50_000, size=tokens, dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"tokens": column}), path)


def numpy_pack(docs, p) -> dict:
    """The same layout with numpy, vectorized: the reference to beat."""
    import numpy as np
    import pyarrow.compute as pc

    lengths = pc.fill_null(pc.list_value_length(docs), 0).to_numpy().astype(np.int64)
    values = pc.list_flatten(docs).to_numpy().astype(np.int32)
    eos = 1 if p.eos_id is not None else 0
    doc_len = lengths + eos
    n = int(doc_len.sum())
    num_seq = -(-n // p.seq_len)
    total = num_seq * p.seq_len
    doc_end = np.cumsum(doc_len)
    doc = np.repeat(np.arange(len(doc_len), dtype=np.int32), doc_len)
    stream = np.full(total, p.pad_id, np.int32)
    if eos:
        token_doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        stream[np.arange(len(values)) + token_doc] = values
        stream[doc_end - 1] = p.eos_id
    else:
        stream[: len(values)] = values
    doc = np.concatenate([doc, np.full(total - n, -1, np.int32)]).reshape(num_seq, p.seq_len)
    ids = stream.reshape(num_seq, p.seq_len)
    t = np.arange(p.seq_len)
    first = np.ones_like(doc, dtype=bool)
    first[:, 1:] = doc[:, 1:] != doc[:, :-1]
    real = doc >= 0
    segment = np.where(real, np.cumsum(first & real, axis=1), 0).astype(np.int32)
    position = np.where(real, t - np.maximum.accumulate(np.where(first, t, 0), axis=1), 0).astype(np.int32)
    labels = np.full_like(ids, -100)
    same = (doc[:, 1:] == doc[:, :-1]) & real[:, 1:]
    labels[:, :-1] = np.where(same, ids[:, 1:], -100)
    return {"input_ids": ids, "labels": labels, "position_ids": position, "segment_ids": segment}


def numpy_shard(a, rank: int, p):
    import numpy as np

    rows = a.shape[0]
    if p.layout == "contiguous":
        return a.reshape(rows, p.world_size, p.shard_len)[:, rank]
    chunks = a.reshape(rows, 2 * p.world_size, p.shard_len // 2)
    return np.concatenate([chunks[:, rank], chunks[:, 2 * p.world_size - 1 - rank]], axis=1)


def one(which: str, path: str) -> dict:
    """One measurement, in this process: seconds and peak memory above the start.
    Each rank's arrays are made, evaluated and let go in turn, as the rule
    does between writing one rank's file and the next."""
    import pyarrow.parquet as pq
    from flow.rules.mlx import Packed, ring_params

    p = ring_params(PARAMS)
    docs = pq.read_table(path, columns=["tokens"]).column("tokens").combine_chunks()
    if which == "mlx":
        import mlx.core as mx

        mx.eval(mx.zeros(1))  # (MLX's own start-up is not the transform)
    else:
        import numpy  # noqa: F401
    before = _reset_peak()
    started = time.perf_counter()
    if which == "mlx":
        for _rank, shard in Packed(docs, p).shards():
            del shard  # (as the rule does once the rank's file is written)
    else:
        arrays = numpy_pack(docs, p)
        for rank in range(p.world_size):
            shard = {k: numpy_shard(a, rank, p).copy() for k, a in arrays.items()}
        del shard
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_above_mb": _status_mb("VmHWM") - before}


def same_output(path: str) -> int:
    """Compare both implementations element by element; the number of tokens."""
    import numpy as np
    import pyarrow.parquet as pq
    from flow.rules.mlx import Packed, ring_params

    p = ring_params(PARAMS)
    docs = pq.read_table(path, columns=["tokens"]).column("tokens").combine_chunks()
    packed = Packed(docs, p)
    theirs = numpy_pack(docs, p)
    for r in range(p.world_size):
        for name, a in packed.shard(r).items():
            if not np.array_equal(np.array(a), numpy_shard(theirs[name], r, p)):
                raise SystemExit(f"MLX and numpy differ: {name}, rank {r}")
    return packed.num_tokens


def _reset_peak() -> float:
    """Start the process's peak resident size afresh (Linux: clear_refs 5); the size now."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    ap.add_argument("--workdir", default=str(REPO / "benchmarks" / ".work" / "ring"))
    ap.add_argument("--quick", action="store_true", help="100,000 tokens, one run: a smoke test")
    ap.add_argument("--one", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(*a.one)))
        return 0
    if a.quick:
        a.tokens, a.repeat = 100_000, 1
    path = Path(a.workdir) / f"tokens-{a.tokens}.parquet"
    if not path.exists():
        make_tokens(path, a.tokens)
    tokens = same_output(str(path))
    runs: dict[str, list[dict]] = {"mlx": [], "numpy": []}
    for _ in range(a.repeat):
        for which in runs:
            out = subprocess.run([sys.executable, __file__, "--one", which, str(path)],
                                 capture_output=True, text=True, check=True)
            runs[which].append(json.loads(out.stdout))
    seconds = {w: statistics.median(r["seconds"] for r in rs) for w, rs in runs.items()}
    peak = {w: statistics.median(r["peak_above_mb"] for r in rs) for w, rs in runs.items()}
    data_mb = tokens * 4 / 2**20  # the tokens as int32, as the shards hold them
    import mlx.core as mx

    body = "\n".join([
        "## Ring-attention shards with MLX (issue 6)",
        "",
        report.provenance("ring_attention.py", argv),
        "",
        f"{tokens:,} tokens (eos included) in documents of 20 to 60,000 tokens (log-normal), packed into sequences "
        f"of {PARAMS['seq_len']:,}, zigzag over {PARAMS['world_size']} ranks: the four arrays of every rank, "
        f"from the token column in memory. MLX {mx.__version__} on {mx.default_device()}; numpy is the same "
        "layout vectorized (`benchmarks/ring_attention.py`), and both give the same arrays element by element. "
        f"Medians of {a.repeat}, each in a fresh process. Memory is the peak resident size above the process's "
        f"size before the transform, against the token data: {data_mb:.0f} MB as int32.",
        "",
        "| | seconds | tokens/s | peak memory above start | x token data |",
        "|---|---|---|---|---|",
        *[f"| {w} | {seconds[w]:.3f} | {tokens / seconds[w] / 1e6:.1f} M | {peak[w]:.0f} MB | "
          f"{peak[w] / data_mb:.1f}x |" for w in runs],
        "",
        f"MLX / numpy speed: {seconds['numpy'] / seconds['mlx']:.2f}x (above 1: MLX is faster).",
    ])
    report.publish(Path(a.out), "mlx", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
