"""The one typed config of a training run: YAML presets plus `key=value` dotted overrides.

    vlrl train stage=2 model.path=/ckpt/qwen2.5-vl-7b rollout.n=8

Resolution order: dataclass defaults -> the task's preset (`task=chart2code|spy`) -> the
task's stage preset (`stage=1|2`) -> model preset (`model=tiny`, then the task's own
settings for that model, or `model=PATH` meaning `model.path=PATH`; without model= the
task's default tiny model: `tiny-learn` for chart-to-code, `tiny` for the others) ->
DeepSpeed preset (`deepspeed=zero2|zero3`) -> a user file (`config=FILE.yaml`) -> dotted
overrides, left to right. Every key is checked: an unknown one is an error naming the
closest valid keys. The resolved config is saved in every run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vlrl.options import OptionError, UserError, _unwrap_optional, check_options, convert, option
from vlrl.tasks import registry

PRESET_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(kw_only=True)
class ModelConfig:
    path: str = option(
        "tiny",
        help="local HF model directory, or a built-in random tiny VLM with its preset: 'tiny' / 'tiny-qwen2_5_vl' (~0.5M parameters, for plumbing; the spy task's default) or 'tiny-learn' (~2M parameters, learns starter charts on a CPU; chart-to-code's default)",
    )
    dtype: Literal["auto", "float32", "bfloat16"] = option("auto", help="auto = bfloat16 on GPU, float32 on CPU")
    freeze_vision: bool = option(False, help="keep the vision tower fixed (train the language model only)")
    gradient_checkpointing: bool = option(False, help="trade compute for activation memory")
    min_pixels: int = option(3136, help="smallest image area after the processor's resize (pixels)")
    max_pixels: int = option(401408, help="largest image area after the processor's resize (pixels)")


@dataclass(kw_only=True)
class RolloutConfig:
    engine: Literal["hf", "vllm"] = option(
        "hf", help="hf = transformers generate (default); vllm = colocated vLLM (extra)"
    )
    n: int = option(8, minimum=1, help="completions per prompt, the GRPO group size (MSRL family: 8)")
    temperature: float = option(1.0, help="sampling temperature for training rollouts")
    top_p: float = option(1.0, help="nucleus sampling")
    max_new_tokens: int = option(1024, minimum=1, help="completion length limit (MSRL evaluates with 4096)")
    chunk_prompts: int = option(
        4, minimum=1, help="prompts per generate call; each chunk's completions render while the next generates"
    )
    overlap_scoring: bool = option(
        True,
        help="render and score each chunk while the next generates; false waits for all completions first (same results; on a few CPU cores, faster unless OMP_NUM_THREADS=1 leaves the pool a core)",
    )
    eval_temperature: float = option(0.1, help="sampling temperature for evaluation (MSRL: ~0.1)")
    vllm_gpu_memory_utilization: float = option(0.4, help="vLLM's share of GPU memory when colocated")
    vllm_sleep: bool = option(True, help="free vLLM's memory during the training step when supported")


@dataclass(kw_only=True)
class AlgoConfig:
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = option(
        "grpo", help="token aggregation (docs/reference.md §2.4): grpo, bnpo, dr_grpo (Dr. GRPO), dapo (DAPO)"
    )
    advantage: Literal["group", "batch", "none"] = option(
        "group", help="advantage scaling: group std (GRPO), batch std, or none (Dr. GRPO)"
    )
    beta: float = option(
        0.0, help="k3 KL weight to a frozen reference model; 0 loads no reference (MSRL family: 0 .. 1e-2)"
    )
    eps_low: float = option(
        0.2,
        help="PPO clip below 1 (binds only off-policy; with one optimizer step per batch, as now, the ratio stays 1)",
    )
    eps_high: float = option(0.2, help="PPO clip above 1 (DAPO clip-higher: 0.28; see eps_low)")
    dynamic_sampling: bool = option(False, help="DAPO: drop groups whose rewards are all equal and refill")
    max_refill_rounds: int = option(3, minimum=1, help="dynamic sampling: rollout rounds at most per step")
    filter_low: float = option(
        0.0,
        help="drop groups whose mean reward (the weighted composite, not an accuracy) is <= this (MSRL's accuracy band: 0.1); 0 disables",
    )
    filter_high: float = option(
        1.0, help="drop groups whose mean reward (the weighted composite) is >= this (MSRL's band: 0.9); 1 disables"
    )
    overlong: Literal["none", "filter", "soft"] = option(
        "none", help="truncated completions: keep, mask out (filter), or DAPO's soft penalty"
    )
    overlong_cache: int = option(256, help="length of DAPO's soft-penalty buffer (tokens)")


@dataclass(kw_only=True)
class DataConfig:
    train: str = option(
        "runs/corpus",
        help="training charts: a `vlrl data synth` folder, a JSONL/Parquet file of (image, code), or a ChartMimic-layout folder",
    )
    eval: str = option("", help="held-out charts in the same formats (empty: none)")
    eval_size: int = option(
        64, minimum=1, help="held-out charts each evaluation answers (the first ones, cut to a multiple of the ranks)"
    )
    prompts_per_step: int = option(8, minimum=1, help="prompts (groups) per optimizer step across all ranks")
    shuffle: bool = option(True, help="shuffle the training rows each epoch")


@dataclass(kw_only=True)
class TrainerConfig:
    steps: int = option(100, minimum=1, help="optimizer steps")
    lr: float = option(1e-6, help="peak learning rate (MSRL family: 1e-6 .. 5e-7)")
    lr_schedule: Literal["cosine", "constant"] = option("cosine", help="after warmup")
    warmup_ratio: float = option(0.1, help="fraction of steps with linear warmup")
    weight_decay: float = option(0.0, help="AdamW weight decay")
    grad_clip: float = option(1.0, help="gradient norm clipping (0 disables)")
    micro_batch_tokens: int = option(8192, minimum=1, help="token budget of a micro-batch (sequences sorted by length)")
    deepspeed: str = option("zero2", help="zero0 | zero1 | zero2 | zero3 | none | path to a DeepSpeed JSON")
    save_every: int = option(50, minimum=0, help="checkpoint every N steps (and at the end, with save_final)")
    save_final: bool = option(True, help="checkpoint the last step and write the final HF weights (false: benchmarks)")
    resume: Literal["auto", "never"] = option(
        "auto", help="auto: continue from the stage's latest checkpoint; never: start over"
    )
    keep_checkpoints: int = option(2, minimum=0, help="rolling checkpoints kept besides the final weights")
    log_every: int = option(1, minimum=1, help="log metrics every N steps (and the last); every step is still measured")
    eval_every: int = option(
        0,
        minimum=0,
        help="every N steps, answer data.eval_size held-out charts of data.eval at "
        "rollout.eval_temperature and log eval/* (chart-to-code; a ChartMimic or ReachQA folder also "
        "logs the benchmark's own eval/<benchmark>/low_level ...; 0: never)",
    )
    log_samples_every: int = option(0, minimum=0, help="HTML sample report every N steps (0: never)")
    tensorboard: bool = option(True, help="also write TensorBoard events (OUT/stageN/tensorboard)")
    profile: bool = option(
        False,
        help="print each step's time split per phase and the run's at the end (also `--profile`); synchronises the GPU at phase boundaries",
    )
    wandb: bool = option(
        False, help="also log to Weights & Biases (pip install 'vlrl[wandb]'; offline unless configured)"
    )


@dataclass(kw_only=True)
class SFTConfig:
    epochs: float = option(1.0, help="passes over data.train (fractions allowed)")
    batch_size: int = option(8, help="examples per optimizer step")
    lr: float = option(1e-5, help="peak learning rate of supervised fine-tuning")
    max_code_tokens: int = option(2048, help="longer answers are truncated (and counted)")
    warm_start: bool = option(
        False,
        help="vlrl train stage=1 with neither init_from nor OUT/sft/final: run `vlrl sft` with these settings "
        "first, and start from its weights (the default tiny-learn run does)",
    )


@dataclass(kw_only=True)
class Config:
    task: str = option(
        "chart2code",
        help="what the policy learns, a registered task: chart2code (MSRL), spy (Vision-Zero self-play), or one from task_plugins",
    )
    task_plugins: list[str] = option(
        [], help="modules (names or .py paths) imported first, so the tasks they register can be named by task="
    )
    stage: int = option(
        1,
        help="curriculum stage: 1 = text + exec rewards, 2 = adds the visual reward and starts from stage 1's weights",
    )
    out: str = option("", help="run directory, one subfolder per stage (default runs/<task>)")
    seed: int = option(0, help="global seed")
    init_from: str = option(
        "",
        help="weights to start from; empty: stage 1 takes OUT/sft/final when it exists, stage 2 takes OUT/stage1/final",
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    # The sections tasks own (reward.*, render.* for chart-to-code, spy.* for the spy game),
    # by name; cfg.<name> reads them.
    sections: dict[str, Any] = field(default_factory=dict, repr=False, metadata={"internal": True})

    def __post_init__(self) -> None:
        for name, settings in registry.sections().items():
            self.sections.setdefault(name, settings())

    def __getattr__(self, name: str) -> Any:
        # only reached for names that are not fields: a task's section
        sections = self.__dict__.get("sections")
        if sections is not None:
            if name not in sections and name in registry.sections():
                sections[name] = registry.sections()[name]()  # registered after this Config was made
            if name in sections:
                return sections[name]
        raise AttributeError(f"'Config' has no section or option '{name}'")


SELECTORS = {"task", "stage", "model", "deepspeed", "config"}


# --------------------------------------------------------------------------- key space


def _is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp)


def all_keys(cls: type = Config, prefix: str = "") -> dict[str, tuple[Any, dataclasses.Field]]:
    """dotted key -> (type, field) for every leaf option."""
    hints = typing.get_type_hints(cls)
    keys = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        tp = hints[f.name]
        if _is_section(tp):
            keys.update(all_keys(tp, prefix + f.name + "."))
        else:
            keys[prefix + f.name] = (tp, f)
    if cls is Config:  # the tasks' own sections, after the engine's
        for name, settings in registry.sections().items():
            keys.update(all_keys(settings, prefix + name + "."))
    return keys


def _unknown(key: str, where: str = "") -> OptionError:
    valid = list(dict.fromkeys([*all_keys(), *sorted(SELECTORS)]))
    leaf = key.rsplit(".", 1)[-1]
    # a right option in the wrong section (rollout.lr -> trainer.lr) is the likeliest slip,
    # then a typo of an option's own name (stpes -> trainer.steps), then of the whole key
    close = [k for k in valid if k.rsplit(".", 1)[-1] == leaf]
    leaves: dict[str, list[str]] = {}
    for k in valid:
        leaves.setdefault(k.rsplit(".", 1)[-1], []).append(k)
    for name in difflib.get_close_matches(leaf, list(leaves), n=3, cutoff=0.7):
        close += [k for k in leaves[name] if k not in close]
    close += [k for k in difflib.get_close_matches(key, valid, n=3, cutoff=0.6) if k not in close]
    close = close[:3]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return OptionError(f"unknown config key '{key}'{where}{hint}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """YAML values arrive typed; strings from the command line are converted."""
    base, optional = _unwrap_optional(tp)
    if value is None and optional:
        return None
    origin = typing.get_origin(base)
    if isinstance(value, str) and base is not str and origin is not dict:
        if origin is typing.Literal or base in (int, float, bool) or origin in (list, tuple):
            return convert(value, tp, key)
    if origin is dict:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise OptionError(f"{key}: not a mapping ({exc})") from None
        if not isinstance(value, dict):
            raise OptionError(f"{key}: expected a mapping like {{a: 1, b: 2}}, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in typing.get_args(base):
            raise OptionError(f"{key}={value}: expected one of {', '.join(map(str, typing.get_args(base)))}")
        return value
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base in (int, float, bool, str) and not isinstance(value, base):
        raise OptionError(f"{key}={value!r}: expected {base.__name__}")
    return value


def set_key(cfg: Config, key: str, value: Any, where: str = "") -> None:
    keys = all_keys()
    if key not in keys:
        raise _unknown(key, where)
    tp, _ = keys[key]
    *path, leaf = key.split(".")
    target = cfg
    for part in path:
        target = getattr(target, part)
    setattr(target, leaf, _coerce(value, tp, key))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML sections -> dotted keys; dict-valued options (reward.weights) stay whole."""
    keys = all_keys()
    flat: dict[str, Any] = {}
    for k, v in data.items():
        full = prefix + str(k)
        if isinstance(v, dict) and full not in keys:
            flat.update(_flatten(v, full + "."))
        else:
            flat[full] = v
    return flat


def apply_yaml(cfg: Config, path: Path) -> None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise OptionError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise OptionError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise OptionError(f"{path} must hold a mapping of config keys")
    for key, value in _flatten(data).items():
        set_key(cfg, key, value, where=f" in {path}")


def preset_path(name: str) -> Path:
    """One of the engine's presets (model and DeepSpeed); tasks keep theirs (TaskSpec.preset)."""
    return PRESET_DIR / f"{name}.yaml"


def available_presets() -> list[str]:
    names = {p.stem for p in PRESET_DIR.glob("*.yaml")}
    for spec in registry.tasks().values():
        names |= {name for name in [spec.name, *(f"stage{n}" for n in spec.stages())] if spec.preset(name)}
    return sorted(names)


def load_config(args: list[str]) -> Config:
    """Defaults, then presets chosen by selector keys, then dotted overrides (see module doc)."""
    selectors: dict[str, str] = {}
    overrides: list[tuple[str, str]] = []
    for token in args:
        if "=" not in token:
            raise OptionError(f"unexpected argument '{token}' (options are written key=value)")
        key, _, value = token.partition("=")
        key = key.strip()
        if key in SELECTORS:
            selectors[key] = value
        else:
            overrides.append((key, value))

    # Plugins first: the tasks they register (and their config sections) must exist before
    # any key is checked.
    for key, value in overrides:
        if key == "task_plugins":
            registry.load_task_plugins(_coerce(value, list[str], key))
    cfg = Config()
    task = selectors.get("task", "chart2code")
    try:
        spec = registry.get_task(task)
    except KeyError as exc:
        raise OptionError(str(exc.args[0])) from None
    if spec.preset(task) is not None:
        apply_yaml(cfg, spec.preset(task))
    set_key(cfg, "task", task)
    if "stage" in selectors:
        stage = selectors["stage"]
        stages = spec.stages() or [1]  # a task without stage presets is one stage
        if not stage.isdigit() or int(stage) not in stages:
            raise OptionError(f"stage={stage}: the {task} curriculum has stages {', '.join(map(str, stages))}")
        if spec.preset(f"stage{stage}") is not None:
            apply_yaml(cfg, spec.preset(f"stage{stage}"))
        set_key(cfg, "stage", stage)
    # The default model is a built-in tiny one the task names, and it comes with its preset
    # (and the task's own settings for it), so a bare `vlrl train` is a quick end-to-end run;
    # model=PATH keeps the full-scale defaults.
    model = selectors.get("model", spec.default_model)
    if preset_path(model).exists():
        apply_yaml(cfg, preset_path(model))
        if spec.preset(model) is not None:
            apply_yaml(cfg, spec.preset(model))
    else:
        set_key(cfg, "model.path", model)
    if "deepspeed" in selectors:
        ds = selectors["deepspeed"]
        if preset_path(ds).exists():
            apply_yaml(cfg, preset_path(ds))
        else:
            set_key(cfg, "trainer.deepspeed", ds)
    if "config" in selectors:
        apply_yaml(cfg, Path(selectors["config"]))
    for key, value in overrides:
        set_key(cfg, key, value)
    if not cfg.out:
        cfg.out = f"runs/{cfg.task}"
    check_config(cfg)
    return cfg


def task_spec(cfg: Config) -> registry.TaskSpec:
    """The registration of the task cfg.task names, its plugins imported first."""
    registry.load_task_plugins(cfg.task_plugins)
    try:
        return registry.get_task(cfg.task)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None


def check_config(cfg: Config) -> None:
    """Every option's declared minimum and each section's own cross-field rules
    (vlrl.options.check_options), the engine's sections and the tasks' alike; run once the
    whole config is assembled, so a mistake fails before any model loads."""
    check_options(cfg)
    for name, settings in cfg.sections.items():
        check_options(settings, f"{name}.")


def to_dict(cfg: Config) -> dict[str, Any]:
    """The config as YAML-ready data: the engine's sections, then each task's own."""
    data = {
        f.name: dataclasses.asdict(getattr(cfg, f.name))
        if dataclasses.is_dataclass(getattr(cfg, f.name))
        else getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if not f.metadata.get("internal")
    }
    for name in registry.sections():
        data[name] = dataclasses.asdict(getattr(cfg, name))
    return data


def save_config(cfg: Config, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")


def describe_config() -> str:
    """Every option with its default and meaning, for `vlrl train --help`."""
    defaults = Config()
    lines = [
        "  presets: " + "  ".join(f"{p}.yaml" for p in available_presets()),
        "  selectors: task=NAME stage=N model=tiny|tiny-learn|PATH deepspeed=zero2|zero3|PATH config=FILE.yaml",
        "  The defaults below are the full-scale ones (model=PATH); without model=PATH the task's",
        "  tiny model and its presets apply, for a quick run on a CPU: chart-to-code takes",
        "  tiny-learn (tiny-learn.yaml: starter charts, a warm start, a rising reward in minutes),",
        "  the spy game tiny (tiny.yaml).",
    ]
    section = None
    for key, (tp, f) in all_keys().items():
        top = key.split(".")[0] if "." in key else ""
        if top != section:
            section = top
            lines.append(f"\n  [{section or 'run'}]")
        value: Any = defaults
        for part in key.split("."):
            value = getattr(value, part)
        shown = ",".join(map(str, value)) if isinstance(value, list) else value
        lines.append(f"  {key + '=' + str(shown):<38} {f.metadata.get('help', '')}")
    return "\n".join(lines)
