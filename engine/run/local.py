"""The local executor: a process pool on this machine.

``shell:`` jobs run as ``bash -euo pipefail -c`` in their own process group
(so that cancelling a job stops everything it started); Python jobs run in
a pool of long-lived worker processes (``rules.worker``), which import
DuckDB, MLX or pyarrow once for many jobs.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

from flow.rules.worker import read_message, write_message

from . import processes
from .executor import Completion, Task
from .launch import ShellLauncher
from .processes import Usage

KILL_GRACE_SECONDS = 3.0


class _HeldSignals:
    """Ctrl-C, SIGTERM and SIGHUP wait while a job is being started: one
    arriving between the fork and the job's registration would stop flow
    without stopping that job, which would run on unseen (in its own session,
    holding the run lock). Installed once per executor, so holding costs a
    flag, not system calls, per job."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.holding = False
        self.pending: list[int] = []
        self.previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self.previous[s] = signal.getsignal(s)
                signal.signal(s, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.holding:
            self.pending.append(signum)
        else:
            self._deliver(signum, frame)

    def _deliver(self, signum, frame) -> None:
        handler = self.previous.get(signum)
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def __enter__(self) -> None:
        self.holding = True

    def __exit__(self, *exc) -> None:
        self.holding = False
        pending, self.pending = self.pending, []
        for signum in pending:
            self._deliver(signum, None)

    def restore(self) -> None:
        for s, handler in self.previous.items():
            if signal.getsignal(s) == self._handle:  # (not if a stop put its own in place)
                signal.signal(s, handler)
        self.previous = {}


class LocalExecutor:
    def __init__(self, workers: int, keep_fds: tuple[int, ...] = (), env: dict[str, str] | None = None):
        """``env``: every job's environment (it marks the run's processes, so
        that the next run can find what a killed flow left running);
        ``keep_fds``: descriptors jobs inherit (the run lock, where processes
        cannot be found that way: see ``lock``)."""
        self.keep_fds = keep_fds
        self.env = env
        self.done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self.launcher = ShellLauncher(env)
        self.procs: dict[str, subprocess.Popen] = {}
        self.sampler = processes.Sampler()
        self.measured: set[str] = set()  # jobs to benchmark, until they are submitted
        self.pool = WorkerPool(max(1, workers), self.done, keep_fds, env, self.sampler)
        self.lock = threading.Lock()
        self.hurried = threading.Event()
        self.watcher = processes.JobWatcher(self._ended) if processes.available() else None
        self.held = _HeldSignals()

    def benchmark(self, job_id: str) -> None:
        self.measured.add(job_id)

    def submit(self, task: Task) -> None:
        measure = task.job_id in self.measured
        self.measured.discard(task.job_id)
        if task.in_worker:
            self.pool.submit(task, measure)
        else:
            self._spawn_shell(task, measure)

    def _spawn_shell(self, task: Task, measure: bool) -> None:
        with self.held:
            try:
                proc = self.launcher.start(task.payload, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           start_new_session=True, pass_fds=self.keep_fds)
            except OSError as e:
                self.done.put(Completion(task.job_id, False, f"cannot start bash: {e.strerror}"))
                return
            with self.lock:
                self.procs[task.job_id] = proc
        if measure:  # (before it is watched: it may end at once, and ending stops the sampling)
            self.sampler.start(task.job_id, proc.pid)
        if self.watcher is not None:
            try:
                self.watcher.watch(task.job_id, proc)
                return
            except OSError:  # no descriptor for it (too many open files): a thread waits instead
                pass
        tail = StderrTail(proc.stderr)
        threading.Thread(target=self._reap, args=(task.job_id, proc, tail), daemon=True).start()

    def _reap(self, job_id: str, proc: subprocess.Popen, tail: StderrTail) -> None:
        """Without a watcher: one thread per job waits for its exit."""
        try:
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            processes.end_leftovers(proc.pid)
            _, status, rusage = os.wait4(proc.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code
            usage = processes.rusage_usage(rusage)
        except ChildProcessError:
            code, usage = proc.wait(), None
        self._ended(job_id, code, usage, tail.text() if code != 0 else None)

    def _ended(self, job_id: str, code: int, usage: Usage | None, stderr_tail: str | None) -> None:
        with self.lock:
            self.procs.pop(job_id, None)
        peaks = self.sampler.stop(job_id)
        if peaks is not None:
            usage = (usage or Usage()).with_peaks(peaks)
        if code == 0:
            self.done.put(Completion(job_id, True, None, 0, usage=usage))
        else:
            self.done.put(Completion(job_id, False, command_failed(code), code, stderr_tail, usage))

    def wait(self, timeout: float | None) -> list[Completion]:
        try:
            first = self.done.get(timeout=timeout)
        except queue.Empty:
            return []
        out = [first]
        while True:
            try:
                out.append(self.done.get_nowait())
            except queue.Empty:
                return out

    def cancel(self, job_id: str) -> None:
        with self.lock:
            proc = self.procs.get(job_id)
        if proc is not None:
            kill_group(proc.pid, signal.SIGTERM)
            _later(KILL_GRACE_SECONDS, kill_group, proc.pid, signal.SIGKILL)
        else:
            self.pool.cancel(job_id)

    def shutdown(self) -> None:
        """Stop everything still running: SIGTERM, then SIGKILL after a grace
        period, or at once when ``hurry`` is called (a second Ctrl-C)."""
        with self.lock:
            procs = list(self.procs.values())
        for p in procs:
            kill_group(p.pid, signal.SIGTERM)
        workers = self.pool.stop()

        def running() -> bool:
            return any(p.returncode is None for p in procs) or any(w.proc.poll() is None for w in workers)

        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while running() and time.monotonic() < deadline and not self.hurried.is_set():
            time.sleep(0.01)
        for p in procs:  # also what a job left behind in its group when its shell ended
            kill_group(p.pid, signal.SIGKILL)
        for w in workers:
            if w.proc.poll() is None:
                w.kill()
        deadline = time.monotonic() + 1.0  # SIGKILL is not refused; let it land before outputs go
        while running() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.watcher is not None:
            self.watcher.close()
        self.sampler.close()
        self.held.restore()

    def hurry(self) -> None:
        self.hurried.set()

    def warm(self, kinds: set[str]) -> None:
        """Start a worker now, importing what jobs of these kinds need (DuckDB,
        pyarrow, ...), while flow is still deciding what to run."""
        self.pool.warm(kinds)


class StderrTail:
    """Pass a job's stderr through to flow's as it comes, keeping its end, so
    that a failure can be shown with the job's last words under its name."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.kept = bytearray()
        self.ended = threading.Event()
        threading.Thread(target=self._forward, daemon=True).start()

    def _forward(self) -> None:
        fd = self.pipe.fileno()
        try:
            while chunk := os.read(fd, 65536):
                processes.pass_stderr(chunk)
                self.kept += chunk
                del self.kept[:-processes.TAIL_BYTES]
        finally:
            self.pipe.close()
            self.ended.set()

    def text(self) -> str | None:
        """The last lines written, once the pipe has closed (or a moment
        after the job ended: a process it left behind may keep it open)."""
        self.ended.wait(processes.PIPE_GRACE_SECONDS)
        return processes.tail_text(bytes(self.kept))


def command_failed(code: int) -> str:
    """Why a shell job failed, from its exit code (negative: a signal)."""
    what = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    return f"the command failed ({what})"


def _later(seconds: float, fn, *args) -> None:
    """Call ``fn`` after a while, without keeping flow from exiting meanwhile."""
    timer = threading.Timer(seconds, fn, args)
    timer.daemon = True
    timer.start()


def kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _Worker:
    def __init__(self, done: queue.SimpleQueue, on_exit, keep_fds: tuple[int, ...] = (),
                 env: dict[str, str] | None = None, sampler: processes.Sampler | None = None):
        r_req, w_req = os.pipe()
        r_res, w_res = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flow.rules.worker", str(r_req), str(w_res)],
            pass_fds=(r_req, w_res, *keep_fds), stdin=subprocess.DEVNULL, start_new_session=True, env=env,
        )
        os.close(r_req)
        os.close(w_res)
        self.wfd, self.rfd = w_req, r_res
        self.job_id: str | None = None
        self.cancelled = False
        self.done = done
        self.on_exit = on_exit
        self.sampler = sampler or processes.Sampler()
        self.shared: tuple | None = None  # the globals and config this worker holds
        threading.Thread(target=self._read, daemon=True).start()

    def send(self, task: Task, measure: bool = False) -> None:
        """Send a job; it says what it used (for the run history: a few system
        calls). With ``measure`` (a ``benchmark:``), its memory (the worker's
        process group: the worker and what the job starts) is also sampled
        while it runs."""
        self.job_id = task.job_id
        if measure:
            self.sampler.start(task.job_id, self.proc.pid)
        ctx, sent = task.ctx, None
        if ctx is not None:  # (the build's globals and config go once, pickled: see rules.worker)
            if self.shared is None or self.shared[0] is not ctx.globals or self.shared[1] is not ctx.config:
                self.shared = (ctx.globals, ctx.config)
                sent = pickle.dumps(self.shared, protocol=pickle.HIGHEST_PROTOCOL)
            ctx = replace(ctx, globals=None, config=None)
        write_message(self.wfd, (task.job_id, task.kind, task.payload, ctx, sent))

    def send_warm(self, kinds: set[str]) -> None:
        write_message(self.wfd, (None, "warm", sorted(kinds), None, None))  # no answer comes

    def _read(self) -> None:
        while True:
            try:
                message = read_message(self.rfd)
            except (OSError, EOFError, ValueError):
                message = None
            if message is None:
                break
            job_id, error, measured = message
            peaks = self.sampler.stop(job_id)
            usage = Usage(**measured).with_peaks(peaks) if measured is not None else None
            self.job_id = None
            self.on_exit(self, idle=True)
            self.done.put(Completion(job_id, error is None, error, 0 if error is None else 1, usage=usage))
        code = self.proc.wait()
        job_id, self.job_id = self.job_id, None
        self.on_exit(self, idle=False)
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        if job_id is not None:
            self.sampler.stop(job_id)
            why = "it was stopped" if self.cancelled else (
                f"the worker process died (signal {signal.Signals(-code).name})" if code < 0
                else f"the worker process exited with status {code}")
            self.done.put(Completion(job_id, False, why, code))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.cancelled = True
        kill_group(self.proc.pid, sig)


class WorkerPool:
    """Long-lived Python workers, started on first use, one job at a time each."""

    def __init__(self, size: int, done: queue.SimpleQueue, keep_fds: tuple[int, ...] = (),
                 env: dict[str, str] | None = None, sampler: processes.Sampler | None = None):
        self.keep_fds = keep_fds
        self.env = env
        self.sampler = sampler or processes.Sampler()
        self.size = size
        self.done = done
        self.idle: list[_Worker] = []
        self.busy: dict[str, _Worker] = {}
        self.lock = threading.Lock()

    def submit(self, task: Task, measure: bool = False) -> None:
        with self.lock:
            worker = self.idle.pop() if self.idle else None
        if worker is None:
            worker = self._new_worker()
        with self.lock:
            self.busy[task.job_id] = worker
        try:
            worker.send(task, measure)
        except (OSError, BrokenPipeError):
            worker.kill()

    def warm(self, kinds: set[str]) -> None:
        with self.lock:
            if self.idle or self.busy:
                return
        worker = self._new_worker()
        try:
            worker.send_warm(kinds)
        except OSError:
            worker.kill()
            return
        with self.lock:
            self.idle.append(worker)

    def _new_worker(self) -> _Worker:
        return _Worker(self.done, self._on_exit, self.keep_fds, self.env, self.sampler)

    def _on_exit(self, worker: _Worker, idle: bool) -> None:
        with self.lock:
            for job_id, w in list(self.busy.items()):
                if w is worker:
                    del self.busy[job_id]
            if idle and worker.proc.poll() is None and len(self.idle) < self.size:
                self.idle.append(worker)
            elif not idle and worker in self.idle:
                self.idle.remove(worker)

    def cancel(self, job_id: str) -> None:
        with self.lock:
            worker = self.busy.get(job_id)
        if worker is not None:
            worker.kill(signal.SIGTERM)
            _later(KILL_GRACE_SECONDS, worker.kill)

    def stop(self) -> list[_Worker]:
        """Ask every worker to end (SIGTERM to busy ones); the caller waits and kills."""
        with self.lock:
            workers = list(self.busy.values()) + list(self.idle)
            self.idle = []
        for w in workers:
            if w.job_id is not None:
                w.kill(signal.SIGTERM)
            else:  # idle (perhaps still importing for a warm-up): nothing of a job to lose
                w.kill()
        return workers
