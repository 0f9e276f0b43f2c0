"""Opt-in reduced-resolution JPEG 2000 at the sizes people train at: any total factor >= 2, odd box factors too."""

from __future__ import annotations

import numpy as np
import pytest

from dicomxray import DecodeConfig, GeometryConfig, PipelineConfig, RenderConfig, load_xray
from dicomxray.pixels.geometry import plan_geometry, reduction_for


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("shape,size,mode,levels,want", [
    pytest.param((1760, 1760), 512, "square", 1, 1, id="1760-to-512-factor-3.4"),
    pytest.param((2500, 2048), 512, "letterbox", 1, 1, id="2500x2048-letterbox-512"),
    pytest.param((2048, 2048), 1024, "square", 1, 1, id="factor-exactly-2"),
    pytest.param((1760, 1760), 1024, "square", 1, 0, id="factor-1.7-stays-full"),
    pytest.param((2500, 1000), 512, "square", 1, 0, id="one-axis-below-2"),
    pytest.param((1760, 1760), 400, "square", 2, 2, id="factor-4.4-two-levels"),
    pytest.param((1760, 1760), 512, "square", 2, 1, id="factor-3.4-one-level"),
])
def test_a_level_is_allowed_whenever_the_total_factor_is_at_least_two(shape, size, mode, levels, want):
    geom = plan_geometry(*shape, GeometryConfig(size=size, mode=mode))
    assert reduction_for(geom, max_levels=levels) == want


FILMS = ["cr_rg3_j2k_lossless_mono1.dcm", "cr_rg3_j2k_lossy_mono1.dcm", "cr_hand_j2k_lossless_12bit.dcm"]


@pytest.mark.parametrize("name", FILMS)
@pytest.mark.parametrize("size,mode", [(512, "square"), (640, "letterbox"), (384, "keep_ratio")])
def test_odd_factors_on_the_shared_films_stay_close_to_full_decoding(samples, name, size, mode):
    for normalize in ("window", "percentile"):  # minmax is refused with reduced_resolution (see below)
        geometry = GeometryConfig(size=size, mode=mode)
        fast = load_xray(samples / name, config=PipelineConfig(decode=DecodeConfig(reduced_resolution=True),
                                                              render=RenderConfig(normalize=normalize), geometry=geometry))
        full = load_xray(samples / name, config=PipelineConfig(render=RenderConfig(normalize=normalize), geometry=geometry))
        assert fast.meta.reduce == 1 and full.meta.reduce == 0, (name, size)
        assert fast.meta.geometry == full.meta.geometry
        assert _psnr(fast.pixels, full.pixels) >= 40, (name, size, mode, normalize)


@pytest.mark.parametrize("name", FILMS)
@pytest.mark.parametrize("size", [256, 384, 512, 640, 768, 1024])
def test_window_stays_within_40_db_of_full_decoding_at_every_training_size(samples, name, size):
    geometry = GeometryConfig(size=size)
    render = RenderConfig(normalize="window")
    fast = load_xray(samples / name, config=PipelineConfig(decode=DecodeConfig(reduced_resolution=True), render=render,
                                                          geometry=geometry))
    full = load_xray(samples / name, config=PipelineConfig(render=render, geometry=geometry))
    assert _psnr(fast.pixels, full.pixels) >= 40, (name, size, fast.meta.reduce)


def test_minmax_with_reduced_resolution_is_refused_and_says_why():
    with pytest.raises(ValueError, match="low-pass band.*min-max stretch"):
        PipelineConfig(decode=DecodeConfig(reduced_resolution=True))
    with pytest.raises(ValueError, match="normalize='window' or 'percentile'"):
        PipelineConfig(decode=DecodeConfig(reduced_resolution=True), render=RenderConfig(normalize="minmax"))
    for normalize in ("window", "percentile"):
        PipelineConfig(decode=DecodeConfig(reduced_resolution=True), render=RenderConfig(normalize=normalize))


def test_one_hot_pixel_is_why_minmax_is_refused(write):
    """The mechanism: a hot pixel sets the full decode's maximum, the low-pass band averages it away, so a
    min-max stretch of the reduced level is far brighter than the full decode's (24.6 dB PSNR at 256 for
    this file before the refusal); window and percentile do not depend on one pixel."""
    from pydicom import uid

    from dicomxray import Pipeline
    from dicomxray.pixels.decode import decode_frame
    from dicomxray.testing import chest_phantom

    img = (chest_phantom(1024, 1024, bits=12, seed=5) // 3).astype(np.uint16)
    img[500, 500] = 4095
    header = Pipeline().header(write(img, bits_stored=12, syntax=uid.JPEG2000Lossless))
    full, half = decode_frame(header).array, decode_frame(header, reduce=1).array
    assert full.max() == 4095 and half.max() < 0.8 * full.max()
    window = RenderConfig(normalize="window")
    fast = load_xray(header.path, config=PipelineConfig(decode=DecodeConfig(reduced_resolution=True), render=window,
                                                       geometry=GeometryConfig(size=256)))
    slow = load_xray(header.path, config=PipelineConfig(render=window, geometry=GeometryConfig(size=256)))
    assert _psnr(fast.pixels, slow.pixels) >= 40
