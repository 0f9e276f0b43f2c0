"""The label interface shared by every data set."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import LabelWarning, SourceFileNotFoundError
from ..index import image_id
from ..pixels.geometry import as_slice


@dataclass(frozen=True)
class Target:
    """Labels of one image, in original pixels.

    Attributes
    ----------
    boxes : numpy.ndarray
        ``N x 4`` float32, xyxy.
    box_labels : numpy.ndarray
        ``N`` int64, >= 1 (0 is background, as torchvision's detectors expect).
    image_label : int
        The image or study class index (``LabelSource.classes``), ``-1`` when there is none.
    study_id : str
        The study (SIIM), or the image itself where a study has one image (RSNA, VinBigData).
    study_positive : bool or None
        Whether the study is positive (SIIM: not "Negative for Pneumonia"; RSNA: ``Target`` 1;
        VinBigData: some finding); ``None`` when unknown.
    missing_annotation : bool
        True when the image has no boxes although its study is positive (SIIM's ``none`` images
        of positive studies): the absence of boxes is a missing annotation, not a negative.
    image_labels : numpy.ndarray
        Multi-label findings, float32, one entry per name in the source's ``multilabel_classes``:
        1 present, 0 absent, NaN unknown (uncertain or not mentioned, by the source's policy);
        empty where the source has none.
    masks : MaskSource or None
        Segmentation instances in original pixels, decoded only when the sample is read (a data set's
        run-length strings are small; its decoded masks would be gigabytes); ``None`` when the source
        has no masks.  Where ``boxes`` is empty and ``masks`` holds instances, the box around each
        instance, labelled ``mask_label``, is the image's boxes (for instance-segmentation models).
    mask_label : int
        The box label of each mask instance (>= 1).
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    box_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    image_label: int = -1
    study_id: str = ""
    study_positive: bool | None = None
    missing_annotation: bool = False
    image_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    masks: MaskSource | None = None
    mask_label: int = 1


@runtime_checkable
class MaskSource(Protocol):
    """Masks of one image, decoded on demand at the image's own size (its Rows x Columns).

    Optional, found with ``getattr`` (a source without it works through ``instances``):
    ``instances_sampled(height, width, rows, cols) -> N x len(rows) x len(cols)`` uint8 0/1, a new array equal to
    ``instances(height, width)[:, rows][:, :, cols]`` (``rows`` and ``cols`` non-decreasing, from
    :func:`dicomxray.pixels.geometry.mask_samples`): the pixels the output's nearest resize takes, decoded without
    the full-size planes.
    """

    def instances(self, height: int, width: int) -> np.ndarray:
        """``N x height x width`` uint8 (0/1), one plane per instance (``N`` may be 0), original pixels."""
        ...


@dataclass(frozen=True)
class ArrayMasks:
    """Masks already decoded: ``N x H x W`` (or one ``H x W`` union), checked against the image's size."""

    arrays: np.ndarray

    def instances(self, height: int, width: int) -> np.ndarray:
        arr = np.asarray(self.arrays)
        arr = arr[None] if arr.ndim == 2 else arr
        if arr.ndim != 3 or arr.shape[1:] != (height, width):
            raise ValueError(f"mask of shape {arr.shape[1:]} for an image of {height} x {width}")
        return (arr != 0).astype(np.uint8)

    def instances_sampled(self, height: int, width: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``instances(height, width)[:, rows][:, :, cols]``, without the full-size copy."""
        arr = np.asarray(self.arrays)
        arr = arr[None] if arr.ndim == 2 else arr
        if arr.ndim != 3 or arr.shape[1:] != (height, width):
            raise ValueError(f"mask of shape {arr.shape[1:]} for an image of {height} x {width}")
        r, c = as_slice(rows), as_slice(cols)
        picked = arr[:, r] if isinstance(r, slice) else np.take(arr, r, axis=1)
        picked = picked[:, :, c] if isinstance(c, slice) else np.take(picked, c, axis=2)
        return (picked != 0).view(np.uint8)  # a new 0/1 array, its bool bytes read as uint8


class LabelSource(Protocol):
    """What :class:`~dicomxray.DicomXrayDataset` needs from labels.

    Optional, read with ``getattr`` so sources written against this protocol keep working:
    ``multilabel_classes`` (names of ``Target.image_labels``' entries; a source without it has no
    multi-label findings) and ``files(root) -> list or None`` (the DICOM files under ``root`` the source
    labels, so a data set whose metadata lists them is not sniffed file by file; ``None`` to discover).
    """

    #: Names of the image-level classes (index = ``Target.image_label``).
    classes: tuple[str, ...]
    #: Names of box classes, index 0 being background.
    box_classes: tuple[str, ...]

    def target(self, key: str) -> Target | None:
        """Target for the image whose file stem is ``key`` (``None`` if unlabelled)."""
        ...

    def keys(self) -> set[str]:
        """Every labelled image key."""
        ...


class KeyedTargets:
    """The key lookup every adapter shares: ``target(key)`` and ``keys()`` over ``self._targets``.

    An adapter fills ``_targets`` (file stem -> :class:`Target`) while reading its files and holds
    its format only.
    """

    _targets: dict[str, Target]

    def target(self, key: str) -> Target | None:
        """Target for the image whose file stem is ``key`` (``None`` if unlabelled)."""
        return self._targets.get(key)

    def keys(self) -> set[str]:
        """Every labelled image key."""
        return set(self._targets)


def labelled_only(paths: Iterable[str | os.PathLike[str]], labels: LabelSource) -> list[Path]:
    """The files whose stem ``labels`` knows, warning once with the count of those left out.

    Parameters
    ----------
    paths : iterable of path-like
        DICOM files; the key of each is its file name without extension.
    labels : LabelSource
        The label source; its ``keys()`` decide.

    Returns
    -------
    list of pathlib.Path
        The labelled files, in the order given.

    Warns
    -----
    LabelWarning
        When some files have no label, naming how many and the first of them: an unlabelled
        file is left out of training, never passed off as a negative.
    """
    keys = labels.keys()
    every = [Path(p) for p in paths]
    kept = [p for p in every if image_id(p) in keys]
    left_out = [p for p in every if image_id(p) not in keys]
    if left_out and kept:
        warnings.warn(
            f"dicomxray: {len(left_out)} of {len(every)} DICOM files have no label in "
            f"{type(labels).__name__} and are left out (first: {left_out[0]})",
            LabelWarning, stacklevel=3,
        )
    return kept


def require_file(folder: str | os.PathLike[str], name: str) -> Path:
    path = Path(os.path.expanduser(os.fspath(folder))) / name
    if not path.is_file():
        raise SourceFileNotFoundError(f"{path}: label file not found", path=str(path))
    return path


def boxes_array(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)
