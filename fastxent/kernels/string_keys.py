"""An open-addressing hash table of string and binary group keys, compiled: each row's group id
in one pass over an Arrow string column's buffers.

A string key column that is not dictionary-encoded (a pandas or Polars frame's, a CSV file's) was
dictionary-encoded by Arrow batch by batch, then each batch's dictionary looked up: a split of 3
keys over 20M rows in memory took 0.3 s of hashing. Here each row's bytes are hashed and found
in a table that persists across batches (:class:`fastxent.string_key_table.StringKeyTable`);
keys new to the table get the next ids, in the order their first rows come.

Each key is taken as words: its first 16 bytes as two little-endian 64-bit words (zeros past
its end), each further 8 bytes a word; the hash multiplies and shifts them in with the length
(:func:`key_words`). A slot holds the hash, the key's number and its first two words, so a key
of up to 16 bytes is found by comparing one slot's words, without a loop over its bytes;
longer keys' further bytes are compared byte by byte, and equal words confirmed by the lengths.
Up to :data:`FEW_KEYS` short keys are compared with each row's words before any hash. A split's
3 keys, 131,072 rows, one thread, AMD Zen 4: 0.85 ms, where a byte-by-byte FNV-1a hash and
compare took 2.8 ms, the table alone 1.3, and Arrow's dictionary encoding 2.0-2.2.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .jit import strict_jit
from .key_table import MULTIPLIER, slot_of

# The helpers are compiled ``forceinline``: called, not inlined, the lookup of a split's keys
# took three times as long (131,072 rows: 1.0 ms for the hashes alone, 0.36 inlined).

#: A second odd multiplier, mixing the second word into the hash (the first takes Fibonacci
#: hashing's, :data:`~.key_table.MULTIPLIER`).
_SECOND_MULTIPLIER = np.uint64(0xC2B2AE3D27D4EB4F)
_MIX_SHIFT = np.uint64(29)
#: A slot's fields: the hash, the key's number (-1: empty) and its first two words.
HASH, KEY, FIRST, SECOND = range(4)
SLOT_FIELDS = 4
#: Up to this many keys of up to 16 bytes, each row's words are compared with every key's
#: before any hash (a split's 3 keys, 131,072 rows: 0.85 ms rather than 1.3 by the table).
FEW_KEYS = 4


@intrinsic
def unaligned_word(typingctx, data, at):
    """The 8 bytes of the byte array ``data`` from ``at`` as a little-endian uint64: one load,
    at any alignment (a view of ``data[at:at + 8]`` as uint64 cost 15 ns a row in Numba). No
    bounds are checked: the caller reads only within ``data``."""
    if not (isinstance(data, types.Array) and data.dtype == types.uint8 and isinstance(at, types.Integer)):
        return None
    signature = types.uint64(data, at)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        at = context.cast(builder, args[1], signature.args[1], types.intp)
        address = cgutils.pointer_add(builder, array.data, at, ir.IntType(64).as_pointer())
        word = builder.load(address)
        word.align = 1  # x86 loads at any alignment; LLVM must not assume 8
        return word

    return signature, codegen


@strict_jit(forceinline=True)
def _low_bytes(count):
    """A mask of the low ``count`` bytes of a word (``count`` from 0 to 8; two shifts, as a
    shift by 64 is no shift at all)."""
    half = np.uint64(4 * count)
    return ((np.uint64(1) << half) << half) - np.uint64(1)


@strict_jit(forceinline=True)
def _bytes_word(data, at, count):
    """The ``count`` bytes (at most 8) of ``data`` from ``at`` as a little-endian word, read
    one by one: a buffer's last bytes, where 8 bytes cannot be loaded."""
    word = np.uint64(0)
    for k in range(count):
        word |= np.uint64(data[at + k]) << np.uint64(8 * k)
    return word


@strict_jit(forceinline=True)
def _mix(h, word):
    h = (h ^ word) * MULTIPLIER
    return h ^ (h >> _MIX_SHIFT)


@strict_jit(forceinline=True)
def _prefix(data, begin, end):
    """The first two words of the key ``data[begin:end]``, zeros past its end."""
    length = end - begin
    if begin + 16 <= data.shape[0]:  # two loads, the bytes past the key masked off
        first = unaligned_word(data, begin) & _low_bytes(min(length, 8))
        second = unaligned_word(data, begin + 8) & _low_bytes(max(min(length - 8, 8), 0))
    else:
        first = _bytes_word(data, begin, min(length, 8))
        second = _bytes_word(data, begin + 8, max(min(length - 8, 8), 0))
    return first, second


@strict_jit(forceinline=True)
def _hash(first, second, data, begin, end):
    """The hash of the key ``data[begin:end]`` whose first two words are ``first`` and
    ``second``: of them, its length and its further words."""
    h = (first * MULTIPLIER) ^ (second * _SECOND_MULTIPLIER) ^ np.uint64(end - begin)
    for at in range(begin + 16, end, 8):  # keys longer than 16 bytes
        h = _mix(h, _bytes_word(data, at, min(end - at, 8)))
    return np.int64(h ^ (h >> _MIX_SHIFT))


@strict_jit(forceinline=True)
def key_words(data, begin, end):
    """``(hash, first, second)`` of the key ``data[begin:end]`` (:func:`_prefix`,
    :func:`_hash`), as int64."""
    first, second = _prefix(data, begin, end)
    return _hash(first, second, data, begin, end), np.int64(first), np.int64(second)


@strict_jit
def _few_keys(key_offsets, key_bytes, key_ids, nkeys):
    """``(FEW_KEYS, 4)``: each key's first two words, length and id + 1, for at most
    :data:`FEW_KEYS` keys of at most 16 bytes (length -1 in the rows of no key: it matches
    nothing); every length -1 if there are more keys or longer ones (their rows take the hash
    table)."""
    few = np.zeros((FEW_KEYS, 4), dtype=np.int64)
    few[:, 2] = -1
    if nkeys > FEW_KEYS:
        return few
    for key in range(nkeys):
        begin, end = key_offsets[key], key_offsets[key + 1]
        if end - begin > 16:
            few[:, 2] = -1
            return few
        first, second = _prefix(key_bytes, begin, end)
        few[key, 0], few[key, 1], few[key, 2], few[key, 3] = first, second, end - begin, key_ids[key] + 1
    return few


@strict_jit(forceinline=True)
def _is_key(first, second, length, key_first, key_second, key_length):
    """1 if a key's words and length are these, else 0."""
    return np.int64((key_first == first) & (key_second == second) & (key_length == length))


@strict_jit(forceinline=True)
def _same_tail(data, begin, end, key_bytes, key_start):
    """Whether bytes 16 on of ``data[begin:end]`` equal those of the key at ``key_start``."""
    for k in range(16, end - begin):
        if data[begin + k] != key_bytes[key_start + k]:
            return False
    return True


@strict_jit
def find_string_ids(
    starts,
    ends,
    data,
    validity,
    bit_offset,
    start,
    slots,
    shift,
    key_offsets,
    key_bytes,
    nkeys,
    limit,
    key_ids,
    next_id,
    ids,
    new_rows,
):
    """``ids[i]``: the group id of row ``i``'s bytes, ``data[starts[i]:ends[i]]``, from
    row ``start`` on (``-1`` for a null: ``validity``, the Arrow bitmap read from bit
    ``bit_offset + i``, empty when no row is null).

    The table: ``slots`` ``(2**(64 - shift), SLOT_FIELDS)``, each slot's hash, key number
    (``-1``: empty) and first two words (:func:`key_words`); key ``j``'s bytes
    ``key_bytes[key_offsets[j]:key_offsets[j + 1]]`` and its group id ``key_ids[j]``; ``nkeys``
    keys so far. A key not in the table becomes key ``nkeys``, ``nkeys + 1``, ... with ids
    ``next_id``, ``next_id + 1``, ..., its row recorded in ``new_rows``. The loop stops before
    the row that would add key number ``limit`` or overflow ``key_bytes``/``key_offsets``, for
    the caller to grow them and go on from there.
    Returns ``(rows done, keys added)``.
    """
    mask = slots.shape[0] - 1
    checking = validity.shape[0] > 0
    added = 0
    few = _few_keys(key_offsets, key_bytes, key_ids, nkeys)
    # in locals, which stay in registers: loaded from ``few`` at every row, which the stores to
    # ``ids`` might alias for all LLVM knows, they took 1.7 ms of 131,072 rows rather than 0.85
    f0, s0, l0, i0 = few[0, 0], few[0, 1], few[0, 2], few[0, 3]
    f1, s1, l1, i1 = few[1, 0], few[1, 1], few[1, 2], few[1, 3]
    f2, s2, l2, i2 = few[2, 0], few[2, 1], few[2, 2], few[2, 3]
    f3, s3, l3, i3 = few[3, 0], few[3, 1], few[3, 2], few[3, 3]
    for i in range(start, starts.shape[0]):
        if checking:
            bit = bit_offset + i
            if not (validity[bit >> 3] >> (bit & 7)) & 1:
                ids[i] = -1
                continue
        begin, end = starts[i], ends[i]
        words = _prefix(data, begin, end)
        first, second = np.int64(words[0]), np.int64(words[1])
        length = end - begin
        # the few keys compared by arithmetic, no branch a row: a select a key, which Numba
        # makes a branch, mispredicted at random keys (1.2 ms a split's 131,072 rows, 0.6
        # this way, the words and the comparisons alone)
        found = (
            _is_key(first, second, length, f0, s0, l0) * i0
            + _is_key(first, second, length, f1, s1, l1) * i1
            + _is_key(first, second, length, f2, s2, l2) * i2
            + _is_key(first, second, length, f3, s3, l3) * i3
            - 1
        )
        if found >= 0:
            ids[i] = found
            continue
        h = _hash(words[0], words[1], data, begin, end)
        s = slot_of(h, shift)
        while slots[s, KEY] >= 0:
            if slots[s, HASH] == h and slots[s, FIRST] == first and slots[s, SECOND] == second:
                key = slots[s, KEY]
                key_start = key_offsets[key]
                if key_offsets[key + 1] - key_start == end - begin and (
                    end - begin <= 16 or _same_tail(data, begin, end, key_bytes, key_start)
                ):
                    break
            s = (s + 1) & mask
        if slots[s, KEY] < 0:
            key = nkeys + added
            used = key_offsets[key]
            if key == limit or used + (end - begin) > key_bytes.shape[0] or key + 1 >= key_offsets.shape[0]:
                return i, added
            key_bytes[used : used + (end - begin)] = data[begin:end]
            key_offsets[key + 1] = used + (end - begin)
            key_ids[key] = next_id + added
            slots[s, HASH], slots[s, KEY], slots[s, FIRST], slots[s, SECOND] = h, key, first, second
            new_rows[added] = i
            added += 1
        ids[i] = key_ids[slots[s, KEY]]
    return starts.shape[0], added


@strict_jit
def place_keys(key_offsets, key_bytes, nkeys, shift, slots):
    """Put keys ``0 .. nkeys - 1`` (all distinct) in the empty table ``slots``."""
    mask = slots.shape[0] - 1
    for key in range(nkeys):
        h, first, second = key_words(key_bytes, key_offsets[key], key_offsets[key + 1])
        s = slot_of(h, shift)
        while slots[s, KEY] >= 0:
            s = (s + 1) & mask
        slots[s, HASH], slots[s, KEY], slots[s, FIRST], slots[s, SECOND] = h, key, first, second
