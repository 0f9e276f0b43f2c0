"""The same image in every encoding, at every size, and boxes on their pixels (issue 9)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicomxray import (
    DecodeConfig,
    DicomXrayWarning,
    GeometryConfig,
    Pipeline,
    PipelineConfig,
    RenderConfig,
    UnsupportedImageError,
    boxes_to_output,
    load_xray,
    read_xray,
)
from dicomxray.pixels.decode import decode_frame
from dicomxray.pixels.decode._guards import resolution_levels
from dicomxray.testing import chest_phantom

LOSSLESS = [
    uid.ImplicitVRLittleEndian, uid.ExplicitVRBigEndian, uid.DeflatedExplicitVRLittleEndian, uid.JPEGLossless,
    uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEG2000Lossless, uid.HTJ2KLossless, uid.RLELossless,
    "1.2.840.10008.1.2.4.110",  # JPEG XL Lossless
]
SIGNED_OK = {uid.ImplicitVRLittleEndian, uid.ExplicitVRBigEndian, uid.DeflatedExplicitVRLittleEndian,
             uid.JPEG2000Lossless, uid.HTJ2KLossless, uid.RLELossless}


def _config(size, mode="square", normalize="minmax", dtype="uint8", reduced=False) -> PipelineConfig:
    return PipelineConfig(decode=DecodeConfig(reduced_resolution=reduced),
                          render=RenderConfig(normalize=normalize, dtype=dtype),
                          geometry=GeometryConfig(size=size, mode=mode))


def _assert_same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    scale = 255.0 if a.dtype == np.float32 else 1.0
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)) * scale
    assert d.mean() <= 0.1 and (d > 1).mean() <= 0.001, f"{what}: mean {d.mean():.3f}, max {d.max():.1f}"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("syntax", [pytest.param(s, id=str(s)) for s in LOSSLESS])
def test_every_lossless_syntax_renders_like_its_uncompressed_twin(write, syntax, signed):
    if signed and syntax not in SIGNED_OK:
        pytest.skip("the test encoder writes this syntax unsigned only")
    img = chest_phantom(301, 263, bits=12, seed=3)  # sizes that are no multiple of any reduction factor
    if signed:
        img = (img.astype(np.int32) - 2048).astype(np.int16)
    photometric = "MONOCHROME1" if signed else "MONOCHROME2"
    twin = write(img, bits_stored=12, photometric=photometric)
    path = write(img, bits_stored=12, photometric=photometric, syntax=syntax)
    for size in (None, 64, 128):
        for mode in ("square", "keep_ratio", "letterbox"):
            for normalize in ("minmax", "window", "percentile"):
                for dtype in ("uint8", "float32"):
                    if size is None and mode != "square":
                        continue
                    cfg = _config(size, mode, normalize, dtype)
                    _assert_same(read_xray(path, config=cfg), read_xray(twin, config=cfg),
                                 f"{syntax} {size} {mode} {normalize} {dtype}")


@pytest.mark.parametrize("name", ["j2k_lossless", "jpeg_lossless", "rle", "jpegls_lossless"])
def test_shared_rg3_film_renders_alike_in_every_encoding(samples, name):
    ref = samples / "cr_rg3_uncompressed_mono1.dcm"
    for size in (None, 256, 512, 1024):
        for mode in ("square", "keep_ratio", "letterbox"):
            for normalize in ("minmax", "window", "percentile"):
                if size is None and mode != "square":
                    continue
                cfg = _config(size, mode, normalize)
                _assert_same(read_xray(samples / f"cr_rg3_{name}_mono1.dcm", config=cfg), read_xray(ref, config=cfg),
                             f"{name} {size} {mode} {normalize}")


@pytest.mark.parametrize("syntax", [uid.JPEG2000Lossless, uid.HTJ2KLossless])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_reduced_resolution_is_opt_in_and_close_to_full(write, syntax, signed):
    img = chest_phantom(1024, 1024, bits=12, seed=5)
    if signed:
        img = (img.astype(np.int32) - 2048).astype(np.int16)
    path = write(img, bits_stored=12, syntax=syntax)
    assert load_xray(path, 256).meta.reduce == 0  # the default decodes at full resolution
    for normalize in ("window", "percentile"):
        fast = load_xray(path, config=_config(256, normalize=normalize, reduced=True))
        full = load_xray(path, config=_config(256, normalize=normalize))
        assert fast.meta.reduce == 1 and full.meta.reduce == 0
        assert _psnr(fast.pixels, full.pixels) >= 40, normalize


@pytest.mark.parametrize("size,mode", [(256, "square"), (512, "letterbox")])
def test_reduced_resolution_on_the_shared_j2k_films(samples, size, mode):
    for name in ("cr_rg3_j2k_lossless_mono1.dcm", "cr_hand_j2k_lossless_12bit.dcm"):
        for normalize in ("window", "percentile"):
            fast = load_xray(samples / name, config=_config(size, mode, normalize, reduced=True))
            full = load_xray(samples / name, config=_config(size, mode, normalize))
            assert _psnr(fast.pixels, full.pixels) >= 40, (name, normalize, fast.meta.reduce)


def test_signed_jpeg2000_through_pillow_keeps_its_sign(write):
    img = (chest_phantom(512, 512, bits=12, seed=2).astype(np.int32) - 2048).astype(np.int16)
    twin = write(img, bits_stored=12)
    path = write(img, bits_stored=12, syntax=uid.JPEG2000Lossless)
    for reduce in (0, 1):
        result = decode_frame(Pipeline().header(path), reduce=reduce, backend="pillow")
        assert result.array.dtype.kind == "i" and result.array.min() < 0
        if reduce == 0:
            assert np.array_equal(result.array, img)
    forced = PipelineConfig(decode=DecodeConfig(backend="pillow", reduced_resolution=True),
                            render=RenderConfig(normalize="window"), geometry=GeometryConfig(size=256))
    ref = read_xray(twin, config=PipelineConfig(render=RenderConfig(normalize="window"), geometry=GeometryConfig(size=256)))
    assert _psnr(read_xray(path, config=forced), ref) >= 40


def test_codec_overshoot_is_clipped_not_wrapped(write):
    img = np.zeros((256, 256), np.uint16)
    img[:, 128:] = 4095
    img[::16] = 4095
    path = write(img, bits_stored=12, syntax=uid.HTJ2K)  # lossy: OpenJPH returns values above 4095 at edges
    raw = decode_frame(Pipeline().header(path)).array
    assert raw.max() > 4095  # the premise: the codec overshoots the Bits Stored range
    out = read_xray(path)
    bright = img == 4095
    assert (out[bright] < 128).sum() == 0  # masked overshoot would be dark specks inside the white


def test_render_clips_codec_values_and_masks_native_patterns():
    from dicomxray.dicom.display import DisplayTags
    from dicomxray.pixels.render import render

    tags = DisplayTags(None, None, (), (), "LINEAR", False)
    values = np.array([[0, 4095, 4095 + 300]], np.uint16)
    clipped, _ = render(values, tags, RenderConfig(), bits_allocated=16, bits_stored=12, signed=False, clip=True)
    masked, _ = render(values, tags, RenderConfig(), bits_allocated=16, bits_stored=12, signed=False)
    assert clipped.tolist() == [[0, 255, 255]] and masked[0, 2] < 20
    signed = np.array([[-2048, 2047, -2048 - 100, 2047 + 100]], np.int16)
    out, _ = render(signed, tags, RenderConfig(), bits_allocated=16, bits_stored=12, signed=True, clip=True)
    assert out.tolist() == [[0, 255, 0, 255]]


def _edges(profile: np.ndarray) -> tuple[float, float]:
    """Sub-pixel positions where a bright plateau's profile crosses half height (pixel i spans [i, i+1))."""
    p = profile.astype(np.float64)
    half = (p.min() + p.max()) / 2
    above = np.nonzero(p >= half)[0]
    i, j = above[0], above[-1]
    rise = i + (half - p[i - 1]) / (p[i] - p[i - 1]) - 0.5
    fall = j + (p[j] - half) / (p[j] - p[j + 1]) + 0.5
    return rise, fall


@pytest.mark.parametrize("shape,size,mode,syntax,reduced", [
    pytest.param((1601, 2049), 256, "letterbox", uid.ExplicitVRLittleEndian, False, id="2049x1601-letterbox-256"),
    pytest.param((1601, 2049), 256, "square", uid.ExplicitVRLittleEndian, False, id="2049x1601-square-256"),
    pytest.param((1601, 2049), 300, "keep_ratio", uid.ExplicitVRLittleEndian, False, id="2049x1601-keep-300"),
    pytest.param((777, 1003), 100, "letterbox", uid.ExplicitVRLittleEndian, False, id="1003x777-letterbox-100"),
    pytest.param((1024, 1536), 256, "square", uid.JPEG2000Lossless, True, id="j2k-reduced-square-256"),
    pytest.param((1026, 1538), 128, "letterbox", uid.HTJ2KLossless, True, id="htj2k-reduced-letterbox-128"),
    pytest.param((1600, 1600), 512, "square", uid.JPEG2000Lossless, True, id="j2k-reduced-odd-factor-3.1-square-512"),
    pytest.param((1502, 1900), 600, "letterbox", uid.HTJ2KLossless, True, id="htj2k-reduced-odd-factor-letterbox-600"),
    pytest.param((1761, 1761), 512, "keep_ratio", uid.JPEG2000Lossless, True, id="j2k-reduced-odd-size-keep-512"),
])
def test_boxes_land_on_their_pixels(write, shape, size, mode, syntax, reduced):
    h, w = shape
    img = np.full((h, w), 400, np.uint16)
    x0, y0, x1, y1 = 0.31 * w, 0.27 * h, 0.78 * w, 0.71 * h
    img[round(y0) : round(y1), round(x0) : round(x1)] = 3600
    box = (round(x0), round(y0), round(x1), round(y1))
    cfg = PipelineConfig(decode=DecodeConfig(reduced_resolution=reduced),
                         render=RenderConfig(dtype="float32", normalize="window"),
                         geometry=GeometryConfig(size=size, mode=mode))
    result = load_xray(write(img, bits_stored=12, syntax=syntax), config=cfg)
    assert result.meta.reduce == (1 if reduced else 0)
    bx0, by0, bx1, by1 = boxes_to_output([box], result.meta.geometry)[0]
    out = result.pixels
    row = out[int((by0 + by1) / 2)]
    col = out[:, int((bx0 + bx1) / 2)]
    g = result.meta.geometry
    rx0, rx1 = _edges(row[g.pad_left : g.pad_left + g.content_width])
    ry0, ry1 = _edges(col[g.pad_top : g.pad_top + g.content_height])
    got = np.array([rx0 + g.pad_left, ry0 + g.pad_top, rx1 + g.pad_left, ry1 + g.pad_top])
    assert np.abs(got - [bx0, by0, bx1, by1]).max() <= 0.35, (got, (bx0, by0, bx1, by1))


def _enhanced(write, frames: np.ndarray, windows: list[tuple[float, float]], shared_rescale: tuple[float, float]):
    per_frame = []
    for c, w in windows:
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = c, w
        item = Dataset()
        item.FrameVOILUTSequence = DicomSequence([voi])
        per_frame.append(item)
    pvt = Dataset()
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = shared_rescale[0], shared_rescale[1], "US"
    shared = Dataset()
    shared.PixelValueTransformationSequence = DicomSequence([pvt])
    return write(frames, bits_stored=12, extra={"PerFrameFunctionalGroupsSequence": DicomSequence(per_frame),
                                                "SharedFunctionalGroupsSequence": DicomSequence([shared])})


def test_enhanced_multiframe_reads_per_frame_then_shared_functional_groups(write):
    base = chest_phantom(64, 64, bits=12, seed=4)
    frames = np.stack([base, base])
    # modality values are stored * 2 - 1000; each frame has its own window in those units
    path = _enhanced(write, frames, [(1000.0, 2000.0), (4000.0, 1000.0)], (2.0, -1000.0))
    expected_y = base * 2.0 - 1000
    for frame, (c, w) in enumerate([(1000.0, 2000.0), (4000.0, 1000.0)]):
        r = load_xray(path, normalize="window", frame=frame)
        assert r.meta.voi.startswith(f"window {c:g}/{w:g}") and r.meta.modality_lut == "rescale"
        inside = (expected_y > c - w / 2 + 1) & (expected_y < c + w / 2 - 1)
        assert inside.any() and r.pixels.std() > 10  # not a blank frame
        lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
        ref = np.clip((expected_y - lo) / (hi - lo), 0, 1) * 255
        assert np.abs(r.pixels.astype(float) - ref)[inside].max() <= 1.01


@pytest.mark.parametrize("width", [0.0, 0.2])
def test_invalid_window_is_skipped_with_a_warning(write, width):
    img = chest_phantom(64, 64, bits=12)
    path = write(img, bits_stored=12, window=[(2000.0, width), (2048.0, 4096.0)])
    with pytest.warns(DicomXrayWarning, match="invalid"):
        r = load_xray(path, normalize="window")
    assert r.meta.voi.startswith("window 2048/4096")
    only_bad = write(img, bits_stored=12, window=(2000.0, width))
    with pytest.warns(DicomXrayWarning, match="no window applied"):
        assert load_xray(only_bad).meta.voi == "none"


def test_window_beside_the_data_warns_that_the_image_is_blank(write):
    img = np.full((32, 32), 100, np.uint16)
    img[8:16] = 200
    path = write(img, bits_stored=12, window=(3000.0, 100.0))
    with pytest.warns(DicomXrayWarning, match="blank"):
        out = read_xray(path, normalize="window")
    assert out.min() == out.max()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DicomXrayWarning)
        read_xray(write(img, bits_stored=12, window=(150.0, 200.0)), normalize="window")  # a real window: silent


def test_jp2_wrapped_jpeg2000_is_unwrapped(write, tmp_path):
    import imagecodecs
    import pydicom
    from pydicom.encaps import encapsulate

    img = chest_phantom(80, 96, bits=12)
    path = write(img, bits_stored=12, syntax=uid.JPEG2000Lossless)
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([bytes(imagecodecs.jpeg2k_encode(img, codecformat="JP2", reversible=True,
                                                                bitspersample=12))])
    wrapped = tmp_path / "jp2.dcm"
    ds.save_as(wrapped)
    assert np.array_equal(read_xray(wrapped), read_xray(path))


def test_jpeg_xl_decodes(write):
    img = chest_phantom(80, 96, bits=12)
    out = load_xray(write(img, bits_stored=12, syntax="1.2.840.10008.1.2.4.110"))
    assert out.meta.decoder == "imagecodecs"
    assert np.array_equal(out.pixels, read_xray(write(img, bits_stored=12)))


def test_float_pixel_data_is_named(write, tmp_path):
    import pydicom

    path = write(chest_phantom(16, 16, bits=12), bits_stored=12)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.FloatPixelData = np.zeros(256, np.float32).tobytes()
    out = tmp_path / "float.dcm"
    ds.save_as(out)
    with pytest.raises(UnsupportedImageError, match="float pixels"):
        read_xray(out)


def test_empty_lut_sequence_item_is_ignored(write):
    import pydicom

    img = chest_phantom(32, 32, bits=12)
    path = write(img, bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.VOILUTSequence = DicomSequence([Dataset()])
    ds.ModalityLUTSequence = DicomSequence([Dataset()])
    ds.save_as(path)
    r = load_xray(path)
    assert r.meta.voi == "none" and r.meta.modality_lut == "none"


def test_htj2k_reduce_is_clamped_to_its_decomposition_levels(write, tmp_path):
    import imagecodecs
    import pydicom
    from pydicom.encaps import encapsulate

    img = chest_phantom(256, 256, bits=12)
    path = write(img, bits_stored=12, syntax=uid.HTJ2KLossless)
    ds = pydicom.dcmread(path)
    stream = bytes(imagecodecs.htj2k_encode(img, reversible=True, resolutions=2))
    levels = resolution_levels(stream)
    assert levels == 2
    ds.PixelData = encapsulate([stream])
    two = tmp_path / "two_levels.dcm"
    ds.save_as(two)
    result = decode_frame(Pipeline().header(two), reduce=4)  # OpenJPH fails past 2: clamped, never an error
    assert result.reduce == 2 and result.array.shape == (64, 64)
    fast = read_xray(two, config=_config(16, normalize="window", reduced=True))
    assert fast.shape == (16, 16)


def _stage_by_stage(pipe: Pipeline, path) -> np.ndarray:
    """The pipeline's stages one by one, each into fresh memory (what Pipeline.read must equal)."""
    header = pipe.header(path)
    geom = pipe.plan(header)
    decoded = pipe.decode(header, geom)
    image, _ = pipe.render(header, decoded)
    return pipe.resize(image, geom, decoded.reduce)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("mode", ["square", "keep_ratio", "letterbox"])
def test_reads_in_a_row_equal_the_stages_and_never_share_memory(write, dtype, mode):
    # Pipeline.read renders into a per-thread buffer it reuses: no returned image may share it or change later.
    paths = [write(chest_phantom(h, w, bits=12, seed=h), photometric="MONOCHROME1") for h, w in ((90, 70), (64, 80))]
    for size in (None, 32, 64, 150) if mode == "keep_ratio" else (None, 32, 64, (90, 70), 150):
        pipe = Pipeline(_config(size, mode, dtype=dtype))
        first = pipe.read(paths[0]).pixels
        kept = first.copy()
        second = pipe.read(paths[1]).pixels
        again = pipe.read(paths[0]).pixels
        assert np.array_equal(first, kept), size  # reading the others did not write into it
        assert not np.shares_memory(first, second) and not np.shares_memory(first, again)
        assert np.array_equal(again, kept) and np.array_equal(second, _stage_by_stage(pipe, paths[1])), size


def test_read_equals_the_stages_on_the_shared_films(samples):
    import csv

    with open(samples / "SAMPLES.tsv") as fh:
        names = [row["file"] for row in csv.DictReader(fh, delimiter="\t") if row["file"] != "mr_truncated_pixels.dcm"]
    for size in (256, 512, 1024):
        for mode in ("square", "letterbox"):
            pipe = Pipeline(_config(size, mode))
            images = {name: pipe.read(samples / name).pixels for name in names}
            for name in names:  # after every other film went through the same buffer
                assert np.array_equal(images[name], _stage_by_stage(pipe, samples / name)), (name, size, mode)
