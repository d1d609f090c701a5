"""Checkpoints: one safetensors file whose header carries the model's JSON metadata.

Loading never unpickles. A seed-style ``.pt`` state dict can be converted once with
``fakeprobe convert``, which reads it with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .. import __version__
from ..core.errors import ModelError, NoModelError
from .registry import create_model, get_architecture

META_KEY = "fakeprobe"
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "default.safetensors"


@dataclass
class ModelMeta:
    arch: str
    input_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    crop_margin: float = 1.3
    align: bool = False
    threshold: float = 0.5  # on the calibrated probability
    temperature: float = 1.0  # calibrated logit = raw logit / temperature
    members: int = 1  # > 1: a packed ensemble of that many ``arch`` networks (``fakeprobe.model.ensemble``)
    adapt_blocks: int = 0  # > 0: crop-adaptive normalisation of the stem and that many stages (``adaptive_norm``)
    adapt_mix: float = 0.0  # the crop's share of those layers' statistics
    adapt_amplify: bool = True  # False: a crop's variance never scales it up (soft crops stay soft)
    name: str = "custom"
    version: str = __version__
    training: dict = field(default_factory=dict)

    @property
    def adapt(self) -> tuple[int, float, bool]:
        """Crop-adaptive normalisation: (blocks, mix, amplify); blocks 0 is off."""
        return self.adapt_blocks, self.adapt_mix, self.adapt_amplify

    @classmethod
    def for_arch(cls, arch: str, **kw) -> "ModelMeta":
        a = get_architecture(arch)
        return cls(arch=arch, mean=a.mean, std=a.std, **kw)

    @classmethod
    def from_json(cls, text: str) -> "ModelMeta":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        for key in ("mean", "std"):
            if key in kw:
                kw[key] = tuple(float(x) for x in kw[key])
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclass
class Checkpoint:
    meta: ModelMeta
    state_dict: dict[str, torch.Tensor]
    path: Path | None = None
    sha256: str = ""

    @property
    def half(self) -> bool:
        """Stored as float16 (``save_checkpoint(..., half=True)``)."""
        return all(v.dtype == torch.float16 for v in self.state_dict.values() if v.is_floating_point())

    @property
    def model_id(self) -> str:
        return self.sha256[:12]

    def build(self) -> torch.nn.Module:
        model = create_model(self.meta.arch, members=self.meta.members, adapt=self.meta.adapt)
        model.load_state_dict(self.state_dict, strict=True)
        return model.eval()

    def save_as(self, path: Path, meta: ModelMeta) -> str:
        """These weights, stored as they are (float16 stays float16), with other metadata; returns the sha256."""
        return save_checkpoint(path, self.build(), meta, half=self.half)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: Path, model: torch.nn.Module, meta: ModelMeta, half: bool = False) -> str:
    """Write the model's weights and metadata; returns the file's sha256. ``half``: store floating
    tensors as float16 (half the file; loading widens them back to float32)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={META_KEY: meta.to_json()})
    tmp.replace(path)
    return file_sha256(path)


def load_checkpoint(path: Path | None = None) -> Checkpoint:
    """Load a safetensors checkpoint (default: the bundled model)."""
    if path is None:
        path = DEFAULT_WEIGHTS
        if not path.exists():
            raise NoModelError(
                "no model is installed: the bundled default weights are missing from this installation; "
                "reinstall fakeprobe, or pass --weights FILE.safetensors (train one with `fakeprobe train`)"
            )
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    with open(path, "rb") as f:
        head = f.read(16)
    looks_safetensors = head[8:9] == b"{"  # 8-byte header length, then the JSON header
    if not looks_safetensors and (head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"):
        raise ModelError(
            f"{path}: refusing a pickle/zip checkpoint (it could run code when loaded); "
            "only .safetensors weights are accepted. Convert a trusted state dict with `fakeprobe convert`"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta_text = (f.metadata() or {}).get(META_KEY)
            if meta_text is None:
                raise ModelError(f"{path}: safetensors file has no fakeprobe metadata")
            state = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as exc:
        raise ModelError(f"{path}: not a valid safetensors file ({exc})") from None
    try:
        meta = ModelMeta.from_json(meta_text)
        get_architecture(meta.arch)
        if not isinstance(meta.members, int) or meta.members < 1:
            raise ValueError(f"members must be a whole number >= 1, not {meta.members!r}")
        if not isinstance(meta.adapt_blocks, int) or meta.adapt_blocks < 0:
            raise ValueError(f"adapt_blocks must be a whole number >= 0, not {meta.adapt_blocks!r}")
        if meta.adapt_blocks and not (isinstance(meta.adapt_mix, (int, float)) and 0 < meta.adapt_mix <= 1):
            raise ValueError(f"adapt_mix must be in (0, 1] when adapt_blocks is set, not {meta.adapt_mix!r}")
        if not isinstance(meta.adapt_amplify, bool):
            raise ValueError(f"adapt_amplify must be true or false, not {meta.adapt_amplify!r}")
        stored = len({k.split(".")[1] for k in state if k.startswith("members.")}) or 1
        if stored != meta.members:
            raise ValueError(f"it says {meta.members} member network(s) but holds the weights of {stored}")
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: bad metadata ({exc})") from None
    return Checkpoint(meta=meta, state_dict=state, path=path, sha256=file_sha256(path))


def convert_state_dict(src: Path, dst: Path, meta: ModelMeta) -> str:
    """Convert a trusted seed-style ``.pt`` state dict to a safetensors checkpoint."""
    if not Path(src).is_file():
        raise ModelError(f"{src}: file not found")
    try:
        state = torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler refused it, or it is no torch file at all
        raise ModelError(
            f"{src}: not a plain tensor state dict, refusing it (torch.load with weights_only=True failed: {type(exc).__name__})"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{src}: expected a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = create_model(meta.arch)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{src}: does not match architecture {meta.arch}: {str(exc).splitlines()[0]}") from None
    return save_checkpoint(dst, model, meta)
