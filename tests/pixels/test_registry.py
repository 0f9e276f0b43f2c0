"""The open decoder registry: backends registered from outside the package, fallback past a backend that
cannot decode a stream, versions in the code fingerprint, plugins found through entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from pydicom import uid

from dicomxray import CorruptPixelDataError, DecodeConfig, DecoderUnavailableError, Pipeline, PipelineConfig
from dicomxray.errors import DecoderWarning
from dicomxray.pixels.decode import (
    BACKENDS,
    backends_for,
    decode_frame,
    register_backend,
    registry_versions,
    unregister_backend,
)
from dicomxray.pixels.fingerprint import code_fingerprint


class ToyBackend:
    """Little endian native samples, decoded by numpy: a backend written outside the package."""

    name = "toy"
    packages = ("toy-codec",)
    syntaxes = frozenset({uid.ExplicitVRLittleEndian})
    threaded: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.calls = 0

    def is_available(self, syntax: str) -> bool:
        return True

    def missing_packages(self, syntax: str) -> list[str]:
        return []

    def versions(self) -> dict[str, str]:
        return {"toy-codec": "1.0"}

    def max_reduce(self, fmt, data) -> int:
        return 0

    def decode(self, data, fmt, reduce, threads=1):
        self.calls += 1
        count = fmt.rows * fmt.columns
        return np.frombuffer(data, dtype=f"<u{fmt.bits_allocated // 8}", count=count).reshape(fmt.rows, fmt.columns), 0


class IncapableBackend(ToyBackend):
    """Declares JPEG-LS but decodes none of it: a codec lacking a feature every stream needs."""

    name = "incapable"
    syntaxes = frozenset({uid.JPEGLSLossless})

    def decode(self, data, fmt, reduce, threads=1):
        raise DecoderUnavailableError("no near-lossless support in this build")


class RejectingBackend(IncapableBackend):
    """Says the data is bad: a verdict, so no other backend may try."""

    name = "rejecting"

    def decode(self, data, fmt, reduce, threads=1):
        raise RuntimeError("bad marker segment")


@pytest.fixture
def registered() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        unregister_backend(name)


def _register(registered: list[str], backend, *, first: bool = False) -> None:
    register_backend(backend, first=first)
    registered.append(backend.name)


def test_a_toy_backend_from_a_test_file_decodes_and_is_a_valid_config_name(write, phantom, registered):
    path = write(phantom, syntax=uid.ExplicitVRLittleEndian, bits_stored=12)
    with pytest.raises(ValueError, match="backend must be one of"):
        Pipeline(PipelineConfig(decode=DecodeConfig(backend="toy")))
    toy = ToyBackend()
    _register(registered, toy)
    assert backends_for(uid.ExplicitVRLittleEndian) == ("numpy", "toy")  # after the built-ins by default
    assert decode_frame(Pipeline().header(path)).backend == "numpy"
    forced = Pipeline(PipelineConfig(decode=DecodeConfig(backend="toy")))
    assert forced.read(path).meta.decoder == "toy" and toy.calls == 1
    register_backend(toy, first=True)  # the same object again: moved ahead of the built-ins
    assert backends_for(uid.ExplicitVRLittleEndian) == ("toy", "numpy")
    result = decode_frame(Pipeline().header(path))
    assert result.backend == "toy" and np.array_equal(result.array, phantom)


def test_a_backend_that_cannot_decode_falls_back_with_a_warning_naming_both(write, phantom, registered):
    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)
    _register(registered, IncapableBackend(), first=True)
    assert backends_for(uid.JPEGLSLossless)[0] == "incapable"
    with pytest.warns(DecoderWarning, match=r"incapable cannot decode .*no near-lossless support.*decoded by imagecodecs"):
        result = decode_frame(Pipeline().header(path))
    assert result.backend == "imagecodecs" and np.array_equal(result.array, phantom)


def test_a_backend_rejecting_the_data_stays_final(write, phantom, registered):
    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)
    _register(registered, RejectingBackend(), first=True)
    with pytest.raises(CorruptPixelDataError, match="rejecting: RuntimeError: bad marker segment"):
        decode_frame(Pipeline().header(path))


def test_a_file_no_backend_decodes_lists_each_backends_reason(write, phantom, registered, monkeypatch):
    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)
    _register(registered, IncapableBackend(), first=True)

    def lacks(name):
        def decode(data, fmt, reduce, threads=1):
            raise DecoderUnavailableError(f"{name} lacks this variant")
        return decode

    for name in ("imagecodecs", "pydicom"):
        monkeypatch.setattr(BACKENDS[name], "decode", lacks(name))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing decoded it: an error, no fallback warning
        with pytest.raises(DecoderUnavailableError) as info:
            decode_frame(Pipeline().header(path))
    text = str(info.value)
    assert str(path) in text and "JPEG-LS" in text
    for reason in ("incapable: no near-lossless support", "imagecodecs: imagecodecs lacks", "pydicom: pydicom lacks"):
        assert reason in text


def test_the_pydicom_backend_reports_a_missing_feature_as_unavailable(write, phantom, monkeypatch):
    from dicomxray.pixels.decode import pydicom_backend

    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)
    monkeypatch.setattr(pydicom_backend, "_plugins", lambda syntax: ["pillow"])

    class Decoder:
        def as_array(self, *args, **kwargs):
            raise NotImplementedError("Pillow does not support JPEG-LS")

    monkeypatch.setattr(pydicom_backend, "get_decoder", lambda syntax: Decoder())
    with pytest.raises(DecoderUnavailableError, match="does not support"):
        decode_frame(Pipeline().header(path), backend="pydicom")


def test_what_is_not_a_backend_is_refused(registered):
    class NoDecode:
        name = "broken"
        syntaxes = frozenset({uid.RLELossless})

    with pytest.raises(TypeError, match="Backend protocol.*decode"):
        register_backend(NoDecode())  # type: ignore[arg-type]
    imposter = ToyBackend()
    imposter.name = "numpy"
    with pytest.raises(ValueError, match="built-in"):
        register_backend(imposter)
    _register(registered, ToyBackend())
    with pytest.raises(ValueError, match="already registered"):
        register_backend(ToyBackend())
    with pytest.raises(ValueError, match="built-in"):
        unregister_backend("pydicom")


def test_the_fingerprint_holds_every_codecs_version_and_follows_the_registry(registered):
    items = registry_versions()[1]
    for dist in ("imagecodecs", "pillow", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle",
                 "pyjpegls"):
        assert any(f":{dist}=" in item for item in items), dist
    before = code_fingerprint()
    _register(registered, ToyBackend())
    with_toy = code_fingerprint()
    assert with_toy != before and any("toy:toy-codec=1.0" in item for item in registry_versions()[1])
    register_backend(BACKENDS["toy"], first=True)  # another order: another key (the decoder used changes)
    assert code_fingerprint() not in (before, with_toy)
    unregister_backend(registered.pop())
    assert code_fingerprint() == before


PLUGIN = '''
import numpy as np
from pydicom import uid


class PluginBackend:
    name = "entrypoint-toy"
    packages = ("toy-plugin",)
    syntaxes = frozenset({uid.ExplicitVRLittleEndian})
    threaded = frozenset()
    first = True

    def is_available(self, syntax):
        return True

    def missing_packages(self, syntax):
        return []

    def versions(self):
        return {"toy-plugin": "0.1"}

    def max_reduce(self, fmt, data):
        return 0

    def decode(self, data, fmt, reduce, threads=1):
        count = fmt.rows * fmt.columns
        return np.frombuffer(data, dtype="<u2", count=count).reshape(fmt.rows, fmt.columns), 0
'''


def test_installed_plugins_are_found_through_the_entry_point_group(tmp_path, write, phantom):
    site = tmp_path / "site"
    site.mkdir()
    (site / "toy_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    info = site / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[dicomxray.decoders]\ntoy = toy_plugin:PluginBackend\n", encoding="utf-8")
    path = write(phantom, syntax=uid.ExplicitVRLittleEndian, bits_stored=12)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        from dicomxray import DecodeConfig, Pipeline, PipelineConfig
        from dicomxray.pixels.decode import backends_for, registry_versions
        from pydicom import uid
        order = backends_for(uid.ExplicitVRLittleEndian)
        image = Pipeline(PipelineConfig(decode=DecodeConfig(backend="entrypoint-toy"))).read({str(path)!r})
        default = Pipeline().read({str(path)!r})
        versions = [i for i in registry_versions()[1] if "toy-plugin" in i]
        print(order, image.meta.decoder, default.meta.decoder, versions)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == (
        "('entrypoint-toy', 'numpy') entrypoint-toy entrypoint-toy ['entrypoint-toy:toy-plugin=0.1']")


def test_a_broken_plugin_warns_and_the_built_ins_still_decode(tmp_path, write, phantom):
    site = tmp_path / "site"
    info = site / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[dicomxray.decoders]\nbroken = no_such_module:BACKEND\n", encoding="utf-8")
    path = write(phantom, syntax=uid.JPEGLSLossless, bits_stored=12)
    code = (f"import sys; sys.path.insert(0, {str(site)!r}); import dicomxray; "
            f"print(dicomxray.load_xray({str(path)!r}).meta.decoder)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "imagecodecs"
    assert "DecoderWarning" in out.stderr and "'broken'" in out.stderr and "ModuleNotFoundError" in out.stderr
