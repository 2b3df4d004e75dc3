"""Transfer syntax proposal strategies and what this library can convert (PS3.5 Annex A, 10).

A C-STORE SCU proposes presentation contexts (PS3.8 9.3.2.2); the acceptor picks one transfer
syntax per context (PS3.8 9.3.3.2). What we propose decides what the peer can accept, and an
old PACS may refuse, reject or abort an association that proposes too many contexts or syntax
it does not know. :class:`Strategy` names how much we propose, from the most compatible
(:attr:`Strategy.UNIVERSAL`: Implicit VR Little Endian only, the default transfer syntax every
implementation must accept, PS3.5 10.1) to the richest (:attr:`Strategy.EXTENDED`).

:class:`Capabilities` says which conversions this installation can do:

* ``transcode``: the uncompressed transfer syntaxes (Implicit/Explicit VR Little Endian,
  Explicit VR Big Endian, Deflated Explicit VR Little Endian) converted among themselves by the
  streaming transcoder (:mod:`aiodimse.dataset.transcode`), bit-exact in the values;
* ``decode``: the compressed transfer syntaxes whose Pixel Data pydicom's pixel data
  decoders can decode here (the ``aiodimse[codecs]`` extra installs pylibjpeg and its plugins
  and pyjpegls). RLE Lossless needs no extra.

* ``encode``: the lossless compressed syntaxes pydicom's encoders can produce here (RLE
  natively; JPEG-LS Lossless and JPEG 2000 Lossless with the codecs extra). An uncompressed
  source is encoded only as a last resort (the peer takes no uncompressed syntax for its SOP
  class) and never lossily.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from ..constants import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)

__all__ = [
    "CODECS_EXTRA",
    "DECODABLE_CANDIDATES",
    "ENCODABLE_CANDIDATES",
    "LOSSLESS_COMPRESSED",
    "LOSSY",
    "NATIVE",
    "UNCOMPRESSED_ORDER",
    "Capabilities",
    "Strategy",
    "fallback_chain",
]

log = logging.getLogger("aiodimse.ts_strategies")

#: What to install for the pixel codecs.
CODECS_EXTRA: Final = "pip install aiodimse[codecs]"

#: The uncompressed transfer syntaxes (PS3.5 A.1, A.2, A.3, A.5): native Pixel Data, or the
#: whole dataset deflated. Conversion targets in our order of preference: Explicit VR keeps
#: the VR of every element (private ones included), Implicit VR is what every peer accepts,
#: Deflated costs CPU, Big Endian is retired.
UNCOMPRESSED_ORDER: Final[tuple[str, ...]] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
)
NATIVE: Final = frozenset(UNCOMPRESSED_ORDER)

_JPEG_BASELINE: Final = "1.2.840.10008.1.2.4.50"
_JPEG_EXTENDED: Final = "1.2.840.10008.1.2.4.51"
_JPEG_LOSSLESS: Final = "1.2.840.10008.1.2.4.57"
_JPEG_LOSSLESS_SV1: Final = "1.2.840.10008.1.2.4.70"
_JPEG_LS_LOSSLESS: Final = "1.2.840.10008.1.2.4.80"
_JPEG_LS_NEAR: Final = "1.2.840.10008.1.2.4.81"
_J2K_LOSSLESS: Final = "1.2.840.10008.1.2.4.90"
_J2K: Final = "1.2.840.10008.1.2.4.91"
_HTJ2K_LOSSLESS: Final = "1.2.840.10008.1.2.4.201"
_HTJ2K_LOSSLESS_RPCL: Final = "1.2.840.10008.1.2.4.202"
_HTJ2K: Final = "1.2.840.10008.1.2.4.203"
_RLE: Final = "1.2.840.10008.1.2.5"

#: Lossless compressed transfer syntaxes (PS3.5 A.4, 8.2): what ``compression`` proposes for
#: instances already encoded in them.
LOSSLESS_COMPRESSED: Final = frozenset(
    {
        _RLE,
        _JPEG_LOSSLESS,
        _JPEG_LOSSLESS_SV1,
        _JPEG_LS_LOSSLESS,
        _J2K_LOSSLESS,
        _HTJ2K_LOSSLESS,
        _HTJ2K_LOSSLESS_RPCL,
    }
)
#: Transfer syntaxes that are always lossy (PS3.5 8.2.1: JPEG processes 1, 2 and 4): decoding
#: them marks the result Lossy Image Compression "01" (PS3.3 C.7.6.1.1.5).
LOSSY: Final = frozenset({_JPEG_BASELINE, _JPEG_EXTENDED})
#: Compressed syntaxes pydicom 3 has decoders for; :meth:`Capabilities.detect` keeps those
#: whose decoder has a plugin installed.
DECODABLE_CANDIDATES: Final[tuple[str, ...]] = (
    _JPEG_BASELINE,
    _JPEG_EXTENDED,
    _JPEG_LOSSLESS,
    _JPEG_LOSSLESS_SV1,
    _JPEG_LS_LOSSLESS,
    _JPEG_LS_NEAR,
    _J2K_LOSSLESS,
    _J2K,
    _HTJ2K_LOSSLESS,
    _HTJ2K_LOSSLESS_RPCL,
    _HTJ2K,
    _RLE,
)


#: Lossless compressed syntaxes pydicom 3 has encoders for, in our order of preference
#: (best compression first); :meth:`Capabilities.detect` keeps those it can use here.
ENCODABLE_CANDIDATES: Final[tuple[str, ...]] = (_JPEG_LS_LOSSLESS, _J2K_LOSSLESS, _RLE)


class Strategy(enum.Enum):
    """How much to propose per SOP class (see ``docs/transfer-syntaxes.md``).

    * ``UNIVERSAL``: one context, Implicit VR Little Endian (PS3.5 10.1: every peer has it).
    * ``CONSERVATIVE``: one context, Explicit + Implicit VR Little Endian.
    * ``STANDARD``: one context, + Explicit VR Big Endian (retired, still wanted by old peers).
    * ``COMPRESSION``: the uncompressed context, + Deflated, + each lossless compressed
      syntax an instance of the class is encoded in (its own context: bit-preserving), +
      one context with the lossless syntaxes we can encode uncompressed instances in.
    * ``EXTENDED``: like ``COMPRESSION`` with every instance's own syntax, lossy included.
    * ``AUTO`` (default): each instance's own syntax in its own context, plus Explicit and
      Implicit VR Little Endian as separate fallback contexts when an instance can be
      converted to them (merged into one context per class past 128 contexts).

    The uncompressed contexts list the class's own uncompressed syntaxes first (an acceptor
    that honours the requestor's order then keeps them bit for bit).
    """

    UNIVERSAL = "universal"
    CONSERVATIVE = "conservative"
    STANDARD = "standard"
    COMPRESSION = "compression"
    EXTENDED = "extended"
    AUTO = "auto"


_CHAINS: Final[dict[Strategy, tuple[Strategy, ...]]] = {
    Strategy.EXTENDED: (Strategy.COMPRESSION, Strategy.STANDARD, Strategy.CONSERVATIVE),
    Strategy.COMPRESSION: (Strategy.STANDARD, Strategy.CONSERVATIVE),
    Strategy.STANDARD: (Strategy.CONSERVATIVE,),
    Strategy.AUTO: (Strategy.CONSERVATIVE,),
    Strategy.CONSERVATIVE: (),
    Strategy.UNIVERSAL: (),
}


def fallback_chain(strategy: Strategy) -> tuple[Strategy, ...]:
    """``strategy`` then each more conservative one, ``UNIVERSAL`` last (exactly once)."""
    chain = (strategy, *_CHAINS[strategy])
    return chain if strategy is Strategy.UNIVERSAL else (*chain, Strategy.UNIVERSAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """The conversions available (see the module docstring); :meth:`detect` for this host."""

    transcode: frozenset[str] = NATIVE
    decode: frozenset[str] = frozenset()
    encode: frozenset[str] = frozenset()

    @classmethod
    def detect(cls) -> Capabilities:
        """What this installation can convert (looked up once, then cached). The first call
        imports the pixel codecs: from async code use :meth:`detect_async`."""
        return _detect()

    @classmethod
    async def detect_async(cls) -> Capabilities:
        """:meth:`detect`, its first (importing) call made in a worker thread."""
        if _detect.cache_info().currsize:
            return _detect()
        import anyio.to_thread

        return await anyio.to_thread.run_sync(_detect)

    def convertible(self, source: str) -> bool:
        """``source`` can be turned into some uncompressed transfer syntax."""
        return source in self.transcode or source in self.decode

    def targets(self, source: str) -> tuple[str, ...]:
        """The uncompressed syntaxes ``source`` can be converted to, best first (itself
        excluded). Empty when it cannot be converted."""
        if source in self.transcode:
            return tuple(t for t in UNCOMPRESSED_ORDER if t in self.transcode and t != source)
        if source in self.decode:
            # Decoding yields Explicit VR Little Endian; the transcoder takes it further.
            return tuple(
                t
                for t in UNCOMPRESSED_ORDER
                if t == EXPLICIT_VR_LITTLE_ENDIAN
                or (EXPLICIT_VR_LITTLE_ENDIAN in self.transcode and t in self.transcode)
            )
        return ()

    def encode_targets(self, source: str) -> tuple[str, ...]:
        """The lossless compressed syntaxes an uncompressed ``source`` can be encoded in,
        best first (empty for a compressed source: it is never re-encoded)."""
        if source not in self.transcode:
            return ()
        return tuple(t for t in ENCODABLE_CANDIDATES if t in self.encode)


@functools.lru_cache(maxsize=1)
def _detect() -> Capabilities:
    from ..dataset.transcode import can_transcode

    transcode = frozenset(
        t for t in UNCOMPRESSED_ORDER if can_transcode(t, EXPLICIT_VR_LITTLE_ENDIAN)
    )
    return Capabilities(transcode=transcode, decode=decodable_here(), encode=encodable_here())


def _with_plugin(candidates: Iterable[str], kind: str) -> frozenset[str]:
    """The ``candidates`` whose pydicom pixel ``kind`` ("encoders"/"decoders") has an
    installed plugin."""
    get: Callable[[str], Any]  # pydicom's get_encoder or get_decoder
    try:
        if kind == "encoders":
            from pydicom.pixels.encoders.base import get_encoder as get
        else:
            from pydicom.pixels.decoders.base import get_decoder as get
    except ImportError:  # pragma: no cover - pydicom < 3 or numpy missing
        return frozenset()
    found: set[str] = set()
    for uid in candidates:
        try:
            if get(uid).is_available:
                found.add(uid)
        except Exception:  # a broken plugin must not break sending
            log.debug("no %s for %s", kind, uid, exc_info=True)
    return frozenset(found)


def encodable_here() -> frozenset[str]:
    """The lossless compressed syntaxes whose pydicom encoder has an installed plugin."""
    return _with_plugin(ENCODABLE_CANDIDATES, "encoders")


def decodable_here() -> frozenset[str]:
    """The compressed syntaxes whose pydicom decoder has an installed plugin."""
    return _with_plugin(DECODABLE_CANDIDATES, "decoders")
