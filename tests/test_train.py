"""`vlrl sft` and `vlrl train` end to end on the tiny model, on CPU, with DeepSpeed."""

import json
import re

import pytest
from conftest import LENGTH_REWARD_PLUGIN

from vlrl.config import load_config
from vlrl.options import UserError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from vlrl.cli import main

    out = tmp_path_factory.mktemp("corpus")
    assert main(["data", "synth", "n=6", f"out={out}", "seed=0", "families=bar,line,pie", "workers=2"]) == 0
    return out


def tiny(corpus, out, *extra):
    return load_config(
        [
            "model=tiny",
            f"data.train={corpus}",
            f"out={out}",
            "rollout.n=2",
            "data.prompts_per_step=2",
            "rollout.max_new_tokens=16",
            *extra,
        ]
    )


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("run")


def test_sft_lowers_the_loss_and_writes_loadable_weights(corpus, run_dir):
    from transformers import AutoModelForImageTextToText

    from vlrl.sft import sft

    final = sft(tiny(corpus, run_dir, "sft.epochs=6", "sft.batch_size=3"))
    metrics = rows(run_dir / "sft" / "metrics.jsonl")
    assert len(metrics) == 12
    first, last = sum(m["loss"] for m in metrics[:2]) / 2, sum(m["loss"] for m in metrics[-2:]) / 2
    assert last < first - 0.5, (first, last)
    assert (final / "model.safetensors").exists()
    AutoModelForImageTextToText.from_pretrained(final, local_files_only=True)


def test_stage1_trains_from_the_sft_weights_checkpoints_and_resumes(corpus, run_dir, capsys):
    from vlrl.trainer import train

    train(tiny(corpus, run_dir, "stage=1", "trainer.steps=2", "trainer.save_every=1"))
    assert "stage 1 starts from the SFT weights" in capsys.readouterr().err
    stage = run_dir / "stage1"
    metrics = rows(stage / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    for key in (
        "reward/mean",
        "reward/format",
        "reward/exec",
        "reward/msrl_text",
        "exec_rate",
        "loss",
        "entropy",
        "clip/total",
        "frac_zero_variance_groups",
        "time/generate",
        "time/score",
        "time/train",
    ):
        assert key in metrics[0], key
    assert json.loads((stage / "checkpoints" / "latest.json").read_text())["tag"] == "step-2"
    assert (stage / "final" / "model.safetensors").exists()
    assert (run_dir / "config.yaml").exists() and (stage / "config.yaml").exists()
    # a longer run resumes after step 2 instead of starting over
    train(tiny(corpus, run_dir, "stage=1", "trainer.steps=3", "trainer.save_every=1", "trainer.keep_checkpoints=1"))
    assert [m["step"] for m in rows(stage / "metrics.jsonl")] == [1, 2, 3]
    assert [p.name for p in (stage / "checkpoints").glob("step-*")] == ["step-3"]


def test_stage2_starts_from_stage1_and_needs_it(corpus, run_dir, tmp_path, capsys):
    from vlrl.trainer import initial_weights, train

    cfg = tiny(corpus, run_dir, "stage=2", "trainer.steps=1", "algo.beta=0.01")
    assert initial_weights(cfg) == str(run_dir / "stage1" / "final")
    assert f"stage 2 starts from stage 1's final weights in {run_dir / 'stage1' / 'final'}" in capsys.readouterr().err
    train(cfg)
    metrics = rows(run_dir / "stage2" / "metrics.jsonl")
    assert "reward/ssim" in metrics[0] and "kl" in metrics[0]  # the visual reward and the KL term are on
    with pytest.raises(UserError, match="run `vlrl train stage=1"):
        initial_weights(tiny(corpus, tmp_path / "fresh", "stage=2"))


PLUGIN = f"reward.plugins={LENGTH_REWARD_PLUGIN}"
LENGTH = "reward.weights={test_length: 1.0}"


def test_resume_gives_the_same_next_step_as_an_uninterrupted_run(corpus, tmp_path):
    from vlrl.trainer import train

    common = [PLUGIN, LENGTH, "trainer.lr=0.01", "trainer.save_every=1", "trainer.warmup_ratio=0"]
    train(tiny(corpus, tmp_path / "a", "trainer.steps=3", *common))
    train(tiny(corpus, tmp_path / "b", "trainer.steps=2", *common))
    train(tiny(corpus, tmp_path / "b", "trainer.steps=3", *common))  # resumes from step 2
    a = rows(tmp_path / "a" / "stage1" / "metrics.jsonl")
    b = rows(tmp_path / "b" / "stage1" / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3]
    assert a[1]["grad_norm"] > 0  # there was something to learn
    for key in ("reward/mean", "grad_norm", "entropy", "completion_length/mean", "lr"):
        assert b[2][key] == pytest.approx(a[2][key], rel=1e-5, abs=1e-7), key


def test_a_resumed_run_sets_aside_rows_logged_after_its_checkpoint(tmp_path):
    from vlrl.metrics_log import set_aside_rows_after

    path = tmp_path / "metrics.jsonl"
    # a run checkpointed at step 2, logged steps 3 and 4, then died before its next checkpoint
    path.write_text("".join(json.dumps({"step": s, "reward/mean": s / 10}) + "\n" for s in (1, 2, 3, 4)))
    assert set_aside_rows_after(path, 2) == 2
    assert [r["step"] for r in rows(path)] == [1, 2]  # the resumed run logs 3 and 4 again, once
    assert [r["step"] for r in rows(tmp_path / "metrics.discarded.jsonl")] == [3, 4]  # kept, not deleted
    assert set_aside_rows_after(path, 2) == 0
    assert set_aside_rows_after(path, 0) == 2  # a fresh start in the same folder
    assert rows(path) == [] and len(rows(tmp_path / "metrics.discarded.jsonl")) == 4


@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_zero_stages_train_and_the_checkpoint_generates(corpus, tmp_path, zero):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vlrl.rollout.base import SamplingParams
    from vlrl.rollout.hf_engine import HFEngine
    from vlrl.trainer import train

    final = train(tiny(corpus, tmp_path, "trainer.steps=1", f"deepspeed={zero}", PLUGIN, LENGTH))
    model = AutoModelForImageTextToText.from_pretrained(final, local_files_only=True)
    processor = AutoProcessor.from_pretrained(final, local_files_only=True)
    out = HFEngine(model, processor).generate(
        [[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]], SamplingParams(max_new_tokens=4)
    )
    assert len(out[0][0].token_ids) == 4


def test_bad_images_are_skipped_or_converted(render_pool, tmp_path):
    from PIL import Image

    from rewards import CompositeReward
    from vlrl.datasets.charts import ChartExample
    from vlrl.tasks.chart_scorer import ChartScorer

    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
    good = tmp_path / "good.png"
    Image.new("RGB", (60, 40), "white").save(good)
    Image.new("CMYK", (60, 40), (0, 50, 50, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("RGBA", (60, 40), (255, 0, 0, 0)).save(tmp_path / "alpha.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG not really")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)  # 100M pixels in a few kilobytes
    names = ["good.png", "cmyk.jpg", "alpha.png", "empty.png", "truncated.png", "corrupt.png", "bomb.png"]
    examples = [ChartExample(n, code, image_path=str(tmp_path / n)) for n in names]
    task = ChartScorer(render_pool, CompositeReward({"format": 1.0}), figsize_hint=False)
    keep, skipped = task.usable(examples)
    assert [e.id for e in keep] == ["good.png", "cmyk.jpg", "alpha.png"]
    assert task.image(keep[2]).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    assert len(skipped) == 4 and "too large to be a chart" in skipped[-1]
    assert all("unreadable image" in s for s in skipped[:3])


def test_a_checkpoint_that_is_not_a_vlm_is_named(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from vlrl.policy import load_policy

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=50)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(UserError, match="is not a vision-language model"):
        load_policy(str(tmp_path / "gpt2"))
    with pytest.raises(UserError, match="not a checkpoint directory|does not exist|not found"):
        load_policy(str(tmp_path / "missing"))


def test_dynamic_sampling_refills_and_drops_uninformative_groups(corpus, tmp_path):
    from vlrl.trainer import train

    # a random model earns 0 everywhere: every group has zero variance, so every round is dropped
    train(
        tiny(
            corpus,
            tmp_path,
            "trainer.steps=1",
            "algo.dynamic_sampling=true",
            "algo.max_refill_rounds=2",
            "rollout.chunk_prompts=1",
        )
    )
    m = rows(tmp_path / "stage1" / "metrics.jsonl")[0]
    assert m["rollout_rounds"] == 2 and m["samples/kept"] == 0 and m["frac_zero_variance_groups"] == 1.0


def test_vllm_engine_without_vllm_is_a_clear_error(corpus, tmp_path):
    pytest.importorskip("deepspeed")
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    from vlrl.trainer import train

    with pytest.raises(UserError, match="pip install 'vlrl\\[vllm\\]'"):
        train(tiny(corpus, tmp_path, "trainer.steps=1", "rollout.engine=vllm"))


def test_plot_writes_every_panel(run_dir, tmp_path, capsys):
    from PIL import Image

    from vlrl.cli import main

    # run_dir holds the sft, stage1 and stage2 runs of the tests above
    assert main(["plot", str(run_dir / "stage1"), f"out={tmp_path}"]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["entropy.png", "lengths.png", "rewards.png", "throughput.png", "time.png"]
    assert "no kl plot: the run logged no KL (algo.beta=0" in capsys.readouterr().out  # said, not silently left out
    assert Image.open(tmp_path / "rewards.png").size == (700, 400)
    assert (run_dir / "stage1" / "rewards.png").exists()  # written at the end of training
    assert main(["plot", str(tmp_path / "nothing")]) == 2


def test_sample_reports_show_charts_code_and_scores(corpus, tmp_path):
    from vlrl.trainer import train

    train(tiny(corpus, tmp_path, "trainer.steps=2", "trainer.log_samples_every=2"))
    samples = tmp_path / "stage1" / "samples"
    page = (samples / "step-000002.html").read_text()
    assert "step-000002" in (samples / "index.html").read_text()
    assert page.count("class='prompt'") == 2 and page.count("class='sample'") == 4  # 2 prompts x n=2
    assert "data:image/png;base64," in page  # the input charts are inlined
    assert "reward" in page and "format" in page and "no rendering:" in page  # random text does not render
    assert not (samples / "step-000001.html").exists()


class CodeAnswers:
    """A RolloutEngine that really samples, then rewrites each answer by its tokens into one
    of three kinds: a bar chart whose values and title come from the tokens, code that raises,
    or the model's own gibberish. Renders, exec and text rewards then differ sample by sample,
    so a render paired with the wrong sample changes the rewards."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def generate(self, requests, params):
        groups = self.engine.generate(requests, params)
        for group in groups:
            for c in group:
                kind, v = sum(c.token_ids) % 3, c.token_ids[0] % 7 + 1 if c.token_ids else 1
                if kind == 0:
                    c.text = (
                        "```python\nimport matplotlib.pyplot as plt\n"
                        f"plt.bar(['a', 'b', 'c'], [{v}, 3, 2])\nplt.title('Sales {v}')\n```"
                    )
                elif kind == 1:
                    c.text = "```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n1 / 0\n```"
        return groups

    def sync_weights(self, model) -> None:
        self.engine.sync_weights(model)

    def sleep(self) -> None:
        self.engine.sleep()

    def wake_up(self) -> None:
        self.engine.wake_up()


def test_overlapped_scoring_gives_the_same_run_as_the_sequential_path(corpus, tmp_path, monkeypatch):
    """Rendering and scoring each chunk while the next generates changes only when work happens."""
    from safetensors.torch import load_file

    import vlrl.trainer
    from vlrl.trainer import train

    real = vlrl.trainer.build_rollout
    monkeypatch.setattr(vlrl.trainer, "build_rollout", lambda *a, **k: CodeAnswers(real(*a, **k)))
    common = [
        "trainer.steps=2",
        "rollout.chunk_prompts=1",
        "data.prompts_per_step=3",
        "rollout.n=4",
        "trainer.lr=0.01",
        "trainer.warmup_ratio=0",
    ]  # stage 1's reward: format, exec, msrl_text
    train(tiny(corpus, tmp_path / "overlap", "rollout.overlap_scoring=true", *common))
    train(tiny(corpus, tmp_path / "sequential", "rollout.overlap_scoring=false", *common))
    a = rows(tmp_path / "overlap" / "stage1" / "metrics.jsonl")
    b = rows(tmp_path / "sequential" / "stage1" / "metrics.jsonl")
    assert a[0]["grad_norm"] > 0
    assert 0 < a[0]["exec_rate"] < 1 and a[0]["reward/msrl_text"] > 0  # some samples render, some do not
    for ra, rb in zip(a, b):
        keys = [
            k
            for k in ra
            if k.startswith(("reward/", "advantages/"))
            or k in ("exec_rate", "grad_norm", "loss", "completion_length/mean", "entropy")
        ]
        assert len(keys) > 8
        for key in keys:
            assert ra[key] == rb[key], key
    wa = load_file(tmp_path / "overlap" / "stage1" / "final" / "model.safetensors")
    wb = load_file(tmp_path / "sequential" / "stage1" / "final" / "model.safetensors")
    assert all((wa[k] == wb[k]).all() for k in wa)


def test_profile_flag_prints_the_time_split_per_phase(corpus, tmp_path, capsys):
    from vlrl.cli import main

    args = [
        "train",
        "model=tiny",
        f"data.train={corpus}",
        f"out={tmp_path}",
        "rollout.n=2",
        "data.prompts_per_step=2",
        "rollout.max_new_tokens=8",
        "trainer.steps=2",
        "trainer.save_every=1",
        "--profile",
        PLUGIN,
        LENGTH,
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "time split over 2 steps" in printed
    for phase in ("generate", "score", "encode", "forward", "backward", "optimizer", "sync", "checkpoint"):
        assert phase in printed, phase
    profile = json.loads((tmp_path / "stage1" / "profile.json").read_text())
    assert profile["generate"] > 0 and profile["backward"] > 0
    metrics = rows(tmp_path / "stage1" / "metrics.jsonl")
    assert metrics[0]["time/forward"] > 0
    assert metrics[0]["time/train"] >= metrics[0]["time/forward"] + metrics[0]["time/backward"]
    # each step's phases (with "other", what no phase timed) add up to the step, and the
    # run's table counts 2 steps, its total being the sum of the phases
    for m in metrics:
        phases = sum(v for k, v in m.items() if k.startswith("time/") and k not in ("time/step", "time/train"))
        assert phases == pytest.approx(m["time/step"], rel=1e-6)
        assert m["time/checkpoint"] > 0  # each step's own checkpoint, not billed to the next step
    table = printed.split("time split over 2 steps:\n", 1)[1]
    total_line = next(line for line in table.splitlines() if line.startswith("total"))
    seconds, share, per_step = total_line.split()[1:4]
    assert share == "100.0%" and float(per_step) == pytest.approx(float(seconds) / 2, abs=2e-3)
    assert float(seconds) == pytest.approx(sum(profile.values()), abs=5e-3)
    step_table = printed.split("time split over 2 steps", 1)[0]
    assert re.search(r"^other\s", step_table, re.M) and not re.search(r"^step\s", step_table, re.M)  # no "step" row


def test_held_out_evaluation_every_n_steps_and_sparse_logging(corpus, tmp_path):
    from vlrl.trainer import build_task, train

    args = [
        "trainer.steps=3",
        "trainer.eval_every=2",
        f"data.eval={corpus}",
        "data.eval_size=3",
        "trainer.log_every=2",
        "trainer.save_final=false",
        "trainer.tensorboard=false",
        PLUGIN,
        LENGTH,
    ]
    train(tiny(corpus, tmp_path, *args))
    stage = tmp_path / "stage1"
    logged = rows(stage / "metrics.jsonl")
    assert [m["step"] for m in logged] == [2, 3]  # every 2nd step, and the last
    for m in logged:  # evaluated at step 2 and at the end
        assert m["eval/n"] == 3 and 0 <= m["eval/reward"] <= 1 and "eval/test_length" in m
        assert m["eval/reward"] == pytest.approx(m["eval/test_length"])  # the training reward's weights
        assert m["eval/exec_rate"] == 0.0 and m["time/eval"] > 0  # random text never renders
    assert not (stage / "final").exists() and not (stage / "checkpoints").exists()  # save_final=false

    with pytest.raises(UserError, match="set data.eval=PATH"):
        build_task(tiny(corpus, tmp_path, "trainer.eval_every=5"))
    with pytest.raises(UserError, match="spy game reports"):
        build_task(load_config(["task=spy", "trainer.eval_every=5", f"out={tmp_path}"]))


HOSTILE_ANSWERS = [
    "```python\nimport matplotlib.pyplot as plt\nplt.bar([1, 2, 3], [3, 1, 2])\nplt.title('honest')\n```",
    "```python\nwhile True:\n    pass\n```",  # hangs: killed at the deadline
    "```python\nimport os, time\nos.setsid()\ntime.sleep(100)\n```",  # tries to leave its session
    "```python\nx = bytearray(10**11)\n```",  # memory bomb
    "```python\nimport os\nwhile True:\n    os.fork()\n```",  # fork bomb
    "```python\nimport matplotlib.pyplot as plt\nfrom matplotlib.axes import Axes\n"
    "Axes.get_title = lambda self, loc='center': 'the reference title'\nplt.plot([1, 2])\n```",  # forged trace
    "```python\nimport ctypes\nprint(ctypes.string_at(id(object()), 64))\n```",  # raw memory
    "```python\nimport os, json\nfor fd in range(3, 64):\n    try:\n        os.write(fd, json.dumps({'ok': True}).encode())\n"
    "    except OSError:\n        pass\nos._exit(0)\n```",  # forged result
]


class HostileEngine:
    """The real engine, whose samples' texts are replaced by the answers above, in turn (the
    token ids stay the model's, so the batch trains as usual)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.turn = 0

    def generate(self, requests, params, *, progress=None):
        import dataclasses

        out = []
        for group in self.engine.generate(requests, params, progress=progress):
            out.append([])
            for completion in group:
                out[-1].append(dataclasses.replace(completion, text=HOSTILE_ANSWERS[self.turn % len(HOSTILE_ANSWERS)]))
                self.turn += 1
        return out

    def __getattr__(self, name):
        return getattr(self.engine, name)


@pytest.mark.timeout(300)
def test_a_batch_of_hostile_answers_trains_without_a_crash_or_a_hang(corpus, tmp_path, monkeypatch):
    """Honest and hostile answers in one rollout batch: every step completes, the honest
    answer is rewarded, the forged title earns nothing it did not draw."""
    import renderers
    import vlrl.tasks.chart2code as rl
    from vlrl import trainer

    real_build = trainer.build_rollout
    monkeypatch.setattr(trainer, "build_rollout", lambda *a, **k: HostileEngine(real_build(*a, **k)))

    real_init = rl.Chart2CodeTask.__init__

    def short_deadline(self, cfg):  # 3 s instead of 20 per hanging answer keeps the test short
        real_init(self, cfg)
        self.pool.close()
        self.pool = renderers.RenderPool(timeout=3.0, memory_mb=512)
        self.scorer.pool = self.pool

    monkeypatch.setattr(rl.Chart2CodeTask, "__init__", short_deadline)
    cfg = tiny(corpus, tmp_path, "trainer.steps=2", "rollout.n=8", "data.prompts_per_step=1", "trainer.save_every=0")
    trainer.train(cfg)
    metrics = rows(tmp_path / "stage1" / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(m["reward/exec"] > 0 for m in metrics)  # the honest answers rendered
    assert all(m["reward/exec"] < 0.5 for m in metrics)  # the hostile ones did not


def test_a_bad_start_writes_nothing_and_a_finished_stage_is_left_alone(corpus, tmp_path, capsys):
    from vlrl.trainer import train

    run = tmp_path / "run"
    with pytest.raises(UserError, match="no chart data at"):
        train(tiny(tmp_path / "missing", run))
    assert not run.exists()  # no config.yaml left behind: the corrected command starts clean
    cfg = tiny(corpus, run, "trainer.steps=1", PLUGIN, LENGTH, "trainer.tensorboard=false")
    train(cfg)
    weights = run / "stage1" / "final" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    capsys.readouterr()
    train(cfg)  # again: nothing to do, and it says so instead of rewriting final/
    assert "stage 1 already finished step 1 of 1; nothing to train" in capsys.readouterr().err
    assert weights.stat().st_mtime_ns == stamp and len(rows(run / "stage1" / "metrics.jsonl")) == 1


def test_a_run_starts_quietly_and_compiles_nothing(corpus, tmp_path):
    """No accelerator warning, no CUDA_HOME notice, no DeepSpeed op built on first use."""
    import os
    import subprocess
    import sys

    extensions = tmp_path / "torch_extensions"  # empty: a build would have to happen here
    done = subprocess.run(
        [sys.executable, "-m", "vlrl.cli", "train", "model=tiny", "trainer.steps=1", f"data.train={corpus}"]
        + [f"out={tmp_path / 'r'}"]
        + ["rollout.n=2", "data.prompts_per_step=2", "rollout.max_new_tokens=4", "trainer.save_final=false"],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")},
            "TORCH_EXTENSIONS_DIR": str(extensions),
        },  # a fresh world of one: this process may hold a port from an earlier in-process run
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for noise in ("Setting accelerator", "CUDA_HOME", "built successfully", "[WARNING]"):
        assert noise not in done.stderr + done.stdout
    assert not extensions.exists() or not any(extensions.rglob("*.so"))
