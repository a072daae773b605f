"""Image normalisation shared by the visual rewards and the datasets."""

from __future__ import annotations

# Integer and float modes Pillow opens 16/32-bit files in: "L" conversion would clip them.
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _wide_to_l(image):
    """A 16/32-bit greyscale image as 8-bit "L", scaled by its bit depth (Pillow's own
    conversion clips at 255, which turns a 16-bit scan white)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(image, dtype=np.float64)
    top = float(a.max()) if a.size else 0.0
    if image.mode.startswith("I;16"):
        scale = 65535.0  # the mode says 16 bits, whatever the content's range
    elif image.mode == "F" and top <= 1.0:
        scale = 1.0  # a float image in [0, 1]
    elif top <= 255:
        scale = 255.0  # 32-bit modes carry no depth: read it off the range
    elif top <= 65535:
        scale = 65535.0
    else:
        scale = top
    return Image.fromarray(np.clip(np.rint(a / scale * 255.0), 0, 255).astype(np.uint8), mode="L")


def to_rgb_on_white(image):
    """RGB, with any transparency (an alpha channel, a palette's or a colour key) composited
    on white, as charts are shown to models; 16-bit greyscale is scaled, not clipped."""
    from PIL import Image

    if image.mode in _WIDE_MODES:
        image = _wide_to_l(image)
    if image.mode in ("RGBA", "LA", "P", "PA", "La", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        canvas.alpha_composite(image)
        return canvas.convert("RGB")
    return image.convert("RGB")


# Reward code decodes renders and reference files itself. The pool already refuses renders
# over its own max_pixels, but rewards also see results from elsewhere (a cached file, a
# plugin's render, a test fake): an unchecked 30000x30000 PNG would cost the trainer ~2.7 GB.
# 16M pixels is 4x the pool's default and ~48 MB as RGB.
MAX_PIXELS = 16_000_000


class ImageRefused(ValueError):
    """An image reward code will not decode: too large, or not an image at all."""


class OversizeImage(ImageRefused):
    pass


class UndecodableImage(ImageRefused):
    pass


def open_capped(source, *, max_pixels: int = MAX_PIXELS, what: str = "image"):
    """Decode PNG bytes, a path or a file object as RGB, refusing before decoding anything
    whose header claims more than `max_pixels` (a decompression bomb costs nothing to send)."""
    import io

    from PIL import Image

    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        im = Image.open(source)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UndecodableImage(f"the {what} does not decode ({type(exc).__name__}: {exc})") from None
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise OversizeImage(f"the {what} is {width}x{height} pixels, over the cap of {max_pixels}")
        try:
            return im.convert("RGB")
        except (OSError, ValueError, SyntaxError, MemoryError) as exc:  # a truncated or corrupt body
            raise UndecodableImage(f"the {what} does not decode ({type(exc).__name__}: {exc})") from None
