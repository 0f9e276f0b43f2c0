"""``dicomxray`` command line: export, info, doctor, cache, preview, bench.

Every command goes through the same public pipeline as the dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import dicomxray as dx

# Tags that identify a patient: never printed unless asked for.
PHI_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientAddress",
            "OtherPatientIDs", "AccessionNumber", "InstitutionName", "InstitutionAddress", "ReferringPhysicianName",
            "PerformingPhysicianName", "OperatorsName", "StudyDate", "StudyTime", "StudyID")
_INFO_TAGS = ("Modality", "SOPClassUID", "Rows", "Columns", "NumberOfFrames", "BitsAllocated", "BitsStored",
              "HighBit", "PixelRepresentation", "PhotometricInterpretation", "RescaleSlope", "RescaleIntercept",
              "WindowCenter", "WindowWidth", "VOILUTFunction", "PresentationLUTShape", "ViewPosition",
              "BodyPartExamined")


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=None, help="output size (square side, or longest side with --keep-ratio)")
    geo = p.add_mutually_exclusive_group()
    geo.add_argument("--keep-ratio", action="store_true", help="keep the aspect ratio (longest side = --size)")
    geo.add_argument("--letterbox", action="store_true", help="keep the aspect ratio and pad to size x size")
    p.add_argument("--dtype", choices=["uint8", "uint16", "float32"], default=None)
    p.add_argument("--normalize", choices=["minmax", "window", "percentile"], default=None)
    p.add_argument("--no-voi", action="store_true", help="do not apply the VOI LUT / window")
    p.add_argument("--reduced-resolution", action="store_true",
                   help="decode JPEG 2000 / HTJ2K at a reduced resolution level when the output is small "
                        "(faster, changes the image slightly; off by default)")


def _config(args: argparse.Namespace) -> dx.PipelineConfig:
    base = dx.PipelineConfig(
        render=dx.RenderConfig(voi=not args.no_voi),
        decode=dx.DecodeConfig(reduced_resolution=args.reduced_resolution),
    )
    return dx.make_config(args.size, keep_ratio=args.keep_ratio, letterbox=args.letterbox, dtype=args.dtype,
                          normalize=args.normalize, config=base)


def cmd_export(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if cfg.render.dtype == "float32":
        print("error: export writes images; use --dtype uint8 or uint16", file=sys.stderr)
        return 2
    results = dx.export_folder(args.source, args.target, fmt=args.format, config=cfg, workers=args.workers,
                               overwrite=args.overwrite, progress=not args.quiet)
    counts = {s: sum(r.status == s for r in results) for s in ("written", "skipped", "failed")}
    print(f"export: {counts['written']} written, {counts['skipped']} up to date, {counts['failed']} failed -> {args.target}")
    for r in results:
        if r.status == "failed":
            print(f"  failed: {r.error}", file=sys.stderr)
    return 1 if counts["failed"] and args.on_error == "raise" else 0


def _tag_value(ds: Any, name: str) -> Any:
    value = ds.get(name)
    if value is None:
        return None
    if isinstance(value, (int, float, str)):
        return value
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return str(value)


def cmd_info(args: argparse.Namespace) -> int:
    import warnings

    import pydicom

    status = 0
    for path in args.files:
        out: dict[str, Any] = {"path": os.path.abspath(path)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
                ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
                out["TransferSyntaxUID"] = str(ts) if ts else None
                out["TransferSyntax"] = str(ts.name) if ts else "missing (implicit VR little endian assumed)"
                for name in _INFO_TAGS:
                    out[name] = _tag_value(ds, name)
                out["VOILUTSequence"] = len(ds.get("VOILUTSequence", []))
                out["ModalityLUTSequence"] = bool(ds.get("ModalityLUTSequence"))
                if args.show_phi:
                    for name in PHI_TAGS:
                        out[name] = _tag_value(ds, name)
            image = dx.load_xray(path, config=_config(args))
            meta = image.meta.to_dict()
            out["pipeline"] = {k: meta[k] for k in ("decoder", "reduce", "modality_lut", "voi", "inverted", "dtype")}
            out["pipeline"]["output_shape"] = list(image.pixels.shape)
        except Exception as exc:  # a DicomXrayError from the pipeline, or a header pydicom cannot even parse
            out["error"] = f"{type(exc).__name__}: {exc}"
            status = 1
        if args.json:
            print(json.dumps(out, indent=2, default=str))
        else:
            for key, value in out.items():
                if value is None or value == []:
                    continue
                if isinstance(value, dict):
                    for k, v in value.items():
                        print(f"  pipeline.{k:<14} {v}")
                else:
                    print(f"{key:<28} {value}")
            print()
    return status


def cmd_doctor(args: argparse.Namespace) -> int:
    rows = dx.capability_report()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'transfer syntax':<46} {'uid':<24} {'backend':<12} fallbacks / install")
        for r in rows:
            extra = ", ".join(r["fallbacks"]) if r["backend"] else "pip install " + " ".join(r["install"])
            print(f"{r['name']:<46} {r['uid']:<24} {r['backend'] or 'MISSING':<12} {extra}")
    missing = [r for r in rows if r["backend"] is None]
    if not args.json:
        print(f"\n{len(rows) - len(missing)}/{len(rows)} transfer syntaxes decodable")
    return 1 if missing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dicomxray", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"dicomxray {dx.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="render a folder of DICOMs to PNG/JPEG, mirroring the tree")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--format", choices=["png", "jpg"], default="png")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--overwrite", action="store_true", help="rewrite targets that are up to date")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="raise: exit 1 if any file failed (all others are still written)")
    p.add_argument("--quiet", action="store_true")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="the tags that matter and what the pipeline did (patient data hidden)")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--show-phi", action="store_true", help="also print patient-identifying tags")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("doctor", help="which transfer syntaxes decode here, by which backend")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    from . import _cli_more

    _cli_more.register(sub, _add_pipeline_options, _config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``main(["export", "in/", "out/"]) -> exit code``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except dx.DicomXrayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
