"""VinDr-CXR (PhysioNet release): 28 image labels per reader, voted into multi-labels, and the readers' boxes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import LabelWarning
from ._csv import find_label_file, header_of, read_csv
from .base import KeyedTargets, Target, boxes_array
from .fusion import BoxFusion

#: The 22 local labels (those with boxes), in the order of ``box_classes`` (label = index + 1).
VINDR_LOCAL_LABELS = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture", "Consolidation",
    "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung cavity", "Lung cyst", "Lung Opacity",
    "Mediastinal shift", "Nodule/Mass", "Pleural effusion", "Pleural thickening", "Pneumothorax",
    "Pulmonary fibrosis", "Rib fracture", "Other lesion",
)
#: The 6 global labels (diagnoses, no boxes).
VINDR_GLOBAL_LABELS = ("COPD", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding")

VoteRule = Literal["any", "majority", "all"]
_VOTES = frozenset({"any", "majority", "all"})
_SPLITS = frozenset({"train", "test"})
_BOX = ("x_min", "y_min", "x_max", "y_max")


class VinDrCxr(KeyedTargets):
    """VinDr-CXR as PhysioNet publishes it: ``train/`` and ``test/`` DICOMs named ``<image_id>.dicom``, and
    ``annotations/``.

    * ``annotations/image_labels_{split}.csv``: ``image_id,rad_id`` then one 0/1 column per label (22 local,
      6 global), one row per reader: ``image_labels`` (named ``multilabel_classes``, in the file's order) is
      their vote by ``vote`` on train; the test set has one row per image (a 5-reader consensus), taken as is.
    * ``annotations/annotations_{split}.csv``: ``image_id,rad_id,class_name,x_min,y_min,x_max,y_max``, the
      readers' boxes; label = index in :data:`VINDR_LOCAL_LABELS` + 1.  ``fusion`` fuses them as
      :class:`~dicomxray.labels.VinBigData` does, votes counting distinct ``rad_id``.

    ``image_label`` is 0 when the voted ``No finding`` is 1, else 1 (``study_positive`` says the same).

    Parameters
    ----------
    folder : path-like
        The release's folder (holding ``annotations/``).
    split : {"train", "test"}
        Which half.
    vote : {"any", "majority", "all"}
        A label is 1 when any reader, more than half of the image's readers, or every reader marked it
        (train; the test set is already a consensus).
    fusion : BoxFusion, optional
        Fuse the readers' near-duplicate boxes of each class; by default every reader's box is a target.
    """

    classes: tuple[str, ...] = ("no_finding", "abnormal")
    box_classes: tuple[str, ...] = ("background", *VINDR_LOCAL_LABELS)

    def __init__(
        self, folder: str | os.PathLike[str], split: Literal["train", "test"] = "train", *, vote: VoteRule = "any",
        fusion: BoxFusion | None = None,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
        if vote not in _VOTES:
            raise ValueError(f"vote must be one of {sorted(_VOTES)}, got {vote!r}")
        self.folder = Path(os.path.expanduser(os.fspath(folder)))
        self.split, self.vote, self.fusion = split, vote, fusion
        notes = [self.folder / "annotations", self.folder]
        label_csv = find_label_file(notes, [f"image_labels_{split}.csv", f"image_labels_{split}.csv.gz"])
        box_csv = find_label_file(notes, [f"annotations_{split}.csv", f"annotations_{split}.csv.gz"])
        self.multilabel_classes: tuple[str, ...] = tuple(c for c in header_of(label_csv) if c not in ("image_id", "rad_id"))
        voted = self._vote(label_csv)
        boxes: dict[str, list[list[float]]] = {k: [] for k in voted}
        labels: dict[str, list[int]] = {k: [] for k in voted}
        readers: dict[str, list[str]] = {k: [] for k in voted}
        for row in read_csv(box_csv, required=("image_id", "class_name", *_BOX)):
            iid, name = row.text("image_id"), row.text("class_name")
            if iid not in voted:
                raise row.error(f"image {iid!r} has boxes but no row in {label_csv.name}", "image_id")
            if not row.text("x_min"):
                continue  # "No finding" and the global labels: no box
            if name not in VINDR_LOCAL_LABELS:
                raise row.error(f"unknown local label {name!r}; expected one of {VINDR_LOCAL_LABELS}", "class_name")
            boxes[iid].append([row.number(k) for k in _BOX])
            labels[iid].append(VINDR_LOCAL_LABELS.index(name) + 1)
            readers[iid].append(row.get("rad_id").strip())
        has_readers = any(r for rs in readers.values() for r in rs)
        if fusion is not None and fusion.min_votes > 1 and not has_readers:
            warnings.warn(f"{box_csv}: no rad_id, so votes cannot count readers: each box counts as one vote",
                          LabelWarning, stacklevel=2)
        nf = self.multilabel_classes.index("No finding") if "No finding" in self.multilabel_classes else -1
        self._targets = {}
        for iid, hot in voted.items():
            b, lab = boxes_array(boxes[iid]), np.asarray(labels[iid], np.int64)
            who = readers[iid] if has_readers else [str(i) for i in range(len(lab))]
            if fusion is not None:
                b, lab, _ = fusion.fuse(b, lab, readers=who)
            abnormal = bool(hot[nf] != 1.0) if nf >= 0 else bool(len(lab))
            self._targets[iid] = Target(b, lab, int(abnormal), iid, study_positive=abnormal, image_labels=hot)

    def _vote(self, path: Path) -> dict[str, np.ndarray]:
        names = self.multilabel_classes
        marks: dict[str, list[np.ndarray]] = {}
        for row in read_csv(path, required=("image_id",)):
            values = np.asarray([row.number(c) for c in names], np.float32)
            if not np.isin(values, (0.0, 1.0)).all():
                bad = names[int(np.flatnonzero(~np.isin(values, (0.0, 1.0)))[0])]
                raise row.error(f"expected 0 or 1, got {row.text(bad)!r}", bad)
            iid = row.text("image_id")
            if self.split == "test" and iid in marks:
                raise row.error(f"a second row for test image {iid!r} (the test set is one consensus row per image)",
                                "image_id")
            marks.setdefault(iid, []).append(values)
        return {iid: _voted(np.stack(rows), self.vote) for iid, rows in marks.items()}


def _voted(marks: np.ndarray, vote: str) -> np.ndarray:
    """``R x C`` readers' 0/1 marks to ``C`` float32 labels by the vote rule."""
    count, n = marks.sum(0), len(marks)
    need = 1 if vote == "any" else n if vote == "all" else n // 2 + 1
    return (count >= need).astype(np.float32)
