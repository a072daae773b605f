"""Turning prompts and completions into padded training micro-batches for a Qwen-style VLM.

Each training row is prompt_ids + completion_ids of one sample. Rows of one prompt share
its image tensors; a micro-batch carries the pixel values of every row's images, in row
order, with image_grid_thw per image, as the model expects. Micro-batches are filled by
token budget with rows sorted by length, so padding stays small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from vlrl.rollout.base import request_images


@dataclass
class PromptVision:
    """The processed images of one prompt (empty when it has none)."""

    pixel_values: torch.Tensor | None  # [patches, dim]
    image_grid_thw: torch.Tensor | None  # [images, 3]


@dataclass
class Row:
    prompt_ids: list[int]
    completion_ids: list[int]
    vision: PromptVision
    advantage: float = 0.0
    old_logprobs: list[float] | None = None  # behaviour log-probs from the engine (diagnostics)
    index: int = 0  # position in the step's batch

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def split_vision(batch: dict[str, torch.Tensor], images_per_prompt: Sequence[int]) -> list[PromptVision]:
    """Cut a processor batch's concatenated pixel values back into per-prompt pieces."""
    if "pixel_values" not in batch:
        return [PromptVision(None, None) for _ in images_per_prompt]
    grid = batch["image_grid_thw"]
    patches = grid.prod(dim=1).tolist()
    out, img, patch = [], 0, 0
    for n in images_per_prompt:
        count = sum(patches[img : img + n])
        if n == 0:
            out.append(PromptVision(None, None))
        else:
            out.append(PromptVision(batch["pixel_values"][patch : patch + count], grid[img : img + n]))
        img += n
        patch += count
    return out


def encode_requests(processor: Any, requests: Sequence[Any]) -> dict[str, torch.Tensor]:
    """Left-padded model inputs; each request may hold any number of images (or none)."""
    texts = [processor.apply_chat_template(r, tokenize=False, add_generation_prompt=True) for r in requests]
    images = [request_images(r) for r in requests]
    kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
    if any(images):
        kwargs["images"] = [im for per_request in images for im in per_request]
    tokenizer = processor.tokenizer
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation appends on the right
    try:
        return processor(**kwargs)
    finally:
        tokenizer.padding_side = old_side


def encode_prompts(processor: Any, requests: Sequence[Any]) -> tuple[dict[str, torch.Tensor], list[PromptVision]]:
    """Processor batch of the chat prompts (left-padded) and each prompt's own image tensors."""
    batch = encode_requests(processor, requests)
    return batch, split_vision(batch, [len(request_images(r)) for r in requests])


def micro_batches(rows: Sequence[Row], token_budget: int) -> list[list[Row]]:
    """Rows sorted by length, packed so that (rows x longest row) stays within the budget."""
    ordered = sorted(rows, key=lambda r: r.length)
    batches: list[list[Row]] = []
    current: list[Row] = []
    for row in ordered:
        longest = max([r.length for r in current] + [row.length])
        if current and longest * (len(current) + 1) > token_budget:
            batches.append(current)
            current = []
        current.append(row)
    if current:
        batches.append(current)
    return batches


@dataclass
class ModelBatch:
    inputs: dict[str, torch.Tensor]  # right-padded model inputs
    completion_mask: torch.Tensor  # [B, T] 1 on completion tokens (targets), in target positions
    target_ids: torch.Tensor  # [B, T] the completion tokens, aligned with completion_mask
    logit_index: torch.Tensor  # [B, T] positions whose logits predict each target
    advantages: torch.Tensor  # [B]
    rows: list[Row]


def collate(rows: Sequence[Row], *, pad_id: int, image_token_id: int | None, device: Any = "cpu") -> ModelBatch:
    longest = max(r.length for r in rows)
    max_completion = max(max(len(r.completion_ids) for r in rows), 1)
    n = len(rows)
    input_ids = torch.full((n, longest), pad_id, dtype=torch.long)
    attention = torch.zeros((n, longest), dtype=torch.long)
    target_ids = torch.full((n, max_completion), pad_id, dtype=torch.long)
    mask = torch.zeros((n, max_completion), dtype=torch.float32)
    logit_index = torch.zeros((n, max_completion), dtype=torch.long)
    for i, r in enumerate(rows):
        ids = r.prompt_ids + r.completion_ids
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[i, : len(ids)] = 1
        c = len(r.completion_ids)
        if c:
            target_ids[i, :c] = torch.tensor(r.completion_ids, dtype=torch.long)
            mask[i, :c] = 1.0
            # the logit at position p predicts token p+1
            logit_index[i, :c] = torch.arange(len(r.prompt_ids) - 1, len(r.prompt_ids) - 1 + c)
    inputs: dict[str, torch.Tensor] = {"input_ids": input_ids, "attention_mask": attention}
    pixels = [r.vision.pixel_values for r in rows if r.vision.pixel_values is not None]
    if pixels:
        inputs["pixel_values"] = torch.cat(pixels, dim=0)
        inputs["image_grid_thw"] = torch.cat(
            [r.vision.image_grid_thw for r in rows if r.vision.image_grid_thw is not None]
        )
        if image_token_id is not None:
            # transformers 5.x needs the multimodal token types to place M-RoPE positions
            inputs["mm_token_type_ids"] = (input_ids == image_token_id).long()
    advantages = torch.tensor([r.advantage for r in rows], dtype=torch.float32)
    to = lambda t: t.to(device)  # noqa: E731
    return ModelBatch(
        {k: to(v) for k, v in inputs.items()}, to(mask), to(target_ids), to(logit_index), to(advantages), list(rows)
    )


def completion_logprobs(model: Any, batch: ModelBatch, temperature: float, *, with_entropy: bool = False):
    """[B, T] log-probs of the completion tokens (and their entropies) under `model`.

    Logits are divided by the sampling temperature, so the ratio compares the same
    distribution the engine sampled from (as TRL does).
    """
    from vlrl.algo import entropy_from_logits, selective_log_softmax

    logits = model(**batch.inputs, use_cache=False).logits  # [B, L, V]
    index = batch.logit_index.unsqueeze(-1).expand(-1, -1, logits.shape[-1])
    logits = logits.gather(1, index)  # [B, T, V]
    if temperature > 0:
        logits = logits / temperature
    logp = selective_log_softmax(logits, batch.target_ids)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits.detach())
    return logp, entropy
