"""Hostile programs against the sandboxed render pool (renderers.RenderPool).

The renderer executes code written by a model under RL, i.e. code optimised against our
reward and able to stumble on (or search for) any escape. Every program in HOSTILE below
is run on one shared pool, and for each we check not only the reported error_kind but
also the things that matter if the sandbox leaks:

  1. the expected error_kind (alternatives only where either is genuinely right);
  2. the job was stopped in time (r.seconds <= job timeout + 2 s);
  3. no sentinel path outside the job directory was created / altered / removed;
  4. the loopback TCP listener received no connection;
  5. no process is left behind (under the server, or anywhere with its cwd in the pool root);
  6. the server was not killed/restarted and the next job on the same pool still renders;
  7. the test process's secret appears nowhere in what the job returns.

A Hostile case may carry `hole=...`: a known escape, kept as a strict xfail that
documents the expected behaviour until renderers/ closes it (none is open now).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil
import pytest

from renderers import RenderPool, RenderResult

JOB_TIMEOUT = 3.0  # per-job wall-clock limit for everything not expected to hang
HANG_TIMEOUT = 2.0  # shorter limit for the programs expected to time out (keeps the file fast)
MAX_PIXELS = 4_000_000
STDOUT_LIMIT = 8192
# A smaller address-space allowance than the 2 GiB default: memory bombs that touch their
# pages hit the limit in well under a second instead of ~5 s, and charts need far less.
MEMORY_MB = 512

BAR = "import matplotlib.pyplot as plt\nplt.bar([1, 2, 3], [3, 1, 2])\n"
PLOT = "\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\n"

REAL_HOME = str(Path.home())  # computed here, in the test process: the job's ~ is its job dir
# Where RenderPool puts matplotlib's cache: outside the job dir but on the job's read allowlist.
MPL_CACHE = os.environ.get("MPLCONFIGDIR") or os.path.join(REAL_HOME, ".cache", "vlrl-matplotlib")
SECRET = f"s3cr3t-{uuid.uuid4().hex}"
TEST_PID = os.getpid()

# Prelude used by the hole-demonstrating programs: CPython audit hooks are not a security
# boundary. The hook is an ordinary Python closure reachable through gc, and its cells are
# writable, so a script can switch the file checks off (and then read/write as our uid).
TAMPER = """
import gc
for _f in gc.get_objects():
    if type(_f).__name__ == 'function' and _f.__name__ == 'hook' and _f.__code__.co_filename.endswith('sandbox.py'):
        _cells = dict(zip(_f.__code__.co_freevars, _f.__closure__))
        _cells['check_path'].cell_contents = lambda *a, **k: None
"""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pool():
    # The secret is put into the test process's environment BEFORE the pool (and so its
    # server) exists: nothing a job can see may carry it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLRL_TEST_SECRET", SECRET)
        p = RenderPool(
            workers=2,
            timeout=JOB_TIMEOUT,
            memory_mb=MEMORY_MB,
            dpi=100,
            max_pixels=MAX_PIXELS,
            stdout_limit=STDOUT_LIMIT,
        )
        try:
            yield p
        finally:
            p.close()


class Listener:
    """A loopback TCP server that never accepts on its own: any connection a job manages to
    open sits in the backlog, and select() tells us about it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple] = []

    def drain(self, wait: float = 0.05) -> list[tuple]:
        while select.select([self.sock], [], [], wait)[0]:
            conn, addr = self.sock.accept()
            conn.close()
            self.received.append(addr)
            wait = 0
        return self.received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def listener():
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture(scope="module")
def usr1_log():
    """Records SIGUSR1 delivered to the test process (the 'kill the test process' programs
    send SIGUSR1 rather than SIGKILL: the same check for the sandbox, without taking pytest
    down if it ever regresses)."""
    log: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: log.append(signum))
    yield log
    signal.signal(signal.SIGUSR1, old)


class Sentinels:
    """Fresh outside paths for one test; what a job must not create, alter or remove."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex
        self.out = f"/tmp/vlrl-sentinel-{tag}"  # must not exist afterwards
        self.outdir = f"/tmp/vlrl-sentinel-{tag}-dir"  # exists, must stay empty
        self.victim = f"/tmp/vlrl-victim-{tag}"  # exists, must keep its content
        self.secret_file = f"/tmp/vlrl-secret-{tag}"  # exists, holds SECRET
        self.home = os.path.join(REAL_HOME, f"vlrl_sentinel_{tag}")  # must not exist
        self.cache = os.path.join(MPL_CACHE, f"vlrl-sentinel-{tag}")  # must not exist
        self.victim_text = f"victim {tag}"
        os.mkdir(self.outdir)
        Path(self.victim).write_text(self.victim_text)
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, SECRET.encode())
        os.close(fd)

    def fill(self, code: str, pool: RenderPool, listener: Listener) -> str:
        for token, value in {
            "@OUTDIR@": self.outdir,
            "@OUT@": self.out,
            "@VICTIM@": self.victim,
            "@SECRET_FILE@": self.secret_file,
            "@HOME_SENTINEL@": self.home,
            "@HOME_NAME@": os.path.basename(self.home),
            "@CACHE_DIR@": MPL_CACHE,
            "@CACHE_NAME@": os.path.basename(self.cache),
            "@ROOT@": pool._root,
            "@PORT@": str(listener.port),
            "@TEST_PID@": str(TEST_PID),
            "@REAL_HOME@": REAL_HOME,
        }.items():
            code = code.replace(token, value)
        leftover = re.findall(r"@[A-Z_]+@", code)
        assert not leftover, f"unfilled placeholders {leftover}"
        return code

    def problems(self) -> list[str]:
        found = []
        for path in (self.out, self.home, self.cache):
            if os.path.lexists(path):
                found.append(f"outside path was created: {path}")
        if os.listdir(self.outdir):
            found.append(f"outside dir was written: {self.outdir}: {os.listdir(self.outdir)}")
        if not os.path.exists(self.victim):
            found.append(f"outside file was removed/renamed: {self.victim}")
        elif Path(self.victim).read_text() != self.victim_text:
            found.append(f"outside file was modified: {self.victim}")
        return found

    def cleanup(self) -> None:
        import shutil

        for path in (self.out, self.home, self.cache, self.victim, self.secret_file):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    pass
        shutil.rmtree(self.outdir, ignore_errors=True)


@pytest.fixture
def sentinels():
    s = Sentinels()
    yield s
    s.cleanup()


# --------------------------------------------------------------------------- helpers


def kind_of(r: RenderResult) -> str | None:
    return None if r.ok else r.error_kind


def leftover_processes(pool: RenderPool, wait: float = 2.0) -> list[str]:
    """Processes under the server (but its zygote and the jobs' PID-namespace init), or
    escaped anywhere with their cwd in the pool root."""
    server_pid = pool._proc.pid
    deadline = time.monotonic() + wait
    while True:
        left = []
        try:
            left += [
                f"{p.pid} (child of server)"
                for p in psutil.Process(server_pid).children(recursive=True)
                if p.pid not in pool.service_pids
            ]
        except psutil.NoSuchProcess:
            pass
        for p in psutil.process_iter(["pid", "cwd"]):
            cwd = p.info.get("cwd") or ""
            if p.info["pid"] not in pool.service_pids and cwd.startswith(pool._root):
                left.append(f"{p.info['pid']} (cwd {cwd})")
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def secret_leaks(r: RenderResult) -> list[str]:
    where = {
        "stdout": r.stdout,
        "error": r.error or "",
        "trace": json.dumps(r.trace, default=str),
        "violations": json.dumps(r.violations),
    }
    return [f"the test secret leaked into r.{k}" for k, v in where.items() if SECRET in v]


def describe(r: RenderResult) -> str:
    return (
        f"ok={r.ok} kind={r.error_kind} error={r.error!r} seconds={r.seconds:.2f} "
        f"violations={r.violations[:3]} stdout={r.stdout[:200]!r}"
    )


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Hostile:
    id: str
    code: str
    kinds: tuple  # acceptable error kinds; None means the render must succeed
    timeout: float = JOB_TIMEOUT
    check: Callable[[RenderResult], list[str]] | None = None  # extra, case-specific checks
    hole: str | None = None  # a known sandbox hole: strict xfail with this reason
    seccomp_only: bool = False  # relies on the kernel filter alone


def _error_has(*needles: str) -> Callable[[RenderResult], list[str]]:
    def check(r: RenderResult) -> list[str]:
        return [f"{n!r} not in error {r.error!r}" for n in needles if n not in (r.error or "")]

    return check


def _image_capped(r: RenderResult) -> list[str]:
    if r.png is None:
        return ["no image"]
    w, h = r.image.size
    return [] if w * h <= MAX_PIXELS else [f"image {w}x{h} exceeds {MAX_PIXELS} pixels"]


def _stdout_truncated(r: RenderResult) -> list[str]:
    problems = []
    if len(r.stdout) > STDOUT_LIMIT + 200:
        problems.append(f"stdout is {len(r.stdout)} characters, limit {STDOUT_LIMIT}")
    if "dropped" not in r.stdout[-200:]:
        problems.append("no 'dropped' note at the end of the truncated stdout")
    if not r.stdout.startswith("0\n1\n2\n"):
        problems.append("the start of the output was not kept")
    return problems


def _env_clean(r: RenderResult) -> list[str]:
    return [] if "VLRL_TEST_SECRET" not in r.stdout and "PATH" in r.stdout else [f"env: {r.stdout[:300]!r}"]


HOSTILE: list[Hostile] = [
    # ---- running forever: the wall-clock deadline must hold whatever the script does
    # plain infinite loop (CPU-bound)
    Hostile("loop_forever", "while True:\n    pass\n", ("timeout",), HANG_TIMEOUT),
    # SIGTERM/SIGINT ignored: the server must use SIGKILL, not a polite signal
    Hostile(
        "loop_sigterm_ignored",
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
        ("timeout",),
        HANG_TIMEOUT,
    ),
    # SIGXCPU ignored: the CPU rlimit's soft signal is not the only backstop
    Hostile(
        "loop_sigxcpu_ignored",
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
        ("timeout",),
        HANG_TIMEOUT,
    ),
    # sleeping uses no CPU, so the CPU rlimit never fires: only the wall clock stops it
    Hostile("sleep_forever", "import time\ntime.sleep(10**6)\n", ("timeout",), HANG_TIMEOUT),
    # the hang happens inside OUR savefig (a tick formatter), after the user code returned
    Hostile(
        "busy_plot_callback",
        "import matplotlib.pyplot as plt\nfrom matplotlib.ticker import FuncFormatter\n"
        "fig, ax = plt.subplots()\nax.plot([1, 2])\ndef fmt(x, pos):\n    while True:\n        pass\n"
        "ax.xaxis.set_major_formatter(FuncFormatter(fmt))\n",
        ("timeout",),
        HANG_TIMEOUT,
    ),
    # ---- process creation: every route must be refused (audit hook and seccomp)
    Hostile("fork_bomb", "import os\nwhile True:\n    os.fork()\n", ("forbidden",)),
    Hostile(
        "multiprocessing_process",
        "import multiprocessing as mp\np = mp.Process(target=print, args=('hi',))\np.start()\np.join()\n",
        ("forbidden",),
    ),
    Hostile("subprocess_run", "import subprocess\nsubprocess.run(['touch', '@OUT@'])\n", ("forbidden",)),
    Hostile(
        "subprocess_popen_shell",
        "import subprocess\nsubprocess.Popen('touch @OUT@', shell=True).wait()\n",
        ("forbidden",),
    ),
    Hostile("os_system", "import os\nos.system('touch @OUT@')\n", ("forbidden",)),
    Hostile("os_popen", "import os\nos.popen('touch @OUT@').read()\n", ("forbidden",)),
    Hostile("os_execv", "import os\nos.execv('/usr/bin/touch', ['touch', '@OUT@'])\n", ("forbidden",)),
    Hostile("os_posix_spawn", "import os\nos.posix_spawn('/usr/bin/touch', ['touch', '@OUT@'], {})\n", ("forbidden",)),
    Hostile("pty_spawn", "import pty\npty.spawn(['touch', '@OUT@'])\n", ("forbidden",)),
    # indirect imports must not dodge anything (the hook is on the action, not the name)
    Hostile("dunder_import_system", "__import__('os').system('touch @OUT@')\n", ("forbidden",)),
    Hostile(
        "getattr_builtins_import",
        "getattr(__builtins__, '__import__')('subprocess').check_output(['touch', '@OUT@'])\n",
        ("forbidden",),
    ),
    Hostile(
        "importlib_subprocess",
        "import importlib\nimportlib.import_module('subprocess').call(['touch', '@OUT@'])\n",
        ("forbidden",),
    ),
    # native code: dlopen is refused, so libc's system() is out of reach
    Hostile("ctypes_libc_system", "import ctypes\nctypes.CDLL('libc.so.6').system(b'touch @OUT@')\n", ("forbidden",)),
    # _posixsubprocess raises no audit event: only seccomp (no vfork/clone/execve) stops it,
    # so the kind is runtime (PermissionError: EPERM) rather than forbidden.
    Hostile(
        "raw_posixsubprocess",
        "import _posixsubprocess, os\nr, w = os.pipe()\n"
        "_posixsubprocess.fork_exec([b'/usr/bin/touch', b'@OUT@'], [b'/usr/bin/touch'], True, (), None, None,"
        " -1, -1, -1, -1, -1, -1, r, w, True, False, 0, None, None, None, -1, None, False)\n",
        ("forbidden",),
        seccomp_only=True,
    ),
    # ---- memory: the address-space limit turns bombs into MemoryError -> "memory"
    Hostile("memory_bytearray", "x = bytearray(10**11)\n", ("memory",)),
    Hostile("memory_growing_list", "x = []\nwhile True:\n    x.append([0] * 10**6)\n", ("memory",)),
    Hostile("memory_numpy", "import numpy as np\nx = np.ones((10**6, 10**6))\n", ("memory",)),
    Hostile("memory_list_multiply", "x = [0] * 10**10\n", ("memory",)),
    # ---- output and figure size: bounded, still rendered
    # a 500x500 inch figure would be 2.5e9 pixels at dpi 100: it must be drawn smaller
    Hostile(
        "huge_figure",
        "import matplotlib.pyplot as plt\nplt.figure(figsize=(500, 500))\nplt.plot([1, 2], [3, 4])\n",
        (None,),
        check=_image_capped,
    ),
    # a million prints must not blow up the result: stdout is truncated with a note
    Hostile(
        "stdout_flood", "for i in range(10**6):\n    print(i)\n" + PLOT, (None,), timeout=8.0, check=_stdout_truncated
    ),
    # ---- recursion
    Hostile(
        "recursion_plain", "def f(n):\n    return f(n + 1)\nf(0)\n", ("runtime",), check=_error_has("RecursionError")
    ),
    # a raised limit with recursion through C (map) overflows the C stack: SIGSEGV or a
    # RecursionError are both fine, as long as it is contained. (Pure-Python recursion to
    # 10**6 does not touch the C stack on 3.11+ and takes >2 s to unwind, i.e. a timeout.)
    Hostile(
        "recursion_deep_c_stack",
        "import sys\nsys.setrecursionlimit(10**6)\nf = lambda n: list(map(f, [n]))\nf(0)\n",
        ("crashed", "runtime"),
    ),
    # ---- writes outside the job directory
    Hostile("write_real_home", "open('@HOME_SENTINEL@', 'w').write('x')\n", ("forbidden",)),
    # ~ is the job dir inside the sandbox: allowed, and must not land in the real home
    Hostile(
        "write_expanduser_home",
        "import os\nopen(os.path.join(os.path.expanduser('~'), '@HOME_NAME@'), 'w')"
        ".write('x')\nassert os.path.expanduser('~') != '@REAL_HOME@'\n" + PLOT,
        (None,),
    ),
    Hostile("write_tmp", "open('@OUT@', 'w').write('x')\n", ("forbidden",)),
    Hostile("write_pathlib", "import pathlib\npathlib.Path('@OUT@').write_text('x')\n", ("forbidden",)),
    Hostile(
        "write_os_open",
        "import os\nos.write(os.open('@OUT@', os.O_WRONLY | os.O_CREAT, 0o644), b'x')\n",
        ("forbidden",),
    ),
    Hostile(
        "write_tmp_relative_after_chdir",
        "import os\nos.chdir('/tmp')\nopen('@OUT@'.rsplit('/', 1)[1], 'w').write('x')\n",
        ("forbidden",),
    ),
    Hostile("rename_outside_in", "import os\nos.rename('@VICTIM@', 'stolen')\n", ("forbidden",)),
    Hostile(
        "replace_inside_out", "import os\nopen('mine', 'w').write('x')\nos.replace('mine', '@OUT@')\n", ("forbidden",)
    ),
    Hostile("remove_outside", "import os\nos.remove('@VICTIM@')\n", ("forbidden",)),
    Hostile("truncate_outside", "import os\nos.truncate('@VICTIM@', 0)\n", ("forbidden",)),
    Hostile("mkdir_outside", "import os\nos.mkdir('@OUT@')\n", ("forbidden",)),
    Hostile("mkstemp_outside", "import tempfile\ntempfile.mkstemp(dir='@OUTDIR@')\n", ("forbidden",)),
    Hostile(
        "shutil_copy_out", "import shutil\nopen('mine', 'w').write('x')\nshutil.copy('mine', '@OUT@')\n", ("forbidden",)
    ),
    # a symlink made inside the job dir must not be a door to the outside
    Hostile(
        "symlink_file_trick", "import os\nos.symlink('@OUT@', 'link')\nopen('link', 'w').write('x')\n", ("forbidden",)
    ),
    Hostile(
        "symlink_dir_trick", "import os\nos.symlink('@OUTDIR@', 'd')\nopen('d/pwned', 'w').write('x')\n", ("forbidden",)
    ),
    Hostile("hardlink_outside_in", "import os\nos.link('@VICTIM@', 'h')\nopen('h', 'w').write('x')\n", ("forbidden",)),
    # the hook resolves paths with primitives captured at install time: patching the
    # Python-level helpers (and builtins.open) must not steer it
    Hostile(
        "patched_path_helpers",
        "import builtins, io, os, posixpath\nreal_open = io.open\n"
        "builtins.open = lambda *a, **k: None\nos.path.realpath = lambda p, **k: os.getcwd() + '/x'\n"
        "posixpath.abspath = lambda p: os.getcwd() + '/x'\nos.path.abspath = posixpath.abspath\n"
        "os.fspath = lambda p: os.getcwd() + '/x'\nreal_open('@OUT@', 'w').write('x')\n",
        ("forbidden",),
    ),
    # ---- reads outside the allowlist (and the secret in the test process's environment)
    Hostile("read_etc_passwd", "print(open('/etc/passwd').read())\n", ("forbidden",)),
    Hostile("read_secret_file", "print(open('@SECRET_FILE@').read())\n", ("forbidden",)),
    Hostile("chdir_root_relative_read", "import os\nos.chdir('/')\nprint(open('etc/passwd').read())\n", ("forbidden",)),
    Hostile("io_open_code", "import io\nprint(io.open_code('/etc/passwd').read())\n", ("forbidden",)),
    Hostile("read_proc_self_environ", "print(open('/proc/self/environ').read())\n", ("forbidden",)),
    Hostile(
        "read_proc_parent_environ", "import os\nprint(open(f'/proc/{os.getppid()}/environ').read())\n", ("forbidden",)
    ),
    Hostile("read_proc_testproc_environ", "print(open('/proc/@TEST_PID@/environ').read())\n", ("forbidden",)),
    Hostile(
        "read_proc_testproc_mem",
        "print(open('/proc/@TEST_PID@/maps').read())\nprint(open('/proc/@TEST_PID@/mem', 'rb').read(16))\n",
        ("forbidden",),
    ),
    # the job's environment is scrubbed: printing it is allowed and shows no secret
    Hostile("print_environ", "import os\nprint(dict(os.environ))\n" + PLOT, (None,), check=_env_clean),
    # other jobs' directories and result files live in the pool root
    Hostile("list_pool_root", "import os\nprint(os.listdir('@ROOT@'))\n", ("forbidden",)),
    Hostile("list_parent_dir", "import os\nprint(os.listdir('..'))\n", ("forbidden",)),
    Hostile("glob_root_dir", "import glob\nprint(glob.glob('*', root_dir='/etc'))\n", ("forbidden",)),
    # ---- network: the loopback listener must see nothing
    Hostile(
        "socket_create_connection",
        "import socket\nsocket.create_connection(('127.0.0.1', @PORT@)).send(b'x')\n",
        ("forbidden",),
    ),
    Hostile(
        "raw_socket_connect", "import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', @PORT@))\n", ("forbidden",)
    ),
    Hostile(
        "urllib_urlopen",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:@PORT@/', timeout=1)\n",
        ("forbidden",),
    ),
    Hostile(
        "http_client",
        "import http.client\nc = http.client.HTTPConnection('127.0.0.1', @PORT@, timeout=1)\nc.request('GET', '/')\n",
        ("forbidden",),
    ),
    # ---- signals: the server and the test process are out of reach
    Hostile("kill_parent", "import os\nos.kill(os.getppid(), 9)\n", ("forbidden",)),
    Hostile("killpg_parent", "import os\nos.killpg(os.getpgid(os.getppid()), 9)\n", ("forbidden",)),
    Hostile("kill_test_process", "import os, signal\nos.kill(@TEST_PID@, signal.SIGUSR1)\n", ("forbidden",)),
    # ---- exits and crashes: reported, not mistaken for success
    Hostile("sys_exit", "import sys\nsys.exit(3)\n", ("runtime",), check=_error_has("SystemExit: 3")),
    Hostile("raise_systemexit", "raise SystemExit\n", ("runtime",), check=_error_has("SystemExit")),
    Hostile("os_exit_after_plot", PLOT + "import os\nos._exit(0)\n", ("crashed",)),
    # raw memory reads through ctypes are refused before they happen...
    Hostile("ctypes_string_at_null", "import ctypes\nctypes.string_at(0)\n", ("forbidden",)),
    # ...so a segfault is staged another way: the job dies alone and is reported
    Hostile("segfault", "import faulthandler\nfaulthandler._sigsegv()\n", ("crashed",)),
    Hostile("os_abort", "import os\nos.abort()\n", ("crashed",)),
    # ---- threads left running must not keep the job (or a process) alive
    Hostile(
        "thread_sleeping",
        "import threading, time\nthreading.Thread(target=time.sleep, args=(100,)).start()\n" + PLOT,
        (None,),
    ),
    # A spinning thread competes for the GIL with OUR savefig afterwards (savefig is ~4x
    # slower, 1.3-5.7 s observed for a trivial plot), so on a loaded machine the job may
    # legitimately run out of time: either outcome is fine, the hygiene checks are the point.
    Hostile(
        "thread_spinning",
        "import threading\ndef spin():\n    while True:\n        pass\nthreading.Thread(target=spin).start()\n" + PLOT,
        (None, "timeout"),
    ),
    # ---- tampering with the sandbox itself
    Hostile("setrlimit", "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (10**6, 10**6))\n", ("forbidden",)),
    Hostile("prlimit", "import resource\nresource.prlimit(0, resource.RLIMIT_AS, (-1, -1))\n", ("forbidden",)),
    Hostile("add_audit_hook", "import sys\nsys.addaudithook(lambda event, args: None)\n", ("forbidden",)),
    # a refusal caught by the script still marks the job forbidden
    Hostile("caught_violation", "try:\n    open('/etc/passwd')\nexcept Exception:\n    pass\n" + PLOT, ("forbidden",)),
    # junk "result frames" on every descriptor, then a silent exit: never a success
    Hostile(
        "fake_result_frame",
        "import os, json, struct\n"
        "p = json.dumps({'ok': True, 'nonce': '0' * 32, 'error_kind': None}).encode()\n"
        "frame = b'VLRLRES1' + struct.pack('<QQ', len(p), 0) + p\n"
        "for fd in range(3, 256):\n    try:\n        os.write(fd, frame + b'junk' * 8)\n"
        "    except OSError:\n        pass\nos._exit(0)\n",
        ("crashed",),
    ),
    # ---- escapes through interpreter introspection and fd tricks (closed by the static
    # introspection check, frame-access refusal, and Landlock file confinement)
    Hostile("audit_hook_tamper_write", TAMPER + "open('@OUT@', 'w').write('pwned')\n" + PLOT, ("forbidden",)),
    Hostile(
        "audit_hook_tamper_steal_secret",
        TAMPER
        + """
import re
found = set()
with open('/proc/@TEST_PID@/maps') as maps, open('/proc/@TEST_PID@/mem', 'rb', 0) as mem:
    for line in maps:
        span, perms = line.split()[:2]
        lo, hi = (int(x, 16) for x in span.split('-'))
        if 'rw' not in perms or hi - lo > 2**28:
            continue
        try:
            mem.seek(lo)
            found.update(m.decode() for m in re.findall(rb's3cr3t-[0-9a-f]{32}', mem.read(hi - lo)))
        except OSError:
            pass
print(sorted(found))
"""
        + PLOT,
        ("forbidden",),
    ),
    Hostile(
        "dir_fd_write",
        "import os\nd = os.open('@CACHE_DIR@', os.O_RDONLY)\n"
        "os.write(os.open('@CACHE_NAME@', os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=d), b'x')\n" + PLOT,
        ("forbidden",),
    ),
    Hostile(
        "dir_fd_read",
        "import os\nd = os.open('/usr/share/zoneinfo', os.O_RDONLY)\n"
        "os.makedirs('a/b/c')\nos.chdir('a/b/c')\n"
        "print(os.read(os.open('../../../etc/passwd', os.O_RDONLY, dir_fd=d), 64))\n" + PLOT,
        ("forbidden",),
        check=lambda r: ["/etc/passwd was read"] if "root:" in r.stdout else [],
    ),
    Hostile(
        "symlink_swap_race",
        """
import os, threading, time
os.makedirs('A'); os.makedirs('B')
open('A/inside', 'w').close()
os.symlink('inside', 'A/l')                  # A/l -> A/inside: allowed
os.symlink('@OUTDIR@/pwned', 'B/l')          # B/l -> outside: never opened directly
os.rename('A', 'p')
stop = []
def flip():  # renaming directories inside the job dir is allowed
    while not stop:
        os.rename('p', 'B2'); os.rename('B', 'p'); os.rename('p', 'B'); os.rename('B2', 'p')
t = threading.Thread(target=flip)
t.start()
t0 = time.time()
while time.time() < t0 + 2.0 and not os.path.exists('@OUTDIR@/pwned'):
    try:
        with open('p/l', 'a') as fh:
            fh.write('x')
    except OSError:
        pass
stop.append(1)
t.join()
"""
        + PLOT,
        ("forbidden", None),
    ),
    Hostile(
        "forged_result_with_stolen_nonce",
        """
import sys, os, json, struct
f = sys._getframe()
while f is not None and 'nonce' not in f.f_locals:
    f = f.f_back
payload = json.dumps({'ok': True, 'nonce': f.f_locals['nonce'], 'trace': {'forged': True}}).encode()
os.write(f.f_locals['result_fd'], b'VLRLRES1' + struct.pack('<QQ', len(payload), 0) + payload)
os._exit(0)
""",
        ("forbidden",),
    ),
    Hostile(
        "clear_violations",
        """
import sys
try:
    open('/etc/passwd')
except PermissionError:
    pass
for cell in sys._getframe().f_back.f_locals['is_violation'].__closure__:
    for inner in getattr(cell.cell_contents, '__closure__', None) or ():
        if isinstance(inner.cell_contents, list):
            inner.cell_contents.clear()
"""
        + PLOT,
        ("forbidden",),
    ),
]


def _params():
    for case in HOSTILE:
        marks = [pytest.mark.xfail(reason=case.hole, strict=True)] if case.hole else []
        yield pytest.param(case, id=case.id, marks=marks)


def test_corpus_is_large_enough():
    assert len(HOSTILE) >= 30
    assert len({c.id for c in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("case", list(_params()))
def test_hostile_program(pool, listener, usr1_log, sentinels, case):
    if case.seccomp_only and not pool.seccomp:
        pytest.skip("no seccomp filter on this platform")
    code = sentinels.fill(case.code, pool, listener)
    restarts = pool.restarts
    r = pool.render(code, timeout=case.timeout)

    problems = []
    if kind_of(r) not in case.kinds:
        problems.append(f"expected kind in {case.kinds}, got {kind_of(r)!r}")
    if r.seconds > case.timeout + 2:
        problems.append(f"took {r.seconds:.2f} s with a {case.timeout:g} s limit")
    if case.check is not None:
        problems += case.check(r)
    problems += sentinels.problems()
    if listener.drain():
        problems.append(f"the listener received connections: {listener.received}")
    if usr1_log:
        problems.append("the test process received a signal from the job")
    problems += secret_leaks(r)
    left = leftover_processes(pool)
    if left:
        problems.append(f"processes left behind: {left}")
    if pool.restarts != restarts or pool._proc.poll() is not None:
        problems.append("the render server died during the job")
    after = pool.render(BAR)
    if not after.ok:
        problems.append(f"the next job failed: {describe(after)}")
    assert not problems, f"{case.id}: {problems}\nresult: {describe(r)}"


# --------------------------------------------------------------------------- pool-level behaviour


def test_many_concurrent_jobs(pool):
    """20 jobs at once on 2 workers: all rendered, results in input order, no crosstalk."""
    codes = [f"print({i})\nimport matplotlib.pyplot as plt\nplt.bar([1, 2], [{i}, {i + 1}])\n" for i in range(20)]
    results = pool.render_many(codes)
    assert [r.ok for r in results] == [True] * 20, [describe(r) for r in results if not r.ok]
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(20)]
    assert all(r.png for r in results)
    assert leftover_processes(pool) == []


def test_state_does_not_leak_between_jobs(pool):
    """Each job is a fresh fork: rcParams, globals, builtins and patches die with it."""
    first = pool.render(
        "import builtins, matplotlib, matplotlib.pyplot as plt\n"
        "plt.rcParams['lines.linewidth'] = 9\nLEAKED_GLOBAL = 1\nbuiltins.LEAKED_BUILTIN = 1\n"
        "plt.bar = None\nplt.plot([1, 2], [2, 1])\n"
    )
    assert first.ok, describe(first)
    second = pool.render(
        "import matplotlib, matplotlib.pyplot as plt\n"
        "assert plt.rcParams['lines.linewidth'] == matplotlib.rcParamsDefault['lines.linewidth'], plt.rcParams['lines.linewidth']\n"
        "assert plt.bar is not None\nplt.bar([1, 2], [1, 2])\n"
    )
    assert second.ok, describe(second)
    third = pool.render("print(LEAKED_GLOBAL)\n")
    assert kind_of(third) == "runtime" and "NameError" in third.error, describe(third)
    fourth = pool.render("print(LEAKED_BUILTIN)\n")
    assert kind_of(fourth) == "runtime" and "NameError" in fourth.error, describe(fourth)


@pytest.fixture(scope="module")
def scratch_pool():
    """A separate pool for the tests that kill its server (never the shared one)."""
    p = RenderPool(workers=1, timeout=JOB_TIMEOUT, memory_mb=MEMORY_MB)
    try:
        yield p
    finally:
        p.close()


def test_pool_survives_server_sigkill(scratch_pool):
    """If the server dies (it should not), it is restarted and in-flight jobs are resent."""
    pool = scratch_pool
    assert pool.render(BAR).ok
    restarts = pool.restarts
    # killed while a job is queued / running
    fut = pool.submit("import time\ntime.sleep(0.3)\n" + BAR)
    os.killpg(pool._proc.pid, signal.SIGKILL)
    r = fut.result(timeout=60)
    assert r.ok, describe(r)
    assert pool.restarts == restarts + 1
    # killed right before submitting
    os.killpg(pool._proc.pid, signal.SIGKILL)
    r = pool.submit(BAR).result(timeout=60)
    assert r.ok, describe(r)
    assert pool.render(BAR).ok
    assert leftover_processes(pool) == []


def test_job_submitted_during_recovery_is_not_lost(scratch_pool):
    pool = scratch_pool
    assert pool.render(BAR).ok
    in_window, restarted = threading.Event(), threading.Event()
    real_start = pool._start

    def slow_start():  # widen the window deterministically; the same happens with real timing
        pool._start = real_start
        in_window.set()
        time.sleep(0.5)
        try:
            real_start()
        finally:
            restarted.set()

    pool._start = slow_start
    try:
        os.killpg(pool._proc.pid, signal.SIGKILL)
        assert in_window.wait(30), "the pool never tried to restart its server"
        fut = pool.submit(BAR)  # lands between "collect the in-flight jobs" and "new server"
        assert restarted.wait(60), "the server did not come back"
        r = fut.result(timeout=4)  # the new server is warm: a resent bar chart takes ~0.1 s
    finally:
        pool._start = real_start
    assert r.ok, describe(r)


def test_jobs_die_with_their_server(scratch_pool):
    pool = scratch_pool
    fut = pool.submit("import time\ntime.sleep(30)\n", timeout=1)
    kids: list[psutil.Process] = []
    deadline = time.monotonic() + 10
    while not kids and time.monotonic() < deadline:
        kids = psutil.Process(pool._proc.pid).children(recursive=True)
        time.sleep(0.05)
    assert kids, "the job never started"
    os.killpg(pool._proc.pid, signal.SIGKILL)
    try:
        r = fut.result(timeout=60)  # resent to the new server, where it times out
        assert kind_of(r) == "timeout", describe(r)
        gone, alive = psutil.wait_procs(kids, timeout=2)
        assert alive == [], f"orphaned job processes still running: {[p.pid for p in alive]}"
    finally:
        for p in kids:  # processes this test caused: end them by pid
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
