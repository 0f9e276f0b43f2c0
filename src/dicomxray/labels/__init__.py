"""Per-image targets for the data sets our users bring, keyed by the file stem.

Every label source implements :class:`LabelSource`: ``target(key)`` returns a
:class:`Target` (boxes in original pixels, xyxy; box labels >= 1 as torchvision
detection expects, 0 being background; an image/study class) or ``None`` for
an unlabelled file.  The key is the file name without extension, which is the
SOP Instance UID in SIIM-COVID, the patientId in RSNA and the image_id in
VinBigData.
"""

from __future__ import annotations

from .base import LabelSource, Target
from .rsna import RsnaPneumonia
from .siim import SIIM_STUDY_CLASSES, SiimCovid, prediction_strings, write_submission
from .splits import patient_folds
from .vinbig import VinBigData

__all__ = [
    "SIIM_STUDY_CLASSES",
    "LabelSource",
    "RsnaPneumonia",
    "SiimCovid",
    "Target",
    "VinBigData",
    "patient_folds",
    "prediction_strings",
    "write_submission",
]
