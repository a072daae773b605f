"""The vLLM engine: the adapter logic against a stand-in with vLLM's API, and the real thing
when vLLM is installed (GPU machines)."""

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from PIL import Image

from vlrl.rollout.base import SamplingParams
from vlrl.rollout.vllm_engine import VLLMEngine


@dataclass
class FakeSampling:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    stop: list | None = None
    logprobs: int | None = None
    seed: int | None = None
    logit_bias: dict = field(default_factory=dict)


class FakeLLM:
    """Records what it is asked and answers like vllm.LLM.generate."""

    def __init__(self):
        self.calls, self.loaded, self.events = [], [], []
        self.load_calls = 0

        def load_weights(weights):
            self.load_calls += 1
            self.loaded.extend(weights)

        model = SimpleNamespace(load_weights=load_weights)
        runner = SimpleNamespace(model=model)
        self.llm_engine = SimpleNamespace(
            model_executor=SimpleNamespace(driver_worker=SimpleNamespace(worker=SimpleNamespace(model_runner=runner)))
        )

    def generate(self, prompts, sampling_params, use_tqdm=False):
        self.calls.append((prompts, sampling_params))
        outs = []
        for i, _ in enumerate(prompts):
            completions = [
                SimpleNamespace(
                    text=f"answer {i}.{k}",
                    token_ids=[5, 6, 7],
                    logprobs=[
                        {5: SimpleNamespace(logprob=-0.5)},
                        {6: SimpleNamespace(logprob=-1.0)},
                        {7: SimpleNamespace(logprob=-2.0)},
                    ],
                    finish_reason="stop" if k == 0 else "length",
                )
                for k in range(sampling_params.n)
            ]
            outs.append(SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=completions))
        return outs

    def sleep(self, level=1):
        self.events.append("sleep")

    def wake_up(self):
        self.events.append("wake")

    def reset_prefix_cache(self):
        self.events.append("reset")


@pytest.fixture(scope="module")
def processor():
    from vlrl.models.tiny import tiny_processor

    return tiny_processor()


def test_requests_images_sampling_and_completions(processor):
    llm = FakeLLM()
    engine = VLLMEngine(llm, processor, sleep_mode=True, sampling_cls=FakeSampling)
    img = Image.new("RGB", (40, 30))
    reqs = [
        [{"role": "user", "content": [{"type": "image", "image": img}, {"type": "text", "text": "draw"}]}],
        [{"role": "user", "content": [{"type": "text", "text": "no image"}]}],
    ]
    out = engine.generate(
        reqs, SamplingParams(n=2, temperature=0.9, top_p=0.8, max_new_tokens=7, stop=["```\n"], seed=3)
    )
    prompts, sp = llm.calls[0]
    assert prompts[0]["multi_modal_data"] == {"image": [img]} and "<|image_pad|>" in prompts[0]["prompt"]
    assert "multi_modal_data" not in prompts[1]
    assert (sp.n, sp.temperature, sp.top_p, sp.max_tokens, sp.stop, sp.logprobs, sp.seed) == (
        2,
        0.9,
        0.8,
        7,
        ["```\n"],
        0,
        3,
    )
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert sp.logit_bias[pad] == -100.0  # image placeholders are never sampled
    assert [len(g) for g in out] == [2, 2]
    c = out[1][1]
    assert (c.text, c.token_ids, c.logprobs, c.finish_reason, c.prompt_ids) == (
        "answer 1.1",
        [5, 6, 7],
        [-0.5, -1.0, -2.0],
        "length",
        [1, 2, 3],
    )
    assert out[0][0].finish_reason == "stop"
    seen = []  # one batched call: progress is reported once, when it is done
    engine.generate(reqs[1:], SamplingParams(max_new_tokens=7), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(7, 7)]


def test_weight_sync_and_sleep_mode(processor):
    import torch

    llm = FakeLLM()
    engine = VLLMEngine(llm, processor, sleep_mode=True, sampling_cls=FakeSampling)
    engine.sleep()
    engine.sync_weights(torch.nn.Linear(2, 2))
    assert [name for name, _ in llm.loaded] == ["weight", "bias"]
    assert llm.load_calls == 2  # one tensor at a time, as TRL loads them: no second full copy
    assert llm.events == ["sleep", "wake", "reset"]


def test_real_vllm_when_installed(tmp_path):
    """The real engine, colocated as training builds it: an image request, then a weight
    sync that must land in vLLM's own model (runs wherever vLLM and a GPU exist)."""
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    import torch.distributed as dist

    from vlrl.distributed import setup_environment
    from vlrl.models.tiny import build_tiny_model, save_tiny_model, tiny_processor
    from vlrl.rollout.vllm_engine import _find_model

    path = save_tiny_model(tmp_path / "tiny")
    setup_environment()
    if not dist.is_initialized():
        dist.init_process_group("nccl")  # the trainer's process group, which external_launcher joins
    engine = VLLMEngine.create(
        str(path), tiny_processor(), gpu_memory_utilization=0.2, max_model_len=512, colocated=True, sleep_mode=True
    )
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    request = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "hi"}]}]
    out = engine.generate([request], SamplingParams(n=2, max_new_tokens=4, seed=0))
    assert len(out[0]) == 2 and all(len(c.token_ids) <= 4 for c in out[0])

    model, _ = build_tiny_model(seed=1)  # other weights than the saved ones
    engine.sleep()
    engine.sync_weights(model.to("cuda"))
    target = _find_model(engine.llm)
    assert target is not None, "the colocated model must be reachable for weight sync"
    name, tensor = next(iter(model.state_dict().items()))
    theirs = dict(target.named_parameters())
    matched = [k for k in theirs if k.endswith(name.split(".", 1)[-1])]
    assert matched and torch.allclose(theirs[matched[0]].float().cpu(), tensor.float().cpu(), atol=1e-2)
    assert len(engine.generate([request], SamplingParams(n=1, max_new_tokens=4, seed=0))[0]) == 1
