"""Training tasks by name: how the engine finds a task without importing one.

A task is a `TaskSpec`: its name (`task=NAME`), the class the trainer builds for it (as
"module:attribute", imported only when that task runs), and optionally the config sections
it owns (`spy.*` for the spy game, `reward.*` and `render.*` for chart-to-code), which take
`NAME.key=value` options and `--help` lines like the engine's own sections, its presets,
and where `vlrl sft` finds its supervised data.

Tasks are found three ways, none of which makes the engine import a task module:
- installed packages declare them as entry points of the group "vlrl.tasks" (this package
  declares chart2code and spy in pyproject.toml), loaded on first use;
- `task_plugins=[module or path.py]` imports user modules that call `register_task`;
- code may call `register_task` itself before building a Config.
Adding a task is one module (see docs/architecture.md).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

ENTRY_POINT_GROUP = "vlrl.tasks"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    build: str | Callable[[Any], Any]  # "module:Class" or a callable; called with the Config
    help: str = ""
    # the config sections this task owns, name -> settings dataclass (options declared with
    # vlrl.options.option), e.g. {"spy": SpySettings}; they take NAME.key=value like the engine's
    sections: Mapping[str, type] = field(default_factory=dict)
    # the folder of the task's presets, as "package:folder" (found without importing the
    # package) or a Path: <task>.yaml (applied with task=NAME), stage<N>.yaml (stage=N) and
    # <model preset>.yaml (model=tiny ...)
    presets: str | Path | None = None
    # "module:function" giving (cfg) -> SFTData: the supervised pairs `vlrl sft` trains on
    sft: str | Callable[[Any], Any] | None = None
    # the model a run without model= uses: a built-in tiny one, whose presets (the engine's,
    # then the task's own <model>.yaml) make the bare command a quick end-to-end run
    default_model: str = "tiny"

    def builder(self) -> Callable[[Any], Any]:
        return _resolve(self.build)

    def sft_builder(self) -> Callable[[Any], Any]:
        if self.sft is None:
            raise KeyError(f"task '{self.name}' has no supervised data for `vlrl sft`")
        return _resolve(self.sft)

    def preset(self, name: str) -> Path | None:
        """The task's preset file `name`.yaml, or None when it has none."""
        if self.presets is None:
            return None
        if isinstance(self.presets, Path):
            folder = self.presets
        else:
            package, _, sub = self.presets.partition(":")
            found = importlib.util.find_spec(package)
            if found is None or not found.submodule_search_locations:
                return None
            folder = Path(list(found.submodule_search_locations)[0]) / sub
        path = folder / f"{name}.yaml"
        return path if path.exists() else None

    def stages(self) -> list[int]:
        """The curriculum stages the task has presets for."""
        return [n for n in range(1, 10) if self.preset(f"stage{n}") is not None]


def _resolve(target: str | Callable[[Any], Any]) -> Callable[[Any], Any]:
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


_TASKS: dict[str, TaskSpec] = {}
_discovered = False


def register_task(spec: TaskSpec) -> TaskSpec:
    """Make a task available as task=NAME (registering the same spec again is harmless)."""
    known = _TASKS.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"task '{spec.name}' is registered twice, differently")
    for section in spec.sections:
        owner = next((t.name for t in _TASKS.values() if section in t.sections and t.name != spec.name), None)
        if owner is not None:
            raise ValueError(f"config section '{section}' belongs to task '{owner}' already")
    _TASKS[spec.name] = spec
    return spec


def discover() -> None:
    """Register the tasks installed packages declare (once per process)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        spec = entry.load()
        if isinstance(spec, TaskSpec):
            register_task(spec)


def tasks() -> dict[str, TaskSpec]:
    discover()
    return dict(_TASKS)


def get_task(name: str) -> TaskSpec:
    known = tasks()
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else f"; known: {', '.join(sorted(known))}"
        raise KeyError(f"unknown task '{name}'{hint} (a plugin task registers through task_plugins=...)")
    return known[name]


def sections() -> dict[str, type]:
    """Config section name -> settings class, for every section a registered task owns."""
    return {name: settings for t in tasks().values() for name, settings in t.sections.items()}


def load_task_plugins(modules: Sequence[str]) -> None:
    """Import user modules that register tasks: a module name, or a path to a .py file."""
    for module in modules:
        if module.endswith(".py"):
            path = Path(module)
            if not path.exists():
                raise FileNotFoundError(f"task plugin {module} does not exist")
            name = f"vlrl_task_plugin_{path.resolve().stem}"
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[name] = loaded
            spec.loader.exec_module(loaded)
        else:
            importlib.import_module(module)
