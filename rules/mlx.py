"""``mlx:`` actions: built-in MLX transforms configured by ``params:``.

``ring_attention`` packs a parquet column of token lists (one row per
document) into sequences and shards them for context-parallel training:

- documents, in row order (each followed by ``eos_id`` if given), form one
  stream, cut into sequences of ``seq_len`` tokens; the last is padded;
- per sequence, *before* sharding: ``segment_ids`` number the document pieces
  1, 2, ... (a document cut by a sequence boundary goes on as a new piece;
  padding is 0), ``position_ids`` count from 0 within each piece (0 on
  padding), ``labels`` are the next token of the same piece, else -100;
- ``zigzag`` gives rank r chunks r and 2W-1-r of 2W equal chunks (which
  balances causal attention's work), ``contiguous`` the r-th of W chunks.

The output is a directory with ``rankNN.safetensors`` per rank (arrays of
shape [num_sequences, seq_len // world_size]) and ``meta.json``, written to a
temporary directory beside it and renamed. ``tensors`` writes chosen columns
of a parquet file as one safetensors file of MLX arrays.

Params are checked when the job is prepared, before any data is read; MLX
is imported only in the worker that runs the job.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
from dataclasses import dataclass

from .base import ActionBase, ActionError, JobContext, JobFailed, Prepared, sync_file, temp_beside

LAYOUTS = ("zigzag", "contiguous")
TOKEN_DTYPES = ("int32", "int64", "int16", "uint16", "uint32")
TENSOR_DTYPES = ("float32", "float16", "bfloat16", "int8", "int16", "int32", "int64",
                 "uint8", "uint16", "uint32", "uint64", "bool")
_LABEL_DTYPES = {"int16": "int16", "int32": "int32", "int64": "int64", "uint16": "int32", "uint32": "int64"}
IGNORE_INDEX = -100
FORMAT_VERSION = 1  # of what the transforms write: a change makes their jobs run again
# MLX keeps freed buffers for reuse; left unbounded it would keep every
# block's and rank's scratch. A few blocks' worth keeps reuse without that.
_CACHE_BYTES = 32 << 20
_INSTALL = ("MLX is not installed: `pip install 'mlx[cpu]'` on Linux, `pip install mlx` on macOS "
            "(flow's own install brings it)")


@dataclass(frozen=True)
class RingParams:
    column: str
    world_size: int
    seq_len: int
    layout: str = "zigzag"
    pad_id: int = 0
    eos_id: int | None = None
    dtype: str = "int32"

    @property
    def shard_len(self) -> int:
        return self.seq_len // self.world_size


@dataclass(frozen=True)
class TensorParams:
    columns: tuple[str, ...]
    dtype: str | None = None


class MLXAction(ActionBase):
    """A built-in transform, named by the directive, run with MLX in a worker."""

    kind = "mlx"
    what = "transform"

    def __init__(self, name: str):
        if name not in TRANSFORMS:
            raise ActionError(f"unknown mlx: transform {name!r} (known: {', '.join(sorted(TRANSFORMS))})")
        self.name = name

    def check_outputs(self, outputs: list[tuple[str, frozenset[str]]]) -> None:
        if len(outputs) != 1:
            raise ActionError(f"mlx: {self.name!r} writes exactly one output, this rule has {len(outputs)}")
        path, flags = outputs[0]
        if self.name == "ring_attention" and "directory" not in flags:
            raise ActionError(f"mlx: 'ring_attention' writes a directory of shards: "
                              f"declare the output as directory({path!r})")
        if self.name == "tensors" and not path.endswith(".safetensors"):
            raise ActionError(f"mlx: 'tensors' writes one .safetensors file, not {path}")

    def prepare(self, ctx: JobContext) -> Prepared:
        params = TRANSFORMS[self.name][0](dict(ctx.params.items()))
        parquet = [p for p in ctx.input if p.lower().endswith((".parquet", ".pq"))]
        if len(parquet) != 1:
            raise ActionError(f"mlx: {self.name!r} reads one parquet input, this job has "
                              f"{len(parquet)} among {len(ctx.input)} inputs")
        # (the params are in the job's key already: changing one says "params changed")
        return self.prepared(f"mlx {self.name} v{FORMAT_VERSION}", (self.name, params, parquet[0]),
                             f"mlx {self.name} {parquet[0]} -> {ctx.output[0]}")

    @staticmethod
    def execute(payload: tuple, ctx: JobContext) -> None:
        run_transform(payload, ctx)

    @staticmethod
    def warm() -> None:
        """Import MLX in a worker before its first job."""
        try:
            import mlx.core  # noqa: F401
        except ImportError:  # the job itself says how to install it
            pass


# params ---------------------------------------------------------------------------------------


def _int(params: dict, name: str, default: int | None = None, low: int | None = None,
         required: bool = False) -> int | None:
    """A whole-number param; a missing one (or None, as config.get gives) is the default."""
    value = params.get(name)
    if value is None:
        if required:
            raise ActionError(f"params: {name}= is required (a whole number)")
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ActionError(f"params: {name} must be a whole number, not {value!r}")
    if low is not None and value < low:
        raise ActionError(f"params: {name} must be at least {low}, not {value}")
    return value


def _unknown(params: dict, known: tuple[str, ...]) -> None:
    extra = [k for k in params if k not in known]
    if extra:
        raise ActionError(f"params: unknown {', '.join(extra)} (known: {', '.join(known)})")


def ring_params(params: dict) -> RingParams:
    """The validated params of ``ring_attention``; refused with what to write instead."""
    _unknown(params, ("column", "world_size", "seq_len", "layout", "pad_id", "eos_id", "dtype"))
    column = params.get("column")
    if column is None:
        raise ActionError("params: column= (the name of the list<int> token column) is required")
    if not isinstance(column, str) or not column:
        raise ActionError(f"params: column must be a column name (a string), not {column!r}")
    world_size = _int(params, "world_size", low=1, required=True)
    seq_len = _int(params, "seq_len", low=1, required=True)
    layout = params.get("layout") or "zigzag"
    if layout not in LAYOUTS:
        raise ActionError(f"params: layout must be \"zigzag\" or \"contiguous\", not {layout!r}")
    dtype = params.get("dtype") or "int32"
    if dtype not in TOKEN_DTYPES:
        raise ActionError(f"params: dtype must be one of {', '.join(TOKEN_DTYPES)}, not {dtype!r}")
    pad_id = _int(params, "pad_id", 0, low=0)
    eos_id = _int(params, "eos_id", None, low=0)
    for name, value in (("pad_id", pad_id), ("eos_id", eos_id)):
        if value is not None and value > _max_of(dtype):
            raise ActionError(f"params: {name}={value} does not fit dtype {dtype} (at most {_max_of(dtype)}); "
                              f"choose a wider dtype, e.g. dtype=\"int64\"")
    chunks = 2 * world_size if layout == "zigzag" else world_size
    if seq_len % chunks:
        below, above = seq_len // chunks * chunks, (seq_len // chunks + 1) * chunks
        nearest = f"{below} or {above}" if below else str(above)
        rule = "2 * world_size" if layout == "zigzag" else "world_size"
        raise ActionError(f"params: seq_len={seq_len} must be divisible by {rule} = {chunks} "
                          f"(world_size={world_size}, layout {layout}); the nearest valid seq_len: {nearest}")
    return RingParams(column, world_size, seq_len, layout, pad_id, eos_id, dtype)


def tensor_params(params: dict) -> TensorParams:
    _unknown(params, ("columns", "dtype"))
    columns = params.get("columns")
    if isinstance(columns, str):
        columns = [columns]
    if not isinstance(columns, (list, tuple)) or not columns or not all(isinstance(c, str) for c in columns):
        raise ActionError('params: columns= is required: a list of column names, e.g. columns=["x", "y"]')
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ActionError(f"params: columns names {', '.join(repeated)} more than once")
    dtype = params.get("dtype")
    if dtype is not None and dtype not in TENSOR_DTYPES:
        raise ActionError(f"params: dtype must be one of {', '.join(TENSOR_DTYPES)}, not {dtype!r}")
    return TensorParams(tuple(columns), dtype)


# running --------------------------------------------------------------------------------------


def run_transform(payload: tuple, ctx: JobContext) -> None:
    """Run one job's transform in this process (the worker)."""
    name, params, source = payload
    try:
        import mlx.core  # noqa: F401
    except ImportError:
        raise JobFailed(_INSTALL) from None
    try:
        TRANSFORMS[name][1](params, source, ctx.output[0])
    except OSError as e:
        raise JobFailed(f"{e.filename or ctx.output[0]}: {e.strerror}") from None
    except (RuntimeError, ValueError) as e:  # MLX's own errors (out of memory, ...)
        raise JobFailed(f"MLX: {e}") from None


def _read_column(source: str, column: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(source)
    except (pa.ArrowException, OSError) as e:
        raise JobFailed(f"cannot read input {source}: {str(e).strip()}") from None
    if column not in schema.names:
        raise JobFailed(f"input {source} has no column {column!r} (it has: {', '.join(schema.names)})")
    return pq.read_table(source, columns=[column]).column(column)


def ring_attention(p: RingParams, source: str, out: str) -> None:
    import pyarrow as pa

    docs = _read_column(source, p.column)  # (kept in its row groups' chunks: no whole copy)
    t = docs.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) \
            or not pa.types.is_integer(t.value_type):
        raise JobFailed(f"column {p.column!r} of {source} is {t}, not a list of integer token ids")
    packed = Packed(docs, p)
    num_documents = packed.num_documents
    del docs
    meta = {
        "world_size": p.world_size, "seq_len": p.seq_len, "layout": p.layout,
        "num_sequences": packed.num_sequences, "num_tokens": packed.num_tokens,
        "num_documents": num_documents, "pad_id": p.pad_id, "eos_id": p.eos_id, "dtype": p.dtype,
        "labels_dtype": _LABEL_DTYPES[p.dtype], "ignore_index": IGNORE_INDEX, "shard_len": p.shard_len,
        "column": p.column, "source": source, "source_hash": _file_hash(source),
    }
    with _atomic_directory(out) as tmp:
        for rank, shard in packed.shards():
            _save(os.path.join(tmp, f"rank{rank:02d}.safetensors"), shard,
                  {"rank": str(rank), "world_size": str(p.world_size), "layout": p.layout})
            del shard  # (before the next rank's are made)
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        sync_file(os.path.join(tmp, "meta.json"))


class Packed:
    """The documents packed into sequences, kept block by block as the token
    ids and the places where a piece starts; each rank's shard is computed
    from them on demand.

    Every quantity a rank needs is local to its rows, given two numbers per
    chunk of a row (how many pieces started before the chunk, and where the
    last one started): so a rank's four arrays are made without ever holding
    the four arrays of every rank, which together are four times the tokens.
    A null row is no document; an empty list is one (with ``eos_id``, a lone
    eos).
    """

    BLOCK_TOKENS = 1 << 19
    INT32_POSITIONS = 2**31 - 1  # more stream positions than this are counted in int64

    def __init__(self, docs, p: RingParams):
        import bisect

        import mlx.core as mx
        import pyarrow as pa
        import pyarrow.compute as pc

        self.p = p
        self.dtype = getattr(mx, p.dtype)
        self.label_dtype = getattr(mx, _LABEL_DTYPES[p.dtype])
        self.chunks = 2 * p.world_size if p.layout == "zigzag" else p.world_size
        self.chunk = p.seq_len // self.chunks
        values = pc.list_flatten(docs)  # (a null row has no tokens)
        if values.null_count:
            raise JobFailed(f"column {p.column!r} has {values.null_count} missing token ids inside its lists; "
                            "drop or fill them first")
        if len(values):
            low, high = pc.min(values).as_py(), pc.max(values).as_py()
            if low < 0 or high > _max_of(p.dtype):
                raise JobFailed(f"token ids from {low} to {high} do not fit dtype {p.dtype}: "
                                "choose a wider one, e.g. dtype=\"int64\"")
        self.values, self.arrow_dtype = values, getattr(pa, p.dtype)()  # read a block's range at a time
        valid = pc.is_valid(docs)
        self.num_documents = pc.sum(valid).as_py() or 0
        lengths = pc.fill_null(pc.list_value_length(docs), 0).cast(pa.int64())
        eos = 1 if p.eos_id is not None else 0
        if eos:
            lengths = pc.add(lengths, pc.cast(valid, pa.int64()))
        # Where each document ends in the stream (a Python list: blocks find
        # their documents in it by bisection) and, with eos_id, whether it
        # has an eos at its end (not a null row).
        doc_len = _from_arrow(_combined(lengths)) if len(lengths) else mx.zeros(0, mx.int64)
        doc_end = mx.cumsum(doc_len) if len(lengths) else mx.zeros(0, mx.int64)
        self.doc_end = doc_end.tolist()
        self.num_tokens = self.doc_end[-1] if self.doc_end else 0
        self.num_sequences = -(-self.num_tokens // p.seq_len)
        self.index = mx.int32 if self.num_sequences * p.seq_len < self.INT32_POSITIONS else mx.int64
        self.doc_len, self.doc_end_mx = doc_len.astype(self.index), doc_end.astype(self.index)
        self.eos_before = None
        if eos:  # eos marks before each document's end: the documents before it that are not null
            has_eos = _from_arrow(_combined(valid.cast(pa.int64()))) if len(lengths) else mx.zeros(0, mx.int64)
            self.eos_before = [0, *mx.cumsum(has_eos).tolist()]
            self.has_eos = has_eos.astype(mx.bool_)
        rows = max(1, self.BLOCK_TOKENS // p.seq_len)
        self.blocks = []
        previous = mx.set_cache_limit(_CACHE_BYTES)
        try:
            for first in range(0, self.num_sequences, rows):  # a block at a time bounds the scratch memory
                a = first * p.seq_len
                size = min(rows, self.num_sequences - first) * p.seq_len
                d0 = bisect.bisect_right(self.doc_end, a)  # the documents in [a, a + size)
                d1 = min(len(self.doc_end), bisect.bisect_left(self.doc_end, a + size) + 1)
                block = self._block(a, size, d0, d1)
                mx.eval(*block[:4])
                self.blocks.append(block)
        finally:
            mx.set_cache_limit(previous)
        del self.values

    def _tokens(self, first: int, count: int):
        """Tokens ``first .. first+count`` (fewer at the end) as MLX values of the token dtype."""
        import mlx.core as mx

        part = self.values.slice(first, count)
        return _from_arrow(_combined(part.cast(self.arrow_dtype))) if len(part) else mx.zeros(1, self.dtype)

    def _block(self, a: int, size: int, d0: int, d1: int) -> tuple:
        """Positions ``a .. a+size`` (whole rows) as token ids and piece starts,
        with each chunk's count of earlier pieces and position of the last
        start; documents ``d0 .. d1`` are the ones that reach into it."""
        import mlx.core as mx

        p, rows = self.p, size // self.p.seq_len
        pos = mx.arange(a, a + size, dtype=self.index)
        doc_len, doc_end = self.doc_len[d0:d1], self.doc_end_mx[d0:d1]
        doc_start = _marks(mx.where(doc_len > 0, doc_end - doc_len, -1) - a, size) > 0
        if self.eos_before is not None:
            is_eos = _marks(mx.where(self.has_eos[d0:d1], doc_end - 1, -1) - a, size) > 0
            # The block's tokens are one run of the token column, from the
            # first one at or after its start (each eos before it shifts the run).
            tokens = self._tokens(a - self.eos_before[d0], size)
            source = mx.cumsum((~is_eos).astype(self.index)) - 1
            ids = mx.where(is_eos, mx.array(p.eos_id, self.dtype), tokens[mx.clip(source, 0, tokens.size - 1)])
        else:
            tokens = self._tokens(a, size)
            ids = tokens[mx.clip(pos - a, 0, tokens.size - 1)]
        real = pos < self.num_tokens
        ids = mx.where(real, ids, mx.array(p.pad_id, self.dtype)).reshape(rows, p.seq_len)
        col = mx.arange(p.seq_len)
        start = (doc_start.reshape(rows, p.seq_len) | (col == 0)) & real.reshape(rows, p.seq_len)
        by_chunk = start.reshape(rows, self.chunks, self.chunk)
        counts = mx.cumsum(by_chunk.astype(mx.int32).sum(axis=2), axis=1)
        before = mx.concatenate([mx.zeros((rows, 1), mx.int32), counts[:, :-1]], axis=1)
        last = mx.cummax(mx.where(by_chunk, col.reshape(self.chunks, self.chunk), -1).max(axis=2), axis=1)
        last_before = mx.concatenate([mx.full((rows, 1), -1, mx.int32), last[:, :-1].astype(mx.int32)], axis=1)
        return ids, start, before, last_before, a

    def shards(self):
        """(rank, its arrays) for every rank in turn; each is let go before the
        next is made, and MLX keeps little freed memory meanwhile (its cache
        would hold on to every rank's scratch)."""
        import mlx.core as mx

        previous = mx.set_cache_limit(_CACHE_BYTES)
        try:
            for rank in range(self.p.world_size):
                shard = self.shard(rank)
                yield rank, shard
                del shard
        finally:
            mx.set_cache_limit(previous)

    def shard(self, rank: int) -> dict:
        """Rank ``rank``'s input_ids, labels, position_ids, segment_ids:
        [num_sequences, seq_len // world_size] each."""
        import mlx.core as mx

        p = self.p
        owned = [rank, 2 * p.world_size - 1 - rank] if p.layout == "zigzag" else [rank]
        parts: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": [], "segment_ids": []}
        for ids, start, before, last_before, a in self.blocks:
            rows = ids.shape[0]
            row_pos = a + mx.arange(rows, dtype=self.index).reshape(rows, 1) * p.seq_len
            pieces: dict[str, list] = {name: [] for name in parts}
            for k in owned:
                lo, hi = k * self.chunk, (k + 1) * self.chunk
                col = mx.arange(lo, hi, dtype=mx.int32)
                real = (row_pos + col) < self.num_tokens
                s = start[:, lo:hi]
                segment = before[:, k:k + 1] + mx.cumsum(s.astype(mx.int32), axis=1)
                last = mx.maximum(last_before[:, k:k + 1], mx.cummax(mx.where(s, col, -1), axis=1))
                # The next token is in the same piece if it is real and starts none;
                # the last token of a row has its next one in the next sequence.
                nxt = min(hi + 1, p.seq_len)
                next_ids, next_start = ids[:, lo + 1:nxt], start[:, lo + 1:nxt]
                same = ((row_pos + col[: nxt - lo - 1] + 1) < self.num_tokens) & ~next_start
                if nxt - lo - 1 < hi - lo:
                    next_ids = mx.concatenate([next_ids, mx.zeros((rows, 1), self.dtype)], axis=1)
                    same = mx.concatenate([same, mx.zeros((rows, 1), mx.bool_)], axis=1)
                pieces["input_ids"].append(ids[:, lo:hi])
                pieces["labels"].append(mx.where(same, next_ids.astype(self.label_dtype),
                                                 mx.array(IGNORE_INDEX, self.label_dtype)))
                pieces["position_ids"].append(mx.where(real, col - last, 0).astype(mx.int32))
                pieces["segment_ids"].append(mx.where(real, segment, 0).astype(mx.int32))
            for name, ps in pieces.items():
                parts[name].append(mx.concatenate(ps, axis=1) if len(ps) > 1 else ps[0])
        shard = {}
        for name, ps in parts.items():
            if ps:
                shard[name] = mx.concatenate(ps, axis=0) if len(ps) > 1 else ps[0]
            else:
                dtype = {"input_ids": self.dtype, "labels": self.label_dtype}.get(name, mx.int32)
                shard[name] = mx.zeros((0, p.shard_len), dtype)
        for array in shard.values():  # one array at a time: only its pieces exist meanwhile
            mx.eval(array)
        return shard


def _combined(array):
    """One contiguous Arrow array (a column read from parquet comes in chunks)."""
    return array.combine_chunks() if hasattr(array, "combine_chunks") else array


def _marks(positions, size: int):
    """How many of ``positions`` fall on each of ``0 .. size-1`` (others ignored)."""
    import mlx.core as mx

    inside = (positions >= 0) & (positions < size)
    return mx.zeros(size + 1, mx.int32).at[mx.where(inside, positions, size)].add(1)[:size]


def _max_of(dtype: str) -> int:
    bits = int("".join(ch for ch in dtype if ch.isdigit()))
    return 2**bits - 1 if dtype.startswith("u") else 2 ** (bits - 1) - 1


def tensors(p: TensorParams, source: str, out: str) -> None:
    """Columns of a parquet file as MLX arrays in one safetensors file, laid
    out by the column's type (never by its values): numbers and booleans as
    [rows], fixed-size lists as [rows, size], other lists as their values
    ([total]) plus ``NAME.offsets`` ([rows + 1]). float64 becomes float32:
    MLX computes in float32 and writes no float64 to safetensors."""
    import mlx.core as mx
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(source)
    except (pa.ArrowException, OSError) as e:
        raise JobFailed(f"cannot read input {source}: {str(e).strip()}") from None
    missing = [c for c in p.columns if c not in schema.names]
    if missing:
        raise JobFailed(f"input {source} has no column {', '.join(map(repr, missing))} "
                        f"(it has: {', '.join(schema.names)})")
    table = pq.read_table(source, columns=list(p.columns))
    arrays, meta = {}, {"columns": ",".join(p.columns), "num_rows": str(table.num_rows),
                        "source_hash": _file_hash(source)}
    for name in p.columns:
        col = _combined(table.column(name))
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            values, shape = col, None
        elif pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
            if not (pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)):
                raise JobFailed(f"column {name!r} is {t}: only lists of numbers become tensors")
            values = pc.list_flatten(col)
            shape = (len(col), t.list_size) if pa.types.is_fixed_size_list(t) else None
            if shape is None:
                lengths = pc.fill_null(pc.list_value_length(col), 0).cast(pa.int64())
                ends = _from_arrow(pc.cumulative_sum(lengths)) if len(col) else mx.zeros(0, mx.int64)
                arrays[f"{name}.offsets"] = mx.concatenate([mx.zeros(1, mx.int64), ends])
        else:
            raise JobFailed(f"column {name!r} is {t}: only numbers, booleans and lists of numbers become tensors")
        missing = col.null_count + (values.null_count if values is not col else 0)
        if missing:
            raise JobFailed(f"column {name!r} has {missing} missing values, which a "
                            "tensor cannot hold; fill or drop them first (e.g. with coalesce() in a duckdb: rule)")
        array = _mx(values, p.dtype, name)
        arrays[name] = array.reshape(*shape) if shape else array
    # (MLX adds .safetensors to a name that does not end with it)
    tmp = os.path.join(os.path.dirname(out), f".flow-tmp.{os.path.basename(out)}")
    try:
        _save(tmp, arrays, meta)
        os.replace(tmp, out)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _mx(values, dtype: str | None, name: str):
    """An Arrow column's values as an MLX array, of ``dtype`` if given: a value
    the dtype cannot hold fails the job instead of wrapping around."""
    import mlx.core as mx
    import pyarrow as pa

    if dtype is not None and dtype not in ("bfloat16", "bool"):
        try:
            values = values.cast(getattr(pa, dtype)(), safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise JobFailed(f"column {name!r} does not fit dtype {dtype}: {str(e).strip()}") from None
    if pa.types.is_boolean(values.type):  # (bits in Arrow, bytes in MLX)
        array = _from_arrow(values.cast(pa.uint8())).astype(mx.bool_)
    else:
        array = _from_arrow(values)
    if dtype == "bool":
        return array.astype(mx.bool_)
    return array.astype(getattr(mx, dtype)) if dtype else array


def _from_arrow(array):
    """An MLX array of an Arrow array's values (no nulls), through DLPack."""
    import warnings

    import mlx.core as mx

    with warnings.catch_warnings():  # MLX asks without a DLPack version; Arrow warns of it
        warnings.simplefilter("ignore", DeprecationWarning)
        return mx.array(array)


def _save(path: str, arrays: dict, metadata: dict) -> None:
    import mlx.core as mx

    mx.save_safetensors(path, arrays, metadata={k: str(v) for k, v in metadata.items()})
    sync_file(path)


def _file_hash(path: str) -> str:
    """The input's content hash (xxh3-128, as flow's own records)."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class _atomic_directory:
    """A temporary directory beside ``out``, renamed to ``out`` when all went well."""

    def __init__(self, out: str):
        self.out, self.tmp = out.rstrip("/"), temp_beside(out.rstrip("/"))

    def __enter__(self) -> str:
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        return self.tmp

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            if os.path.isdir(self.out):
                shutil.rmtree(self.out)
            os.replace(self.tmp, self.out)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def load_shard(path: str, rank: int) -> dict:
    """Rank ``rank``'s arrays (input_ids, labels, position_ids, segment_ids),
    as MLX arrays, from a directory ``ring_attention`` wrote."""
    import mlx.core as mx

    try:
        with open(os.path.join(path, "meta.json")) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is not a directory of ring-attention shards (no meta.json)") from None
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or not 0 <= rank < meta["world_size"]:
        raise ValueError(f"rank {rank!r}: the shards in {path} are for ranks 0 to {meta['world_size'] - 1}")
    return mx.load(os.path.join(path, f"rank{int(rank):02d}.safetensors"))


TRANSFORMS = {
    "ring_attention": (ring_params, ring_attention),
    "tensors": (tensor_params, tensors),
}
