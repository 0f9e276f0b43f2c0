"""The label interface shared by every data set."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import LabelWarning, SourceFileNotFoundError
from ..index import image_id


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
        Multi-hot float32 image classes where the source has several per image (VinBigData's 14
        findings, by the adapter's named vote rule); empty otherwise.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    box_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    image_label: int = -1
    study_id: str = ""
    study_positive: bool | None = None
    missing_annotation: bool = False
    image_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))


class LabelSource(Protocol):
    """What :class:`~dicomxray.DicomXrayDataset` needs from labels."""

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
