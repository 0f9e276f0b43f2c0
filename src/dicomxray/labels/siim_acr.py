"""SIIM-ACR Pneumothorax Segmentation (Kaggle 2019): run-length masks per image, decoded when read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..index import image_id
from ._csv import find_label_file, read_csv
from .base import KeyedTargets, Target
from .rle import EMPTY_RLE, RleMasks, parse_rle

#: The label files, stage 2's first (it supersedes stage 1's).
SIIM_ACR_LABEL_FILES = ("stage_2_train.csv", "train-rle.csv")


class SiimAcrPneumothorax(KeyedTargets):
    """``ImageId,EncodedPixels`` (stage 2's ``stage_2_train.csv``, or stage 1's ``train-rle.csv`` whose header
    is ``ImageId, EncodedPixels`` with a space); DICOMs under ``dicom-images-train/<study>/<series>/<SOP>.dcm``.

    One row per pneumothorax (an image with two has two rows), ``-1`` for none.  The run-length strings
    are kept, and each image's masks decoded when its sample is read (:class:`~dicomxray.labels.rle.RleMasks`),
    at the image's own Rows x Columns: decoded masks for the whole set would be gigabytes.

    Each target: ``masks`` (the union, or one plane per row with ``instances=True``), ``mask_label`` 1
    (``pneumothorax``, the label of the box around each mask), ``image_label`` and ``study_positive``
    1/True for an image with a pneumothorax; no boxes of its own.

    Parameters
    ----------
    folder : path-like
        The competition folder.
    filename : str, optional
        The label file in ``folder``; by default ``stage_2_train.csv``, else ``train-rle.csv``.
    instances : bool
        One mask plane per pneumothorax (for instance segmentation) rather than their union.
    images : str
        The DICOM folder in ``folder`` (for :meth:`image_size`).
    """

    classes: tuple[str, ...] = ("no_pneumothorax", "pneumothorax")
    box_classes: tuple[str, ...] = ("background", "pneumothorax")

    def __init__(
        self, folder: str | os.PathLike[str], filename: str | None = None, *, instances: bool = False,
        images: str = "dicom-images-train",
    ) -> None:
        self.folder = Path(os.path.expanduser(os.fspath(folder)))
        self.instances = bool(instances)
        self.images = self.folder / images
        path = find_label_file([self.folder], [filename] if filename else SIIM_ACR_LABEL_FILES)
        self.label_file = path
        rles: dict[str, list[str]] = {}
        for row in read_csv(path, required=("ImageId", "EncodedPixels")):
            key, text = row.text("ImageId"), row.text("EncodedPixels")
            if not key:
                raise row.error("empty ImageId", "ImageId")
            try:
                parse_rle(text)
            except ValueError as exc:
                raise row.error(str(exc), "EncodedPixels") from None
            runs = rles.setdefault(key, [])
            if text != EMPTY_RLE:
                runs.append(text)
        self._targets = {key: self._target(key, tuple(runs)) for key, runs in rles.items()}
        self._files: dict[str, Path] | None = None

    def _target(self, key: str, runs: tuple[str, ...]) -> Target:
        positive = bool(runs)
        return Target(image_label=int(positive), study_id=key, study_positive=positive,
                      masks=RleMasks(runs, union=not self.instances, key=key), mask_label=1)

    def rles(self, key: str) -> tuple[str, ...]:
        """The run-length strings of image ``key`` (none for a negative)."""
        t = self._targets[key]
        assert isinstance(t.masks, RleMasks)
        return t.masks.rles

    def image_size(self, key: str) -> tuple[int, int]:
        """``(width, height)`` of image ``key``, from its file's Rows and Columns (found under ``images``)."""
        from ..dicom.header import read_header

        if self._files is None:
            self._files = {image_id(p): p for p in sorted(self.images.rglob("*.dcm"))}
        if key not in self._files:
            raise KeyError(f"{key}: no {key}.dcm under {self.images}")
        header = read_header(self._files[key])
        return header.columns, header.rows

    def mask(self, key: str, height: int, width: int) -> np.ndarray:
        """The union mask of image ``key`` at ``height x width``, uint8 0/1."""
        planes = RleMasks(self.rles(key), union=True, key=key).instances(height, width)
        return planes[0] if len(planes) else np.zeros((height, width), np.uint8)
