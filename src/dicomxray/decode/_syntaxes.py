"""Transfer syntax families, defined once for the registry, the backends and the stream checks."""

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
ENCAPSULATED = JPEG | JPEG_LS | J2K | HTJ2K | RLE
