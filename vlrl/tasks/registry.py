"""Training tasks by name: how the engine finds a task without importing one.

A task is a `TaskSpec`: its name (`task=NAME`), the class the trainer builds for it (as
"module:attribute", imported only when that task runs), and optionally the config section
it owns (`spy.*` for the spy game), which then takes `NAME.key=value` options, presets and
`--help` lines like the engine's own sections.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

ENTRY_POINT_GROUP = "vlrl.tasks"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    build: str | Callable[[Any], Any]  # "module:Class" or a callable; called with the Config
    help: str = ""
    section: str | None = None  # the config section this task owns, e.g. "spy"
    settings: type | None = None  # its dataclass (options declared with vlrl.options.option)

    def builder(self) -> Callable[[Any], Any]:
        if callable(self.build):
            return self.build
        module, _, attribute = self.build.partition(":")
        return getattr(importlib.import_module(module), attribute)


_TASKS: dict[str, TaskSpec] = {}
_discovered = False


def register_task(spec: TaskSpec) -> TaskSpec:
    """Make a task available as task=NAME (registering the same spec again is harmless)."""
    known = _TASKS.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"task '{spec.name}' is registered twice, differently")
    if spec.section is not None:
        if spec.settings is None:
            raise ValueError(f"task '{spec.name}' names the section '{spec.section}' but gives no settings class")
        owner = next((t.name for t in _TASKS.values() if t.section == spec.section and t.name != spec.name), None)
        if owner is not None:
            raise ValueError(f"config section '{spec.section}' belongs to task '{owner}' already")
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
    """Config section name -> settings class, for every registered task that owns one."""
    return {t.section: t.settings for t in tasks().values() if t.section is not None}


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
