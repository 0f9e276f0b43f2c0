"""The test-time path: an unlabelled SIIM-COVID test folder -> a detector -> submission.csv in original pixels.

    python examples/predict.py                                          # synthetic unlabelled test folder, made once
    python examples/predict.py --test /kaggle/siim/test --checkpoint detector.pt

No labels, so the plain ``DataLoader(ds, batch_size=16)`` of the README is used (torch's default collate turns each
sample's ``meta["geometry"]`` into a dict of tensors); ``labels.boxes_to_original_batch`` maps each image's predicted
boxes back to original pixels from that meta, as it would from ``ds.collate``'s list of dicts.  Rows are written in
the competition's format: ``<SOPInstanceUID>_image`` with ``opacity conf x0 y0 x1 y1 ...`` (plus a ``none`` guess),
and ``<StudyInstanceUID>_study`` with the four study classes, checked by ``labels.write_submission``.

``--checkpoint`` loads a ``state_dict`` of train_detector.py's ``CenterNet`` (``torch.save(model.state_dict(), p)``);
without one the weights are untrained: the file and its format are right, its scores mean nothing.  The study
probabilities here come from the best opacity score of the study's images, a stand-in for a study classifier
(train_classifier.py).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from _common import pick_device, sized_boxes
from torch.utils.data import DataLoader
from train_detector import CenterNet, decode

from dicomxray import DicomXrayDataset, pipeline_config
from dicomxray.labels import boxes_to_original_batch, prediction_strings, study_prediction_string, write_submission
from dicomxray.testing import chest_phantom, write_dicom


def ensure_test_folder(folder: Path, *, studies: int = 6, seed: int = 7) -> Path:
    """``folder`` if it holds DICOMs, else a synthetic unlabelled SIIM-style test split written there once.

    Layout ``<study>/<series>/<image>.dcm`` with 12-hex ids equal to the UIDs inside; the first study has two images
    (two series), sizes vary and most are landscape, MONOCHROME1 and MONOCHROME2 alternate.  No CSV: unlabelled.
    """
    if folder.is_dir() and any(folder.rglob("*.dcm")):
        return folder
    print(f"generating a synthetic unlabelled test folder in {folder} ({studies} studies) ...", flush=True)
    rng = np.random.default_rng(seed)
    for s in range(studies):
        study = rng.bytes(6).hex()
        for i in range(2 if s == 0 else 1):
            series, sop = rng.bytes(6).hex(), rng.bytes(6).hex()
            h, w = int(rng.integers(700, 1000)), int(rng.integers(800, 1200))
            stored = chest_phantom(h, w, bits=12, seed=seed * 100 + s * 10 + i)
            mono1 = (s + i) % 2 == 1
            if mono1:
                stored = (4095 - stored).astype(np.uint16)
            write_dicom(folder / study / series / f"{sop}.dcm", stored, bits_stored=12,
                        photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
                        study_uid=study, series_uid=series, sop_uid=sop, patient_id=f"T{s:04d}")
    return folder


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", type=Path, default=Path("demo_out") / "siim-examples" / "test",
                    help="an unlabelled folder of .dcm (default: a synthetic one, generated once)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="CenterNet state_dict from train_detector.py")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--submission", type=Path, default=Path("submission.csv"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    ds = DicomXrayDataset(ensure_test_folder(args.test), config=pipeline_config(size=args.size, letterbox=True))  # no labels
    loader = DataLoader(ds, batch_size=args.batch_size, num_workers=args.workers)  # torch's default collate
    device = pick_device()
    model = CenterNet().to(device)
    if args.checkpoint is not None:
        model.load_state_dict(torch.load(args.checkpoint, map_location=device))
    else:
        print("no --checkpoint: untrained weights (the submission's format is right, its scores mean nothing)")
    model.eval()
    image_rows: list[tuple[str, str]] = []
    study_best: dict[str, float] = defaultdict(float)
    with torch.no_grad():
        for batch in loader:
            detections = decode(*model(batch["image"].to(device)), args.size)
            originals = boxes_to_original_batch([boxes for boxes, _ in detections], batch["meta"])
            for path, study, orig, (_, scores) in zip(batch["meta"]["path"], batch["meta"]["study_instance_uid"],
                                                      originals, detections, strict=True):
                kept, kept_scores = sized_boxes(orig, scores)
                best = max(kept_scores, default=0.0)
                image_rows.append((f"{Path(path).stem}_image",
                                   prediction_strings(kept, kept_scores, none_score=1.0 - best)))
                study_best[study] = max(study_best[study], best)
    study_rows = [(f"{study}_study", study_prediction_string([1.0 - s, s, s, s])) for study, s in study_best.items()]
    # the ids the competition expects (its sample_submission.csv lists the same): every image and every study
    expected = [f"{Path(f).stem}_image" for f in ds.files] + sorted({f"{Path(f).parent.parent.name}_study" for f in ds.files})
    out = write_submission(image_rows + study_rows, args.submission, competition="siim", expected_ids=expected)
    print(f"submission: {out} ({len(image_rows)} image rows, {len(study_rows)} study rows, boxes in original pixels)")
    return {"submission": str(out), "images": len(image_rows), "studies": len(study_rows)}


if __name__ == "__main__":
    main()
