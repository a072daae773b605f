"""Chart-to-code (MSRL): prompts from chart images, rewards from rendering the answers.

The task builds chat prompts, renders completions in the sandboxed pool (starting as soon
as completions exist, so rendering overlaps the next generation), and scores them with the
stage's composite reward against the reference chart's render (cached per example).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Sequence

from renderers import RenderPool, RenderResult, strip_output_calls
from rewards import CompositeReward, RewardInput, RewardOutput
from rewards.base import score_isolated
from vlrl.datasets.charts import ChartExample

PROMPT = (
    "You are an expert Python developer who specialises in matplotlib. Look at the chart in the "
    "image and write Python code that reproduces it as closely as possible: the same chart type, "
    "data, layout, text, colours and style.{figsize} Answer with one complete script that starts "
    "with ```python and ends with ```."
)


def chart2code_prompt(figsize: tuple[float, float] | None = None) -> str:
    hint = f" Use figsize=({figsize[0]:g}, {figsize[1]:g}) so the figure has the same size." if figsize else ""
    return PROMPT.format(figsize=hint)


def chat_messages(image: Any, prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]}]


@dataclass
class ScoredBatch:
    outputs: list[RewardOutput]  # one per completion, in order
    renders: list[RenderResult]  # one per completion


class ChartScorer:
    def __init__(self, pool: RenderPool, reward: CompositeReward, *, figsize_hint: bool = True) -> None:
        self.pool = pool
        self.reward = reward
        self.figsize_hint = figsize_hint
        self._references: dict[str, RenderResult] = {}  # example id -> the render of its code
        self._images: dict[str, Any] = {}

    def reference(self, ex: ChartExample):
        if ex.id not in self._references:
            self._references[ex.id] = self.pool.render(strip_output_calls(ex.code))
        return self._references[ex.id]

    def references(self, examples: Sequence[ChartExample]) -> list[Any]:
        """Render the references not seen yet, concurrently, then return all in order."""
        todo = {
            ex.id: self.pool.submit(strip_output_calls(ex.code)) for ex in examples if ex.id not in self._references
        }
        for rid, fut in todo.items():
            self._references[rid] = fut.result()
        return [self._references[ex.id] for ex in examples]

    def usable(self, examples: Sequence[ChartExample]) -> tuple[list[ChartExample], list[str]]:
        """Examples whose image loads and whose reference code renders; the others are named."""
        keep, skipped = [], []
        for ex, ref in zip(examples, self.references(examples)):
            if not ref.ok:
                skipped.append(f"{ex.id}: reference code failed ({ref.error_kind}: {ref.error})")
                continue
            try:
                self.image(ex)
            except ValueError as exc:
                skipped.append(f"{ex.id}: {exc}")
                continue
            keep.append(ex)
        return keep, skipped

    def image(self, ex: ChartExample):
        if ex.id not in self._images:
            self._images[ex.id] = ex.load_image()
        return self._images[ex.id]

    def prompt_messages(self, examples: Sequence[ChartExample]) -> list[list[dict[str, Any]]]:
        refs = self.references(examples) if self.figsize_hint else [None] * len(examples)
        messages = []
        for ex, ref in zip(examples, refs):
            size = None
            if ref is not None and ref.ok:
                fig = ref.trace.get("figure", {})
                size = (fig.get("width_in"), fig.get("height_in")) if fig.get("width_in") else None
            messages.append(chat_messages(self.image(ex), chart2code_prompt(size)))
        return messages

    def start_renders(self, texts: Sequence[str]) -> list[Future]:
        """Submit every completion to the pool now; scoring waits for them later."""
        return [self.pool.submit_response(t) for t in texts]

    def score(
        self, examples: Sequence[ChartExample], texts: Sequence[str], renders: Sequence[Future] | None = None
    ) -> ScoredBatch:
        """Completion i answers examples[i] (callers repeat an example once per sample)."""
        if len(examples) != len(texts):
            raise ValueError(f"{len(texts)} completions for {len(examples)} examples")
        futures = list(renders) if renders is not None else self.start_renders(texts)
        results = [_render_result(f) for f in futures]
        refs = self.references(examples)
        inputs = [
            RewardInput(
                completion=t,
                reference_code=ex.code,
                reference_image=self.image(ex),
                render=r,
                reference_render=ref,
                meta={"graph": ex.meta.get("chart_type") == "graph"},
            )
            for ex, t, r, ref in zip(examples, texts, results, refs)
        ]
        # Per-sample isolation: the composite isolates each of its rewards already; this
        # covers a task built with any other reward callable.
        return ScoredBatch(score_isolated(self.reward, inputs), results)


def _render_result(future: Future):
    """The render of one completion; a render job that raised instead of returning a failed
    result (a pool bug, a broken pipe) fails that completion only."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - one lost render must not cost the whole step
        return RenderResult.failure("crashed", f"the render job raised {type(exc).__name__}: {str(exc)[:300]}")
