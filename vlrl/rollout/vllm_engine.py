"""Rollouts with a vLLM `LLM` (the `vllm` extra, GPU only).

Training colocates it the way TRL's GRPOTrainer does in `vllm_mode="colocate"` (TRL 1.16,
`trl/generation/vllm_generation.py`): the `LLM` is built with
`distributed_executor_backend="external_launcher"`, so vLLM's model lives in the trainer's
own process (each rank holds its own copy, joined to the process group torchrun or the
DeepSpeed launcher set up) instead of in an engine-core subprocess, where a direct weight
load would find no model. After each optimizer step the trained weights are written into
that model with its `load_weights` and the prefix cache is reset; with sleep mode the
engine frees its memory during the step and wakes its weights before the load. Evaluation
and self-play, which never update weights, use vLLM's default executor. Requests are the
same chat messages the HF engine takes; images travel as `multi_modal_data`. vLLM is
imported only here, and only when this engine is built.

Run so far only against a stand-in `LLM` in the tests (no GPU or vLLM in CI);
`tests/test_rollout_vllm.py` has the real-vLLM checks (images and a weight sync) that run
wherever both exist.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from vlrl.rollout.base import Completion, Request, SamplingParams, request_images

# Where vLLM versions keep the torch module that `load_weights` updates in place.
_MODEL_PATHS = (
    ("llm_engine", "model_executor", "driver_worker", "worker", "model_runner", "model"),
    ("llm_engine", "model_executor", "driver_worker", "model_runner", "model"),
)


def _find_model(llm: Any) -> Any:
    for path in _MODEL_PATHS:
        obj = llm
        for attr in path:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if obj is not None and hasattr(obj, "load_weights"):
            return obj
    return None


class VLLMEngine:
    """RolloutEngine over vLLM. Build it with `VLLMEngine.create(path, processor, ...)`, or
    pass an existing `llm` (anything with vLLM's `generate` / `sleep` / `wake_up` API)."""

    def __init__(self, llm: Any, processor: Any, *, sleep_mode: bool = False, sampling_cls: Any = None) -> None:
        self.llm = llm
        self.processor = processor
        self.sleep_mode = sleep_mode
        self.asleep = False
        if sampling_cls is None:
            from vllm import SamplingParams as sampling_cls  # noqa: N813
        self.sampling_cls = sampling_cls
        tok = processor.tokenizer
        self.suppress_ids = [
            t
            for t in (
                tok.convert_tokens_to_ids(s)
                for s in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
            )
            if isinstance(t, int) and t != tok.unk_token_id
        ]

    @classmethod
    def create(
        cls,
        model_path: str,
        processor: Any,
        *,
        gpu_memory_utilization: float = 0.4,
        sleep_mode: bool = True,
        max_images_per_prompt: int = 4,
        dtype: str = "auto",
        seed: int = 0,
        max_model_len: int | None = None,
        colocated: bool = False,
    ) -> "VLLMEngine":
        try:
            from vllm import LLM
        except ImportError:
            raise ImportError("rollout.engine=vllm needs vLLM: pip install 'vlrl[vllm]' (GPU machines only)") from None
        kwargs: dict[str, Any] = dict(
            model=model_path,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=sleep_mode,
            limit_mm_per_prompt={"image": max_images_per_prompt},
            dtype=dtype,
            seed=seed,
            enable_prefix_caching=True,
        )
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if colocated:  # the model in this process, where sync_weights can reach it (module doc)
            kwargs["distributed_executor_backend"] = "external_launcher"
        try:  # newer vLLM can return the log-probs of the distribution it sampled from
            llm = LLM(**kwargs, logprobs_mode="processed_logprobs")
        except TypeError:
            llm = LLM(**kwargs)
        return cls(llm, processor, sleep_mode=sleep_mode)

    # -- the RolloutEngine interface

    def _prompts(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        prompts = []
        for request in requests:
            text = self.processor.apply_chat_template(request, tokenize=False, add_generation_prompt=True)
            images = request_images(request)
            entry: dict[str, Any] = {"prompt": text}
            if images:
                entry["multi_modal_data"] = {"image": images}
            prompts.append(entry)
        return prompts

    def _sampling(self, params: SamplingParams):
        kwargs: dict[str, Any] = dict(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            logprobs=0,
            seed=params.seed,
        )
        if self.suppress_ids:
            kwargs["logit_bias"] = {t: -100.0 for t in self.suppress_ids}
        return self.sampling_cls(**kwargs)

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, *, progress: Callable[[int, int], None] | None = None
    ) -> list[list[Completion]]:
        self.wake_up()
        outputs = self.llm.generate(self._prompts(requests), sampling_params=self._sampling(params), use_tqdm=False)
        if progress is not None:  # one batched call: vLLM tells nothing until it is done
            progress(params.max_new_tokens, params.max_new_tokens)
        return [[_completion(out, o) for o in out.outputs] for out in outputs]

    def sync_weights(self, model: Any) -> None:
        """Copy the trained weights into vLLM (gathered first under ZeRO-3 by the caller),
        one tensor at a time as TRL does, so no second full copy is ever held."""
        self.wake_up()
        self.load_weights((name, tensor) for name, tensor in model.state_dict().items())

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        target = _find_model(self.llm)
        if target is not None:
            for name, tensor in weights:
                target.load_weights([(name, tensor)])
        elif hasattr(self.llm, "collective_rpc"):
            self.llm.collective_rpc("load_weights", args=(list(weights),))
        else:
            raise RuntimeError("cannot find vLLM's model to update its weights (unsupported vLLM version)")
        if hasattr(self.llm, "reset_prefix_cache"):
            self.llm.reset_prefix_cache()  # cached prefixes were computed with the old weights

    # -- sharing the GPU with training

    def sleep(self) -> None:
        if self.sleep_mode and not self.asleep and hasattr(self.llm, "sleep"):
            self.llm.sleep(level=1)
            self.asleep = True

    def wake_up(self) -> None:
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False


def _completion(request_output: Any, output: Any) -> Completion:
    ids = list(output.token_ids)
    logprobs = []
    for token, entry in zip(ids, output.logprobs or []):
        lp = entry.get(token) if isinstance(entry, dict) else None
        logprobs.append(float(getattr(lp, "logprob", lp)) if lp is not None else float("nan"))
    reason = "stop" if output.finish_reason == "stop" else "length"
    return Completion(
        text=output.text,
        token_ids=ids,
        logprobs=logprobs,
        finish_reason=reason,
        prompt_ids=list(request_output.prompt_token_ids or []),
    )
