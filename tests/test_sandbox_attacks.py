"""Reward-hacking attacks on the sandboxed render pool, as an RL policy would find them.

tests/test_sandbox.py checks that a hostile script cannot get *out* (files, network,
processes). This file checks what a policy optimised against our reward gains by staying
*in* and lying, or by leaning on the machine:

  1. reference theft   - later jobs recover a previous job's code/results (a unique marker)
                         from their own heap, /proc, the pool root, /dev/shm, SysV shm;
  2. forged results    - fake result frames / pickles written to every descriptor, stolen
                         nonces through frames reached without a literal `_getframe`;
  3. tampered traces   - monkeypatched matplotlib, recorder state reached through
                         `__globals__` / `__subclasses__` / pickle / runtime-decoded names,
                         desynchronised artists: the trace and PNG must stay those of the
                         chart the figure really holds (compared with an honest twin);
  4. deadline escapes  - setpgid/setsid/PDEATHSIG, sleeping in C, masked signals, writer
                         threads: every job dies at its deadline and nothing outlives the pool;
  5. kernel surface    - SysV IPC, memfd, scheduling/priority of the server, fanotify /
                         inotify, the new mount API, perf, userfaultfd, keyctl, adjtimex,
                         SIGIO via F_SETOWN, disk filling;
  6. ctypes            - raw memory reads/writes and foreign calls, .so loading;
  7. legit charts      - what the sandbox must keep rendering;
  8. a mixed, policy-style batch through render_many.

Every hostile job is followed by the same side-effect checks (hygiene): time, leftover
processes, server alive and not restarted, next job fine, no SysV objects created, the
server's (and this process's) nice/affinity/scheduler/ionice unchanged, no signal delivered
to this process, nothing left in the pool root, the reference marker nowhere.

Attacks that need raw syscalls reach libc without dlopen/dlsym: the offset of each libc
function from `ctypes._memmove_addr` (itself a libc address) is computed here, in the test
process, and baked into the job. x86_64 + glibc only; elsewhere those cases are skipped.

Everything that could harm the machine if a hole is open is bounded: small sizes (16 MiB),
SCHED_FIFO only set and immediately reverted, scheduler/nice/affinity/ionice of the server
and of this process restored after each case, SysV objects removed (ipcrm), escaped job
processes killed by pid, pytest timeouts on every test.
"""

from __future__ import annotations

import ctypes
import dataclasses
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable

import psutil
import pytest

from renderers import PoolOptions, RenderPool, RenderResult

# --------------------------------------------------------------------------- settings

JOB_TIMEOUT = 3.0  # per-job limit for everything not expected to hang
THEFT_TIMEOUT = 6.0  # heap scans bound themselves to ~2.5 s, this is headroom
HANG_TIMEOUT = 2.0  # jobs expected to be killed at their deadline
DEADLINE_SLACK = 1.5  # a job must be over within timeout + this
MEMORY_MB = 512
MAX_PIXELS = 4_000_000
DISK_MB = 64  # per-job disk cap asked of the pool (when PoolOptions knows disk_mb)
LEAK_MB = 16  # size of every leak probe (shm, memfd, files)
FILL_FILES = 12  # 12 x 16 MiB = 192 MiB, three times DISK_MB

MARKER = "REFMARK" + uuid.uuid4().hex  # only the reference job ever holds this
TEST_PID = os.getpid()
FAIL = "<any failure>"  # in Case.kinds: any error kind is acceptable
X86_64_GLIBC = platform.machine() == "x86_64" and platform.libc_ver()[0] == "glibc"
SYSV_KEY_BASE = 0x7E570000  # keys of the SysV objects the attacks create (cleanup finds them)


def pool_kwargs(**extra) -> dict:
    kw = dict(timeout=JOB_TIMEOUT, memory_mb=MEMORY_MB, dpi=100, max_pixels=MAX_PIXELS)
    if "disk_mb" in getattr(PoolOptions, "__dataclass_fields__", {}):
        kw["disk_mb"] = DISK_MB
    kw.update(extra)
    return kw


# --------------------------------------------------------------------------- scripts

# The chart every tamper case really draws, and the one a forger claims.
HONEST = """
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
bars = ax.bar(['a', 'b', 'c'], [3, 1, 2], color='tab:blue', label='bars')
line, = ax.plot([0, 1, 2], [1, 2, 3], color='green', label='line')
ax.set_title('real')
ax.set_xlabel('x real')
ax.legend()
"""
NEXT = "import matplotlib.pyplot as plt\nplt.bar([1, 2, 3], [2, 3, 1])\nplt.title('next')\n"
PLOT = "\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('after')\n"

# A legit script that handles data the next jobs must never see: in its code, its title,
# its stdout and a data file it writes into its job dir.
REFERENCE = f"""
import tempfile
import matplotlib.pyplot as plt
secret = '{MARKER}'
with open('data.csv', 'w') as fh:
    fh.write('label,value\\n' + secret + ',3\\n')
with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as fh:
    fh.write(secret)
fig, ax = plt.subplots()
ax.bar(['a', 'b', 'c'], [3, 1, 2])
ax.set_title(secret)
print(secret)
plt.savefig('reference.png')
"""

# Solid-colour PNGs built without PIL (the job may not have it imported).
PNG_HELPER = """
import struct, zlib
def _chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
def red_png(w=400, h=300):
    raw = (b'\\x00' + b'\\xff\\x00\\x00' * w) * h
    return (b'\\x89PNG\\r\\n\\x1a\\n' + _chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + _chunk(b'IDAT', zlib.compress(raw)) + _chunk(b'IEND', b''))
def huge_png(w=12000, h=12000):  # 1-bit grey: 18 MB raw, a few KB compressed
    z = zlib.compressobj()
    row = b'\\x00' + b'\\x00' * ((w + 7) // 8)
    data = b''.join(z.compress(row) for _ in range(h)) + z.flush()
    return (b'\\x89PNG\\r\\n\\x1a\\n' + _chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 1, 0, 0, 0, 0))
            + _chunk(b'IDAT', data) + _chunk(b'IEND', b''))
"""


def _libc_offsets() -> dict[str, int]:
    """libc function -> its offset from ctypes._memmove_addr (same libc, same CPU => same
    offset in the job, whatever ASLR did)."""
    if not X86_64_GLIBC:
        return {}
    libc = ctypes.CDLL(None)
    base = ctypes._memmove_addr
    out = {}
    for name in (
        "syscall",
        "getpid",
        "prctl",
        "shmget",
        "shmat",
        "shmctl",
        "msgget",
        "semget",
        "write",
        "__errno_location",
    ):
        try:
            out[name] = ctypes.cast(getattr(libc, name), ctypes.c_void_p).value - base
        except AttributeError:
            pass
    return out


LIBC_OFFSETS = _libc_offsets()

# Prelude for attacks that call libc with no dlopen/dlsym (a foreign call through CFUNCTYPE).
# errno is read through libc's __errno_location, not ctypes.get_errno (an audited event), so
# a refusal seen here comes from the call itself or from the kernel.
LIBC = """
import ctypes, os
_OFF = @LIBC_OFFSETS@
def libc(name, restype=ctypes.c_long):
    return ctypes.CFUNCTYPE(restype)(ctypes._memmove_addr + _OFF[name])
_errno = ctypes.CFUNCTYPE(ctypes.POINTER(ctypes.c_int))(ctypes._memmove_addr + _OFF['__errno_location'])
def _arg(a):
    return ctypes.c_long(a) if isinstance(a, int) else a
def call(name, *args):
    res = libc(name)(*[_arg(a) for a in args])
    return res, _errno().contents.value
def sys_call(nr, *args):
    return call('syscall', nr, *args)
def must(what, res_err):
    res, err = res_err
    if res < 0 or res == 0xFFFFFFFF:
        raise OSError(err, os.strerror(err) + ' (' + what + ')')
    print(what + '_OK', res)
    return res
"""

# x86_64 syscall numbers used by the attacks
NR = dict(
    shmget=29,
    shmat=30,
    shmctl=31,
    semget=64,
    msgget=68,
    memfd_create=319,
    setpriority=141,
    sched_setaffinity=203,
    sched_setscheduler=144,
    sched_setattr=314,
    ioprio_set=251,
    fanotify_init=300,
    inotify_init1=294,
    inotify_add_watch=254,
    fsopen=430,
    open_tree=428,
    fspick=433,
    perf_event_open=298,
    userfaultfd=323,
    keyctl=250,
    add_key=248,
    adjtimex=159,
    prctl=157,
    setpgid=109,
    setsid=112,
    unshare=272,
)

# A scanner over the job's own address space that never faults: each chunk is handed to
# write(2) on a pipe, which answers EFAULT for unmapped memory instead of crashing. The
# chunk view comes from `@VIEW@` (ctypes Union: no audit event; from_address; numpy).
HEAP_SCAN = """
import os, re, fcntl, time
r, w = os.pipe()
try:
    fcntl.fcntl(w, 1031, 1 << 16)  # F_SETPIPE_SZ
except OSError:
    pass
os.set_blocking(w, False)
CH = 1 << 16
pat = re.compile(b'REFMARK[0-9a-f]{32}')
found = set()
t_end = time.monotonic() + 2.5
@VIEW@
def scan(lo, hi):
    a = lo
    while a < hi and time.monotonic() < t_end:
        try:
            n = os.write(w, view(a))
        except OSError:
            n = 0
        if n:
            data = os.read(r, n)
            if b'REFMARK' in data:
                found.update(pat.findall(data))
        a += CH
# seeds in the brk heap (small malloc), the mmap area (arenas, big buffers) and libraries;
# windows closer than 1 GiB are merged, so the gaps between arenas are covered too
_keep = [bytearray(100000), bytearray(300000), 'x' * 1000]
seeds = sorted({id(x) & ~(CH - 1) for x in [1, 'a', [], {}, object(), os, re, scan] + _keep})
spans = []
for s in seeds:
    lo, hi = max(s - (64 << 20), CH), s + (64 << 20)
    if spans and lo <= spans[-1][1] + (1 << 30):
        spans[-1][1] = max(spans[-1][1], hi)
    else:
        spans.append([lo, hi])
for lo, hi in spans:
    scan(lo, hi)
print('FOUND', sorted(f.decode() for f in found))
"""
VIEW_UNION = """
import ctypes
class _U(ctypes.Union):
    _fields_ = [('addr', ctypes.c_void_p), ('ptr', ctypes.POINTER(ctypes.c_char * CH))]
_u = _U()
def view(a):
    _u.addr = a
    return _u.ptr.contents
"""
VIEW_FROM_ADDRESS = """
import ctypes
def view(a):
    return (ctypes.c_char * CH).from_address(a)
"""
VIEW_NUMPY = """
import numpy as np
class _Mem:
    def __init__(self, a):
        self.__array_interface__ = {'data': (a, True), 'shape': (CH,), 'typestr': '|u1', 'version': 3}
def view(a):
    return np.asarray(_Mem(a))
"""

# Frames reached without naming `_getframe` / `f_back` in the script's own code.
FRAMES_VIA_EXEC = """
exec("import sys\\n_frames = []\\n_f = sys._getframe()\\nwhile _f is not None:\\n    _frames.append(_f)\\n    _f = _f.f_back")
"""
FRAMES_VIA_WALK_STACK = """
import traceback
_summary = traceback.StackSummary.extract(traceback.walk_stack(None), capture_locals=True, lookup_lines=False)
_locals = {}
for _fs in _summary:
    for _k, _v in (_fs.locals or {}).items():
        _locals.setdefault(_k, _v)
"""
FRAMES_VIA_INSPECT_IN_EXEC = """
exec("import inspect\\n_frames = [fi.frame for fi in inspect.stack(0)]")
"""
FRAMES_VIA_EVAL_LAMBDA = """
_gi = eval("lambda g: g.gi" + "_frame")
def _gen():
    f = _gi(_g)
    fr = []
    while f is not None:
        fr.append(f)
        f = getattr(f, 'f_' + 'back')
    yield fr
_g = _gen()
_frames = next(_g)
"""

# What a forger sends: a result claiming the FORGED chart, in every framing we can think
# of (the old JSON frame, pickles raw and length-prefixed as multiprocessing does).
FORGE_PAYLOADS = """
import json, os, pickle, struct
_png = red_png()
_trace = {'types': {'pie': 3}, 'texts': ['FORGED'], 'axes': [{'title': 'FORGED', 'bars': [{'values': [9, 9, 9]}]}]}
def frames_for(nonce):
    res = {'ok': True, 'nonce': nonce, 'error_kind': None, 'trace': _trace, 'png': _png, 'stdout': '',
           'violations': [], 'id': 0, 'seconds': 0.1}
    js = json.dumps({k: v for k, v in res.items() if k != 'png'}).encode()
    pk = pickle.dumps(res)
    return [b'VLRLRES1' + struct.pack('<QQ', len(js), len(_png)) + js + _png,
            struct.pack('!i', len(pk)) + pk, struct.pack('<Q', len(pk)) + pk, struct.pack('<I', len(pk)) + pk, pk]
def spray(frames, fds=range(0, 1024)):
    for fd in fds:
        for fr in frames:
            try:
                os.write(fd, fr)
            except OSError:
                pass
"""


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    kinds: tuple = ("forbidden",)  # acceptable outcomes: None = ok, FAIL = any failure
    timeout: float = JOB_TIMEOUT
    absent: tuple = ()  # printed/drawn by the attack only if it worked: must appear nowhere
    honest: str | None = None  # ok is acceptable only with this chart's trace and image
    check: Callable[[RenderResult], list[str]] | None = None
    needs: tuple = ()  # "libc" (x86_64 glibc offsets), "gcc" (a compiled .so)
    # The script hides its own calls from the recorder: it may lose chart types and colours
    # it drew (it can only under-report), never gain any.
    hides_calls: bool = False


def _params(cases):
    return [pytest.param(c, id=c.id) for c in cases]


# ---- 1. reference theft ---------------------------------------------------------------
# Each runs right after the reference job on the same pool; the marker must not come back.

THEFT = [
    # event-free raw reads: a ctypes Union of an address and a pointer (no audit event fires)
    Case(
        "heap_scan_ctypes_union",
        HEAP_SCAN.replace("@VIEW@", VIEW_UNION) + PLOT,
        (None, "forbidden", "runtime", "crashed"),
        THEFT_TIMEOUT,
    ),
    Case(
        "heap_scan_from_address",
        HEAP_SCAN.replace("@VIEW@", VIEW_FROM_ADDRESS) + PLOT,
        (None, "forbidden", "runtime", "crashed"),
        THEFT_TIMEOUT,
    ),
    # numpy's __array_interface__ takes any address: raw reads without ctypes at all
    Case(
        "heap_scan_numpy_array_interface",
        HEAP_SCAN.replace("@VIEW@", VIEW_NUMPY) + PLOT,
        (None, "forbidden", "runtime", "crashed"),
        THEFT_TIMEOUT,
    ),
    # string_at only over chunks the write(2) probe showed readable
    Case(
        "heap_scan_string_at",
        HEAP_SCAN.replace("@VIEW@", VIEW_FROM_ADDRESS).replace(
            "found.update(pat.findall(os.read(r, n)))",
            "os.read(r, n)\n            found.update(pat.findall(ctypes.string_at(a, n)))",
        )
        + PLOT,
        (None, "forbidden", "runtime", "crashed"),
        THEFT_TIMEOUT,
    ),
    # the scan runs inside a tick formatter: wherever the figure is drawn, the stolen
    # marker would come back as a tick label (trace) and in the image
    Case(
        "heap_scan_in_tick_formatter",
        HEAP_SCAN.replace("@VIEW@", VIEW_UNION)
        .replace("print('FOUND', sorted(f.decode() for f in found))", "")
        .replace("for lo, hi in spans:\n    scan(lo, hi)\n", "")
        + """
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter
def fmt(v, pos):
    for lo, hi in spans:
        scan(lo, hi)
    return (' '.join(sorted(f.decode() for f in found)) or 'none') + str(v)
fig, ax = plt.subplots()
ax.plot([1, 2, 3])
ax.xaxis.set_major_formatter(FuncFormatter(fmt))
""",
        (None, "forbidden", "runtime", "crashed", "timeout"),
        THEFT_TIMEOUT,
    ),
    # live objects: gc (named at run time), then everything reachable from sys.modules
    Case(
        "gc_get_objects_runtime_name",
        """
import gc, re
objs = getattr(gc, 'get_' + 'objects')()
print('FOUND', sorted({m for o in objs if isinstance(o, str) for m in re.findall('REFMARK[0-9a-f]{32}', o)}))
"""
        + PLOT,
        (None, "forbidden", "runtime"),
    ),
    Case(
        "walk_reachable_from_sys_modules",
        """
import sys, re, time
pat = re.compile('REFMARK[0-9a-f]{32}')
seen, found, stack = set(), set(), list(sys.modules.values())
t_end = time.monotonic() + 1.5
while stack and len(seen) < 400000 and time.monotonic() < t_end:
    o = stack.pop()
    if id(o) in seen:
        continue
    seen.add(id(o))
    if isinstance(o, str):
        found.update(pat.findall(o))
    elif isinstance(o, bytes):
        found.update(m.decode() for m in re.findall(rb'REFMARK[0-9a-f]{32}', o))
    elif isinstance(o, dict):
        stack.extend(o.keys()); stack.extend(o.values())
    elif isinstance(o, (list, tuple, set, frozenset)):
        stack.extend(o)
    else:
        d = getattr(o, '__dict__', None)
        if isinstance(d, dict):
            stack.append(d)
print('FOUND', sorted(found))
"""
        + PLOT,
        (None, "forbidden", "runtime"),
        THEFT_TIMEOUT,
    ),
    # every local of every frame above the script (the server loop's job dicts...)
    Case(
        "frame_locals_of_the_server",
        FRAMES_VIA_EXEC
        + """
import re
found = set()
for fr in _frames:
    for v in list(getattr(fr, 'f_' + 'locals').values()) + list(getattr(fr, 'f_' + 'globals').values()):
        found.update(re.findall('REFMARK[0-9a-f]{32}', repr(v)[:200000]))
print('FOUND', sorted(found))
"""
        + PLOT,
        (None, "forbidden", "runtime"),
    ),
    Case(
        "proc_self_mem",
        """
import re
found = set()
with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:
    for ln in maps:
        lo, hi = (int(x, 16) for x in ln.split()[0].split('-'))
        if 'r' not in ln.split()[1] or hi - lo > 1 << 28:
            continue
        try:
            mem.seek(lo)
            found.update(re.findall(rb'REFMARK[0-9a-f]{32}', mem.read(hi - lo)))
        except OSError:
            pass
print('FOUND', sorted(found))
"""
        + PLOT,
        ("forbidden", "runtime"),
    ),
    Case(
        "proc_parent_mem",
        """
import os, re
found = set()
for pid in {os.getppid(), @SERVER_PID@}:
    with open(f'/proc/{pid}/maps') as maps, open(f'/proc/{pid}/mem', 'rb', 0) as mem:
        for ln in maps:
            lo, hi = (int(x, 16) for x in ln.split()[0].split('-'))
            if 'rw' not in ln.split()[1] or hi - lo > 1 << 28:
                continue
            try:
                mem.seek(lo)
                found.update(re.findall(rb'REFMARK[0-9a-f]{32}', mem.read(hi - lo)))
            except OSError:
                pass
print('FOUND', sorted(found))
"""
        + PLOT,
        ("forbidden", "runtime"),
    ),
    Case(
        "pool_root_result_files",
        """
import os, glob
for name in os.listdir('@ROOT@'):
    p = os.path.join('@ROOT@', name)
    for q in ([p] if os.path.isfile(p) else glob.glob(p + '/**', recursive=True)):
        if os.path.isfile(q):
            print(q, open(q, 'rb').read()[:4000])
"""
        + PLOT,
        ("forbidden", "runtime"),
    ),
    Case(
        "pool_root_via_parent_dir_fd",
        """
import os
d = os.open('..', os.O_RDONLY | os.O_DIRECTORY)
for name in os.listdir(d):
    print(name)
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=d)
        print(os.read(fd, 1 << 20))
    except OSError as e:
        print('skip', name, e)
"""
        + PLOT,
        ("forbidden", "runtime"),
    ),
    # leftovers the reference wrote: a reused job dir, a shared TMPDIR or HOME, /tmp
    Case(
        "leftover_job_files",
        """
import os, re, tempfile
found = set()
for top in {os.getcwd(), tempfile.gettempdir(), os.path.expanduser('~'), os.environ.get('TMPDIR', '.')}:
    for dirpath, dirs, files in os.walk(top):
        for f in files:
            try:
                found.update(re.findall(rb'REFMARK[0-9a-f]{32}', open(os.path.join(dirpath, f), 'rb').read()))
            except OSError:
                pass
print('FOUND', sorted(found), os.listdir('.'))
"""
        + PLOT,
        (None, "forbidden", "runtime"),
    ),
    Case(
        "tmp_and_dev_shm",
        """
import os, re
found = set()
for top in ('/dev/shm', '/tmp', '/var/tmp', '/run/shm'):
    for dirpath, dirs, files in os.walk(top):
        for f in files:
            try:
                found.update(re.findall(rb'REFMARK[0-9a-f]{32}', open(os.path.join(dirpath, f), 'rb').read(1 << 24)))
            except OSError:
                pass
print('FOUND', sorted(found))
"""
        + PLOT,
        (None, "forbidden", "runtime"),
    ),
    Case(
        "posix_shm_open_guesses",
        """
import _posixshmem, mmap, os, re
found = set()
for name in ('/vlrl', '/vlrl-render', '/render', '/figure', '/handover', '/result', '/psm_0', '/mp-0'):
    try:
        fd = _posixshmem.shm_open(name, os.O_RDONLY, 0)
    except OSError:
        continue
    found.update(re.findall(rb'REFMARK[0-9a-f]{32}', os.read(fd, 1 << 24)))
print('FOUND', sorted(found))
"""
        + PLOT,
        (None, "forbidden", "runtime"),
    ),
    # every SysV segment on the machine: SHM_INFO / SHM_STAT enumerate them
    Case(
        "sysv_shm_enumerate",
        LIBC
        + """
import re
found = set()
buf = (ctypes.c_char * 256)()
top = ctypes.c_int(call('shmctl', 0, 14, buf)[0]).value  # SHM_INFO -> highest index (an int)
for idx in range(min(max(top, 0), 4096) + 1):
    shmid = ctypes.c_int(call('shmctl', idx, 13, buf)[0]).value  # SHM_STAT
    if shmid < 0:
        continue
    size = int.from_bytes(bytes(buf)[48:56], 'little')
    addr = call('shmat', shmid, None, 0o10000)[0]  # SHM_RDONLY
    if addr in (-1, 0xFFFFFFFFFFFFFFFF):
        continue
    found.update(re.findall(rb'REFMARK[0-9a-f]{32}', ctypes.string_at(addr, min(size, 1 << 24))))
print('FOUND', sorted(found), 'top', top)
"""
        + PLOT,
        (None, "forbidden", "runtime"),
        needs=("libc",),
    ),
]


# ---- 2. forged results ----------------------------------------------------------------


def _forge_with_frames(frames_src: str, then_exit: bool) -> str:
    """Find nonce-like strings, descriptors and connection objects in the frames above the
    script and send the forged result through all of them."""
    tail = "os._exit(0)\n" if then_exit else HONEST
    collect = """
import os, re
_nonces, _fds, _conns, _seen = set(), set(), [], set()
def _take(name, v, depth=0):
    if isinstance(v, str) and re.fullmatch('[0-9a-f]{16,64}', v.strip("'")):
        _nonces.add(v.strip("'"))
    elif isinstance(v, str) and re.fullmatch('[0-9]{1,4}', v):
        _fds.add(int(v))
    elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1024:
        _fds.add(v)
    elif isinstance(v, dict) and depth < 3 and id(v) not in _seen:
        _seen.add(id(v))
        for k2, v2 in list(v.items())[:200]:
            _take(k2, v2, depth + 1)
    elif hasattr(v, 'send_bytes') or hasattr(v, 'sendall'):
        _conns.append(v)
"""
    if "_summary" in frames_src:
        walk = "for _k, _v in _locals.items():\n    _take(_k, _v)\n"
    else:  # attribute names built at run time: the static check only sees literals
        walk = (
            "_FL = 'f_' + 'locals'\nfor _fr in _frames:\n    _loc = dict(getattr(_fr, _FL))\n"
            "    for _k, _v in _loc.items():\n        _take(_k, _v)\n"
            "    _s = _loc.get('self')\n    if _s is not None and isinstance(getattr(_s, '__dict__', None), dict):\n"
            "        for _k, _v in vars(_s).items():\n            _take(_k, _v)\n"
        )
    send = """
_frames_out = []
for _n in sorted(_nonces) or ['0' * 32]:
    _frames_out += frames_for(_n)
spray(_frames_out, sorted(_fds) + list(range(0, 1024)))
for _c in _conns:
    for _n in sorted(_nonces) or ['0' * 32]:
        for _msg in ({'id': 0, 'ok': True, 'nonce': _n, 'trace': _trace, 'png': _png},):
            try:
                _c.send(_msg) if hasattr(_c, 'send') and not hasattr(_c, 'sendall') else _c.sendall(pickle.dumps(_msg))
            except Exception:
                pass
print('SPRAYED', len(_nonces), len(_fds), len(_conns))
"""
    return PNG_HELPER + FORGE_PAYLOADS + frames_src + collect + walk + send + tail


# exec'ing a pickle that patches whoever loads it
RCE_PICKLE = """
import pickle
class _Patch:
    def __reduce__(self):
        return (exec, ("import matplotlib.axes, matplotlib.text\\n"
                       "matplotlib.axes.Axes.get_title = lambda self, loc='center': 'FORGED'\\n"
                       "matplotlib.text.Text.get_text = lambda self: 'FORGED'\\n",))
_rce = pickle.dumps({'figure': _Patch(), 'ok': True, 'calls': [], 'colors': [], 'n_figures': 1})
"""

FORGE = [
    # the old result frame with a stolen nonce, reached through traceback's own helpers
    Case("walk_stack_capture_locals_then_exit", _forge_with_frames(FRAMES_VIA_WALK_STACK, True), (FAIL,)),
    Case("exec_getframe_then_exit", _forge_with_frames(FRAMES_VIA_EXEC, True), (FAIL,)),
    Case("inspect_stack_inside_exec_then_exit", _forge_with_frames(FRAMES_VIA_INSPECT_IN_EXEC, True), (FAIL,)),
    Case("gi_frame_via_eval_lambda_then_exit", _forge_with_frames(FRAMES_VIA_EVAL_LAMBDA, True), (FAIL,)),
    # ... or the forger keeps going and draws the honest chart: ok only if honest
    Case(
        "walk_stack_capture_locals_then_draw", _forge_with_frames(FRAMES_VIA_WALK_STACK, False), (FAIL,), honest=HONEST
    ),
    Case("exec_getframe_then_draw", _forge_with_frames(FRAMES_VIA_EXEC, False), (FAIL,), honest=HONEST),
    # no frames at all: blind spraying of every descriptor, nonce guessed
    Case(
        "spray_all_fds_then_exit",
        PNG_HELPER + FORGE_PAYLOADS + HONEST + "spray(frames_for('0' * 32))\nos._exit(0)\n",
        (FAIL,),
    ),
    Case(
        "spray_all_fds_then_return",
        PNG_HELPER + FORGE_PAYLOADS + "spray(frames_for('0' * 32))\n" + HONEST,
        (FAIL,),
        honest=HONEST,
    ),
    # a pickle that runs code in whoever unpickles it, on every descriptor (length-prefixed
    # like multiprocessing, and raw), then the honest chart
    Case(
        "spray_rce_pickle_then_return",
        RCE_PICKLE
        + """
import os, struct
for fd in range(0, 1024):
    for fr in (struct.pack('!i', len(_rce)) + _rce, struct.pack('<Q', len(_rce)) + _rce, _rce):
        try:
            os.write(fd, fr)
        except OSError:
            pass
"""
        + HONEST,
        (FAIL,),
        honest=HONEST,
    ),
    Case(
        "spray_rce_pickle_then_exit",
        RCE_PICKLE
        + HONEST
        + """
import os, struct
for fd in range(0, 1024):
    for fr in (struct.pack('!i', len(_rce)) + _rce, _rce):
        try:
            os.write(fd, fr)
        except OSError:
            pass
os._exit(0)
""",
        (FAIL,),
    ),
    # the figure itself carries the payload: only its unpickler would run it
    Case(
        "figure_attribute_reduce_payload",
        HONEST
        + """
class _Evil:
    def __reduce__(self):
        return (exec, ("import matplotlib.axes, matplotlib.colors\\n"
                       "matplotlib.axes.Axes.get_title = lambda self, loc='center': 'FORGED'\\n"
                       "matplotlib.colors.to_hex = lambda c, keep_alpha=False: '#ff0000'\\n",))
fig._vlrl_payload = _Evil()
ax.title._vlrl_payload = [_Evil()]
""",
        (FAIL,),
        honest=HONEST,
    ),
    # a forged figure class: the trace asks get_text(), drawing asks _get_wrapped_text()
    Case(
        "forged_text_class",
        HONEST
        + """
from matplotlib.text import Text
class _T(Text):
    def get_text(self):
        return 'FORGED'
    def _get_wrapped_text(self):
        return Text.get_text(self)
setattr(ax.title, '__cla' + 'ss__', _T)
""",
        (FAIL,),
        honest=HONEST,
    ),
    # stdout/stderr are not a side channel for results
    Case(
        "forged_frames_on_stdout",
        PNG_HELPER
        + FORGE_PAYLOADS
        + """
import sys
for fr in frames_for('0' * 32):
    sys.stdout.write(fr.decode('latin-1'))
    os.write(1, fr)
    os.write(2, fr)
"""
        + HONEST,
        (FAIL,),
        honest=HONEST,
    ),
]


# ---- 3. tampered traces -----------------------------------------------------------------
# Each draws HONEST (or its `honest`) and then tries to make the trace or image claim
# something else. Ok is acceptable only with the honest chart's trace and image.

GLOBALS_TAMPER = """
def _tamper(R):
    for attempt in (
        lambda: R.type_counts.__setitem__('pie', 7),
        lambda: R.type_calls.append(['pie', ax.title]),
        lambda: R.type_calls.append(['scatter', ax.xaxis.label]),
        lambda: R.type_calls.append(['bar', ax.patch]),
        lambda: R.color_objects.__setitem__(('pie', 'viridis'), ('pie', 'fixed', ax.title)),
        lambda: R.color_objects.__setitem__(('bar', '#FF0000'), ('bar', 'color', ax.title)),
        lambda: R.drawn_texts.append(('FORGED', None)),
    ):
        try:
            attempt()
        except Exception:
            pass
"""


def _tamper(id_: str, pre: str = "", post: str = "", honest: str = HONEST, base: str = HONEST, **kw) -> Case:
    return Case(id_, pre + base + post, (FAIL,), honest=honest, **kw)


TAMPER = [
    # ---- monkeypatched matplotlib (before the chart is made)
    _tamper(
        "patch_axes_get_title",
        "import matplotlib.axes\nmatplotlib.axes.Axes.get_title = lambda self, loc='center': 'FORGED'\n",
    ),
    _tamper("patch_text_get_text", "import matplotlib.text\nmatplotlib.text.Text.get_text = lambda self: 'FORGED'\n"),
    _tamper(
        "patch_line_get_ydata",
        "import numpy as np\nfrom matplotlib.lines import Line2D\n"
        "Line2D.get_ydata = lambda self, orig=True: np.array([9.0, 9.0, 9.0])\n",
    ),
    _tamper("patch_line_get_color", "from matplotlib.lines import Line2D\nLine2D.get_color = lambda self: '#ff0000'\n"),
    _tamper(
        "patch_colors_to_hex",
        "import matplotlib.colors\nmatplotlib.colors.to_hex = lambda c, keep_alpha=False: '#ff0000'\n",
    ),
    _tamper(
        "patch_renderer_draw_text",
        """
from matplotlib.backends.backend_agg import RendererAgg
_orig_dt = RendererAgg.draw_text
def _dt(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
    return _orig_dt(self, gc, x, y, 'FORGED', prop, angle, ismath=False, mtext=mtext)
RendererAgg.draw_text = _dt
""",
    ),
    _tamper(
        "patch_figure_savefig_red_png",
        PNG_HELPER
        + """
from matplotlib.figure import Figure
Figure.savefig = lambda self, fname, *a, **k: fname.write(red_png())
""",
    ),
    _tamper(
        "patch_print_png_red_png",
        PNG_HELPER
        + """
from matplotlib.backends.backend_agg import FigureCanvasAgg
FigureCanvasAgg.print_png = lambda self, f, *a, **k: f.write(red_png())
""",
    ),
    _tamper(
        "patch_print_png_12000x12000",
        PNG_HELPER
        + """
from matplotlib.backends.backend_agg import FigureCanvasAgg
FigureCanvasAgg.print_png = lambda self, f, *a, **k: f.write(huge_png())
""",
    ),
    _tamper(
        "patch_savefig_dpi_1200",
        """
from matplotlib.figure import Figure
_orig_sf = Figure.savefig
def _sf(self, fname, **kw):
    kw['dpi'] = 1200
    return _orig_sf(self, fname, **kw)
Figure.savefig = _sf
""",
    ),
    _tamper("patch_plt_get_fignums", post="plt.get_fignums = lambda: list(range(1, 51))\n"),
    # ---- the recorder's state, reached without a literal introspection name
    _tamper(
        "recorder_via_func_globals",
        post=GLOBALS_TAMPER
        + """
from matplotlib.axes import Axes
for _f in (Axes.bar, Axes.plot, Axes.scatter):
    try:
        _tamper(getattr(_f, '__glo' + 'bals__')['RECORDS'])
        break
    except Exception:
        pass
""",
    ),
    _tamper(
        "recorder_via_subclasses_walk",
        post=GLOBALS_TAMPER
        + """
_sub = getattr(type, '__sub' + 'classes__')
_stack, _seen = [object], set()
while _stack:
    _c = _stack.pop()
    if _c in _seen:
        continue
    _seen.add(_c)
    if _c.__name__ == '_Records':
        for _m in vars(_c).values():
            _g = getattr(_m, '__glo' + 'bals__', None)
            if _g and 'RECORDS' in _g:
                _tamper(_g['RECORDS'])
    try:
        _stack.extend(_sub(_c))
    except TypeError:
        pass
""",
    ),
    _tamper(
        "recorder_via_pickle_getattr_payload",
        post=GLOBALS_TAMPER
        + """
import pickle
_p = (b'\\x80\\x04cbuiltins\\ngetattr\\n(cmatplotlib.axes\\nAxes.bar\\nV' + bytes.fromhex('5f5f676c6f62616c735f5f')
      + b'\\ntR.')
_tamper(pickle.loads(_p)['RECORDS'])
""",
    ),
    _tamper(
        "recorder_via_base64_names",
        post=GLOBALS_TAMPER
        + """
import base64, matplotlib.axes
_name = base64.b64decode(b'X19nbG9iYWxzX18=').decode()
_tamper(getattr(getattr(matplotlib.axes.Axes, 'bar'), _name)['RECORDS'])
""",
    ),
    # the instrumentation itself unwrapped: bars drawn, no bar call recorded
    _tamper(
        "unwrap_instrumented_bar",
        "from matplotlib.axes import Axes\n_n = '__wra' + 'pped__'\n"
        "while hasattr(Axes.bar, _n):\n    Axes.bar = getattr(Axes.bar, _n)\n",
        hides_calls=True,
    ),
    # ---- instances that answer for their class
    _tamper("instance_get_title_lambda", post="setattr(ax, 'get_title', lambda loc='center': 'FORGED')\n"),
    _tamper(
        "instance_get_title_picklable",
        post="import functools\nax.get_title = functools.partial(str.format, 'FORGED')\n",
    ),
    _tamper(
        "instance_get_ydata_lambda",
        post="import numpy as np\nline.get_ydata = lambda orig=True: np.array([9.0, 9.0, 9.0])\n",
    ),
    # ---- artists whose recorded data says one thing and whose geometry draws another
    _tamper("bar_datavalues_desync", post="import numpy as np\nbars.datavalues = np.array([9.0, 9.0, 9.0])\n"),
    _tamper(
        "line_cached_ydata_desync",
        post="import numpy as np\nfig.canvas.draw()\nline._y = np.array([9.0, 9.0, 9.0])\n",
        honest=HONEST + "fig.canvas.draw()\n",
    ),
    # ---- a tick formatter runs wherever the figure is drawn, and patches that process
    _tamper(
        "formatter_patches_the_drawing_process",
        post="""
from matplotlib.ticker import FuncFormatter
def _fmt(v, pos):
    import matplotlib.axes, matplotlib.colors, numpy as np
    from matplotlib.lines import Line2D
    matplotlib.axes.Axes.get_title = lambda self, loc='center': 'FORGED'
    matplotlib.colors.to_hex = lambda c, keep_alpha=False: '#ff0000'
    Line2D.get_ydata = lambda self, orig=True: np.array([9.0, 9.0, 9.0])
    return f'{v:g}'
ax.yaxis.set_major_formatter(FuncFormatter(_fmt))
""",
        honest=HONEST
        + "from matplotlib.ticker import FuncFormatter\nax.yaxis.set_major_formatter(FuncFormatter(lambda v, pos: f'{v:g}'))\n",
    ),
    # the old single-process renderer's own helpers, reached through frames
    _tamper(
        "patch_capped_dpi_via_frames",
        post=FRAMES_VIA_EXEC
        + """
for _fr in _frames:
    _g = getattr(_fr, 'f_' + 'globals')
    if '_capped_dpi' in _g:
        _g['_capped_dpi'] = lambda *a, **k: 1200.0
""",
    ),
]


# ---- 4. deadline escapes ---------------------------------------------------------------

SLEEP_FOREVER = "\nimport time\nwhile True:\n    time.sleep(1000)\n"

HANGS = [
    Case(
        "setpgid_own_group",
        "import os\ntry:\n    os.setpgid(0, 0)\nexcept OSError:\n    pass\n" + SLEEP_FOREVER,
        ("timeout", "forbidden"),
        HANG_TIMEOUT,
    ),
    # joining the server's group: a killpg(job) at the deadline finds no such group
    Case(
        "setpgid_join_parent_group",
        "import os\ntry:\n    os.setpgid(0, os.getpgid(os.getppid()))\nexcept OSError:\n    pass\n" + SLEEP_FOREVER,
        ("timeout", "forbidden"),
        HANG_TIMEOUT,
    ),
    Case(
        "setsid_new_session",
        "import os\ntry:\n    os.setsid()\nexcept OSError:\n    pass\n" + SLEEP_FOREVER,
        ("timeout", "forbidden"),
        HANG_TIMEOUT,
    ),
    Case(
        "raw_setpgid_setsid",
        LIBC + "for nr, args in ((109, (0, 0)), (112, ()), (109, (0, os.getpgid(os.getppid())))):\n"
        "    try:\n        sys_call(nr, *args)\n    except Exception:\n        pass\n" + SLEEP_FOREVER,
        ("timeout", "forbidden"),
        HANG_TIMEOUT,
        needs=("libc",),
    ),
    Case(
        "prctl_clear_pdeathsig",
        LIBC + "try:\n    call('prctl', 1, 0, 0, 0, 0)\nexcept Exception:\n    pass\n"
        "try:\n    os.setpgid(0, os.getpgid(os.getppid()))\nexcept OSError:\n    pass\n" + SLEEP_FOREVER,
        ("timeout", "forbidden"),
        HANG_TIMEOUT,
        needs=("libc",),
    ),
    Case("sleep_in_c", "import time\ntime.sleep(10 ** 6)\n", ("timeout",), HANG_TIMEOUT),
    Case("select_forever", "import select\nselect.select([], [], [], 10 ** 6)\n", ("timeout",), HANG_TIMEOUT),
    Case("blocking_pipe_read", "import os\nr, w = os.pipe()\nos.read(r, 1)\n", ("timeout",), HANG_TIMEOUT),
    Case(
        "all_signals_ignored_and_blocked",
        """
import signal
for s in signal.valid_signals():
    try:
        signal.signal(s, signal.SIG_IGN)
    except (OSError, ValueError, RuntimeError):
        pass
signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
signal.pause()
""",
        ("timeout",),
        HANG_TIMEOUT,
    ),
    Case(
        "self_sigstop", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n" + PLOT, ("timeout",), HANG_TIMEOUT
    ),
    # catastrophic backtracking: one C call that never returns to the interpreter
    Case("regex_backtracking_in_c", "import re\nre.match('(a+)+$', 'a' * 64 + 'b')\n", ("timeout",), HANG_TIMEOUT),
    Case(
        "threads_blocked_and_writing",
        """
import os, threading, time
def writer():
    i = 0
    while True:
        with open(f'spam-{i % 50}.txt', 'w') as fh:
            fh.write('x' * 4096)
        i += 1
for _ in range(3):
    threading.Thread(target=writer, daemon=False).start()
threading.Event().wait()
""",
        ("timeout",),
        HANG_TIMEOUT,
    ),
    # an honest figure, built in 0.1 s, that takes ~10 s to draw (2 s limit): whoever draws
    # it must be bound by the job's deadline too
    Case(
        "figure_slow_to_draw",
        """
import numpy as np, matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(20, 15))
x = np.linspace(0, 1, 600_000)
ax.plot(x, np.sin(x * 7919.0), marker='o', markersize=60, linewidth=6)
ax.set_title('slow')
""",
        ("timeout", "memory"),
        HANG_TIMEOUT,
    ),
]


# ---- 5. kernel surface -------------------------------------------------------------------
# Refusals are "forbidden" (audit hook or PermissionError), or "runtime" where only the
# kernel says no and the call surfaces as some other OSError.

KERNEL_KINDS = ("forbidden", "runtime")
LEAK = LEAK_MB << 20


def _k(id_, code, absent=(), needs=("libc",), kinds=KERNEL_KINDS, **kw) -> Case:
    return Case(id_, code + PLOT, kinds, absent=absent, needs=needs, **kw)


KERNEL = [
    # ---- SysV IPC: objects that outlive the job (and cross into other jobs)
    _k(
        "sysv_shmget_libc",
        LIBC + f"must('SHMGET', call('shmget', {SYSV_KEY_BASE + 1}, {LEAK}, 0o1000 | 0o600))\n",
        ("SHMGET_OK",),
    ),
    _k(
        "sysv_shmget_raw_syscall",
        LIBC + f"must('SHMGET', sys_call({NR['shmget']}, {SYSV_KEY_BASE + 2}, {LEAK}, 0o1000 | 0o600))\n",
        ("SHMGET_OK",),
    ),
    _k(
        "sysv_shm_private_attached",
        LIBC
        + f"""
shmid = must('SHMGET', call('shmget', 0, {LEAK}, 0o1000 | 0o600))
addr = must('SHMAT', call('shmat', shmid, None, 0))
ctypes.memset(addr, 0x41, {LEAK})
""",
        ("SHMGET_OK", "SHMAT_OK"),
    ),
    _k("sysv_msgget", LIBC + f"must('MSGGET', call('msgget', {SYSV_KEY_BASE + 3}, 0o1000 | 0o600))\n", ("MSGGET_OK",)),
    _k(
        "sysv_semget_raw_syscall",
        LIBC + f"must('SEMGET', sys_call({NR['semget']}, {SYSV_KEY_BASE + 4}, 4, 0o1000 | 0o600))\n",
        ("SEMGET_OK",),
    ),
    _k(
        "sysv_via_cdll_none",
        f"import ctypes\nprint('SHMGET_OK', ctypes.CDLL(None).syscall({NR['shmget']}, "
        f"{SYSV_KEY_BASE + 5}, {LEAK}, 0o1000 | 0o600))\n",
        ("SHMGET_OK",),
        needs=(),
    ),
    # ---- memory and files outside the limits
    _k(
        "memfd_create_and_fill",
        f"import os\nfd = os.memfd_create('x')\nos.write(fd, b'x' * {LEAK})\nprint('MEMFD_OK')\n",
        ("MEMFD_OK",),
        needs=(),
    ),
    _k(
        "memfd_create_raw_syscall",
        LIBC + f"fd = must('MEMFD', sys_call({NR['memfd_create']}, b'x', 0))\nos.write(fd, b'x' * {LEAK})\n",
        ("MEMFD_OK",),
    ),
    _k(
        "dev_shm_file",
        f"open('/dev/shm/vlrl-attack-{uuid.uuid4().hex[:8]}', 'wb').write(b'x' * {LEAK})\nprint('DEVSHM_OK')\n",
        ("DEVSHM_OK",),
        needs=(),
    ),
    _k(
        "multiprocessing_shared_memory",
        f"from multiprocessing import shared_memory\n"
        f"m = shared_memory.SharedMemory(create=True, size={LEAK})\nm.buf[:4] = b'leak'\nprint('POSIXSHM_OK', m.name)\n",
        ("POSIXSHM_OK",),
        needs=(),
    ),
    # many files, each under the per-file limit, together far over the disk cap
    Case(
        "disk_fill_many_files",
        f"""
import os
total = 0
try:
    for i in range({FILL_FILES}):
        with open(f'fill-{{i}}.bin', 'wb') as fh:
            for _ in range({LEAK_MB}):
                fh.write(b'\\xa5' * (1 << 20))
                total += 1 << 20
except OSError as exc:
    print('STOPPED', type(exc).__name__)
print('WROTE_MB', total >> 20)
"""
        + PLOT,
        (None, "forbidden", "runtime", "memory"),
        timeout=8.0,
        check=lambda r: _wrote_at_most(r, DISK_MB + LEAK_MB),
    ),
    # ---- scheduling and priority: of the server, and of the job itself
    _k(
        "setpriority_server",
        "import os\nos.setpriority(os.PRIO_PROCESS, os.getppid(), 15)\nprint('NICE_OK')\n",
        ("NICE_OK",),
        needs=(),
    ),
    _k(
        "setpriority_server_pid",
        "import os\nos.setpriority(os.PRIO_PROCESS, @SERVER_PID@, 15)\nprint('NICE_OK')\n",
        ("NICE_OK",),
        needs=(),
    ),
    _k(
        "setpriority_server_pgrp",
        "import os\nos.setpriority(os.PRIO_PGRP, os.getpgid(os.getppid()), 12)\nprint('NICE_OK')\n",
        ("NICE_OK",),
        needs=(),
    ),
    _k(
        "setpriority_test_process",
        "import os\nos.setpriority(os.PRIO_PROCESS, @TEST_PID@, 11)\nprint('NICE_OK')\n",
        ("NICE_OK",),
        needs=(),
    ),
    _k(
        "setpriority_self_raise",
        "import os\nos.setpriority(os.PRIO_PROCESS, 0, -15)\nprint('NICE_OK')\n",
        ("NICE_OK",),
        needs=(),
    ),
    _k(
        "setpriority_raw_syscall_server",
        LIBC + f"must('NICE', sys_call({NR['setpriority']}, 0, os.getppid(), 15))\n",
        ("NICE_OK",),
    ),
    _k(
        "sched_setaffinity_server",
        "import os\nos.sched_setaffinity(os.getppid(), {0})\nprint('AFFINITY_OK')\n",
        ("AFFINITY_OK",),
        needs=(),
    ),
    _k(
        "sched_setaffinity_self",
        "import os\nos.sched_setaffinity(0, {0})\nprint('AFFINITY_OK')\n",
        ("AFFINITY_OK",),
        needs=(),
    ),
    # only the policy is set (and reverted at once): nothing ever spins at real-time priority
    _k(
        "sched_fifo_self",
        "import os\nos.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))\n"
        "os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))\nprint('FIFO_OK')\n",
        ("FIFO_OK",),
        needs=(),
    ),
    _k(
        "sched_fifo_server",
        "import os\nos.sched_setscheduler(os.getppid(), os.SCHED_FIFO, os.sched_param(1))\nprint('FIFO_OK')\n",
        ("FIFO_OK",),
        needs=(),
    ),
    _k(
        "sched_setattr_raw_server",
        LIBC
        + """
attr = (ctypes.c_uint32 * 14)(56, 1, 0, 0, 0, 1)  # size, SCHED_FIFO, flags (u64), nice, rt priority 1
must('SETATTR', sys_call(%d, os.getppid(), attr, 0))
"""
        % NR["sched_setattr"],
        ("SETATTR_OK",),
    ),
    _k(
        "ioprio_idle_server",
        LIBC + f"must('IOPRIO', sys_call({NR['ioprio_set']}, 1, os.getppid(), 3 << 13))\n",
        ("IOPRIO_OK",),
    ),
    # ---- watching the host's files
    _k(
        "fanotify_init",
        LIBC + f"fd = must('FANOTIFY', sys_call({NR['fanotify_init']}, 0, 0))\nos.close(fd)\n",
        ("FANOTIFY_OK",),
    ),
    _k(
        "inotify_watch_root",
        LIBC + f"fd = must('INOTIFY', sys_call({NR['inotify_init1']}, 0))\n"
        f"must('WATCH', sys_call({NR['inotify_add_watch']}, fd, b'/', 0xfff))\nos.close(fd)\n",
        ("INOTIFY_OK", "WATCH_OK"),
    ),
    # ---- the new mount API
    _k(
        "fsopen_tmpfs",
        LIBC + f"fd = must('FSOPEN', sys_call({NR['fsopen']}, b'tmpfs', 0))\nos.close(fd)\n",
        ("FSOPEN_OK",),
    ),
    _k(
        "open_tree_clone_root",
        LIBC + f"fd = must('OPENTREE', sys_call({NR['open_tree']}, -100, b'/', 1))\n"
        "print(os.listdir(fd))\nos.close(fd)\n",
        ("OPENTREE_OK",),
    ),
    _k(
        "fspick_root",
        LIBC + f"fd = must('FSPICK', sys_call({NR['fspick']}, -100, b'/', 0))\nos.close(fd)\n",
        ("FSPICK_OK",),
    ),
    # ---- refused before this rebuild too (regression guards)
    _k(
        "perf_event_open",
        LIBC
        + """
attr = (ctypes.c_uint32 * 32)(1, 128)  # PERF_TYPE_SOFTWARE, size; config 0 = CPU clock
must('PERF', sys_call(%d, attr, 0, -1, -1, 0))
"""
        % NR["perf_event_open"],
        ("PERF_OK",),
    ),
    _k("userfaultfd", LIBC + f"must('UFFD', sys_call({NR['userfaultfd']}, 0o2000000))\n", ("UFFD_OK",)),
    _k("keyctl_session_keyring", LIBC + f"must('KEYCTL', sys_call({NR['keyctl']}, 0, -3, 1))\n", ("KEYCTL_OK",)),
    _k(
        "add_key_user",
        LIBC + f"must('ADDKEY', sys_call({NR['add_key']}, b'user', b'vlrl-attack', b'x', 1, -3))\n",
        ("ADDKEY_OK",),
    ),
    _k("unshare_user_namespace", LIBC + f"must('UNSHARE', sys_call({NR['unshare']}, 0x10000000))\n", ("UNSHARE_OK",)),
    _k("prctl_pdeathsig_libc", LIBC + "must('PDEATHSIG', call('prctl', 1, 0, 0, 0, 0))\n", ("PDEATHSIG_OK",)),
    _k("prctl_dumpable_raw", LIBC + f"must('DUMPABLE', sys_call({NR['prctl']}, 4, 1, 0, 0, 0))\n", ("DUMPABLE_OK",)),
    # capabilities: a write to the clock discipline needs CAP_SYS_TIME (the value written
    # is the one just read, so even an open hole changes nothing)
    _k(
        "adjtimex_write_needs_capability",
        LIBC
        + """
buf = (ctypes.c_uint8 * 208)()
must('ADJTIMEX_READ', sys_call(%d, buf))
raw = bytearray(bytes(buf))
raw[0:4] = (0x0004).to_bytes(4, 'little')  # ADJ_MAXERROR, same value
buf2 = (ctypes.c_uint8 * 208)(*raw)
must('ADJTIMEX_WRITE', sys_call(%d, buf2))
"""
        % (NR["adjtimex"], NR["adjtimex"]),
        ("ADJTIMEX_WRITE_OK",),
    ),
    # ---- signals to other processes without kill(): the kernel's SIGIO on async I/O
    _k(
        "sigio_f_setown_test_process",
        """
import os, fcntl, signal
r, w = os.pipe()
fcntl.fcntl(r, fcntl.F_SETOWN, @TEST_PID@)
fcntl.fcntl(r, fcntl.F_SETSIG, signal.SIGUSR1)
fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)
os.write(w, b'x')
""",
        (),
        needs=(),
        kinds=(None,) + KERNEL_KINDS,
    ),
    # SIGUSR2's default action ends the server: hygiene sees a dead/restarted server
    _k(
        "sigio_f_setown_server",
        """
import os, fcntl, signal
r, w = os.pipe()
fcntl.fcntl(r, fcntl.F_SETOWN, os.getppid())
fcntl.fcntl(r, fcntl.F_SETSIG, signal.SIGUSR2)
fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)
os.write(w, b'x')
""",
        (),
        needs=(),
        kinds=(None,) + KERNEL_KINDS,
    ),
    _k(
        "sigio_default_signal_test_process",
        """
import os, fcntl
r, w = os.pipe()
fcntl.fcntl(r, fcntl.F_SETOWN, @TEST_PID@)
fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)
os.write(w, b'x')
""",
        (),
        needs=(),
        kinds=(None,) + KERNEL_KINDS,
    ),
]


def _wrote_at_most(r: RenderResult, limit_mb: int) -> list[str]:
    m = re.search(r"WROTE_MB (\d+)", r.stdout)
    if m and int(m.group(1)) > limit_mb:
        return [f"the job wrote {m.group(1)} MiB in its job dir (cap {DISK_MB} MiB)"]
    return []


# ---- 6. ctypes -------------------------------------------------------------------------------
# Reading or writing raw memory and calling foreign code are refused ("forbidden"). The
# Union case raises no audit event at all: "runtime" (ctypes unusable) is accepted there.

CTYPES_KINDS = ("forbidden",)

CTYPES = [
    Case(
        "from_address_read",
        "import ctypes\nx = b'CTYPESREAD' + b'-OK'\n"
        "print((ctypes.c_char * 13).from_address(id(x) + bytes.__basicsize__ - 1).raw)\n" + PLOT,
        CTYPES_KINDS,
        absent=("CTYPESREAD-OK",),
    ),
    Case(
        "string_at_read",
        "import ctypes\nx = b'CTYPESREAD' + b'-OK'\nprint(ctypes.string_at(id(x) + bytes.__basicsize__ - 1, 13))\n"
        + PLOT,
        CTYPES_KINDS,
        absent=("CTYPESREAD-OK",),
    ),
    Case(
        "wstring_at_read",
        "import ctypes\nb = (ctypes.c_wchar * 16)(*('WSTRING' + '-OK'))\nprint(ctypes.wstring_at(b))\n" + PLOT,
        CTYPES_KINDS,
        absent=("WSTRING-OK",),
    ),
    Case(
        "memmove_into_immutable_bytes",
        "import ctypes\nx = b'immutable-bytes'\n"
        "ctypes.memmove(id(x) + bytes.__basicsize__ - 1, b'CTYPESWRITE' + b'-OK!', 15)\nprint(x)\n" + PLOT,
        CTYPES_KINDS,
        absent=("CTYPESWRITE-OK",),
    ),
    Case(
        "memset_buffer",
        "import ctypes\nb = (ctypes.c_char * 8)()\nctypes.memset(b, 0x5a, 7)\nprint('MEMSET', b.value)\n" + PLOT,
        CTYPES_KINDS,
        absent=("MEMSET b'ZZZZZZZ'",),
    ),
    Case(
        "cast_and_deref",
        "import ctypes\nx = b'CTYPESREAD' + b'-OK'\n"
        "p = ctypes.cast(id(x) + bytes.__basicsize__ - 1, ctypes.POINTER(ctypes.c_char * 13))\nprint(p.contents.raw)\n"
        + PLOT,
        CTYPES_KINDS,
        absent=("CTYPESREAD-OK",),
    ),
    Case(
        "py_object_from_address",
        "import ctypes\nx = ['PYOBJ', 'OK']\ncell = ctypes.c_void_p(id(x))\n"
        "print('_'.join(ctypes.py_object.from_address(ctypes.addressof(cell)).value))\n" + PLOT,
        CTYPES_KINDS,
        absent=("PYOBJ_OK",),
    ),
    Case(
        "from_buffer_pointer_overwrite",
        "import ctypes\nx = b'CTYPESREAD' + b'-OK'\n"
        "p = ctypes.pointer(ctypes.c_char(b'a'))\nctypes.c_void_p.from_buffer(p).value = id(x) + bytes.__basicsize__ - 1\n"
        "print(b''.join(p[i] for i in range(13)))\n" + PLOT,
        CTYPES_KINDS,
        absent=("CTYPESREAD-OK",),
    ),
    # no audit event fires for a Union field read: refused some other way, or not at all
    Case(
        "union_pointer_read_no_event",
        "import ctypes\nclass U(ctypes.Union):\n"
        "    _fields_ = [('a', ctypes.c_void_p), ('p', ctypes.POINTER(ctypes.c_char))]\nx = b'CTYPESREAD' + b'-OK'\nu = U()\n"
        "u.a = id(x) + bytes.__basicsize__ - 1\nprint(u.p[0:13])\n" + PLOT,
        ("forbidden", "runtime", "crashed"),
        absent=("CTYPESREAD-OK",),
    ),
    Case(
        "cfunctype_call_libc_address",
        LIBC + "print('CALL' + '_OK', libc('getpid')())\n" + PLOT,
        CTYPES_KINDS,
        absent=("CALL_OK",),
        needs=("libc",),
    ),
    Case(
        "cfunctype_call_memmove_addr",
        "import ctypes\nf = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, "
        "ctypes.c_void_p, ctypes.c_size_t)(ctypes._memmove_addr)\nb = (ctypes.c_char * 16)()\n"
        "f(b, b'CALL' + b'_OK', 7)\nprint(b.value)\n" + PLOT,
        CTYPES_KINDS,
        absent=("CALL_OK",),
    ),
    Case(
        "pythonapi_function",
        "import ctypes\nf = ctypes.pythonapi.Py_GetVersion\nf.restype = ctypes.c_char_p\n"
        "print('PYAPI' + '_OK', f())\n" + PLOT,
        CTYPES_KINDS,
        absent=("PYAPI_OK",),
    ),
    Case(
        "_ctypes_dlopen",
        "import _ctypes\nh = _ctypes.dlopen(None)\nprint('DLOPEN' + '_OK', _ctypes.dlsym(h, 'getpid'))\n" + PLOT,
        CTYPES_KINDS,
        absent=("DLOPEN_OK",),
    ),
    Case(
        "_ctypes_call_function",
        "import _ctypes, ctypes\n"  # memmove(NULL, NULL, 0): harmless if it runs
        "print('CALL' + '_OK', _ctypes.call_function(ctypes._memmove_addr, (0, 0, 0)))\n" + PLOT,
        CTYPES_KINDS,
        absent=("CALL_OK",),
    ),
    Case(
        "_ctypes_pyobj_from_ptr",
        "import _ctypes\nx = ['PYOBJ', 'OK']\nprint('_'.join(_ctypes.PyObj_FromPtr(id(x))))\n" + PLOT,
        CTYPES_KINDS,
        absent=("PYOBJ_OK",),
    ),
    Case(
        "cdll_libc_by_name",
        "import ctypes\nprint('DLOPEN' + '_OK', ctypes.CDLL('libc.so.6').getpid())\n" + PLOT,
        CTYPES_KINDS,
        absent=("DLOPEN_OK",),
    ),
    # a shared object the job writes itself (its constructor leaves a file behind if it runs)
    Case(
        "cdll_so_written_to_job_dir",
        """
import ctypes, os
open('evil.so', 'wb').write(bytes.fromhex('@SO_HEX@'))
lib = ctypes.CDLL(os.path.abspath('evil.so'))
print('ANS' + 'WER', lib.evil_answer())
"""
        + "print('NATIVE' + ' RAN' if os.path.exists('native_ran') else 'native did not run')\n"
        + PLOT,
        CTYPES_KINDS + ("runtime",),
        absent=("NATIVE RAN", "ANSWER 42"),
        needs=("gcc",),
    ),
    # the same bytes as an extension module on sys.path: no ctypes event is involved
    Case(
        "extension_module_from_job_dir",
        """
import importlib.machinery, os, sys
open('evil' + importlib.machinery.EXTENSION_SUFFIXES[0], 'wb').write(bytes.fromhex('@SO_HEX@'))
sys.path.insert(0, os.getcwd())
try:
    import evil
except Exception as exc:
    print('import failed:', type(exc).__name__)
print('NATIVE' + ' RAN' if os.path.exists('native_ran') else 'native did not run')
"""
        + PLOT,
        ("forbidden", "runtime"),
        absent=("NATIVE RAN",),
        needs=("gcc",),
    ),
]

# CPython 3.11 raises no audit event for calls through ctypes function pointers (memmove,
# memset, cast, CFUNCTYPE objects) nor for pointer reads through a Union, so these run: a
# script can reach native code in its own runner process. What must hold is that it gains
# nothing by it: the runner's memory holds only its own job, every syscall is still filtered,
# and the reward reads only what the drawer draws. So: a failure, or exactly the honest chart.
_NO_AUDIT_EVENT = {
    "memmove_into_immutable_bytes",
    "memset_buffer",
    "cast_and_deref",
    "union_pointer_read_no_event",
    "cfunctype_call_libc_address",
    "cfunctype_call_memmove_addr",
}
CTYPES = [
    dataclasses.replace(c, kinds=(None, "forbidden", "runtime", "crashed"), absent=(), honest=PLOT)
    if c.id in _NO_AUDIT_EVENT
    else c
    for c in CTYPES
]


# ---- 7. legit charts: must keep rendering ----------------------------------------------------


@dataclass(frozen=True)
class Legit:
    id: str
    code: str
    title: str
    types: tuple = ()  # kinds that must be in trace["types"]
    texts: tuple = ()  # strings that must be among trace texts or tick labels
    response: bool = False  # go through render_response (model output with fences)


LEGIT = [
    Legit(
        "tempfile_and_csv_roundtrip",
        """
import tempfile, os
import pandas as pd
import matplotlib.pyplot as plt
with tempfile.NamedTemporaryFile('w', suffix='.csv', delete=False) as fh:
    fh.write('city,sales\\nOslo,3\\nRome,5\\nLima,2\\n')
    path = fh.name
df = pd.read_csv(path)
df.to_csv('copy.csv', index=False)
df = pd.read_csv('copy.csv')
os.remove(path)
fig, ax = plt.subplots()
ax.bar(df['city'], df['sales'])
ax.set_title('csv roundtrip')
""",
        "csv roundtrip",
        ("bar",),
        ("Oslo", "Rome"),
    ),
    Legit(
        "tempfile_and_csv_module",
        """
import csv, tempfile
import matplotlib.pyplot as plt
with tempfile.NamedTemporaryFile('w', suffix='.csv', delete=False, newline='') as fh:
    csv.writer(fh).writerows([['city', 'sales'], ['Oslo', 3], ['Rome', 5]])
with open(fh.name, newline='') as f:
    rows = list(csv.DictReader(f))
plt.bar([r['city'] for r in rows], [float(r['sales']) for r in rows])
plt.title('csv module')
""",
        "csv module",
        ("bar",),
        ("Oslo",),
    ),
    Legit(
        "pandas_read_csv_stringio",
        """
import io
import pandas as pd
import matplotlib.pyplot as plt
df = pd.read_csv(io.StringIO("a,b\\n1,2\\n3,4\\n"))
ax = df.plot(kind='line', x='a', y='b')
ax.set_title('stringio')
""",
        "stringio",
        ("plot",),
    ),
    Legit(
        "seaborn_barplot",
        """
import pandas as pd, seaborn as sns, matplotlib.pyplot as plt
df = pd.DataFrame({'x': ['a', 'b', 'c', 'a'], 'y': [1, 2, 3, 4]})
ax = sns.barplot(data=df, x='x', y='y')
ax.set_title('seaborn bars')
""",
        "seaborn bars",
        ("bar",),
    ),
    Legit(
        "seaborn_heatmap",
        """
import numpy as np, seaborn as sns, matplotlib.pyplot as plt
ax = sns.heatmap(np.arange(12).reshape(3, 4), annot=True, cmap='viridis')
ax.set_title('heat')
""",
        "heat",
        (),
        ("11",),
    ),
    Legit(
        "bar3d",
        """
import numpy as np, matplotlib.pyplot as plt
fig = plt.figure()
ax = fig.add_subplot(projection='3d')
ax.bar3d([0, 1, 2], [0, 1, 2], [0, 0, 0], 0.5, 0.5, [1, 2, 3], color='orange')
ax.set_title('bars in 3d')
""",
        "bars in 3d",
        ("3d.bar3d",),
    ),
    Legit(
        "plot_surface",
        """
import numpy as np, matplotlib.pyplot as plt
X, Y = np.meshgrid(np.linspace(-2, 2, 20), np.linspace(-2, 2, 20))
fig = plt.figure()
ax = fig.add_subplot(projection='3d')
ax.plot_surface(X, Y, np.exp(-X ** 2 - Y ** 2), cmap='coolwarm')
ax.set_title('surface')
""",
        "surface",
        ("3d.plot_surface",),
    ),
    Legit(
        "polar",
        """
import numpy as np, matplotlib.pyplot as plt
ax = plt.subplot(projection='polar')
t = np.linspace(0, 2 * np.pi, 50)
ax.plot(t, 1 + np.sin(3 * t))
ax.set_title('polar rose')
""",
        "polar rose",
        ("plot_polar",),
    ),
    Legit(
        "squarify_treemap",
        """
import squarify, matplotlib.pyplot as plt
squarify.plot(sizes=[5, 3, 2], label=['big', 'mid', 'small'], color=['red', 'green', 'blue'])
plt.title('treemap')
""",
        "treemap",
        ("squarify.plot",),
        ("big",),
    ),
    Legit(
        "networkx_digraph_arrows",
        """
import networkx as nx, matplotlib.pyplot as plt
G = nx.DiGraph([('a', 'b'), ('b', 'c'), ('c', 'a')])
pos = nx.circular_layout(G)
nx.draw(G, pos, with_labels=True, arrows=True, arrowstyle='-|>', node_color='lightblue')
plt.title('digraph')
""",
        "digraph",
        ("draw_networkx_nodes", "draw_networkx_edges"),
        ("a", "b"),
    ),
    Legit(
        "venn2",
        """
from matplotlib_venn import venn2
import matplotlib.pyplot as plt
venn2(subsets=(3, 2, 1), set_labels=('Left', 'Right'))
plt.title('venn two')
""",
        "venn two",
        ("VennDiagram",),
        ("Left",),
    ),
    Legit(
        "venn3",
        """
from matplotlib_venn import venn3
import matplotlib.pyplot as plt
venn3(subsets=(1, 1, 1, 1, 1, 1, 1), set_labels=('A', 'B', 'C'))
plt.title('venn three')
""",
        "venn three",
        ("VennDiagram",),
    ),
    Legit(
        "funcformatter_lambda",
        """
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter
fig, ax = plt.subplots()
ax.bar(['q1', 'q2'], [1000, 2500])
ax.yaxis.set_major_formatter(FuncFormatter(lambda v, pos: f'${v / 1000:.1f}k'))
ax.set_title('money')
""",
        "money",
        ("bar",),
        ("$2.5k",),
    ),
    Legit(
        "local_class_formatter",
        """
import matplotlib.pyplot as plt
from matplotlib.ticker import Formatter
def make():
    class Pct(Formatter):
        def __call__(self, x, pos=None):
            return f'{x:.0f}%'
    return Pct()
fig, ax = plt.subplots()
ax.plot([0, 50, 100])
ax.yaxis.set_major_formatter(make())
ax.set_title('percent')
""",
        "percent",
        ("plot",),
        ("100%",),
    ),
    Legit(
        "plt_show_in_model_response",
        "Here you go:\n```python\nimport matplotlib.pyplot as plt\n"
        "plt.pie([1, 2, 3], labels=['x', 'y', 'z'])\nplt.title('pie shown')\nplt.savefig('out.png')\nplt.show()\n```\n",
        "pie shown",
        ("pie",),
        ("x",),
        response=True,
    ),
    Legit(
        "plt_show_and_savefig_kept",
        """
import matplotlib.pyplot as plt
plt.scatter([1, 2, 3], [3, 1, 2], c=['r', 'g', 'b'])
plt.title('scatter saved')
plt.savefig('scatter.png', dpi=50)
plt.show()
""",
        "scatter saved",
        ("scatter",),
    ),
    Legit(
        "dates_and_tight_layout",
        """
import datetime as dt, matplotlib.pyplot as plt, matplotlib.dates as mdates
days = [dt.date(2024, 1, d) for d in range(1, 8)]
fig, ax = plt.subplots()
ax.plot(days, [3, 4, 2, 5, 6, 4, 7], marker='o')
ax.xaxis.set_major_formatter(mdates.DateFormatter('%b %d'))
ax.set_title('week')
fig.autofmt_xdate()
plt.tight_layout()
""",
        "week",
        ("plot",),
    ),
    Legit(
        "style_and_subplots",
        """
import numpy as np, matplotlib.pyplot as plt
plt.style.use('ggplot')
fig, axes = plt.subplots(2, 2, figsize=(6, 5))
axes[0, 0].hist(np.random.default_rng(0).normal(size=200), bins=15)
axes[0, 1].errorbar([1, 2, 3], [2, 3, 1], yerr=0.2, fmt='o')
axes[1, 0].fill_between([0, 1, 2], [0, 1, 0], [1, 2, 1], alpha=0.4)
axes[1, 1].imshow(np.arange(9).reshape(3, 3))
fig.suptitle('grid')
axes[0, 0].set_title('hist')
""",
        "hist",
        ("hist", "errorbar", "fill_between", "imshow"),
    ),
    Legit(
        "annotations_and_mathtext",
        """
import matplotlib.pyplot as plt
from matplotlib.ticker import PercentFormatter, StrMethodFormatter
fig, ax = plt.subplots()
ax.plot([0, 0.5, 1], [0.1, 0.7, 0.4])
ax.annotate('peak', xy=(0.5, 0.7), xytext=(0.7, 0.9), arrowprops=dict(arrowstyle='->'))
ax.text(0.1, 0.5, r'$\\alpha^2$')
ax.yaxis.set_major_formatter(PercentFormatter(1.0))
ax.xaxis.set_major_formatter(StrMethodFormatter('{x:.2f}'))
ax.set_title('annotated')
""",
        "annotated",
        ("plot",),
        ("peak",),
    ),
]


# --------------------------------------------------------------------------- helpers


def kind_of(r: RenderResult) -> str | None:
    return None if r.ok else r.error_kind


def describe(r: RenderResult) -> str:
    return (
        f"ok={r.ok} kind={r.error_kind} error={(r.error or '')[:300]!r} seconds={r.seconds:.2f} "
        f"violations={r.violations[:3]} stdout={r.stdout[:300]!r}"
    )


def result_text(r: RenderResult) -> str:
    return "\n".join([r.stdout or "", r.error or "", json.dumps(r.trace, default=str), json.dumps(r.violations)])


def marker_leaks(r: RenderResult) -> list[str]:
    problems = []
    for where, value in (
        ("stdout", r.stdout or ""),
        ("error", r.error or ""),
        ("trace", json.dumps(r.trace, default=str)),
        ("violations", json.dumps(r.violations)),
    ):
        if MARKER in value:
            problems.append(f"the reference marker came back in r.{where}")
    if r.png and MARKER.encode() in r.png:
        problems.append("the reference marker came back in the PNG bytes")
    return problems


def png_size(png: bytes | None) -> tuple[int, int] | None:
    if not png or len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


TRACE_KEYS = ("types", "colors", "texts", "tick_labels", "layout", "axes", "suptitle", "figure")


def trace_differences(got: dict, want: dict, hides_calls: bool = False) -> list[str]:
    out = []
    for key in TRACE_KEYS:
        if hides_calls and key == "types":
            gained = {k: v for k, v in got.get(key, {}).items() if v > want.get(key, {}).get(k, 0)}
            if gained:
                out.append(f"trace['types'] gained {gained} over the honest chart")
            continue
        if hides_calls and key == "colors":
            gained = [c for c in got.get(key, []) if c not in want.get(key, [])]
            if gained:
                out.append(f"trace['colors'] gained {gained} over the honest chart")
            continue
        if got.get(key) != want.get(key):
            out.append(
                f"trace[{key!r}]: {json.dumps(got.get(key), default=str)[:300]} "
                f"!= honest {json.dumps(want.get(key), default=str)[:300]}"
            )
    return out


def image_differences(got: bytes | None, want: bytes | None) -> list[str]:
    """Pixel-wise comparison; never decodes an image over MAX_PIXELS."""
    gs, ws = png_size(got), png_size(want)
    if gs is None:
        return ["no PNG image"]
    if gs[0] * gs[1] > MAX_PIXELS * 1.01:
        return [f"image {gs[0]}x{gs[1]} exceeds max_pixels {MAX_PIXELS}"]
    if gs != ws:
        return [f"image is {gs[0]}x{gs[1]}, the honest chart {ws[0]}x{ws[1]}"]
    if got == want:
        return []
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(got)).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(want)).convert("RGB"), dtype=np.int16)
    differing = float((np.abs(a - b).max(axis=2) > 8).mean())
    return [] if differing < 0.002 else [f"{differing:.1%} of the pixels differ from the honest chart"]


def descendants(pid: int) -> list[psutil.Process]:
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    alive = []
    for p in kids:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def in_job_dirs(root: str) -> list[psutil.Process]:
    """Processes anywhere whose cwd or exe lies inside a job dir of this pool."""
    found = []
    for p in psutil.process_iter(["pid", "cwd", "exe"]):
        for path in (p.info.get("cwd") or "", p.info.get("exe") or ""):
            if path.startswith(root.rstrip("/") + "/"):
                found.append(p)
                break
    return found


def pid_desc(p: psutil.Process) -> str:
    try:
        return f"{p.pid} {p.name()} cwd={p.cwd()!r} cmd={' '.join(p.cmdline())[:80]!r}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"{p.pid} (gone)"


def same_process_alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_processes(procs) -> None:
    """End processes this test caused, by pid (never by name)."""
    for p in procs:
        try:
            if p.is_running() and p.pid not in (TEST_PID, 1):
                p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(procs), timeout=3)


def dir_bytes(root: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


# ---- SysV objects


def sysv_ids() -> dict[str, set[tuple[int, int]]]:
    """kind -> {(key, id)} of every SysV object on the machine (host IPC namespace)."""
    out = {}
    for kind in ("shm", "msg", "sem"):
        rows = set()
        try:
            with open(f"/proc/sysvipc/{kind}") as fh:
                next(fh, None)
                for line in fh:
                    parts = line.split()
                    if len(parts) > 1:
                        rows.add((int(parts[0]), int(parts[1])))
        except OSError:
            pass
        out[kind] = rows
    return out


def remove_sysv(kind: str, ident: int) -> None:
    flag = {"shm": "-m", "msg": "-q", "sem": "-s"}[kind]
    if shutil.which("ipcrm"):
        subprocess.run(["ipcrm", flag, str(ident)], capture_output=True, timeout=10)
        return
    libc = ctypes.CDLL(None, use_errno=True)  # no ipcrm: IPC_RMID ourselves
    {"shm": libc.shmctl, "msg": libc.msgctl, "sem": lambda i, *_: libc.semctl(i, 0, 0)}[kind](ident, 0, None)


def remove_our_sysv() -> None:
    for kind, rows in sysv_ids().items():
        for key, ident in rows:
            if SYSV_KEY_BASE <= key < SYSV_KEY_BASE + 0x10000:
                remove_sysv(kind, ident)


# ---- scheduling state of the server and of this process


def sched_state(pid: int) -> dict | None:
    try:
        p = psutil.Process(pid)
        return {
            "nice": os.getpriority(os.PRIO_PROCESS, pid),
            "affinity": sorted(os.sched_getaffinity(pid)),
            "policy": os.sched_getscheduler(pid),
            "ionice": tuple(p.ionice()),
        }
    except (psutil.NoSuchProcess, ProcessLookupError, OSError):
        return None


def restore_sched(pid: int, want: dict) -> None:
    try:
        if os.sched_getscheduler(pid) != want["policy"]:
            os.sched_setscheduler(pid, want["policy"], os.sched_param(0))
        if os.getpriority(os.PRIO_PROCESS, pid) != want["nice"]:
            os.setpriority(os.PRIO_PROCESS, pid, want["nice"])
        if sorted(os.sched_getaffinity(pid)) != want["affinity"]:
            os.sched_setaffinity(pid, want["affinity"])
        ioclass, value = want["ionice"]
        p = psutil.Process(pid)
        if tuple(p.ionice()) != want["ionice"]:
            p.ionice(ioclass, value if ioclass in (psutil.IOPRIO_CLASS_RT, psutil.IOPRIO_CLASS_BE) else None)
    except (psutil.NoSuchProcess, ProcessLookupError, OSError):
        pass


# ---- the .so a job writes into its dir

EVIL_C = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void ran(void) {
    int fd = open("native_ran", O_CREAT | O_WRONLY, 0600);
    if (fd >= 0) close(fd);
}
int evil_answer(void) { return 42; }
void *PyInit_evil(void) { return 0; }
"""


@pytest.fixture(scope="module")
def so_hex(tmp_path_factory):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return None
    d = tmp_path_factory.mktemp("evil")
    (d / "evil.c").write_text(EVIL_C)
    done = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O1", "-s", "-o", str(d / "evil.so"), str(d / "evil.c")],
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        return None
    return (d / "evil.so").read_bytes().hex()


# --------------------------------------------------------------------------- the pools


class Watched:
    """A pool plus what 'idle' looks like for it (how many processes its server keeps)."""

    def __init__(self, pool: RenderPool) -> None:
        self.pool = pool
        warm = pool.render(NEXT)
        assert warm.ok, describe(warm)
        time.sleep(0.3)
        self.idle = self._idle_count()
        self.restarts = pool.restarts

    @property
    def server_pid(self) -> int:
        return self.pool._proc.pid

    def _idle_count(self) -> int:
        counts = []
        for _ in range(8):
            counts.append(len(descendants(self.server_pid)))
            time.sleep(0.03)
        return max(counts)

    def extras(self, wait: float = 3.0) -> list[psutil.Process]:
        """Job processes still around `wait` s after the job returned (none, normally)."""
        deadline = time.monotonic() + wait
        while True:
            kids = descendants(self.server_pid)
            stray = in_job_dirs(self.pool._root)
            if len(kids) <= self.idle and not stray:
                return []
            if time.monotonic() >= deadline:
                # beyond the idle count: the newest processes are the job's
                newest = sorted(kids, key=lambda p: p.create_time())[self.idle :]
                return list({p.pid: p for p in stray + newest}.values())
            time.sleep(0.05)


def _start_pool(**extra) -> RenderPool:
    return RenderPool(workers=2, **pool_kwargs(**extra))


@pytest.fixture(scope="module")
def signal_log():
    """Signals delivered to this process (SIGIO's default action would kill pytest)."""
    log: list[int] = []
    sigs = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGIO, signal.SIGURG, signal.SIGHUP, signal.SIGWINCH]
    old = {s: signal.signal(s, lambda signum, frame: log.append(signum)) for s in sigs}
    yield log
    for s, handler in old.items():
        signal.signal(s, handler)


@pytest.fixture(scope="module")
def pool(signal_log):
    p = _start_pool()
    try:
        yield Watched(p)
    finally:
        p.close()
        remove_our_sysv()


@pytest.fixture(scope="module")
def hang_pool(signal_log):
    p = _start_pool(timeout=HANG_TIMEOUT)
    try:
        yield Watched(p)
    finally:
        p.close()


@pytest.fixture(scope="module")
def honest_cache():
    return {}


def honest_render(w: Watched, cache: dict, code: str) -> RenderResult:
    key = (id(w.pool), code)
    if key not in cache:
        r = w.pool.render(code)
        assert r.ok, f"the honest twin itself failed: {describe(r)}"
        cache[key] = r
    return cache[key]


def fill(code: str, w: Watched, so_hex: str | None = None) -> str:
    code = (
        code.replace("@LIBC_OFFSETS@", repr(LIBC_OFFSETS))
        .replace("@ROOT@", w.pool._root)
        .replace("@SERVER_PID@", str(w.server_pid))
        .replace("@TEST_PID@", str(TEST_PID))
    )
    if "@SO_HEX@" in code:
        code = code.replace("@SO_HEX@", so_hex or "")
    leftover = re.findall(r"@[A-Z_]+@", code)
    assert not leftover, f"unfilled placeholders {leftover}"
    return code


def skip_unless_supported(case: Case, so_hex: str | None) -> None:
    if "libc" in case.needs and not (X86_64_GLIBC and "syscall" in LIBC_OFFSETS):
        pytest.skip("raw libc/syscall attacks are written for x86_64 glibc")
    if "gcc" in case.needs and not so_hex:
        pytest.skip("no C compiler to build the shared object")


def submit_and_wait(w: Watched, code: str, timeout: float, grace: float = 20.0):
    """(result, wall seconds, job processes seen while it ran, note). A job still running
    `timeout + grace` s after submission has its processes killed by pid, so a hole can
    never wedge the pool or the test run."""
    before = {p.pid for p in descendants(w.server_pid)}
    t0 = time.monotonic()
    fut = w.pool.submit(code, timeout=timeout)
    seen: dict[int, psutil.Process] = {}
    note = None
    while True:
        try:
            r = fut.result(timeout=0.1)
            break
        except FutureTimeout:
            pass
        for p in descendants(w.server_pid):
            if p.pid not in before:
                seen.setdefault(p.pid, p)
        seen.update({p.pid: p for p in in_job_dirs(w.pool._root)})
        if time.monotonic() - t0 > timeout + grace:
            note = f"the job did not return within {timeout + grace:g} s; its processes were killed"
            kill_processes(list(seen.values()) + in_job_dirs(w.pool._root))
            try:
                r = fut.result(timeout=15)
            except FutureTimeout:
                r = RenderResult.failure("crashed", "the pool never answered")
            break
    return r, time.monotonic() - t0, list(seen.values()), note


def hygiene(
    w: Watched, r: RenderResult, signal_log: list, sysv_before: dict, sched_before: dict, check_next: bool = True
) -> list[str]:
    """Everything a hostile job must not have done, whatever its outcome."""
    problems = marker_leaks(r)
    left = w.extras()
    if left:
        problems.append(f"processes left behind: {[pid_desc(p) for p in left]}")
        kill_processes(left)
    after = sysv_ids()
    for kind, rows in after.items():
        new = rows - sysv_before.get(kind, set())
        if new:
            problems.append(f"new SysV {kind} objects on the host: {sorted(new)}")
            for _, ident in new:
                remove_sysv(kind, ident)
    for pid, before in sched_before.items():
        now = sched_state(pid)
        if before is not None and now is not None and now != before:
            who = "the server" if pid == w.server_pid else "the test process"
            problems.append(f"{who}'s scheduling changed: {before} -> {now}")
            restore_sched(pid, before)
    if signal_log:
        problems.append(f"this process received signals from the job: {signal_log[:5]}")
        signal_log.clear()
    used = dir_bytes(w.pool._root)
    if used > 8 << 20:
        problems.append(f"{used >> 20} MiB left in the pool root after the job")
    if w.pool.restarts != w.restarts or w.pool._proc.poll() is not None:
        problems.append("the render server died or was restarted during the job")
        w.restarts = w.pool.restarts
    if check_next:
        nxt = w.pool.render(NEXT)
        if not nxt.ok or [a.get("title") for a in nxt.trace.get("axes", [])] != ["next"]:
            problems.append(f"the next job was affected: {describe(nxt)} {nxt.trace.get('axes', [{}])[:1]}")
    return problems


def states(w: Watched) -> dict:
    return {w.server_pid: sched_state(w.server_pid), TEST_PID: sched_state(TEST_PID)}


def outcome(case: Case, r: RenderResult, honest: RenderResult | None) -> list[str]:
    problems = []
    k = kind_of(r)
    if k is None:
        if None not in case.kinds and honest is None:
            problems.append(f"expected a failure in {case.kinds}, the job succeeded")
    elif k not in case.kinds and FAIL not in case.kinds:
        problems.append(f"expected kind in {case.kinds}, got {k!r}")
    if r.ok and honest is not None:
        problems += trace_differences(r.trace, honest.trace, case.hides_calls)
        problems += image_differences(r.png, honest.png)
    size = png_size(r.png)
    if size and size[0] * size[1] > MAX_PIXELS * 1.01:
        problems.append(f"image {size[0]}x{size[1]} exceeds max_pixels")
    text = result_text(r)
    for s in case.absent:
        if s in text:
            problems.append(f"the attack's success marker {s!r} came back")
    if r.ok and "FORGED" in json.dumps(r.trace):
        problems.append("an ok result carries a FORGED trace")
    if case.check is not None:
        problems += case.check(r)
    return problems


def run_case(
    w: Watched,
    case: Case,
    signal_log: list,
    honest_cache: dict,
    so_hex: str | None,
    before_job: Callable[[], None] | None = None,
) -> None:
    skip_unless_supported(case, so_hex)
    honest = honest_render(w, honest_cache, case.honest) if case.honest is not None else None
    code = fill(case.code, w, so_hex)
    if before_job is not None:
        before_job()
    sysv_before, sched_before = sysv_ids(), states(w)
    r, wall, _, note = submit_and_wait(w, code, case.timeout)
    problems = [note] if note else []
    problems += outcome(case, r, honest)
    if wall > case.timeout + DEADLINE_SLACK + 3:
        problems.append(f"took {wall:.2f} s with a {case.timeout:g} s limit")
    problems += hygiene(w, r, signal_log, sysv_before, sched_before)
    assert not problems, f"{case.id}: {problems}\nresult: {describe(r)}"


# --------------------------------------------------------------------------- 1. reference theft


@pytest.fixture(scope="module")
def reference(pool):
    r = pool.pool.render(REFERENCE)
    assert r.ok, describe(r)
    assert r.trace["axes"][0]["title"] == MARKER and MARKER in r.stdout
    return r


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", _params(THEFT))
def test_reference_theft(pool, reference, signal_log, honest_cache, so_hex, case):
    """The reference job ran on this pool just before: nothing of it may reach this job."""

    def again():  # the reference runs right before each theft: its traces are freshest
        r = pool.pool.render(REFERENCE)
        assert r.ok, describe(r)

    run_case(pool, case, signal_log, honest_cache, so_hex, before_job=again)


def test_theft_scanner_finds_what_it_looks_for(pool, signal_log):
    """The heap scanner is meaningful: it finds a marker the job itself holds."""
    own = "REFMARK" + "0123456789abcdef" * 2
    code = "_mine = 'REFMARK' + '0123456789abcdef' * 2\n" + HEAP_SCAN.replace("@VIEW@", VIEW_UNION)
    r = pool.pool.render(code, timeout=THEFT_TIMEOUT)
    if not r.stdout:
        pytest.skip(f"the event-free scanner cannot run in this sandbox ({r.error_kind}): theft by scanning is moot")
    assert own in r.stdout, describe(r)


# --------------------------------------------------------------------------- 2. forged results


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", _params(FORGE))
def test_forged_result(pool, signal_log, honest_cache, so_hex, case):
    run_case(pool, case, signal_log, honest_cache, so_hex)


# --------------------------------------------------------------------------- 3. tampered traces


def test_honest_twin_is_deterministic(pool, honest_cache):
    """The comparison below is only fair if the honest chart renders identically twice."""
    a = honest_render(pool, honest_cache, HONEST)
    b = pool.pool.render(HONEST)
    assert b.ok, describe(b)
    assert trace_differences(b.trace, a.trace) == []
    assert image_differences(b.png, a.png) == []
    assert a.trace["axes"][0]["title"] == "real" and a.trace["axes"][0]["bars"][0]["values"] == [3, 1, 2]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", _params(TAMPER))
def test_tampered_trace(pool, signal_log, honest_cache, so_hex, case):
    run_case(pool, case, signal_log, honest_cache, so_hex)


# --------------------------------------------------------------------------- 4. deadlines


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", _params(HANGS))
def test_deadline_holds(hang_pool, signal_log, honest_cache, so_hex, case):
    w = hang_pool
    skip_unless_supported(case, so_hex)
    code = fill(case.code, w, so_hex)
    sysv_before, sched_before = sysv_ids(), states(w)
    r, wall, seen, note = submit_and_wait(w, code, case.timeout, grace=DEADLINE_SLACK + 3)
    problems = [note] if note else []
    if wall > case.timeout + DEADLINE_SLACK:
        problems.append(f"the job ended {wall:.2f} s after submission, limit {case.timeout:g} s + {DEADLINE_SLACK} s")
    k = kind_of(r)
    if k not in case.kinds:
        problems.append(f"expected kind in {case.kinds}, got {k!r}")
    alive = [p for p in seen if same_process_alive(p)]
    if alive:
        problems.append(f"job processes outlived the job: {[pid_desc(p) for p in alive]}")
        kill_processes(alive)
    problems += hygiene(w, r, signal_log, sysv_before, sched_before)
    assert not problems, f"{case.id}: {problems}\nresult: {describe(r)}"


ESCAPE = (
    """
import os, time
try:
    os.setpgid(0, os.getpgid(os.getppid()))
except OSError:
    pass
"""
    + (LIBC + "try:\n    call('prctl', 1, 0, 0, 0, 0)\nexcept Exception:\n    pass\n" if X86_64_GLIBC else "")
    + SLEEP_FOREVER
)


def _pool_processes(p: RenderPool) -> list[psutil.Process]:
    procs = {q.pid: q for q in descendants(p._proc.pid)}
    procs.update({q.pid: q for q in in_job_dirs(p._root)})
    try:
        procs[p._proc.pid] = psutil.Process(p._proc.pid)
    except psutil.NoSuchProcess:
        pass
    return list(procs.values())


def _orphans_since(t0: float, roots: list[str]) -> list[psutil.Process]:
    """Processes born after t0 that escaped one of these (closed) pools: cwd/exe in one of
    their roots, or a renderers command line re-parented to init or a subreaper, i.e. with
    no renderers/pytest process above it (other sessions' live pools are left alone)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd", "exe", "create_time"]):
        if (p.info["create_time"] or 0) < t0 - 0.5 or p.info["pid"] == TEST_PID:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(p.info.get("cmdline") or [])
            where = (p.info.get("cwd") or "") + " " + (p.info.get("exe") or "")
            if any(root in where for root in roots):
                found.append(p)
                continue
            if "renderers" not in cmd:
                continue
            above = " ".join(" ".join(a.cmdline()) for a in p.parents())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "renderers" not in above and "pytest" not in above:
            found.append(p)
    return found


@pytest.mark.timeout(90)
def test_nothing_outlives_a_closed_pool():
    """Jobs that left the server's process group and cleared PDEATHSIG (or tried to), plus
    an ordinary sleeper, are all gone once close() returns."""
    t0 = time.time()
    p = RenderPool(workers=2, **pool_kwargs(timeout=30.0))
    root = p._root
    futures, seen = [], {}
    try:
        futures = [
            p.submit(ESCAPE.replace("@LIBC_OFFSETS@", repr(LIBC_OFFSETS)), timeout=30.0),
            p.submit("import time\ntime.sleep(30)\n", timeout=30.0),
        ]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for q in _pool_processes(p):
                seen.setdefault(q.pid, q)
            time.sleep(0.1)
            if time.monotonic() > deadline - 8 and len(descendants(p._proc.pid)) >= 2:
                break
        time.sleep(1.0)  # let both scripts reach their sleep
        for q in _pool_processes(p):
            seen.setdefault(q.pid, q)
        t_close = time.monotonic()
        p.close()
        close_s = time.monotonic() - t_close
    finally:
        p.close()
    _, alive = psutil.wait_procs(list(seen.values()), timeout=3)
    alive = [q for q in alive if same_process_alive(q)]
    orphans = [q for q in _orphans_since(t0, [root]) if q.pid not in {a.pid for a in alive}]
    problems = []
    if alive:
        problems.append(f"pool processes survived close(): {[pid_desc(q) for q in alive]}")
    if orphans:
        problems.append(f"orphaned pool processes: {[pid_desc(q) for q in orphans]}")
    if close_s > 15:
        problems.append(f"close() took {close_s:.1f} s")
    for fut in futures:
        if not fut.done():
            problems.append("a future was left unresolved by close()")
    kill_processes(alive + orphans)
    assert not problems, problems


@pytest.mark.timeout(60)
def test_escaped_job_is_killed_at_its_deadline(hang_pool):
    """The same escape with a short deadline: the job must end at it, not at pool close."""
    w = hang_pool
    r, wall, seen, note = submit_and_wait(w, fill(ESCAPE, w), HANG_TIMEOUT, grace=DEADLINE_SLACK + 3)
    alive = [q for q in seen if same_process_alive(q)]
    kill_processes(alive)
    problems = [note] if note else []
    if wall > HANG_TIMEOUT + DEADLINE_SLACK:
        problems.append(f"ended after {wall:.2f} s")
    if alive:
        problems.append(f"still running after the deadline: {[pid_desc(q) for q in alive]}")
    if kind_of(r) not in ("timeout", "forbidden"):
        problems.append(f"kind {kind_of(r)!r}")
    assert not problems, f"{problems}\n{describe(r)}"


# --------------------------------------------------------------------------- 5. kernel surface


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", _params(KERNEL))
def test_kernel_surface(pool, signal_log, honest_cache, so_hex, case):
    if case.id == "disk_fill_many_files":
        _run_disk_fill(pool, case, signal_log, honest_cache, so_hex)
    else:
        run_case(pool, case, signal_log, honest_cache, so_hex)


def _run_disk_fill(w: Watched, case: Case, signal_log, honest_cache, so_hex) -> None:
    """The disk-filling job, with this process sampling how much the pool root holds."""
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], dir_bytes(w.pool._root))
            stop.wait(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        run_case(w, case, signal_log, honest_cache, so_hex)
    finally:
        stop.set()
        t.join(5)
    assert peak[0] <= (DISK_MB + LEAK_MB) << 20, (
        f"the pool root held {peak[0] >> 20} MiB during the job (cap {DISK_MB})"
    )


# --------------------------------------------------------------------------- 6. ctypes


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", _params(CTYPES))
def test_ctypes(pool, signal_log, honest_cache, so_hex, case):
    run_case(pool, case, signal_log, honest_cache, so_hex)


# --------------------------------------------------------------------------- 7. legit charts


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in LEGIT])
def test_legit_chart_renders(pool, case):
    p = pool.pool
    r = p.render_response(case.code) if case.response else p.render(case.code)
    assert r.ok, f"{case.id}: {describe(r)}"
    assert r.violations == [], r.violations
    t = r.trace
    titles = [a.get("title") for a in t.get("axes", [])]
    assert case.title in titles, f"{case.id}: titles {titles}"
    missing = [k for k in case.types if k not in t.get("types", {})]
    assert not missing, f"{case.id}: types {t.get('types')} lack {missing}"
    shown = set(t.get("texts", [])) | set(t.get("tick_labels", []))
    assert all(s in shown for s in case.texts), f"{case.id}: {case.texts} not all in {sorted(shown)[:40]}"
    w, h = png_size(r.png)
    assert w > 100 and h > 100 and w * h <= MAX_PIXELS * 1.01


# --------------------------------------------------------------------------- 8. a policy's batch


def _batch() -> list[tuple[str, str, object]]:
    """(id, code, expectation): a Legit (must render, with its title), or a Case."""
    by_id = {c.id: c for c in THEFT + FORGE + TAMPER + KERNEL + CTYPES + HANGS}
    legit = {c.id: c for c in LEGIT}
    order = [
        ("reference", REFERENCE, "reference"),
        ("honest", HONEST, "honest"),
        *[
            (i, legit[i].code, legit[i])
            for i in (
                "seaborn_barplot",
                "polar",
                "squarify_treemap",
                "venn2",
                "networkx_digraph_arrows",
                "funcformatter_lambda",
                "pandas_read_csv_stringio",
                "bar3d",
            )
        ],
        *[
            (i, by_id[i].code, by_id[i])
            for i in (
                "heap_scan_ctypes_union",
                "walk_stack_capture_locals_then_exit",
                "exec_getframe_then_draw",
                "patch_axes_get_title",
                "recorder_via_func_globals",
                "patch_print_png_red_png",
                "spray_rce_pickle_then_return",
                "instance_get_title_picklable",
                "setpgid_join_parent_group",
                "sleep_in_c",
                "sysv_shmget_raw_syscall",
                "memfd_create_and_fill",
                "string_at_read",
                "sched_setaffinity_server",
            )
        ],
        ("legit_after_hostiles", NEXT, "next"),
    ]
    return order


@pytest.mark.timeout(180)
def test_policy_batch(signal_log, so_hex):
    """24 answers as a policy would emit them, through render_many on a dedicated pool:
    everything returns, honest charts are ok with their own traces, hostile ones never
    come back ok with a forged trace, and nothing is left behind."""
    t0 = time.time()
    batch = _batch()
    assert len(batch) >= 24
    p = RenderPool(workers=2, **pool_kwargs(timeout=HANG_TIMEOUT))
    w = Watched(p)
    root = p._root
    try:
        honest = p.render(HONEST)
        assert honest.ok, describe(honest)
        codes = []
        for _, code, exp in batch:
            if isinstance(exp, Case) and (("libc" in exp.needs and not X86_64_GLIBC) or "gcc" in exp.needs):
                code = NEXT
            codes.append(fill(code, w, so_hex))
        sysv_before, sched_before = sysv_ids(), states(w)
        results: list[RenderResult | None] = [None] * len(codes)
        done = threading.Event()

        def go():
            results[:] = p.render_many(codes, timeout=HANG_TIMEOUT)
            done.set()

        threading.Thread(target=go, daemon=True).start()
        problems = []
        if not done.wait(45):
            problems.append("render_many did not return within 45 s")
            kill_processes(descendants(p._proc.pid) + in_job_dirs(root))
            done.wait(30)
        for (cid, _, exp), r in zip(batch, results):
            if r is None:
                problems.append(f"{cid}: no result")
                continue
            if exp == "reference":
                if not r.ok:
                    problems.append(f"{cid}: the reference failed: {describe(r)}")
                continue
            problems += [f"{cid}: {x}" for x in marker_leaks(r)]
            if exp in ("honest", "next"):
                want = "real" if exp == "honest" else "next"
                titles = [a.get("title") for a in r.trace.get("axes", [])]
                if not r.ok or titles != [want]:
                    problems.append(f"{cid}: honest chart not rendered honestly: {describe(r)} titles={titles}")
                elif exp == "honest":
                    problems += [f"{cid}: {x}" for x in trace_differences(r.trace, honest.trace)]
            elif isinstance(exp, Legit):
                titles = [a.get("title") for a in r.trace.get("axes", [])]
                if not r.ok or exp.title not in titles:
                    problems.append(f"{cid}: legit chart failed: {describe(r)} titles={titles}")
            else:
                hon = honest if exp.honest is not None else None
                problems += [
                    f"{cid}: {x}" for x in outcome(exp, r, hon) if not x.startswith("expected kind")
                ]  # kinds may differ under load
                if r.ok and hon is None and None not in exp.kinds:
                    problems.append(f"{cid}: a hostile job came back ok: {describe(r)}")
        problems += hygiene(w, RenderResult(ok=False), signal_log, sysv_before, sched_before)
    finally:
        seen = _pool_processes(p)
        p.close()
    _, alive = psutil.wait_procs(seen, timeout=3)
    alive = [q for q in alive if same_process_alive(q)] + _orphans_since(t0, [root])
    if alive:
        problems.append(f"processes outlived the batch pool: {[pid_desc(q) for q in alive]}")
        kill_processes(alive)
    remove_our_sysv()
    assert not problems, "\n".join(problems)
