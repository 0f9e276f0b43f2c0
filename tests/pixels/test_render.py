from __future__ import annotations

import numpy as np
import pytest

from dicomxray import RenderConfig, read_xray
from dicomxray.dicom.display import DisplayTags, Lut
from dicomxray.pixels.render import lookup, render, window


def tags(**kw) -> DisplayTags:
    base = dict(modality_lut=None, rescale=None, voi_luts=(), windows=(), voi_function="LINEAR", invert=False)
    base.update(kw)
    return DisplayTags(**base)


def classic_float(values: np.ndarray, invert: bool) -> np.ndarray:
    """The classic recipe's float64 min-max on already VOI'd values."""
    data = values.astype(np.float64)
    if invert:
        data = np.amax(data) - data
    data = data - np.min(data)
    data = data / np.max(data)
    return (data * 255).astype(np.uint8)


def linear_window(x, c, w, y_min, y_max):
    x = x.astype(np.float64)
    c, w = c - 0.5, w - 1
    return np.where(x <= c - w / 2, y_min, np.where(x > c + w / 2, y_max, ((x - c) / w + 0.5) * (y_max - y_min) + y_min))


@pytest.mark.parametrize("bits", [10, 12, 14, 15, 16])
@pytest.mark.parametrize("invert", [False, True], ids=["mono2", "mono1"])
def test_table_render_is_bit_identical_to_float_chain(bits, invert):
    rng = np.random.default_rng(bits)
    stored = rng.integers(0, 2**bits, (50, 70), dtype=np.uint16)
    c, w = 2 ** (bits - 1), 2 ** (bits - 2)
    out, info = render(stored, tags(windows=((c, w),), invert=invert), RenderConfig(),
                       bits_allocated=16, bits_stored=bits, signed=False)
    expected = classic_float(linear_window(stored, c, w, 0, 2**bits - 1), invert)
    assert np.array_equal(out, expected)
    assert info.inverted is invert and info.voi.startswith("window")


def test_bits_above_bits_stored_are_ignored():
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 4096, (30, 30), dtype=np.uint16)
    dirty = stored | np.uint16(0xA000)  # garbage in the unused high bits
    a, _ = render(stored, tags(), RenderConfig(), bits_allocated=16, bits_stored=12, signed=False)
    b, _ = render(dirty, tags(), RenderConfig(), bits_allocated=16, bits_stored=12, signed=False)
    assert np.array_equal(a, b)


def test_signed_pixels_sign_extend_from_bits_stored():
    values = np.array([[-2048, -1, 0, 2047]], dtype=np.int16)
    as_12bit_pattern = (values.view(np.uint16) & 0x0FFF)  # not sign-extended in the file
    out, _ = render(as_12bit_pattern, tags(), RenderConfig(), bits_allocated=16, bits_stored=12, signed=True)
    assert out.tolist() == [[0, 127, 127, 255]]
    out2, _ = render(values, tags(), RenderConfig(), bits_allocated=16, bits_stored=12, signed=True)
    assert np.array_equal(out, out2)


def test_negative_rescale_slope_is_not_flipped():
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 4096, (40, 40), dtype=np.uint16)
    # slope -1, intercept 4095: modality value = 4095 - stored.  Bright where stored is low.
    neg, info = render(stored, tags(rescale=(-1.0, 4095.0), windows=((2048, 4096),)), RenderConfig(),
                       bits_allocated=16, bits_stored=12, signed=False)
    pos, _ = render((4095 - stored).astype(np.uint16), tags(rescale=(1.0, 0.0), windows=((2048, 4096),)),
                    RenderConfig(), bits_allocated=16, bits_stored=12, signed=False)
    assert info.modality == "rescale"
    assert np.array_equal(neg, pos)
    assert neg[stored == stored.min()].min() == 255


def test_monochrome2_with_presentation_inverse_inverts(write, phantom):
    plain = read_xray(write(phantom, bits_stored=12))
    inverse = read_xray(write(phantom, bits_stored=12, presentation_lut_shape="INVERSE"))
    # truncation (like the classic recipe) makes floor(255 t) and 255 - floor(255 (1 - t)) differ by <= 1
    assert np.abs(inverse.astype(int) - (255 - plain.astype(int))).max() <= 1


def test_monochrome1_with_inverse_shape_inverts_exactly_once(write, phantom):
    mono1 = read_xray(write(phantom, bits_stored=12, photometric="MONOCHROME1"))
    both = read_xray(write(phantom, bits_stored=12, photometric="MONOCHROME1", presentation_lut_shape="INVERSE"))
    mono2 = read_xray(write(phantom, bits_stored=12))
    assert np.array_equal(mono1, both)
    assert np.abs(mono1.astype(int) - (255 - mono2.astype(int))).max() <= 1


def test_monochrome1_with_window(write, phantom):
    c, w = 1500, 1200
    out = read_xray(write(phantom, bits_stored=12, photometric="MONOCHROME1", window=(c, w)))
    expected = classic_float(linear_window(phantom, c, w, 0, 4095), invert=True)
    assert np.array_equal(out, expected)
    assert out[phantom >= c + w].max() == 0  # dense (high) values render black in MONOCHROME1


def test_monochrome1_with_voi_lut_sequence(write, phantom):
    lut = (np.arange(4096)[::-1] // 16).astype(np.uint16)  # a decreasing LUT, 8-bit output
    out = read_xray(write(phantom, bits_stored=12, photometric="MONOCHROME1", voi_lut=(0, lut, 8),
                          window=(10, 20)))  # the LUT must win over the window by default
    expected = classic_float(lut[phantom], invert=True)
    assert np.array_equal(out, expected)
    window_only = read_xray(write(phantom, bits_stored=12, photometric="MONOCHROME1", voi_lut=(0, lut, 8),
                                  window=(1500, 1000)), config=_cfg(prefer_lut=False))
    assert not np.array_equal(window_only, out)


def test_modality_lut_sequence(write):
    rng = np.random.default_rng(2)
    stored = rng.integers(-100, 300, (30, 40)).astype(np.int16)
    mlut = (np.sqrt(np.arange(600)) * 100).astype(np.uint16)  # first mapped value -150
    out = read_xray(write(stored, bits_stored=12, modality_lut=(-150, mlut, 16)))
    expected = classic_float(mlut[np.clip(stored.astype(int) + 150, 0, 599)], invert=False)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("func", ["LINEAR_EXACT", "SIGMOID"])
def test_other_voi_functions(write, phantom, func):
    c, w = 1800.0, 900.0
    out = read_xray(write(phantom, bits_stored=12, window=(c, w), voi_function=func))
    x = phantom.astype(np.float64)
    if func == "SIGMOID":
        y = 4095 / (1 + np.exp(-4 * (x - c) / w))
    else:
        y = np.where(x <= c - w / 2, 0, np.where(x > c + w / 2, 4095, ((x - c) / w + 0.5) * 4095))
    assert np.abs(out.astype(int) - classic_float(y, False).astype(int)).max() <= 1
    assert np.array_equal(window(np.array([c - w, c + w]), c, w, func, 0, 1).round(), [0, 1])


def test_second_window_by_index(write, phantom):
    path = write(phantom, bits_stored=12, window=[(1000, 400), (2500, 3000)])
    first = read_xray(path)
    second = read_xray(path, config=_cfg(voi_index=1))
    assert np.array_equal(second, classic_float(linear_window(phantom, 2500, 3000, 0, 4095), False))
    assert not np.array_equal(first, second)


def test_window_normalization_has_no_data_stretch(write):
    flat = np.full((20, 20), 2000, dtype=np.uint16)
    flat[0, 0] = 2100
    out = read_xray(write(flat, bits_stored=12, window=(2048, 4096)), normalize="window")
    assert 120 <= out[5, 5] <= 130  # mid-grey stays mid-grey; min-max would make it black
    assert read_xray(write(flat, bits_stored=12, window=(2048, 4096)))[5, 5] == 0


def test_percentile_normalization_clips_outliers(write, phantom):
    img = phantom.copy()
    img[0, :5] = 4095  # a few hot pixels
    out = read_xray(write(img, bits_stored=12), normalize="percentile", dtype="float32")
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert (out == 1.0).mean() > 0.001  # more than the hot pixels saturate: the stretch ignores them


@pytest.mark.parametrize("dtype,top", [("uint8", 255), ("uint16", 65535), ("float32", 1.0)])
def test_output_dtypes(write, phantom, dtype, top):
    out = read_xray(write(phantom, bits_stored=12), dtype=dtype)
    assert out.dtype == np.dtype(dtype)
    assert out.min() == 0 and out.max() == top


def test_voi_and_polarity_can_be_turned_off(write, phantom):
    path = write(phantom, bits_stored=12, photometric="MONOCHROME1", window=(1000, 100))
    raw = read_xray(path, config=_cfg(voi=False, polarity=False))
    assert np.array_equal(raw, classic_float(phantom, False))


def test_constant_image_renders_black_not_nan(write):
    out = read_xray(write(np.full((8, 8), 7, np.uint16), bits_stored=12), dtype="float32")
    assert np.all(out == 0.0)


def test_lut_input_beyond_table_clamps():
    lut = Lut(first_mapped=10, data=np.array([0.0, 5.0, 9.0]), bits=8)
    from dicomxray.pixels.render import apply_lut

    assert apply_lut(np.array([0, 10, 11, 12, 500]), lut).tolist() == [0, 0, 5, 9, 9]


def _cfg(**render):
    from dicomxray import PipelineConfig

    return PipelineConfig(render=RenderConfig(**render))


@pytest.mark.parametrize("raw_dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("out_dtype", [np.uint8, np.uint16, np.float32])
def test_lookup_gathers_every_bit_pattern_into_a_given_buffer(raw_dtype, out_dtype):
    top = np.iinfo(raw_dtype).max
    rng = np.random.default_rng(3)
    raw = rng.integers(0, top + 1, (300, 257), dtype=raw_dtype)  # more samples than one chunk, a partial last one
    raw[0, :2] = (0, top)
    table = rng.integers(0, 255, top + 1).astype(out_dtype)
    assert np.array_equal(lookup(table, raw), table[raw])
    buf = np.full(raw.shape, 7, dtype=out_dtype)
    got = lookup(table, raw, out=buf)
    assert np.shares_memory(got, buf) and np.array_equal(buf, table[raw])


def test_lookup_refuses_a_short_table_and_a_wrong_buffer():
    raw = np.arange(4096, dtype=np.uint16).reshape(64, 64)
    with pytest.raises(ValueError, match="every uint16 bit pattern"):
        lookup(np.zeros(4096, np.uint8), raw)  # would wrap a stray high bit onto another value
    with pytest.raises(ValueError, match="every int16 bit pattern"):
        lookup(np.zeros(65536, np.uint8), raw.view(np.int16))
    for bad in (np.empty((64, 65), np.uint8), np.empty((64, 64), np.uint16), np.empty((64, 128), np.uint8)[:, ::2]):
        with pytest.raises(ValueError, match="out must be"):
            lookup(np.zeros(65536, np.uint8), raw, out=bad)


@pytest.mark.parametrize("normalize", ["minmax", "window", "percentile"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_render_into_a_buffer_is_the_same_image(normalize, dtype):
    rng = np.random.default_rng(4)
    stored = rng.integers(0, 4096, (70, 90), dtype=np.uint16)
    cfg = RenderConfig(normalize=normalize, dtype=dtype)
    t = tags(windows=((2000, 3000),), invert=True)
    fresh, info = render(stored, t, cfg, bits_allocated=16, bits_stored=12, signed=False)
    buf = np.empty(stored.shape, dtype)
    into, info2 = render(stored, t, cfg, bits_allocated=16, bits_stored=12, signed=False, out=buf)
    assert np.shares_memory(into, buf) and into.dtype == fresh.dtype and np.array_equal(into, fresh)
    assert info == info2


@pytest.mark.parametrize("where", [0, 1 << 18, (1 << 18) + 5, -1])
def test_minmax_stretch_finds_extremes_in_any_chunk(where):
    # The present range is read in chunks: an extreme in the first, a middle or the last (partial) one counts.
    stored = np.full(600 * 1000, 2000, dtype=np.uint16)
    stored[where] = 4095
    stored[where - 7] = 3
    out, _ = render(stored.reshape(600, 1000), tags(), RenderConfig(), bits_allocated=16, bits_stored=12, signed=False)
    flat = out.reshape(-1)
    assert flat[where] == 255 and flat[where - 7] == 0 and flat[1] == int((2000 - 3) / (4095 - 3) * 255)
