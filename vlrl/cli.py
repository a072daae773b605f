"""The `vlrl` command line: `vlrl COMMAND [key=value ...]`, `vlrl COMMAND --help`."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable

from vlrl.options import UserError, describe_options, parse_options


@dataclass
class Command:
    name: str
    summary: str
    usage: str
    options: Callable[[], type] | None  # imported lazily: `vlrl --help` must not import torch
    run: Callable[[object], int]
    positional: str | None = None
    dotted: str | None = None  # the list option that takes `section.key=value` tokens
    run_config: bool = False  # takes the typed run config (presets + dotted overrides)
    interrupted: str = "written results are kept and the run resumes"  # what Ctrl-C leaves behind


def _render_options():
    from vlrl.render_files import RenderOptions

    return RenderOptions


def _render_run(opts):
    from vlrl.render_files import run

    return run(opts)


def _synth_options():
    from vlrl.datasets.corpus import SynthOptions

    return SynthOptions


def _synth_run(opts):
    from vlrl.datasets.corpus import run

    return run(opts)


def _pairs_options():
    from games.pairs import PairsOptions

    return PairsOptions


def _pairs_run(opts):
    from games.pairs import run

    return run(opts)


def _eval_options():
    from vlrl.evaluation.chart_eval import EvalOptions

    return EvalOptions


def _eval_run(opts):
    from vlrl.evaluation.chart_eval import run

    return run(opts)


def _train_run(cfg):
    from vlrl.trainer import train

    final = train(cfg)
    print(
        f"stage {cfg.stage} done: "
        + (f"weights in {final}" if cfg.trainer.save_final else "no weights written (trainer.save_final=false)")
    )
    return 0


def _sft_run(cfg):
    from vlrl.sft import sft

    final = sft(cfg)
    print(f"SFT done: weights in {final} (vlrl train stage=1 out={cfg.out} starts from them)")
    return 0


def _plot_options():
    from dataclasses import dataclass

    from vlrl.options import option

    @dataclass(kw_only=True)
    class PlotOptions:
        run_dir: list[str] = option([], help="a run's stage folder (holding metrics.jsonl), or the run folder")
        out: str = option("", help="where the PNGs go (default: the stage folder itself)")

    return PlotOptions


def _plot_run(opts):
    from pathlib import Path

    from vlrl.metrics_log import plot_metrics
    from vlrl.options import UserError

    if len(opts.run_dir) != 1:
        raise UserError("give one run directory: vlrl plot RUN_DIR")
    root = Path(opts.run_dir[0])
    found = [root / "metrics.jsonl"] if (root / "metrics.jsonl").exists() else sorted(root.glob("*/metrics.jsonl"))
    if not found:
        raise UserError(f"no metrics.jsonl in {root} or its stage folders")
    for metrics in found:
        out = Path(opts.out) / metrics.parent.name if opts.out and len(found) > 1 else Path(opts.out or metrics.parent)
        out.mkdir(parents=True, exist_ok=True)
        notes: list[str] = []
        paths = plot_metrics(metrics, out, notes=notes)
        print(f"{metrics.parent}: " + ", ".join(p.name for p in paths) + f" -> {out}")
        for note in notes:
            print(f"  {note}")
    return 0


COMMANDS = {
    "sft": Command(
        "sft",
        "supervised fine-tuning on chart/code pairs: the warm start RL begins from (sft.* options)",
        "vlrl sft [model=tiny-learn|tiny|PATH] [data.train=DIR] [out=DIR] [section.key=value ...]",
        None,
        _sft_run,
        run_config=True,
    ),
    "train": Command(
        "train",
        "GRPO-family RL with DeepSpeed: chart-to-code (stage=1, then stage=2 from stage 1's weights) or the spy game (task=spy)",
        "vlrl train [task=chart2code|spy] stage=1|2 [model=tiny-learn|tiny|PATH] [deepspeed=zero2|zero3] [--profile] [section.key=value ...]",
        None,
        _train_run,
        run_config=True,
    ),
    "plot": Command(
        "plot",
        "PNG curves of a run: rewards (total and per component), KL, entropy, lengths, throughput, time split",
        "vlrl plot RUN_DIR [out=DIR]",
        _plot_options,
        _plot_run,
        positional="run_dir",
    ),
    "render": Command(
        "render",
        "render chart scripts in the sandboxed pool: PNG, trace and results.jsonl per script",
        "vlrl render PATH... out=DIR [key=value ...]",
        _render_options,
        _render_run,
        positional="paths",
    ),
    "data synth": Command(
        "data synth",
        "generate and render a deterministic synthetic chart corpus (images + code + index.jsonl)",
        "vlrl data synth n=N out=DIR seed=S [key=value ...]",
        _synth_options,
        _synth_run,
    ),
    "data pairs": Command(
        "data pairs",
        "write Who-is-the-Spy image pairs (<base>_original.png, <base>_modified.png, <base>.json): scenes or charts",
        "vlrl data pairs kind=scenes|charts n=N out=DIR seed=S [key=value ...]",
        _pairs_options,
        _pairs_run,
    ),
    "demo": Command(
        "demo",
        "a Gradio app: chart to code (generate, render, score), a spy game, a run's curves and samples",
        "vlrl demo [model=tiny|PATH] [host=127.0.0.1] [port=7860] [key=value ...]",
        lambda: __import__("app.demo", fromlist=["DemoOptions"]).DemoOptions,
        lambda opts: __import__("app.demo", fromlist=["run"]).run(opts),
        interrupted="stopped serving",
    ),
    "eval": Command(
        "eval",
        "chart-to-code evaluation with ChartMimic's metrics (chartmimic | reachqa | jsonl): generate with a model, or score predictions",
        "vlrl eval benchmark=chartmimic data_dir=DIR (model=PATH|tiny | predictions=FILE) out=DIR "
        "[shard=I num_shards=K] [judge_model=PATH] [rollout.key=value model.key=value ...]",
        _eval_options,
        _eval_run,
        dotted="overrides",
    ),
    "selfplay": Command(
        "selfplay",
        "play Who-is-the-Spy games with a model and keep every turn, vote and reward as JSONL (sharded, resumable)",
        "vlrl selfplay model=tiny|PATH pairs=DIR games=N out=DIR [shard=I num_shards=K] [seed=S] [game settings ...]",
        lambda: __import__("games.selfplay", fromlist=["SelfPlayOptions"]).SelfPlayOptions,
        lambda opts: __import__("games.selfplay", fromlist=["run"]).run(opts),
    ),
}


def _overview() -> str:
    lines = ["usage: vlrl COMMAND [key=value ...]   (vlrl COMMAND --help for its options)", "", "commands:"]
    for cmd in COMMANDS.values():
        lines.append(f"  {cmd.name:<12} {cmd.summary}")
    return "\n".join(lines)


def _command_help(cmd: Command) -> str:
    if cmd.run_config:
        from vlrl.config import describe_config

        return f"usage: {cmd.usage}\n\n{cmd.summary}\n\noptions:\n{describe_config()}"
    return f"usage: {cmd.usage}\n\n{cmd.summary}\n\noptions:\n{describe_options(cmd.options())}"


def _emit(text: str) -> None:
    """Print help; a reader that closes the pipe early (`vlrl --help | head`) is not an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python's documented recipe: point stdout at devnull so the exit-time flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # offline first: nothing downloads weights
    if not argv or argv[0] in ("-h", "--help", "help"):
        _emit(_overview())
        return 0
    name = argv[0]
    rest = argv[1:]
    if name == "data":
        if not rest or rest[0] in ("-h", "--help"):
            subcommands = [c for c in COMMANDS.values() if c.name.startswith("data ")]
            _emit(
                "usage: vlrl data SUBCOMMAND [key=value ...]   (vlrl data SUBCOMMAND --help for its options)\n\n"
                "subcommands:\n" + "\n".join(f"  {c.usage}\n      {c.summary}" for c in subcommands)
            )
            return 0 if rest else 2
        name, rest = f"data {rest[0]}", rest[1:]
    cmd = COMMANDS.get(name)
    if cmd is None:
        import difflib

        close = difflib.get_close_matches(name, list(COMMANDS), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        print(f"vlrl: unknown command '{name}'{hint}\n\n{_overview()}", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in rest):
        _emit(_command_help(cmd))
        return 0
    try:
        if cmd.run_config:
            from vlrl.config import load_config

            # --profile is the one flag: short for trainer.profile=true
            opts = load_config(["trainer.profile=true" if a == "--profile" else a for a in rest])
        else:
            opts = parse_options(cmd.options(), rest, positional=cmd.positional, dotted=cmd.dotted)
        return int(cmd.run(opts) or 0)
    except UserError as exc:
        print(f"vlrl {cmd.name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vlrl {cmd.name}: interrupted; {cmd.interrupted}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
