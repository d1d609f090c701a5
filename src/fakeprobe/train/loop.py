"""``fakeprobe train``: fit a detector on extracted crops, optionally with self-blended fakes.

With ``sbi`` every real crop yields a pair in the same batch: itself and a self-blended fake of
itself, so the only difference the network can learn is the blending artefact.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import __version__
from ..model.calibration import fit_temperature, threshold_at_fpr
from ..model.checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from ..model.metrics import compute_metrics, video_level
from ..model.registry import Normalised, create_model, get_architecture
from .augment import crush, degrade_alike, reframe, robustness, smooth_skin, soften
from .data import CropItem, dense_landmarks, load_rgb, read_manifest, split_items
from .splits import SPLIT_SEED
from .sbi import cross_blend, face_points_from5, self_blend


@dataclass
class TrainConfig:
    data: list[Path]
    out: Path
    arch: str = "tf_efficientnet_lite0"
    imagenet: bool = True
    init: Path | None = None  # start from this checkpoint instead (fine-tuning)
    sbi: bool = False
    keep_fakes: bool = False  # with sbi: also use the fake crops found in the data
    xray_fraction: float = 0.0  # share of fakes blended from another person (Face X-ray style)
    input_size: int = 224
    margin: float = 1.3
    epochs: int = 10
    steps_per_epoch: int | None = None  # None: one pass over the training crops
    batch_size: int = 16  # crops per step (with sbi: half real, half their fakes)
    lr: float = 5e-4
    weight_decay: float = 1e-4
    val_fraction: float | None = None  # None: each source's default held-out shares (splits.HOLDOUT)
    test_fraction: float | None = None
    exclude_sources: tuple[str, ...] = ()  # sources left out of training and validation (splits.source_of)
    codec: float = 0.7  # with sbi: share of real/fake pairs passed through one H.264 encode together
    sharpening: float = 0.0  # with sbi: share of pairs sharpened alike (augment.degrade_alike)
    colour: float = 0.0  # with sbi: share of pairs given a strong colour cast alike (augment.degrade_alike)
    softening: float = 0.0  # with sbi: share of reals strongly softened before their fakes are made (augment.soften)
    smoothing: float = 0.0  # with sbi: share of reals given a beauty filter before their fakes are made (augment.smooth_skin)
    crushing: float = 0.0  # with sbi: share of reals starved of bitrate before their fakes are made (augment.crush)
    balance_sources: float = 0.0  # 0: every crop as often; 1: every source as often; between: a source's share ~ size ** (1 - b)
    reframe: float = 0.0  # with sbi: share of pairs whose frame ends close to the face, mirrored alike (augment.reframe)
    val_max: int = 600  # validation reals (each with one fake in sbi mode)
    seed: int = 0
    device: str = "cpu"
    workers: int = 1
    threads: int | None = None
    time_limit_min: float | None = None
    resume: bool = False
    target_fpr: float = 0.05
    name: str = "custom"
    log: list[str] = field(default_factory=list)


class PairDataset(Dataset):
    """Each item: one crop with its label, or in sbi mode a (real, self-blended fake) pair."""

    def __init__(self, items: list[CropItem], dense: dict[str, np.ndarray], cfg: TrainConfig, augment: bool, seed: int):
        self.items, self.dense, self.cfg, self.augment, self.seed = items, dense, cfg, augment, seed
        self.reals = [i for i, it in enumerate(items) if it.label == 0]
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    # Indices past len() are repeat visits of the same crop: they get fresh random fakes and
    # augmentations (the index seeds the generator), so a short epoch list can be cycled.

    def _points(self, it: CropItem) -> np.ndarray:
        pts = self.dense.get(str(it.path))
        return pts if pts is not None else face_points_from5(it.lm5)

    def _image(self, it: CropItem) -> tuple[np.ndarray, float]:
        """The crop at the input size, and the factor its landmarks must be scaled by."""
        img = load_rgb(it.path)
        s, side = self.cfg.input_size, img.shape[0]
        if side != s:  # crops made at another size
            img = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA if side > s else cv2.INTER_LINEAR)
        return img, s / side

    def __getitem__(self, i: int):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        it = self.items[i % len(self.items)]
        img, scale = self._image(it)
        before = []  # degradations of the real before its fakes are made; a cross blend's donor gets them alike
        if self.augment and self.cfg.sbi and it.label == 0:
            for share, degrade in ((self.cfg.softening, soften), (self.cfg.smoothing, smooth_skin), (self.cfg.crushing, crush)):
                if share and rng.random() < share:
                    before.append((degrade, int(rng.integers(2**32))))
        for degrade, seed in before:
            img = degrade(img, np.random.default_rng(seed))
        out, labels = [img], [it.label]
        if self.cfg.sbi and it.label == 0:
            pts = self._points(it) * scale
            if self.cfg.xray_fraction > 0 and rng.random() < self.cfg.xray_fraction and len(self.reals) > 1:
                donor = self.items[self.reals[int(rng.integers(len(self.reals)))]]
                donor_img, donor_scale = self._image(donor)
                for degrade, seed in before:
                    donor_img = degrade(donor_img, np.random.default_rng(seed))
                fake, _ = cross_blend(img, it.lm5 * scale, pts, donor_img, donor.lm5 * donor_scale, rng)
            else:
                fake, _ = self_blend(img, pts, rng)
            out.append(fake)
            labels.append(1)
        if self.augment:
            out = degrade_alike(out, rng, codec=self.cfg.codec, sharpening=self.cfg.sharpening, colour=self.cfg.colour) if len(out) > 1 else [robustness(out[0], rng)]
            if self.cfg.sbi and self.cfg.reframe and rng.random() < self.cfg.reframe:  # after decoding, as scan crops
                frame_seed = int(rng.integers(2**32))
                out = [reframe(img, np.random.default_rng(frame_seed)) for img in out]
        return torch.from_numpy(np.stack(out)), torch.tensor(labels, dtype=torch.float32)


def source_weights(items: list[CropItem], balance: float) -> np.ndarray:
    """Sampling probabilities of ``items`` that give each source (``CropItem.source_name``) a share
    proportional to its crop count ** (1 - balance): 0 leaves every crop alike, 1 every source alike."""
    sources = [it.source_name for it in items]
    counts = Counter(sources)
    w = np.array([counts[s] ** -balance for s in sources], np.float64)
    return w / w.sum()


def _collate(batch):
    return torch.cat([b[0] for b in batch]), torch.cat([b[1] for b in batch])


def _say(cfg: TrainConfig, text: str) -> None:
    cfg.log.append(text)
    print(text, file=sys.stderr, flush=True)


@torch.inference_mode()
def predict(net: torch.nn.Module, images: torch.Tensor, device: torch.device, batch: int = 64) -> np.ndarray:
    net.eval()
    out = []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(net(x).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def _validation_set(items: list[CropItem], dense, cfg: TrainConfig) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Validation crops (with one self-blended fake per real in sbi mode), their labels, and the
    source video or photo of each (fakes get their own source key)."""
    rng = np.random.default_rng(cfg.seed + 1)
    reals = [it for it in items if it.label == 0]
    fakes = [it for it in items if it.label == 1]
    if len(reals) > cfg.val_max:
        reals = [reals[i] for i in sorted(rng.choice(len(reals), cfg.val_max, replace=False))]
    if len(fakes) > cfg.val_max:
        fakes = [fakes[i] for i in sorted(rng.choice(len(fakes), cfg.val_max, replace=False))]
    ds = PairDataset(reals + fakes, dense, cfg, augment=False, seed=cfg.seed + 12345)
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    labels = torch.cat(ys).numpy()
    sources = [("photo:" if it.group.startswith("photo:") else "") + f"{it.source}#{int(y)}"
               for it, y_ in zip(reals + fakes, ys) for y in y_.tolist()]
    return torch.cat(xs), labels, sources


def _load_items(cfg: TrainConfig) -> list[CropItem]:
    """The crops of every data folder, less the excluded sources (and with sbi the fake crops,
    unless kept)."""
    items = [it for root in cfg.data for it in read_manifest(Path(root))]
    if cfg.sbi and not cfg.keep_fakes:
        items = [it for it in items if it.label == 0]
    return [it for it in items if it.source_name not in cfg.exclude_sources]


MIN_THRESHOLD_VIDEOS = 20  # a 5 % quantile needs at least this many real videos


def calibrate_logits(logits: np.ndarray, labels: np.ndarray, sources: list[str], fpr: float) -> tuple[float, float, str, dict]:
    """Temperature fitted on the crops, and the threshold at ``fpr`` on the real validation
    videos' mean calibrated logits (how scan scores a person). With fewer than
    MIN_THRESHOLD_VIDEOS real videos (photos do not count) the threshold is set on all real
    validation crops instead, and the returned rule says so."""
    temperature = fit_temperature(logits, labels)
    cal = logits / temperature
    vid_y, vid_z, keys = video_level(sources, labels, cal)
    is_video = np.array([not k.startswith("photo:") for k in keys], dtype=bool)
    real_videos = vid_z[(vid_y == 0) & is_video]
    if len(real_videos) >= MIN_THRESHOLD_VIDEOS:
        threshold = threshold_at_fpr(real_videos, fpr)
        rule = f"FPR {fpr:g} on {len(real_videos)} validation real videos (per-video mean logit)"
    else:
        threshold = threshold_at_fpr(cal[labels == 0], fpr)
        rule = (f"FPR {fpr:g} on {int((labels == 0).sum())} validation real face crops "
                f"(only {len(real_videos)} held-out videos: too few for a per-video rule)")
    return temperature, threshold, rule, compute_metrics(labels, cal, threshold=threshold)


def train(cfg: TrainConfig) -> dict:
    """Train, keep the best checkpoint by validation AUC, calibrate it; returns a summary."""
    start = time.time()
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    init = load_checkpoint(Path(cfg.init)) if cfg.init else None
    if init is not None:  # checked before the slow part
        if init.meta.arch != cfg.arch:
            raise ValueError(f"{cfg.init}: architecture {init.meta.arch} differs from --arch {cfg.arch}")
        if init.meta.members > 1:
            raise ValueError(f"{cfg.init}: a packed ensemble of {init.meta.members} networks; start from one of its members")
    items = _load_items(cfg)
    if not items:
        raise ValueError("no training crops found")
    n_fake = sum(it.label for it in items)
    if not cfg.sbi and (n_fake == 0 or n_fake == len(items)):
        raise ValueError("training needs both real and fake crops; use --sbi to synthesise fakes from reals")
    # the split is the data's, not the run's: every seed holds out the same groups (splits.py)
    train_items, val_items = split_items(items, cfg.val_fraction, SPLIT_SEED, cfg.test_fraction)
    if not val_items or not train_items:
        raise ValueError("too few distinct sources to hold out a validation split")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    arch = get_architecture(cfg.arch)
    if init is not None:
        model = create_model(cfg.arch)
        model.load_state_dict({k: v.float() for k, v in init.state_dict.items()}, strict=True)
    else:
        model = create_model(cfg.arch, imagenet=cfg.imagenet)
    dense = dense_landmarks(items, cfg.margin) if cfg.sbi else {}
    _say(cfg, f"{len(train_items)} training crops, {len(val_items)} validation crops; dense landmarks for {len(dense)} "
              f"({'dlib' if dense else 'none: 5-point outline masks'})")
    net = Normalised(model, arch.mean, arch.std).to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_ds = PairDataset(train_items, dense, cfg, augment=True, seed=cfg.seed)
    per_item = 2 if cfg.sbi else 1
    loader_batch = max(1, cfg.batch_size // per_item)
    steps = cfg.steps_per_epoch or math.ceil(len(train_ds) / loader_batch)
    total = steps * cfg.epochs
    limit_s = cfg.time_limit_min * 60 if cfg.time_limit_min else None

    def lr_at(step: int, trained_s: float) -> float:
        """Warm-up then cosine decay, over the steps or the time budget, whichever ends first."""
        progress = step / total
        if limit_s:
            progress = max(progress, trained_s / limit_s)
        warm = min(1.0, (step + 1) / max(1, total // 30))
        return cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    val_x, val_y, val_src = _validation_set(val_items, dense, cfg)
    if len(np.unique(val_y)) < 2:  # no AUC, so no epoch could ever be kept as the best
        raise ValueError(f"the validation split ({len(val_items)} crops from {len({it.group for it in val_items})} sources) holds only "
                         f"{'fake' if val_y.min() == 1 else 'real'} crops; add more source videos or raise --val-fraction")
    weights = source_weights(train_items, cfg.balance_sources) if cfg.balance_sources else None
    state_path = out / "state.pt"
    first_epoch, best_auc, history = 0, -1.0, []
    step_count, trained_s = 0, 0.0
    if cfg.resume and state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        net.load_state_dict(st["net"])
        opt.load_state_dict(st["opt"])
        first_epoch, best_auc = int(st["epoch"]) + 1, float(st["best_auc"])
        step_count, trained_s = int(st["step"]), float(st["trained_s"])
        history = list(st.get("history", []))  # the summary covers every epoch, not just this run's
        if "torch_rng" in st:
            torch.set_rng_state(st["torch_rng"])  # dropout continues as if never interrupted
        _say(cfg, f"resumed after epoch {first_epoch}")
    meta = ModelMeta(arch=cfg.arch, input_size=cfg.input_size, mean=arch.mean, std=arch.std, crop_margin=cfg.margin, name=cfg.name, version=__version__)
    stopped = False
    for epoch in range(first_epoch, cfg.epochs):
        train_ds.epoch = epoch
        rng = np.random.default_rng((cfg.seed, epoch))  # per epoch: a resumed run draws the same order
        need = steps * loader_batch
        n = len(train_ds)
        if cfg.balance_sources:
            order = (rng.choice(n, size=need, p=weights) + n * rng.integers(0, 1 << 20, need)).tolist()
        else:
            order = np.concatenate([rng.permutation(n) + k * n for k in range(math.ceil(need / n))])[:need].tolist()
        loader = DataLoader(train_ds, batch_size=loader_batch, sampler=order, num_workers=cfg.workers, collate_fn=_collate,
                            persistent_workers=False, pin_memory=device.type == "cuda", drop_last=True,
                            prefetch_factor=4 if cfg.workers else None)
        net.train()
        losses, t0 = [], time.time()
        for x, y in loader:
            lr = lr_at(step_count, trained_s + time.time() - t0)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = net(x).float()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_count += 1
            losses.append(loss.item())
            if limit_s and trained_s + time.time() - t0 >= limit_s:
                stopped = True
                break
        trained_s += time.time() - t0
        val_logits = predict(net, val_x, device)
        m = compute_metrics(val_y, val_logits)
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else float("nan"), "val_auc": m["auc"], "steps": len(losses),
               "seconds": round(time.time() - t0, 1)}
        history.append(rec)
        _say(cfg, f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['loss']:.4f}, validation AUC {m['auc']:.4f}, "
                  f"{len(losses)} steps in {rec['seconds']} s")
        if m["auc"] > best_auc:
            best_auc = m["auc"]
            save_checkpoint(out / "best.safetensors", net.model, meta)
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "best_auc": best_auc, "step": step_count,
                    "trained_s": trained_s, "history": history, "torch_rng": torch.get_rng_state()}, state_path)
        if stopped:
            _say(cfg, f"training time limit of {cfg.time_limit_min:g} min reached")
            break

    # calibrate the best checkpoint on the validation split
    from safetensors.torch import load_file

    net.model.load_state_dict(load_file(str(out / "best.safetensors")))
    val_logits = predict(net, val_x, device)
    temperature, threshold, rule, final = calibrate_logits(val_logits, val_y, val_src, cfg.target_fpr)
    meta.temperature, meta.threshold = float(temperature), float(threshold)
    meta.training = {
        "data": [Path(d).name for d in cfg.data], "sbi": cfg.sbi, "xray_fraction": cfg.xray_fraction, "epochs_run": len(history),
        "train_crops": len(train_items), "val_crops": len(val_items), "imagenet_start": cfg.imagenet and cfg.init is None, "init": Path(cfg.init).name if cfg.init else None, "batch_size": cfg.batch_size,
        "codec": cfg.codec if cfg.sbi else None, "sharpening": cfg.sharpening if cfg.sbi else None, "colour": cfg.colour if cfg.sbi else None, "softening": cfg.softening if cfg.sbi else None, "smoothing": cfg.smoothing if cfg.sbi else None, "crushing": cfg.crushing if cfg.sbi else None,
        "reframe": cfg.reframe if cfg.sbi else None, "balance_sources": cfg.balance_sources, "exclude_sources": list(cfg.exclude_sources),
        "sources": dict(sorted(Counter(it.source_name for it in train_items).items())),
        "lr": cfg.lr, "seed": cfg.seed, "split_seed": SPLIT_SEED, "device": cfg.device, "minutes": round((time.time() - start) / 60, 1),
        "val": {k: final[k] for k in ("auc", "ap", "eer", "acc", "logloss", "ece")}, "threshold_rule": rule,
        "val_videos": sorted({Path(it.source).name for it in val_items if not it.group.startswith("photo:")}),
        "history": history,
    }
    sha = save_checkpoint(out / "best.safetensors", net.model, meta)
    summary = {"checkpoint": str(out / "best.safetensors"), "sha256": sha, "meta": dataclasses.asdict(meta)}
    _say(cfg, f"best validation AUC {best_auc:.4f}; temperature {temperature:.3f}, threshold {threshold:.3f}; wrote {out / 'best.safetensors'}")
    return summary


def recalibrate(weights: Path, cfg: TrainConfig, out: Path) -> dict:
    """Refit temperature and threshold of a checkpoint on the validation split of ``cfg.data``
    (the same split and self-blended fakes that training would hold out); weights unchanged."""
    ckpt = load_checkpoint(Path(weights))
    cfg = dataclasses.replace(cfg, input_size=ckpt.meta.input_size, margin=ckpt.meta.crop_margin)
    items = _load_items(cfg)
    _, val_items = split_items(items, cfg.val_fraction, SPLIT_SEED, cfg.test_fraction)
    if not val_items:
        raise ValueError("no validation crops in the data")
    dense = dense_landmarks(items, cfg.margin) if cfg.sbi else {}
    val_x, val_y, val_src = _validation_set(val_items, dense, cfg)
    if val_y.min() == val_y.max():
        raise ValueError("calibration needs real and fake validation crops; use --sbi for real-only data")
    device = torch.device(cfg.device)
    net = Normalised(ckpt.build(), ckpt.meta.mean, ckpt.meta.std).to(device)
    temperature, threshold, rule, final = calibrate_logits(predict(net, val_x, device), val_y, val_src, cfg.target_fpr)
    meta = ckpt.meta
    meta.temperature, meta.threshold = float(temperature), float(threshold)
    meta.training = {**meta.training, "threshold_rule": rule,
                     "val": {k: final[k] for k in ("auc", "ap", "eer", "acc", "logloss", "ece")},
                     "recalibrated_from_sha256": ckpt.sha256}
    sha = ckpt.save_as(out, meta)
    return {"checkpoint": str(out), "sha256": sha, "temperature": temperature, "threshold": threshold, "rule": rule,
            "val": meta.training["val"]}
