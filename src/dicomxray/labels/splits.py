"""K-fold splits grouped by patient and stratified by class."""

from __future__ import annotations

import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np


def read_patient_ids(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """PatientID of each file from its header (pixels are not read); '' when absent."""
    import pydicom

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in paths:
            ds = pydicom.dcmread(p, force=True, stop_before_pixels=True, specific_tags=["PatientID"])
            out.append(str(ds.get("PatientID", "") or ""))
    return out


def patient_folds(groups: Sequence[str], labels: Sequence[int], k: int = 5, *, seed: int = 0) -> np.ndarray:
    """Assign each sample a fold in ``0..k-1`` so no group (patient) spans two folds.

    Greedy stratified group k-fold: patients are shuffled (``seed``), taken
    largest first, and each goes to the fold where it most reduces the
    deviation of per-class counts from the ideal share.  Samples with an
    empty group id are their own group.  With fewer patients than folds, some
    folds stay empty: a ``UserWarning`` says which.
    """
    if k < 2:
        raise ValueError("k must be at least 2")
    if len(groups) != len(labels):
        raise ValueError("groups and labels must have the same length")
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g or f"\0{i}"].append(i)
    classes = sorted(set(labels))
    col = {c: j for j, c in enumerate(classes)}
    total = np.zeros(len(classes))
    for lab in labels:
        total[col[lab]] += 1
    rng = np.random.default_rng(seed)
    keys = list(members)
    rng.shuffle(keys)
    keys.sort(key=lambda g: -len(members[g]))
    counts = np.zeros((k, len(classes)))
    fold_of = np.empty(len(groups), dtype=np.int64)
    for g in keys:
        vec = np.zeros(len(classes))
        for cls, n in Counter(labels[i] for i in members[g]).items():
            vec[col[cls]] += n
        best, best_cost = 0, np.inf
        for f in range(k):
            trial = counts.copy()
            trial[f] += vec
            cost = float(np.std(trial / np.maximum(total, 1), axis=0).sum()) + 1e-6 * trial[f].sum()
            if cost < best_cost:
                best, best_cost = f, cost
        counts[best] += vec
        fold_of[members[g]] = best
    empty = [f for f in range(k) if not counts[f].any()]
    if empty:
        warnings.warn(
            f"patient_folds: only {len(members)} patients for k={k} folds; fold(s) {empty} are empty "
            f"(use k <= {len(members)})", UserWarning, stacklevel=2,
        )
    return fold_of
