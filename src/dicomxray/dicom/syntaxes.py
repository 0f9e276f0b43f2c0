"""Transfer syntax families and the decoder preference table: data, defined once for the registry,
the backends, the codestream guards and the configs (which validate backend names against it)."""

from __future__ import annotations

from pydicom import uid

NATIVE = frozenset(
    {uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.ExplicitVRBigEndian, uid.DeflatedExplicitVRLittleEndian}
)
JPEG = frozenset({uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1})
JPEG_LS = frozenset({uid.JPEGLSLossless, uid.JPEGLSNearLossless})
J2K = frozenset({uid.JPEG2000Lossless, uid.JPEG2000})
HTJ2K = frozenset({uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K})
RLE = frozenset({uid.RLELossless})
#: JPEG XL Lossless, JPEG XL JPEG Recompression, JPEG XL (PS3.5 A.4.12; pydicom 3.0 has no names for them).
JPEG_XL_LOSSLESS, JPEG_XL_RECOMPRESSION, JPEG_XL_LOSSY = (
    uid.UID("1.2.840.10008.1.2.4.110"), uid.UID("1.2.840.10008.1.2.4.111"), uid.UID("1.2.840.10008.1.2.4.112"))
JPEG_XL = frozenset({JPEG_XL_LOSSLESS, JPEG_XL_RECOMPRESSION, JPEG_XL_LOSSY})
ENCAPSULATED = JPEG | JPEG_LS | J2K | HTJ2K | RLE | JPEG_XL


#: Transfer syntax family -> decoder backend names, fastest first (measured: benchmarks/bench_backends.py).
#: The first family holding a syntax wins; a syntax in none of them goes to pydicom, which may know it.
PREFERENCE: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (NATIVE, ("numpy",)),
    (J2K, ("imagecodecs", "pillow", "pydicom")),
    (ENCAPSULATED, ("imagecodecs", "pydicom")),
)
#: Every backend name the registry knows.
BACKEND_NAMES: frozenset[str] = frozenset(name for _, names in PREFERENCE for name in names)
