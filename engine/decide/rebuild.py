"""The rebuilder: does a job run, and why? (Dirtiness is decided here only.)

Verifying traces, as in "Build systems a la carte": a job's key is a content
hash of what it does and what it reads (FLOWFILE.md, "When a job runs
again"); it runs when an output is missing or not made by flow, when an
output changed since flow made it, or when the key differs from the one
recorded with its outputs. Because the key hashes input *contents*, a
dependency that ran again but wrote the same bytes does not make its
consumers run (early cutoff), and touching a file changes nothing.

Which differences count is the user's choice (``--rerun-triggers``, as
Snakemake's): ``TRIGGERS`` names them. A missing, unrecorded or forced
output always counts, and so does an input that another job of the
workflow made again: a job follows the jobs it depends on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xxhash

from ..graph.job import Job
from ..load.model import job_namespaces
from ..run.prepare import Preparer
from .hashing import Hasher
from .memo import KeyMemo
from .stamp import Stamp
from .state import State
from .triggers import TRIGGERS

_BY_KEY = object()  # (``_settled``: the key decides)


@dataclass(frozen=True)
class Reason:
    kind: str  # forced, missing, unrecorded, modified, input, code, params, outputs, upstream, temp
    detail: str
    files: tuple[str, ...] = ()  # what changed, one line each (changed inputs, ...), for --explain
    paths: tuple[str, ...] = ()  # the inputs (or, for upstream, the jobs) those lines name

    def __str__(self) -> str:
        return self.detail


class Rebuilder:
    def __init__(self, state: State, hasher: Hasher, preparer: Preparer,
                 forceall: bool = False, forcerules: set[str] | None = None,
                 targets: set[str] | None = None, triggers: frozenset[str] = frozenset(TRIGGERS),
                 memo: KeyMemo | None = None, stamp: Stamp | None = None):
        self.state = state
        self.triggers = triggers  # which differences make a job run (--rerun-triggers)
        self.hasher = hasher
        self.preparer = preparer  # what the job runs: its action's signature goes into the key
        self.forceall = forceall
        self.forcerules = forcerules or set()
        self.targets = targets or set()
        self.memo = memo  # keys worked out before (None: work every one out)
        self.stamp = stamp  # vouches for jobs none of whose files changed (None: decide every one)
        self.vouched: set[str] = set()  # the jobs it vouched for

    # the key ----------------------------------------------------------------------

    def key(self, job: Job, recorded_hashes: bool = True) -> tuple[str, dict]:
        """The job's key and its parts. For an input a temp() output that flow
        deleted, the hash recorded when it was made stands in."""
        return self._key(job, self._input_digests(job, recorded_hashes))

    def _input_digests(self, job: Job, recorded_hashes: bool = True) -> list[str]:
        """What the key holds of each input: its hash, "missing" or "ancient"."""
        digests: list[str] = []
        ancient = job.rule.ancient_inputs
        digest_of, recorded = self.hasher.digest, self.state.outputs
        for i, path in enumerate(job.inputs):
            if ancient and "ancient" in job.input_flags(i):
                digests.append("ancient")
                continue
            digest = digest_of(path)
            if digest is None and recorded_hashes:
                rec = recorded.get(path)
                digest = rec.hash if rec is not None and rec.temp else None
            digests.append(digest or "missing")
        return digests

    def _key(self, job: Job, digests: list[str], check: bytes | None = None) -> tuple[str, dict]:
        """Work the key out (and teach it to the memo)."""
        prepared = self.preparer.prepared(job)
        action = _h(prepared.signature if prepared else "")
        if job.params:
            _, params_ns = job_namespaces(job.rule, job.wildcards, job.params)
            params = _h(json.dumps(_plain(dict(params_ns.items())), sort_keys=True, default=repr))
        else:
            params = _NO_PARAMS
        inputs = [[path, digest] for path, digest in zip(job.inputs, digests, strict=True)]
        parts = {"action": action, "params": params, "inputs": inputs, "outputs": job.outputs}
        if job.rule.schema:  # a changed contract must be checked: the job runs again
            parts["schema"] = _h(json.dumps(job.rule.schema, sort_keys=True))
        key = _h(json.dumps(parts, separators=(",", ":")))
        if self.memo is not None and self.memo.active:
            self.memo.learn(job.id, check or self.memo.check(job, digests), key,
                            prepared.sources if prepared else ())
        return key, parts

    def _remembered(self, job: Job, digests: list[str]) -> tuple[str, dict | None]:
        """The key (from the memo if it knows it; then without its parts)."""
        if self.memo is None or not self.memo.active:
            return self._key(job, digests)
        check = self.memo.check(job, digests)
        key = self.memo.key(job.id, check, self.hasher.digest)
        return (key, None) if key is not None else self._key(job, digests, check)

    # the decision ------------------------------------------------------------------

    def reason(self, job: Job, keyed: bool = True) -> tuple[Reason | None, str, dict]:
        """Why ``job`` must run (None if it is up to date), with its key and
        parts (worked out in full for a job that runs, whose record keeps
        them). Call once every dependency of the job is done. A caller that
        records nothing (a dry run) passes ``keyed=False``: a job whose files
        alone say it runs (an output missing, ...) then has no key worked out
        (its inputs are still read, so that one flow cannot read is refused
        as a run would), and ``""`` and ``{}`` come back instead."""
        stamp = self.stamp
        if stamp is not None and not self._forced(job) and stamp.vouches(job):
            self.vouched.add(job.id)
            return None, "", {}
        settled = self._settled(job)
        if settled is None:
            return None, "", {}
        if settled is _BY_KEY or keyed:
            reason, key, recorded = self._keyed(job, settled)
        else:  # (a dry run: its files say it runs; its inputs are read all the same, see above)
            self._input_digests(job)
            reason, key, recorded = settled, "", {}
        if reason is not None and stamp is not None:
            stamp.will_change(job.written)  # (its logs and benchmark file too: another job may read them)
        return reason, key, recorded

    def _keyed(self, job: Job, settled: Reason | object) -> tuple[Reason | None, str, dict]:
        """The reason, key and parts of a job whose key is needed: to decide
        (``settled`` is ``_BY_KEY``) or to record it after it runs."""
        digests = self._input_digests(job)
        worked = list(self._remembered(job, digests))  # [key, parts]; parts worked out when asked for

        def parts() -> dict:
            if worked[1] is None:
                worked[:] = self._key(job, digests)
            return worked[1]

        reason = self._by_key(job, worked[0], parts) if settled is _BY_KEY else settled
        recorded = parts() if reason is not None and job.outputs else {}  # (and the key worked out with them)
        return reason, worked[0], recorded

    def _forced(self, job: Job) -> bool:
        return self.forceall or job.rule.name in self.forcerules

    def _settled(self, job: Job) -> Reason | None | object:
        """What the job's files alone say: a reason it runs, None (up to
        date), or ``_BY_KEY`` when its key, compared with the recorded one,
        decides."""
        if self._forced(job):
            return Reason("forced", "forced by -F/-R")
        for out in job.outputs:
            rec = self.state.outputs.get(out)
            digest = self.hasher.digest(out)
            if digest is None:
                if rec is not None and rec.temp and out not in self.targets:
                    continue  # deleted after use; see needs_temp_inputs
                return Reason("missing", f"output {out} is missing")
            if rec is None:
                return Reason("unrecorded", f"output {out} exists but was not made by flow")
            if rec.hash != digest and "content" in self.triggers:
                return Reason("modified", f"output {out} was modified outside flow")
        missing_log = next((log for log in job.logs if not os.path.lexists(log)), None)
        if missing_log is not None:  # a log is an output: another rule may read it
            return Reason("missing", f"log {missing_log} is missing")
        if not job.outputs:
            return self._gather_reason(job)
        return _BY_KEY

    def _by_key(self, job: Job, key: str, parts_of: Callable[[], dict]) -> Reason | None:
        """Why a job whose outputs are as flow made them runs: its key is not
        the recorded one (and the difference's trigger counts)."""
        recorded = {self.state.outputs[o].key for o in job.outputs}
        if recorded != {key}:
            return self._explain(job, parts_of())
        return None

    @staticmethod
    def _gather_reason(job: Job) -> Reason | None:
        # A rule without outputs (e.g. `all`) only gathers; it has nothing to run.
        if job.rule.action is not None:
            return Reason("missing", "the rule has no outputs, so it always runs")
        return None

    def _explain(self, job: Job, parts: dict) -> Reason | None:
        """Why the key differs from the one recorded: the first difference
        whose trigger counts (None if none does, and the job stays as it is)."""
        made_by = sorted({self.state.outputs[o].job for o in job.outputs} - {job.id})
        if made_by:  # (another rule's job, or this rule's with other wildcards, made them last)
            return Reason("outputs", f"its outputs were last made by another job ({made_by[0]})")
        old = self.state.job_parts(job.id)
        if old is None:
            return Reason("outputs", "its outputs were recorded for another job")
        for trigger, reason in self._differences(job, old, parts):
            if trigger is None or trigger in self.triggers:
                return reason
        return None

    def _differences(self, job: Job, old: dict, parts: dict):
        """Each difference between the recorded parts and these, with the
        trigger it belongs to (None: it always counts), most telling first."""
        if old.get("action") != parts["action"]:
            yield "code", self._code_reason(job)
        if old.get("params") != parts["params"]:
            yield "params", Reason("params", "params changed")
        if old.get("schema") != parts.get("schema"):
            yield "code", Reason("code", "its schema: changed")
        old_inputs = {p: h for p, h in old.get("inputs", [])}
        new_inputs = {p: h for p, h in parts["inputs"]}
        changed = [p for p in new_inputs if p in old_inputs and old_inputs[p] != new_inputs[p]]
        added = sorted(set(new_inputs) - set(old_inputs))
        removed = sorted(set(old_inputs) - set(new_inputs))
        files = tuple([f"{p} changed" for p in changed] + [f"{p} was added" for p in added]
                      + [f"{p} was removed" for p in removed])
        paths = tuple(changed + added + removed)
        if changed:
            made = {p for d in job.deps for p in d.outputs}
            remade = [p for p in changed if p in made]
            if remade:  # another job made it again: this one follows, whatever the triggers
                yield None, _changed_reason(remade, files, paths)
            yield "content", _changed_reason(changed, files, paths)
        if added or removed:
            what = f"input {added[0]} was added" if added else f"input {removed[0]} was removed"
            yield "input", Reason("input", what, files, paths)
        if old.get("outputs") != parts["outputs"]:
            yield None, Reason("outputs", "its output paths changed")
        elif not (changed or added or removed) and old.get("inputs") != parts["inputs"]:
            yield "input", Reason("input", "its inputs changed")  # (their order, or one listed twice)

    @staticmethod
    def _code_reason(job: Job) -> Reason:
        what = job.rule.action.what if job.rule.action else "action"
        reads = job.rule.action.reads if job.rule.action else ()  # a run: block's key holds the values it reads
        if reads:
            shown = ", ".join(reads[:3]) + (f" and {len(reads) - 3} more" if len(reads) > 3 else "")
            return Reason("code", f"the {what} or a value it reads ({shown}) changed")
        return Reason("code", f"the {what} changed")

    def decided_sources(self, job: Job) -> tuple[str, ...] | None:
        """The files ``job``'s action reads (its script), as this run decided
        with them, for a stamp (None: not known, or changed during the run)."""
        if job.rule.action is None:
            return ()
        if job.id in self.vouched:
            return self.stamp.sources.get(job.id, ())
        if self.memo is None or job.id not in self.memo.entries:
            return None
        read = self.memo.sources.get(job.id, ())
        try:
            if any(self.hasher.digest(path) != digest for path, digest in read):
                return None
        except OSError:
            return None
        return tuple(path for path, _ in read)

    def missing_temp_inputs(self, job: Job) -> list[str]:
        """Inputs that flow deleted as temp() and that a running job needs back."""
        missing = []
        for path in job.inputs:
            rec = self.state.outputs.get(path)
            if rec is not None and rec.temp and not os.path.exists(path):
                missing.append(path)
        return missing


def _changed_reason(changed: list[str], files: tuple[str, ...], paths: tuple[str, ...]) -> Reason:
    more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
    return Reason("input", f"input {changed[0]}{more} changed", files, paths)


def _h(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


_NO_PARAMS = _h("{}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
