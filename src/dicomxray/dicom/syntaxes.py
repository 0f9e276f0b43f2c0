"""Transfer syntax UIDs, their families and readable names: data, defined once for the element walk,
the header, the display tags, the decoder registry and the codestream guards."""

from __future__ import annotations

from pydicom import uid

__all__ = ["DEFLATED", "ENCAPSULATED", "EXPLICIT_BE", "EXPLICIT_LE", "HTJ2K", "IMPLICIT_LE", "J2K", "JPEG",
           "JPEG_LS", "JPEG_XL", "JPEG_XL_LOSSLESS", "JPEG_XL_LOSSY", "JPEG_XL_RECOMPRESSION", "NATIVE", "RLE",
           "SYNTAX_NAMES"]

IMPLICIT_LE: str = uid.ImplicitVRLittleEndian
EXPLICIT_LE: str = uid.ExplicitVRLittleEndian
EXPLICIT_BE: str = uid.ExplicitVRBigEndian
DEFLATED: str = uid.DeflatedExplicitVRLittleEndian
NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED})
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

#: The transfer syntaxes radiographs come in, with readable names.
SYNTAX_NAMES: dict[str, str] = {
    IMPLICIT_LE: "Implicit VR Little Endian",
    EXPLICIT_LE: "Explicit VR Little Endian",
    EXPLICIT_BE: "Explicit VR Big Endian",
    DEFLATED: "Deflated Explicit VR Little Endian",
    uid.JPEGBaseline8Bit: "JPEG Baseline (Process 1)",
    uid.JPEGExtended12Bit: "JPEG Extended (Process 2 & 4)",
    uid.JPEGLossless: "JPEG Lossless (Process 14)",
    uid.JPEGLosslessSV1: "JPEG Lossless SV1 (Process 14, predictor 1)",
    uid.JPEGLSLossless: "JPEG-LS Lossless",
    uid.JPEGLSNearLossless: "JPEG-LS Near-Lossless",
    uid.JPEG2000Lossless: "JPEG 2000 Lossless",
    uid.JPEG2000: "JPEG 2000",
    uid.HTJ2KLossless: "HTJ2K Lossless",
    uid.HTJ2KLosslessRPCL: "HTJ2K Lossless RPCL",
    uid.HTJ2K: "HTJ2K",
    uid.RLELossless: "RLE Lossless",
    JPEG_XL_LOSSLESS: "JPEG XL Lossless",
    JPEG_XL_RECOMPRESSION: "JPEG XL JPEG Recompression",
    JPEG_XL_LOSSY: "JPEG XL",
}
