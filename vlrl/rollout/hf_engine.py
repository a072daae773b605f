"""Rollouts with transformers' generate: batched, left-padded, images per request, KV cache.

Logprobs are those of the distribution actually sampled from (after temperature and
top-p). transformers would apply its own temperature/top-p warpers *after* any custom
logits processor, so we switch those off and apply temperature and top-p ourselves in the
one processor that also records each sampled token's log-probability; only one step of
log-probabilities is held at a time, so memory does not grow with vocab x length.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Sequence

import torch

from vlrl.rollout.base import Completion, Request, SamplingParams, request_images
from vlrl.sequences import encode_requests, split_vision


class _SampleAndRecord:
    """A LogitsProcessor: temperature, top-p, then remember log-probs to score the next token."""

    def __init__(
        self,
        temperature: float,
        top_p: float,
        suppress_ids: list[int] | None = None,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.suppress_ids = suppress_ids or []
        self.on_step = on_step  # called with the number of tokens sampled so far (1, 2, ...)
        self.prev: torch.Tensor | None = None  # [N, V] log-probs of the step just sampled
        self.steps: list[torch.Tensor] = []  # per step: [N] log-prob of the sampled token

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prev is not None:
            self.steps.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))
        scores = scores.float()
        if self.suppress_ids:
            scores[:, self.suppress_ids] = float("-inf")
        if self.temperature > 0:
            scores = scores / self.temperature
        if 0 < self.top_p < 1:
            sorted_scores, order = scores.sort(dim=-1, descending=True)
            cum = sorted_scores.softmax(-1).cumsum(-1)
            drop_sorted = cum - sorted_scores.softmax(-1) > self.top_p  # keep the token that crosses top_p
            drop = drop_sorted.scatter(1, order, drop_sorted)
            scores = scores.masked_fill(drop, float("-inf"))
        self.prev = torch.log_softmax(scores, dim=-1)
        if self.on_step is not None:
            self.on_step(len(self.steps) + 1)
        return scores

    def finish(self, last_tokens: torch.LongTensor) -> torch.Tensor:
        """[N, T] log-probs once generation has ended (the last token was never re-fed)."""
        if self.prev is not None:
            self.steps.append(self.prev.gather(1, last_tokens[:, None]).squeeze(1))
            self.prev = None
        return torch.stack(self.steps, dim=1) if self.steps else torch.zeros(0, 0)


class HFEngine:
    """RolloutEngine over a transformers VLM and its processor (colocated with training).

    generation_context: optional callable returning a context manager entered around
    generate, e.g. gathering ZeRO-3 partitioned weights.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        max_batch_requests: int = 16,
        generation_context: Callable[[], Any] | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_batch_requests = max_batch_requests
        self.generation_context = generation_context or contextlib.nullcontext
        tok = self.tokenizer
        eos = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        for special in ("<|im_end|>", "<|endoftext|>"):
            tid = tok.convert_tokens_to_ids(special)
            if isinstance(tid, int) and tid != tok.unk_token_id:
                eos.add(tid)
        self.eos_ids = sorted(eos)
        # An image placeholder in a completion would be taken for an image on the training
        # forward (and break it); no answer needs one, so they are never sampled.
        vision = []
        for special in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>"):
            tid = tok.convert_tokens_to_ids(special)
            if isinstance(tid, int) and tid != tok.unk_token_id and tid not in eos:
                vision.append(tid)
        self.suppress_ids = vision
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]

    def sync_weights(self, model: Any) -> None:
        """Colocated: the engine samples from the training module itself; copy only if it differs."""
        if model is self.model:
            return
        self.model.load_state_dict(model.state_dict())

    def sleep(self) -> None:
        """Nothing to free: the weights are the training module's own."""

    def wake_up(self) -> None:
        pass

    def encode(self, requests: Sequence[Request]) -> dict[str, torch.Tensor]:
        return encode_requests(self.processor, requests)

    def _completions(
        self,
        batch: dict[str, torch.Tensor],
        params: SamplingParams,
        images_per_request: list[int],
        on_step: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        recorder = _SampleAndRecord(params.temperature, params.top_p, self.suppress_ids, on_step)
        from transformers import GenerationConfig, LogitsProcessorList

        # A fresh config: the checkpoint's own sampling defaults (top_k, repetition penalty,
        # temperature) must not silently change the policy being optimised.
        gen_config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=params.temperature > 0,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            num_return_sequences=params.n,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            return_dict_in_generate=True,
            use_cache=True,
        )
        extra: dict[str, Any] = {}
        if params.stop:
            extra.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self.generation_context():
                out = self.model.generate(
                    **inputs, generation_config=gen_config, logits_processor=LogitsProcessorList([recorder]), **extra
                )
        finally:
            self.model.train(was_training)
        sequences = out.sequences.cpu()
        prompt_len = inputs["input_ids"].shape[1]
        generated = sequences[:, prompt_len:]
        logprobs = recorder.finish(generated[:, -1]).cpu() if generated.shape[1] else torch.zeros(len(generated), 0)

        vision = split_vision(batch, images_per_request)
        prompt_ids = batch["input_ids"].repeat_interleave(params.n, dim=0)
        prompt_mask = batch["attention_mask"].repeat_interleave(params.n, dim=0).bool()
        completions = []
        for row in range(generated.shape[0]):
            ids = generated[row].tolist()
            end, reason = len(ids), "length"
            for i, t in enumerate(ids):
                if t in self.eos_ids:
                    end, reason = i + 1, "stop"
                    break
            text = self.tokenizer.decode(ids[:end], skip_special_tokens=True)
            if reason == "length" and params.stop and any(s in text for s in params.stop):
                reason = "stop"
            completions.append(
                Completion(
                    text=text,
                    token_ids=ids[:end],
                    logprobs=logprobs[row, :end].tolist(),
                    finish_reason=reason,
                    prompt_ids=prompt_ids[row][prompt_mask[row]].tolist(),
                    vision=vision[row // params.n],
                )
            )
        return completions

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, *, progress: Callable[[int, int], None] | None = None
    ) -> list[list[Completion]]:
        """params.n completions per request. `progress(done, total)` is called after every
        decoding step with the decoding steps done and the most there can be (batches of
        max_batch_requests run one after another), e.g. for a progress bar."""
        if params.max_new_tokens <= 0:
            raise ValueError("max_new_tokens must be positive")
        if params.seed is not None:
            torch.manual_seed(params.seed)
        grouped: list[list[Completion]] = []
        starts = range(0, len(requests), self.max_batch_requests)
        total = len(starts) * params.max_new_tokens
        for b, start in enumerate(starts):
            chunk = requests[start : start + self.max_batch_requests]
            on_step = None
            if progress is not None:

                def on_step(k: int, before: int = b * params.max_new_tokens) -> None:
                    progress(before + k, total)

            flat = self._completions(self.encode(chunk), params, [len(request_images(r)) for r in chunk], on_step)
            grouped.extend(flat[i * params.n : (i + 1) * params.n] for i in range(len(chunk)))
        return grouped
