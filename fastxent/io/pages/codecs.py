"""Page decompression through ``cramjam`` (which releases the GIL), into buffers reused from page
to page, for the codecs the reader does not decompress in Numba (:mod:`.snappy`).

Parquet's codecs by their Thrift numbers (``CompressionCodec``): gzip, zstd, brotli, LZ4_RAW (raw
blocks) and the deprecated LZ4, which writers framed as Hadoop does (a
big-endian uncompressed and compressed length before each block; older parquet-cpp wrote raw
blocks under the same name, so a page that is not valid Hadoop framing is read as a raw block,
as parquet-cpp does). LZO is not supported: its column chunks are read by pyarrow.
"""

from __future__ import annotations

import cramjam
import numpy as np

UNCOMPRESSED, SNAPPY, GZIP, LZO, BROTLI, LZ4, ZSTD = range(7)
#: The codecs of pyarrow's ``ColumnChunkMetaData.compression``, by name.
CODEC_NAMES = {
    "UNCOMPRESSED": UNCOMPRESSED,
    "SNAPPY": SNAPPY,
    "GZIP": GZIP,
    "BROTLI": BROTLI,
    # pyarrow names LZ4_RAW "LZ4" too: one decoder tries the Hadoop framing, then a raw block
    "LZ4": LZ4,
    "LZ4_HADOOP": LZ4,
    "LZ4_RAW": LZ4,
    "ZSTD": ZSTD,
}


#: What cramjam raises for bytes that are not of its codec (or that do not fit the output).
_FAILURES = (cramjam.DecompressionError, ValueError, OSError)


class CodecError(ValueError):
    """A page's bytes do not decompress to the size its header gives."""


def _hadoop_lz4(data: np.ndarray, out: np.ndarray) -> int:
    """Hadoop-framed LZ4 blocks into ``out``; -1 if ``data`` is not such framing."""
    pos = written = 0
    while pos < data.size:
        if data.size - pos < 8:
            return -1
        expected = int.from_bytes(data[pos : pos + 4].tobytes(), "big")
        size = int.from_bytes(data[pos + 4 : pos + 8].tobytes(), "big")
        pos += 8
        if size > data.size - pos or expected > out.size - written:
            return -1
        try:
            got = cramjam.lz4.decompress_block_into(data[pos : pos + size], out[written : written + expected])
        except _FAILURES:
            return -1
        if got != expected:
            return -1
        pos += size
        written += expected
    return written


class Decompressor:
    """Decompresses pages of one codec into a buffer it keeps and grows as pages need."""

    def __init__(self, codec: int):
        self.codec = codec
        self._buffer = np.empty(1 << 16, dtype=np.uint8)

    def __call__(self, data: np.ndarray, size: int) -> np.ndarray:
        """``data`` (a uint8 array) decompressed: a uint8 array of exactly ``size`` bytes, valid
        until the next call. Raises :class:`CodecError` if it is not ``size`` bytes of the
        codec."""
        if self._buffer.size < size:
            self._buffer = np.empty(max(size, 2 * self._buffer.size), dtype=np.uint8)
        out = self._buffer[:size]
        try:
            got = self._into(data, out)
        except _FAILURES as err:
            raise CodecError(f"the page does not decompress ({' '.join(str(err).split())})") from None
        if got != size:
            raise CodecError(f"the page decompresses to {got} bytes, its header says {size}")
        return out

    def _into(self, data: np.ndarray, out: np.ndarray) -> int:
        codec = self.codec
        if codec == ZSTD:
            return cramjam.zstd.decompress_into(data, out)
        if codec == GZIP:
            return cramjam.gzip.decompress_into(data, out)
        if codec == BROTLI:
            return cramjam.brotli.decompress_into(data, out)
        if codec == LZ4:
            got = _hadoop_lz4(data, out)
            if got >= 0:
                return got
        return cramjam.lz4.decompress_block_into(data, out)
