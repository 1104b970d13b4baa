"""RGB and RGBA images written as PNG files: each row "Up"-filtered (its difference from the
row above, byte by byte) and deflated by zlib-ng.

Figures are mostly rows that repeat the one above (white space, bars, axes), which the Up filter
turns into zeros. Pillow's encoder (zlib level 1, its own filter choice) took 5.9 ms for a
770 x 440 figure and 12.8 ms for a 1905 x 440 chart; this one takes 0.8 and 1.6 ms, and its
files are smaller (19 KB against 22, 22 KB against 30). A canvas is written as the RGBA it is
drawn in: dropping its alpha bytes first (a strided copy) cost 8.7 ms of a 1905 x 440 chart's
9.4, and an opaque alpha channel filters to zeros, which deflate to almost nothing.
"""

from __future__ import annotations

import struct

import numpy as np

try:
    from zlib_ng.zlib_ng import compress, crc32
except ImportError:  # a platform without zlib-ng's wheel: the same files, slower
    from zlib import compress, crc32

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type: each byte minus the byte above it (the first row: minus zero)
#: zlib-ng's level 3: a third smaller than level 1 for these figures, at about the same speed.
LEVEL = 3


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc32(kind + data))


#: PNG colour types by channels: RGB, RGBA.
_COLOUR_TYPES = {3: 2, 4: 6}


def png_bytes(image: np.ndarray) -> bytes:
    """The PNG file of ``image``, an ``(height, width, 3)`` (RGB) or ``(height, width, 4)``
    (RGBA) uint8 array."""
    height, width, channels = image.shape
    rows = np.ascontiguousarray(image).reshape(height, channels * width)
    filtered = np.empty((height, channels * width + 1), dtype=np.uint8)
    filtered[:, 0] = _UP
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG's filters are
    # 8 bits a channel, no interlacing
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    idat = compress(filtered, LEVEL)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
