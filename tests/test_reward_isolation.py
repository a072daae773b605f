"""One bad sample never stops a run: a reward that raises, or an input it cannot use (a
malformed trace, an undecodable or oversize image), fails that sample alone, by name."""

import dataclasses
import io
import json
import math
from concurrent.futures import Future

import pytest
from conftest import SAMPLES

from rewards import REGISTRY, CompositeReward, RewardInput, RewardOutput, register
from rewards.base import score_isolated
from rewards.images import MAX_PIXELS
from vlrl.tasks.chart2code import reward_error_metrics

CODE = """
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3))
ax.bar(["a", "b", "c"], [3, 4, 5], color="#2ca02c")
ax.set_title("Stock")
"""
ANSWER = f"```python\n{CODE}\n```"
WEIGHTS = {
    "format": 0.1,
    "exec": 0.2,
    "msrl_text": 0.4,
    "chartmimic": 0.1,
    "ssim": 0.1,
    "test_explodes": 0.1,
    "test_strict_trace": 0.0001,
}


if "test_explodes" not in REGISTRY:

    @register("test_explodes")
    class ExplodingReward:
        """Raises on any batch holding an answer that asks for it: a buggy plugin."""

        calls = 0

        def __call__(self, batch):
            type(self).calls += 1
            if any("EXPLODE" in item.completion for item in batch):
                raise RuntimeError("the plugin blew up")
            return [RewardOutput(0.5, {"seen": 1.0}) for _ in batch]

    @register("test_strict_trace")
    class StrictTraceReward:
        """Trusts the trace's shape, as a plugin may: a malformed trace makes it raise
        whatever the built-in rewards learn to tolerate."""

        def __call__(self, batch):
            return [
                RewardOutput(
                    float(len([ax["title"] for ax in item.render.trace["axes"]]) > 0)
                    if getattr(item.render, "ok", True)
                    else 0.0
                )
                for item in batch
            ]


@pytest.fixture(scope="module")
def rendered(render_pool):
    reference, answer, other = render_pool.render_many([CODE, CODE.replace("Stock", "Shares"), "1/0"])
    assert reference.ok and answer.ok and not other.ok
    return reference, answer, other


def _png(size, mode="1") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def items(rendered):
    """name -> input: good ones, then one of each kind of bad one."""
    reference, answer, failed = rendered
    good = lambda r, text=ANSWER: RewardInput(text, reference_code=CODE, render=r, reference_render=reference)  # noqa: E731
    return {
        "good_exact": good(reference),
        "good_retitled": good(answer),
        "good_failed_render": good(failed, "```python\n1/0\n```"),
        "trace_none": good(dataclasses.replace(answer, trace=None)),
        "trace_wrong_types": good(dataclasses.replace(answer, trace={"axes": 7, "figure": "x", "suptitle": None})),
        "trace_axes_not_dicts": good(dataclasses.replace(answer, trace={**answer.trace, "axes": [None, 3]})),
        "undecodable_png": good(dataclasses.replace(answer, png=b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)),
        "png_over_cap": good(dataclasses.replace(answer, png=_png((5000, MAX_PIXELS // 5000 + 10)))),
        "render_not_a_result": good({"ok": True, "png": None}),
        "plugin_explodes": good(answer, ANSWER + "\n# EXPLODE"),
    }


BAD = {  # item -> errors it must carry; the built-in trace rewards may add their own (below)
    "trace_none": {"reward_error/test_strict_trace/TypeError"},
    "trace_wrong_types": {"reward_error/test_strict_trace/TypeError"},
    "trace_axes_not_dicts": {"reward_error/test_strict_trace/TypeError"},
    "undecodable_png": {"reward_error/ssim/UndecodableImage"},
    "png_over_cap": {"reward_error/ssim/OversizeImage"},
    "render_not_a_result": {
        f"reward_error/{r}/AttributeError" for r in ("exec", "msrl_text", "chartmimic", "ssim", "test_strict_trace")
    },
    "plugin_explodes": {"reward_error/test_explodes/RuntimeError"},
}
# today these raise on malformed traces (exec reads the trace to see whether the figure shows
# anything); hardening them is fine
TRACE_REWARDS = ("exec", "msrl_text", "chartmimic")


def test_a_hostile_batch_scores_and_only_the_bad_items_fail(rendered, capsys):
    comp = CompositeReward(WEIGHTS)
    named = items(rendered)
    outs = dict(zip(named, comp(list(named.values()))))
    for name, out in outs.items():
        assert math.isfinite(out.score), name
        expected = BAD.get(name, set())
        extra = set(out.errors) - expected
        if name.startswith("trace_"):
            assert all(e.split("/")[1] in TRACE_REWARDS for e in extra), (name, out.errors)
        else:
            assert not extra, (name, out.errors)
        assert expected <= set(out.errors), (name, out.errors)
        for error in out.errors:
            _, reward, kind = error.split("/")
            assert out.components[reward] == 0.0  # the failing reward scores 0 for this item
            assert f"'{reward}' reward failed on this answer ({kind}: " in out.critique
        if not expected:
            assert out.errors == [], (name, out.errors)
    # good items score exactly as they do alone
    for name in ("good_exact", "good_retitled", "good_failed_render"):
        alone = comp([named[name]])[0]
        assert (outs[name].score, outs[name].components) == (alone.score, alone.components), name
    assert outs["good_exact"].score == pytest.approx(1.0 - 0.1 + 0.05 + 0.0001, abs=1e-6)  # the plugin gives 0.5
    # the bad items' other rewards still count: the exploding plugin costs only its own share
    assert outs["plugin_explodes"].components["exec"] == 1.0
    metrics = reward_error_metrics(list(outs.values()))
    total = sum(len(o.errors) for o in outs.values())
    assert metrics["reward/errors"] == total >= sum(len(v) for v in BAD.values())
    assert metrics["reward/error_rate"] == pytest.approx(len(BAD) / len(outs))
    assert metrics["reward_error/ssim/OversizeImage"] == 1
    assert metrics["reward_error/test_explodes/RuntimeError"] == 1
    err = capsys.readouterr().err
    assert "reward 'test_explodes' failed on item 9 of 10, which scores 0: RuntimeError: the plugin blew up" in err


def test_the_batch_is_scored_in_one_call_unless_it_fails(rendered):
    explodes = REGISTRY["test_explodes"]
    named = items(rendered)
    good = [named["good_exact"], named["good_retitled"], named["good_failed_render"]]
    before = explodes.calls
    score_isolated(explodes(), good)
    assert explodes.calls == before + 1
    outs = score_isolated(explodes(), good + [named["plugin_explodes"]])
    assert explodes.calls == before + 1 + 1 + 4  # the failed batch, then each item alone
    assert [o.errors for o in outs] == [[], [], [], ["reward_error/test_explodes/RuntimeError"]]


def test_unusable_outputs_are_named_errors_too():
    def nan_for_long(batch):
        return [RewardOutput(float("nan") if len(i.completion) > 3 else 1.0) for i in batch]

    outs = score_isolated(nan_for_long, [RewardInput("ok"), RewardInput("long one")], "nanny")
    assert [o.score for o in outs] == [1.0, 0.0]
    assert outs[1].errors == ["reward_error/nanny/InvalidRewardOutput"]
    short = score_isolated(lambda batch: [], [RewardInput("a")], "short")
    assert short[0].errors == ["reward_error/short/InvalidRewardOutput"] and "0 outputs for 1" in short[0].critique


def test_oversize_and_broken_reference_images_are_refused_by_name(tmp_path):
    from PIL import Image

    from rewards.images import OversizeImage, UndecodableImage, open_capped

    big = tmp_path / "big.png"
    big.write_bytes(_png((6000, 3000)))
    with pytest.raises(OversizeImage, match="6000x3000 pixels, over the cap"):
        open_capped(big, what="reference image")
    with pytest.raises(UndecodableImage, match="does not decode"):
        open_capped(b"\x89PNG\r\n\x1a\nnope")
    truncated = _png((300, 200), "RGB")
    with pytest.raises(UndecodableImage):
        open_capped(truncated[: len(truncated) // 2])
    assert open_capped(_png((30, 20), "RGBA")).mode == "RGB"
    ssim = CompositeReward({"ssim": 1.0})
    out = ssim(
        [RewardInput("", reference_image=str(big)), RewardInput("", reference_image=Image.new("RGB", (9000, 2000)))]
    )
    assert [o.errors for o in out] == [["reward_error/ssim/OversizeImage"]] * 2


def test_the_task_scores_a_batch_whose_render_job_raised(render_pool):
    from renderers import RenderResult
    from vlrl.datasets.charts import ChartExample
    from vlrl.tasks.chart_scorer import ChartScorer

    task = ChartScorer(render_pool, CompositeReward({"format": 0.1, "exec": 0.2, "msrl_text": 0.7}))
    ex = ChartExample("bar_1", (SAMPLES / "bar_1.py").read_text(), image_path=str(SAMPLES / "bar_1.png"))
    answer = "```python\n" + ex.code + "\n```"
    good, lost = Future(), Future()
    good.set_result(render_pool.render(ex.code))
    lost.set_exception(BrokenPipeError("the render server went away"))
    scored = task.score([ex, ex], [answer, answer], [good, lost])
    assert scored.renders[0].ok and scored.outputs[0].score > 0.9
    assert isinstance(scored.renders[1], RenderResult) and scored.renders[1].error_kind == "crashed"
    assert "BrokenPipeError" in scored.renders[1].error and scored.outputs[1].components["exec"] == 0.0


BOOM_PLUGIN = """
from rewards import register


@register("test_always_raises")
class AlwaysRaises:
    def __call__(self, batch):
        raise KeyError("a trace key this plugin expected")
"""


@pytest.mark.timeout(600)
def test_a_training_step_goes_on_when_a_reward_raises_and_logs_the_count(tmp_path):
    """The real `vlrl train` step with a plugin that fails every sample: the step completes,
    the other reward still trains, and metrics.jsonl counts the failures."""
    from conftest import LENGTH_REWARD_PLUGIN

    from vlrl.cli import main
    from vlrl.config import load_config
    from vlrl.trainer import train

    corpus = tmp_path / "corpus"
    assert main(["data", "synth", "n=2", f"out={corpus}", "seed=0", "families=bar", "workers=1"]) == 0
    plugin = tmp_path / "isolation_always_raises.py"
    plugin.write_text(BOOM_PLUGIN)
    cfg = load_config(
        [
            "model=tiny",
            f"data.train={corpus}",
            f"out={tmp_path / 'run'}",
            "rollout.n=2",
            "data.prompts_per_step=1",
            "rollout.max_new_tokens=8",
            "trainer.steps=1",
            "trainer.save_every=0",
            "trainer.save_final=false",
            f"reward.plugins={LENGTH_REWARD_PLUGIN},{plugin}",
            "reward.weights={test_length: 1.0, test_always_raises: 1.0}",
        ]
    )
    train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "run" / "stage1" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]
    assert rows[0]["reward/errors"] == 2 and rows[0]["reward/error_rate"] == 1.0
    assert rows[0]["reward_error/test_always_raises/KeyError"] == 2
    assert rows[0]["reward/test_always_raises"] == 0.0 and "reward/test_length" in rows[0]
    assert rows[0]["reward/unscorable"] == 0.0  # the length reward still measured every sample

    # Every reward fails: nothing was measured, so no completion is pushed either way (as
    # TRL does when every reward function returns None), and the run says how many.
    cfg.reward.weights = {"test_always_raises": 1.0}
    cfg.out = str(tmp_path / "run2")
    train(cfg)
    (row,) = [json.loads(line) for line in (tmp_path / "run2" / "stage1" / "metrics.jsonl").read_text().splitlines()]
    assert row["reward/unscorable"] == 2.0 and row["advantages/max"] == 0.0 and row["advantages/min"] == 0.0
    assert row["reward/mean"] == 0.0 and row["grad_norm"] == 0.0
