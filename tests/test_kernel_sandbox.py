"""The kernel layers on their own, without the audit hook: each must hold by itself."""

import os
import socket
import sys

import pytest

from renderers.sandbox import KERNEL, default_read_roots, seccomp_program


def run_in_child(body) -> int:
    """Fork, run body() in the child, return its exit status (0 = every check held)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        except BaseException:  # noqa: BLE001
            code = 99
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


@pytest.mark.skipif(KERNEL.landlock_abi <= 0, reason="no Landlock in this kernel")
def test_landlock_confines_files_to_the_allowlist(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    outside = tmp_path / "outside.txt"

    def body():
        if not KERNEL.install_landlock(default_read_roots(), [str(job)]):
            return 2
        (job / "ok.txt").write_text("inside is writable")
        for attempt in (
            lambda: open("/etc/passwd").read(),
            lambda: outside.write_text("escape"),
            lambda: os.open(str(tmp_path), os.O_RDONLY),
        ):
            try:
                attempt()
                return 3
            except PermissionError:
                pass
        import matplotlib  # reading the Python installation still works

        open(os.path.join(matplotlib.get_data_path(), "matplotlibrc")).read()
        return 0

    assert run_in_child(body) == 0
    assert not outside.exists() and (job / "ok.txt").exists()


@pytest.mark.skipif(not KERNEL.seccomp_supported, reason="no seccomp filter for this platform")
def test_seccomp_refuses_processes_sockets_and_signals():
    parent = os.getpid()

    def body():
        if not KERNEL.install_seccomp(os.getpid()):
            return 2
        for attempt in (
            os.fork,
            lambda: socket.socket(),
            lambda: os.kill(parent, 0),
            lambda: os.execv("/bin/true", ["true"]),
        ):
            try:
                attempt()
                return 3
            except PermissionError:
                pass
        import threading  # threads are still allowed

        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        os.kill(os.getpid(), 0)  # signalling itself is fine
        return 0

    assert run_in_child(body) == 0


def test_seccomp_program_jumps_stay_in_bounds():
    for arch in ("x86_64", "aarch64"):
        prog = seccomp_program(arch, 12345)
        assert prog[-1] == (0x06, 0, 0, 0x7FFF0000)  # ends by allowing
        for i, (code, jt, jf, _) in enumerate(prog):
            if code & 0x07 == 0x05:  # a jump
                assert i + 1 + max(jt, jf) < len(prog)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux only")
def test_job_dies_with_its_parent():
    r, w = os.pipe()

    def body():
        pid = os.fork()  # the "server"
        if pid == 0:
            grandchild = os.fork()  # the "job"
            if grandchild == 0:
                KERNEL.die_with_parent()
                os.write(w, str(os.getpid()).encode().ljust(16))
                import time

                time.sleep(30)
                os._exit(0)
            import time

            time.sleep(0.5)
            os._exit(0)  # the server dies
        os.waitpid(pid, 0)
        return 0

    assert run_in_child(body) == 0
    job_pid = int(os.read(r, 16))
    import time

    import psutil

    for _ in range(50):
        try:
            if psutil.Process(job_pid).status() == psutil.STATUS_ZOMBIE:
                break  # dead, waiting for whoever adopted it to reap it
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        os.kill(job_pid, 9)
        pytest.fail("the job outlived its server")


_X86_64 = {
    "shmget": 29,
    "msgget": 68,
    "semget": 64,
    "fanotify_init": 300,
    "inotify_init1": 294,
    "fsopen": 430,
    "open_tree": 428,
    "perf_event_open": 298,
    "userfaultfd": 323,
    "keyctl": 250,
    "sched_setattr": 314,
    "ioprio_set": 251,
    "mount_setattr": 442,
}


@pytest.mark.skipif(
    not KERNEL.seccomp_supported or os.uname().machine != "x86_64", reason="raw syscall numbers are x86_64's"
)
def test_seccomp_refuses_the_rest_of_the_kernel_surface():
    """System V IPC, memfd, watchers, scheduling, sessions, prctl, the new mount API ...:
    each refused by the filter alone (raw syscalls, no audit hook in this process)."""
    parent = os.getppid()

    def body():
        import ctypes

        if not KERNEL.install_seccomp(os.getpid()):
            return 2
        for attempt in (
            lambda: os.setpgid(0, 0),
            os.setsid,
            lambda: os.setpriority(os.PRIO_PROCESS, 0, 5),
            lambda: os.setpriority(os.PRIO_PROCESS, parent, 19),
            lambda: os.sched_setaffinity(0, {0}),
            lambda: os.sched_setaffinity(parent, {0}),
            lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1)),
            lambda: os.sched_setparam(0, os.sched_param(0)),
            lambda: os.memfd_create("x"),
            lambda: os.setuid(0),
            lambda: os.chown("/tmp", 0, 0),
        ):
            try:
                attempt()
                return 3
            except PermissionError:
                pass
        for name, nr in _X86_64.items():
            ctypes.set_errno(0)
            if KERNEL.syscall(nr, 0, 0, 0, 0, 0) != -1 or ctypes.get_errno() != 1:  # EPERM
                return 10 + nr % 50
        if KERNEL.prctl(1, 0, 0, 0, 0) != -1:  # PR_SET_PDEATHSIG: refused
            return 4
        if KERNEL.prctl(15, b"renamed", 0, 0, 0) != 0:  # PR_SET_NAME: still allowed
            return 5
        return 0

    assert run_in_child(body) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and capabilities need root here")
def test_namespaces_tmpfs_quota_and_no_capabilities(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    r, w = os.pipe()

    def body():
        applied = KERNEL.enter_namespaces(str(job), 1 << 20, 0)
        if "tmpfs" not in applied:
            return 2
        os.write(w, (" ".join(applied)).encode().ljust(64))
        (job / "small").write_bytes(b"x" * 1000)
        try:
            (job / "big").write_bytes(b"x" * (2 << 20))  # over the 1 MiB quota
            return 3
        except OSError:
            pass
        if not KERNEL.drop_privileges(0).endswith("no capabilities"):
            return 4
        with open("/proc/self/status") as f:
            caps = {line.split(":")[0]: int(line.split()[1], 16) for line in f if line.startswith("Cap")}
        if caps["CapEff"] or caps["CapPrm"] or caps["CapBnd"]:
            return 5
        return 0

    status = run_in_child(body)
    applied = os.read(r, 64).decode().split()
    if status == 2:
        pytest.skip("this kernel refuses private mount namespaces")
    assert status == 0, status
    assert {"mount", "ipc", "net", "tmpfs"} <= set(applied)
    # the job's tmpfs lived in its own mount namespace: the host never saw its files
    assert list(job.iterdir()) == []
    with open("/proc/self/mounts") as f:
        assert str(job) not in f.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and uids need root here")
def test_a_private_home_is_covered_and_only_the_installation_bound_back():
    """Jobs run as uid 65534 even when Python lives under a 0700 home: the job's mount
    namespace hides the home behind an empty tmpfs and binds back the paths it must read."""
    import shutil
    import tempfile
    from pathlib import Path

    from renderers.sandbox import hidden_from

    tmp_path = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own tmp is under a 0700 dir
    try:
        _check_private_home(tmp_path, hidden_from)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _check_private_home(tmp_path, hidden_from):
    home = tmp_path / "home"
    (home / "python" / "lib").mkdir(parents=True)
    (home / "python" / "lib" / "module.py").write_text("X = 1\n")
    (home / "secret.txt").write_text("s3cr3t")
    (home / "secret.txt").chmod(0o644)
    for d in (home / "python", home / "python" / "lib"):
        d.chmod(0o755)
    home.chmod(0o700)
    tmp_path.chmod(0o755)
    job = tmp_path / "job"
    job.mkdir()
    hidden = hidden_from(65534, [str(home / "python")])
    assert hidden == {str(home): [str(home / "python")]}

    def body():
        applied = KERNEL.enter_namespaces(str(job), 1 << 20, 65534, hidden)
        if "revealed" not in applied:
            return 2
        os.chdir(str(job))
        KERNEL.drop_privileges(65534)
        if os.getuid() != 65534:
            return 3
        if open(home / "python" / "lib" / "module.py").read() != "X = 1\n":
            return 4
        if (home / "secret.txt").exists() or os.listdir(home) != ["python"]:
            return 5
        (job / "out.txt").write_text("the job dir is the job's")
        return 0

    status = run_in_child(body)
    if status == 2:
        pytest.skip("this kernel refuses private mount namespaces")
    assert status == 0, status
    assert (home / "secret.txt").read_text() == "s3cr3t"
