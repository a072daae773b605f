"""The render server: the warm supervisor between RenderPool and the job processes.

Run as `python -m renderers.server FD` by RenderPool, talking over the socket FD. It
imports the chart stack once, then forks the zygote (renderers.zygote) before any job
arrives: every job process is forked from that zygote, which never sees job data. The
server keeps the jobs: it sends each runner its code over a socket of its own, reads the
figure back, starts a drawer with it, validates what the drawer returns
(renderers.validate) and answers the pool. It kills every job process at its deadline
by pidfd. Nothing a job sends is ever unpickled here.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from renderers import validate, zygote
from renderers.zygote import frame_bytes, parse_frame


def _preload(compat_mode: str = "legacy") -> list[str]:
    """Import what chart code imports, put back the APIs newer releases removed (when
    `compat_mode` is legacy), and draw once so fonts and caches are warm. Returns the
    compatibility shims installed."""
    import warnings

    warnings.filterwarnings("ignore")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in (
        "numpy",
        "pandas",
        "seaborn",
        "scipy",
        "scipy.stats",
        "scipy.interpolate",
        "scipy.ndimage",
        "squarify",
        "networkx",
        "matplotlib_venn",
        "mpl_toolkits.mplot3d",
        "matplotlib.gridspec",
        "matplotlib.patches",
        "matplotlib.ticker",
        "matplotlib.dates",
        "matplotlib.colors",
        "matplotlib.cm",
        "matplotlib.lines",
        "matplotlib.tri",
        "mpl_toolkits.axes_grid1",
        "colorsys",
        "math",
        "ctypes",
        "faulthandler",
        "sklearn",
    ):
        try:
            __import__(name)
        except ImportError:
            pass

    from matplotlib import _api

    # matplotlib finds the user's frame for its warnings with sys._getframe; warnings are
    # dropped in the sandbox anyway, and a frame-free version keeps frame access refusable.
    def warn_external(message, category=None):
        warnings.warn(message, category, stacklevel=2)

    _api.warn_external = warn_external

    from renderers import audit, compat, execute, handover, instrument, sandbox, validate  # noqa: F401 - for every job to inherit
    from renderers.warmup import warm_up

    shims = compat.install(compat_mode)
    instrument.install()
    warm_up()
    plt.close("all")
    matplotlib.rcdefaults()
    matplotlib.use("Agg")
    instrument.RECORDS.reset()
    return shims


# The drawer gets what is left of the job's time, and at least this: a job never outlives
# its deadline by more than this (its figure is still drawn when the script used it all).
DRAW_GRACE = 1.0


class _Stage:
    """One job process (runner or drawer) and what it sent so far."""

    def __init__(self, role: str, sock: socket.socket, deadline: float) -> None:
        self.role, self.sock, self.deadline = role, sock, deadline
        self.pid: int | None = None
        self.pidfd: int | None = None
        self.status: int | None = None
        self.data = bytearray()
        self.eof = False
        self.oversize = False
        self.timed_out = False


class _Job:
    def __init__(self, msg: dict[str, Any]) -> None:
        self.msg = msg
        self.id = msg["id"]
        self.started = time.monotonic()
        self.deadline = self.started + msg["timeout"]
        self.stage: _Stage | None = None
        self.runner_meta: dict[str, Any] = {}
        self.phases: dict[str, float] = {}


def _exit_result(stage: _Stage, timeout: float) -> dict[str, Any]:
    """Why a job process gave no usable frame, from how it ended."""
    status = stage.status or 0
    who = "drawing the figure" if stage.role == "drawer" else "the script"
    if stage.timed_out:
        return {"ok": False, "error_kind": "timeout", "error": f"{who} ran longer than {timeout:g} s"}
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
        return {"ok": False, "error_kind": "timeout", "error": f"{who} used up its CPU time"}
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3:
        return {"ok": False, "error_kind": "memory", "error": f"{who} ran out of memory"}
    if stage.oversize:
        return {"ok": False, "error_kind": "memory", "error": f"{who} sent back more than the allowed size"}
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return {"ok": False, "error_kind": "crashed", "error": f"{who}'s process was killed by {name}"}
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return {"ok": False, "error_kind": "crashed", "error": f"{who}'s process exited (status {code}) without a result"}


class Server:
    def __init__(self, conn: Connection, zygote: socket.socket, settings: dict[str, Any]) -> None:
        self.conn, self.zygote, self.settings = conn, zygote, settings
        self.max_parallel = settings["max_parallel"]
        self.queue: list[dict[str, Any]] = []
        self.jobs: dict[int, _Job] = {}
        self.selector = selectors.DefaultSelector()
        self.selector.register(conn.fileno(), selectors.EVENT_READ, "client")
        self.selector.register(zygote, selectors.EVENT_READ, "zygote")

    # -- stages
    def _spawn(self, job: _Job, role: str, frame_meta: dict[str, Any], blob: bytes, deadline: float) -> None:
        ours, theirs = socket.socketpair()
        cpu = max(1.0, deadline - time.monotonic()) + 1
        request = {"role": role, "job": job.id, "params": {"cpu_seconds": cpu}}
        socket.send_fds(self.zygote, [json.dumps(request).encode()], [theirs.fileno()])
        theirs.close()
        stage = _Stage(role, ours, deadline)
        job.stage = stage
        try:
            ours.settimeout(30)  # the process reads its input first thing
            ours.sendall(frame_bytes(frame_meta, blob))
            ours.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the process died before reading: its exit status tells why
        ours.setblocking(False)
        self.selector.register(ours, selectors.EVENT_READ, ("stage", job.id))

    def _start(self, msg: dict[str, Any]) -> None:
        job = _Job(msg)
        self.jobs[job.id] = job
        self._spawn(job, "runner", {"code": msg["code"]}, b"", job.deadline)
        self._send({"started": job.id})

    def _read_stage(self, job: _Job) -> None:
        stage = job.stage
        try:
            while True:
                chunk = stage.sock.recv(1 << 20)
                if not chunk:
                    stage.eof = True
                    break
                stage.data += chunk
                if len(stage.data) > self.settings["handover_bytes"]:
                    stage.oversize = True
                    self._kill(stage)
                    stage.data = bytearray()
                    stage.eof = True
                    break
        except BlockingIOError:
            pass
        except OSError:
            stage.eof = True
        if stage.eof:
            self.selector.unregister(stage.sock)
        self._maybe_done(job)

    def _kill(self, stage: _Stage) -> None:
        if stage.pidfd is not None and stage.status is None:
            try:
                signal.pidfd_send_signal(stage.pidfd, signal.SIGKILL)
            except OSError:
                pass

    def _maybe_done(self, job: _Job) -> None:
        stage = job.stage
        if stage.status is None or not stage.eof:
            return
        stage.sock.close()
        if stage.pidfd is not None:
            os.close(stage.pidfd)
        frame = None if stage.timed_out or stage.oversize else parse_frame(bytes(stage.data))
        stage.data = bytearray()
        if stage.role == "runner":
            self._runner_done(job, stage, frame)
        else:
            self._drawer_done(job, stage, frame)

    def _runner_done(self, job: _Job, stage: _Stage, frame) -> None:
        if frame is None:
            return self._finish(job, _exit_result(stage, job.msg["timeout"]))
        meta, blob = frame
        job.runner_meta = validate.runner_report(meta)
        job.phases.update(job.runner_meta.pop("phases"))
        if meta.get("ok") is not True or not blob:
            kind = job.runner_meta["error_kind"]
            if meta.get("ok") is True:  # claims success but sent no figure
                kind, job.runner_meta["error"] = "forged", "the job claimed a figure but sent none"
            return self._finish(job, {"ok": False, "error_kind": kind, "error": job.runner_meta["error"]})
        deadline = max(job.deadline, time.monotonic() + DRAW_GRACE)
        request = {"dpi": job.msg["dpi"], "max_pixels": job.msg["max_pixels"], "trace": job.msg["trace"]}
        self._spawn(job, "drawer", request, blob, deadline)

    def _drawer_done(self, job: _Job, stage: _Stage, frame) -> None:
        if frame is None:
            return self._finish(job, _exit_result(stage, job.msg["timeout"]))
        meta, png = frame
        job.phases.update(validate.bounded_phases(meta.get("phases")))
        if meta.get("ok") is not True:
            kind = meta.get("error_kind")
            return self._finish(
                job,
                {
                    "ok": False,
                    "error_kind": kind if kind in ("forged", "memory", "runtime", "forbidden") else "crashed",
                    "error": str(meta.get("error"))[:2000],
                },
            )
        try:
            trace = validate.check_trace(meta.get("trace", {}) if job.msg["trace"] else {})
            png = validate.check_png(png, meta.get("size_px"), job.msg["max_pixels"])
        except validate.Rejected as exc:
            return self._finish(
                job, {"ok": False, "error_kind": "forged", "error": f"the rendering failed validation: {exc}"}
            )
        self._finish(job, {"ok": True, "png": png, "trace": trace})

    def _finish(self, job: _Job, result: dict[str, Any]) -> None:
        del self.jobs[job.id]
        result.setdefault("png", None)
        result.setdefault("trace", {})
        report = job.runner_meta
        result.update(
            id=job.id,
            seconds=time.monotonic() - job.started,
            phases=job.phases,
            stdout=report.get("stdout", ""),
            violations=report.get("violations", []),
            isolation=report.get("isolation", {}),
        )
        if result["ok"] is False and result.get("error_kind") is None:
            result["error_kind"] = "crashed"
        self._send(result)

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self.conn.send(msg)
        except (OSError, ValueError):
            raise SystemExit(0) from None  # the pool is gone

    # -- the zygote's reports
    def _from_zygote(self) -> bool:
        try:
            msg, fds, _, _ = socket.recv_fds(self.zygote, 65536, 1)
        except OSError:
            return False
        if not msg:
            return False
        report = json.loads(msg)
        job_id = report.get("job", report.get("exit"))
        job = self.jobs.get(job_id)
        stage = job.stage if job is not None else None
        if "exit" in report:
            if stage is not None and stage.pid == report["pid"]:
                stage.status = report["status"]
                if not stage.eof:
                    self._read_stage(job)  # the process is gone: whatever it sent is buffered
                else:
                    self._maybe_done(job)
            return True
        if stage is None or stage.role != report["role"]:
            for fd in fds:
                os.close(fd)
            return True
        stage.pid = report["pid"]
        stage.pidfd = fds[0]
        if stage.timed_out:
            self._kill(stage)
        return True

    def serve(self) -> None:
        while True:
            while self.queue and len(self.jobs) < self.max_parallel:
                self._start(self.queue.pop(0))
            pending = [j.stage.deadline for j in self.jobs.values() if j.stage and not j.stage.timed_out]
            timeout = max(0.0, min(pending) - time.monotonic()) if pending else None
            for key, _ in self.selector.select(timeout):
                if key.data == "client":
                    try:
                        msg = self.conn.recv()
                    except (EOFError, OSError):
                        return
                    if msg is None:
                        return
                    self.queue.append(msg)
                elif key.data == "zygote":
                    if not self._from_zygote():
                        return  # the zygote died: the pool restarts us
                else:
                    job = self.jobs.get(key.data[1])
                    if job is not None and job.stage is not None and key.fileobj is job.stage.sock:
                        self._read_stage(job)
            now = time.monotonic()
            for job in list(self.jobs.values()):
                stage = job.stage
                if stage is not None and not stage.timed_out and now >= stage.deadline:
                    stage.timed_out = True
                    self._kill(stage)


def main(argv: list[str]) -> int:
    conn = Connection(int(argv[0]))
    settings = conn.recv()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the client, which closes us
    shims = _preload(settings.get("compat", "legacy"))
    from renderers import sandbox

    settings["read_roots"] = sorted(set(sandbox.default_read_roots()) | set(settings.get("extra_read_roots", [])))
    # Later lazy imports in a child must only search where a job may read: the server's
    # cwd and a source checkout on PYTHONPATH are outside that.
    sys.path[:] = [p for p in sys.path if p and sandbox.path_inside(os.path.realpath(p), settings["read_roots"])]
    settings["memory_bytes"] = sandbox.address_space_bytes() + settings["memory_mb"] * 2**20
    settings["child_env"] = sandbox.child_environment(settings["root"])
    settings["seccomp"] = settings.get("seccomp", True) and sandbox.KERNEL.seccomp_supported
    settings["landlock"] = settings.get("landlock", True) and sandbox.KERNEL.landlock_abi > 0
    # An unprivileged uid where it can read what jobs read: directly, or (a Python under a
    # private home) through the paths each job's mount namespace binds back (sandbox.hidden_from).
    nobody = 65534
    hidden = sandbox.hidden_from(nobody, settings["read_roots"]) if os.geteuid() == 0 else None
    settings["reveal"] = hidden or {}
    settings["job_uid"] = nobody if hidden is not None and (not hidden or settings["namespaces"]) else 0
    gc.collect()
    gc.freeze()  # children then share these pages instead of touching them for GC
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        os.close(conn.fileno())
        ours.close()
        zygote.serve(theirs, settings)
    theirs.close()
    hello = json.loads(ours.recv(65536) or b"{}")
    conn.send(
        {
            "ready": True,
            "pid": os.getpid(),
            "zygote_pid": pid,
            "seccomp": settings["seccomp"],
            "landlock": settings["landlock"],
            "namespaces": settings["namespaces"],
            "pid_namespace": bool(hello.get("pid_namespace")),
            "init_pid": hello.get("init_pid") or None,
            "job_uid": settings["job_uid"],
            "compat": shims,
        }
    )
    server = Server(conn, ours, settings)
    try:
        server.serve()
    finally:
        ours.close()  # the zygote sees EOF, kills its jobs and exits
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        # A pool that was dropped without close() (its process exiting) leaves nothing behind.
        shutil.rmtree(settings["root"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
