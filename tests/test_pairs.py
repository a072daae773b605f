"""Spy-game image pairs: scenes and charts differ exactly where their records say; the folder
loader names and counts bad pairs; `vlrl data pairs` end to end, resumed."""

import json
import random
import shutil

import numpy as np
import pytest
from conftest import DATA
from PIL import Image

from games.chart_pairs import (
    SPY_PERTURBATIONS,
    plan_chart_pairs,
    render_chart_pairs,
    render_problem,
    spy_perturb,
)
from games.pairs import ImagePair, PairError, load_pairs
from games.scenes import COLORS, SHAPES, SIZES, make_scene_pair
from renderers import RenderResult
from vlrl.cli import main
from vlrl.datasets.synth import applicable_perturbations, generate_specs

SPY_PAIRS = DATA / "spy_pairs"


def changed_pixels(original, modified) -> np.ndarray:
    a, b = np.asarray(original, dtype=np.int16), np.asarray(modified, dtype=np.int16)
    return np.abs(a - b).max(axis=2) > 0


def boxes_overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def assert_scene_diff_matches_record(original, modified, record, margin=2):
    diff = changed_pixels(original, modified)
    allowed = np.zeros_like(diff)
    for change in record["changes"]:
        x0, y0, x1, y1 = change["region"]
        allowed[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin] = True
        assert diff[y0:y1, x0:x1].sum() > 20, f"object {change['id']} was edited but its pixels did not change"
    outside = np.argwhere(diff & ~allowed)
    assert len(outside) == 0, f"{len(outside)} pixels changed outside the edited objects, e.g. (y, x) {outside[0]}"


@pytest.mark.parametrize("seed", range(8))
def test_scene_pair_differs_only_where_two_objects_changed(seed):
    pair = make_scene_pair(seed)
    record = pair.record
    assert pair.original.size == pair.modified.size == (480, 320) and pair.original.mode == "RGB"
    objects, edited = record["objects"], record["modified_objects"]
    assert 3 <= len(objects) <= 6 and len(record["changes"]) == 2 and len(record["changed_ids"]) == 2
    for obj in objects:
        assert obj["shape"] in SHAPES and obj["color"] in COLORS and obj["size"] in SIZES
        x0, y0, x1, y1 = obj["bbox"]
        assert 0 <= x0 < x1 <= 480 and 0 <= y0 < y1 <= 320
        assert x0 <= obj["position"][0] <= x1  # the ground contact point lies under the object
    # objects never overlap, so an edit is local
    boxes = [o["bbox"] for o in objects] + [o["bbox"] for o in edited]
    ids = [o["id"] for o in objects] * 2
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if ids[i] != ids[j]:
                assert not boxes_overlap(boxes[i], boxes[j]), (ids[i], ids[j])
    for before, after in zip(objects, edited):
        assert (before["position"], before["size"], before["world"]) == (
            after["position"],
            after["size"],
            after["world"],
        )
        if before["id"] in record["changed_ids"]:
            assert before["shape"] != after["shape"] and before["color"] != after["color"]
        else:
            assert before == after
    for change in record["changes"]:
        assert change["before"]["shape"] in change["text"] and change["after"]["color"] in change["text"]
    assert_scene_diff_matches_record(pair.original, pair.modified, record)


def test_scene_pairs_are_deterministic_per_seed_and_sized_on_request():
    a, b = make_scene_pair(11), make_scene_pair(11)
    assert a.original.tobytes() == b.original.tobytes() and a.modified.tobytes() == b.modified.tobytes()
    assert a.record == b.record
    assert make_scene_pair(12).original.tobytes() != a.original.tobytes()
    small = make_scene_pair(3, width=320, height=240, min_objects=6, max_objects=6)
    assert small.original.size == (320, 240) and len(small.record["objects"]) == 6
    assert_scene_diff_matches_record(small.original, small.modified, small.record)


def test_spy_edits_are_two_exact_changes_and_never_a_chart_type_change():
    specs = generate_specs(34, 3)  # every family twice
    for i, spec in enumerate(specs):
        modified, changes = spy_perturb(spec, random.Random(i))
        assert len(changes) == 2 and all(c["kind"] in SPY_PERTURBATIONS for c in changes)
        assert modified.family == spec.family and modified.to_code() != spec.to_code()
        assert all(c["text"] for c in changes)
    # a histogram often has only labels to edit: the same kind twice, on two different labels
    hist = next(
        s
        for s in generate_specs(20, 0, ["hist"])
        if [k for k in applicable_perturbations(s) if k in SPY_PERTURBATIONS] == ["rename_label"]
    )
    _, changes = spy_perturb(hist, random.Random(0))
    assert [c["kind"] for c in changes] == ["rename_label"] * 2
    assert changes[1]["before"] != changes[0]["after"]


def test_render_problem_names_why_a_chart_pair_is_unusable():
    def ok(color):
        import io

        buf = io.BytesIO()
        Image.new("RGB", (40, 30), color).save(buf, format="PNG")
        return RenderResult(ok=True, png=buf.getvalue())

    broken = RenderResult.failure("runtime", "NameError: name 'x' is not defined")
    assert render_problem(ok("red"), broken) == (
        "modified_render_failed",
        "runtime: NameError: name 'x' is not defined",
    )
    assert render_problem(broken, ok("red"))[0] == "original_render_failed"
    assert render_problem(ok("red"), ok("red")) == ("identical_renders", "the edits changed no pixel")
    assert render_problem(ok("red"), ok("blue")) is None
    # with the render after the first change: each change must show on its own
    changes = [
        {"kind": "change_value", "text": "value of A changed from 3 to 3.01"},
        {"kind": "swap_colors", "text": "colours of A and B swapped"},
    ]
    assert render_problem(ok("red"), ok("blue"), ok("green"), changes=changes) is None
    assert render_problem(ok("red"), ok("red"), ok("green"), changes=changes) == (
        "invisible_edit",
        "change 1 (value of A changed from 3 to 3.01) changed no pixel",
    )
    assert render_problem(ok("red"), ok("green"), ok("green"), changes=changes)[1].startswith("change 2 (colours")
    assert render_problem(ok("red"), broken, ok("green"))[0] == "intermediate_render_failed"


def test_bundled_sample_pairs_load_with_their_records():
    report = load_pairs(SPY_PAIRS)
    assert report.skipped == [] and report.warnings == []
    kinds = sorted(p.record["kind"] for p in report.pairs)
    assert kinds == ["chart", "chart", "scene"]
    for pair in report.pairs:
        original, modified = pair.load_images()
        assert original.mode == modified.mode == "RGB" and original.size == modified.size
        assert len(pair.differences) == 2 and changed_pixels(original, modified).any()
        assert (SPY_PAIRS / f"{pair.base}_original.png").stat().st_size < 60_000
        if pair.record["kind"] == "scene":
            assert_scene_diff_matches_record(original, modified, pair.record)


def test_folder_loader_names_and_counts_bad_pairs(tmp_path):
    good = "scene-s0-000000"
    for suffix in ("_original.png", "_modified.png", ".json"):
        shutil.copy(SPY_PAIRS / f"{good}{suffix}", tmp_path / f"{good}{suffix}")
    Image.new("RGB", (64, 48), "white").save(tmp_path / "norecord_original.png")
    Image.new("RGB", (64, 48), "black").save(tmp_path / "norecord_modified.jpg")
    Image.new("RGB", (64, 48)).save(tmp_path / "lonely_original.png")
    Image.new("RGB", (64, 48)).save(tmp_path / "garbage_original.png")
    (tmp_path / "garbage_modified.png").write_bytes(b"this is not an image")
    png = (SPY_PAIRS / f"{good}_original.png").read_bytes()
    (tmp_path / "torn_original.png").write_bytes(png)
    (tmp_path / "torn_modified.png").write_bytes(png[: len(png) // 2])
    Image.new("RGB", (64, 48)).save(tmp_path / "sizes_original.png")
    Image.new("RGB", (60, 48)).save(tmp_path / "sizes_modified.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "badjson_original.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "badjson_modified.png")
    (tmp_path / "badjson.json").write_text("{not json")
    (tmp_path / "notes.txt").write_text("not part of any pair")

    report = load_pairs(tmp_path)
    assert [p.base for p in report.pairs] == ["badjson", "norecord", good]
    assert len(report.skipped) == 4
    skipped = dict(s.split(": ", 1) for s in report.skipped)
    assert skipped["lonely"] == "missing modified image (lonely_modified.png)"
    assert skipped["garbage"].startswith("garbage_modified.png is not a readable image")
    assert skipped["torn"].startswith("torn_modified.png is not a readable image")
    assert skipped["sizes"] == "sizes differ (original 64x48, modified 60x48)"
    assert len(report.warnings) == 1 and report.warnings[0].startswith("badjson: badjson.json: record ignored")
    by_base = {p.base: p for p in report.pairs}
    assert by_base["norecord"].record is None and by_base["norecord"].differences == []
    assert by_base[good].record["base"] == good and len(by_base[good].differences) == 2
    assert "4 skipped" in report.summary()
    # header-only mode is faster and misses the torn body, but still catches the rest
    assert len(load_pairs(tmp_path, decode=False).skipped) == 3
    with pytest.raises(PairError, match="not a folder of image pairs"):
        load_pairs(tmp_path / "nowhere")
    with pytest.raises(PairError, match="gone_original.png: not a readable image"):
        ImagePair("gone", tmp_path / "gone_original.png", tmp_path / "gone_modified.png").load_images()


def read_index(out):
    return [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]


def test_cli_writes_scene_pairs_and_resumes_without_redoing(tmp_path, capsys):
    out = tmp_path / "scenes"
    assert main(["data", "pairs", "kind=scenes", "n=3", f"out={out}", "seed=5", "workers=1"]) == 0
    assert "made 3 new scene pairs" in capsys.readouterr().out
    rows = read_index(out)
    assert [r["base"] for r in rows] == ["scene-s5-000000", "scene-s5-000001", "scene-s5-000002"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("scene-*")}
    report = load_pairs(out)
    assert len(report) == 3 and not report.skipped
    for pair in report.pairs:
        assert pair.record["base"] == pair.base and pair.differences == rows[report.pairs.index(pair)]["changes"]
        assert_scene_diff_matches_record(*pair.load_images(), pair.record)

    (out / "scene-s5-000001_modified.png").unlink()  # an incomplete pair is redone
    assert main(["data", "pairs", "kind=scenes", "n=4", f"out={out}", "seed=5", "workers=1"]) == 0
    assert "made 2 new scene pairs (2 were there already), skipped 0" in capsys.readouterr().out
    assert len(read_index(out)) == 4  # no duplicate rows
    for name in ("scene-s5-000000_original.png", "scene-s5-000002.json"):
        assert (out / name).stat().st_mtime_ns == stamps[name]
    fresh = tmp_path / "fresh"
    assert main(["data", "pairs", "kind=scenes", "n=4", f"out={fresh}", "seed=5", "workers=2"]) == 0
    for name in ("scene-s5-000001_modified.png", "scene-s5-000003_original.png"):
        assert (fresh / name).read_bytes() == (out / name).read_bytes()  # deterministic, workers or not

    # a scene that cannot fit is skipped and counted, not fatal
    tiny = tmp_path / "tiny"
    assert (
        main(
            [
                "data",
                "pairs",
                "kind=scenes",
                "n=1",
                f"out={tiny}",
                "width=64",
                "height=48",
                "min_objects=6",
                "workers=1",
            ]
        )
        == 0
    )
    assert "skipped 1 (scene_not_placeable 1)" in capsys.readouterr().out
    summary = json.loads((tiny / "summary.json").read_text())
    assert summary["pairs"] == 0 and summary["reasons"] == {"scene_not_placeable": 1}
    assert main(["data", "pairs", "kind=scenes", "n=1", f"out={tiny}", "min_objects=1"]) == 2
    assert "min_objects=1" in capsys.readouterr().err


def test_cli_writes_chart_pairs_with_two_recorded_changes_and_resumes(tmp_path, capsys):
    out = tmp_path / "charts"
    args = [
        "data",
        "pairs",
        "kind=charts",
        "n=3",
        f"out={out}",
        "seed=2",
        "workers=2",
        "dpi=50",
        "families=line,bar,pie",
    ]
    assert main(args) == 0
    report = load_pairs(out)
    summary = json.loads((out / "summary.json").read_text())
    assert len(report) + summary["skipped"] == 3 and len(report) >= 2
    for pair in report.pairs:
        record = pair.record
        assert record["kind"] == "chart" and record["family"] in ("line", "bar", "pie")
        assert len(record["changes"]) == 2 and all(c["kind"] != "change_chart_type" for c in record["changes"])
        assert record["original_code"] != record["modified_code"]
        original, modified = pair.load_images()
        assert list(original.size) == record["image_size"] and changed_pixels(original, modified).any()
    # each recorded change is visible by itself: re-render the chart after the first change
    from renderers import RenderPool

    plans = plan_chart_pairs(3, 2, ["line", "bar", "pie"])
    with RenderPool(workers=1, dpi=50, trace=False) as pool:
        for plan, renders in render_chart_pairs(plans, pool):
            pair = next((p for p in report.pairs if p.record["index"] == plan.index), None)
            if pair is None:
                continue
            assert len(renders) == 3 and plan.changes == pair.record["changes"]
            first, both = renders[1].image, renders[2].image
            assert changed_pixels(renders[0].image, first).any() and changed_pixels(first, both).any()
            assert both.tobytes() == pair.load_images()[1].tobytes()
    capsys.readouterr()
    assert main(args) == 0  # nothing left to do: no render server started, nothing rewritten
    assert f"made 0 new chart pairs ({len(report)} were there already)" in capsys.readouterr().out
    assert main(["data", "pairs", "kind=charts", "n=2", f"out={out}", "families=bar,sankey"]) == 2
    assert "unknown chart family sankey" in capsys.readouterr().err


def test_data_help_lists_both_subcommands(capsys):
    assert main(["data", "--help"]) == 0
    text = capsys.readouterr().out
    assert "vlrl data synth" in text and "vlrl data pairs kind=scenes|charts" in text
