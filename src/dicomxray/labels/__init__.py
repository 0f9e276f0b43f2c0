"""Per-image targets for the data sets our users bring, keyed by the file stem, and their submissions.

Every label source implements :class:`LabelSource`: ``target(key)`` returns a
:class:`Target` (boxes in original pixels, xyxy; box labels >= 1 as torchvision
detection expects, 0 being background; an image/study class) or ``None`` for
an unlabelled file.  The key is the file name without extension, which is the
SOP Instance UID in SIIM-COVID and SIIM-ACR, the patientId in RSNA, the image_id in
VinBigData and VinDr-CXR, the dicom_id in MIMIC-CXR.

Multi-label findings (``Target.image_labels``, NaN where unknown, named by the
source's ``multilabel_classes``): :class:`VinBigData`, :class:`VinDrCxr`,
:class:`MimicCxr`, :class:`CsvLabels` (a hospital's own CSV).  Masks
(``Target.masks``, decoded when read): :class:`SiimAcrPneumothorax`, with
:func:`siim_acr_rle` / :func:`siim_acr_mask` for its run-length encoding.

Submissions: :func:`boxes_to_original_batch` maps a batch's predicted boxes back to
original pixels, :func:`masks_to_original_batch` (:func:`mask_to_original` for one)
its predicted masks; ``prediction_strings`` (SIIM), :func:`rsna_prediction_string`
and :func:`vinbig_prediction_string` format them; :func:`write_submission`
checks and writes the CSV; :func:`read_submission` parses one back.
"""

from __future__ import annotations

from .base import ArrayMasks, LabelSource, MaskSource, Target, labelled_only
from .csv_labels import CsvLabels
from .fusion import BoxFusion, Fused
from .masks import mask_to_original, masks_to_original_batch
from .mimic import MimicCxr
from .rle import RleMasks, siim_acr_mask, siim_acr_rle
from .rsna import RSNA_DETAILED_CLASSES, RsnaPneumonia, rsna_prediction_string
from .siim import SIIM_STUDY_CLASSES, SiimCovid, prediction_strings, study_prediction_string
from .siim_acr import SiimAcrPneumothorax
from .splits import patient_folds
from .submission import (
    Competition,
    Prediction,
    boxes_to_original_batch,
    parse_prediction_string,
    read_submission,
    read_submission_frame,
    unbatch_meta,
    write_submission,
)
from .submission_acr import read_siim_acr_submission
from .tta import hflip, hflip_tta, unflip_boxes
from .vinbig import VINBIG_CLASSES, VINBIG_NO_FINDING, VinBigData, vinbig_prediction_string
from .vindr import VINDR_GLOBAL_LABELS, VINDR_LOCAL_LABELS, VinDrCxr

__all__ = [
    "RSNA_DETAILED_CLASSES",
    "SIIM_STUDY_CLASSES",
    "VINBIG_CLASSES",
    "VINBIG_NO_FINDING",
    "VINDR_GLOBAL_LABELS",
    "VINDR_LOCAL_LABELS",
    "ArrayMasks",
    "BoxFusion",
    "Competition",
    "CsvLabels",
    "Fused",
    "LabelSource",
    "MaskSource",
    "MimicCxr",
    "Prediction",
    "RleMasks",
    "RsnaPneumonia",
    "SiimAcrPneumothorax",
    "SiimCovid",
    "Target",
    "VinBigData",
    "VinDrCxr",
    "boxes_to_original_batch",
    "labelled_only",
    "mask_to_original",
    "masks_to_original_batch",
    "parse_prediction_string",
    "patient_folds",
    "prediction_strings",
    "read_siim_acr_submission",
    "read_submission",
    "read_submission_frame",
    "rsna_prediction_string",
    "siim_acr_mask",
    "siim_acr_rle",
    "study_prediction_string",
    "unbatch_meta",
    "vinbig_prediction_string",
    "hflip",
    "hflip_tta",
    "unflip_boxes",
    "write_submission",
]
