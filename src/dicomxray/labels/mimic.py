"""MIMIC-CXR (PhysioNet): the CheXpert or NegBio labeler's findings per study, joined to the DICOMs by the metadata."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..io.source import locate
from ._csv import find_label_file, header_of, read_csv
from ._findings import Uncertain, Unmentioned, check_policy, findings
from .base import KeyedTargets, Target

Split = Literal["train", "validate", "test"]
Labeler = Literal["chexpert", "negbio"]
_SPLITS = frozenset({"train", "validate", "test"})
_LABELERS = frozenset({"chexpert", "negbio"})
_KEYS = ("subject_id", "study_id")
_NO_FINDING = "No Finding"


class MimicCxr(KeyedTargets):
    """MIMIC-CXR's DICOMs with MIMIC-CXR-JPG's labels: multi-label findings per study, NaN where unknown.

    Reads three files of the ``mimic-cxr-jpg`` project, each plain or gzipped (``.csv`` or ``.csv.gz``),
    beside ``files/`` or in ``labels_dir``:

    * ``mimic-cxr-2.0.0-chexpert.csv`` (or ``-negbio``): ``subject_id,study_id`` and one column per finding
      (read by name, in the file's order: ``multilabel_classes``); ``1.0`` positive, ``0.0`` negative,
      ``-1.0`` uncertain, blank not mentioned;
    * ``mimic-cxr-2.0.0-metadata.csv``: ``dicom_id,subject_id,study_id,...,ViewPosition,...``;
    * ``mimic-cxr-2.0.0-split.csv``: ``dicom_id,study_id,subject_id,split``.

    The key of an image is its ``dicom_id`` (the file stem of ``files/pNN/pNNNNNNNN/sNNNNNNNN/<dicom_id>.dcm``);
    an image whose study the labeler has no row for is unlabelled.  :meth:`files` hands the dataset the
    selected images from the metadata, so 377,000 files are neither sniffed nor warned about one by one.

    Parameters
    ----------
    folder : path-like
        The folder holding ``files/``.
    views : sequence of str, optional
        ``ViewPosition`` values to keep (``("PA", "AP")``: the frontal views); ``None`` keeps every image.
    split : {"train", "validate", "test"} or None
        The official split to keep; ``None`` keeps all three.
    uncertain : {"ignore", "zeros", "ones"}
        ``-1.0`` becomes NaN (unknown, to mask out of the loss), 0 or 1 (the CheXpert paper's U-Ignore,
        U-Zeros, U-Ones).
    unmentioned : {"ignore", "zeros"}
        A blank becomes NaN or 0.
    no_finding_rule : bool
        torchxrayvision's rule: in a study whose ``No Finding`` is 1, every finding still unknown
        (NaN after the two policies) becomes 0.
    labels_dir : path-like, optional
        Where the three CSVs are, when not beside ``files/``.
    labeler : {"chexpert", "negbio"}
        Whose labels.
    """

    classes: tuple[str, ...] = ()
    box_classes: tuple[str, ...] = ("background",)

    def __init__(
        self, folder: str | os.PathLike[str], *, views: Sequence[str] | None = ("PA", "AP"),
        split: Split | None = "train", uncertain: Uncertain = "ignore", unmentioned: Unmentioned = "ignore",
        no_finding_rule: bool = False, labels_dir: str | os.PathLike[str] | None = None, labeler: Labeler = "chexpert",
    ) -> None:
        check_policy(uncertain, unmentioned)
        if split is not None and split not in _SPLITS:
            raise ValueError(f"split must be one of {sorted(_SPLITS)} or None, got {split!r}")
        if labeler not in _LABELERS:
            raise ValueError(f"labeler must be one of {sorted(_LABELERS)}, got {labeler!r}")
        if isinstance(views, str):
            raise ValueError(f"views is a sequence of ViewPosition values, e.g. ({views!r},), not a string")
        self.folder = Path(os.path.expanduser(os.fspath(folder)))
        self.views = None if views is None else tuple(v.strip().upper() for v in views)
        self.split, self.uncertain, self.unmentioned = split, uncertain, unmentioned
        self.no_finding_rule = bool(no_finding_rule)
        where = [self.folder] if labels_dir is None else [Path(os.path.expanduser(os.fspath(labels_dir)))]
        label_csv, meta_csv, split_csv = (
            find_label_file(where, [f"mimic-cxr-2.0.0-{name}.csv", f"mimic-cxr-2.0.0-{name}.csv.gz"])
            for name in (labeler, "metadata", "split")
        )
        self.multilabel_classes: tuple[str, ...] = tuple(c for c in header_of(label_csv) if c not in _KEYS)
        study_labels = self._read_labels(label_csv)
        split_of = {row.text("dicom_id"): row.text("split")
                    for row in read_csv(split_csv, required=("dicom_id", "split"))} if split is not None else {}
        self._targets = {}
        self._paths: dict[str, str] = {}
        for row in read_csv(meta_csv, required=("dicom_id", "subject_id", "study_id", "ViewPosition")):
            dicom_id, subject, study = row.text("dicom_id"), row.text("subject_id"), row.text("study_id")
            if self.views is not None and row.text("ViewPosition").upper() not in self.views:
                continue
            if split is not None and split_of.get(dicom_id) != split:
                continue
            hot = study_labels.get(study)
            if hot is None:
                continue
            self._targets[dicom_id] = Target(study_id=study, image_labels=hot)
            self._paths[dicom_id] = f"files/p{subject[:2]}/p{subject}/s{study}/{dicom_id}.dcm"

    def _read_labels(self, path: Path) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        names = self.multilabel_classes
        rule = self.no_finding_rule and _NO_FINDING in names
        if self.no_finding_rule and not rule:
            raise ValueError(f"no_finding_rule needs a {_NO_FINDING!r} column; {path} has {list(names)}")
        nf = names.index(_NO_FINDING) if rule else -1
        for row in read_csv(path, required=_KEYS):
            hot = findings(row, names, self.uncertain, self.unmentioned)
            if rule and hot[nf] == 1.0:
                hot[np.isnan(hot)] = 0.0
            study = row.text("study_id")
            if study in out:
                raise row.error(f"a second row for study {study}", "study_id")
            out[study] = hot
        return out

    def files(self, root: str | os.PathLike[str]) -> list[Path] | None:
        """The selected images present under ``root`` (the folder holding ``files/``, or a folder inside it).

        Directories are listed, never files sniffed; an image of the metadata that is not on disk (a
        partial download) is left out.  ``None`` (discover as usual) for a root outside ``folder``.
        """
        where = locate(root)
        if where.remote:
            return None
        base = Path(where.path)
        top = self.folder.absolute()
        if base != top and top not in base.parents:
            return None
        inside = base.relative_to(top).as_posix()
        prefix = "" if inside == "." else inside.rstrip("/") + "/"
        listed: dict[str, frozenset[str]] = {}
        return [top / rel for _, rel in sorted(self._paths.items())
                if rel.startswith(prefix) and _exists(rel, os.fspath(top), listed)]


def _exists(rel: str, top: str, listed: dict[str, frozenset[str]]) -> bool:
    """Whether ``top/rel`` exists, listing each directory on the way (below ``top``) once."""
    here = ""
    for name in rel.split("/"):
        names = listed.get(here)
        if names is None:
            try:
                names = frozenset(os.listdir(os.path.join(top, here)))
            except OSError:
                names = frozenset()
            listed[here] = names
        if name not in names:
            return False
        here = f"{here}/{name}" if here else name
    return True
