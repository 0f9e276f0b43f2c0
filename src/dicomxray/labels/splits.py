"""K-fold splits grouped by patient and stratified by class."""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import LabelWarning


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


def patient_folds(groups: Sequence[str], labels: Sequence[Any] | np.ndarray, k: int = 5, *, seed: int = 0) -> np.ndarray:
    """Assign each sample a fold in ``0..k-1`` so no group (patient) spans two folds.

    Greedy stratified group k-fold: patients are shuffled (``seed``), taken
    largest first, and each goes to the fold where it most reduces the
    deviation of per-class counts from the ideal share.  Samples with an
    empty group id are their own group.

    Parameters
    ----------
    groups : sequence of str
        Patient (or study) of each sample.
    labels : sequence of int, or N x C array
        One class per sample, or a multi-hot matrix (VinBigData's ``Target.image_labels``).
        Multi-label targets are stratified per label, as iterative stratification does
        (Sechidis et al. 2011): each column is balanced on its own, plus a column for the
        samples with no label at all, rather than treating each label set as a class
        (which leaves rare combinations in one fold).  NaN is an unknown label (uncertain or
        not mentioned), neither positive nor negative: in a column with unknowns the known
        negatives are balanced too, and a sample with an unknown label is not "no label".
    k : int
        Number of folds, at least 2.
    seed : int
        Shuffles patients of equal size.

    Returns
    -------
    numpy.ndarray
        ``N`` int64 fold of each sample.

    Warns
    -----
    LabelWarning
        With fewer patients than folds: which folds stay empty.
    """
    if k < 2:
        raise ValueError("k must be at least 2")
    if len(groups) != len(labels):
        raise ValueError("groups and labels must have the same length")
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g or f"\0{i}"].append(i)
    hot = _label_matrix(labels)
    total = hot.sum(0)
    rng = np.random.default_rng(seed)
    keys = list(members)
    rng.shuffle(keys)
    keys.sort(key=lambda g: -len(members[g]))
    counts = np.zeros((k, hot.shape[1]))
    fold_of = np.empty(len(groups), dtype=np.int64)
    for g in keys:
        vec = hot[members[g]].sum(0)
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
            f"(use k <= {len(members)})", LabelWarning, stacklevel=2,
        )
    return fold_of


def _label_matrix(labels: Sequence[Any] | np.ndarray) -> np.ndarray:
    """``N x C`` counts: one-hot of single classes, or a multi-hot matrix plus a "no label" column."""
    arr = np.asarray(labels)
    if arr.ndim == 2:
        arr = arr.astype(np.float64)
        unknown = np.isnan(arr)
        hot = (arr > 0).astype(np.float64)
        none = ((hot.sum(1) == 0) & ~unknown.any(1))[:, None].astype(np.float64)
        partly = unknown.any(0)  # a column with unknowns: its known negatives are balanced too, NaN is neither
        negative = ((arr <= 0) & ~unknown)[:, partly].astype(np.float64)
        size = np.ones((len(arr), 1 if partly.any() else 0))  # and the fold sizes, which "none" no longer balances
        return np.concatenate([hot, none, negative, size], axis=1)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one class per sample or an N x C multi-hot matrix, got shape {arr.shape}")
    classes = sorted(set(arr.tolist()))
    col = {c: j for j, c in enumerate(classes)}
    hot = np.zeros((len(arr), len(classes)))
    hot[np.arange(len(arr)), [col[c] for c in arr.tolist()]] = 1
    return hot
