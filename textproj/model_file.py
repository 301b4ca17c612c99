"""The on-device model file ``model.tpn``: a JSON header and raw tensors, checksummed, no pickle.

Layout (little-endian): magic ``b"TEXTPROJ"``, uint32 format version, uint32 header length, the
UTF-8 JSON header, the tensor blob (each tensor 8-byte aligned from the blob start), and a SHA-256
of everything before it. The reader checks every claim the file makes before trusting it, so a
damaged or hostile file gives a :class:`ModelFormatError`, never a crash or a huge allocation.
See ``docs/model-format.md``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import struct
import unicodedata
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from textproj import fsio
from textproj.errors import ModelFormatError, ModelNotFoundError

__all__ = ["MODEL_FILENAME", "ModelFormatError", "ModelNotFoundError"]

MODEL_FILENAME = "model.tpn"
MAGIC = b"TEXTPROJ"
FORMAT_VERSION = 1
ALIGNMENT = 8
DIGEST_BYTES = 32
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_TENSOR_ELEMENTS = 64 * 1024 * 1024
MAX_TENSOR_DIMS = 8
MAX_LABELS = 1_000_000
DTYPES = ("int8", "float32", "int32", "uint8", "int4")
# int4: signed 4-bit values, two per byte (element 2i in the low nibble of byte i, 2i+1 in the
# high one); an odd count leaves the last high nibble, which must be 0. Read back as int8.
INT4 = "int4"
INT4_MIN, INT4_MAX = -8, 7

_PREFIX = struct.Struct("<8sII")  # magic, format version, header length
_MIN_HEADER = b"{}"
MIN_FILE_BYTES = _PREFIX.size + len(_MIN_HEADER) + DIGEST_BYTES
_TABLE_KEYS = {"name", "dtype", "shape", "offset", "nbytes"}
# Header key recording the Unicode version of the text path (normalisation, classes) a model was
# written under; every reader compares it with its own tables. Old headers lack it.
UNICODE_VERSION_KEY = "unicode_version"


def _aligned(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def tensor_nbytes(dtype: str, elements: int) -> int:
    """Bytes that ``elements`` values of ``dtype`` take in the blob (int4: two per byte)."""
    if dtype == INT4:
        return (elements + 1) // 2
    return elements * np.dtype(dtype).itemsize


def pack_int4(values: np.ndarray) -> bytes:
    """The int4 bytes of int8 ``values`` in -8..7 (C order; an odd count ends in a 0 nibble)."""
    nibbles = np.ascontiguousarray(values, dtype=np.int8).reshape(-1).view(np.uint8) & 0x0F
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()


def unpack_int4(data: bytes | memoryview, shape: tuple[int, ...] | list[int]) -> np.ndarray:
    """The int8 array of ``shape`` that int4 ``data`` (:func:`pack_int4`'s bytes) holds."""
    raw = np.frombuffer(data, dtype=np.uint8)
    nibbles = np.empty(2 * raw.size, dtype=np.uint8)
    nibbles[0::2] = raw & 0x0F
    nibbles[1::2] = raw >> 4
    signed = (nibbles ^ 8).view(np.int8) - np.int8(8)
    return signed[: math.prod(shape)].reshape(shape)


def _check_table(name: str, header: dict[str, Any], blob: bytes | memoryview) -> None:
    """Check the header's ``tensors`` table and ``labels`` against the limits and the blob (its
    size, and the padding nibble of each int4 tensor with an odd element count)."""
    blob_bytes = len(blob)
    table = header.get("tensors")
    if not isinstance(table, list):
        raise ModelFormatError(f"{name}: header has no 'tensors' list")
    seen: set[str] = set()
    spans = []
    for i, entry in enumerate(table):
        if not isinstance(entry, dict) or set(entry) != _TABLE_KEYS:
            raise ModelFormatError(
                f"{name}: tensor table entry {i} must have exactly the keys {sorted(_TABLE_KEYS)}"
            )
        tname = entry["name"]
        if not isinstance(tname, str) or not tname:
            raise ModelFormatError(f"{name}: tensor table entry {i} has no valid name")
        if tname in seen:
            raise ModelFormatError(f"{name}: tensor {tname!r} appears twice")
        seen.add(tname)
        if entry["dtype"] not in DTYPES:
            raise ModelFormatError(
                f"{name}: tensor {tname!r} has dtype {entry['dtype']!r} "
                f"(allowed: {', '.join(DTYPES)})"
            )
        shape = entry["shape"]
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_TENSOR_DIMS
            or not all(_is_int(d) and d >= 0 for d in shape)
        ):
            raise ModelFormatError(
                f"{name}: tensor {tname!r} shape {shape!r} is not a list of at most "
                f"{MAX_TENSOR_DIMS} non-negative ints"
            )
        elements = math.prod(shape)
        if elements > MAX_TENSOR_ELEMENTS:
            raise ModelFormatError(
                f"{name}: tensor {tname!r} claims {elements} elements (limit {MAX_TENSOR_ELEMENTS})"
            )
        offset, nbytes = entry["offset"], entry["nbytes"]
        if not (_is_int(offset) and _is_int(nbytes)):
            raise ModelFormatError(f"{name}: tensor {tname!r} offset and nbytes must be ints")
        needed = tensor_nbytes(entry["dtype"], elements)
        if nbytes != needed:
            raise ModelFormatError(
                f"{name}: tensor {tname!r} has nbytes {nbytes}, but shape {shape} of "
                f"{entry['dtype']} needs {needed}"
            )
        if offset < 0 or offset % ALIGNMENT or offset + nbytes > blob_bytes:
            raise ModelFormatError(
                f"{name}: tensor {tname!r} at offset {offset} ({nbytes} bytes) is misaligned "
                f"or outside the {blob_bytes}-byte tensor data"
            )
        if entry["dtype"] == INT4 and elements % 2 and blob[offset + nbytes - 1] >> 4:
            raise ModelFormatError(
                f"{name}: tensor {tname!r} (int4, {elements} elements) has a nonzero padding "
                "nibble: the high nibble of its last byte must be 0"
            )
        spans.append((offset, offset + nbytes, tname))
    spans.sort()
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            raise ModelFormatError(f"{name}: tensors {first!r} and {second!r} overlap")
    labels = header.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ModelFormatError(f"{name}: 'labels' must be a list of strings")
        if len(labels) > MAX_LABELS:
            raise ModelFormatError(f"{name}: {len(labels)} labels (limit {MAX_LABELS})")


def encode_model(
    header: dict,
    tensors: dict[str, np.ndarray],
    *,
    int4: Collection[str] = (),
    name: str = MODEL_FILENAME,
) -> bytes:
    """The bytes of a model file holding ``header`` and ``tensors`` (what :func:`write_model`
    writes); the same input always gives the same bytes (sorted, compact JSON; zero padding).
    The int8 tensors named in ``int4`` are stored as int4 (their values must lie in -8..7;
    :func:`read_model` gives them back as int8). ``name`` is the file named in error messages."""
    if "tensors" in header:
        raise ValueError("header must not hold a 'tensors' key: write_model adds the tensor table")
    unknown = sorted(set(int4) - set(tensors))
    if unknown:
        raise ValueError(f"int4 names tensors that are not given: {', '.join(unknown)}")
    table = []
    chunks = []
    blob_bytes = 0
    for tname, array in tensors.items():
        array = np.asarray(array)
        if array.dtype.name not in DTYPES:
            raise ValueError(
                f"tensor {tname!r} has dtype {array.dtype}; allowed: {', '.join(DTYPES)}"
            )
        dtype = array.dtype.name
        if tname in int4:
            data, dtype = _int4_bytes(tname, array), INT4
        else:
            data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        offset = _aligned(blob_bytes)
        chunks.append(b"\0" * (offset - blob_bytes))
        chunks.append(data)
        table.append(
            {
                "name": tname,
                "dtype": dtype,
                "shape": list(array.shape),
                "offset": offset,
                "nbytes": len(data),
            }
        )
        blob_bytes = offset + len(data)
    blob = b"".join(chunks)
    full_header = {UNICODE_VERSION_KEY: unicodedata.unidata_version, **header, "tensors": table}
    _check_table(name, full_header, blob)
    text = json.dumps(
        full_header, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
    text += b" " * (_aligned(_PREFIX.size + len(text)) - _PREFIX.size - len(text))
    if len(text) > MAX_HEADER_BYTES:
        raise ValueError(f"header is {len(text)} bytes (limit {MAX_HEADER_BYTES})")
    body = b"".join([_PREFIX.pack(MAGIC, FORMAT_VERSION, len(text)), text, blob])
    return body + hashlib.sha256(body).digest()


def _int4_bytes(tname: str, array: np.ndarray) -> bytes:
    """``array`` packed as int4, refused unless it is int8 within -8..7."""
    if array.dtype != np.int8:
        raise ValueError(f"tensor {tname!r} is {array.dtype}: only int8 tensors can be int4")
    if array.size and (array.min() < INT4_MIN or array.max() > INT4_MAX):
        raise ValueError(
            f"tensor {tname!r} holds values in {array.min()}..{array.max()}, "
            f"outside int4's {INT4_MIN}..{INT4_MAX}"
        )
    return pack_int4(array)


def unicode_mismatch(header: dict[str, Any], version: str) -> str | None:
    """Why ``header`` was written under another Unicode version than ``version``, or None (also
    for an old header that does not say)."""
    stored = header.get(UNICODE_VERSION_KEY, version)
    if stored == version:
        return None
    return (
        f"model written with Unicode {stored!r}, this reader has Unicode {version}: "
        "texts using characters that changed between the versions may get other bits"
    )


def write_model(
    path: str | os.PathLike[str],
    header: dict,
    tensors: dict[str, np.ndarray],
    *,
    int4: Collection[str] = (),
) -> int:
    """Write ``header`` and ``tensors`` to ``path`` atomically; return the bytes written.

    The same input always gives a byte-identical file (see :func:`encode_model`, also for
    ``int4``, the int8 tensors stored as 4-bit).
    The file appears complete or not at all: it is written to a temporary file in the same
    directory, synced, then renamed over ``path``.
    """
    path = Path(path)
    return fsio.write_bytes(path, encode_model(header, tensors, int4=int4, name=str(path)))


def model_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or ``path/model.tpn`` when ``path`` is a directory (which must hold one)."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILENAME).is_file():
            raise ModelNotFoundError(f"{path}: directory holds no {MODEL_FILENAME}")
        return path / MODEL_FILENAME
    return path


def _reject_constant(value: str) -> None:
    raise ValueError(f"{value} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return result


def _read_verified(path: str | os.PathLike[str]) -> tuple[dict[str, Any], memoryview, int, int]:
    """(header, tensor blob, format version, file bytes) after every check up to the table."""
    name = str(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; open errors are reported first)
    except FileNotFoundError:
        raise ModelNotFoundError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{name}: is a directory, not a model file") from None
    except OSError as error:
        raise ModelFormatError(f"{name}: cannot open ({error.strerror})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        _check_size(name, size)
        prefix = f.read(_PREFIX.size)
        _check_prefix(name, prefix, size)  # before reading a large file that is no model
        f.seek(0)
        data = f.read()
    if len(data) != size:
        raise ModelFormatError(f"{name}: file changed while being read")
    header, blob, version = _verify(name, data)
    return header, blob, version, size


def _check_size(name: str, size: int) -> None:
    if size < MIN_FILE_BYTES:
        what = "empty" if size == 0 else f"only {size} bytes"
        raise ModelFormatError(f"{name}: file is {what}, too small to be a textproj model")


def _check_prefix(name: str, prefix: bytes | memoryview, size: int) -> tuple[int, int]:
    """(format version, header length) from the first bytes of a ``size``-byte file, checked:
    magic, version, and a header length within the limit and the file."""
    magic, version, header_len = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ModelFormatError(f"{name}: not a textproj model file (wrong magic bytes)")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{name}: model format version {version} needs a newer textproj "
            f"(this one reads version {FORMAT_VERSION}); upgrade textproj"
        )
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"{name}: unknown model format version {version}")
    if header_len > MAX_HEADER_BYTES:
        raise ModelFormatError(
            f"{name}: header length {header_len} exceeds the limit of {MAX_HEADER_BYTES}"
        )
    blob_start = _PREFIX.size + header_len
    if blob_start + DIGEST_BYTES > size:
        raise ModelFormatError(
            f"{name}: header length {header_len} runs past the end of the "
            f"{size}-byte file (file truncated?)"
        )
    return version, header_len


def _verify(name: str, data: bytes) -> tuple[dict[str, Any], memoryview, int]:
    """(header, tensor blob, format version) of a whole model file's bytes, checked up to the
    tensor table: magic, version and header length, then the checksum (so any damage past the
    prefix reads as damage), then the header JSON."""
    _check_size(name, len(data))
    view = memoryview(data)
    version, header_len = _check_prefix(name, view[: _PREFIX.size], len(data))
    blob_start = _PREFIX.size + header_len
    if hashlib.sha256(view[:-DIGEST_BYTES]).digest() != view[-DIGEST_BYTES:]:
        raise ModelFormatError(f"{name}: checksum mismatch (file damaged or truncated?)")
    try:
        header = json.loads(
            bytes(view[_PREFIX.size : blob_start]).decode("utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError) as error:
        raise ModelFormatError(f"{name}: header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{name}: header is not a JSON object")
    return header, view[blob_start:-DIGEST_BYTES], version


def _tensor(blob: memoryview, entry: dict[str, Any]) -> np.ndarray:
    """One table entry's tensor, native byte order, read-only (a view into ``blob`` on
    little-endian machines; an int4 tensor unpacked to int8)."""
    if entry["dtype"] == INT4:
        start = entry["offset"]
        array = unpack_int4(blob[start : start + entry["nbytes"]], entry["shape"])
        array.flags.writeable = False
        return array
    stored = np.frombuffer(
        blob,
        dtype=np.dtype(entry["dtype"]).newbyteorder("<"),
        count=math.prod(entry["shape"]),
        offset=entry["offset"],
    )
    array = stored.astype(entry["dtype"], copy=False).reshape(entry["shape"])
    array.flags.writeable = False
    return array


def read_model(path: str | os.PathLike[str]) -> tuple[dict, dict[str, np.ndarray]]:
    """Verify and read a model file: (header without the tensor table, read-only tensors)."""
    header, blob, _, _ = _read_verified(path)
    _check_table(str(path), header, blob)
    return header, {entry["name"]: _tensor(blob, entry) for entry in header.pop("tensors")}


def read_model_bytes(data: bytes, name: str = MODEL_FILENAME) -> tuple[dict, dict[str, np.ndarray]]:
    """:func:`read_model` on a whole model file's bytes (e.g. a model carried inside another
    file); ``name`` is what error messages call it."""
    header, blob, _ = _verify(name, bytes(data))
    _check_table(name, header, blob)
    return header, {entry["name"]: _tensor(blob, entry) for entry in header.pop("tensors")}


def describe_model(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``textproj info`` shows: header fields, each tensor's name/dtype/shape/bytes, sizes.

    ``path`` is a model file or a directory holding ``model.tpn``.
    """
    path = model_path(path)
    header, blob, version, size = _read_verified(path)
    _check_table(str(path), header, blob)
    table = header.pop("tensors")
    return {
        **header,
        "format_version": version,
        "file_bytes": size,
        "tensors": [
            {"name": e["name"], "dtype": e["dtype"], "shape": e["shape"], "bytes": e["nbytes"]}
            for e in table
        ],
    }
