"""Dataset encodings (sans-I/O): streaming transcoding between transfer syntaxes (PS3.5)."""

from .transcode import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    TranscodeError,
    Transcoder,
    can_transcode,
    transcode_bytes,
)

__all__ = [
    "DEFLATED_EXPLICIT_VR_LE",
    "EXPLICIT_VR_BE",
    "EXPLICIT_VR_LE",
    "IMPLICIT_VR_LE",
    "TranscodeError",
    "Transcoder",
    "can_transcode",
    "transcode_bytes",
]
