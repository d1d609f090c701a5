"""Robustness augmentations, applied alike to a real training crop and the fakes made from it.

Compression and resampling must never tell the classes apart, so a real crop and its fakes pass
through the *same* random degradation (one set of draws), video codec included: each is encoded
with H.264 with the same settings and the same motion, as a frame of a real video would be. (Not
tiled into one frame: the encoder treats a tile's left edge differently from its middle, which
would mark the left image.)
"""
from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else img


def rescale(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(8, int(w * factor)), max(8, int(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def h264(frames: list[np.ndarray], crf: int, preset: str = "veryfast") -> np.ndarray:
    """The last of ``frames`` after an in-memory H.264 round trip (yuv420p, one thread).

    With one frame it is coded as an I-frame; with more, the last is predicted from the ones
    before it, as most frames of a real video are. Sides must be even."""
    import av

    h, w = frames[0].shape[:2]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25, 1)
    enc.thread_count = 1
    enc.options = {"crf": str(int(crf)), "preset": preset, "tune": "zerolatency"}
    packets = []
    for i, img in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        vf.pts = i
        packets.extend(enc.encode(vf))
    packets.extend(enc.encode(None))
    dec = av.CodecContext.create("h264", "r")
    dec.thread_count = 1
    last = None
    for packet in packets:
        for frame in dec.decode(packet):
            last = frame
    for frame in dec.decode(None):
        last = frame
    if last is None:
        raise RuntimeError("H.264 round trip gave no frame")
    return last.to_ndarray(format="rgb24")


def sharpen(img: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp masking, as cameras, broadcast chains and phones apply it to a whole picture."""
    blurred = cv2.GaussianBlur(img, (0, 0), sigma).astype(np.float32)
    return np.clip(img.astype(np.float32) * (1 + amount) - blurred * amount, 0, 255).astype(np.uint8)


def soften(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An out-of-focus, enlarged or scanned picture: down to 20-60 % of its side and back up, or a
    Gaussian blur of 1-2.5 % of its side; both relative to the side, so the effect on the model's
    input is the same at every input size.

    Training applies it to a real crop *before* its fakes are made from it (a soft video, then
    manipulated), not alike afterwards: softening a real and its fake together wipes out the
    blending cue, the pair cannot be told apart, and the model learns "soft = undecided", which
    still ranks soft reals far above crisp ones (MODEL_CARD.md, the softening experiment)."""
    if rng.random() < 0.5:
        return rescale(img, rng.uniform(0.2, 0.6))
    return cv2.GaussianBlur(img, (0, 0), img.shape[0] * rng.uniform(0.01, 0.025))


def crush(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A frame of a starved-bitrate video, seen at our crop's scale: the crop enlarged 2x (about
    the size a face has in a 256 px talking-head frame), H.264 at CRF 34-46 as an I-frame or (60 %)
    predicted from one or two slightly shifted frames, and shrunk back. Flat skin is smoothed into
    a plastic sheen while edges stay.

    Like ``soften``, training applies it to a real crop *before* its fakes are made (a low-bitrate
    video, then manipulated): the CRF 18-40 that pairs get alike is coded at the crop's own small
    size, where it blurs edges and blocks everything rather than flattening skin."""
    h, w = img.shape[:2]
    big = cv2.resize(img, (w * 2, h * 2), interpolation=cv2.INTER_LINEAR)
    frames = [big]
    if rng.random() < 0.6:
        frames = [_shifted(big, rng) for _ in range(int(rng.integers(1, 3)))] + frames
    return cv2.resize(h264(frames, int(rng.integers(34, 47))), (w, h), interpolation=cv2.INTER_AREA)


def smooth_skin(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A beauty filter or a camera's noise reduction: one or two edge-preserving (bilateral) passes
    whose reach is relative to the side, so fine skin texture goes and the face's outlines stay.

    Applied to a real crop before its fakes are made, as ``soften`` is: a smoothed real video,
    then manipulated."""
    side = img.shape[0]
    for _ in range(int(rng.integers(1, 3))):
        img = cv2.bilateralFilter(img, -1, float(rng.uniform(25, 60)), side * float(rng.uniform(0.015, 0.035)))
    return img


def reframe(img: np.ndarray, rng: np.random.Generator, most: float = 0.3) -> np.ndarray:
    """The crop of a picture whose frame ends close to the face: each edge, with probability 0.6,
    loses 2 % to ``most`` of the side, which is then filled by mirroring what is left, exactly as
    ``crop_face`` fills a crop that runs past the frame (BORDER_REFLECT_101).

    Tightly cropped sources (UTKFace's aligned photos, face-crop videos, profile pictures) give
    crops that are up to a third mirror image; a model that only saw such crops in one source
    learns the mirroring as part of that source. Tried for leave-UTKFace-out without effect, so not
    in the bundled model's recipe (MODEL_CARD.md: leave-UTKFace-out, measured again)."""
    h, w = img.shape[:2]
    top, bottom, left, right = (int(round(rng.uniform(0.02, most) * side)) if rng.random() < 0.6 else 0
                                for side in (h, h, w, w))
    if not top + bottom + left + right:
        return img
    inner = np.ascontiguousarray(img[top : h - bottom, left : w - right])
    return cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_REFLECT_101)


def greyscale(img: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def _shifted(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The picture a couple of pixels away: the previous frame of a slowly moving face."""
    h, w = img.shape[:2]
    m = np.float32([[1, 0, rng.uniform(-3, 3)], [0, 1, rng.uniform(-3, 3)]])
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)


def video_codec(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """H.264 at a random CRF 18-40 (I- or P-frame, sometimes a second generation at another CRF,
    sometimes after down-scaling, as a re-upload would be)."""
    h, w = img.shape[:2]
    even = img[: h // 2 * 2, : w // 2 * 2]
    generations = 2 if rng.random() < 0.3 else 1
    for _ in range(generations):
        frames = [even]
        if rng.random() < 0.6:
            frames = [_shifted(even, rng) for _ in range(int(rng.integers(1, 3)))] + frames
        preset = "ultrafast" if rng.random() < 0.3 else "veryfast"  # ultrafast: no deblocking filter, blockier
        even = h264(frames, int(rng.integers(18, 41)), preset)
    if even.shape[:2] != (h, w):
        even = cv2.copyMakeBorder(even, 0, h - even.shape[0], 0, w - even.shape[1], cv2.BORDER_REPLICATE)
    return even


def colour_cast(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A strong global colour change: white balance (a gain per channel), saturation and gamma."""
    f = img.astype(np.float32) * rng.uniform(0.8, 1.25, 3)
    gray = f.mean(axis=2, keepdims=True)
    f = np.clip(gray + (f - gray) * rng.uniform(0.4, 1.8), 0, 255)
    return (255 * (f / 255) ** rng.uniform(0.7, 1.4)).astype(np.uint8)


def _pixel_ops(img: np.ndarray, rng: np.random.Generator, strength: float, sharpening: float = 0.0,
               colour: float = 0.0) -> np.ndarray:
    """Flip, small shift/zoom, colour jitter, down/up-scaling, blur, noise; with ``sharpening`` > 0
    also greyscale (a sixth as often) and unsharp masking (that often); with ``colour`` > 0 a strong
    colour cast (that often) or greyscale (a sixth as often).

    SBI fakes often carry a sharpened inner face, so a model that never saw a uniformly sharpened
    *real* may learn "sharp = fake" (MODEL_CARD.md: the v3 experiment)."""
    h, w = img.shape[:2]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.5 * strength:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-5, 5), rng.uniform(0.93, 1.07))
        m[:, 2] += rng.uniform(-0.04, 0.04, 2) * (w, h)
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    img = np.ascontiguousarray(img)
    if rng.random() < 0.5 * strength:
        f = img.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
        gray = f.mean(axis=2, keepdims=True)
        f = gray + (f - gray) * rng.uniform(0.7, 1.3)
        img = np.clip(f, 0, 255).astype(np.uint8)
    if sharpening and rng.random() < sharpening / 6 * strength:
        img = greyscale(img)
    if colour:
        r = rng.random()
        if r < colour * strength:
            img = colour_cast(img, rng)
        elif r < colour * 7 / 6 * strength:
            img = greyscale(img)
    if rng.random() < 0.25 * strength:
        img = rescale(img, rng.uniform(0.4, 0.9))
    if rng.random() < 0.15 * strength:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.4))
    if sharpening and rng.random() < sharpening * strength:
        img = sharpen(img, rng.uniform(0.6, 2.0), rng.uniform(0.3, 1.5))
    if rng.random() < 0.15 * strength:
        img = np.clip(img + rng.normal(0, rng.uniform(2, 8), img.shape), 0, 255).astype(np.uint8)
    return img


def robustness(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """One crop's degradation: the pixel operations, then JPEG 30-100 half of the time."""
    img = _pixel_ops(img, rng, strength)
    if rng.random() < 0.5 * strength:
        img = jpeg(img, int(rng.integers(30, 101)))
    return img


def degrade_alike(images: list[np.ndarray], rng: np.random.Generator, *, codec: float = 0.7, strength: float = 1.0,
                  sharpening: float = 0.0, colour: float = 0.0) -> list[np.ndarray]:
    """The same random degradation for every image (same-sized crops of one face: a real and its
    fakes): identical draws for the pixel operations, then, with probability ``codec``, H.264 with
    identical draws (CRF, preset, motion, generations); otherwise JPEG 30-100 half of the time.
    With ``sharpening`` > 0, half that share of decoded pictures is sharpened again, alike, as a
    player or a broadcast chain that re-encodes does, which also sharpens the coding artefacts."""
    seed = int(rng.integers(2**32))
    out = [_pixel_ops(img, np.random.default_rng(seed), strength, sharpening, colour) for img in images]
    r = rng.random()
    if r < codec:
        seed = int(rng.integers(2**32))
        out = [video_codec(img, np.random.default_rng(seed)) for img in out]
    elif r < codec + (1 - codec) * 0.5 * strength:
        q = int(rng.integers(30, 101))
        out = [jpeg(img, q) for img in out]
    if sharpening and rng.random() < sharpening / 2 * strength:
        sigma, amount = rng.uniform(0.6, 2.0), rng.uniform(0.3, 1.2)
        out = [sharpen(img, sigma, amount) for img in out]
    return out
