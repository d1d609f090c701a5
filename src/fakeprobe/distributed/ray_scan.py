"""``ray_scan``: the local scan's per-file analysis as a Ray Data pipeline over an actor pool."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..core.config import ScanConfig
from ..core.errors import FakeprobeError

ACTOR_CPUS = 2  # CPUs each scan actor asks for when ScanConfig.threads is 0: a decoder and a detector thread
MAX_BLOCKS = 10_000  # one file per Ray Data block (a record comes back as soon as its file is done) up to this many


class RayError(FakeprobeError):
    """Ray is missing, the cluster cannot be reached, or the pipeline failed."""

    kind = "ray"


def ray_scan(paths: Iterable[str | Path], config: ScanConfig | None = None, address: str = "local", *,
             weights: str | Path | Iterable[str | Path] | None = None, actors: int | None = None,
             task: Callable[[Any, Path], Any] | None = None) -> Iterator[dict]:
    """Scan ``paths`` (files: expand folders and globs with ``fakeprobe.media.inputs.expand_inputs``
    first) on Ray and yield each file's record (the dict the local scan writes as JSON) as it
    finishes, in the order they finish.

    ``address``: ``"local"`` starts a Ray instance on this machine for the scan, ``"auto"`` joins
    the cluster this machine is part of, ``"ray://host:10001"`` connects through Ray Client; a Ray
    already initialised in this process is used as it is. Inputs and weights must be readable at
    the same paths on every node. Each actor asks for ``config.threads`` CPUs (``ACTOR_CPUS`` when
    0); ``actors`` caps how many run at once (default: as many as the cluster's CPUs allow).
    ``task(detector, path)`` may replace ``detector.scan`` in the worker process, as in ``ScanPool``.
    """
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise RayError('--ray needs Ray: pip install "fakeprobe[ray]"') from None
    items = [str(p) for p in paths]
    if weights is not None:
        weights = [weights] if isinstance(weights, (str, Path)) else list(weights)
        weights = [str(Path(w).absolute()) for w in weights]
        _check_weights(weights)
    return _run(items, config or ScanConfig(), address, weights, actors, task)


def _run(items: list[str], config: ScanConfig, address: str, weights: list[str] | None, actors: int | None,
         task: Callable | None) -> Iterator[dict]:
    from ray.data import DataContext

    if not items:
        return
    started = _connect(address)
    ctx = DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.execution_no_progress_timeout_s
    try:
        ctx.enable_progress_bars = ctx.print_on_execution_start = False  # the caller shows progress
        ctx.execution_no_progress_timeout_s = max(ctx.execution_no_progress_timeout_s, 3 * config.time_limit_s + 600)
        for row in _pipeline(items, config, weights, actors, task).iter_rows():
            yield json.loads(row["record"])
    except FakeprobeError:
        raise
    except Exception as exc:  # Ray wraps what failed in an actor: surface its cause in one line
        raise RayError(f"the Ray scan failed: {_cause(exc)}") from exc
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.execution_no_progress_timeout_s = saved
        if started:
            import ray

            ray.shutdown()


def _pipeline(items: list[str], config: ScanConfig, weights: list[str] | None, actors: int | None, task: Callable | None):
    """paths -> records: a Ray Data pipeline over a pool of ``ScanActor``s, one file per call."""
    import ray
    from ray.data import ActorPoolStrategy

    from .actor import ScanActor

    total_cpus = max(1.0, ray.cluster_resources().get("CPU", 1.0))
    cpus = min(float(config.threads or ACTOR_CPUS), total_cpus)
    config = dataclasses.replace(config, threads=max(1, int(cpus)))  # each scan keeps to its actor's CPUs
    ds = ray.data.from_items([{"path": p} for p in items], override_num_blocks=min(len(items), MAX_BLOCKS))
    return ds.map_batches(
        ScanActor,
        fn_constructor_kwargs={"weights": weights, "config": config, "cwd": os.getcwd(), "task": task},
        batch_size=1,
        compute=ActorPoolStrategy(min_size=1, max_size=min(len(items), actors or max(1, int(total_cpus // cpus)))),
        num_cpus=cpus,
        num_gpus=1 if config.device.startswith("cuda") else None,
    )


def _check_weights(weights: list[str]) -> None:
    """Refuse unusable weights here, in one line, before any actor starts (a file this machine
    does not see is left to the nodes)."""
    from ..model.checkpoint import load_checkpoint

    for w in weights:
        if Path(w).exists():
            load_checkpoint(Path(w))


def _connect(address: str) -> bool:
    """Connect to Ray unless this process already is; True if this call did."""
    import ray

    if ray.is_initialized():
        return False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    kw: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address == "local":
        kw["include_dashboard"] = False
    try:
        ray.init(address=address, **kw)
    except Exception as exc:  # Ray raises plain Exceptions too (a node that did not start in time)
        raise RayError(f"cannot connect to Ray at {address}: {_cause(exc)}") from None
    return True


def _cause(exc: BaseException) -> str:
    """The innermost message of a chain of wrapped exceptions, on one line."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else 'no message'}"
