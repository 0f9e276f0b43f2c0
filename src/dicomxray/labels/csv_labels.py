"""A hospital's own CSV of findings, keyed by the file stem: a new data set in a few lines."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..index import image_id
from ._csv import header_of, read_csv
from ._findings import Uncertain, Unmentioned, check_policy, findings
from .base import KeyedTargets, Target


class CsvLabels(KeyedTargets):
    """Multi-label findings from any CSV with one row per image: a key column and one column per finding.

    The key column holds file stems, file names or relative paths (``a.dcm``, ``scans/2024/a.dcm``,
    ``scans\\a.dcm``): each is reduced to the stem the dataset keys images by (the name without its
    DICOM extension), and two rows reducing to one stem are an error.  Values follow the CheXpert
    labeler's convention: ``1`` positive, ``0`` negative, ``-1`` uncertain, blank not mentioned; by
    default the last two are NaN (unknown: mask them out of the loss), ``uncertain`` and ``unmentioned``
    choose otherwise, as :class:`~dicomxray.labels.MimicCxr` does.  Anything else is an error naming
    the file, the row and the column.

    Parameters
    ----------
    csv : path-like
        The file (plain or gzipped).
    key : str
        The key column.
    classes : sequence of str, optional
        The finding columns, in the order of ``image_labels`` (``multilabel_classes``); by default every
        column but ``key`` and ``study``, in the file's order.
    study : str, optional
        A column naming each image's study or patient (``Target.study_id``, e.g. to group folds).
    uncertain : {"ignore", "zeros", "ones"}
        ``-1`` becomes NaN, 0 or 1.
    unmentioned : {"ignore", "zeros"}
        A blank becomes NaN or 0.
    """

    classes: tuple[str, ...] = ()
    box_classes: tuple[str, ...] = ("background",)

    def __init__(
        self, csv: str | os.PathLike[str], *, key: str, classes: Sequence[str] | None = None, study: str | None = None,
        uncertain: Uncertain = "ignore", unmentioned: Unmentioned = "ignore",
    ) -> None:
        check_policy(uncertain, unmentioned)
        if isinstance(classes, str):
            raise ValueError(f"classes is a sequence of column names, e.g. [{classes!r}], not a string")
        self.path = Path(os.path.expanduser(os.fspath(csv)))
        header = header_of(self.path)
        names = tuple(c for c in header if c not in (key, study)) if classes is None else tuple(classes)
        if not names:
            raise ValueError(f"{self.path}: no finding columns besides {key!r}")
        self.multilabel_classes: tuple[str, ...] = names
        self._targets = {}
        line_of: dict[str, int] = {}
        for row in read_csv(self.path, required=(key, *names, *((study,) if study else ()))):
            raw = row.text(key)
            if not raw:
                raise row.error("empty key", key)
            stem = image_id(raw.replace("\\", "/"))
            if stem in line_of:
                raise row.error(f"{raw!r} is image {stem!r} again (first on line {line_of[stem]})", key)
            line_of[stem] = row.line
            hot = findings(row, names, uncertain, unmentioned)
            self._targets[stem] = Target(study_id=row.text(study) if study else stem, image_labels=hot)
