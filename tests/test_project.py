"""The project's own promises: README commands, CI and help stay in step with the code."""

import re
import subprocess
import sys

from conftest import ROOT


def readme_quickstart():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_has_exactly_two_commands_and_ci_runs_the_test_one():
    install_and_run, install_and_test = readme_quickstart()
    assert install_and_run.rstrip().endswith("vlrl train")
    assert install_and_test.rstrip().endswith("pytest")
    assert install_and_test in (ROOT / ".ci" / "run").read_text()


def test_every_command_has_help_without_importing_torch():
    code = (
        "import sys; from vlrl.cli import main, COMMANDS\n"
        "for name in COMMANDS: main(name.split() + ['--help'])\n"
        "assert 'torch' not in sys.modules, 'vlrl --help imported torch'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("usage: vlrl") == len(__import__("vlrl.cli").cli.COMMANDS)
