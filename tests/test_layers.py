"""The layering contract (docs/architecture.md), checked on the source like import-linter:
renderers <- rewards <- vlrl <- games <- app, one way, the CLI the only module that wires
across; no import cycles; the engine imports no task; a new task is one module."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("renderers", "rewards", "vlrl", "games", "app")  # each may import only those before it
WIRING = {"vlrl.cli"}  # builds every command: may import any layer
# The engine: trains any task it is handed and names none.
ENGINE = (
    "vlrl.trainer",
    "vlrl.sft",
    "vlrl.policy",
    "vlrl.optimizer_step",
    "vlrl.step_metrics",
    "vlrl.checkpoints",
    "vlrl.data_order",
    "vlrl.algo",
    "vlrl.rollout",
    "vlrl.models",
    "vlrl.distributed",
    "vlrl.metrics_log",
    "vlrl.config",
    "vlrl.options",
    "vlrl.profiling",
    "vlrl.sequences",
    "vlrl.jsonl",
    "vlrl.tasks.base",
    "vlrl.tasks.registry",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports() -> dict[str, set[str]]:
    """module -> the project modules it imports, anywhere in its body (function-level too);
    `from pkg import sub` counts as importing pkg.sub, as import-linter counts it."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in modules:
                return ".".join(parts[:i])
        return None

    graph = {}
    for module, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            targets |= {t for t in map(resolve, names) if t and t != module}
        graph[module] = targets
    return graph


GRAPH = _imports()


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_layers_import_one_way():
    upward = sorted(
        f"{m} -> {t}" for m, targets in GRAPH.items() if m not in WIRING for t in targets if _layer(t) > _layer(m)
    )
    assert not upward, upward


def test_no_import_cycles():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not cycles, cycles


def test_the_engine_imports_no_task():
    def engine(m: str) -> bool:
        return any(m == e or m.startswith(e + ".") for e in ENGINE)

    leaks = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if engine(m)
        for t in targets
        if not engine(t) and t != "vlrl.tasks" and t != "vlrl"
    )
    assert not leaks, leaks


def test_no_source_file_is_over_800_lines():
    long = sorted(
        f"{p.relative_to(ROOT)}: {n}"
        for p in _modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    )
    assert not long, long


def test_a_third_task_is_one_module(tmp_path, monkeypatch):
    from vlrl.config import all_keys, load_config, to_dict
    from vlrl.options import OptionError
    from vlrl.tasks import registry
    from vlrl.trainer import train

    monkeypatch.setattr(registry, "_TASKS", dict(registry.tasks()))  # leave the registry as it was
    monkeypatch.delitem(sys.modules, "vlrl_task_plugin_count_task", raising=False)
    with pytest.raises(OptionError, match="unknown task 'count'"):
        load_config(["task=count"])
    plugin = str(ROOT / "tests" / "plugins" / "count_task.py")
    cfg = load_config(
        [
            "task=count",
            f"task_plugins={plugin}",
            "count.target=3",
            "model=tiny",
            f"out={tmp_path}",
            "rollout.n=2",
            "rollout.max_new_tokens=8",
            "trainer.steps=2",
            "trainer.save_every=0",
        ]
    )
    assert cfg.count.target == 3 and "count.target" in all_keys() and to_dict(cfg)["count"]["target"] == 3
    assert cfg.count.prompts == 3  # the task's own preset for the tiny model
    train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "stage1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(r["reward/mean"] <= 0 for r in rows)


def test_a_third_task_brings_its_presets_checks_and_sft_data(tmp_path, monkeypatch):
    """What a task owns reaches every command without an engine change: its presets apply
    with task=NAME, its options are checked with the whole config, `vlrl sft` trains on the
    pairs it gives, and a task with no SFT data is told so in one line."""
    import subprocess

    from vlrl.config import load_config
    from vlrl.options import OptionError
    from vlrl.sft import sft
    from vlrl.tasks import registry

    monkeypatch.setattr(registry, "_TASKS", dict(registry.tasks()))
    monkeypatch.delitem(sys.modules, "vlrl_task_plugin_count_task", raising=False)  # registers afresh
    plugin = str(ROOT / "tests" / "plugins" / "count_task.py")
    base = ["task=count", f"task_plugins={plugin}"]
    assert load_config(base).rollout.top_p == 0.9  # plugins/count_presets/count.yaml
    assert load_config([*base, "model=/some/checkpoint"]).count.prompts == 2  # tiny.yaml is for model=tiny only
    with pytest.raises(OptionError, match=r"count.target=0: must be at least 1"):
        load_config([*base, "count.target=0"])
    with pytest.raises(OptionError, match=r"count.target=101: at most 100"):
        load_config([*base, "count.target=101"])
    with pytest.raises(OptionError, match=r"stage=2: the count curriculum has stages 1"):
        load_config([*base, "stage=2"])

    cfg = load_config([*base, "count.target=3", f"out={tmp_path}", "sft.epochs=1", "sft.batch_size=2"])
    final = sft(cfg)
    assert (final / "config.json").exists()
    rows = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(r["tokens"] > 0 and r["loss"] > 0 for r in rows)

    done = subprocess.run(
        [sys.executable, "-m", "vlrl.cli", "sft", "task=spy", f"out={tmp_path / 'spy'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2 and "task 'spy' has no supervised data" in done.stderr
    assert "Traceback" not in done.stderr
