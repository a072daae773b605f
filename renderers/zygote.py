"""The zygote: the warm process every job is forked from, and the jobs' two roles.

The render server forks the zygote right after importing the chart stack, before any job
reached it, and from then on sends it only "start a <role> on this socket" with the job's
limits. The code, the figure and the results travel over that socket between the server
and the job; the zygote never sees them. So no job starts from a process image that ever
held another job's code, trace or image, whatever it scans.

Each job is two processes, both forked from here and sealed the same way:
- the runner executes the script and hands its figure back as a pickle (renderers.handover);
- the drawer, which never runs user code, loads that pickle, draws the PNG and records the
  trace from what it draws.

The zygote reaps its children and reports each exit status; it opens a pidfd per child
and hands it to the server, which kills by pidfd at the deadline (a job that leaves its
process group or session cannot dodge that). Where the kernel allows it, the zygote also
moves its children into a PID namespace whose init dies with the zygote, taking every
job with it.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from typing import Any, NoReturn

MAGIC = b"VLRLJOB2"
_HEADER = struct.Struct("<QQ")
_CLONE_NEWPID = 0x20000000


# --------------------------------------------------------------------------- framing


def frame_bytes(meta: dict[str, Any], blob: bytes = b"") -> bytes:
    """MAGIC, the two lengths, a JSON object, then raw bytes (code, a pickle or a PNG)."""
    payload = json.dumps(meta, default=str).encode()
    return MAGIC + _HEADER.pack(len(payload), len(blob)) + payload + blob


def write_frame(fd: int, meta: dict[str, Any], blob: bytes = b"") -> None:
    view = memoryview(frame_bytes(meta, blob))
    while view:
        view = view[os.write(fd, view) :]


def parse_frame(data: bytes, max_meta: int = 4 << 20) -> tuple[dict[str, Any], bytes] | None:
    """The one frame `data` must consist of, or None when it is anything else."""
    head = len(MAGIC) + _HEADER.size
    if len(data) < head or not data.startswith(MAGIC):
        return None
    n_meta, n_blob = _HEADER.unpack_from(data, len(MAGIC))
    if n_meta > max_meta or head + n_meta + n_blob != len(data):
        return None
    try:
        meta = json.loads(data[head : head + n_meta], parse_constant=lambda c: None)
    except (ValueError, RecursionError):
        return None
    if not isinstance(meta, dict):
        return None
    return meta, data[head + n_meta :]


def read_all(fd: int, limit: int) -> bytes | None:
    """Everything until EOF, or None past `limit` bytes."""
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


# --------------------------------------------------------------------------- the jobs


def _seal(role: str, channel: int, job_dir: str, params: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Confine this freshly forked process; returns what isolation took effect."""
    from renderers import sandbox

    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, channel)
    os.closerange(channel + 1, 65536)
    uid = settings["job_uid"]
    namespaces = (
        sandbox.KERNEL.enter_namespaces(job_dir, settings["disk_bytes"], uid, settings["reveal"])
        if settings["namespaces"]
        else []
    )
    if settings["reveal"] and "revealed" not in namespaces:
        uid = 0  # the Python installation stays out of reach of another uid: keep 0, no capabilities
    if "tmpfs" not in namespaces and uid:
        os.chown(job_dir, uid, uid)
    os.chdir(job_dir)
    os.environ.clear()
    os.environ.update(settings["child_env"] | {"HOME": job_dir, "TMPDIR": job_dir})
    tempfile.tempdir = job_dir
    sandbox.apply_rlimits(
        cpu_seconds=params["cpu_seconds"], memory_bytes=settings["memory_bytes"], file_bytes=settings["file_bytes"]
    )
    # /dev/null is writable: real chart code sends output there
    landlock = (
        sandbox.KERNEL.install_landlock(settings["read_roots"], [job_dir, "/dev/null"])
        if settings["landlock"]
        else False
    )
    user = sandbox.KERNEL.drop_privileges(uid)
    seccomp = sandbox.KERNEL.install_seccomp(os.getpid()) if settings["seccomp"] else False
    return {"namespaces": namespaces, "landlock": landlock, "seccomp": seccomp, "user": user, "role": role}


def _runner(channel: int, job_dir: str, params: dict[str, Any], settings: dict[str, Any]) -> None:
    from renderers import audit, execute, handover, instrument

    t_start = time.perf_counter()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    job = parse_frame(read_all(channel, settings["code_bytes"]) or b"")
    code = job[0].get("code") if job else None
    if not isinstance(code, str):
        os._exit(6)
    isolation = _seal("runner", channel, job_dir, params, settings)
    out_writer = execute.BoundedWriter(settings["stdout_limit"])
    sys.stdout = sys.stderr = out_writer
    violations = audit.install_audit_hook(job_dir, settings["read_roots"])
    t_sealed = time.perf_counter()
    # Our own modules leave sys.modules so user code cannot simply import and patch them.
    for name in [n for n in sys.modules if n.split(".")[0] in ("renderers", "vlrl", "rewards", "games", "app")]:
        del sys.modules[name]

    result = execute.run_script(code, is_violation=lambda: bool(violations()))
    t_ran = time.perf_counter()
    fig = result.pop("figure", None)
    blob = b""
    if result["ok"]:
        try:
            blob, note = handover.pack_handover(fig, instrument.type_call_records(), instrument.color_records())
            if note:
                print(f"[renderer] {note}")
        except MemoryError:
            result.update(ok=False, error_kind="memory", error="the figure is too large to hand over")
        except Exception as exc:  # noqa: BLE001 - anything unpicklable, in the user's objects
            result.update(
                ok=False,
                error_kind="runtime",
                error=f"the figure holds objects that cannot leave the sandbox: {type(exc).__name__}: {str(exc)[:300]}",
            )
    result["stdout"] = out_writer.getvalue()
    result["violations"] = violations()[:20]
    result["isolation"] = isolation
    result["phases"] = {
        "seal": t_sealed - t_start,
        "run": t_ran - t_sealed,
        "handover": time.perf_counter() - t_ran,
        "fork_to_start": t_start - params["forked_at"],
        "page_faults": float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0),
    }
    write_frame(channel, result, blob)


def _drawer(channel: int, job_dir: str, params: dict[str, Any], settings: dict[str, Any]) -> None:
    from renderers import execute, handover

    t_start = time.perf_counter()
    # A short-lived process that builds one object graph and draws it: collecting cycles
    # would only walk (and copy-on-write) the whole heap for nothing.
    gc.disable()
    _seal("drawer", channel, job_dir, params, settings)
    job = parse_frame(read_all(channel, settings["handover_bytes"]) or b"")
    if job is None:
        os._exit(6)
    request, blob = job
    t_read = time.perf_counter()
    out: dict[str, Any] = {"ok": False}
    png = b""
    try:
        data = handover.load_handover(blob)
    except handover.ForgedHandover as exc:
        out.update(error_kind="forged", error=f"the figure handed over was refused: {exc}")
    except MemoryError:
        out.update(error_kind="memory", error="the figure handed over is too large to load")
    else:
        t_loaded = time.perf_counter()
        fig = data["figure"]
        try:
            png, out["trace"], out["size_px"] = execute.draw_figure(
                fig,
                dpi=request["dpi"],
                max_pixels=request["max_pixels"],
                with_trace=request["trace"],
                calls=data["calls"],
                colors=data["colors"],
            )
            out["ok"] = True
        except BaseException as exc:  # noqa: BLE001 - drawing the sender's figure may fail in any way
            out["error_kind"], out["error"] = execute.draw_failure(exc)
        out["phases"] = {"load": t_loaded - t_read, "draw": time.perf_counter() - t_loaded}
    out.setdefault("phases", {})["draw_start"] = t_read - t_start
    write_frame(channel, out, png)


def _job_main(role: str, channel: int, job_dir: str, params: dict[str, Any], settings: dict[str, Any]) -> NoReturn:
    from renderers import sandbox

    status = 0
    sandbox.KERNEL.die_with_parent()
    # In a PID namespace the zygote is outside it and reads as pid 0; once it is gone the
    # namespace's init (pid 1) or whoever adopted us is the parent instead.
    if os.getppid() != (0 if settings["pid_namespace"] else settings["zygote_pid"]):
        os._exit(5)  # the zygote died between fork and prctl
    try:
        (_runner if role == "runner" else _drawer)(channel, job_dir, params, settings)
    except MemoryError:
        status = 3
    except BaseException:  # noqa: BLE001 - anything here means the job is unusable
        status = 4
    os._exit(status)


# --------------------------------------------------------------------------- the zygote


def _start_pid_namespace() -> int:
    """Put every later child in a new PID namespace; its init (pid 1) dies with us.
    Returns the init's pid (0 where the kernel refuses)."""
    from renderers import sandbox

    if sandbox.KERNEL.prctl is None or sandbox.KERNEL.unshare(_CLONE_NEWPID) != 0:
        return 0
    pid = os.fork()
    if pid == 0:
        try:
            sandbox.KERNEL.die_with_parent()
            os.closerange(0, 65536)
            signal.signal(signal.SIGCHLD, lambda *_: None)
            while True:
                try:
                    os.waitpid(-1, 0)  # orphans re-parented to us
                except ChildProcessError:
                    signal.pause()
        finally:
            os._exit(0)
    return pid


def serve(ctrl: socket.socket, settings: dict[str, Any]) -> NoReturn:
    """The zygote's loop: spawn on request, report exits, die with the server."""
    settings["zygote_pid"] = os.getpid()
    init_pid = _start_pid_namespace() if settings["namespaces"] else 0
    settings["pid_namespace"] = bool(init_pid)
    ctrl.sendall(json.dumps({"pid_namespace": settings["pid_namespace"], "init_pid": init_pid}).encode())
    selector = selectors.DefaultSelector()
    selector.register(ctrl, selectors.EVENT_READ, None)
    children: dict[int, tuple[int, int, str]] = {}  # pidfd -> (job id, pid, job dir)
    try:
        while True:
            for key, _ in selector.select():
                if key.data is None:
                    msg, fds, _, _ = socket.recv_fds(ctrl, 65536, 1)
                    if not msg:
                        return
                    request = json.loads(msg)
                    channel = fds[0]
                    job_dir = tempfile.mkdtemp(prefix=f"{request['role']}{request['job']}-", dir=settings["root"])
                    request["params"]["forked_at"] = time.perf_counter()
                    pid = os.fork()
                    if pid == 0:
                        ctrl.close()
                        _job_main(request["role"], channel, job_dir, request["params"], settings)
                    os.close(channel)
                    pidfd = os.pidfd_open(pid)
                    children[pidfd] = (request["job"], pid, job_dir)
                    selector.register(pidfd, selectors.EVENT_READ, pidfd)
                    socket.send_fds(
                        ctrl,
                        [json.dumps({"job": request["job"], "role": request["role"], "pid": pid}).encode()],
                        [pidfd],
                    )
                else:
                    pidfd = key.data
                    job_id, pid, job_dir = children.pop(pidfd)
                    selector.unregister(pidfd)
                    _, status = os.waitpid(pid, 0)
                    os.close(pidfd)
                    shutil.rmtree(job_dir, ignore_errors=True)
                    ctrl.sendall(json.dumps({"exit": job_id, "pid": pid, "status": status}).encode())
    except (OSError, ValueError):
        return
    finally:
        for pidfd, (_, pid, job_dir) in children.items():
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
            shutil.rmtree(job_dir, ignore_errors=True)
        os._exit(0)
