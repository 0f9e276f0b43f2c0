"""The public surface: what each public module exports stays exported (an unintended removal fails here), every
exported name is in the API reference, and old spellings keep working with a DeprecationWarning for one release."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The surface of 0.3. Adding a name is fine (add it here too); removing one needs a deprecation first.
SURFACE = {
    "dicomxray": {
        "CacheConfig", "CacheError", "CacheStats", "CacheWarning", "CachedPipeline", "CorruptPixelDataError",
        "DecodeConfig", "DecoderUnavailableError", "DicomXrayDataset", "DicomXrayError", "DicomXrayWarning",
        "ExportResult", "FileIdentity", "FrameIndexError", "Geometry", "GeometryConfig", "ImageTooLargeError",
        "IndexWarning", "LabelFormatError", "LabelWarning", "LoaderWarning", "MissingExtraError",
        "MissingPixelDataError", "NodeAffineSampler", "NotDicomError", "Pipeline", "PipelineConfig", "PrefetchSampler",
        "RemoteAccessError", "RemoteSourceError", "RenderConfig", "RenderWarning", "SkipWarning",
        "SourceChangedError", "SourceFileNotFoundError", "SourceReadError", "UnsupportedImageError", "XrayCache",
        "XrayImage", "XrayMeta", "__version__", "boxes_to_original", "boxes_to_output", "build_cache", "build_index",
        "capability_report", "connect", "export_folder", "find_dicoms", "load_xray", "pipeline_config",
        "read_index", "read_xray", "select",
    },
    "dicomxray.labels": {
        "SIIM_STUDY_CLASSES", "VINBIG_CLASSES", "BoxFusion", "Competition", "LabelSource", "Prediction",
        "RsnaPneumonia", "SiimCovid", "Target", "VinBigData", "boxes_to_original_batch", "labelled_only",
        "parse_prediction_string", "patient_folds", "prediction_strings", "read_submission", "rsna_prediction_string",
        "study_prediction_string", "unbatch_meta", "vinbig_prediction_string", "write_submission",
        "ArrayMasks", "CsvLabels", "MaskSource", "MimicCxr", "RleMasks", "SiimAcrPneumothorax", "VinDrCxr",
        "VINDR_GLOBAL_LABELS", "VINDR_LOCAL_LABELS", "read_siim_acr_submission", "siim_acr_mask", "siim_acr_rle",
        "mask_to_original", "masks_to_original_batch",
    },
    "dicomxray.transforms": {"bbox_params", "to_albumentations_dtype", "to_float", "train_transforms", "val_transforms"},
    "dicomxray.testing": {
        "ENCODABLE_SYNTAXES", "MUTATIONS", "SURVIVED", "BombReport", "Case", "FuzzReport", "KillReport",
        "ShareReport", "SiimSynthSummary", "chest_phantom", "classic_read_xray", "fuzz_case", "fuzz_files",
        "fuzz_sources", "interleaved", "kill_cache_build_and_export", "kill_randomly", "make_siim_dataset",
        "memory_bomb", "mutate", "share_one_cache", "write_dicom", "write_siim_csvs",
    },
}


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_the_public_surface_stays(module: str) -> None:
    mod = importlib.import_module(module)
    missing = SURFACE[module] - set(mod.__all__)
    assert not missing, f"{module} no longer exports {sorted(missing)}: deprecate before removing"
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_every_exported_name_is_in_the_api_reference() -> None:
    import dicomxray

    text = (ROOT / "docs" / "api" / "dicomxray.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: [\w.]+\.(\w+)$", text, re.M))
    undocumented = {n for n in dicomxray.__all__ if n != "__version__"} - documented
    assert not undocumented, f"add these to docs/api/dicomxray.md: {sorted(undocumented)}"
    for page in ("labels", "transforms", "testing"):
        assert f"::: dicomxray.{page}" in (ROOT / "docs" / "api" / f"{page}.md").read_text(encoding="utf-8")


def test_the_version_has_one_source() -> None:
    import dicomxray
    from dicomxray.cli import main

    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^dynamic = \["version"\]', pyproject, re.M)
    assert not re.search(r'^version = "', pyproject, re.M)
    out = subprocess.run([sys.executable, "-m", "dicomxray", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"dicomxray {dicomxray.__version__}"
    assert f"## [{dicomxray.__version__}]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["--version"])


@pytest.mark.parametrize(("old", "new"), [("dicomxray.dataset", "dicomxray.data.dataset"),
                                          ("dicomxray.prefetch", "dicomxray.data.prefetch"),
                                          ("dicomxray.pipeline", "dicomxray.pixels.pipeline"),
                                          ("dicomxray.decode", "dicomxray.pixels.decode"),
                                          ("dicomxray.distributed", "dicomxray.jobs.distributed")])
def test_moved_modules_import_under_their_old_names(old: str, new: str) -> None:
    code = (f"import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            f"try:\n    import {old}\nexcept DeprecationWarning as w:\n    print(w)\n"
            f"warnings.simplefilter('ignore')\nimport {old} as a, {new} as b\nprint(a is b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert new in out and out.strip().endswith("True"), out


def test_make_config_is_pipeline_config_with_a_warning() -> None:
    import dicomxray

    with pytest.warns(DeprecationWarning, match="pipeline_config"):
        make_config = dicomxray.make_config
    assert make_config is dicomxray.pipeline_config


@pytest.mark.filterwarnings("default:.* is deprecated and will be removed in dicomxray:DeprecationWarning")
def test_dataset_keeps_the_0_1_parameters_for_one_release(tmp_path: Path) -> None:
    from dicomxray import CacheConfig, DicomXrayDataset
    from dicomxray.testing import chest_phantom, write_dicom

    write_dicom(tmp_path / "a.dcm", chest_phantom(64, 80, bits=12, seed=1))
    with pytest.warns(DeprecationWarning, match=r"cache_dir=.*use cache="):
        old = DicomXrayDataset(tmp_path, size=32, cache_dir=tmp_path / "c", cache_identity="content")
    assert isinstance(old.cache, object) and old.cache is not None
    assert old.cache.config == CacheConfig(directory=str(tmp_path / "c"), identity="content")
    new = DicomXrayDataset(tmp_path, size=32, cache=CacheConfig(directory=str(tmp_path / "c"), identity="content"))
    assert np.array_equal(old[0]["image"].numpy(), new[0]["image"].numpy())
    with pytest.warns(DeprecationWarning, match="letterbox"):
        boxed = DicomXrayDataset(tmp_path, size=32, letterbox=True)
    assert boxed.config.geometry.mode == "letterbox"
    with pytest.raises(TypeError, match="unexpected keyword argument 'cahce'"):
        DicomXrayDataset(tmp_path, size=32, cahce=tmp_path)
