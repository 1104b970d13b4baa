"""The protocol between the Numba page code and the Python cursor that drives it: the slots of a
column chunk's state array and of its parameters, and the statuses a Numba call returns (0 done,
positive: it asks Python for something and is called again; negative: damaged bytes, or a valid
page the reader does not decode). Parquet's encoding numbers too.
"""

from __future__ import annotations

PLAIN, PLAIN_DICTIONARY, RLE, BIT_PACKED, RLE_DICTIONARY, BYTE_STREAM_SPLIT = 0, 2, 3, 4, 8, 9

# Where an open page's present values are (state slot SOURCE): decoded into the typed scratch
# array; still PLAIN bytes (at VALUES_AT of the window or the page buffer: copied once, straight
# into the batch); dictionary indices (the dictionary's values gathered straight into the batch);
# in the batch already (a snappy page decompressed in place).
IN_VALUES, IN_BYTES, IN_INDICES, IN_PLACE = 0, 1, 2, 3

# How a chunk's pages are decompressed (parameter CODEC).
UNCOMPRESSED, SNAPPY, BY_PYTHON = 0, 1, 2

# Slots of a column chunk's state array (int64), kept between calls.
POS = 0  # file offset of the next page header
END = 1  # file offset where the chunk ends
VALUES_LEFT = 2  # values (levels) the footer gives the chunk that no page has claimed yet
COUNT = 3  # levels of the open data page (0: none open)
LEVEL = 4  # next level of the open page
VALUE = 5  # next present value of the open page
SOURCE = 6  # where the open page's values are: IN_VALUES, IN_BYTES or IN_INDICES
IN_WINDOW = 7  # 1: those bytes are in the window, 0: in the page buffer
VALUES_AT = 8  # index of the first value's first byte
FULL = 9  # 1: every level of the open page is a present value
AT = 10  # file offset of the page being opened or open (for messages)
DICTIONARY = 11  # values of the chunk's dictionary (-1: none read yet)
PREPARED = 12  # file offset of the page Python has decompressed into the page buffer (-1: none)
NEED = 13  # what a NEED_* status asks for: a size or count
NEED_AT = 14  # ... the file offset of the bytes to decompress or read
NEED_SIZE = 15  # ... how many bytes to decompress or read
DONE = 16  # rows of the batch being taken so far (flat columns) / rows started (lists)
ELEMENTS = 17  # list values of the batch being taken so far
PRESENT = 18  # present values of the open page
VERIFIED = 19  # file offset up to which every page's CRC (where written) has been checked
STARTS = 20  # rows starting in the open list page without nulls (their levels in the reps scratch)
NEXT_START = 21  # ... the next of them to take
NULLS = 22  # nulls of the flat batch being taken so far (its validity is written from the first)
STATE_SLOTS = 23

# Parameters of a chunk (int64 array): constant while it is read. AS_FLOAT: 1 for integer labels
# given as float32 (:attr:`~.layout.ColumnLayout.as_float`); AS_CODES: 1 for strings given as
# their dictionary codes (:attr:`~.layout.ColumnLayout.codes`).
CODEC, TOP, IS_LIST, EMPTY, WIDTH, IS_BOOL, LARGEST, AS_FLOAT, AS_CODES = 0, 1, 2, 3, 4, 5, 6, 7, 8
PARAMETERS = 9

# Statuses: 0 done, positive asks Python for something, negative is damage or no support.
OK, AT_END = 0, 1
NEED_BYTES, NEED_BUFFER, NEED_SCRATCH, NEED_DICTIONARY, NEED_DECOMPRESS, NEED_CHILD = range(2, 8)
(
    BAD_HEADER,
    BAD_SIZES,
    BAD_TYPE,
    TOO_MANY_VALUES,
    TOO_FEW_VALUES,
    BAD_CODEC,
    BAD_LEVELS,
    SHORT_VALUES,
    NO_DICTIONARY,
    BAD_INDICES,
    SHORT_DICTIONARY,
    BAD_LIST,
    SHORT_ROWS,
    EXTRA_ROWS,
    UNCOMPRESSED_SIZE,
    BAD_CRC,
) = range(-1, -17, -1)
UNSUPPORTED_DICTIONARY, UNSUPPORTED_LEVELS, UNSUPPORTED_VALUES, NULL_IN_LIST = -101, -102, -103, -104
NOT_AS_FLOAT = -105

# The scratch arrays a NEED_SCRATCH status asks for (a mask in state[NEED_SIZE]).
DEFS, REPS, INDICES, VALUES = 1, 2, 4, 8
