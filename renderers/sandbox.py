"""Confinement for a child about to run untrusted chart code.

Three layers, each covering what the others cannot:
- resource limits (CPU seconds, address space, file size, open files, no core dumps);
- a seccomp filter (Linux x86_64/aarch64) refusing process creation, sockets, signals to
  other processes, rlimit changes and a few kernel-escape syscalls, so even code that
  reaches raw syscalls cannot fork, connect or kill;
- a Python audit hook (renderers.audit) refusing, at the language level, process
  creation, sockets, dynamic library loading, writes outside the job's directory and
  reads outside an allowlist.
"""

from __future__ import annotations

import os
import platform
import resource
import sys

# --------------------------------------------------------------------------- rlimits


def address_space_bytes() -> int:
    """Current virtual size of this process (the child inherits the server's mappings)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def apply_rlimits(*, cpu_seconds: float, memory_bytes: int, file_bytes: int, open_files: int = 256) -> None:
    cpu = max(1, int(cpu_seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = min(open_files, hard) if hard != resource.RLIM_INFINITY else open_files
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


# --------------------------------------------------------------------------- seccomp

# Syscall numbers refused outright, per architecture.
_DENY = {
    "x86_64": {
        "fork": 57,
        "vfork": 58,
        "execve": 59,
        "execveat": 322,
        "socket": 41,
        "socketpair": 53,
        "connect": 42,
        "bind": 49,
        "listen": 50,
        "accept": 43,
        "accept4": 288,
        "tkill": 200,
        "setrlimit": 160,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "chroot": 161,
        "bpf": 321,
        "perf_event_open": 298,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "userfaultfd": 323,
        "open_by_handle_at": 304,
        "name_to_handle_at": 303,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "pidfd_getfd": 438,
        "mknod": 133,
        "mknodat": 259,
        "reboot": 169,
        "kexec_load": 246,
        "init_module": 175,
        "finit_module": 313,
        "delete_module": 176,
        "iopl": 172,
        "ioperm": 173,
        "swapon": 167,
        "swapoff": 168,
        "syslog": 103,
        "acct": 163,
        "settimeofday": 164,
        "clock_settime": 227,
        "sethostname": 170,
        "setdomainname": 171,
        "personality": 135,
        "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297,
        # System V IPC outlives the job and crosses jobs; nothing in a chart needs it
        "shmget": 29,
        "shmat": 30,
        "shmctl": 31,
        "shmdt": 67,
        "semget": 64,
        "semop": 65,
        "semctl": 66,
        "semtimedop": 220,
        "msgget": 68,
        "msgsnd": 69,
        "msgrcv": 70,
        "msgctl": 71,
        # memory outside the address-space limit; file-system watchers over the whole host
        "memfd_create": 319,
        "memfd_secret": 447,
        "fanotify_init": 300,
        "fanotify_mark": 301,
        "inotify_init": 253,
        "inotify_init1": 294,
        "inotify_add_watch": 254,
        # scheduling and priority of any process (the server's included)
        "sched_setparam": 142,
        "sched_setscheduler": 144,
        "sched_setaffinity": 203,
        "sched_setattr": 314,
        "setpriority": 141,
        "ioprio_set": 251,
        # leaving the process group or session the server kills by
        "setpgid": 109,
        "setsid": 112,
        # identity and capabilities stay as the sandbox left them
        "setuid": 105,
        "setgid": 106,
        "setreuid": 113,
        "setregid": 114,
        "setresuid": 117,
        "setresgid": 119,
        "setgroups": 116,
        "setfsuid": 122,
        "setfsgid": 123,
        "capset": 126,
        # the new mount API, more filters, other processes' memory and NUMA placement
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "statmount": 457,
        "listmount": 458,
        "seccomp": 317,
        "process_madvise": 440,
        "process_mrelease": 448,
        "kcmp": 312,
        "migrate_pages": 256,
        "move_pages": 279,
        "mbind": 237,
        "set_mempolicy": 238,
        "quotactl": 179,
        "lookup_dcookie": 212,
        "vhangup": 153,
        "chown": 92,
        "fchown": 93,
        "lchown": 94,
        "fchownat": 260,
    },
    "aarch64": {
        "execve": 221,
        "execveat": 281,
        "socket": 198,
        "socketpair": 199,
        "connect": 203,
        "bind": 200,
        "listen": 201,
        "accept": 202,
        "accept4": 242,
        "tkill": 130,
        "setrlimit": 164,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "chroot": 51,
        "bpf": 280,
        "perf_event_open": 241,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "userfaultfd": 282,
        "open_by_handle_at": 265,
        "name_to_handle_at": 264,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "pidfd_getfd": 438,
        "mknodat": 33,
        "reboot": 142,
        "kexec_load": 104,
        "init_module": 105,
        "finit_module": 273,
        "delete_module": 106,
        "swapon": 224,
        "swapoff": 225,
        "syslog": 116,
        "acct": 89,
        "settimeofday": 170,
        "clock_settime": 112,
        "sethostname": 161,
        "setdomainname": 162,
        "personality": 92,
        "rt_sigqueueinfo": 138,
        "rt_tgsigqueueinfo": 240,
        "shmget": 194,
        "shmctl": 195,
        "shmat": 196,
        "shmdt": 197,
        "semget": 190,
        "semctl": 191,
        "semtimedop": 192,
        "semop": 193,
        "msgget": 186,
        "msgctl": 187,
        "msgrcv": 188,
        "msgsnd": 189,
        "memfd_create": 279,
        "memfd_secret": 447,
        "fanotify_init": 262,
        "fanotify_mark": 263,
        "inotify_init1": 26,
        "inotify_add_watch": 27,
        "sched_setparam": 118,
        "sched_setscheduler": 119,
        "sched_setaffinity": 122,
        "sched_setattr": 274,
        "setpriority": 140,
        "ioprio_set": 30,
        "setpgid": 154,
        "setsid": 157,
        "setuid": 146,
        "setgid": 144,
        "setreuid": 145,
        "setregid": 143,
        "setresuid": 147,
        "setresgid": 149,
        "setgroups": 159,
        "setfsuid": 151,
        "setfsgid": 152,
        "capset": 91,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "statmount": 457,
        "listmount": 458,
        "seccomp": 277,
        "process_madvise": 440,
        "process_mrelease": 448,
        "kcmp": 272,
        "migrate_pages": 238,
        "move_pages": 239,
        "mbind": 235,
        "set_mempolicy": 237,
        "quotactl": 60,
        "vhangup": 58,
        "fchown": 55,
        "fchownat": 54,
    },
}
# Syscalls allowed only with particular arguments.
_SPECIAL = {
    "x86_64": {"clone": 56, "clone3": 435, "kill": 62, "tgkill": 234, "prlimit64": 302, "prctl": 157},
    "aarch64": {"clone": 220, "clone3": 435, "kill": 129, "tgkill": 131, "prlimit64": 261, "prctl": 167},
}
# prctl options a job may still use: naming threads and mappings (libc does), and reading
# its own state. Everything else, PR_SET_PDEATHSIG and PR_SET_DUMPABLE included, is refused.
_PRCTL_ALLOWED = (
    2,  # PR_GET_PDEATHSIG
    3,  # PR_GET_DUMPABLE
    15,  # PR_SET_NAME
    16,  # PR_GET_NAME
    21,  # PR_GET_SECCOMP
    23,  # PR_CAPBSET_READ
    30,  # PR_GET_TIMERSLACK
    39,  # PR_GET_NO_NEW_PRIVS
    42,  # PR_GET_THP_DISABLE
    0x53564D41,  # PR_SET_VMA (anonymous mapping names)
)
# landlock_create_ruleset, landlock_add_rule, landlock_restrict_self
_LANDLOCK_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_CLONE_THREAD = 0x00010000
_EPERM, _ENOSYS = 1, 38
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_LD_ABS_W, _JEQ_K, _JSET_K, _JGE_K, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x06
_OFF_NR, _OFF_ARCH = 0, 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i


def _arg_hi(i: int) -> int:
    return 16 + 8 * i + 4


def seccomp_program(arch: str, own_pid: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF instructions (code, jt, jf, k) for this architecture and process."""
    deny = (_RET_K, 0, 0, _RET_ERRNO | _EPERM)
    allow = (_RET_K, 0, 0, _RET_ALLOW)
    sp = _SPECIAL[arch]
    prog = [
        (_LD_ABS_W, 0, 0, _OFF_ARCH),
        (_JEQ_K, 1, 0, _AUDIT_ARCH[arch]),
        deny,  # another ABI (e.g. 32-bit syscalls) is refused wholesale
        (_LD_ABS_W, 0, 0, _OFF_NR),
    ]
    if arch == "x86_64":
        prog += [(_JGE_K, 0, 1, 0x40000000), deny]  # x32 ABI
    for nr in sorted(_DENY[arch].values()):
        prog += [(_JEQ_K, 0, 1, nr), deny]
    # clone3 hides its flags behind a pointer: report it missing so libc falls back to clone.
    prog += [(_JEQ_K, 0, 1, sp["clone3"]), (_RET_K, 0, 0, _RET_ERRNO | _ENOSYS)]
    # clone: threads (CLONE_THREAD) are fine, new processes are not.
    prog += [
        (_JEQ_K, 0, 4, sp["clone"]),
        (_LD_ABS_W, 0, 0, _arg_lo(0)),
        (_JSET_K, 1, 0, _CLONE_THREAD),
        deny,
        allow,
        (_LD_ABS_W, 0, 0, _OFF_NR),
    ]
    # kill / tgkill: only this process may be signalled (abort() must still work).
    for name in ("kill", "tgkill"):
        prog += [
            (_JEQ_K, 0, 6, sp[name]),
            (_LD_ABS_W, 0, 0, _arg_lo(0)),
            (_JEQ_K, 0, 2, own_pid),
            (_LD_ABS_W, 0, 0, _arg_hi(0)),
            (_JEQ_K, 1, 0, 0),
            deny,
            allow,
            (_LD_ABS_W, 0, 0, _OFF_NR),
        ]
    # prctl: only the options in _PRCTL_ALLOWED (the option is a 32-bit int).
    n = len(_PRCTL_ALLOWED)
    prog += [(_JEQ_K, 0, n + 3, sp["prctl"]), (_LD_ABS_W, 0, 0, _arg_lo(0))]
    prog += [(_JEQ_K, n - i, 0, option) for i, option in enumerate(_PRCTL_ALLOWED)]
    prog += [deny, allow, (_LD_ABS_W, 0, 0, _OFF_NR)]
    # prlimit64 reads limits for getrlimit(); setting one (new_limit != NULL) is refused.
    prog += [
        (_JEQ_K, 0, 5, sp["prlimit64"]),
        (_LD_ABS_W, 0, 0, _arg_lo(2)),
        (_JEQ_K, 0, 2, 0),
        (_LD_ABS_W, 0, 0, _arg_hi(2)),
        (_JEQ_K, 1, 0, 0),
        deny,
        allow,
    ]
    prog.append(allow)
    return prog


class _Kernel:
    """libc entry points, loaded once in the server so that children only make calls."""

    def __init__(self) -> None:
        self.arch = platform.machine()
        self.prctl = None
        self.syscall = None
        if sys.platform != "linux":
            return
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            self.prctl = libc.prctl
            self.syscall = libc.syscall
            self.syscall.restype = ctypes.c_long
            self.unshare = libc.unshare
            self.mount = libc.mount
            self.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
            self.ctypes = ctypes
        except (OSError, AttributeError):
            self.prctl = self.syscall = None
        self.landlock_abi = self._landlock_abi()

    # -- namespaces
    def enter_namespaces(
        self, job_dir: str, disk_bytes: int, uid: int, reveal: dict[str, list[str]] | None = None
    ) -> list[str]:
        """Private mount, IPC, network and UTS namespaces, and the job dir as a tmpfs of
        `disk_bytes` (noexec: no shared library can be loaded from what the job writes).

        `reveal` maps a directory another uid cannot traverse (a private home holding the
        Python installation) to the paths under it a job must read: in the job's mount
        namespace that directory is covered by an empty tmpfs and only those paths are bound
        back, so the job can run as an unprivileged uid and sees nothing else there.

        Returns the names of what took effect; an empty list where the kernel or our
        privileges do not allow it (then the job dir stays a plain directory).
        """
        if self.prctl is None or not hasattr(self, "unshare"):
            return []
        applied = []
        for flag, name in ((0x00020000, "mount"), (0x08000000, "ipc"), (0x40000000, "net"), (0x04000000, "uts")):
            if self.unshare(flag) == 0:
                applied.append(name)
        if "mount" in applied:
            ms_rec, ms_private, ms_nosuid, ms_nodev, ms_noexec = 0x4000, 0x40000, 2, 4, 8
            # Without this, our tmpfs would propagate back into the host's mount table.
            if self.mount(None, b"/", None, ms_rec | ms_private, None) != 0:
                applied.remove("mount")
            else:
                if reveal:
                    if self._reveal(reveal):
                        applied.append("revealed")
                    else:
                        uid = 0  # the job keeps uid 0 (see zygote._seal): its dir must be root's
                options = f"size={max(disk_bytes, 1 << 20)},nr_inodes=16384,mode=0700,uid={uid},gid={uid}"
                if (
                    self.mount(b"tmpfs", job_dir.encode(), b"tmpfs", ms_nosuid | ms_nodev | ms_noexec, options.encode())
                    == 0
                ):
                    applied.append("tmpfs")
        return applied

    def _reveal(self, reveal: dict[str, list[str]]) -> bool:
        ms_bind, ms_rec, ms_nosuid, ms_nodev = 0x1000, 0x4000, 2, 4
        for cover, paths in reveal.items():
            keep: list[tuple[str, int]] = []
            for path in sorted(paths):
                if any(path.startswith(k + "/") for k, _ in keep):
                    continue  # already visible through a path above it
                try:
                    keep.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC)))
                except OSError:
                    continue
            try:
                if self.mount(b"tmpfs", cover.encode(), b"tmpfs", ms_nosuid | ms_nodev, b"mode=0755,size=1m") != 0:
                    return False
                for path, fd in keep:
                    if os.path.isdir(f"/proc/self/fd/{fd}"):
                        os.makedirs(path, exist_ok=True)
                    else:
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        open(path, "a").close()
                    if self.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, ms_bind | ms_rec, None) != 0:
                        return False
            finally:
                for _, fd in keep:
                    os.close(fd)
        return True

    # -- privileges
    def drop_privileges(self, uid: int | None) -> str:
        """Give up every capability (bounding and ambient sets too) and, when `uid` is set,
        become that unprivileged user. Returns what the process now runs as."""
        if os.geteuid() != 0:
            return f"uid {os.geteuid()} (not root: nothing to drop)"
        if self.prctl is not None:
            for cap in range(64):
                self.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; EINVAL past the last cap
            self.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
        if uid:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # clears the permitted and effective sets
            return f"uid {uid}, no capabilities"
        if self.syscall is None:
            return "uid 0, capabilities kept (no libc)"
        ctypes = self.ctypes
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all zero
        capset = {"x86_64": 126, "aarch64": 91}.get(self.arch)
        if capset is None or self.syscall(capset, ctypes.byref(header), ctypes.byref(data)) != 0:
            return "uid 0, capabilities kept (capset failed)"
        return "uid 0, no capabilities"

    # -- parent death
    def die_with_parent(self) -> None:
        """SIGKILL this process when the server that forked it dies (no orphaned jobs)."""
        if self.prctl is not None:
            pr_set_pdeathsig = 1
            self.prctl(pr_set_pdeathsig, 9, 0, 0, 0)

    # -- seccomp
    @property
    def seccomp_supported(self) -> bool:
        return self.prctl is not None and self.arch in _DENY

    def install_seccomp(self, own_pid: int) -> bool:
        if not self.seccomp_supported:
            return False
        ctypes = self.ctypes

        class SockFilter(ctypes.Structure):
            _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

        program = seccomp_program(self.arch, own_pid)
        filters = (SockFilter * len(program))(*[SockFilter(*ins) for ins in program])
        fprog = SockFprog(len(program), filters)
        pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
        if self.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
            return False
        return self.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(fprog), 0, 0) == 0

    # -- landlock
    def _landlock_abi(self) -> int:
        if self.syscall is None or self.arch not in _LANDLOCK_SYSCALLS:
            return 0
        create = _LANDLOCK_SYSCALLS[self.arch][0]
        version = self.syscall(create, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
        return int(version) if version > 0 else 0

    def install_landlock(self, read_roots: list[str], write_roots: list[str]) -> bool:
        """Kernel-enforced file access: read-only under read_roots, anything under write_roots.

        Unlike the audit hook this cannot be switched off from Python, and it checks the
        file actually opened (no symlink races, no dir_fd tricks, no /proc/<pid>/mem).
        """
        abi = self.landlock_abi
        if abi <= 0:
            return False
        ctypes = self.ctypes
        create, add_rule, restrict = _LANDLOCK_SYSCALLS[self.arch]
        fs_all = (1 << 13) - 1  # EXECUTE .. MAKE_SYM (ABI 1)
        if abi >= 2:
            fs_all |= 1 << 13  # REFER
        if abi >= 3:
            fs_all |= 1 << 14  # TRUNCATE
        if abi >= 5:
            fs_all |= 1 << 15  # IOCTL_DEV
        read_dir = 1 | 4 | 8  # EXECUTE, READ_FILE, READ_DIR
        file_only = 1 | 2 | 4 | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)

        class RulesetAttr(ctypes.Structure):
            _fields_ = [
                ("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64),
            ]

        class PathBeneath(ctypes.Structure):
            _pack_ = 1
            _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

        attr = RulesetAttr(fs_all, 0, 0)
        size = 8
        if abi >= 4:
            attr.handled_access_net = 1 | 2  # BIND_TCP, CONNECT_TCP: no rule allows either
            size = 16
        if abi >= 6:
            attr.scoped = 1 | 2  # abstract unix sockets and signals stay inside the sandbox
            size = 24
        ruleset = self.syscall(create, ctypes.byref(attr), size, 0)
        if ruleset < 0:
            return False
        try:
            for roots, access in ((read_roots, read_dir), (write_roots, fs_all)):
                for root in roots:
                    try:
                        fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
                    except OSError:
                        continue  # a root that does not exist on this machine
                    try:
                        allowed = access if os.path.isdir(root) else access & file_only
                        rule = PathBeneath(allowed, fd)
                        if self.syscall(add_rule, int(ruleset), 1, ctypes.byref(rule), 0) != 0:
                            return False
                    finally:
                        os.close(fd)
            return self.syscall(restrict, int(ruleset), 0) == 0
        finally:
            os.close(ruleset)


KERNEL = _Kernel()


def hidden_from(uid: int, paths: list[str]) -> dict[str, list[str]] | None:
    """{the first directory `uid` cannot traverse: [the paths under it]}, for paths that are
    themselves readable by `uid` but sit under such a directory; None when some path is not
    readable by `uid` at all (then only uid 0 can run jobs)."""
    import stat

    def allows(path: str, other_bit: int, owner_bit: int) -> bool:
        st = os.stat(path)
        return bool(st.st_mode & other_bit or st.st_uid == uid and st.st_mode & owner_bit)

    hidden: dict[str, list[str]] = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        if not allows(path, stat.S_IROTH, stat.S_IRUSR):
            return None
        parts = os.path.realpath(path).split("/")
        for i in range(2, len(parts)):
            prefix = "/".join(parts[:i])
            if not allows(prefix, stat.S_IXOTH, stat.S_IXUSR):
                hidden.setdefault(prefix, []).append(path)
                break
    return hidden


def path_inside(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def default_read_roots() -> list[str]:
    """Where a chart script may read: the Python installation, its packages, fonts, data."""
    import site
    import sysconfig

    import matplotlib

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib", "data"):
        try:
            roots.add(sysconfig.get_paths()[key])
        except KeyError:
            pass
    try:
        roots.update(site.getsitepackages())
    except AttributeError:
        pass
    roots.add(matplotlib.get_data_path())
    roots.add(matplotlib.get_cachedir())
    for d in (
        "/usr/share/fonts",
        "/usr/local/share/fonts",
        "/usr/share/texmf/fonts",
        "/usr/share/zoneinfo",
        "/usr/share/matplotlib",
        "/etc/fonts",
    ):
        roots.add(d)
    roots.update({"/dev/null", "/dev/urandom", "/dev/zero"})
    # the CPU quota, which pandas' CSV reader asks for when it counts cores
    roots.update(
        {"/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"}
    )
    return sorted(os.path.realpath(r) for r in roots if r)


def child_environment(job_dir: str) -> dict[str, str]:
    """The whole environment a job sees: nothing inherited, so no secrets."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": job_dir,
        "TMPDIR": job_dir,
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
