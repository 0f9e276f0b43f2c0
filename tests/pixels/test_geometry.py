from __future__ import annotations

import numpy as np
import pytest

from dicomxray import GeometryConfig, boxes_to_original, boxes_to_output, read_xray
from dicomxray.pixels.geometry import plan_geometry, reduction_for, resamples, resize


@pytest.mark.parametrize(
    "mode,size,expect",
    [
        pytest.param("square", 512, (512, 512, 512, 512, 0, 0), id="square"),
        pytest.param("keep_ratio", 512, (410, 512, 410, 512, 0, 0), id="keep_ratio"),
        pytest.param("letterbox", 512, (512, 512, 410, 512, 51, 0), id="letterbox"),
    ],
)
def test_plan(mode, size, expect):
    g = plan_geometry(2000, 2500, GeometryConfig(size=size, mode=mode))
    assert (g.height, g.width, g.content_height, g.content_width, g.pad_top, g.pad_left) == expect


def test_boxes_roundtrip_and_clip():
    g = plan_geometry(1000, 1600, GeometryConfig(size=640, mode="letterbox"))
    boxes = np.array([[100.0, 200.0, 500.0, 900.0], [1500.0, -20.0, 1700.0, 300.0]])
    out = boxes_to_output(boxes, g)
    back = boxes_to_original(out, g)
    assert np.allclose(back[0], boxes[0])
    assert np.allclose(back[1], [1500, 0, 1600, 300])  # clipped to the image
    assert out[:, 1].min() >= g.pad_top


@pytest.mark.parametrize("mode", ["square", "keep_ratio", "letterbox"])
def test_bright_rectangle_lands_where_its_box_maps(write, mode):
    h, w = 600, 900
    img = np.full((h, w), 100, np.uint16)
    box = (300.0, 150.0, 540.0, 330.0)
    img[150:330, 300:540] = 4000
    out = read_xray(write(img, bits_stored=12), 256, keep_ratio=mode == "keep_ratio", letterbox=mode == "letterbox")
    g = plan_geometry(h, w, GeometryConfig(size=256, mode=mode))
    x0, y0, x1, y1 = boxes_to_output([box], g)[0]
    inside = out[int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2]
    assert inside.min() > 200
    ys, xs = np.nonzero(out > 128)
    assert abs(xs.min() - x0) <= 2 and abs(xs.max() + 1 - x1) <= 2
    assert abs(ys.min() - y0) <= 2 and abs(ys.max() + 1 - y1) <= 2


def test_resize_accepts_reduced_input_and_pads():
    g = plan_geometry(400, 800, GeometryConfig(size=100, mode="letterbox"))
    small = np.full((100, 200), 1.0, np.float32)  # a 2**-2 decode of the original
    out = resize(small, g, pad_value=0.0, reduce=2)
    assert out.shape == (100, 100)
    assert out[g.pad_top + 1, 50] == 1.0 and out[0, 50] == 0.0


def test_reduction_covers_the_target():
    g = plan_geometry(2500, 2048, GeometryConfig(size=512))
    r = reduction_for(g)
    assert r == 2 and 2048 / 2**r >= 512
    assert reduction_for(plan_geometry(600, 600, GeometryConfig(size=512))) == 0


def test_bad_geometry_config_is_refused():
    with pytest.raises(ValueError):
        GeometryConfig(size=0)
    with pytest.raises(ValueError):
        GeometryConfig(size=512, mode="stretch")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["square", "keep_ratio", "letterbox"])
@pytest.mark.parametrize("size", [None, 60, 96, 200, (96, 120), (40, 30)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_resize_returns_new_memory_whenever_it_resamples(mode, size, dtype):
    # Pipeline.read renders an image that resize resamples into a reused buffer: the output must never share it.
    if isinstance(size, tuple) and mode == "keep_ratio":
        pytest.skip("keep_ratio takes an int size")
    image = ((np.arange(96 * 120).reshape(96, 120) % 251) / (251 if dtype == np.float32 else 1)).astype(dtype)
    geom = plan_geometry(96, 120, GeometryConfig(size=size, mode=mode))
    out = resize(image, geom)
    if resamples(geom, image.shape):
        assert not np.shares_memory(out, image)
    else:
        assert (geom.content_height, geom.content_width) == image.shape
    for reduce in (1, 2):
        small = image[: 96 >> reduce, : 120 >> reduce].copy()
        if resamples(geom, small.shape, reduce):
            assert not np.shares_memory(resize(small, geom, reduce=reduce), small)


def test_resamples_is_false_only_for_the_identity():
    geom = plan_geometry(96, 120, GeometryConfig(size=None))
    assert not resamples(geom, (96, 120))
    assert resamples(geom, (48, 60), reduce=1)  # a reduced decode always resamples
    assert resamples(plan_geometry(96, 120, GeometryConfig(size=(96, 120))), (96, 120)) is False
    assert resamples(plan_geometry(96, 120, GeometryConfig(size=64)), (96, 120))
