"""Image normalisation shared by the visual rewards and the datasets."""

from __future__ import annotations


def to_rgb_on_white(image):
    """RGB, with any transparency composited on white, as charts are shown to models."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        canvas.alpha_composite(image)
        return canvas.convert("RGB")
    return image.convert("RGB")
