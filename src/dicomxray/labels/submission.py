"""From a batch of predictions to a competition's submission file, and back.

Each competition's ``PredictionString`` (boxes always in original pixels):

========  =================================  ===============================================  ======================
data set  header                             one prediction (tokens)                          nothing found
========  =================================  ===============================================  ======================
siim      ``id,PredictionString``            ``opacity conf x0 y0 x1 y1`` (ids ``*_image``);   ``none 1 0 0 1 1``
                                             ``negative p 0 0 1 1 ...`` (ids ``*_study``)
rsna      ``patientId,PredictionString``     ``conf x y width height``                        empty
vinbig    ``image_id,PredictionString``      ``class_id conf x_min y_min x_max y_max``         ``14 1 0 0 1 1``
========  =================================  ===============================================  ======================

:func:`boxes_to_original_batch` maps a batch's predicted boxes back to original
pixels whatever the collate; :func:`write_submission` checks every row against
the competition's format before writing; :func:`read_submission` parses a file
back to boxes (xyxy) and scores.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..pixels.geometry import Geometry, boxes_to_original
from .siim import SIIM_STUDY_CLASSES
from .submission_acr import write_siim_acr
from .submission_checks import WHOLE_IMAGE_TOKENS, check_ids, check_values, rows_of, sample_ids, size_of

Competition = Literal["siim", "rsna", "vinbig", "siim-acr"]


@dataclass(frozen=True)
class _Format:
    id_column: str
    #: class tokens allowed, by id suffix ("" = an id without SIIM's suffixes); None = no class token
    classes: Mapping[str, frozenset[str] | None]
    #: boxes written ``x y width height`` (RSNA) rather than ``x0 y0 x1 y1``
    xywh: bool
    #: what "nothing found" is written as; None where an empty string is the answer
    empty: str | None

    @property
    def class_token(self) -> bool:
        return any(c is not None for c in self.classes.values())

    @property
    def group(self) -> int:
        return 6 if self.class_token else 5


_SIIM_SUFFIXES = ("_image", "_study")
_FORMATS: dict[str, _Format] = {
    "siim": _Format("id", {"_image": frozenset({"opacity", "none"}), "_study": frozenset(SIIM_STUDY_CLASSES)},
                    xywh=False, empty="'none 1 0 0 1 1' (image) or 'negative 1 0 0 1 1' (study)"),
    "rsna": _Format("patientId", {"": None}, xywh=True, empty=None),
    "vinbig": _Format("image_id", {"": frozenset(str(i) for i in range(15))}, xywh=False, empty="'14 1 0 0 1 1'"),
}


@dataclass(frozen=True)
class Prediction:
    """One parsed ``PredictionString``.

    Attributes
    ----------
    classes : tuple of str
        The class token of each prediction as written (``opacity``, ``none``, ``typical``, ``3``...);
        empty strings for RSNA, which writes none.
    scores : numpy.ndarray
        ``N`` float64 confidences.
    boxes : numpy.ndarray
        ``N x 4`` float64 xyxy in original pixels (RSNA's ``x y width height`` converted).
    """

    classes: tuple[str, ...]
    scores: np.ndarray
    boxes: np.ndarray


def _format(competition: str) -> _Format:
    if competition == "siim-acr":
        raise ValueError("siim-acr rows are run-length masks, not PredictionStrings: see read_siim_acr_submission")
    if competition not in _FORMATS:
        raise ValueError(f"competition must be one of {sorted(_FORMATS)}, got {competition!r}")
    return _FORMATS[competition]


def _allowed_classes(row_id: str, fmt: _Format, competition: str) -> frozenset[str] | None:
    suffix = next((s for s in _SIIM_SUFFIXES if row_id.endswith(s)), "")
    if suffix not in fmt.classes:
        if suffix:
            raise ValueError(f"{competition} ids have no {suffix!r} suffix (that is SIIM's): {row_id!r}")
        raise ValueError(
            f"SIIM ids end in '_image' (the SOP Instance UID) or '_study' (the Study Instance UID): got {row_id!r}")
    return fmt.classes[suffix]


def parse_prediction_string(
    text: str, competition: Competition, *, row_id: str | None = None, size: tuple[float, float] | None = None,
) -> Prediction:
    """Parse one ``PredictionString`` of ``competition``, checking its token groups.

    Parameters
    ----------
    text : str
        The string.
    competition : {"siim", "rsna", "vinbig"}
        Whose format.
    row_id : str, optional
        The row's id; when given, it is checked too (SIIM's ``_image``/``_study`` suffix,
        and the class tokens that suffix allows).
    size : (width, height), optional
        The original image's size: boxes must lie within it.

    Raises
    ------
    ValueError
        Naming what is wrong: token count, class token, a number, a confidence outside ``[0, 1]``,
        a box with zero or negative size or a negative coordinate, a whole-image row (``none``,
        study classes, VinBigData's ``14``) that is not ``conf 0 0 1 1``.
    """
    fmt = _format(competition)
    allowed = _allowed_classes(row_id, fmt, competition) if row_id is not None else None
    tokens = (text or "").split()
    where = f" (row {row_id!r})" if row_id is not None else ""
    if not tokens and fmt.empty is not None:
        raise ValueError(f"empty or missing {competition} PredictionString{where}: write {fmt.empty} when nothing is found")
    if len(tokens) % fmt.group:
        raise ValueError(f"{competition} predictions are groups of {fmt.group} tokens, got {len(tokens)}{where}: {text!r}")
    classes, scores, boxes = [], [], []
    for k in range(0, len(tokens), fmt.group):
        group = tokens[k : k + fmt.group]
        cls = group.pop(0) if fmt.class_token else ""
        known = allowed if allowed is not None else _any_class(fmt)
        if known is not None and cls not in known:
            raise ValueError(f"unknown {competition} class {cls!r}{where}; expected one of {sorted(known)}")
        try:
            nums = [float(t) for t in group]
        except ValueError:
            raise ValueError(f"not a number in {competition} prediction {' '.join(tokens[k:k + fmt.group])!r}{where}") from None
        if not all(math.isfinite(v) for v in nums):
            raise ValueError(f"non-finite value in {competition} prediction {group}{where}")
        score, x0, y0, a, b = nums
        x1, y1 = (x0 + a, y0 + b) if fmt.xywh else (a, b)
        classes.append(cls)
        scores.append(score)
        boxes.append([x0, y0, x1, y1])
    out = Prediction(tuple(classes), np.asarray(scores, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4))
    check_values(out.classes, out.scores, out.boxes, where=f" of {competition}{where}", size=size)
    return out


def _any_class(fmt: _Format) -> frozenset[str] | None:
    sets = [c for c in fmt.classes.values() if c is not None]
    return frozenset().union(*sets) if sets else None


def write_submission(
    rows: Iterable[tuple[str, str]] | Any, path: str | os.PathLike[str], *, competition: Competition = "siim",
    expected_ids: Iterable[str] | None = None, sample_submission: str | os.PathLike[str] | None = None,
    image_sizes: Mapping[str, tuple[float, float]] | None = None, min_confidence: float | None = None,
    top_k: int | None = None,
) -> Path:
    """Write ``(id, PredictionString)`` rows as ``competition``'s submission CSV, or refuse.

    Everything is checked before anything is written, so a bad submission raises and leaves no
    file: the id suffixes and class tokens, token groups, every value (finite; confidences in
    ``[0, 1]``; ``0 <= x0 < x1``, ``0 <= y0 < y1``, within the image given ``image_sizes``;
    ``none``/study/``14`` rows exactly ``conf 0 0 1 1``), duplicates, an empty file, and, given
    ``expected_ids`` or ``sample_submission``, every missing or extra id.  The prediction strings
    come from :func:`~dicomxray.labels.prediction_strings` / :func:`~dicomxray.labels.study_prediction_string`
    (SIIM), :func:`~dicomxray.labels.rsna_prediction_string` or :func:`~dicomxray.labels.vinbig_prediction_string`.
    A missing value (``None``, NaN, ``pandas.NA``, ``NaT``) is an empty prediction: RSNA's "nothing found",
    refused elsewhere.

    SIIM-ACR (``competition="siim-acr"``) writes ``ImageId,EncodedPixels``: each row one combined mask, as
    a run-length string (:func:`~dicomxray.labels.siim_acr_rle`; ``-1`` when empty) or an ``H x W`` array
    in original pixels (encoded here).  Checked: every expected id once, well-formed runs, inside the
    image given ``image_sizes``, ``-1`` (never an empty cell) for no pneumothorax; ``min_confidence`` and
    ``top_k`` do not apply (giving them raises).

    Parameters
    ----------
    rows : iterable of (str, str), or pandas.DataFrame
        SIIM: ids ``<SOPInstanceUID>_image`` and ``<StudyInstanceUID>_study``; RSNA: the patientId;
        VinBigData: the image_id (each the file stem for images); SIIM-ACR: the ImageId.  A DataFrame
        has the id column (``id`` / ``patientId`` / ``image_id`` / ``ImageId``) and ``PredictionString``
        (``EncodedPixels`` for SIIM-ACR).
    path : path-like
        The CSV to write (parent folders are created).
    competition : {"siim", "rsna", "vinbig", "siim-acr"}
        Whose format: sets the header (``id`` / ``patientId`` / ``image_id``, then ``PredictionString``;
        ``ImageId,EncodedPixels``).
    expected_ids : iterable of str, optional
        The ids the competition scores (e.g. the test set's); any other set of ids raises.
    sample_submission : path-like, optional
        The competition's ``sample_submission.csv``, read for its ids (instead of ``expected_ids``).
    image_sizes : mapping of str to (width, height), optional
        Original image sizes by row id (or image key); boxes must lie within them.
    min_confidence : float, optional
        Drop box predictions below it (``none``/study/``14`` guesses are kept).
    top_k : int, optional
        Keep the ``top_k`` most confident box predictions of each row.  A row left without any
        prediction is written as the competition's "nothing found".

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if competition == "siim-acr":
        if min_confidence is not None or top_k is not None:
            raise ValueError("min_confidence and top_k thin box predictions; a siim-acr row is one mask (threshold it)")
        return write_siim_acr(rows, path, expected_ids=expected_ids, sample_submission=sample_submission,
                              image_sizes=image_sizes)
    fmt = _format(competition)
    if expected_ids is not None and sample_submission is not None:
        raise ValueError("give expected_ids or sample_submission, not both")
    if sample_submission is not None:
        expected_ids = sample_ids(sample_submission, fmt.id_column)
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k!r}")
    pairs = rows_of(rows, fmt.id_column)
    check_ids([i for i, _ in pairs], expected_ids, competition)
    checked: list[tuple[str, str]] = []
    for row_id, value in pairs:
        text = str(value)
        parse_prediction_string(text, competition, row_id=row_id, size=size_of(image_sizes, row_id))
        if min_confidence is not None or top_k is not None:
            text = _select(text, competition, row_id, min_confidence, top_k)
        checked.append((row_id, text))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([fmt.id_column, "PredictionString"])
        writer.writerows(checked)
    return out


def _select(text: str, competition: str, row_id: str, min_confidence: float | None, top_k: int | None) -> str:
    """The row's text keeping box predictions at or above ``min_confidence``, at most ``top_k`` of them."""
    fmt = _format(competition)
    tokens = text.split()
    groups = [tokens[k : k + fmt.group] for k in range(0, len(tokens), fmt.group)]
    whole = [g for g in groups if fmt.class_token and g[0] in WHOLE_IMAGE_TOKENS]
    boxes = [g for g in groups if not (fmt.class_token and g[0] in WHOLE_IMAGE_TOKENS)]
    conf = 1 if fmt.class_token else 0
    boxes = [g for g in boxes if min_confidence is None or float(g[conf]) >= min_confidence]
    boxes = sorted(boxes, key=lambda g: -float(g[conf]))[:top_k]
    kept = boxes + whole
    if not kept and fmt.empty is not None:
        return "none 1 0 0 1 1" if competition == "siim" else "14 1 0 0 1 1"
    return " ".join(" ".join(g) for g in kept)


def read_submission(path: str | os.PathLike[str], competition: Competition) -> dict[str, Prediction]:
    """Parse a submission CSV back: ``{id: Prediction}``, checking the header and every row."""
    fmt = _format(competition)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != [fmt.id_column, "PredictionString"]:
            raise ValueError(f"{path}: {competition} header is {fmt.id_column},PredictionString, got {header}")
        out: dict[str, Prediction] = {}
        for line, row in enumerate(reader, start=2):
            if len(row) != 2:
                raise ValueError(f"{path}:{line}: expected 2 columns, got {len(row)}")
            if row[0] in out:
                raise ValueError(f"{path}:{line}: duplicate id {row[0]!r}")
            try:
                out[row[0]] = parse_prediction_string(row[1], competition, row_id=row[0])
            except ValueError as exc:
                raise ValueError(f"{path}:{line}: {exc}") from None
    return out


def read_submission_frame(path: str | os.PathLike[str], competition: Competition) -> Any:
    """The submission as a pandas DataFrame (id column, ``PredictionString``), checked as :func:`read_submission` checks.

    Empty prediction strings (RSNA's "nothing found") stay empty strings, never NaN.
    """
    read_submission(path, competition)
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)


def unbatch_meta(meta: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One meta dict per sample, from a batch's ``meta`` whatever the collate.

    ``DicomXrayDataset.collate`` gives a list of dicts (returned as is); torch's default
    collate gives one dict of batched values (tensors, lists of strings, nested dicts such
    as ``geometry``), split here into per-sample dicts of Python values.
    """
    if not isinstance(meta, Mapping):
        return [dict(m) for m in meta]
    columns = {k: unbatch_meta(v) if isinstance(v, Mapping) else _column(v) for k, v in meta.items()}
    sizes = {len(v) for v in columns.values()}
    if len(sizes) > 1:
        raise ValueError(f"batched meta fields have different lengths: { {k: len(v) for k, v in columns.items()} }")
    n = sizes.pop() if sizes else 0
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def _column(value: Any) -> list[Any]:
    values = value.tolist() if hasattr(value, "tolist") else value
    return list(values)


def boxes_to_original_batch(
    boxes: Sequence[Any], meta: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, clip: bool = True
) -> list[np.ndarray]:
    """Map each sample's predicted boxes from output pixels back to original pixels.

    Parameters
    ----------
    boxes : sequence of array-like
        Per sample, ``N x 4`` xyxy in the model's input pixels (numpy arrays or tensors, any device).
    meta : dict or list of dict
        ``batch["meta"]`` from either ``DataLoader(ds, batch_size=...)`` (torch's default collate)
        or ``DataLoader(..., collate_fn=ds.collate)``.
    clip : bool
        Clip to the original image (as :func:`dicomxray.boxes_to_original` does).

    Returns
    -------
    list of numpy.ndarray
        Per sample, ``N x 4`` float64 xyxy in original pixels, ready for a ``PredictionString``.
    """
    rows = unbatch_meta(meta)
    if len(rows) != len(boxes):
        raise ValueError(f"{len(boxes)} box arrays for a batch of {len(rows)} samples")
    out = []
    for b, row in zip(boxes, rows, strict=True):
        arr = np.asarray(b.detach().cpu() if hasattr(b, "detach") else b, dtype=np.float64)
        out.append(boxes_to_original(arr, Geometry.from_record(row["geometry"]), clip=clip))
    return out
