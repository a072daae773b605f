"""The typed run config: presets, dotted overrides, errors that name the culprit."""

import pytest
import yaml

from vlrl.config import Config, all_keys, describe_config, load_config, save_config
from vlrl.options import OptionError


def test_defaults_then_presets_then_overrides():
    cfg = load_config(["stage=2", "model=tiny", "rollout.n=3", "algo.loss_type=dapo", "algo.eps_high=0.28"])
    assert cfg.stage == 2 and cfg.model.path == "tiny" and cfg.rollout.n == 3
    assert cfg.reward.weights == {"format": 0.1, "exec": 0.2, "msrl_text": 0.4, "ssim": 0.3}  # stage 2 preset
    assert cfg.trainer.lr == 1e-4  # from the tiny preset
    assert (cfg.algo.loss_type, cfg.algo.eps_high) == ("dapo", 0.28)
    assert cfg.out == "runs/chart2code"


def test_stage1_has_no_visual_reward():
    weights = load_config(["stage=1"]).reward.weights
    assert set(weights) == {"format", "exec", "msrl_text"}


def test_model_path_and_deepspeed_selectors():
    cfg = load_config(["model=/ckpt/qwen2.5-vl-7b", "deepspeed=zero3"])
    assert cfg.model.path == "/ckpt/qwen2.5-vl-7b" and cfg.trainer.deepspeed == "zero3"
    assert cfg.rollout.n == 8 and cfg.trainer.lr == 1e-6  # full-scale defaults for a real model


def test_each_task_names_its_default_model_and_presets():
    cfg = load_config([])  # chart-to-code: the learnable tiny model, starter charts, a warm start
    assert cfg.model.path == "tiny-learn" and cfg.rollout.max_new_tokens == 96 and cfg.trainer.deepspeed == "zero0"
    assert cfg.data.train == "runs/starter" and cfg.sft.warm_start and cfg.trainer.steps == 12
    plumbing = load_config(["model=tiny"])  # the plumbing model keeps the realistic corpus, no warm start
    assert (
        plumbing.rollout.max_new_tokens == 64 and plumbing.data.train == "runs/corpus" and not plumbing.sft.warm_start
    )
    spy = load_config(["task=spy"])
    assert spy.model.path == "tiny" and not spy.sft.warm_start


def test_dict_options_and_types_from_the_command_line():
    cfg = load_config(["reward.weights={format: 1, exec: 2}", "trainer.tensorboard=false", "trainer.steps=7"])
    assert cfg.reward.weights == {"format": 1, "exec": 2}
    assert cfg.trainer.tensorboard is False and cfg.trainer.steps == 7


@pytest.mark.parametrize(
    "args, message",
    [
        (["rollout.nn=3"], "unknown config key 'rollout.nn'; did you mean rollout.n"),
        (["rollout.lr=1"], "did you mean trainer.lr"),
        (["stpes=4"], "unknown config key 'stpes'; did you mean trainer.steps"),
        (["stage=5"], "stage=5: the chart2code curriculum has stages 1, 2"),
        (["algo.loss_type=ppo"], "expected one of grpo, bnpo, dr_grpo, dapo"),
        (["trainer.steps=many"], "trainer.steps=many: expected int"),
        (["reward.weights=[1, 2]"], "expected a mapping"),
        (["oops"], "options are written key=value"),
        (["trainer.log_every=0"], "trainer.log_every=0: must be at least 1"),
        (["rollout.n=0"], "rollout.n=0: must be at least 1"),
        (["trainer.eval_every=-1"], "trainer.eval_every=-1: must be at least 0"),
    ],
)
def test_errors_name_the_culprit(args, message):
    with pytest.raises(OptionError, match=message.replace("[", r"\[")):
        load_config(args)


def test_user_yaml_file_is_checked_too(tmp_path):
    good = tmp_path / "run.yaml"
    good.write_text(yaml.safe_dump({"rollout": {"n": 5}, "trainer": {"lr": 3e-6}}))
    cfg = load_config([f"config={good}", "rollout.n=6"])
    assert cfg.rollout.n == 6 and cfg.trainer.lr == 3e-6  # overrides win over the file
    bad = tmp_path / "bad.yaml"
    bad.write_text("modle:\n  path: x\n")
    with pytest.raises(OptionError, match=f"unknown config key 'modle.path' in {bad}; did you mean model.path"):
        load_config([f"config={bad}"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(["model=tiny", "rollout.n=2"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config([f"config={tmp_path / 'config.yaml'}"])
    assert again == cfg


def test_help_lists_every_key_with_its_default():
    text = describe_config()
    for key in all_keys():
        assert f"  {key}=" in text, key
    assert "rollout.n=8" in text and "stage1.yaml" in text
    assert Config().rollout.n == 8


def test_options_are_checked_one_way_minimum_then_validate_then_nested():
    """vlrl.options.check_options: declared minimums, then the dataclass's own rules, then
    each nested section with its dotted prefix; settings built directly check themselves."""
    from games.settings import SpySettings
    from vlrl.config import Config, check_config
    from vlrl.options import check_options

    cfg = Config()
    cfg.trainer.keep_checkpoints = -1
    with pytest.raises(OptionError, match=r"^trainer.keep_checkpoints=-1: must be at least 0$"):
        check_config(cfg)
    cfg = Config()
    cfg.spy.civilians = 1  # set key by key, as overrides do: checked with the whole config
    with pytest.raises(OptionError, match=r"^spy.civilians=1: the game needs at least 2 civilians$"):
        check_config(cfg)
    with pytest.raises(OptionError, match=r"^rounds=0: must be at least 1$"):
        SpySettings(rounds=0)
    check_options(SpySettings())  # the defaults pass


def test_tasks_own_their_sections_and_presets():
    from vlrl.config import Config, all_keys
    from vlrl.tasks import registry

    spec = registry.get_task("chart2code")
    assert set(spec.sections) == {"reward", "render"} and "reward" not in {f for f in Config.__dataclass_fields__}
    assert spec.stages() == [1, 2] and registry.get_task("spy").stages() == []
    keys = list(all_keys())
    assert keys.index("reward.weights") > keys.index("trainer.steps")  # the engine's sections first
    tiny_spy = load_config(["task=spy"])
    assert tiny_spy.spy.civilians == 3 and load_config([]).spy.civilians == 4  # games/presets/tiny.yaml
    assert load_config(["task=spy", "model=/ckpt"]).spy.civilians == 4


def test_one_builder_makes_every_rollout_engine():
    from vlrl.config import ModelConfig, RolloutConfig
    from vlrl.options import UserError
    from vlrl.rollout.build import build_rollout_engine
    from vlrl.rollout.hf_engine import HFEngine

    engine = build_rollout_engine(ModelConfig(path="tiny", min_pixels=784, max_pixels=12544), RolloutConfig(), seed=0)
    assert isinstance(engine, HFEngine) and engine.max_batch_requests == 16
    with pytest.raises(UserError, match="rollout.engine=vllm needs a checkpoint directory; tiny is not one"):
        build_rollout_engine(ModelConfig(path="tiny"), RolloutConfig(engine="vllm"), seed=0)
    with pytest.raises(UserError, match="no-such-dir"):
        build_rollout_engine(ModelConfig(path="/no-such-dir"), RolloutConfig(), seed=0)
