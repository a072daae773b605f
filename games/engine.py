"""The Who-is-the-Spy game: seats and roles, prompts, the clue and decision stages, transcripts.

One game (docs/reference.md §7.1): `civilians` civilians see the original image, one spy sees the
modified one. Players speak in seat order 1..N for `rounds` rounds; a clue prompt shows the
player its own image, every earlier clue (the boxed sentence only) and its own earlier
reasoning, never anyone else's. Then the decision: each civilian votes privately
(`civilians_vote`, the paper) or one role-less observer shown the original image and all
clues votes (`observer`, the released code); each decision prompt is sampled G times.

`play_games` drives many games at once through a `RolloutEngine`: clue turn t of every game
goes into one generate call (turns are sequential within a game), then every decision prompt
of every game into one more. Images never enter a transcript: it names the pair and paths.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from games.parsing import Clue, Vote, parse_clue, parse_vote
from games.settings import SpySettings
from vlrl.rollout.base import Completion, Request, SamplingParams

CIVILIAN, SPY, OBSERVER = "civilian", "spy", "observer"
CLUE, VOTE = "clue", "vote"

GAME_NAME = '"Who is the Spy?"'


@dataclass
class Player:
    seat: int  # 1-based; also the speaking order
    role: str  # civilian | spy
    image: str  # which image of the pair it sees: original | modified


@dataclass
class Turn:
    player: int  # seat; 0 is the observer
    role: str  # civilian | spy | observer
    kind: str  # clue | vote
    round: int  # clue round 1..R; 0 for a vote
    prompt: str
    completion: str
    parsed: Any  # clue: the boxed sentence (or NO_CLUE); vote: seat, "N/A", or None (invalid)
    valid: bool  # a boxed clue / a vote for a seat or N/A
    tokens: int  # completion length in tokens
    sample: int = 0  # which of the G samples of a decision prompt
    reasoning: str = ""  # clue turns: the text before the boxed clue


@dataclass
class Game:
    """One game's state and, once played, its transcript (`to_dict` is JSON-ready)."""

    game_id: int | str
    pair: Any  # an ImagePair (base, original, modified, record)
    players: list[Player]
    settings: SpySettings
    original: Any = None  # PIL images, loaded for play and dropped afterwards
    modified: Any = None
    turns: list[Turn] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)  # votes received, rewards (games.rewards)

    @property
    def spy_seat(self) -> int:
        return next(p.seat for p in self.players if p.role == SPY)

    @property
    def n_players(self) -> int:
        return len(self.players)

    def player(self, seat: int) -> Player:
        return self.players[seat - 1]

    def image_of(self, seat: int) -> Any:
        return self.modified if self.player(seat).role == SPY else self.original

    def clue_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.kind == CLUE]

    def vote_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.kind == VOTE]

    def voters(self) -> list[int]:
        """Who casts the decision: the civilians' seats, or [0] for the observer."""
        if self.settings.decision == "observer":
            return [0]
        return [p.seat for p in self.players if p.role == CIVILIAN]

    def drop_images(self) -> None:
        self.original = self.modified = None

    def to_dict(self) -> dict[str, Any]:
        """The transcript: images by path; the G samples of a decision prompt share its text,
        written once on sample 0; `reasoning` is left out (it is the completion's start)."""
        turns = []
        for t in self.turns:
            row = dataclasses.asdict(t)
            row.pop("reasoning")
            if t.kind == VOTE and t.sample > 0:
                row["prompt"] = None
            turns.append(row)
        return {
            "game_id": self.game_id,
            "pair": getattr(self.pair, "base", str(self.pair)),
            "original": str(getattr(self.pair, "original", "")),
            "modified": str(getattr(self.pair, "modified", "")),
            "spy": self.spy_seat,
            "players": [dataclasses.asdict(p) for p in self.players],
            "decision": self.settings.decision,
            "turns": turns,
            **self.outcome,
        }


# ---------------------------------------------------------------- set-up


def pair_order(n_pairs: int, seed: int, epoch: int) -> list[int]:
    """A seeded shuffle of the pairs per epoch, so every pair is played equally often."""
    order = list(range(n_pairs))
    random.Random(f"spy-pairs-{seed}-{epoch}").shuffle(order)
    return order


def game_plan(n_pairs: int, n_players: int, seed: int, counter: int) -> tuple[int, int]:
    """(pair index, spy seat) of the game with global counter `counter`: a pure function of
    (seed, counter), so every rank, shard and resumed run agrees on it."""
    if n_pairs < 1:
        raise ValueError("no image pairs to play with")
    epoch, slot = divmod(counter, n_pairs)
    pair_index = pair_order(n_pairs, seed, epoch)[slot]
    spy_seat = random.Random(f"spy-seat-{seed}-{counter}").randrange(n_players) + 1
    return pair_index, spy_seat


def new_game(
    game_id: int | str, pair: Any, spy_seat: int, settings: SpySettings, images: tuple[Any, Any] | None = None
) -> Game:
    """A game with its seats; `images` = (original, modified) PIL images, else loaded from the pair."""
    n = settings.players
    if not 1 <= spy_seat <= n:
        raise ValueError(f"spy seat {spy_seat} is not in 1..{n}")
    players = [
        Player(seat, SPY if seat == spy_seat else CIVILIAN, "modified" if seat == spy_seat else "original")
        for seat in range(1, n + 1)
    ]
    original, modified = images if images is not None else pair.load_images()
    return Game(game_id, pair, players, settings, original, modified)


# ---------------------------------------------------------------- prompts


def _setup_text(game: Game) -> str:
    n, nc = game.n_players, game.n_players - 1
    return (
        f"There are {n} players, numbered 1 to {n}. {nc} of them, the civilians, see the same "
        f"picture. One player, the spy, sees a version of that picture in which a few details "
        f"have been changed; everything else, including where objects are, stays the same."
    )


def _role_text(role: str) -> str:
    if role == SPY:
        return (
            "Your role: SPY. Your picture is the different one, but you do not know which "
            "details were changed. Your goal is not to be voted as the spy.\n"
            "Guidance: describe features the other players most likely see as well, stay "
            "consistent with the clues given so far, and avoid details that may be the "
            "changed ones."
        )
    return (
        "Your role: CIVILIAN. Your picture is the one most players share. Your goal is to help "
        "the civilians find the spy without giving the spy enough to blend in.\n"
        "Guidance: describe one specific feature of your picture that nobody has mentioned yet "
        "(the colour, shape, size, number or position of an object), so that a spy who sees "
        "something different can be told apart."
    )


def _after_text(game: Game) -> str:
    if game.settings.decision == "observer":
        return "After the clue rounds a judge reads all clues and names the spy."
    return "After the clue rounds each civilian votes for the player it believes is the spy."


def _clues_text(game: Game) -> str:
    clues = game.clue_turns()
    if not clues:
        return "Clues so far: none yet."
    lines = [f"Round {t.round}, Player {t.player}: {t.parsed}" for t in clues]
    return "Clues so far:\n" + "\n".join(lines)


def _own_reasoning_text(game: Game, seat: int) -> str:
    if not game.settings.show_own_reasoning:
        return ""
    own = [t for t in game.clue_turns() if t.player == seat and t.reasoning]
    if not own:
        return ""
    lines = [f"Round {t.round}: {t.reasoning}" for t in own]
    return "\n\nYour own earlier reasoning (no one else sees it):\n" + "\n".join(lines)


def _message(image: Any, text: str) -> Request:
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]


def clue_prompt(game: Game, seat: int, round_: int) -> str:
    role = game.player(seat).role
    return (
        f"You are Player {seat} in a game of {GAME_NAME}. {_setup_text(game)}\n\n"
        f"{_role_text(role)}\n\n"
        f"This is clue round {round_} of {game.settings.rounds}; players speak in order 1 to "
        f"{game.n_players}. {_after_text(game)}\n\n"
        f"{_clues_text(game)}{_own_reasoning_text(game, seat)}\n\n"
        "Think it through privately first. Then give your clue: one sentence about your picture "
        "that differs from the clues so far, inside \\boxed{}, for example "
        "\\boxed{The small green cylinder is behind the red cube.}"
    )


def vote_prompt(game: Game, voter: int) -> str:
    """The decision prompt of a civilian (voter = its seat) or of the observer (voter = 0)."""
    n = game.n_players
    answer = (
        f"Reason step by step, then give the spy's player number inside \\boxed{{}}, for "
        f"example \\boxed{{{min(2, n)}}}. If you cannot tell, answer \\boxed{{N/A}}: abstaining "
        f"costs less than a wrong vote."
    )
    if voter == 0:
        return (
            f"You are the judge of a game of {GAME_NAME}. {_setup_text(game)} The picture above "
            f"is the civilians' picture. Each player gave clues about their own picture; the "
            f"civilians try to be specific, the spy tries to blend in.\n\n"
            f"{_clues_text(game)}\n\n"
            f"Compare every clue with the picture and find the player whose clues do not fit. "
            f"{answer}"
        )
    return (
        f"You are Player {voter} in a game of {GAME_NAME}. {_setup_text(game)}\n\n"
        f"{_role_text(CIVILIAN).splitlines()[0]}\n\n"
        f"The clue rounds are over. Now you vote privately for the player you believe is the "
        f"spy; you are not the spy, so do not vote for yourself.\n\n"
        f"{_clues_text(game)}{_own_reasoning_text(game, voter)}\n\n"
        f"Look for clues that contradict your picture or stay suspiciously vague. {answer}"
    )


def clue_request(game: Game, seat: int, round_: int) -> tuple[Request, str]:
    text = clue_prompt(game, seat, round_)
    return _message(game.image_of(seat), text), text


def vote_request(game: Game, voter: int) -> tuple[Request, str]:
    text = vote_prompt(game, voter)
    image = game.original if voter == 0 else game.image_of(voter)
    return _message(image, text), text


# ---------------------------------------------------------------- playing


@dataclass
class Sampled:
    """One sampled prompt: which game and turn it belongs to, and its completions."""

    game: int  # index into the games list
    kind: str  # clue | vote
    player: int  # seat, 0 for the observer
    round: int
    request: Request
    completions: list[Completion]
    turns: list[Turn]  # the transcript turns, one per completion


def _with(params: SamplingParams, n: int, max_new_tokens: int, call: int) -> SamplingParams:
    seed = None if params.seed is None else params.seed + 7919 * call  # a fresh stream per call
    return dataclasses.replace(params, n=n, max_new_tokens=max_new_tokens, seed=seed)


def _check(out: list[list[Completion]], requests: int, n: int) -> None:
    if len(out) != requests or any(len(group) != n for group in out):
        got = [len(g) for g in out]
        raise RuntimeError(f"rollout engine returned {got} completions for {requests} requests x {n}")


def play_games(
    engine: Any, games: Sequence[Game], params: SamplingParams, on_turn: Callable[[], None] | None = None
) -> list[Sampled]:
    """Play the clue stage and the decision stage of every game; returns every sampled
    prompt in the order it was sampled (clue turns, then decision prompts). `on_turn` is
    called after each turn's generate call (rounds x players clue turns, then the votes)."""
    if not games:
        return []
    settings = games[0].settings
    sampled: list[Sampled] = []
    call = 0
    n_players = settings.players
    for round_ in range(1, settings.rounds + 1):
        for seat in range(1, n_players + 1):
            built = [clue_request(g, seat, round_) for g in games]
            out = engine.generate([r for r, _ in built], _with(params, 1, settings.clue_max_new_tokens, call))
            call += 1
            _check(out, len(games), 1)
            if on_turn is not None:
                on_turn()
            for gi, (game, (request, text), group) in enumerate(zip(games, built, out)):
                c = group[0]
                clue: Clue = parse_clue(c.text, settings.answer_box)
                turn = Turn(
                    seat,
                    game.player(seat).role,
                    CLUE,
                    round_,
                    text,
                    c.text,
                    clue.text,
                    clue.valid,
                    len(c.token_ids),
                    reasoning=clue.reasoning,
                )
                game.turns.append(turn)
                sampled.append(Sampled(gi, CLUE, seat, round_, request, group, [turn]))

    G = settings.decision_samples
    slots = [(gi, voter) for gi, g in enumerate(games) for voter in g.voters()]
    built = [vote_request(games[gi], voter) for gi, voter in slots]
    out = engine.generate([r for r, _ in built], _with(params, G, settings.vote_max_new_tokens, call))
    _check(out, len(slots), G)
    if on_turn is not None:
        on_turn()
    for (gi, voter), (request, text), group in zip(slots, built, out):
        game = games[gi]
        role = OBSERVER if voter == 0 else game.player(voter).role
        turns = []
        for k, c in enumerate(group):
            vote: Vote = parse_vote(c.text, game.n_players, settings.answer_box)
            turn = Turn(
                voter, role, VOTE, 0, text, c.text, vote.value, vote.kind != "invalid", len(c.token_ids), sample=k
            )
            game.turns.append(turn)
            turns.append(turn)
        sampled.append(Sampled(gi, VOTE, voter, 0, request, group, turns))
    return sampled
