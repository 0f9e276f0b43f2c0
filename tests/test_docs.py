"""Every Python block in the README and the documentation runs, so no page can show code that does not work.

The blocks of one page run in order, in one namespace, in a fresh working directory that holds ``siim/``: a
synthetic SIIM-FISABIO-RSNA folder (``train/<study>/<series>/<image>.dcm`` and both CSVs). ``HOME`` points into
that directory too, so ``~/.cache/dicomxray`` stays inside it. A block preceded by the line ``<!-- no-run -->``
needs what a test cannot have (a GPU, a cluster, a real bucket) and is only compiled.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^(<!-- no-run -->[ \t]*\n)?```python[ \t]*\n(.*?)^```", re.S | re.M)


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p for p in found if "```python" in p.read_text(encoding="utf-8")]


def blocks(page: Path) -> list[tuple[int, str, bool]]:
    text = page.read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 1, m.group(2), m.group(1) is None) for m in BLOCK.finditer(text)]


@pytest.fixture(scope="module")
def siim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dicomxray.testing import make_siim_dataset

    root = tmp_path_factory.mktemp("docs") / "siim"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_siim_dataset(root, studies=8, size=(256, 320))
    return root


def test_the_pages_have_code_to_run() -> None:
    assert (ROOT / "README.md") in pages()
    assert sum(run for page in pages() for _, _, run in blocks(page)) >= 10


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(page: Path, siim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "siim").symlink_to(siim, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for line, code, run in blocks(page):
        compiled = compile(code, f"{page.relative_to(ROOT)}:{line}", "exec")
        if run:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compiled, namespace)  # noqa: S102 - the documentation's own code
