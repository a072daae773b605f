"""Reading clues and votes out of free model text (Vision-Zero, docs/reference.md §7.2).

A model that writes no answer, a truncated answer or nonsense is part of the game: the
parsers never raise on model text, they return a value that says what happened.

- Clue: the text of a `\\boxed{...}` (braces may nest); none -> "No valid clue provided."
- Vote: the boxed answer first, then `<answer>...</answer>` tags; "N/A" or "NA" is an
  abstention; otherwise the first standalone digit 1-9, which must be a seat in the game;
  an answer with no digit but a standalone N/A ("N/A - cannot tell") also abstains;
  anything else is invalid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

NO_CLUE = "No valid clue provided."

Which = Literal["last", "first"]

# `\boxed{` as models write it: one or two backslashes (JSON-escaped text), optional spaces.
_BOXED_OPEN = re.compile(r"\\{1,2}boxed\s*\{")
_ANSWER_CLOSED = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<answer>(.*)", re.DOTALL | re.IGNORECASE)
# A digit with no letter, digit or underscore next to it and not part of a decimal number:
# "3", "Player 3", "(3)", "#3." count; "10", "P3", "3rd", "1.5" do not.
_STANDALONE_DIGIT = re.compile(r"(?<![\w.])([1-9])(?!\w|\.\d)")
_TEXT_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mathbf)\s*\{(.*)\}$", re.DOTALL)
_ABSTAIN = {"N/A", "NA"}
# N/A inside a wordier answer: "N/A" in any case, "NA" only in capitals ("na" is a word part).
_STANDALONE_NA = re.compile(r"(?<![\w/])(?:[Nn]/[Aa]|NA)(?![\w/])")


def boxed_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every closed `\\boxed{...}`, in order; nested braces kept.

    A box the completion never closed (cut off by max_new_tokens) is not an answer.
    """
    spans = []
    pos = 0
    while True:
        m = _BOXED_OPEN.search(text, pos)
        if m is None:
            return spans
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        if depth:  # unclosed: nothing after it can be a complete box either
            return spans
        spans.append((m.start(), i, text[m.end() : i - 1]))
        pos = i


def boxed(text: str, which: Which = "last") -> tuple[int, int, str] | None:
    """The last (or first) non-empty boxed answer as (start, end, content), or None."""
    spans = [s for s in boxed_spans(text) if s[2].strip()]
    if not spans:
        return None
    return spans[-1] if which == "last" else spans[0]


@dataclass(frozen=True)
class Clue:
    text: str  # the boxed sentence, or NO_CLUE
    valid: bool
    reasoning: str  # what the player wrote before its clue (shown back to that player only)


def parse_clue(completion: str, which: Which = "last") -> Clue:
    """The clue of a clue turn; the final answer of a reasoning model comes last by default."""
    found = boxed(completion, which)
    if found is None:
        return Clue(NO_CLUE, False, completion.strip())
    start, _, content = found
    sentence = " ".join(content.split())  # one line in everyone's history
    return Clue(sentence, True, completion[:start].strip())


VoteKind = Literal["player", "abstain", "invalid"]


@dataclass(frozen=True)
class Vote:
    kind: VoteKind
    player: int | None = None  # the accused seat when kind == "player"
    source: str | None = None  # "boxed" or "answer": where the answer was read
    reason: str = ""  # why a vote is invalid

    @property
    def value(self) -> int | str | None:
        """The transcript form: a seat number, "N/A", or None for an invalid vote."""
        if self.kind == "player":
            return self.player
        return "N/A" if self.kind == "abstain" else None


def _answer_content(completion: str, which: Which) -> tuple[str, str] | None:
    found = boxed(completion, which)
    if found is not None:
        return found[2], "boxed"
    tags = [c for c in _ANSWER_CLOSED.findall(completion) if c.strip()]
    if tags:
        return (tags[-1] if which == "last" else tags[0]), "answer"
    m = _ANSWER_OPEN.search(completion)  # an <answer> tag the model never closed
    if m is not None and m.group(1).strip():
        return re.split(r"</?answer>|<think>", m.group(1), flags=re.IGNORECASE)[0], "answer"
    return None


def _normalise(content: str) -> str:
    s = content.strip()
    for _ in range(3):  # \text{N/A}, **3**, "NA." ...
        inner = _TEXT_WRAPPER.match(s)
        if inner:
            s = inner.group(1).strip()
        s = s.strip(" \t\n*_`'\"$").rstrip(".").strip()
    return s


def parse_vote(completion: str, n_players: int, which: Which = "last") -> Vote:
    """A decision turn's vote; seats are 1..n_players (at most 9: votes are single digits)."""
    found = _answer_content(completion, which)
    if found is None:
        return Vote("invalid", reason="no boxed answer or <answer> tags")
    content, source = found
    s = _normalise(content)
    if s.upper() in _ABSTAIN:
        return Vote("abstain", source=source)
    m = _STANDALONE_DIGIT.search(s)
    if m is None and _STANDALONE_NA.search(s):
        return Vote("abstain", source=source)
    if m is None:
        return Vote("invalid", source=source, reason=f"no player number in {content.strip()[:40]!r}")
    seat = int(m.group(1))
    if seat > n_players:
        return Vote("invalid", source=source, reason=f"player {seat} is not in a game of {n_players}")
    return Vote("player", seat, source)
