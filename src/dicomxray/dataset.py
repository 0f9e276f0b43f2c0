"""``DicomXrayDataset``: index -> cache or ``read_xray`` -> transforms -> tensors."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from .cache import XrayCache
from .config import OutputDType, PipelineConfig
from .errors import DicomXrayError, SourceFileNotFoundError
from .geometry import boxes_to_output
from .index import DICOM_EXTENSIONS, find_dicoms
from .labels.base import LabelSource, Target, labelled_only
from .transforms import to_albumentations_dtype
from .xray import XrayImage, load_xray, make_config

__all__ = ["DicomXrayDataset"]

OnError = Literal["raise", "skip"]


class DicomXrayDataset(Dataset):
    """DICOM radiographs under ``root`` as PyTorch samples.

    Each sample is a dict:

    * ``image``: float32 tensor ``C x H x W`` in [0, 1] (``channels`` = 1 or 3);
    * ``meta``: path, SOP/Study/Series Instance UIDs, ``original_size`` (H, W),
      ``geometry`` (what :func:`dicomxray.boxes_to_original` needs), ``index``;
    * with ``labels``: ``boxes`` (``N x 4`` float32, xyxy in output pixels,
      after augmentation), ``labels`` (``N`` int64, >= 1; torchvision's
      detection names) and ``image_label`` (int64; the study class for SIIM,
      -1 when unknown).

    Parameters
    ----------
    root : path-like
        Folder searched recursively for ``.dcm``/``.dicom`` files (sorted), or
        ignored when ``files`` is given.
    labels : LabelSource, optional
        e.g. :class:`dicomxray.labels.SiimCovid`; only labelled files are kept.
    size, keep_ratio, letterbox, dtype, config
        The pipeline options of :func:`dicomxray.read_xray`.  ``dtype`` is what
        is rendered (and cached) and what the transform receives.
    channels : int
        1, or 3 to repeat the grey channel for ImageNet backbones.
    cache_dir : path-like, optional
        Turn on the on-disk cache of rendered arrays (:class:`dicomxray.XrayCache`).
    cache_identity : {"stat", "content"}
        How a source file is identified in the cache key.
    transform : callable, optional
        albumentations-style ``transform(image=..., bboxes=..., labels=...)``
        returning a dict (see :func:`dicomxray.transforms.train_transforms`).
        Re-seeded per DataLoader worker from ``torch.initial_seed()``.
    target_transform : callable, optional
        Applied to the target dict (``boxes``, ``labels``, ``image_label``).
    on_error : {"raise", "skip"}
        ``raise`` re-raises the library's error (naming the file); ``skip``
        returns ``None`` for that index, which :meth:`collate` drops, and
        records it: :meth:`skipped` lists the files after the epoch.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        labels: LabelSource | None = None,
        size: int | tuple[int, int] | None = 512,
        keep_ratio: bool = False,
        letterbox: bool = False,
        dtype: OutputDType = "uint8",
        channels: int = 1,
        config: PipelineConfig | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_identity: Literal["stat", "content"] = "stat",
        transform: Callable[..., dict[str, Any]] | None = None,
        target_transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        on_error: OnError = "raise",
        files: Sequence[str | os.PathLike[str]] | None = None,
        extensions: Sequence[str] = DICOM_EXTENSIONS,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        self.root = Path(os.path.expanduser(os.fspath(root)))
        paths = [Path(f) for f in files] if files is not None else find_dicoms(self.root, extensions=extensions)
        if labels is not None:
            paths = labelled_only(paths, labels)
            if not paths:
                raise SourceFileNotFoundError(
                    f"{self.root}: none of the DICOM files matches a labelled image id", path=str(self.root))
        processors = getattr(transform, "processors", None)
        if labels is not None and isinstance(processors, dict) and "bboxes" not in processors:
            raise ValueError(
                "with labels, an albumentations transform must move the boxes too: build it with "
                "bbox_params=dicomxray.transforms.bbox_params() (train_transforms/val_transforms do)"
            )
        self.files: list[str] = [str(p) for p in paths]
        self.labels = labels
        self.config = make_config(size, keep_ratio=keep_ratio, letterbox=letterbox, dtype=dtype, config=config)
        self.channels = channels
        self.cache = XrayCache(cache_dir, identity=cache_identity) if cache_dir is not None else None
        self.transform = transform
        self.target_transform = target_transform
        self.on_error = on_error
        self._skip_log = _new_skip_log() if on_error == "skip" else None
        self._seeded: int | None = None

    def __len__(self) -> int:
        return len(self.files)

    # ----------------------------------------------------------------- steps
    def load(self, index: int) -> XrayImage:
        """The rendered, resized image of ``index`` (from the cache when enabled)."""
        path = self.files[index]
        if self.cache is not None:
            return self.cache.load(path, self.config)
        return load_xray(path, config=self.config)

    def target(self, index: int) -> Target | None:
        """Labels of ``index`` in original pixels (``None`` without labels)."""
        if self.labels is None:
            return None
        return self.labels.target(Path(self.files[index]).stem)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        try:
            image = self.load(index)
        except DicomXrayError as exc:
            if self.on_error == "raise":
                raise
            self._record_skip(self.files[index], exc)
            return None
        target = self.target(index)
        geom = image.meta.geometry
        pixels = image.pixels
        boxes = boxes_to_output(target.boxes, geom) if target is not None else np.zeros((0, 4))
        box_labels = target.box_labels if target is not None else np.zeros((0,), np.int64)
        if self.transform is not None:
            self._maybe_reseed()
            out = self.transform(image=to_albumentations_dtype(np.asarray(pixels)), bboxes=boxes, labels=box_labels)
            pixels = out["image"]
            boxes = np.asarray(out.get("bboxes", boxes), dtype=np.float32).reshape(-1, 4)
            box_labels = np.asarray(out.get("labels", box_labels), dtype=np.int64)
        sample: dict[str, Any] = {"image": self._to_tensor(pixels), "meta": self._meta(index, image)}
        if self.labels is not None:
            tgt = {
                "boxes": torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)),
                "labels": torch.as_tensor(np.asarray(box_labels, dtype=np.int64)),
                "image_label": torch.tensor(target.image_label if target is not None else -1, dtype=torch.int64),
            }
            sample.update(self.target_transform(tgt) if self.target_transform else tgt)
        return sample

    def _to_tensor(self, pixels: np.ndarray) -> torch.Tensor:
        arr = np.asarray(pixels)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.dtype == np.uint8:
            t = torch.from_numpy(arr.copy()).to(torch.float32).div_(255.0)
        elif arr.dtype == np.uint16:
            t = torch.from_numpy(arr.astype(np.float32)).div_(65535.0)
        else:
            t = torch.from_numpy(np.array(arr, dtype=np.float32))
        t = t.unsqueeze(0)
        return t.expand(3, -1, -1).contiguous() if self.channels == 3 else t

    def _meta(self, index: int, image: XrayImage) -> dict[str, Any]:
        m = image.meta
        return {
            "index": index,
            "path": m.path,
            "sop_instance_uid": m.sop_instance_uid,
            "study_instance_uid": m.study_instance_uid,
            "series_instance_uid": m.series_instance_uid,
            "original_size": torch.tensor(m.original_shape, dtype=torch.int64),
            "geometry": m.geometry.to_dict(),
        }

    # --------------------------------------------------------- randomness
    def _maybe_reseed(self) -> None:
        """Seed the transform from torch's per-worker seed, once per worker (or once in-process)."""
        seed = torch.initial_seed()
        if seed == self._seeded:
            return
        self._seeded = seed
        setter = getattr(self.transform, "set_random_seed", None)
        if setter is not None:
            setter(seed % 2**32)

    # -------------------------------------------------------------- errors
    def _record_skip(self, path: str, exc: Exception) -> None:
        import warnings

        warnings.warn(f"dicomxray: skipping {exc}", stacklevel=3)
        if self._skip_log is not None:
            line = f"{path}\t{type(exc).__name__}: {str(exc).replace(chr(10), ' ')}\n"
            with open(self._skip_log, "a") as fh:  # O_APPEND: lines from workers do not interleave
                fh.write(line)

    def skipped(self) -> list[tuple[str, str]]:
        """Files skipped so far by any worker, as ``(path, error)``, without repeats."""
        if self._skip_log is None or not os.path.exists(self._skip_log):
            return []
        seen: dict[str, str] = {}
        with open(self._skip_log) as fh:
            for line in fh:
                path, _, err = line.rstrip("\n").partition("\t")
                seen.setdefault(path, err)
        return list(seen.items())

    # ------------------------------------------------------------- batching
    @staticmethod
    def collate(batch: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
        """Detection collate: stacks images, keeps per-image ``boxes``/``labels``/``meta`` as lists,
        drops skipped (``None``) samples and counts them in ``skipped``."""
        samples = [s for s in batch if s is not None]
        out: dict[str, Any] = {"skipped": len(batch) - len(samples)}
        if not samples:
            out.update(image=torch.empty(0), meta=[], boxes=[], labels=[])
            return out
        out["image"] = torch.stack([s["image"] for s in samples])
        out["meta"] = [s["meta"] for s in samples]
        if "boxes" in samples[0]:
            out["boxes"] = [s["boxes"] for s in samples]
            out["labels"] = [s["labels"] for s in samples]
            out["image_label"] = torch.stack([s["image_label"] for s in samples])
        return out


def _new_skip_log() -> str:
    """A unique path shared by the workers; the file only exists once something was skipped."""
    return os.path.join(tempfile.gettempdir(), f"dicomxray-skipped-{uuid.uuid4().hex}.tsv")
