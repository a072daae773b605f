"""A VLM judge that scores [reference, generated] chart images with ChartMimic's rubric.

The judge runs on any backend with `generate(list_of_chat_messages) -> list[str]`; the
RL engine's rollout engines provide one. Its reply must end with "Score: N" (0-100).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from rewards.base import RewardInput, RewardOutput, register

RUBRIC = (
    "You are an expert in data visualisation. The first image is a reference chart; the second "
    "was drawn by code written to reproduce it. Compare them and score the reproduction out of 100 "
    "with this rubric:\n"
    "- Chart types (20 points): the same kinds of plots (bar, line, scatter, pie ...) for every element.\n"
    "- Layout (10 points): the same arrangement of subplots.\n"
    "- Text content (20 points): the same titles, axis labels, tick labels, legend entries and annotations.\n"
    "- Data (20 points): the same data values, trends and ranges.\n"
    "- Style (20 points): the same colours, markers, line styles, fonts and other visual attributes.\n"
    "- Clarity (10 points): nothing overlapping or cut off; the chart is as readable as the reference.\n"
    "Explain briefly, point by point, then end with one line of the form 'Score: N' where N is the total."
)

_SCORE = re.compile(r"score\s*[:：]\s*\**\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def build_judge_messages(reference_image: Any, generated_image: Any) -> list[dict[str, Any]]:
    """Chat messages (HF processor format) showing [reference, generated] and the rubric."""
    return [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": reference_image},
                {"type": "image", "image": generated_image},
                {"type": "text", "text": RUBRIC},
            ],
        }
    ]


def parse_judge_score(text: str) -> float | None:
    """The last 'Score: N' in a judge reply, clamped to [0, 100]; None when there is none."""
    if not isinstance(text, str):
        return None
    matches = _SCORE.findall(text)
    if not matches:
        return None
    return max(0.0, min(100.0, float(matches[-1])))


@register("judge")
class JudgeReward:
    """score = judge score / 100; a chart that failed to render scores 0 without asking the judge."""

    def __init__(self, backend: Callable[[list[list[dict[str, Any]]]], list[str]] | None = None) -> None:
        if backend is None:
            raise ValueError(
                "the judge reward needs a backend: a function from chat messages to replies "
                "(for example a rollout engine's generate)"
            )
        self.backend = backend

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        from rewards.visual import _reference_image, render_image

        asks, where = [], []
        for i, item in enumerate(batch):
            if item.render is not None and item.render.ok:
                ref = _reference_image(item)
                if ref is None:
                    raise ValueError("the judge reward needs a reference image")
                asks.append(build_judge_messages(ref, render_image(item.render)))
                where.append(i)
        replies = self.backend(asks) if asks else []
        outs = [RewardOutput(0.0, {"parsed": 0.0}, "No rendering for the judge to score.") for _ in batch]
        for i, reply in zip(where, replies):
            score = parse_judge_score(reply)
            if score is None:
                outs[i] = RewardOutput(0.0, {"parsed": 0.0}, "The judge's reply had no 'Score: N'.")
            else:
                outs[i] = RewardOutput(score / 100.0, {"parsed": 1.0}, "")
        return outs
