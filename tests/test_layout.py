"""The house's structure, checked by the project's own test suite.

* every import inside ``src/dicomxray`` goes from a higher layer to a lower one (or stays in its layer), names taken
  from the top package counted where they really live, and no two modules import each other, directly or through
  others (the deprecation shim's ``importlib.import_module`` of old module names is the one import by string);
* no module is over 400 lines;
* ``import dicomxray`` loads the configs, the errors and the pipeline only;
* the project's files speak of the project alone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "dicomxray"

#: Lower numbers are lower layers: a module may import its own layer or a lower one, never a higher one.
LAYERS = {
    "errors": 0,
    "io": 1,
    "dicom": 2,
    "config": 2,
    "pixels": 4,
    "cache": 5,
    "jobs": 6,
    "index": 7,
    "transforms": 8,
    "labels": 8,
    "data": 9,
    "testing": 10,
    "cli": 11,
    "__init__": 12,
    "__main__": 12,
    "_deprecated": 2,
}

_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.+[\w.]*|dicomxray[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)"
                     r"|import[ \t]+(dicomxray[\w.]*))", re.M)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (at any depth of its code, lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for source, names, plain in _IMPORT.findall(path.read_text(encoding="utf-8")):
        if plain:
            found.add(plain)
            continue
        if source.startswith("."):
            dots = len(source) - len(source.lstrip("."))
            base = package.split(".")
            base = base[: len(base) - (dots - 1)]
            rest = source[dots:]
            source = ".".join(base + ([rest] if rest else []))
        leaves = [n.split(" as ")[0].strip() for n in names.strip("()").replace("\n", " ").split(",")]
        children = [f"{source}.{leaf}" for leaf in leaves if f"{source}.{leaf}" in known]
        if source == "dicomxray" and not children:  # a name the top package re-exports: where it really lives
            children = [_home(leaf) for leaf in leaves if leaf]
        found.update(children or [source])
    return {m for m in found if m in known and m != name}


def _home(name: str) -> str:
    """The module a name of ``dicomxray.__all__`` is defined in (``__version__``: the errors' layer, a constant)."""
    import dicomxray

    if name == "__version__":
        return "dicomxray.errors"
    return getattr(getattr(dicomxray, name), "__module__", "dicomxray")


def layer(name: str) -> tuple[str, int]:
    parts = name.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    return key, LAYERS[key]


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) for name, path in mods.items()}


def test_every_top_level_entry_has_a_layer() -> None:
    entries = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
               if p.name != "__pycache__" and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert entries <= set(LAYERS), f"place these in LAYERS: {sorted(entries - set(LAYERS))}"
    assert len(entries - {"__init__", "__main__"}) <= 14, sorted(entries)


def test_no_import_reaches_up_a_layer() -> None:
    upward = []
    for name, targets in graph().items():
        here, rank = layer(name)
        for target in targets:
            there, other = layer(target)
            if other > rank:
                upward.append(f"{name} ({here}) imports {target} ({there})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_circles() -> None:
    g = graph()
    state: dict[str, int] = {}
    circles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if nxt.startswith("dicomxray.") and g.get(nxt) is not None:
                if state.get(nxt) == 1:
                    circles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail else nxt)
                elif nxt not in state:
                    visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    # A package's __init__ importing its own modules is not a circle of design; anything else is.
    real = [c for c in circles if not all(part.startswith(c.split(" -> ")[0]) for part in c.split(" -> "))]
    assert not real, "\n".join(real)


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, long


def test_import_dicomxray_loads_the_pipeline_only() -> None:
    code = ("import sys, dicomxray; "
            "print('\\n'.join(sorted(m for m in sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    ours = {m for m in loaded if m.startswith("dicomxray.")}
    allowed = ("dicomxray.config", "dicomxray.errors", "dicomxray.io", "dicomxray.dicom", "dicomxray.pixels",
               "dicomxray._deprecated")
    assert all(m.startswith(allowed) for m in ours), sorted(m for m in ours if not m.startswith(allowed))
    assert "dicomxray.pixels.pipeline" in ours
    heavy = {"torch", "pandas", "pyarrow", "distributed", "dask", "fsspec", "albumentations",
             "concurrent.futures.process", "dicomxray.cache", "dicomxray.index", "dicomxray.jobs", "dicomxray.data",
             "dicomxray.io.dicomweb", "aiohttp"}
    assert not heavy & loaded, sorted(heavy & loaded)


def test_lazy_names_resolve() -> None:
    import dicomxray

    for name in dicomxray._LAZY:
        assert name in dicomxray.__all__
        assert getattr(dicomxray, name) is not None


@pytest.mark.parametrize("folder", ["src", "tests", "benchmarks", "examples", "docs"])
def test_the_project_speaks_of_itself(folder: str) -> None:
    # Words of the workplace's tools, spelled in pieces so this file does not name them either.
    words = ["farm" + "-studio", "." + "library/", "duplicates " + "--change", "sub" + "agent"]
    hits = []
    paths = [ROOT / "README.md"] if folder == "src" else []
    paths += [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in {".py", ".md", ".yml", ".toml", ".txt"}]
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace").lower()
        hits += [f"{path.relative_to(ROOT)}: {w}" for w in words if w in text]
    assert not hits, hits
