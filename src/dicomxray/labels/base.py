"""The label interface shared by every data set."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import SourceFileNotFoundError


@dataclass(frozen=True)
class Target:
    """Labels of one image, in original pixels.

    ``boxes`` is ``N x 4`` float32 xyxy; ``box_labels`` ``N`` int64 (>= 1);
    ``image_label`` the image or study class index, ``-1`` when there is none.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    box_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    image_label: int = -1
    study_id: str = ""


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


def require_file(folder: str | os.PathLike[str], name: str) -> Path:
    path = Path(os.path.expanduser(os.fspath(folder))) / name
    if not path.is_file():
        raise SourceFileNotFoundError(f"{path}: label file not found", path=str(path))
    return path


def boxes_array(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)
