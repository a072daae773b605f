"""`vlrl eval judge_model=PATH`: a local VLM as ChartMimic's high-level judge.

The judge sees (reference image, rendered answer) with the benchmark's rubric
(rewards.judge) and its replies, ending in "Score: N", go to OUT/judge.jsonl in the format
`judge_responses=` reads, appended and fsync'd one batch at a time: a killed run asks
again only for what it had not written. Answers that did not render are not judged (the
benchmark scores them 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from vlrl.evaluation.generate import open_rgb, read_answers
from vlrl.jsonl import JsonlWriter
from vlrl.rollout.base import RolloutEngine, SamplingParams

JUDGE_MAX_NEW_TOKENS = 1024  # the rubric's comments plus the score line


def judge_renders(
    pairs: Sequence[tuple[str, str, str]], engine: RolloutEngine, path: Path, *, batch_size: int, seed: int
) -> int:
    """Ask the judge about each (key, reference image, rendered image) not yet in `path`;
    returns how many it answered in this run."""
    from tqdm import tqdm

    from rewards.judge import build_judge_messages

    answered = read_answers(path)
    todo = [p for p in pairs if p[0] not in answered]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=JUDGE_MAX_NEW_TOKENS, seed=seed)
    written = 0
    with (
        JsonlWriter(path) as writer,
        tqdm(total=len(todo), desc="judge", unit="chart", dynamic_ncols=True, disable=not todo) as bar,
    ):
        for b0 in range(0, len(todo), batch_size):
            batch = todo[b0 : b0 + batch_size]
            requests = [build_judge_messages(open_rgb(ref), open_rgb(gen)) for _, ref, gen in batch]
            for (key, _, _), group in zip(batch, engine.generate(requests, params)):
                writer.write({"file": key, "response": group[0].text})
                written += 1
            bar.update(len(batch))
    engine.sleep()
    return written
