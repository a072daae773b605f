"""Who is the spy?: play one game with the model on a bundled or uploaded image pair.

The game is the training game, composed from games/: `new_game` seats the players,
`play_games` runs the clue rounds and the decision through the rollout engine,
`score_game` counts the votes and computes the rewards, `Game.to_dict` is the transcript.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from app.guard import guard
from app.services import DemoServices
from app.uploads import REPO_DATA, BadUpload, file_path, load_image_upload

SPY_PAIRS = REPO_DATA / "spy_pairs"
MAX_CIVILIANS = 8  # votes are one digit: at most 9 players
MAX_TURN_TOKENS = 2048
IMAGE_HEIGHT = 320  # pixels: both images whole, side by side


class _ProgressEngine:
    """A RolloutEngine that reports each generate call (one per clue turn, one for the votes)."""

    def __init__(self, engine: Any, progress: Any, total_calls: int) -> None:
        self.engine = engine
        self.progress = progress
        self.total = total_calls
        self.calls = 0

    def generate(self, requests, params):
        what = "votes" if self.calls == self.total - 1 else f"clue {self.calls + 1} of {self.total - 1}"
        self.progress(0.05 + 0.9 * self.calls / self.total, desc=f"{what}: generating")
        self.calls += 1
        return self.engine.generate(requests, params)

    def sync_weights(self, model: Any) -> None:
        self.engine.sync_weights(model)

    def sleep(self) -> None:
        self.engine.sleep()

    def wake_up(self) -> None:
        self.engine.wake_up()


def bundled_pairs(folder: Path | None = None):
    """The pairs of the bundled (or given) folder; an empty report when it does not exist."""
    from games.pairs import PairsReport, load_pairs

    folder = folder or SPY_PAIRS
    if not folder.is_dir():
        return PairsReport()
    return load_pairs(folder, decode=False)


def uploaded_pair(original_file, modified_file):
    """An ImagePair and its two images from two uploads; BadUpload says what is wrong."""
    from games.pairs import ImagePair

    paths = [file_path(original_file), file_path(modified_file)]
    if None in paths:
        raise BadUpload(
            "Upload both images of the pair (the civilians' original and the spy's modified one), "
            "or pick a bundled pair."
        )
    original = load_image_upload(paths[0], what="original image")
    modified = load_image_upload(paths[1], what="modified image")
    if original.size != modified.size:
        raise BadUpload(
            f"The two images differ in size ({original.size[0]}x{original.size[1]} and "
            f"{modified.size[0]}x{modified.size[1]}): a pair is one picture and an edited copy of it."
        )
    return ImagePair("upload", Path(paths[0]), Path(paths[1])), (original, modified)


def play_one_game(
    services: DemoServices,
    pair,
    images,
    settings,
    *,
    temperature: float,
    seed: int | None,
    spy_seat: int | None,
    progress=None,
):
    """Play and score one game; returns the played games.engine.Game (transcript in to_dict)."""
    from games.engine import game_plan, new_game, play_games
    from games.rewards import score_game
    from vlrl.rollout.base import SamplingParams

    if spy_seat is None:  # the seat training would draw for this seed
        spy_seat = game_plan(1, settings.players, seed or 0, 0)[1]
    game = new_game("demo", pair, spy_seat, settings, images=images)
    engine = services.engine
    if progress is not None:
        engine = _ProgressEngine(engine, progress, settings.rounds * settings.players + 1)
    with services.model_lock:
        play_games(engine, [game], SamplingParams(temperature=temperature, seed=seed))
    score_game(game)
    return game


# --------------------------------------------------------------------------- what the page shows


def _said(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " ..."


def clue_rows(game) -> list[list[Any]]:
    """One row per clue turn: the boxed clue the others see, and what the player wrote."""
    return [
        [
            t.round,
            t.player,
            t.role,
            t.parsed if t.valid else f"(no boxed clue) {t.parsed}",
            _said(t.completion),
            t.tokens,
        ]
        for t in game.clue_turns()
    ]


def vote_rows(game) -> list[list[Any]]:
    rows = []
    for t, reward in zip(game.vote_turns(), game.outcome["decision_rewards"]):
        ballot = f"player {t.parsed}" if isinstance(t.parsed, int) else ("abstains (N/A)" if t.valid else "invalid")
        voter = "observer" if t.player == 0 else f"player {t.player}"
        rows.append([voter, t.sample + 1, ballot, round(reward, 3) + 0.0, _said(t.completion)])
    return rows


def outcome_markdown(game) -> str:
    o = game.outcome
    spy = game.spy_seat
    caught = "**caught**" if o["spy_caught"] else "**not caught** (the spy did not draw strictly the most votes)"
    changed = getattr(game.pair, "differences", [])
    lines = [f"The spy was **player {spy}** (sees the modified image): {caught}."]
    if changed:
        lines.append("What differs: " + "; ".join(changed) + ".")
    lines += ["", "| player | role | votes received | clue reward |", "|---|---|---|---|"]
    for p in game.players:
        lines.append(
            f"| {p.seat} | {p.role} | {o['votes_received'][p.seat - 1]:.2f} | "
            f"{o['clue_rewards'][p.seat - 1] + 0.0:+.4f} |"
        )
    roles = o["role_rewards"]
    lines += [
        "",
        (
            f"Role rewards: spy {roles['spy'] + 0.0:+.4f}, civilians (mean) {roles['civilian'] + 0.0:+.4f}. "
            f"Decision rewards: +1 for the spy, -0.5 for N/A, -1 wrong or invalid."
        ),
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the tab


def build_spy_tab(services: DemoServices, pairs_dir: str | None = None) -> None:
    from games.settings import SpySettings

    report = bundled_pairs(Path(pairs_dir) if pairs_dir else None)
    by_base = {p.base: p for p in report.pairs}
    defaults = SpySettings()
    turn_tokens = min(services.defaults.max_new_tokens, defaults.clue_max_new_tokens)
    first = next(iter(by_base.values()), None)
    try:
        shown = [load_image_upload(str(p)) for p in (first.original, first.modified)] if first else [None, None]
    except BadUpload:
        shown = [None, None]
    with gr.Row():
        with gr.Column(scale=1):
            pair_name = gr.Dropdown(
                ["", *by_base], value=next(iter(by_base), ""), label="bundled image pair", elem_id="spy-pair"
            )
            with gr.Accordion("...or upload a pair", open=not by_base):
                # no file_types filter: a wrong file gets the demo's own message in the page
                original_file = gr.File(label="original (civilians)", type="filepath", elem_id="spy-original")
                modified_file = gr.File(label="modified (spy)", type="filepath", elem_id="spy-modified")
            civilians = gr.Slider(
                2,
                MAX_CIVILIANS,
                value=defaults.civilians,
                step=1,
                label="civilians (plus one spy)",
                elem_id="spy-civilians",
            )
            rounds = gr.Slider(1, 4, value=defaults.rounds, step=1, label="clue rounds", elem_id="spy-rounds")
            decision = gr.Radio(
                ["civilians_vote", "observer"],
                value=defaults.decision,
                label="who votes (paper: the civilians; released code: one observer)",
            )
            votes_per = gr.Slider(1, 8, value=1, step=1, label="votes sampled per voter (G)")
            max_tokens = gr.Slider(
                8, MAX_TURN_TOKENS, value=turn_tokens, step=8, label="max new tokens per turn", elem_id="spy-tokens"
            )
            temperature = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="temperature")
            with gr.Row():
                seed = gr.Number(value=services.defaults.seed, precision=0, label="seed (fixed: same game)")
                spy_seat = gr.Number(value=0, precision=0, label="spy's seat (0 = drawn from the seed)")
            play = gr.Button("Play", variant="primary", elem_id="play")
        with gr.Column(scale=2):
            status = gr.Markdown(
                "Pick a pair and press **Play**."
                if by_base
                else "No bundled pairs found: upload an original and a modified image.",
                elem_id="spy-status",
            )
            with gr.Row():
                original_view = gr.Image(
                    shown[0],
                    label="civilians see",
                    type="pil",
                    interactive=False,
                    format="png",
                    elem_id="spy-original-view",
                    height=IMAGE_HEIGHT,
                )
                modified_view = gr.Image(
                    shown[1],
                    label="the spy sees",
                    type="pil",
                    interactive=False,
                    format="png",
                    elem_id="spy-modified-view",
                    height=IMAGE_HEIGHT,
                )
            outcome = gr.Markdown(elem_id="spy-outcome")
            clues = gr.Dataframe(
                headers=["round", "player", "role", "clue", "what it wrote", "tokens"],
                label="clues",
                interactive=False,
                wrap=True,
                elem_id="spy-clues",
                column_widths=["8%", "8%", "10%", "32%", "34%", "8%"],
            )
            votes = gr.Dataframe(
                headers=["voter", "sample", "vote", "decision reward", "what it wrote"],
                label="votes",
                interactive=False,
                wrap=True,
                elem_id="spy-votes",
                column_widths=["12%", "9%", "14%", "13%", "52%"],
            )
            transcript_file = gr.File(label="transcript (JSON)", interactive=False)

    def on_play(
        name,
        original_v,
        modified_v,
        civilians_v,
        rounds_v,
        decision_v,
        votes_v,
        max_tokens_v,
        temperature_v,
        seed_v,
        spy_v,
        progress=gr.Progress(),
    ) -> dict:  # noqa: B008 - Gradio's idiom
        from vlrl.options import OptionError

        try:
            if file_path(original_v) or file_path(modified_v):
                pair, images = uploaded_pair(original_v, modified_v)
            elif name in by_base:
                pair = by_base[name]
                images = tuple(
                    load_image_upload(str(p), what=f"pair image of {name}") for p in (pair.original, pair.modified)
                )
            else:
                raise BadUpload("Pick a bundled pair or upload two images.")
            tokens = int(min(max(max_tokens_v or 1, 1), MAX_TURN_TOKENS))
            settings = SpySettings(
                civilians=int(civilians_v),
                rounds=int(rounds_v),
                decision=decision_v,
                decision_samples=int(votes_v),
                clue_max_new_tokens=tokens,
                vote_max_new_tokens=tokens,
            )
            seat = int(spy_v or 0)
            if not 0 <= seat <= settings.players:
                raise BadUpload(f"The spy's seat must be 0 (drawn) or 1..{settings.players}.")
        except (BadUpload, OptionError) as exc:
            gr.Warning(str(exc))
            return {status: f"⚠️ {exc}"}
        game = play_one_game(
            services,
            pair,
            images,
            settings,
            temperature=float(max(temperature_v or 0, 0)),
            seed=int(seed_v or 0),
            spy_seat=seat or None,
            progress=progress,
        )
        path = services.scratch("game-") / "transcript.json"
        path.write_text(json.dumps(game.to_dict(), indent=1, default=str), encoding="utf-8")
        n_valid = sum(t.valid for t in game.clue_turns())
        played_on = (
            f"the uploaded pair ({Path(pair.original).name} / {Path(pair.modified).name})"
            if pair.base == "upload"
            else f"pair **{pair.base}**"
        )
        return {
            status: (
                f"Game over: {settings.players} players, {settings.rounds} round(s); {n_valid} of "
                f"{len(game.clue_turns())} clues were boxed. Played on {played_on}."
            ),
            original_view: images[0],
            modified_view: images[1],
            outcome: outcome_markdown(game),
            clues: clue_rows(game),
            votes: vote_rows(game),
            transcript_file: str(path),
        }

    def on_pair(name) -> dict:
        if name not in by_base:
            return {}
        pair = by_base[name]
        images = [load_image_upload(str(p), what=f"pair image of {name}") for p in (pair.original, pair.modified)]
        changed = "; ".join(pair.differences)
        # picking a bundled pair drops uploads, which would otherwise win when Play is pressed
        return {
            original_file: None,
            modified_file: None,
            original_view: images[0],
            modified_view: images[1],
            status: f"Pair **{name}**" + (f" (what differs: {changed})" if changed else "") + ": press **Play**.",
        }

    def on_upload(original_v, modified_v) -> dict:
        """Preview each uploaded half as the players will see it; uploads replace the bundled pair."""
        out: dict = {pair_name: ""}
        notes = []
        for value, view, what in (
            (original_v, original_view, "original image"),
            (modified_v, modified_view, "modified image"),
        ):
            out[view] = None  # a half not uploaded yet shows nothing, not the bundled pair's
            if file_path(value):
                try:
                    out[view] = load_image_upload(file_path(value), what=what)
                except BadUpload as exc:
                    notes.append(f"⚠️ {exc}")
        missing = [w for v, w in ((original_v, "the original"), (modified_v, "the modified image")) if not file_path(v)]
        if not notes:
            notes.append("Uploaded pair: " + (f"now upload {missing[0]}." if missing else "press **Play**."))
        out[status] = " ".join(notes)
        return out

    pair_name.input(
        guard(on_pair, status),
        [pair_name],
        [original_file, modified_file, original_view, modified_view, status],
        api_name=False,
    )
    for upload in (original_file, modified_file):
        upload.upload(
            guard(on_upload, status),
            [original_file, modified_file],
            [pair_name, original_view, modified_view, status],
            api_name=False,
        )
    play.click(
        guard(on_play, status),
        [
            pair_name,
            original_file,
            modified_file,
            civilians,
            rounds,
            decision,
            votes_per,
            max_tokens,
            temperature,
            seed,
            spy_seat,
        ],
        [status, original_view, modified_view, outcome, clues, votes, transcript_file],
        api_name="play_spy",
        concurrency_id="model",
        concurrency_limit=1,
    )
