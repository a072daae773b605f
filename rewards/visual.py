"""Visual rewards: how much the rendering looks like the reference chart.

- `ssim`: structural similarity of the two images resized to greyscale squares; needs no
  weights, so it works offline and in tests.
- `clip`: cosine similarity of open_clip image embeddings; the model name and a local
  checkpoint come from the config (nothing is downloaded), reference embeddings are cached.
Code that fails to render scores 0 (MSRL).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np

from rewards.base import RewardInput, RewardOutput, register


def _as_image(image: Any, what: str = "reference image"):
    from PIL import Image

    from rewards.images import MAX_PIXELS, OversizeImage, open_capped

    if image is None:
        return None
    if isinstance(image, Image.Image):
        # already in memory, but every reward would still copy and resize it
        if image.width * image.height > MAX_PIXELS:
            raise OversizeImage(f"the {what} is {image.width}x{image.height} pixels, over the cap of {MAX_PIXELS}")
        return image
    if isinstance(image, (str, bytes, bytearray)) or hasattr(image, "__fspath__"):
        return open_capped(image, what=what)
    raise TypeError(f"the {what} should be a PIL image, PNG bytes or a path, not {type(image).__name__}")


def render_image(render: Any, what: str = "rendering"):
    """A render result's image, decoded with the pixel cap (RenderResult.image has none)."""
    from rewards.images import UndecodableImage, open_capped

    png = getattr(render, "png", None)
    if png is not None:
        if not isinstance(png, (bytes, bytearray)):  # a str here would be taken for a path
            raise UndecodableImage(f"the {what}'s png is a {type(png).__name__}, not bytes")
        return open_capped(png, what=what)
    return _as_image(render.image, what)


def _reference_image(item: RewardInput):
    if item.reference_image is not None:
        return _as_image(item.reference_image)
    if item.reference_render is not None and item.reference_render.ok:
        return render_image(item.reference_render, "reference rendering")
    return None


def _grey(image, size: int) -> np.ndarray:
    from PIL import Image

    from rewards.images import to_rgb_on_white

    return (
        np.asarray(to_rgb_on_white(image).convert("L").resize((size, size), Image.BILINEAR), dtype=np.float64) / 255.0
    )


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004, Gaussian window) of two [0,1] images."""
    from scipy.ndimage import gaussian_filter

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = gaussian_filter(a, sigma), gaussian_filter(b, sigma)
    var_a = gaussian_filter(a * a, sigma) - mu_a**2
    var_b = gaussian_filter(b * b, sigma) - mu_b**2
    cov = gaussian_filter(a * b, sigma) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


@register("ssim")
class SSIMReward:
    def __init__(self, size: int = 256) -> None:
        self.size = size

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        outs = []
        for item in batch:
            ref = _reference_image(item)
            if ref is None:
                raise ValueError("the ssim reward needs a reference image (reference_image or reference_render)")
            r = item.render
            if r is None or not r.ok:
                outs.append(RewardOutput(0.0, {}, "No rendering to compare with the reference."))
                continue
            score = max(0.0, ssim(_grey(render_image(r), self.size), _grey(ref, self.size)))
            critique = "" if score > 0.9 else f"The rendering looks different from the reference (SSIM {score:.2f})."
            outs.append(RewardOutput(score, {}, critique))
        return outs


@register("clip")
class CLIPReward:
    """Cosine similarity of open_clip image embeddings, mapped from [-1, 1] to [0, 1]."""

    def __init__(
        self,
        model: str = "ViT-B-32",
        checkpoint: str | None = None,
        device: str = "cpu",
        cache_size: int = 4096,
        batch_size: int = 32,
    ) -> None:
        import open_clip
        import torch

        if checkpoint is None:
            # Offline first: random weights are only for tests, and say so loudly.
            import warnings

            warnings.warn("clip reward without a checkpoint uses RANDOM weights (tests only)", stacklevel=2)
        self.torch = torch
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(model, pretrained=checkpoint)
        self.model.eval().to(device)
        self.device = device
        self.batch_size = batch_size
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size

    def embed(self, images: list) -> np.ndarray:
        out = []
        with self.torch.no_grad():
            for i in range(0, len(images), self.batch_size):
                x = self.torch.stack([self.preprocess(im.convert("RGB")) for im in images[i : i + self.batch_size]])
                feats = self.model.encode_image(x.to(self.device)).float()
                out.append(self.torch.nn.functional.normalize(feats, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1))

    def _reference_embeddings(self, refs: list) -> list[np.ndarray]:
        keys = [hashlib.sha1(im.tobytes() + str(im.size).encode()).hexdigest() for im in refs]
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        if missing:
            fresh = self.embed([refs[i] for i in missing])
            for i, emb in zip(missing, fresh):
                self.cache[keys[i]] = emb
                while len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
        for k in keys:
            self.cache.move_to_end(k)
        return [self.cache[k] for k in keys]

    def __call__(self, batch: Sequence[RewardInput]) -> list[RewardOutput]:
        refs = [_reference_image(item) for item in batch]
        if any(r is None for r in refs):
            raise ValueError("the clip reward needs a reference image for every item")
        rendered = [i for i, item in enumerate(batch) if item.render is not None and item.render.ok]
        scores = np.zeros(len(batch))
        if rendered:
            gen = self.embed([render_image(batch[i].render) for i in rendered])
            ref = self._reference_embeddings([refs[i] for i in rendered])
            for j, i in enumerate(rendered):
                scores[i] = (float(np.dot(gen[j], ref[j])) + 1.0) / 2.0
        return [
            RewardOutput(float(s), {}, "" if i in rendered else "No rendering to compare with the reference.")
            for i, s in enumerate(scores)
        ]
