"""The package's layout shows the pipeline, and imports only go downward: a lower layer never
imports a higher one (lazy imports inside functions included)."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import fakeprobe

PKG = Path(fakeprobe.__file__).parent
# lowest first; a module may import its own layer and the layers before it
LAYERS = ["core", "media", "faces", "model", "scan", "train", "evaluation", "report", "distributed", "serve", "cli"]


def _module_name(path: Path, root: Path = PKG) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """Every fakeprobe module this file imports, as absolute names, with line numbers."""
    module = _module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "fakeprobe"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "fakeprobe":
                continue
            if target == "fakeprobe" or _layer(target) and len(target.split(".")) == 2:
                # ``from fakeprobe.media import video``: the names may be modules of that package
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
    return found


def _modules(root: Path = PKG) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_lives_in_a_layer():
    loose = [p.name for p in _modules() if p.parent == PKG and p.stem not in ("__init__", "__main__", "cli")]
    assert not loose, f"modules outside the pipeline's subpackages: {loose}"
    assert {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(LAYERS) - {"cli"}


def upward_imports(root: Path) -> list[str]:
    upward = []
    for path in _modules(root):
        source = _module_name(path, root)
        rank = LAYERS.index(_layer(source) or "cli") if source != "fakeprobe" else None
        for line, target in _imports(path, root):
            layer = _layer(target)
            if rank is None or layer is None:
                # the package root is the public facade (lazy ``Detector`` etc.); only its
                # ``__version__`` may be imported from below, and the CLI only from ``__main__``
                assert target in ("fakeprobe.__version__", "fakeprobe") or source in ("fakeprobe", "fakeprobe.__main__"), (
                    f"{path.relative_to(root)}:{line} imports {target}")
                continue
            if LAYERS.index(layer) > rank:
                upward.append(f"{path.relative_to(root)}:{line} ({LAYERS[rank]}) imports {target} ({layer})")
    return upward


def test_imports_only_go_downward():
    upward = upward_imports(PKG)
    assert not upward, "imports that go up the pipeline:\n" + "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule above must be able to fail: a core module importing the scanner is caught."""
    copy = tmp_path / "fakeprobe"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors", "templates", "static"))
    assert upward_imports(copy) == []
    (copy / "core" / "probe.py").write_text("def f():\n    from ..scan.detector import Detector\n    return Detector\n")
    assert upward_imports(copy) == ["core/probe.py:2 (core) imports fakeprobe.scan.detector (scan)"]


def test_the_public_api_is_where_it_was():
    from fakeprobe import Detector, ScanConfig, ScanResult
    from fakeprobe.cli import main

    assert Detector.__module__ == "fakeprobe.scan.detector"
    assert ScanConfig.__module__ == "fakeprobe.core.config" and ScanResult.__module__ == "fakeprobe.core.results"
    assert callable(main)
