"""The warm render server: imports the chart stack once, forks one sandboxed child per job.

Run as `python -m renderers.server FD` by RenderPool, talking over the socket FD. Jobs
arrive as dicts; each is executed in a fresh child forked from this process, so nothing a
script does (rcParams, open figures, globals, monkeypatches) survives it. The server
itself never executes user code. Children report through a file opened before their
sandbox is sealed, tagged with a per-job nonce, and read back here as JSON: nothing a
child writes is ever unpickled.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import selectors
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

_MAGIC = b"VLRLRES1"


def _preload() -> None:
    """Import what chart code imports, and draw once so fonts and caches are warm."""
    import warnings

    warnings.filterwarnings("ignore")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in ("numpy", "pandas", "seaborn", "scipy", "scipy.stats", "scipy.interpolate", "scipy.ndimage",
                 "squarify", "networkx", "matplotlib_venn", "mpl_toolkits.mplot3d",
                 "matplotlib.gridspec", "matplotlib.patches", "matplotlib.ticker", "matplotlib.dates",
                 "matplotlib.colors", "matplotlib.cm", "matplotlib.lines", "matplotlib.tri",
                 "mpl_toolkits.axes_grid1", "colorsys", "math", "ctypes", "faulthandler"):
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

    from renderers import instrument
    from renderers.warmup import warm_up

    instrument.install()
    warm_up()
    plt.close("all")
    matplotlib.rcdefaults()
    matplotlib.use("Agg")
    instrument.RECORDS.reset()


def _child_main(job: dict[str, Any], job_dir: str, result_path: str, settings: dict[str, Any]) -> None:
    """In the forked child: seal the sandbox, run the job, report, and exit. Never returns."""
    status = 0
    t_start = time.perf_counter()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    try:
        os.setpgid(0, 0)
        from renderers import sandbox

        sandbox.KERNEL.die_with_parent()
        if os.getppid() != settings["server_pid"]:
            os._exit(5)  # the server died between fork and prctl
        result_fd = os.open(result_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        nonce = job["nonce"]
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, result_fd)
        os.closerange(result_fd + 1, 65536)
        os.chdir(job_dir)
        os.environ.clear()
        os.environ.update(settings["child_env"] | {"HOME": job_dir, "TMPDIR": job_dir})
        tempfile.tempdir = job_dir

        from renderers import execute

        out_writer = execute.BoundedWriter(settings["stdout_limit"])
        sys.stdout = sys.stderr = out_writer
        sandbox.apply_rlimits(
            cpu_seconds=job["timeout"] + 1,
            memory_bytes=settings["memory_bytes"],
            file_bytes=settings["file_bytes"],
        )
        landlock_on = sandbox.KERNEL.install_landlock(settings["read_roots"], [job_dir]) \
            if settings["landlock"] else False
        seccomp_on = sandbox.KERNEL.install_seccomp(os.getpid()) if settings["seccomp"] else False
        violations = sandbox.install_audit_hook(job_dir, settings["read_roots"])
        t_sealed = time.perf_counter()
        # Our own modules leave sys.modules so user code cannot simply import and patch them.
        for name in [n for n in sys.modules if n.split(".")[0] in ("renderers", "vlrl", "rewards", "games", "app")]:
            del sys.modules[name]

        result = execute.run_code(
            job["code"],
            dpi=job["dpi"],
            max_pixels=job["max_pixels"],
            with_trace=job["trace"],
            is_violation=lambda: bool(violations()),
        )
        t_ran = time.perf_counter()
        result["stdout"] = out_writer.getvalue()
        result["violations"] = violations()[:20]
        result["seccomp"] = seccomp_on
        result["landlock"] = landlock_on
        png = result.pop("png") or b""
        result["nonce"] = nonce
        result["phases"] = {"seal": t_sealed - t_start, "run": t_ran - t_sealed,
                            "fork_to_start": t_start - job["forked_at"],
                            "page_faults": float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0)}
        payload = json.dumps(result, default=str).encode()
        frame = _MAGIC + struct.pack("<QQ", len(payload), len(png)) + payload + png
        written = 0
        while written < len(frame):
            written += os.write(result_fd, frame[written:])
    except MemoryError:
        status = 3
    except BaseException:  # noqa: BLE001 - anything here means the child is unusable
        status = 4
        try:
            os.write(2, traceback.format_exc().encode())
        except Exception:
            pass
    os._exit(status)


def _read_result(result_path: str, nonce: str) -> dict[str, Any] | None:
    try:
        with open(result_path, "rb") as f:
            blob = f.read()
    except OSError:
        return None
    # A hostile script can write to the descriptor too; only a frame carrying this job's
    # nonce counts, and the last such frame wins.
    found = None
    start = 0
    while True:
        at = blob.find(_MAGIC, start)
        if at < 0 or at + len(_MAGIC) + 16 > len(blob):
            break
        n_json, n_png = struct.unpack("<QQ", blob[at + len(_MAGIC): at + len(_MAGIC) + 16])
        body = at + len(_MAGIC) + 16
        if body + n_json + n_png <= len(blob):
            try:
                data = json.loads(blob[body: body + n_json])
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("nonce") == nonce:
                data["png"] = blob[body + n_json: body + n_json + n_png] or None
                found = data
        start = at + 1
    return found


def _sanitise(data: dict[str, Any]) -> dict[str, Any]:
    """Keep only the fields and types a RenderResult may carry."""
    from renderers.result import ERROR_KINDS

    kind = data.get("error_kind")
    ok = data.get("ok") is True
    return {
        "ok": ok,
        "error_kind": None if ok else (kind if kind in ERROR_KINDS else "crashed"),
        "error": str(data.get("error"))[:2000] if data.get("error") is not None else None,
        "png": data.get("png") if isinstance(data.get("png"), bytes) else None,
        "trace": data.get("trace") if isinstance(data.get("trace"), dict) else {},
        "stdout": str(data.get("stdout", ""))[:100_000],
        "violations": [str(v)[:300] for v in data.get("violations", [])][:20]
        if isinstance(data.get("violations"), list) else [],
        "phases": {str(k): float(v) for k, v in data.get("phases", {}).items() if isinstance(v, (int, float))}
        if isinstance(data.get("phases"), dict) else {},
    }


class _Running:
    def __init__(self, job: dict[str, Any], pid: int, pidfd: int, job_dir: str, result_path: str) -> None:
        self.job, self.pid, self.pidfd = job, pid, pidfd
        self.job_dir, self.result_path = job_dir, result_path
        self.started = time.monotonic()
        self.deadline = self.started + job["timeout"]
        self.timed_out = False


class Server:
    def __init__(self, conn: Connection, settings: dict[str, Any]) -> None:
        self.conn = conn
        self.settings = settings
        self.root = settings["root"]
        self.max_parallel = settings["max_parallel"]
        self.queue: list[dict[str, Any]] = []
        self.running: dict[int, _Running] = {}  # by pidfd
        self.selector = selectors.DefaultSelector()
        self.selector.register(conn.fileno(), selectors.EVENT_READ, None)

    def _start(self, job: dict[str, Any]) -> None:
        job_dir = tempfile.mkdtemp(prefix=f"job{job['id']}-", dir=self.root)
        result_path = os.path.join(self.root, f"result-{job['id']}-{os.path.basename(job_dir)}")
        job["forked_at"] = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child_main(job, job_dir, result_path, self.settings)
        pidfd = os.pidfd_open(pid)
        run = _Running(job, pid, pidfd, job_dir, result_path)
        self.running[pidfd] = run
        self.selector.register(pidfd, selectors.EVENT_READ, run)

    def _finish(self, run: _Running) -> None:
        _, status = os.waitpid(run.pid, 0)
        try:
            os.killpg(run.pid, signal.SIGKILL)  # anything it left behind in its group
        except (ProcessLookupError, PermissionError):
            pass
        self.selector.unregister(run.pidfd)
        os.close(run.pidfd)
        del self.running[run.pidfd]
        seconds = time.monotonic() - run.started
        job = run.job
        data = None if run.timed_out else _read_result(run.result_path, job["nonce"])
        if data is not None:
            result = _sanitise(data)
        elif run.timed_out:
            result = {"ok": False, "error_kind": "timeout", "error": f"the script ran longer than {job['timeout']:g} s"}
        elif os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
            result = {"ok": False, "error_kind": "timeout", "error": "the script used up its CPU time"}
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3:
            result = {"ok": False, "error_kind": "memory", "error": "the script ran out of memory"}
        elif os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            result = {"ok": False, "error_kind": "crashed", "error": f"the script's process was killed by {name}"}
        else:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            result = {"ok": False, "error_kind": "crashed", "error": f"the script's process exited (status {code}) without a result"}
        result["id"] = job["id"]
        result["seconds"] = seconds
        shutil.rmtree(run.job_dir, ignore_errors=True)
        try:
            os.unlink(run.result_path)
        except OSError:
            pass
        self.conn.send(result)

    def serve(self) -> None:
        while True:
            while self.queue and len(self.running) < self.max_parallel:
                self._start(self.queue.pop(0))
            pending = [r.deadline for r in self.running.values() if not r.timed_out]
            timeout = max(0.0, min(pending) - time.monotonic()) if pending else None
            for key, _ in self.selector.select(timeout):
                if key.data is None:
                    try:
                        msg = self.conn.recv()
                    except EOFError:
                        return
                    if msg is None:
                        return
                    self.queue.append(msg)
                else:
                    self._finish(key.data)
            now = time.monotonic()
            for run in list(self.running.values()):
                if not run.timed_out and now >= run.deadline:
                    run.timed_out = True
                    try:
                        os.killpg(run.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def shutdown(self) -> None:
        for run in list(self.running.values()):
            try:
                os.killpg(run.pid, signal.SIGKILL)
                os.waitpid(run.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            shutil.rmtree(run.job_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    conn = Connection(int(argv[0]))
    settings = conn.recv()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the client, which closes us
    _preload()
    from renderers import sandbox

    settings["read_roots"] = sorted(set(sandbox.default_read_roots()) | set(settings.get("extra_read_roots", [])))
    # Later lazy imports in a child must only search where a job may read: the server's
    # cwd and a source checkout on PYTHONPATH are outside that.
    sys.path[:] = [p for p in sys.path if p and sandbox.path_inside(os.path.realpath(p), settings["read_roots"])]
    settings["memory_bytes"] = sandbox.address_space_bytes() + settings["memory_mb"] * 2**20
    settings["child_env"] = sandbox.child_environment(settings["root"])
    settings["seccomp"] = settings.get("seccomp", True) and sandbox.KERNEL.seccomp_supported
    settings["landlock"] = settings.get("landlock", True) and sandbox.KERNEL.landlock_abi > 0
    settings["server_pid"] = os.getpid()
    gc.collect()
    gc.freeze()  # children then share these pages instead of touching them for GC
    conn.send({"ready": True, "pid": os.getpid(), "seccomp": settings["seccomp"], "landlock": settings["landlock"]})
    server = Server(conn, settings)
    try:
        server.serve()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
