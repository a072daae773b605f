"""Reward functions on real renders: perturbations move exactly the metrics they should."""

import pytest

from rewards import CompositeReward, RewardInput, build_reward, low_level_metrics
from rewards.chart_rewards import data_score, edit_similarity, series_match
from rewards.judge import build_judge_messages, parse_judge_score

BASE = """
import matplotlib.pyplot as plt
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].plot([1, 2, 3, 4], [10, 20, 15, 30], color="#1f77b4", label="North")
axes[0].plot([1, 2, 3, 4], [12, 18, 22, 25], color="#d62728", label="South")
axes[0].set_title("Sales 2023")
axes[0].legend()
axes[1].bar(["a", "b", "c"], [3, 4, 5], color="#2ca02c")
axes[1].set_title("Stock")
"""

PERTURBED = {
    "colour": (BASE.replace('color="#d62728"', 'color="#9467bd"'), {"color"}),
    "dropped series": (
        BASE.replace('axes[0].plot([1, 2, 3, 4], [12, 18, 22, 25], color="#d62728", label="South")\n', ""),
        {"text", "type", "color"},
    ),
    "renamed title": (BASE.replace("Sales 2023", "Revenue 2023"), {"text"}),
    "chart type": (BASE.replace('axes[1].bar(["a", "b", "c"]', 'axes[1].plot(["a", "b", "c"]'), {"type", "color"}),
    "grid 2x1": (BASE.replace("plt.subplots(1, 2", "plt.subplots(2, 1"), {"layout"}),
}


@pytest.fixture(scope="module")
def renders(render_pool):
    names = ["base", *PERTURBED]
    results = render_pool.render_many([BASE] + [c for c, _ in PERTURBED.values()])
    return dict(zip(names, results))


@pytest.mark.parametrize("name", list(PERTURBED))
def test_perturbation_moves_exactly_its_metrics(renders, name):
    base, gen = renders["base"], renders[name]
    assert base.ok and gen.ok, gen.error
    scores = low_level_metrics(gen.trace, base.trace)
    moved = {m for m, s in scores.items() if s.f1 < 0.999}
    assert moved == PERTURBED[name][1], {m: round(s.f1, 3) for m, s in scores.items()}


def _inputs(renders, names, completion="```python\nx = 1\n```"):
    return [RewardInput(completion=completion, render=renders[n], reference_render=renders["base"]) for n in names]


def test_chartmimic_reward_and_critique(renders):
    reward = build_reward("chartmimic")
    same, retitled, changed = reward(_inputs(renders, ["base", "renamed title", "chart type"]))
    assert same.score == pytest.approx(1.0) and same.critique == ""
    assert retitled.score < 1 and "title 'Sales 2023' missing" in retitled.critique
    assert "chart type: expected bar, line, got line" in changed.critique
    assert set(same.components) == {"text", "layout", "type", "color"}


def test_msrl_textual_reward_components(renders):
    reward = build_reward("msrl_text")
    same, retitled, dropped, grid = reward(_inputs(renders, ["base", "renamed title", "dropped series", "grid 2x1"]))
    assert same.score == pytest.approx(1.0)
    assert retitled.components["title"] < 1 and retitled.components["data"] == 1
    assert dropped.components["data"] < 1 and dropped.components["labels"] < 1
    assert grid.components["layout"] == 0 and grid.components["data"] == 1
    assert "layout: expected 2 panel(s) in 1x2, got 2 in 2x1" in grid.critique


def test_data_soft_match_within_five_percent():
    assert series_match([104.9, 200], [100, 200], 0.05) == 1.0
    assert series_match([106, 200], [100, 200], 0.05) == 0.5
    assert series_match([100], [100, 200], 0.05) == 0.5  # a missing point counts against
    ref = {"axes": [{"bars": [{"values": [1, 2, 3]}], "lines": [], "collections": []}]}
    gen = {"axes": [{"bars": [{"values": [1, 2, 3]}, {"values": [9, 9, 9]}], "lines": [], "collections": []}]}
    assert data_score(gen, ref) == pytest.approx(0.5)  # an extra series halves the score


def test_edit_similarity():
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("a", "") == 0.0


def test_format_and_exec_rewards(renders, render_pool):
    fmt = build_reward("format")
    good, bad, none = fmt(
        [RewardInput("```python\nx = 1\n```"), RewardInput("```python\nx = (\n```"), RewardInput("no code")]
    )
    assert (good.score, bad.score, none.score) == (1.0, 0.0, 0.0)
    assert "does not parse" in bad.critique and "no ```python" in none.critique
    failed = render_pool.render("1/0")
    ok, err = build_reward("exec")([RewardInput("", render=renders["base"]), RewardInput("", render=failed)])
    assert (ok.score, err.score) == (1.0, 0.0) and "ZeroDivisionError" in err.critique


def test_ssim_reward(renders):
    reward = build_reward("ssim")
    same, other = reward(_inputs(renders, ["base", "grid 2x1"]))
    assert same.score == pytest.approx(1.0, abs=1e-6)
    assert other.score < 0.9


def test_composite_keeps_every_component_and_skips_zero_weights(renders):
    comp = CompositeReward({"format": 0.1, "exec": 0.2, "msrl_text": 0.7, "ssim": 0.0})
    assert "ssim" not in comp.rewards
    out = comp(_inputs(renders, ["renamed title"]))[0]
    assert out.score == pytest.approx(0.1 + 0.2 + 0.7 * out.components["msrl_text"])
    assert {"format", "exec", "msrl_text", "msrl_text/title", "format/parses"} <= set(out.components)


def test_unknown_reward_names_the_closest():
    with pytest.raises(KeyError, match="did you mean chartmimic"):
        build_reward("chartmimc")


def test_judge_prompt_and_parsing():
    msgs = build_judge_messages("REF", "GEN")
    content = msgs[0]["content"]
    assert [c["type"] for c in content] == ["image", "image", "text"]
    assert content[0]["image"] == "REF" and "Chart types (20 points)" in content[2]["text"]
    assert parse_judge_score("Types fine.\nScore: 85") == 85
    assert parse_judge_score("Score: 40 ... on reflection **Score: 72**") == 72
    assert parse_judge_score("score：120") == 100
    assert parse_judge_score("no verdict") is None


def test_judge_reward_with_a_scripted_backend(renders, render_pool):
    failed = render_pool.render("1/0")
    asked = []

    def backend(batch):
        asked.extend(batch)
        return ["Looks close. Score: 80"]

    reward = build_reward("judge", backend=backend)
    good, bad = reward(
        [
            RewardInput("", render=renders["base"], reference_render=renders["base"]),
            RewardInput("", render=failed, reference_render=renders["base"]),
        ]
    )
    assert good.score == pytest.approx(0.8) and bad.score == 0.0
    assert len(asked) == 1  # the failed render never reaches the judge


def test_clip_reward_with_a_tiny_random_model(renders, tmp_path):
    open_clip = pytest.importorskip("open_clip")
    import json

    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1},
    }
    (tmp_path / "vlrl-tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path)
    with pytest.warns(UserWarning, match="RANDOM weights"):
        reward = build_reward("clip", model="vlrl-tiny-clip")
    same, other = reward(_inputs(renders, ["base", "grid 2x1"]))
    assert same.score == pytest.approx(1.0, abs=1e-5)
    assert 0 <= other.score <= 1
    assert len(reward.cache) == 1  # one reference image, embedded once


def test_images_reach_models_as_rgb_on_white_whatever_their_encoding(tmp_path):
    import numpy as np
    from PIL import Image

    from rewards.images import to_rgb_on_white
    from vlrl.datasets.charts import ChartExample

    def load(path):
        return np.asarray(ChartExample(id=path.name, code="", image_path=str(path)).load_image())

    # an RGB PNG with a colour key (tRNS): the keyed colour is transparent, shown as white
    keyed = Image.new("RGB", (8, 4), (0, 0, 0))
    keyed.putpixel((0, 0), (200, 10, 10))
    keyed.save(tmp_path / "keyed.png", transparency=(0, 0, 0))
    a = load(tmp_path / "keyed.png")
    assert a[0, 0].tolist() == [200, 10, 10] and a[3, 7].tolist() == [255, 255, 255]
    # 16-bit greyscale is scaled to 8 bits, not clipped to white
    grey16 = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    grey16.save(tmp_path / "grey16.png")
    assert load(tmp_path / "grey16.png")[0, :, 0].tolist() == [0, 128, 255]
    assert np.asarray(to_rgb_on_white(Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))))[
        0, :, 0
    ].tolist() == [0, 128, 255]
    # a phone photo stored sideways with an EXIF orientation tag is turned upright
    photo = Image.new("RGB", (60, 30), (255, 255, 255))
    photo.paste((0, 0, 255), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    photo.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    upright = load(tmp_path / "photo.jpg")
    assert upright.shape[:2] == (60, 30)  # 30 wide, 60 tall
    assert upright[4, 25, 2] > 200 and upright[4, 25, 0] < 60  # the blue corner is now top right
    assert upright[4, 4].min() > 200  # and top left is white
