"""Crash-isolated fuzzing: mutated files read in child processes, so a decoder that kills its process is counted
(and the run resumes after that case) rather than fatal.  ``tests/test_hardening.py`` runs it with small counts,
``benchmarks/stress.py`` with large ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydicom import uid

from ._hostile import mutate
from ._synth import ENCODABLE_SYNTAXES, chest_phantom, write_dicom

__all__ = ["SURVIVED", "Case", "FuzzReport", "fuzz_case", "fuzz_files", "fuzz_sources"]

#: The outcomes of :func:`fuzz_case` that count as surviving a hostile file.
SURVIVED = frozenset({"decoded", "named_error"})
_MAX_FAILURES = 50  # failing cases a FuzzReport keeps in full


class Case(NamedTuple):
    """What reading one hostile file did: see :func:`fuzz_case`."""

    outcome: str
    seconds: float
    detail: str


def fuzz_case(path: str | os.PathLike[str], size: int = 32) -> Case:
    """Read ``path`` as ``read_xray(path, size)`` (warnings silenced) and classify what happened.

    Parameters
    ----------
    path : path-like
        The (hostile) file.
    size : int
        Output side: a decoded image must come back ``size`` x ``size`` uint8.

    Returns
    -------
    Case
        ``outcome`` is ``decoded``, ``named_error`` (a ``DicomXrayError`` naming the file), ``unnamed_error``,
        ``wrong_output`` (decoded, wrong shape or dtype) or ``other_exception:<type>``; ``seconds`` the time the
        read took; ``detail`` the message or what came back.
    """
    from dicomxray import DicomXrayError, read_xray

    path = Path(path)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = read_xray(path, size)
        except DicomXrayError as exc:
            outcome, detail = ("named_error" if path.name in str(exc) else "unnamed_error"), str(exc)
        except Exception as exc:
            outcome, detail = f"other_exception:{type(exc).__name__}", str(exc)
        else:
            ok = out.shape == (size, size) and out.dtype == np.uint8
            outcome, detail = ("decoded" if ok else "wrong_output"), f"{out.shape} {out.dtype}"
    return Case(outcome, time.perf_counter() - t0, detail[:500])


def fuzz_sources(folder: str | os.PathLike[str], *, shapes: Sequence[tuple[int, int]] = ((48, 64), (96, 120)),
                 syntaxes: Sequence[str] = ENCODABLE_SYNTAXES, seed: int | None = None) -> list[Path]:
    """Write the valid files to mutate: a chest phantom per shape, in every syntax.

    Parameters
    ----------
    folder : path-like
        Where to write them.
    shapes : sequence of (int, int)
        (rows, columns) of each phantom; several shapes give codestreams of different layouts.
    syntaxes : sequence of str
        Transfer syntaxes (12 bits stored; 8 for JPEG baseline).
    seed : int, optional
        Phantom seed; default the sum of the shape.

    Returns
    -------
    list of Path
        The files, shape by shape, syntax by syntax.
    """
    paths = []
    for rows, cols in shapes:
        img = chest_phantom(rows, cols, bits=12, seed=rows + cols if seed is None else seed)
        for ts in syntaxes:
            data, bits = ((img >> 4).astype(np.uint8), 8) if ts == uid.JPEGBaseline8Bit else (img, 12)
            paths.append(write_dicom(Path(folder) / f"{ts}_{rows}x{cols}.dcm", data, syntax=ts, bits_stored=bits))
    return paths


@dataclass
class FuzzReport:
    """What :func:`fuzz_files` saw: ``outcomes`` counts every case (``crash`` and ``timeout`` included)."""

    outcomes: dict[str, int] = field(default_factory=dict)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    slowest_case_s: float = 0.0

    @property
    def cases(self) -> int:
        """Cases run."""
        return sum(self.outcomes.values())

    @property
    def ok(self) -> bool:
        """Every case survived: no crash, no timeout, nothing outside :data:`SURVIVED`."""
        return set(self.outcomes) <= SURVIVED

    def _count(self, outcome: str, record: dict[str, Any]) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if outcome not in SURVIVED and len(self.failures) < _MAX_FAILURES:
            self.failures.append({"outcome": outcome, **record})


_CHILD = "import sys\nfrom dicomxray.testing._fuzz import _fuzz_child\n_fuzz_child(sys.argv[1:])\n"


def fuzz_files(files: Sequence[str | os.PathLike[str]], seeds: Iterable[int], work: str | os.PathLike[str], *,
               size: int = 32, mutations: Sequence[str] | None = None, chunk: int = 250, timeout: float = 1800.0,
               progress: Callable[[int, int, dict[str, int]], None] | None = None) -> FuzzReport:
    """Mutate ``files`` once per seed and read each result in a child process, ``chunk`` cases a child.

    Case ``seed`` mutates ``files[seed % len(files)]`` with :func:`~dicomxray.testing.mutate`.  A child that dies
    is a ``crash`` of the case after the last one it reported, and the run resumes after that case; a child
    that runs past ``timeout`` is a ``timeout`` likewise.

    Parameters
    ----------
    files : sequence of path-like
        Valid DICOM files (see :func:`fuzz_sources`).
    seeds : iterable of int
        One case per seed.
    work : path-like
        A scratch folder (the case file and the children's instructions go there).
    size : int
        Output side passed to :func:`fuzz_case`.
    mutations : sequence of str, optional
        Names of the mutations to draw from; default all.
    chunk : int
        Cases per child process.
    timeout : float
        Seconds a child may take for its chunk.
    progress : callable, optional
        Called after each child as ``progress(done, total, outcomes)``.

    Returns
    -------
    FuzzReport
    """
    work, sources = Path(work), [Path(f) for f in files]
    work.mkdir(parents=True, exist_ok=True)
    seeds = list(seeds)
    spec = work / "fuzz_spec.json"
    spec.write_text(json.dumps({"sources": [str(s) for s in sources], "seeds": seeds, "size": size,
                                "mutations": list(mutations) if mutations else None, "case": str(work / "case.dcm")}))
    report, i = FuzzReport(), 0
    while i < len(seeds):
        stop = min(len(seeds), i + chunk)
        try:
            r = subprocess.run([sys.executable, "-c", _CHILD, str(spec), str(i), str(stop)], capture_output=True,
                               text=True, timeout=timeout)
            out, err, rc = r.stdout, r.stderr, r.returncode
        except subprocess.TimeoutExpired as exc:  # its output comes back as bytes whatever text= says
            out, err, rc = _text(exc.stdout), _text(exc.stderr), None
        last = i - 1
        for line in out.splitlines():
            if line.startswith("["):
                j, source, name, outcome, seconds, detail = json.loads(line)
                report._count(outcome, {"seed": seeds[j], "source": source, "mutation": name, "detail": detail})
                report.slowest_case_s = max(report.slowest_case_s, seconds)
                last = j
        if rc != 0:  # the case after the last one reported killed the child (or none did: it died on exit)
            bad = last + 1 if last + 1 < stop else None
            record: dict[str, Any] = {"seed": None, "returncode": rc, "stderr": err[-500:]}
            if bad is not None:
                seed = seeds[bad]
                source = sources[seed % len(sources)]
                record.update(seed=seed, source=source.name, mutation=mutate(source.read_bytes(), seed, mutations)[0])
            report.crashes.append(record)
            report._count("crash" if rc is not None else "timeout", record)
        i = stop if rc == 0 else min(last + 2, stop)
        if progress is not None:
            progress(i, len(seeds), dict(report.outcomes))
    return report


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def _fuzz_child(argv: list[str]) -> None:
    """The child process of :func:`fuzz_files`: run cases ``argv[1]`` to ``argv[2]`` of the spec ``argv[0]``."""
    spec = json.loads(Path(argv[0]).read_text())
    sources = [Path(s) for s in spec["sources"]]
    blobs = [s.read_bytes() for s in sources]
    case = Path(spec["case"])
    for j in range(int(argv[1]), int(argv[2])):
        seed = spec["seeds"][j]
        k = seed % len(blobs)
        name, data = mutate(blobs[k], seed, spec["mutations"])
        case.write_bytes(data)
        c = fuzz_case(case, spec["size"])
        print(json.dumps([j, sources[k].name, name, c.outcome, c.seconds, c.detail]), flush=True)
