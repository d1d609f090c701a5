"""Still images: safe loading (size checked before pixels are allocated) and EXIF orientation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.errors import InputError, ResourceLimitError
from ..core.files import regular_file

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def load_image(path: Path, max_pixels: int) -> np.ndarray:
    """Return the image upright as RGB uint8, refusing decompression bombs before decoding (and
    anything but a regular file before opening it)."""
    regular_file(path)
    try:
        with Image.open(path) as img:
            w, h = img.size  # read from the header; no pixels yet
            if w * h > max_pixels:
                raise ResourceLimitError(f"{path}: image claims {w}x{h} pixels, over the cap of {max_pixels}")
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"))
    except ResourceLimitError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise ResourceLimitError(f"{path}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot decode image ({exc})", kind="decode") from None
