"""Same pixels in every encoding: invariance against the uncompressed twin, and reduced vs full JPEG 2000.

    python -m benchmarks.bench_fidelity [--out bench_out]

1. Encoding invariance of the default path: for every lossless syntax (a synthetic
   12-bit MONOCHROME1 film, unsigned and signed, of a size that is no multiple of
   any reduction factor, and the shared NEMA RG3 CR film in five encodings), the
   max and mean |diff| in grey levels against the uncompressed twin, over full
   size and 256/512/1024 x square/keep-ratio/letterbox x minmax/window/percentile.
2. Opt-in reduced-resolution JPEG 2000 / HTJ2K: per film and output size, the
   resolution level used, its PSNR against full decoding per normalization (window and
   percentile: minmax is refused with it; real
   films and synthetic signed files), and the time it saves (same thread policy).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import uid

from dicomxray import DecodeConfig, GeometryConfig, PipelineConfig, RenderConfig, load_xray, read_xray
from dicomxray.testing import chest_phantom, write_dicom

from .common import machine, write_report

SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "dicom-samples"
LOSSLESS = {
    "Explicit VR Big Endian": uid.ExplicitVRBigEndian, "Deflated": uid.DeflatedExplicitVRLittleEndian,
    "JPEG Lossless SV1": uid.JPEGLosslessSV1, "JPEG-LS Lossless": uid.JPEGLSLossless,
    "JPEG 2000 Lossless": uid.JPEG2000Lossless, "HTJ2K Lossless": uid.HTJ2KLossless, "RLE Lossless": uid.RLELossless,
    "JPEG XL Lossless": "1.2.840.10008.1.2.4.110",
}
SIGNED = {"Explicit VR Big Endian", "Deflated", "JPEG 2000 Lossless", "HTJ2K Lossless", "RLE Lossless"}
SIZES = (None, 256, 512, 1024)
MODES = ("square", "keep_ratio", "letterbox")
NORMALIZE = ("minmax", "window", "percentile")
#: minmax is refused with reduced_resolution: the low-pass band loses the extreme pixels a min-max stretch uses.
REDUCED_NORMALIZE = ("window", "percentile")


def _cfg(size: int | None, mode: str, normalize: str, reduced: bool = False) -> PipelineConfig:
    return PipelineConfig(decode=DecodeConfig(reduced_resolution=reduced), render=RenderConfig(normalize=normalize),
                          geometry=GeometryConfig(size=size, mode=mode))


def _invariance(path: Path, twin: Path) -> tuple[float, float]:
    worst_max, worst_mean = 0.0, 0.0
    for size in SIZES:
        for mode in MODES if size else ("square",):
            for normalize in NORMALIZE:
                cfg = _cfg(size, mode, normalize)
                d = np.abs(read_xray(path, config=cfg).astype(np.float64) - read_xray(twin, config=cfg))
                worst_max, worst_mean = max(worst_max, float(d.max())), max(worst_mean, float(d.mean()))
    return worst_max, worst_mean


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _timed(path: Path, cfg: PipelineConfig, repeat: int = 3) -> tuple[Any, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = load_xray(path, config=cfg)
        times.append((time.perf_counter() - t0) * 1000)
    return result, float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="dicomxray-fidelity-"))
    inv_rows: list[list[Any]] = []
    base = chest_phantom(1201, 1003, bits=12, seed=11)
    for signed in (False, True):
        img = (base.astype(np.int32) - 2048).astype(np.int16) if signed else base
        twin = write_dicom(tmp / f"twin{int(signed)}.dcm", img, bits_stored=12, photometric="MONOCHROME1")
        for name, syntax in LOSSLESS.items():
            if signed and name not in SIGNED:
                continue
            path = write_dicom(tmp / f"{name}{int(signed)}.dcm", img, bits_stored=12, photometric="MONOCHROME1",
                               syntax=syntax)
            inv_rows.append([f"synthetic {'signed' if signed else 'unsigned'} 1003x1201", name, *_invariance(path, twin)])
            print(inv_rows[-1], flush=True)
    if (SAMPLES / "cr_rg3_uncompressed_mono1.dcm").exists():
        ref = SAMPLES / "cr_rg3_uncompressed_mono1.dcm"
        for name in ("j2k_lossless", "jpeg_lossless", "rle", "jpegls_lossless"):
            inv_rows.append(["NEMA RG3 CR 1760x1760", name, *_invariance(SAMPLES / f"cr_rg3_{name}_mono1.dcm", ref)])
            print(inv_rows[-1], flush=True)

    films: list[tuple[str, Path]] = []
    if SAMPLES.exists():
        films += [("RG3 CR, J2K lossless", SAMPLES / "cr_rg3_j2k_lossless_mono1.dcm"),
                  ("RG3 CR, J2K lossy", SAMPLES / "cr_rg3_j2k_lossy_mono1.dcm"),
                  ("CR hand, J2K lossless", SAMPLES / "cr_hand_j2k_lossless_12bit.dcm")]
    signed_img = (chest_phantom(2048, 2048, bits=12, seed=12).astype(np.int32) - 2048).astype(np.int16)
    for label, syntax in (("synthetic signed, J2K", uid.JPEG2000Lossless), ("synthetic signed, HTJ2K", uid.HTJ2KLossless)):
        films.append((label, write_dicom(tmp / f"{label}.dcm", signed_img, bits_stored=12, syntax=syntax)))
    red_rows: list[list[Any]] = []
    for label, path in films:
        for size, mode in ((224, "square"), (256, "square"), (384, "square"), (512, "square"), (512, "letterbox"),
                           (640, "square"), (768, "square"), (1024, "square")):
            psnrs = []
            for normalize in REDUCED_NORMALIZE:
                (fast, t_fast), (full, t_full) = (_timed(path, _cfg(size, mode, normalize, reduced=True)),
                                                  _timed(path, _cfg(size, mode, normalize)))
                psnrs.append(_psnr(fast.pixels, full.pixels))
            red_rows.append([label, f"{size} {mode}", fast.meta.reduce, *psnrs, t_full, t_fast])
            print(red_rows[-1], flush=True)
    payload = {"machine": machine(), "invariance": inv_rows, "reduced": red_rows}
    md = write_report(args.out, "fidelity_invariance", payload, inv_rows,
                      ["film", "encoding", "max |diff| (grey levels)", "mean |diff|"])
    md2 = write_report(args.out, "fidelity_reduced", payload, red_rows,
                       ["film", "output", "level used", "PSNR window dB", "PSNR percentile dB",
                        "full ms", "reduced ms"])
    print(md)
    print(md2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
