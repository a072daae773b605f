"""The RolloutEngine interface: chat requests in, sampled completions with logprobs out.

Tasks (chart-to-code, the spy game, a VLM judge) only ever talk to this interface, so the
HF engine and the vLLM engine are interchangeable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence


@dataclass
class SamplingParams:
    n: int = 1  # completions per request (the GRPO group size)
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 256  # always bounded: a random model never emits EOS
    stop: list[str] = field(default_factory=list)  # extra stop strings besides the EOS token
    seed: int | None = None


@dataclass
class Completion:
    text: str
    token_ids: list[int]  # generated tokens, without padding, including the EOS token if any
    logprobs: list[float]  # log-probability of each token under the sampling distribution
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    prompt_ids: list[int] = field(default_factory=list)  # the prompt as the model saw it
    # The prompt's processed images (vlrl.sequences.PromptVision), one object shared by the n
    # samples of a request: an engine that already preprocessed them hands them on, so the
    # training forward does not preprocess the same images again. None: the trainer encodes.
    vision: Any = field(default=None, repr=False, compare=False)


# A request is a chat conversation: [{"role": ..., "content": [{"type": "image", "image": PIL},
# {"type": "text", "text": ...}]}, ...], with any number of images.
Request = list[dict[str, Any]]


class RolloutEngine(Protocol):
    def generate(
        self, requests: Sequence[Request], params: SamplingParams, *, progress: Callable[[int, int], None] | None = None
    ) -> list[list[Completion]]:
        """params.n completions per request, in request order. `progress(done, total)`, when
        given, follows the decoding (as often as the engine can tell)."""
        ...

    def sync_weights(self, model: Any) -> None:
        """Make the engine sample from `model`'s current weights."""
        ...

    def sleep(self) -> None:
        """Free what the engine holds while the optimiser steps (vLLM's sleep mode); a no-op
        where there is nothing to free (an engine that samples from the training module)."""
        ...

    def wake_up(self) -> None:
        """Undo `sleep` (engines also wake themselves before generating); a no-op where sleep is."""
        ...


def request_images(request: Request) -> list[Any]:
    """The images of a conversation, in order of appearance."""
    images = []
    for message in request:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image":
                    images.append(part.get("image"))
    return images
