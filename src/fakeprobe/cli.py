"""The ``fakeprobe`` command line."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .core.config import ScanConfig

EXIT_CLEAN, EXIT_FLAGGED, EXIT_FAILED = 0, 1, 2


def _err(msg: str) -> None:
    print(f"fakeprobe: {msg}", file=sys.stderr, flush=True)


# command-line option -> ScanConfig field, for the options a command has
_SCAN_OPTIONS = {"frames": "frames", "threshold": "threshold", "margin": "margin", "time_limit": "time_limit_s",
                 "max_pixels": "max_pixels", "max_duration": "max_duration_s", "threads": "threads", "detect_every": "detect_every"}


def _scan_config(args) -> ScanConfig:
    """The one ScanConfig a command builds from its options; an option out of range ends the
    command with a message naming the option."""
    from .core.config import ConfigError, ScanConfig

    kw = {"device": args.device, "backend": getattr(args, "backend", "auto")}
    kw.update({field: getattr(args, opt) for opt, field in _SCAN_OPTIONS.items() if getattr(args, opt, None) is not None})
    try:
        return ScanConfig(**kw)
    except ConfigError as exc:
        option = next((o for o, f in _SCAN_OPTIONS.items() if f == exc.field), exc.field)
        raise SystemExit(_fail(f"--{option.replace('_', '-')} {exc.message}")) from None


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", action="append", metavar="FILE", help="safetensors checkpoint; repeat for an ensemble (default: bundled model)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"], help="classifier runtime (auto: ONNX Runtime on CPU)")
    p.add_argument("--threshold", type=float, help="probability at or above which a file is FAKE (default: the model's calibrated one)")


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(_fail("--device cuda: no CUDA device is available"))
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise SystemExit(_fail("--device mps: MPS is not available"))
    if device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise SystemExit(_fail(f"--device {device}: expected cpu, cuda or mps"))


def _fail(msg: str) -> int:
    _err(msg)
    return EXIT_FAILED


def _detector(config: ScanConfig, weights: list[str] | None):
    from .scan.detector import Detector

    _check_device(config.device)
    return Detector(weights=weights or None, config=config)


# -- scan -------------------------------------------------------------------------------------
def cmd_scan(args) -> int:
    from .core.output import table, write_csv, write_json, write_jsonl_line
    from .core.results import ERROR, FAKE
    from .media.inputs import expand_inputs

    config = _scan_config(args)
    inputs = list(args.paths)
    if args.from_list:
        from .media.inputs import read_input_list

        try:
            inputs += read_input_list(args.from_list)
        except (OSError, UnicodeDecodeError) as exc:
            return _fail(f"{args.from_list}: cannot read the input list ({getattr(exc, 'strerror', None) or exc})")
    paths = expand_inputs(inputs)
    if not paths:
        return _fail("no input files found")
    if args.ray:
        return _scan_on_ray(args, paths, config)
    if args.parquet:
        return _fail("--parquet is written by --ray scans; a local scan writes --jsonl, --json or --csv")
    earlier: list[str] = []  # verdicts already in the output (--resume)
    if args.resume:
        if not (args.jsonl and args.output):
            return _fail("--resume needs --jsonl -o FILE (or --ray)")
        try:
            paths, earlier = _skip_done(paths, args.output, parquet=False)
        except (OSError, ValueError) as exc:
            return _fail(str(exc))
    plan = None  # --report / --report-dir / --heatmaps: written where the crops are (the worker)
    if args.report or args.report_dir or args.heatmaps:
        if args.report and len(paths) > 1:
            return _fail(f"--report FILE takes one input ({len(paths)} found): use --report-dir DIR for a batch")
        from .report.reporter import ReportPlan

        try:
            plan = ReportPlan(paths, report=args.report, report_dir=args.report_dir, heatmaps=args.heatmaps)
        except OSError as exc:
            return _fail(f"cannot create the report folders ({exc})")
    report_task = plan.task if plan else None
    fmt = "json" if args.json else "jsonl" if args.jsonl else "csv" if args.csv else "table"
    try:
        out = open(args.output, "a" if args.resume else "w", newline="") if args.output else sys.stdout
    except OSError as exc:
        return _fail(f"{args.output}: cannot write output ({exc.strerror})")
    results = []
    if args.workers == 0:  # in this process: no hard time limit, no crash isolation
        detector = _detector(config, args.weights)
        scanned = (report_task(detector, p) for p in paths) if report_task else detector.scan_many(paths)
    else:
        from .scan.pool import ScanPool

        _check_device(config.device)
        scanned = ScanPool(args.weights or None, config, workers=args.workers, task=report_task).scan_many(paths)
    show_progress = not args.quiet and sys.stderr.isatty() and len(paths) > 1
    try:
        from rich.progress import Progress

        with Progress(transient=True, disable=not show_progress) as progress:
            task = progress.add_task("scanning", total=len(paths))
            for r in scanned:
                results.append(r)
                progress.advance(task)
                if r.verdict == ERROR:
                    _err(r.error.message)
                if fmt == "jsonl":
                    write_jsonl_line(r, out)
                if plan is not None:
                    plan.add(r)
        if plan is not None:
            index = plan.close()
            for msg in plan.failures:
                _err(msg)
            if not args.quiet:
                for where in [args.report, index, args.heatmaps]:
                    if where:
                        print(f"evidence written to {where}", file=sys.stderr)
        if fmt == "json":
            write_json(results, out)
        elif fmt == "csv":
            write_csv(results, out)
        if fmt == "table" or (args.output and not args.quiet):
            sys.stdout.write(table(results, color=sys.stdout.isatty()))
    finally:
        if args.output:
            out.close()
    if any(r.verdict == ERROR for r in results) or (plan is not None and plan.failures) or ERROR in earlier:
        return EXIT_FAILED
    return EXIT_FLAGGED if any(r.flagged for r in results) or FAKE in earlier else EXIT_CLEAN


def _skip_done(paths: list[Path], output: str, parquet: bool) -> tuple[list[Path], list[str]]:
    """--resume: the inputs that ``output`` has no record of yet, and the verdicts of those it has
    (a JSONL file's cut-off last line is dropped, so appending starts on a fresh line)."""
    from .distributed import drop_truncated_tail, path_key, previous_verdicts

    done = previous_verdicts(output, parquet=parquet)
    if not parquet:
        drop_truncated_tail(output)
    keys = [path_key(p) for p in paths]
    return [p for p, k in zip(paths, keys) if k not in done], [done[k] for k in keys if k in done]


def _scan_on_ray(args, paths: list[Path], config: ScanConfig) -> int:
    """``scan --ray``: the same analysis on a Ray cluster; JSON Lines (or Parquet parts) as files finish."""
    from .core.results import ERROR, FAKE
    from .distributed import JsonlSink, ParquetSink, ray_scan

    other = [o for o, on in (("--json", args.json), ("--csv", args.csv), ("--report", args.report),
                             ("--report-dir", args.report_dir), ("--heatmaps", args.heatmaps)) if on]
    if other:
        return _fail(f"--ray writes JSON Lines or --parquet, not {other[0]}")
    if (args.parquet or args.resume) and not args.output:
        return _fail(f"{'--parquet' if args.parquet else '--resume'} needs -o {'DIR' if args.parquet else 'FILE'}")
    if args.actors is not None and args.actors < 1:
        return _fail("--actors must be at least 1")
    if args.parquet and Path(args.output).is_file():
        return _fail(f"{args.output}: --parquet writes a folder of parts; this is a file")
    earlier: list[str] = []
    if args.resume:
        try:
            paths, earlier = _skip_done(paths, args.output, parquet=args.parquet)
        except (OSError, ValueError) as exc:
            return _fail(str(exc))
    elif args.parquet and any(Path(args.output).glob("part-*.parquet")):
        return _fail(f"{args.output} already holds Parquet parts: add --resume to go on, or remove them")
    if config.device.split(":")[0] not in ("cpu", "cuda", "mps"):  # whether it is there is for the cluster's nodes to say
        return _fail(f"--device {config.device}: expected cpu, cuda or mps")
    records = ray_scan(paths, config, args.ray, weights=args.weights or None, actors=args.actors)
    out = None
    try:
        if not args.parquet and args.output:
            out = open(args.output, "a" if args.resume else "w")
        sink = ParquetSink(args.output) if args.parquet else JsonlSink(out or sys.stdout)
    except OSError as exc:
        return _fail(f"{args.output}: cannot write output ({exc.strerror})")
    verdicts = list(earlier)
    show_progress = not args.quiet and sys.stderr.isatty() and len(paths) > 1
    from rich.progress import Progress

    try:
        with sink, Progress(transient=True, disable=not show_progress) as progress:
            task = progress.add_task("scanning", total=len(paths))
            for record in records:
                sink.write(record)
                verdicts.append(record["verdict"])
                progress.advance(task)
                if record["verdict"] == ERROR:
                    _err(record["error"]["message"])
    finally:
        if out is not None:
            out.close()
    if ERROR in verdicts:
        return EXIT_FAILED
    return EXIT_FLAGGED if FAKE in verdicts else EXIT_CLEAN


# -- detect (the original design's interface) --------------------------------------------------
def cmd_detect(args) -> int:
    from .core.results import ERROR, NO_FACE

    detector = _detector(_scan_config(args), args.weights)
    r = detector.scan(args.video)
    if r.verdict == ERROR:
        return _fail(r.error.message)
    if r.verdict == NO_FACE:
        _err(f"{args.video}: no face found")
        return EXIT_FAILED
    print(f"Result: {r.verdict}")
    print(f"Fake probability: {r.probability:.3f} (threshold: {f'{r.threshold:.3f}'.rstrip('0').rstrip('.')})")
    print(f"Analyzed faces from: {args.video}")
    return EXIT_FLAGGED if r.flagged else EXIT_CLEAN


# -- extract ----------------------------------------------------------------------------------
def cmd_extract(args) -> int:
    from .media.inputs import expand_inputs
    from .scan.analysis import Analyzer
    from .train.extract import extract, label_inputs, read_labels_csv

    try:
        items = read_labels_csv(Path(args.labels)) if args.labels else []
        if args.paths:
            items += label_inputs(expand_inputs(args.paths), args.label)
    except (ValueError, KeyError, OSError) as exc:
        return _fail(str(exc))
    if not items:
        return _fail("nothing to extract: give videos, folders or --labels CSV")
    failed = []

    def report(item, n, err):
        if err:
            failed.append(item.path)
            _err(err)
        elif not args.quiet:
            print(f"{item.path}: {n} crops ({item.label}{'/' + item.method if item.method else ''})", file=sys.stderr)

    analyzer = Analyzer(_scan_config(args))
    total = extract(items, Path(args.output), analyzer, size=args.size, margin=args.margin, align=args.align, on_item=report)
    print(f"{total} crops from {len(items) - len(failed)} files written to {args.output}")
    return EXIT_FAILED if failed else EXIT_CLEAN


# -- train ------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from .train.loop import TrainConfig, train

    _check_device(args.device)
    cfg = TrainConfig(
        data=[Path(d) for d in args.data], out=Path(args.out), arch=args.arch, imagenet=args.pretrained == "imagenet",
        init=Path(args.init) if args.init else None, sbi=args.sbi, keep_fakes=args.keep_fakes, xray_fraction=args.xray, input_size=args.size, margin=args.margin,
        epochs=args.epochs, steps_per_epoch=args.steps, batch_size=args.batch_size, lr=args.lr, val_fraction=args.val_fraction,
        test_fraction=args.test_fraction, exclude_sources=tuple(args.exclude_source or ()), codec=args.codec, sharpening=args.sharpening, colour=args.colour,
        softening=args.softening, smoothing=args.smoothing, crushing=args.crushing, reframe=args.reframe, balance_sources=args.balance_sources,
        val_max=args.val_max, seed=args.seed, device=args.device, workers=args.workers, threads=args.threads,
        time_limit_min=args.time_limit, resume=args.resume, target_fpr=args.target_fpr, name=args.name,
    )
    try:
        summary = train(cfg)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        return _fail(str(exc))
    print(json.dumps({"checkpoint": summary["checkpoint"], "sha256": summary["sha256"], "val": summary["meta"]["training"]["val"]}, indent=2))
    return EXIT_CLEAN


def cmd_calibrate(args) -> int:
    from .train.loop import TrainConfig, recalibrate

    cfg = TrainConfig(data=[Path(d) for d in args.data], out=Path(args.out).parent, sbi=args.sbi, val_fraction=args.val_fraction,
                      val_max=args.val_max, seed=args.seed, target_fpr=args.target_fpr, device=args.device)
    try:
        res = recalibrate(Path(args.weights), cfg, Path(args.out))
    except (ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    print(json.dumps(res, indent=2))
    return EXIT_CLEAN


# -- eval -------------------------------------------------------------------------------------
def cmd_eval(args) -> int:
    from .evaluation.evaluate import evaluate, parse_perturbations

    try:
        perturbs = parse_perturbations(args.perturb or [])
    except ValueError as exc:
        return _fail(str(exc))
    detector = _detector(_scan_config(args), args.weights)
    try:
        report = evaluate(detector, args.inputs, Path(args.out) if args.out else None, labels_csv=args.labels, perturbations=perturbs,
                          progress=not args.quiet)
    except ValueError as exc:
        return _fail(str(exc))
    print(report["table"])
    return EXIT_CLEAN


# -- serve ------------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    try:
        import uvicorn

        from .serve import Settings, SettingsError, create_app
        from .serve.settings import load_tokens
    except ImportError as exc:
        return _fail(f"serve needs the serve extra ({exc.name} is missing): pip install \"fakeprobe[serve]\"")
    config = _scan_config(args)
    if args.max_upload_mb <= 0:
        return _fail("--max-upload-mb must be positive")
    if args.allow_root and not Path(args.allow_root).is_dir():
        return _fail(f"--allow-root {args.allow_root}: not a folder")
    _check_device(config.device)
    try:
        tokens = frozenset() if args.no_auth else load_tokens(args.token_file)
        settings = Settings(
            data_dir=Path(args.data_dir), tokens=tokens, auth=not args.no_auth, host=args.host, port=args.port, workers=args.workers,
            max_queue=args.max_queue, max_upload_bytes=int(args.max_upload_mb * 2**20),
            allow_root=Path(args.allow_root).resolve() if args.allow_root else None,
            weights=tuple(args.weights) if args.weights else None, scan=config)
        app = create_app(settings)
    except SettingsError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"--data-dir {args.data_dir}: cannot use it ({exc.strerror or exc})")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)
    return EXIT_CLEAN


# -- info / convert ---------------------------------------------------------------------------
def cmd_info(args) -> int:
    from .model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(Path(args.weights) if args.weights else None)
    meta = dataclasses.asdict(ckpt.meta)
    if not args.history:  # a packed ensemble: its members' too
        for training in [meta.get("training", {}), *(m.get("training", {}) for m in meta.get("training", {}).get("ensemble_of", []))]:
            training.pop("history", None)
    print(json.dumps({"path": str(ckpt.path), "sha256": ckpt.sha256, **meta}, indent=2))
    return EXIT_CLEAN


def cmd_convert(args) -> int:
    from .model.checkpoint import ModelMeta, convert_state_dict

    meta = ModelMeta.for_arch(args.arch, input_size=args.size, crop_margin=args.margin, threshold=args.threshold, name=args.name)
    sha = convert_state_dict(Path(args.src), Path(args.dst), meta)
    print(f"wrote {args.dst} (sha256 {sha})")
    return EXIT_CLEAN


def cmd_pack(args) -> int:
    from .model.checkpoint import load_checkpoint, save_checkpoint
    from .model.ensemble import pack, unpack

    adapt = None if args.adapt_blocks is None else (args.adapt_blocks, args.adapt_mix, not args.adapt_no_amplify)
    members = []
    for path in args.members:  # a packed ensemble given here stands for its members
        checkpoint = load_checkpoint(Path(path))
        members.extend(unpack(checkpoint) if checkpoint.meta.members > 1 else [checkpoint])
    try:
        model, meta = pack(members, args.name, adapt)
    except ValueError as exc:
        return _fail(f"--adapt-blocks {args.adapt_blocks} --adapt-mix {args.adapt_mix}: {exc}")
    sha = save_checkpoint(Path(args.out), model, meta, half=args.half)
    print(f"wrote {args.out} (sha256 {sha}): {meta.members} members; temperature 1, threshold {meta.threshold:.3f} "
          "(their mean): calibrate it before use")
    return EXIT_CLEAN


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fakeprobe", description="Flag face-manipulated video (deepfakes).")
    p.add_argument("--version", action="version", version=f"fakeprobe {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("scan", help="scan videos, images, folders or globs")
    s.add_argument("paths", nargs="*", metavar="PATH")
    s.add_argument("--from-list", metavar="FILE",
                   help="also scan the inputs listed in FILE, one per line (- : standard input); blank lines and #comments are ignored")
    _add_model_args(s)
    s.add_argument("--frames", type=int, help="frames sampled per video (default 32)")
    s.add_argument("--margin", type=float, help="face crop margin (default: the model's, 1.3)")
    s.add_argument("--time-limit", type=float, help="seconds allowed per file (default 300)")
    s.add_argument("--workers", type=int, default=1,
                   help="analysis processes (default 1); each file gets a hard time limit and crash isolation; 0: in this process")
    s.add_argument("--threads", type=int, help="CPU threads per analysis process, decoder included (default: its share of the cores)")
    s.add_argument("--detect-every", type=int, metavar="N",
                   help="full face search on every N-th sampled frame (default 4) and on each frame in between that shows "
                        "something new away from the faces already known; the other frames are searched only near the faces "
                        "found on either side. 1: full search on every frame (slower)")
    s.add_argument("--max-pixels", type=int, help="refuse frames/images with more pixels (default 8192*8192)")
    s.add_argument("--max-duration", type=float, help="analyse at most this many seconds of each video (default 10800)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="one JSON array of records")
    g.add_argument("--jsonl", action="store_true", help="one JSON record per line, as each file finishes")
    g.add_argument("--csv", action="store_true", help="one CSV row per file")
    g.add_argument("--parquet", action="store_true", help="with --ray: Parquet parts in the folder -o DIR (see README)")
    s.add_argument("-o", "--output", metavar="FILE", help="write the JSON/JSONL/CSV there (the table still goes to stdout)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress, no table when writing to a file")
    s.add_argument("--report", metavar="FILE", help="write a self-contained HTML evidence report (one input)")
    s.add_argument("--report-dir", metavar="DIR", help="write one HTML report per input and an index.html linking them")
    s.add_argument("--heatmaps", metavar="DIR", help="write Grad-CAM heatmap PNGs of the most suspicious faces (<stem>_t<track>_f<frame>.png)")
    s.add_argument("--resume", action="store_true", help="skip the inputs the output (-o) already has a record of, and append")
    s.add_argument("--ray", metavar="ADDRESS",
                   help="scan on Ray (pip install 'fakeprobe[ray]'): local (a Ray instance on this machine), auto (the cluster "
                        "this machine is part of) or ray://HOST:10001; writes JSON Lines as files finish, or --parquet")
    s.add_argument("--actors", type=int, metavar="N", help="with --ray: at most N scan actors at once (default: as the cluster's CPUs allow)")
    s.set_defaults(func=cmd_scan)

    d = sub.add_parser("detect", help="one video, the original design's output")
    d.add_argument("--video", required=True)
    _add_model_args(d)
    d.set_defaults(func=cmd_detect, frames=None, margin=None)

    e = sub.add_parser("extract", help="videos/images -> face crops + manifest.csv for training")
    e.add_argument("paths", nargs="*", metavar="PATH")
    e.add_argument("-o", "--output", required=True, metavar="DIR")
    e.add_argument("--label", choices=["real", "fake"], help="label for every input (default: from FF++ layout or a real/fake folder)")
    e.add_argument("--labels", metavar="CSV", help="CSV with columns path,label[,method]")
    e.add_argument("--frames", type=int, default=32)
    e.add_argument("--size", type=int, default=224)
    e.add_argument("--margin", type=float, default=1.3)
    e.add_argument("--align", action="store_true", help="rotate crops so the eyes are level")
    e.add_argument("--device", default="cpu")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_extract)

    t = sub.add_parser("train", help="train a detector on extracted crops")
    t.add_argument("--data", action="append", required=True, metavar="DIR", help="folder made by extract (repeatable)")
    t.add_argument("--out", required=True, metavar="DIR")
    t.add_argument("--sbi", action="store_true", help="synthesise self-blended fakes from the real crops")
    t.add_argument("--keep-fakes", action="store_true", help="with --sbi, also train on the fake crops in the data")
    t.add_argument("--xray", type=float, default=0.0, help="share of fakes blended from another person (0-1)")
    t.add_argument("--arch", default="tf_efficientnet_lite0")
    t.add_argument("--pretrained", choices=["imagenet", "none"], default="imagenet")
    t.add_argument("--init", metavar="FILE", help="start from this safetensors checkpoint (fine-tune)")
    t.add_argument("--size", type=int, default=224)
    t.add_argument("--margin", type=float, default=1.3)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--steps", type=int, help="steps per epoch (default: one pass)")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--val-fraction", type=float, help="validation share of the sources (default: per source, see splits.py)")
    t.add_argument("--test-fraction", type=float, help="share held out of training and validation (default: per source)")
    t.add_argument("--exclude-source", action="append", metavar="NAME",
                   help="leave this source (tv_faces, utkface, mead, voxceleb2, grid, liveportrait, hdtf, or a folder name) out (repeatable)")
    t.add_argument("--codec", type=float, default=0.7, help="with --sbi: share of real/fake pairs passed through H.264 alike (0-1)")
    t.add_argument("--sharpening", type=float, default=0.0, help="with --sbi: share of real/fake pairs sharpened alike (0-1; v3 used 0.3)")
    t.add_argument("--colour", type=float, default=0.0,
                   help="with --sbi: share of real/fake pairs given a strong colour cast alike (white balance, saturation, gamma; 0-1)")
    t.add_argument("--softening", type=float, default=0.0,
                   help="with --sbi: share of real crops strongly softened (down to 20-60 %% and back, or blurred) before their fakes are made (0-1)")
    t.add_argument("--smoothing", type=float, default=0.0,
                   help="with --sbi: share of real crops given a beauty filter (edge-preserving smoothing) before their fakes are made (0-1)")
    t.add_argument("--crushing", type=float, default=0.0,
                   help="with --sbi: share of real crops H.264-encoded at a starved bitrate (CRF 34-46, coded at 2x the crop) before their fakes are made (0-1)")
    t.add_argument("--reframe", type=float, default=0.0,
                   help="with --sbi: share of real/fake pairs cut as if the picture's frame ended close to the face, the rest mirrored alike (0-1)")
    t.add_argument("--balance-sources", type=float, default=0.0, metavar="B",
                   help="draw training crops so that a source's share goes with its crop count ** (1 - B): 0 every crop alike (default), 1 every source alike")
    t.add_argument("--val-max", type=int, default=600)
    t.add_argument("--target-fpr", type=float, default=0.05, help="threshold flags this share of validation reals")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.add_argument("--workers", type=int, default=1)
    t.add_argument("--threads", type=int)
    t.add_argument("--time-limit", type=float, metavar="MIN", help="stop after this many minutes")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--name", default="custom")
    t.set_defaults(func=cmd_train)

    k = sub.add_parser("calibrate", help="refit a checkpoint's temperature and threshold on a crop folder's validation split")
    k.add_argument("--weights", required=True, metavar="FILE")
    k.add_argument("--data", action="append", required=True, metavar="DIR")
    k.add_argument("--out", required=True, metavar="FILE", help="new checkpoint (weights unchanged)")
    k.add_argument("--sbi", action="store_true", help="validation fakes are self-blended from the reals")
    k.add_argument("--val-fraction", type=float, help="validation share (default: per source, as train)")
    k.add_argument("--val-max", type=int, default=600)
    k.add_argument("--target-fpr", type=float, default=0.05)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--device", default="cpu")
    k.set_defaults(func=cmd_calibrate)

    v = sub.add_parser("eval", help="metrics on labelled videos/crops (AUC, AP, EER, ...)")
    v.add_argument("inputs", nargs="*", metavar="PATH", help="FF++-layout folder, real/fake folders, or videos")
    v.add_argument("--labels", metavar="CSV")
    v.add_argument("--out", metavar="DIR", help="write metrics.json and roc.png there")
    v.add_argument("--perturb", action="append", metavar="SPEC", help="crf=23,30,40 | scale=0.5 | jpeg=40 (repeatable)")
    v.add_argument("--frames", type=int)
    v.add_argument("-q", "--quiet", action="store_true")
    _add_model_args(v)
    v.set_defaults(func=cmd_eval, margin=None)

    w = sub.add_parser("serve", help="HTTP API and review page (needs the serve extra)",
                       description="Scan uploads over HTTP: POST /v1/scans, a review page at /, docs at /docs (docs/api.md).")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    w.add_argument("--port", type=int, default=8000)
    w.add_argument("--data-dir", required=True, metavar="DIR", help="jobs, results, uploads and reports are kept here")
    w.add_argument("--token-file", metavar="FILE", help="bearer tokens, one per line (also: $FAKEPROBE_TOKENS)")
    w.add_argument("--no-auth", action="store_true", help="no token needed (only on a loopback address)")
    w.add_argument("--workers", type=int, default=1, help="scan processes (default 1), each with the model loaded once")
    w.add_argument("--max-queue", type=int, default=100, help="jobs that may wait for a worker; more get 503 (default 100)")
    w.add_argument("--max-upload-mb", type=float, default=2048, help="largest upload in MiB (default 2048)")
    w.add_argument("--allow-root", metavar="DIR", help='allow JSON {"path": ...} jobs for files under this folder')
    _add_model_args(w)
    w.add_argument("--frames", type=int, help="frames sampled per video (default 32)")
    w.add_argument("--time-limit", type=float, help="seconds allowed per file (default 300)")
    w.add_argument("--threads", type=int, help="CPU threads per scan process (default: its share of the cores)")
    w.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    w.set_defaults(func=cmd_serve)

    i = sub.add_parser("info", help="show a checkpoint's metadata")
    i.add_argument("--weights", metavar="FILE")
    i.add_argument("--history", action="store_true", help="include the per-epoch training history")
    i.set_defaults(func=cmd_info)

    c = sub.add_parser("convert", help="convert a trusted .pt state dict to safetensors")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--arch", default="efficientnet_b0")
    c.add_argument("--size", type=int, default=224)
    c.add_argument("--margin", type=float, default=1.3)
    c.add_argument("--threshold", type=float, default=0.5)
    c.add_argument("--name", default="converted")
    c.set_defaults(func=cmd_convert)

    k2 = sub.add_parser("pack", help="pack checkpoints into one ensemble checkpoint (the mean of their calibrated logits)")
    k2.add_argument("members", nargs="+", metavar="WEIGHTS", help="checkpoints; a packed ensemble stands for its members (repack it with other --adapt-* options)")
    k2.add_argument("-o", "--out", required=True, metavar="FILE")
    k2.add_argument("--name", default="ensemble")
    k2.add_argument("--half", action="store_true", help="store the weights as float16 (half the file)")
    k2.add_argument("--adapt-blocks", type=int, metavar="N",
                    help="crop-adaptive normalisation of the stem and the first N stages (default: as the members have it; 0: off)")
    k2.add_argument("--adapt-mix", type=float, default=0.5, metavar="F",
                    help="with --adapt-blocks: the crop's own share of those layers' statistics (default 0.5)")
    k2.add_argument("--adapt-no-amplify", action="store_true",
                    help="with --adapt-blocks: never scale a crop up for having less variance than the stored statistics")
    k2.set_defaults(func=cmd_pack)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("KMP_WARNINGS", "0")
    from .core.errors import FakeprobeError

    try:
        return args.func(args)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_FAILED
    except FakeprobeError as exc:
        if args.debug:
            traceback.print_exc()
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return EXIT_CLEAN
    except Exception as exc:  # a bug: say what, keep the traceback for --debug
        if args.debug:
            traceback.print_exc()
        return _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)")


if __name__ == "__main__":
    sys.exit(main())
