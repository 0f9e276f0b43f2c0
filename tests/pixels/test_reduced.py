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
    for normalize in ("minmax", "window", "percentile"):
        geometry = GeometryConfig(size=size, mode=mode)
        fast = load_xray(samples / name, config=PipelineConfig(decode=DecodeConfig(reduced_resolution=True),
                                                              render=RenderConfig(normalize=normalize), geometry=geometry))
        full = load_xray(samples / name, config=PipelineConfig(render=RenderConfig(normalize=normalize), geometry=geometry))
        assert fast.meta.reduce == 1 and full.meta.reduce == 0, (name, size)
        assert fast.meta.geometry == full.meta.geometry
        assert _psnr(fast.pixels, full.pixels) >= 40, (name, size, mode, normalize)
