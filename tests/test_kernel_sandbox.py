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
        for attempt in (lambda: open("/etc/passwd").read(),
                        lambda: outside.write_text("escape"),
                        lambda: os.open(str(tmp_path), os.O_RDONLY)):
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
        for attempt in (os.fork, lambda: socket.socket(), lambda: os.kill(parent, 0),
                        lambda: os.execv("/bin/true", ["true"])):
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
