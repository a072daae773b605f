"""The Python audit hook of a job's runner: the language-level layer of the sandbox.

It refuses process creation, sockets, dynamic library loading, every ctypes memory access
or foreign call, writes outside the job's directory and reads outside an allowlist, and
names what it refused (`forbidden`). It resolves paths with primitives captured at install
time, so user code that monkeypatches os.path or builtins cannot steer it. The kernel
layers (renderers.sandbox) hold whatever slips past it.
"""

from __future__ import annotations

import sys
from typing import Callable

from renderers.execute import SandboxViolation

_ALWAYS_REFUSED = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.startfile",
        "pty.spawn",
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.sendto",
        "socket.sethostname",
        "sqlite3.connect",
        "urllib.Request",
        "http.client.connect",
        "ftplib.connect",
        "smtplib.connect",
        "poplib.connect",
        "imaplib.open",
        "nntplib.connect",
        "telnetlib.Telnet.open",
        "webbrowser.open",
        "resource.setrlimit",
        "sys.addaudithook",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "sys.remote_exec",
        "os.setuid",
        "os.setgid",
        # Walking the heap reaches the sandbox's own state (this hook, the trace records).
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "os.memfd_create",
        "os.setpgid",
        "os.setsid",
        "os.setpriority",
        "os.sched_setaffinity",
        "os.sched_setscheduler",
        "os.sched_setparam",
    }
)
# Frame and code access that, from user code, would reach the sandbox's locals.
_FRAME_EVENTS = frozenset({"sys._getframe", "sys._current_frames", "sys._current_exceptions"})
_FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_code", "__code__"})
# stdlib helpers that hand frames to their caller
_FRAME_HELPERS = frozenset(
    {"currentframe", "stack", "getouterframes", "getinnerframes", "trace", "walk_stack", "walk_tb"}
)
# event -> (indexes of the path arguments it writes, indexes of its dir_fd arguments)
_WRITE_EVENTS = {
    "os.remove": ((0,), (1,)),
    "os.rmdir": ((0,), (1,)),
    "os.mkdir": ((0,), (2,)),
    "os.rename": ((0, 1), (2, 3)),
    "os.link": ((0, 1), (2, 3)),
    "os.symlink": ((1,), (2,)),
    "os.truncate": ((0,), ()),
    "os.chmod": ((0,), (2,)),
    "os.chown": ((0,), (3,)),
    "os.utime": ((0,), (3,)),
    "os.chflags": ((0,), ()),
    "os.lchflags": ((0,), ()),
    "os.setxattr": ((0,), ()),
    "os.removexattr": ((0,), ()),
    "tempfile.mkstemp": ((0,), ()),
    "tempfile.mkdtemp": ((0,), ()),
    "shutil.rmtree": ((0,), (1,)),
}
_READ_EVENTS = {
    "os.listdir": (0,),
    "os.scandir": (0,),
    "glob.glob": (0,),
    "glob.glob/2": (0,),
    "os.getxattr": (0,),
    "os.listxattr": (0,),
}


def install_audit_hook(
    write_root: str, read_roots: list[str], user_filename: str = "<chart>"
) -> Callable[[], list[str]]:
    """Install the hook for the rest of this process's life; returns a getter of violations."""
    import posix

    lstat, readlink, getcwd, fspath, getpid = posix.lstat, posix.readlink, posix.getcwd, posix.fspath, posix.getpid
    getframe = sys._getframe
    busy = [False]  # the hook's own frame inspection raises events too
    own_pid = getpid()
    write_flags = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
    s_ifmt, s_iflnk = 0o170000, 0o120000
    write_root = write_root.rstrip("/")
    readable = tuple(r.rstrip("/") for r in read_roots) + (write_root,)
    violations: list[str] = []
    raise_violation = SandboxViolation

    def resolve(path) -> str:
        path = fspath(path)
        if isinstance(path, bytes):
            path = path.decode("utf-8", "surrogateescape")
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        pending = [p for p in path.split("/") if p][::-1]
        parts: list[str] = []
        hops = 0
        while pending:
            comp = pending.pop()
            if comp == ".":
                continue
            if comp == "..":
                if parts:
                    parts.pop()
                continue
            candidate = "/" + "/".join(parts + [comp])
            try:
                mode = lstat(candidate).st_mode
            except OSError:
                parts.append(comp)
                continue
            if mode & s_ifmt == s_iflnk:
                hops += 1
                if hops > 40:
                    raise raise_violation("too many symbolic links")
                target = readlink(candidate)
                if target.startswith("/"):
                    parts = []
                pending.extend([p for p in target.split("/") if p][::-1])
            else:
                parts.append(comp)
        return "/" + "/".join(parts)

    def inside(path: str, roots: tuple[str, ...]) -> bool:
        for root in roots:
            if path == root or path.startswith(root + "/"):
                return True
        return False

    def refuse(what: str) -> None:
        violations.append(what)
        raise raise_violation(f"sandbox refused {what}")

    def check_path(event: str, raw, write: bool) -> None:
        if raw is None or isinstance(raw, int):
            return  # an already-open descriptor: it passed this check when it was opened
        try:
            path = resolve(raw)
        except raise_violation:
            raise
        except Exception:
            refuse(f"{event} on an unresolvable path")
            return
        if write and not inside(path, (write_root,)) and path != "/dev/null":
            refuse(f"{event} writing {path}")
        elif not write and not inside(path, readable):
            refuse(f"{event} reading {path}")

    def from_user_code() -> bool:
        """Did the script itself (or a stdlib frame helper it called) trigger this event?"""
        busy[0] = True
        try:
            frame = getframe(2)  # 0: this function, 1: the hook, 2: who raised the event
            code = frame.f_code
            if code.co_filename == user_filename:
                return True
            if code.co_name in _FRAME_HELPERS and frame.f_back is not None:
                return frame.f_back.f_code.co_filename == user_filename
            return False
        except Exception:
            return False
        finally:
            busy[0] = False

    def hook(event: str, args: tuple) -> None:
        if busy[0]:
            return
        if event in _FRAME_EVENTS or (event == "object.__getattr__" and len(args) > 1 and args[1] in _FRAME_ATTRS):
            if from_user_code():
                refuse(f"{event} {args[1] if event == 'object.__getattr__' else ''}".strip())
            return
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            write = False
            if isinstance(mode, str) and ("w" in mode or "a" in mode or "x" in mode or "+" in mode):
                write = True
            if isinstance(flags, int) and flags & write_flags:
                write = True
            check_path(event, path, write)
        elif event in _ALWAYS_REFUSED or event.startswith("ctypes."):
            # every ctypes event is raw memory, a foreign call or loading a library: chart
            # code needs none of them
            refuse(event)
        elif event == "import" and len(args) > 2 and isinstance(args[2], list):
            # a module compiled or copied into the job dir would run outside every check
            for entry in args[2]:
                if isinstance(entry, (str, bytes)) and inside(resolve(entry or "."), (write_root,)):
                    refuse(f"importing from the job directory ({entry!r} on sys.path)")
        elif event in ("os.kill", "os.killpg"):
            if event == "os.killpg" or args[0] != own_pid:
                refuse(f"{event} {args[0]}")
        elif event == "resource.prlimit":
            if len(args) > 2 and args[2] is not None:
                refuse(event)
        elif event in ("os.chmod", "os.chown") and args and isinstance(args[0], int):
            # a descriptor opened for reading anywhere (the Python installation) is not a
            # licence to change its file's mode or owner
            refuse(f"{event} on a file descriptor")
        elif event in _WRITE_EVENTS:
            path_idxs, dir_fd_idxs = _WRITE_EVENTS[event]
            for i in dir_fd_idxs:
                if i < len(args) and isinstance(args[i], int) and args[i] >= 0:
                    refuse(f"{event} relative to a directory descriptor")
            for i in path_idxs:
                if i < len(args):
                    check_path(event, args[i], True)
        elif event in _READ_EVENTS:
            for i in _READ_EVENTS[event]:
                if i < len(args):
                    check_path(event, args[i] if args[i] is not None else ".", False)

    sys.addaudithook(hook)
    return lambda: list(violations)
