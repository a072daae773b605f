"""RenderPool: the client side of the warm, sandboxed render server.

    with RenderPool(workers=4) as pool:
        result = pool.render(code)                 # one script
        results = pool.render_many(codes)          # many, concurrently, in input order
        future = pool.submit(code)                 # non-blocking; future.result() -> RenderResult

If the server process dies (it should not: user code only ever runs in its children) it
is restarted and the jobs in flight are sent again once.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterable, Iterator

from renderers.code import prepare_code
from renderers.result import RenderResult

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
_GRACE = 5.0  # seconds past a job's own limits before the pool stops waiting for the server


@dataclass
class PoolOptions:
    """Settings of a RenderPool. Each is also a keyword of RenderPool()."""

    workers: int = 0  # concurrent jobs; 0 = number of CPU cores
    timeout: float = 20.0  # wall-clock seconds per script (CPU time is capped at timeout + 1)
    memory_mb: int = 2048  # address space a script may add on top of the warm server's
    dpi: float = 100.0  # resolution of the PNG
    max_pixels: int = 4_000_000  # larger figures are drawn at a lower dpi to fit
    stdout_limit: int = 8192  # characters of print output kept per job
    file_mb: int = 64  # largest file a job may write (its own temp dir only)
    disk_mb: int = 256  # all files of a job together (a tmpfs of this size, where namespaces work)
    handover_mb: int = 256  # largest figure pickle or result a job may send back
    trace: bool = True  # record the trace (types, colours, texts, layout, data)
    seccomp: bool = True  # kernel-level syscall filter where the platform supports it
    landlock: bool = True  # kernel-level file confinement (Linux >= 5.13) where available
    namespaces: bool = True  # private mount/IPC/network/UTS/PID namespaces where the kernel allows
    compat: str = "legacy"  # legacy: APIs that newer libraries removed work again (renderers.compat); current: none
    start_timeout: float = 120.0  # seconds to wait for the server to import the chart stack


class RenderPool:
    def __init__(self, workers: int = 0, **options) -> None:
        self.options = PoolOptions(workers=workers, **options)
        from renderers.compat import MODES

        if self.options.compat not in MODES:
            raise ValueError(f"compat must be one of {', '.join(MODES)}, not {self.options.compat!r}")
        if self.options.workers <= 0:
            self.options.workers = (
                len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            )
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._futures: dict[int, tuple[Future, dict, int]] = {}
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._reader: threading.Thread | None = None
        self._root: str | None = None
        self._closed = False
        self.seccomp = False
        self.landlock = False
        self.isolation: dict[str, object] = {}  # what confines each job here (see _start)
        self.service_pids: set[int] = set()
        self.compat_shims: list[str] = []
        self.restarts = 0
        self._started: dict[int, float] = {}  # job id -> when the server started it
        self._restarting = False
        self._watchdog: threading.Thread | None = None
        self._start()

    # ------------------------------------------------------------------ lifecycle

    def _start(self) -> None:
        self._root = tempfile.mkdtemp(prefix="vlrl-render-")
        os.chmod(self._root, 0o711)  # a job running as another uid must reach its own dir in here
        ours, theirs = socket.socketpair()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self._root,
            "TMPDIR": self._root,
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": _PACKAGE_PARENT,
        }
        # The font cache lives outside the job sandbox; reuse the user's so start-up is fast.
        mpl_config = os.environ.get("MPLCONFIGDIR") or os.path.join(Path.home(), ".cache", "vlrl-matplotlib")
        os.makedirs(mpl_config, exist_ok=True)
        env["MPLCONFIGDIR"] = mpl_config
        theirs_fd = theirs.detach()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "renderers.server", str(theirs_fd)],
            pass_fds=(theirs_fd,),
            env=env,
            cwd=self._root,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(theirs_fd)
        self._conn = Connection(ours.detach())
        o = self.options
        self._conn.send(
            {
                "max_parallel": o.workers,
                "memory_mb": o.memory_mb,
                "stdout_limit": o.stdout_limit,
                "file_bytes": o.file_mb * 2**20,
                "disk_bytes": o.disk_mb * 2**20,
                "handover_bytes": o.handover_mb * 2**20,
                "code_bytes": 16 * 2**20,
                "seccomp": o.seccomp,
                "landlock": o.landlock,
                "namespaces": o.namespaces,
                "compat": o.compat,
                "root": self._root,
            }
        )
        if not self._conn.poll(o.start_timeout):
            self._kill_server()
            raise RuntimeError(f"render server did not start within {o.start_timeout:g} s")
        try:
            hello = self._conn.recv()
        except EOFError:
            self._kill_server()
            raise RuntimeError("render server exited during start-up (see its stderr above)") from None
        self.seccomp = bool(hello.get("seccomp"))
        self.landlock = bool(hello.get("landlock"))
        self.isolation = {
            "seccomp": self.seccomp,
            "landlock": self.landlock,
            "namespaces": bool(hello.get("namespaces")),
            "pid_namespace": bool(hello.get("pid_namespace")),
            "job_uid": hello.get("job_uid"),
        }
        self.compat_shims: list[str] = list(hello.get("compat") or [])  # what renderers.compat put back
        # The server's own helpers, which live as long as it does (not jobs).
        self.service_pids = {self._proc.pid} | {p for p in (hello.get("zygote_pid"), hello.get("init_pid")) if p}
        self._reader = threading.Thread(target=self._read_loop, args=(self._conn,), daemon=True)
        self._reader.start()
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, daemon=True)
            self._watchdog.start()

    def _kill_server(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, 9)
            except ProcessLookupError:
                pass
            self._proc.wait()
        if self._root:
            shutil.rmtree(self._root, ignore_errors=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with self._lock:
                if self._conn is not None:
                    self._conn.send(None)
            self._proc.wait(timeout=10)
        except Exception:
            pass
        self._kill_server()
        with self._lock:
            pending = list(self._futures.values())
            self._futures.clear()
        for fut, _, _ in pending:
            if not fut.done():
                fut.set_result(RenderResult.failure("crashed", "the render pool was closed"))

    def __enter__(self) -> "RenderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ results

    def _read_loop(self, conn: Connection) -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if "started" in msg:
                with self._lock:
                    if msg["started"] in self._futures:
                        self._started[msg["started"]] = time.monotonic()
                continue
            job_id = msg.pop("id")
            with self._lock:
                entry = self._futures.pop(job_id, None)
                self._started.pop(job_id, None)
            if entry is None:
                continue
            fut = entry[0]
            if not fut.done():
                fut.set_result(
                    RenderResult(
                        ok=msg["ok"],
                        png=msg.get("png"),
                        error_kind=msg.get("error_kind"),
                        error=msg.get("error"),
                        seconds=float(msg.get("seconds", 0.0)),
                        trace=msg.get("trace") or {},
                        stdout=msg.get("stdout", ""),
                        violations=msg.get("violations", []),
                        phases=msg.get("phases", {}),
                        isolation=msg.get("isolation", {}),
                    )
                )
        if not self._closed:
            self._recover(conn)

    def _watch(self) -> None:
        """The pool's own deadline: a job the server has not answered long after its time is
        failed here, and the server (which should have killed it) is replaced."""
        from renderers.server import DRAW_GRACE

        while not self._closed:
            time.sleep(0.25)
            now = time.monotonic()
            overdue = []
            with self._lock:
                for job_id, started in list(self._started.items()):
                    entry = self._futures.get(job_id)
                    if entry is None:
                        self._started.pop(job_id, None)
                        continue
                    if now > started + entry[1]["timeout"] + DRAW_GRACE + _GRACE:
                        self._futures.pop(job_id)
                        self._started.pop(job_id)
                        overdue.append((entry[0], entry[1]["timeout"]))
            for fut, timeout in overdue:
                fut.set_result(
                    RenderResult.failure(
                        "timeout", f"the render server did not answer within {timeout:g} s; it was restarted"
                    )
                )
            if overdue and not self._closed:
                self._kill_server()  # the reader thread sees EOF and recovers the other jobs

    def _recover(self, dead_conn: Connection) -> None:
        """The server died: start a new one and resend its jobs (each survives one death)."""
        with self._lock:
            if self._conn is not dead_conn or self._closed:
                return
            inflight = set(self._futures)
            self._started.clear()  # the new server reports each resent job's start again
            self._restarting = True  # jobs submitted from now on wait for the new server
        self._kill_server()
        self.restarts += 1
        failed: list[tuple[Future, str]] = []
        try:
            self._start()
        except RuntimeError as exc:
            with self._lock:
                failed = [(fut, str(exc)) for fut, _, _ in self._futures.values()]
                self._futures.clear()
                self._restarting = False
        else:
            with self._lock:
                self._restarting = False
                for job_id, (fut, job, deaths) in list(self._futures.items()):
                    if job_id in inflight:
                        deaths += 1
                        if deaths >= 2:
                            del self._futures[job_id]
                            failed.append((fut, "the render server died twice while running this job"))
                            continue
                        self._futures[job_id] = (fut, job, deaths)
                    try:
                        self._conn.send(job)
                    except (OSError, ValueError):
                        pass  # died again: the new reader thread recovers once more
        for fut, why in failed:
            fut.set_result(RenderResult.failure("crashed", why))

    # ------------------------------------------------------------------ submitting

    def _send(self, job: dict, fut: Future, deaths: int) -> None:
        with self._lock:
            self._futures[job["id"]] = (fut, job, deaths)
            if self._restarting:
                return  # _recover sends it to the new server
            try:
                self._conn.send(job)
            except (OSError, ValueError):
                pass  # the reader notices the dead server and resends

    def submit(
        self, code: str, *, timeout: float | None = None, dpi: float | None = None, trace: bool | None = None
    ) -> "Future[RenderResult]":
        """Render a script (already extracted code) without waiting; returns a Future."""
        if self._closed:
            raise RuntimeError("the render pool is closed")
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        o = self.options
        job = {
            "id": next(self._ids),
            "code": code,
            "timeout": float(timeout if timeout is not None else o.timeout),
            "dpi": float(dpi if dpi is not None else o.dpi),
            "max_pixels": int(o.max_pixels),
            "trace": bool(o.trace if trace is None else trace),
        }
        fut: Future = Future()
        self._send(job, fut, 0)
        return fut

    def render(self, code: str, **kwargs) -> RenderResult:
        return self.submit(code, **kwargs).result()

    def render_many(self, codes: Iterable[str], **kwargs) -> list[RenderResult]:
        futures = [self.submit(code, **kwargs) for code in codes]
        return [f.result() for f in futures]

    def imap(self, codes: Iterable[str], window: int | None = None, **kwargs) -> Iterator[RenderResult]:
        """Results in input order while keeping at most `window` jobs in flight (bounded memory)."""
        window = window or 4 * self.options.workers
        pending: list[Future] = []
        for code in codes:
            pending.append(self.submit(code, **kwargs))
            if len(pending) >= window:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()

    def render_response(self, text: str, *, strict: bool = False, **kwargs) -> RenderResult:
        """Render a model response: extract its code block first (see renderers.code)."""
        return self.submit_response(text, strict=strict, **kwargs).result()

    def submit_response(self, text: str, *, strict: bool = False, **kwargs) -> "Future[RenderResult]":
        code = prepare_code(text, strict=strict)
        if code is None:
            fut: Future = Future()
            fut.set_result(RenderResult.failure("syntax", "no python code block found in the response"))
            return fut
        return self.submit(code, **kwargs)
