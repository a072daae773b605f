"""The Who-is-the-Spy game (Vision-Zero): parsing, rewards, RAE, Iterative-SPO, SpyGames.

Most tests play with scripted players: an engine stand-in whose generate() reads each prompt
(role, seat, clues so far) and the image it was given and answers like a given policy.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from games.engine import CLUE, SPY, VOTE, game_plan, new_game, play_games
from games.parsing import NO_CLUE, boxed_spans, parse_clue, parse_vote
from games.play import SpyGames
from games.rewards import (
    RoleBaselines,
    clue_rewards,
    group_normalise,
    score_game,
    spy_caught,
    votes_received,
)
from games.schedule import PhaseScheduler
from games.settings import SpySettings
from vlrl.options import OptionError, UserError
from vlrl.rollout.base import Completion, SamplingParams

# ---------------------------------------------------------------- scripted players

COLOURS = {(220, 40, 40): "red", (40, 40, 220): "blue", (40, 180, 40): "green", (230, 200, 40): "yellow"}


@dataclass
class LocalPair:
    """Stand-in with the games.pairs.ImagePair interface, images made in memory."""

    base: str
    original: Path
    modified: Path
    record: dict | None = None
    colours: tuple = ((220, 40, 40), (40, 40, 220))

    def load_images(self):
        return Image.new("RGB", (32, 24), self.colours[0]), Image.new("RGB", (32, 24), self.colours[1])


def local_pairs(n=3):
    rgb = list(COLOURS)
    return [
        LocalPair(
            f"p{i}", Path(f"p{i}_original.png"), Path(f"p{i}_modified.png"), colours=(rgb[i % 4], rgb[(i + 1) % 4])
        )
        for i in range(n)
    ]


def colour_of(image) -> str:
    return COLOURS.get(image.getpixel((0, 0)), "grey")


@dataclass
class Prompt:
    kind: str  # clue | vote
    seat: int  # 0: the observer
    role: str  # civilian | spy | observer
    clues: list  # (round, seat, text)
    n_players: int
    image: object
    text: str


def read_prompt(request) -> Prompt:
    (message,) = request
    image = next(p["image"] for p in message["content"] if p["type"] == "image")
    text = next(p["text"] for p in message["content"] if p["type"] == "text")
    return parse_prompt(text, image)


def parse_prompt(text: str, image) -> Prompt:
    """A player's prompt, read from its text (plain, or inside a chat template)."""
    clues = [(int(r), int(s), c) for r, s, c in re.findall(r"^Round (\d+), Player (\d+): (.*)$", text, re.MULTILINE)]
    n = int(re.search(r"There are (\d+) players", text).group(1))
    if "You are the judge" in text:
        return Prompt(VOTE, 0, "observer", clues, n, image, text)
    seat = int(re.search(r"You are Player (\d+)", text).group(1))
    role = "spy" if "Your role: SPY" in text else "civilian"
    kind = VOTE if "vote privately" in text else CLUE
    return Prompt(kind, seat, role, clues, n, image, text)


def oracle_clue(p: Prompt, k: int) -> str:
    """Everyone describes its own picture truthfully (the spy's differs)."""
    return f"I look at the picture. \\boxed{{My picture is {colour_of(p.image)}.}}"


def copying_spy_clue(p: Prompt, k: int) -> str:
    """Civilians are truthful; the spy repeats the last clue it heard."""
    if p.role == SPY and p.clues:
        return f"Blend in. \\boxed{{{p.clues[-1][2]}}}"
    return oracle_clue(p, k)


def silent_clue(p: Prompt, k: int) -> str:
    return "I have nothing to say"


def oracle_vote(p: Prompt, k: int) -> str:
    """Vote for the player whose clues disagree with the voter's own picture."""
    mine = colour_of(p.image)
    odd = sorted({s for _, s, c in p.clues if c != NO_CLUE and mine not in c and s != p.seat})
    return f"The odd one is \\boxed{{{odd[0]}}}" if odd else "\\boxed{N/A}"


def random_vote(p: Prompt, k: int) -> str:
    rng = random.Random(f"{p.text}-{k}")
    return rng.choice([f"\\boxed{{{rng.randint(1, p.n_players)}}}", "<answer>N/A</answer>", "no idea", "\\boxed{9}"])


def abstain_vote(p: Prompt, k: int) -> str:
    return "Too hard. \\boxed{N/A}"


class ScriptedEngine:
    """A RolloutEngine stand-in: answers each prompt with a policy of (prompt, sample index)."""

    def __init__(self, clue=oracle_clue, vote=oracle_vote, fail_after: int | None = None):
        self.clue, self.vote = clue, vote
        self.calls: list[tuple[int, int, int]] = []  # (requests, n, max_new_tokens)
        self.fail_after = fail_after

    def generate(self, requests, params: SamplingParams):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # a job killed mid-way
        self.calls.append((len(requests), params.n, params.max_new_tokens))
        out = []
        for request in requests:
            p = read_prompt(request)
            policy = self.clue if p.kind == CLUE else self.vote
            group = []
            for k in range(params.n):
                text = policy(p, k)
                ids = list(range(1, len(text.split()) + 1))
                group.append(Completion(text, ids, [-0.5] * len(ids), "stop", prompt_ids=[0, 1, 2]))
            out.append(group)
        return out

    def sync_weights(self, model):
        pass

    def sleep(self) -> None:
        pass

    def wake_up(self) -> None:
        pass


def settings(**kw) -> SpySettings:
    base = {"civilians": 3, "rounds": 2, "decision_samples": 4, "clue_max_new_tokens": 32, "vote_max_new_tokens": 16}
    return SpySettings(**{**base, **kw})


def play(engine, s, n_games=4, seed=0):
    pairs = local_pairs()
    games = []
    for gid in range(n_games):
        index, spy = game_plan(len(pairs), s.players, seed, gid)
        games.append(new_game(gid, pairs[index], spy, s))
    sampled = play_games(engine, games, SamplingParams(temperature=1.0, seed=1))
    return games, sampled


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text, clue, valid",
    [
        ("reasoning \\boxed{The cube is red.}", "The cube is red.", True),
        ("\\boxed{The {red} cube is {left {of}} the ball}", "The {red} cube is {left {of}} the ball", True),
        ("draft \\boxed{first} then \\boxed{second}", "second", True),
        ("\\\\boxed{double backslash}", "double backslash", True),
        ("\\boxed {spaced}", "spaced", True),
        ("\\boxed{  many\n  lines\tand   spaces }", "many lines and spaces", True),
        ("\\boxed{kept} then a cut-off \\boxed{never closed", "kept", True),
        ("\\boxed{never closed", NO_CLUE, False),
        ("\\boxed{}", NO_CLUE, False),
        ("\\boxed{   }", NO_CLUE, False),
        ("the answer is boxed{missing backslash}", NO_CLUE, False),
        ("", NO_CLUE, False),
        ("\\boxed{real} and \\boxed{}", "real", True),
    ],
)
def test_parse_clue(text, clue, valid):
    c = parse_clue(text)
    assert (c.text, c.valid) == (clue, valid)


def test_parse_clue_first_box_and_reasoning():
    c = parse_clue("think A \\boxed{one} think B \\boxed{two}", which="first")
    assert c.text == "one" and c.reasoning == "think A"
    c = parse_clue("think A \\boxed{one} think B \\boxed{two}")
    assert c.text == "two" and c.reasoning == "think A \\boxed{one} think B"
    assert parse_clue("just rambling").reasoning == "just rambling"
    assert [s[2] for s in boxed_spans("\\boxed{a{b}c} x \\boxed{d}")] == ["a{b}c", "d"]


@pytest.mark.parametrize(
    "text, kind, player",
    [
        ("\\boxed{3}", "player", 3),
        ("I think \\boxed{Player 2}.", "player", 2),
        ("\\boxed{\\text{Player } 4}", "player", 4),
        ("\\boxed{**3**}", "player", 3),
        ("\\boxed{(2)}", "player", 2),
        ("\\boxed{3 or 4}", "player", 3),
        ("\\boxed{#1.}", "player", 1),
        ("\\boxed{N/A}", "abstain", None),
        ("\\boxed{n/a}", "abstain", None),
        ("\\boxed{NA}", "abstain", None),
        ("\\boxed{ N/A. }", "abstain", None),
        ("\\boxed{\\text{N/A}}", "abstain", None),
        ("\\boxed{N/A - cannot tell}", "abstain", None),  # a wordy abstention
        ("\\boxed{Player n/a}", "abstain", None),
        ("\\boxed{NA, too close to call}", "abstain", None),
        ("\\boxed{N/A or 3}", "player", 3),  # a seat wins over a hedge
        ("\\boxed{banana}", "invalid", None),  # "na" inside a word is no abstention
        ("\\boxed{N/Answer}", "invalid", None),
        ("<answer>2</answer>", "player", 2),
        ("<answer>\nN/A\n</answer>", "abstain", None),
        ("<think>maybe 1</think><answer> 4", "player", 4),  # a tag never closed
        ("\\boxed{2} <answer>3</answer>", "player", 2),  # the box comes first
        ("\\boxed{} <answer>3</answer>", "player", 3),  # an empty box is no answer
        ("\\boxed{7}", "invalid", None),  # no player 7 in a game of 5
        ("\\boxed{0}", "invalid", None),
        ("\\boxed{10}", "invalid", None),  # not a standalone digit
        ("\\boxed{Player3}", "invalid", None),
        ("\\boxed{1.5}", "invalid", None),
        ("\\boxed{3rd}", "invalid", None),
        ("\\boxed{nobody}", "invalid", None),
        ("\\boxed{None}", "invalid", None),
        ("\\boxed{NAN}", "invalid", None),
        ("Player 3 is the spy", "invalid", None),  # no box, no tags
        ("\\boxed{3", "invalid", None),  # cut off
        ("", "invalid", None),
    ],
)
def test_parse_vote(text, kind, player):
    v = parse_vote(text, n_players=5)
    assert (v.kind, v.player) == (kind, player), v.reason
    assert v.value == {"player": player, "abstain": "N/A", "invalid": None}[kind]


def test_parse_vote_last_or_first_box():
    assert parse_vote("\\boxed{1} no wait \\boxed{2}", 4).player == 2
    assert parse_vote("\\boxed{1} no wait \\boxed{2}", 4, which="first").player == 1
    assert "not in a game of 4" in parse_vote("\\boxed{5}", 4).reason


# ---------------------------------------------------------------- settings


def test_settings_defaults_follow_the_paper_and_bad_values_name_the_key():
    s = SpySettings()
    assert (s.civilians, s.rounds, s.decision, s.decision_samples) == (4, 2, "civilians_vote", 8)
    assert (s.beta, s.lam, s.rae_alpha, s.spo_rho, s.schedule, s.format_shaping) == (
        0.1,
        0.1,
        0.95,
        0.95,
        "iterative",
        False,
    )
    assert (s.acc_to_clue, s.na_to_clue, s.err_to_decision, s.na_to_decision, s.min_phase_steps) == (
        0.9,
        0.1,
        0.4,
        0.5,
        5,
    )
    with pytest.raises(OptionError, match="civilians=9"):
        SpySettings(civilians=9)
    with pytest.raises(OptionError, match="rae_alpha=1.0"):
        SpySettings(rae_alpha=1.0)
    with pytest.raises(OptionError, match="decision_samples=0"):
        SpySettings(decision_samples=0)


# ---------------------------------------------------------------- rewards


def test_clue_rewards_by_hand():
    # 5 players, spy in seat 2; votes received v = [0, 2, 1, 0, 0]
    r = clue_rewards([0, 2, 1, 0, 0], spy_seat=2, beta=0.1, lam=0.1)
    # v_c_bar = (0 + 1 + 0 + 0) / 4 = 0.25, gap = 1.75
    assert r[1] == pytest.approx(-0.175)  # -0.1 * 1.75
    assert r[0] == pytest.approx(0.1 / 4 * 1.75 + 0.1 * 0.25)  # 0.06875
    assert r[2] == pytest.approx(0.1 / 4 * 1.75 - 0.1 * 0.75)  # -0.03125
    assert r[3] == r[4] == r[0]
    assert sum(r) == pytest.approx(0.0, abs=1e-12)
    assert spy_caught([0, 2, 1, 0, 0], 2) and not spy_caught([0, 1, 1, 0, 0], 2) and not spy_caught([0] * 5, 2)


def test_votes_are_ballots_worth_one_over_g():
    s = settings(decision_samples=4)
    games, _ = play(ScriptedEngine(), s, n_games=1)
    g = games[0]
    voters = g.voters()
    for t in g.vote_turns():  # rewrite the ballots: voter A: 2, 2, N/A, invalid; others: spy
        t.parsed = [2, 2, "N/A", None][t.sample] if t.player == voters[0] else g.spy_seat
    v = votes_received(g)
    expected = [0.0] * g.n_players
    expected[1] += 0.5
    expected[g.spy_seat - 1] += len(voters) - 1
    assert v == pytest.approx(expected)


@pytest.mark.parametrize("decision", ["civilians_vote", "observer"])
@pytest.mark.parametrize(
    "clue, vote",
    [
        (oracle_clue, oracle_vote),
        (copying_spy_clue, oracle_vote),
        (oracle_clue, random_vote),
        (copying_spy_clue, abstain_vote),
        (silent_clue, random_vote),
    ],
)
def test_clue_rewards_sum_to_zero_in_every_game(decision, clue, vote):
    s = settings(decision=decision)
    games, _ = play(ScriptedEngine(clue, vote), s, n_games=6)
    for g in games:
        sc = score_game(g)
        assert sum(sc.clue) == pytest.approx(0.0, abs=1e-12)
        assert sc.spy_reward + s.civilians * sc.civilian_reward == pytest.approx(0.0, abs=1e-12)
        assert len(sc.decision) == len(g.vote_turns()) == len(g.voters()) * s.decision_samples


def test_oracle_players_catch_the_spy_and_a_copying_spy_escapes():
    s = settings()
    games, _ = play(ScriptedEngine(oracle_clue, oracle_vote), s, n_games=4)
    for g in games:
        sc = score_game(g)
        assert sc.caught and sc.spy_reward < 0 < sc.civilian_reward
        assert all(r == 1.0 for r in sc.decision)  # every civilian names the spy
    # a spy that repeats what it heard is only exposed when it must speak first
    games, _ = play(ScriptedEngine(copying_spy_clue, oracle_vote), s, n_games=8)
    for g in games:
        assert score_game(g).caught == (g.spy_seat == 1)


class SceneOracle:
    """Players on real scene pairs (games.scenes) who know each pair's record: a civilian
    names the first changed object as it looks in its picture; the spy does the same from
    its own (so it names the edited object); a civilian votes for the first player whose
    clue contradicts its picture, else N/A. A player only ever reads its own image."""

    def __init__(self, pairs):
        self.half_of = {}  # image bytes -> (record, "objects" | "modified_objects")
        for pair in pairs:
            original, modified = pair.load_images()
            self.half_of[original.tobytes()] = (pair.record, "objects")
            self.half_of[modified.tobytes()] = (pair.record, "modified_objects")

    def describe(self, image) -> str:
        record, half = self.half_of[image.tobytes()]
        obj = record[half][record["changed_ids"][0]]
        return f"the object at x={obj['position'][0]:.0f} is a {obj['color']} {obj['shape']}"

    def clue(self, p: Prompt, k: int) -> str:
        return f"Looking at the changed spot. \\boxed{{{self.describe(p.image)}}}"

    def vote(self, p: Prompt, k: int) -> str:
        mine = self.describe(p.image)
        odd = sorted({s for _, s, c in p.clues if c != mine and s != p.seat})
        return f"\\boxed{{{odd[0]}}}" if odd else "\\boxed{N/A}"


def test_an_oracle_naming_a_changed_object_catches_the_spy_on_real_scene_pairs(tmp_path):
    from games.pairs import load_pairs, write_pair
    from games.scenes import make_scene_pair

    for seed in range(3):
        made = make_scene_pair(seed, width=160, height=120)
        write_pair(
            tmp_path,
            f"scene{seed}",
            png_bytes(made.original),
            png_bytes(made.modified),
            {**made.record, "base": f"scene{seed}"},
        )
    pairs = load_pairs(tmp_path).pairs
    assert len(pairs) == 3
    oracle = SceneOracle(pairs)
    s = settings()
    games = []
    for gid in range(6):
        index, spy = game_plan(len(pairs), s.players, 0, gid)
        games.append(new_game(gid, pairs[index], spy, s))
    play_games(ScriptedEngine(oracle.clue, oracle.vote), games, SamplingParams(temperature=1.0, seed=1))
    for g in games:
        sc = score_game(g)
        spy_clues = {t.parsed for t in g.clue_turns() if t.player == g.spy_seat}
        civ_clues = {t.parsed for t in g.clue_turns() if t.player != g.spy_seat}
        assert len(spy_clues) == len(civ_clues) == 1 and spy_clues != civ_clues  # the edit shows in the clue
        assert sc.caught and sum(sc.clue) == pytest.approx(0.0, abs=1e-12)
        # every civilian's ballots go to the spy: v_s = n_c, v_c = 0 -> r_spy = -beta * n_c
        assert sc.spy_reward == pytest.approx(-s.beta * s.civilians)
        assert sc.civilian_reward == pytest.approx(s.beta / s.civilians * s.civilians)
        assert all(r == 1.0 for r in sc.decision)


def png_bytes(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_decision_rewards_and_group_normalisation():
    s = settings(decision_samples=4)
    games, _ = play(ScriptedEngine(oracle_clue, random_vote), s, n_games=3)
    for g in games:
        for t, r in zip(g.vote_turns(), score_game(g).decision):
            assert r == (1.0 if t.parsed == g.spy_seat else -0.5 if t.parsed == "N/A" else -1.0)
    # (r - mean) / (std + eps), std with Bessel's correction
    a = group_normalise([1.0, -1.0, -0.5, 1.0], eps=1e-4)
    std = math.sqrt((0.875**2 + 1.125**2 + 0.625**2 + 0.875**2) / 3)
    assert a == pytest.approx(
        [0.875 / (std + 1e-4), -1.125 / (std + 1e-4), -0.625 / (std + 1e-4), 0.875 / (std + 1e-4)]
    )
    assert group_normalise([1.0, 1.0, 1.0], 1e-4) == [0.0, 0.0, 0.0] and group_normalise([1.0], 1e-4) == [0.0]
    torch = pytest.importorskip("torch")
    from vlrl.algo.advantages import group_advantages

    assert a == pytest.approx(group_advantages(torch.tensor([1.0, -1.0, -0.5, 1.0]), 4).tolist(), abs=1e-6)


def test_format_shaping_is_off_by_default():
    games, _ = play(ScriptedEngine(silent_clue, random_vote), settings(), n_games=2)
    plain = [score_game(g).decision for g in games]
    shaped_settings = settings(format_shaping=True, format_weight=0.2)
    games, _ = play(ScriptedEngine(silent_clue, random_vote), shaped_settings, n_games=2)
    for g, raw in zip(games, plain):
        for t, r, r0 in zip(g.vote_turns(), score_game(g).decision, raw):
            assert r == pytest.approx(r0 + (0.2 if t.valid else -0.2))


def test_rae_baselines_by_hand():
    b = RoleBaselines(alpha=0.9)
    after = b.update(spy_reward=-0.175, civilian_reward=0.04375)
    assert after == pytest.approx({"spy": -0.0175, "civilian": 0.004375})  # 0.9 * 0 + 0.1 * r
    after = b.update(spy_reward=0.2, civilian_reward=-0.05)
    assert after == pytest.approx({"spy": 0.9 * -0.0175 + 0.02, "civilian": 0.9 * 0.004375 - 0.005})
    assert after == pytest.approx({"spy": 0.00425, "civilian": -0.0010625})
    state = b.state_dict()
    c = RoleBaselines(alpha=0.9)
    c.load_state_dict(state)
    assert c.b == b.b and c.games == 2


# ---------------------------------------------------------------- Iterative-SPO


def feed(sched, metrics):
    """Feed (accuracy, na) per step; returns the steps after which the phase switched."""
    switched = []
    for step, (acc, na) in enumerate(metrics, start=1):
        if sched.update(step, acc, na):
            switched.append((step, sched.phase))
    return switched


def test_spo_switches_exactly_when_the_emas_cross():
    s = settings(spo_rho=0.5, min_phase_steps=2)
    sched = PhaseScheduler(s)
    assert sched.phase == "decision" and sched.trains("decision") and not sched.trains("clue")
    # acc = 1: acc_ema 0.5, 0.75, 0.875, 0.9375 -> crosses 0.9 after step 4
    # then acc = 0: acc_ema 0.46875 (1 - acc_ema >= 0.4, but 1 step in phase < K_min), 0.234 -> back after step 6
    assert feed(sched, [(1.0, 0.0)] * 4 + [(0.0, 0.0)] * 2) == [(4, "clue"), (6, "decision")]
    assert sched.acc_ema == pytest.approx(0.234375)


def test_spo_respects_k_min_and_the_na_thresholds():
    # perfect accuracy from step 1, but K_min = 6 holds the decision phase until step 6
    sched = PhaseScheduler(settings(spo_rho=0.5, min_phase_steps=6))
    assert feed(sched, [(1.0, 0.0)] * 7) == [(6, "clue")]
    # an N/A rate above na_to_clue keeps training the decision: na_ema 0.15, 0.225, ... > 0.1
    sched = PhaseScheduler(settings(spo_rho=0.5, min_phase_steps=1))
    assert feed(sched, [(1.0, 0.3)] * 10) == []
    # in the clue phase, na_ema >= 0.5 sends it back even with perfect accuracy
    sched = PhaseScheduler(settings(spo_rho=0.5, min_phase_steps=1))
    assert feed(sched, [(1.0, 0.0)] * 4) == [(4, "clue")]
    # na_ema: 0.5*0 + 0.5*0.4 = 0.2, 0.3, 0.35 ... never 0.5 with na 0.4 -> stays; na 1.0 -> 0.6 at once
    assert feed(sched, [(1.0, 0.4)] * 3 + [(1.0, 1.0)]) == [(4, "decision")]
    # thresholds are settings
    sched = PhaseScheduler(settings(spo_rho=0.5, min_phase_steps=1, acc_to_clue=0.7))
    assert feed(sched, [(1.0, 0.0)] * 2) == [(2, "clue")]  # 0.75 >= 0.7


def test_spo_thresholds_are_inclusive():
    # rho = 0.5 keeps every EMA exact in binary, so each comparison lands on its boundary
    # acc_ema 0.5 >= acc_to_clue 0.5 and na_ema 0.25 <= na_to_clue 0.25: switch at once
    sched = PhaseScheduler(settings(spo_rho=0.5, min_phase_steps=1, acc_to_clue=0.5, na_to_clue=0.25))
    assert feed(sched, [(1.0, 0.5)]) == [(1, "clue")]
    # acc_ema 0.5 -> 0.25: 1 - acc_ema = 0.75 ... choose err_to_decision = 0.75 to sit on it
    sched = PhaseScheduler(
        settings(spo_rho=0.5, min_phase_steps=1, acc_to_clue=0.5, na_to_clue=0.25, err_to_decision=0.75)
    )
    assert feed(sched, [(1.0, 0.5), (0.0, 0.25)]) == [(1, "clue"), (2, "decision")]
    # na_ema 0.25 -> 0.5 >= na_to_decision 0.5 (accuracy unchanged, so only N/A can send it back)
    sched = PhaseScheduler(
        settings(
            spo_rho=0.5, min_phase_steps=1, acc_to_clue=0.5, na_to_clue=0.25, err_to_decision=0.9, na_to_decision=0.5
        )
    )
    assert feed(sched, [(1.0, 0.5), (1.0, 0.75)]) == [(1, "clue"), (2, "decision")]
    # just short of each boundary: no switch
    sched = PhaseScheduler(settings(spo_rho=0.5, min_phase_steps=1, acc_to_clue=0.5, na_to_clue=0.25))
    assert feed(sched, [(0.99, 0.5)]) == [] and feed(sched, [(1.0, 0.6)]) == []


def test_spo_paper_defaults_switch_after_45_perfect_steps():
    # acc_ema = 1 - 0.95^t first reaches 0.9 at t = 45 (0.95^44 = 0.1047, 0.95^45 = 0.0994)
    sched = PhaseScheduler(settings())
    assert feed(sched, [(1.0, 0.0)] * 50) == [(45, "clue")]
    # back in the clue phase: with accuracy 0 the error EMA needs 1 - 0.9006 * 0.95^k >= 0.4,
    # k = 8 (0.9006 * 0.95^8 = 0.598), beyond K_min = 5
    sched = PhaseScheduler(settings())
    feed(sched, [(1.0, 0.0)] * 45)
    assert feed(sched, [(0.0, 0.0)] * 10) == [(8, "decision")]


def test_released_and_alternate_schedules():
    for schedule, both in [("alternate", False), ("alternate_both", True)]:
        sched = PhaseScheduler(settings(schedule=schedule))
        phases = []
        for step in range(4):
            phases.append(sched.phase)
            assert sched.trains("clue") == (both or sched.phase == "clue")
            assert sched.update(step, 0.0, 1.0) == []  # alternating is not news
        assert phases == ["decision", "clue", "decision", "clue"]


def test_scheduler_state_round_trips():
    a = PhaseScheduler(settings(spo_rho=0.5, min_phase_steps=1))
    feed(a, [(1.0, 0.0)] * 5)
    b = PhaseScheduler(settings(spo_rho=0.5, min_phase_steps=1))
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.state_dict() == a.state_dict()
    assert feed(a, [(0.0, 0.0)] * 3) == feed(b, [(0.0, 0.0)] * 3)


# ---------------------------------------------------------------- the engine and the task


def test_prompts_show_clues_and_own_reasoning_only():
    s = settings(civilians=2, rounds=2, decision_samples=2)
    engine = ScriptedEngine(
        lambda p, k: f"secret thought of player {p.seat} in round {len(p.clues) // 3 + 1} \\boxed{{clue {p.seat}}}"
    )
    games, sampled = play(engine, s, n_games=1)
    g = games[0]
    clue_turns = g.clue_turns()
    assert [(t.round, t.player) for t in clue_turns] == [(r, k) for r in (1, 2) for k in (1, 2, 3)]
    last = clue_turns[-1].prompt  # player 3, round 2
    assert "Round 1, Player 1: clue 1" in last and "Round 2, Player 2: clue 2" in last
    assert "secret thought of player 3 in round 1" in last
    assert "secret thought of player 1" not in last and "secret thought of player 2" not in last
    for smp in sampled:  # the spy sees the modified image, the others (and voters) the original
        image = smp.request[0]["content"][0]["image"]
        assert image is (g.modified if smp.player == g.spy_seat else g.original)
    assert "Your role: SPY" in clue_turns[g.spy_seat - 1].prompt
    assert all("Your role: CIVILIAN" in t.prompt for t in clue_turns if t.player != g.spy_seat)
    votes = g.vote_turns()
    assert {t.player for t in votes} == set(g.voters()) and g.spy_seat not in g.voters()
    assert all(f"secret thought of player {t.player}" in t.prompt for t in votes)


def test_turns_are_batched_across_games():
    s = settings(civilians=3, rounds=2, decision_samples=4)
    engine = ScriptedEngine()
    play(engine, s, n_games=5)
    # one generate call per clue turn (4 seats x 2 rounds) over the 5 games, then one for all votes
    assert engine.calls == [(5, 1, 32)] * 8 + [(5 * 3, 4, 16)]
    engine = ScriptedEngine()
    play(engine, settings(decision="observer"), n_games=5)
    assert engine.calls[-1] == (5, 4, 16)


def test_transcripts_are_json_without_images():
    games, _ = play(ScriptedEngine(oracle_clue, random_vote), settings(), n_games=2)
    for g in games:
        score_game(g)
        g.drop_images()
        row = json.loads(json.dumps(g.to_dict()))
        assert row["pair"] == g.pair.base and row["original"].endswith("_original.png")
        assert [p["role"] for p in row["players"]].count("spy") == 1
        kinds = [t["kind"] for t in row["turns"]]
        assert kinds.count("clue") == 8 and kinds.count("vote") == 3 * 4
        votes = [t for t in row["turns"] if t["kind"] == "vote"]
        assert all((t["prompt"] is None) == (t["sample"] > 0) for t in votes)
        assert sum(row["clue_rewards"]) == pytest.approx(0.0, abs=1e-12)
        for key in ("player", "role", "round", "completion", "parsed", "tokens", "valid"):
            assert key in row["turns"][0]


def test_game_plan_is_deterministic_and_covers_the_pairs():
    plans = [game_plan(5, 4, seed=3, counter=c) for c in range(10)]
    assert plans == [game_plan(5, 4, seed=3, counter=c) for c in range(10)]
    assert sorted(p for p, _ in plans[:5]) == list(range(5)) == sorted(p for p, _ in plans[5:])
    assert {s for _, s in plans} <= set(range(1, 5)) and len({s for _, s in plans}) > 1
    assert plans != [game_plan(5, 4, seed=4, counter=c) for c in range(10)]


def batch_is_consistent(batch, s, games):
    n_voters = 1 if s.decision == "observer" else s.civilians
    assert len(batch.requests) == len(batch.completions) == len(batch.advantages) == len(batch.trainable)
    assert len(batch.requests) == games * (s.players * s.rounds + n_voters)
    for kind, comps, adv, train in zip(batch.kinds, batch.completions, batch.advantages, batch.trainable):
        n = 1 if kind == CLUE else s.decision_samples
        assert len(comps) == len(adv) == len(train) == n
        assert all(math.isfinite(a) for a in adv)
        assert (
            all(t == (batch.phase == ("clue" if kind == CLUE else "decision")) for t in train)
            or s.schedule == "alternate_both"
        )
    assert len(batch.transcripts) == games


def test_spy_task_step_rae_and_phase():
    s = settings(rae_alpha=0.9, schedule="iterative")
    task = SpyGames(local_pairs(), s, seed=0)
    engine = ScriptedEngine(copying_spy_clue, random_vote)
    b_spy = b_civ = 0.0
    for step in range(3):
        batch = task.play_step(engine, SamplingParams(), step, games=3)
        batch_is_consistent(batch, s, 3)
        assert batch.phase == "decision" and batch.metrics["phase"] == 0.0
        # RAE by hand: baselines updated game by game, each game's advantages use its own update
        for g in batch.transcripts:
            roles = g.outcome["role_rewards"]
            b_spy = 0.9 * b_spy + 0.1 * roles["spy"]
            b_civ = 0.9 * b_civ + 0.1 * roles["civilian"]
            assert g.outcome["baselines"] == pytest.approx({"spy": b_spy, "civilian": b_civ})
            want = [g.outcome["clue_rewards"][p.seat - 1] - (b_spy if p.role == SPY else b_civ) for p in g.players]
            assert g.outcome["clue_advantages"] == pytest.approx(want)
        assert (batch.metrics["baseline_spy"], batch.metrics["baseline_civilian"]) == pytest.approx((b_spy, b_civ))
        # each clue request's advantage is its player's; votes are normalised per prompt
        clue_reqs = [i for i, k in enumerate(batch.kinds) if k == CLUE]
        assert len(clue_reqs) == 3 * s.players * s.rounds
        for i in clue_reqs:
            (turn,) = batch.turns[i]
            game = batch.transcripts[batch.game_of[i]]
            assert turn in game.clue_turns() and turn.prompt == batch.requests[i][0]["content"][1]["text"]
            assert batch.advantages[i] == pytest.approx([game.outcome["clue_advantages"][turn.player - 1]])
        for i, k in enumerate(batch.kinds):
            if k == VOTE and len(set(batch.advantages[i])) > 1:
                assert sum(batch.advantages[i]) == pytest.approx(0.0, abs=1e-9)
        assert 0.0 <= batch.metrics["vote_accuracy"] <= 1.0 and batch.metrics["switched"] == 0.0
    state = json.loads(json.dumps(task.state_dict()))
    again = SpyGames(local_pairs(), s, seed=0)
    again.load_state_dict(state)
    assert again.state_dict() == task.state_dict()
    with pytest.raises(UserError, match="another set of image pairs"):
        SpyGames(local_pairs()[:-1], s, seed=0).load_state_dict(state)


def test_spy_task_switches_phase_and_reports_the_event():
    s = settings(spo_rho=0.5, min_phase_steps=2)
    task = SpyGames(local_pairs(), s, seed=1)
    engine = ScriptedEngine(oracle_clue, oracle_vote)  # accuracy 1, N/A 0 every step
    phases, events = [], []
    for step in range(6):
        batch = task.play_step(engine, SamplingParams(), step, games=2)
        batch_is_consistent(batch, s, 2)
        assert batch.metrics["vote_accuracy"] == 1.0 and batch.metrics["na_rate"] == 0.0
        phases.append(batch.phase)
        events += batch.events
    # acc_ema 0.5, 0.75, 0.875, 0.9375: the switch is decided after step 3 and applies from step 4
    assert phases == ["decision"] * 4 + ["clue"] * 2
    assert events == ["phase decision -> clue at step 3 (acc_ema 0.938, na_ema 0.000)"]


def test_released_schedule_trains_both_phases():
    s = settings(schedule="alternate_both")
    task = SpyGames(local_pairs(), s, seed=0)
    batch = task.play_step(ScriptedEngine(), SamplingParams(), 0, games=2)
    assert all(all(t) for t in batch.trainable)


def test_ranks_share_baselines_and_emas_through_reduce_sum():
    """Two ranks in threads with an all-reduce; they must end in the same state as one rank
    that plays all the games."""
    s = settings(rae_alpha=0.9, spo_rho=0.5, min_phase_steps=1)
    barrier = threading.Barrier(2)
    box: dict[int, list[float]] = {}

    def reduce_sum(rank):
        def f(values):
            box[rank] = values
            barrier.wait()
            total = [a + b for a, b in zip(box[0], box[1])]
            barrier.wait()
            return total

        return f

    tasks = [SpyGames(local_pairs(), s, seed=5) for _ in range(2)]
    results: dict[int, list] = {0: [], 1: []}

    def run(rank):
        for step in range(3):
            results[rank].append(
                tasks[rank].play_step(
                    ScriptedEngine(copying_spy_clue, random_vote),
                    SamplingParams(),
                    step,
                    games=2,
                    rank=rank,
                    world=2,
                    reduce_sum=reduce_sum(rank),
                )
            )

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    single = SpyGames(local_pairs(), s, seed=5)
    alone = [
        single.play_step(ScriptedEngine(copying_spy_clue, random_vote), SamplingParams(), step, games=4)
        for step in range(3)
    ]
    assert tasks[0].state_dict() == tasks[1].state_dict()
    for part in ("scheduler", "baselines"):
        assert tasks[0].state_dict()[part] == pytest.approx(single.state_dict()[part])
    for step in range(3):
        ids = [g.game_id for g in results[0][step].transcripts + results[1][step].transcripts]
        assert ids == [g.game_id for g in alone[step].transcripts]
        for key in ("vote_accuracy", "na_rate", "spy_caught_rate", "reward_spy", "acc_ema"):
            assert (
                results[0][step].metrics[key]
                == results[1][step].metrics[key]
                == pytest.approx(alone[step].metrics[key])
            )
        merged = results[0][step].advantages + results[1][step].advantages

        def rounded(advantages):
            return sorted(tuple(round(a, 9) for a in adv) for adv in advantages)

        assert rounded(merged) == rounded(alone[step].advantages)


def test_unloadable_pair_is_skipped_for_the_next():
    pairs = local_pairs(2)

    class Broken(LocalPair):
        def load_images(self):
            raise OSError("truncated file")

    pairs[0] = Broken("bad", Path("bad_original.png"), Path("bad_modified.png"))
    task = SpyGames(pairs, settings(), seed=0)
    batch = task.play_step(ScriptedEngine(), SamplingParams(), 0, games=2)
    assert all(g.pair.base == "p1" for g in batch.transcripts)
    assert any("pair bad skipped: truncated file" in e for e in batch.events)


class ScriptedLLM:
    """A vllm.LLM stand-in: reads each chat-templated prompt and its image as vLLM gets them
    and answers like the scripted players, in vLLM's output shapes."""

    def __init__(self, clue=oracle_clue, vote=oracle_vote):
        self.clue, self.vote = clue, vote
        self.calls: list[tuple[int, int, int]] = []  # (prompts, n, max_tokens)

    def generate(self, prompts, sampling_params, use_tqdm=False):
        from types import SimpleNamespace as NS

        self.calls.append((len(prompts), sampling_params.n, sampling_params.max_tokens))
        outs = []
        for entry in prompts:
            assert "<|image_pad|>" in entry["prompt"] and entry["prompt"].startswith("<|im_start|>")
            (image,) = entry["multi_modal_data"]["image"]
            p = parse_prompt(entry["prompt"], image)
            policy = self.clue if p.kind == CLUE else self.vote
            samples = []
            for k in range(sampling_params.n):
                text = policy(p, k)
                ids = list(range(1, len(text.split()) + 1))
                samples.append(
                    NS(text=text, token_ids=ids, logprobs=[{t: NS(logprob=-0.5)} for t in ids], finish_reason="stop")
                )
            outs.append(NS(prompt_token_ids=[1, 2, 3], outputs=samples))
        return outs


@pytest.mark.parametrize("decision", ["civilians_vote", "observer"])
def test_play_step_through_the_vllm_engine(decision):
    """The game runs on the vLLM engine's adapter: each player's own image goes as
    multi_modal_data, turns use their own token limits and vote groups their sample count."""
    from vlrl.models.tiny import tiny_processor
    from vlrl.rollout.vllm_engine import VLLMEngine

    @dataclass
    class Sampling:  # vllm.SamplingParams' fields that the engine sets
        n: int = 1
        temperature: float = 1.0
        top_p: float = 1.0
        max_tokens: int = 16
        stop: list | None = None
        logprobs: int | None = None
        seed: int | None = None
        logit_bias: dict | None = None

    s = settings(decision=decision)
    llm = ScriptedLLM()
    engine = VLLMEngine(llm, tiny_processor(), sampling_cls=Sampling)
    task = SpyGames(local_pairs(), s, seed=0)
    batch = task.play_step(engine, SamplingParams(temperature=1.0, seed=1), 0, games=3)
    batch_is_consistent(batch, s, 3)
    n_voters = 1 if decision == "observer" else s.civilians
    # clue turns batched across the 3 games (one call per seat and round), then all votes at once
    assert llm.calls == [(3, 1, s.clue_max_new_tokens)] * (s.players * s.rounds) + [
        (3 * n_voters, s.decision_samples, s.vote_max_new_tokens)
    ]
    for comps in batch.completions:
        assert all(c.logprobs == [-0.5] * len(c.token_ids) and c.prompt_ids == [1, 2, 3] for c in comps)
    # truthful players who see their own image catch the spy in every game
    assert batch.metrics["invalid_clue_rate"] == 0.0 and batch.metrics["invalid_vote_rate"] == 0.0
    assert batch.metrics["spy_caught_rate"] == 1.0 and all(g.outcome["spy_caught"] for g in batch.transcripts)


@pytest.fixture(scope="module")
def hf_engine():
    from vlrl.models.tiny import build_tiny_model
    from vlrl.rollout.hf_engine import HFEngine

    model, processor = build_tiny_model("qwen2_vl", seed=0)
    return HFEngine(model, processor)


def test_play_step_with_the_tiny_model(hf_engine):
    s = settings(civilians=2, rounds=1, decision_samples=2, clue_max_new_tokens=8, vote_max_new_tokens=8)
    task = SpyGames(local_pairs(2), s, seed=0)
    batch = task.play_step(hf_engine, SamplingParams(temperature=1.0, seed=0), 0, games=2)
    batch_is_consistent(batch, s, 2)
    for comps in batch.completions:
        for c in comps:
            assert 0 < len(c.token_ids) <= 8 and len(c.logprobs) == len(c.token_ids) and c.prompt_ids
    # random text has no boxed answers: every clue is invalid, every vote too
    assert batch.metrics["invalid_clue_rate"] == 1.0 and batch.metrics["invalid_vote_rate"] == 1.0
    for g in batch.transcripts:
        row = json.loads(json.dumps(g.to_dict()))
        assert all(t["tokens"] <= 8 for t in row["turns"])
        assert sum(row["clue_rewards"]) == pytest.approx(0.0, abs=1e-12)


def test_games_never_imports_the_trainer():
    import subprocess
    import sys

    code = (
        "import sys, games, games.play, games.selfplay; "
        "bad = [m for m in sys.modules if m == 'vlrl.trainer' or m.startswith(('torch', 'transformers'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
