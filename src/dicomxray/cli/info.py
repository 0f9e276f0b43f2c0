"""``dicomxray info FILE...``: the tags that matter and what the pipeline did, patient data hidden."""

from __future__ import annotations

import argparse
import json
import os
import warnings
from typing import Any

from ..errors import DicomXrayError
from ..pixels.pipeline import Pipeline
from . import _options

# Tags that identify a patient: never printed unless asked for.
PHI_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientAddress",
            "OtherPatientIDs", "AccessionNumber", "InstitutionName", "InstitutionAddress", "ReferringPhysicianName",
            "PerformingPhysicianName", "OperatorsName", "StudyDate", "StudyTime", "StudyID")
_INFO_TAGS = ("Modality", "SOPClassUID", "Rows", "Columns", "NumberOfFrames", "BitsAllocated", "BitsStored",
              "HighBit", "PixelRepresentation", "PhotometricInterpretation", "RescaleSlope", "RescaleIntercept",
              "WindowCenter", "WindowWidth", "VOILUTFunction", "PresentationLUTShape", "ViewPosition",
              "BodyPartExamined")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="the tags that matter and what the pipeline did (patient data hidden)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("files", nargs="+", help="DICOM files")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--show-phi", action="store_true", help="also print patient-identifying tags (default: hidden)")
    _options.add_pipeline_options(p)
    p.set_defaults(func=run)


def _tag_value(ds: Any, name: str) -> Any:
    value = ds.get(name)
    if value is None or isinstance(value, (int, float, str)):
        return value
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return str(value)


def describe(path: str, pipeline: Pipeline, *, show_phi: bool) -> dict[str, Any]:
    """Tags and pipeline facts of one file (read once); ``error`` names what went wrong."""
    out: dict[str, Any] = {"path": os.path.abspath(path)}
    try:
        header = pipeline.header(path)
        ts = header.transfer_syntax
        out["TransferSyntaxUID"] = str(ts)
        out["TransferSyntax"] = ts.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in _INFO_TAGS + (PHI_TAGS if show_phi else ()):
                try:
                    out[name] = _tag_value(header.ds, name)
                except (ValueError, TypeError):
                    out[name] = None
            out["VOILUTSequence"] = len(header.ds.get("VOILUTSequence") or [])
            out["ModalityLUTSequence"] = bool(header.ds.get("ModalityLUTSequence"))
        image = pipeline.read(header)
        meta = image.meta.to_dict()
        out["pipeline"] = {k: meta[k] for k in ("decoder", "reduce", "modality_lut", "voi", "inverted", "dtype")}
        out["pipeline"]["output_shape"] = list(image.pixels.shape)
    except DicomXrayError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def run(args: argparse.Namespace) -> int:
    pipeline = Pipeline(_options.config_from(args))
    status = 0
    for path in args.files:
        out = describe(path, pipeline, show_phi=args.show_phi)
        status |= int("error" in out)
        if args.json:
            print(json.dumps(out, indent=2, default=str), flush=True)
            continue
        for key, value in out.items():
            if value is None or value == []:
                continue
            if isinstance(value, dict):
                for k, v in value.items():
                    print(f"  pipeline.{k:<14} {v}")
            else:
                print(f"{key:<28} {value}")
        print(flush=True)
    return status
