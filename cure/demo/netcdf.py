"""A small writer of netCDF classic files (the CDF-1 format of the netCDF User's Guide, "File
Format Specification"), for demo products that the real services distribute as netCDF.

The locked dependencies have no netCDF writer, and GDAL's netCDF driver writes its own layout
(``lat``/``lon``, a ``crs`` variable, GDAL's attributes), not a product's. This writes exactly the
dimensions, variables and attributes it is given: big-endian, one unlimited (record) dimension at
most, which must be every record variable's first. Reading is left to GDAL (rasterio) and the
netCDF library, which the tests use to check what this writes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_MAGIC = b"CDF\x01"
_ABSENT = b"\x00" * 8
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 10, 11, 12
# nc_type codes, and the big-endian dtype each is stored as
_TYPES: dict[str, tuple[int, str]] = {
    "int8": (1, ">i1"),
    "int16": (3, ">i2"),
    "int32": (4, ">i4"),
    "float32": (5, ">f4"),
    "float64": (6, ">f8"),
}
_NC_CHAR = 2
# An attribute: text, or numbers of one of the types above (a Python float is a double, an int
# an int32; give a numpy scalar or array for another type, e.g. np.float32(-999)).
AttributeValue = str | int | float | np.generic | np.ndarray | Sequence[float]


@dataclass(frozen=True)
class Variable:
    name: str
    dimensions: tuple[str, ...]
    data: np.ndarray
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


def write_classic(
    path: Path,
    dimensions: Mapping[str, int | None],
    variables: Sequence[Variable],
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Path:
    """Write a netCDF classic file. ``dimensions`` maps names to lengths in order; ``None`` marks
    the unlimited (record) dimension, whose length is taken from the record variables."""
    unlimited = [name for name, length in dimensions.items() if length is None]
    if len(unlimited) > 1:
        raise ValueError("a classic file has at most one unlimited dimension")
    record_dim = unlimited[0] if unlimited else None
    records = _record_count(dimensions, variables, record_dim)
    names = list(dimensions)
    arrays = [_stored(variable, dimensions, record_dim, records) for variable in variables]
    is_record = [bool(v.dimensions) and v.dimensions[0] == record_dim for v in variables]

    def header(offsets: Sequence[int]) -> bytes:
        out = bytearray(_MAGIC + _int(records))
        out += _dimension_list(dimensions)
        out += _attribute_list(attributes or {})
        if not variables:
            return bytes(out + _ABSENT)
        out += _int(_NC_VARIABLE) + _int(len(variables))
        for variable, array, record, begin in zip(
            variables, arrays, is_record, offsets, strict=True
        ):
            out += _name(variable.name) + _int(len(variable.dimensions))
            for dimension in variable.dimensions:
                out += _int(names.index(dimension))
            out += _attribute_list(variable.attributes)
            slab = array[0].nbytes if record and records else array.nbytes
            out += _int(_code(array))
            out += _int(_padded(slab)) + _int(begin)
        return bytes(out)

    # The header's size does not depend on the offsets' values: size it, then place the data.
    size = len(header([0] * len(variables)))
    offsets, position = [], size
    for array, record in zip(arrays, is_record, strict=True):
        if not record:
            offsets.append(position)
            position += _padded(array.nbytes)
    record_start = position
    record_size = sum(
        _record_slab(array, records, only=sum(is_record) == 1)
        for array, record in zip(arrays, is_record, strict=True)
        if record
    )
    for array, record in zip(arrays, is_record, strict=True):
        if record:
            offsets.append(position)
            position += _record_slab(array, records, only=sum(is_record) == 1)
    ordered = _in_variable_order(offsets, is_record)

    body = bytearray(header(ordered))
    for array, record in zip(arrays, is_record, strict=True):
        if not record:
            body += _pad(array.tobytes())
    assert len(body) == record_start
    for index in range(records):
        for array, record in zip(arrays, is_record, strict=True):
            if record:
                slab = array[index : index + 1].tobytes()  # a slice keeps the byte order
                body += slab if sum(is_record) == 1 else _pad(slab)
    assert len(body) == record_start + records * record_size
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(body))
    return path


def _in_variable_order(offsets: list[int], is_record: list[bool]) -> list[int]:
    """offsets were found fixed variables first, then record ones: back into the variables'
    order."""
    fixed = iter(offsets[: is_record.count(False)])
    record = iter(offsets[is_record.count(False) :])
    return [next(record) if flag else next(fixed) for flag in is_record]


def _record_count(
    dimensions: Mapping[str, int | None], variables: Sequence[Variable], record_dim: str | None
) -> int:
    counts = {v.data.shape[0] for v in variables if v.dimensions[:1] == (record_dim,)}
    if record_dim is None or not counts:
        return 0
    if len(counts) > 1:
        raise ValueError(f"the record variables disagree on the length of {record_dim}")
    return counts.pop()


def _stored(
    variable: Variable,
    dimensions: Mapping[str, int | None],
    record_dim: str | None,
    records: int,
) -> np.ndarray:
    """The variable's data in its big-endian type, its shape checked against its dimensions."""
    for position, dimension in enumerate(variable.dimensions):
        if dimension not in dimensions:
            raise ValueError(f"{variable.name}: no dimension {dimension}")
        if dimension == record_dim and position != 0:
            raise ValueError(f"{variable.name}: the unlimited dimension must come first")
    expected = tuple(
        records if name == record_dim else dimensions[name] for name in variable.dimensions
    )
    if variable.data.shape != expected:
        raise ValueError(f"{variable.name}: shape {variable.data.shape}, expected {expected}")
    kind = variable.data.dtype.newbyteorder("=").name
    if kind not in _TYPES:
        raise ValueError(f"{variable.name}: no classic netCDF type for {kind}")
    return np.ascontiguousarray(variable.data, dtype=_TYPES[kind][1])


def _code(array: np.ndarray) -> int:
    return _TYPES[array.dtype.newbyteorder("=").name][0]


def _record_slab(array: np.ndarray, records: int, *, only: bool) -> int:
    """Bytes of one record of a record variable (not padded when it is the only one)."""
    slab = array[0].nbytes if records else 0
    return slab if only else _padded(slab)


def _dimension_list(dimensions: Mapping[str, int | None]) -> bytes:
    if not dimensions:
        return _ABSENT
    out = _int(_NC_DIMENSION) + _int(len(dimensions))
    for name, length in dimensions.items():
        out += _name(name) + _int(length or 0)
    return out


def _attribute_list(attributes: Mapping[str, AttributeValue]) -> bytes:
    if not attributes:
        return _ABSENT
    out = _int(_NC_ATTRIBUTE) + _int(len(attributes))
    for name, value in attributes.items():
        out += _name(name)
        if isinstance(value, str):
            text = value.encode()
            out += _int(_NC_CHAR) + _int(len(text)) + _pad(text)
            continue
        if isinstance(value, bool):
            raise ValueError(f"attribute {name}: a boolean has no netCDF type")
        if isinstance(value, int):
            numbers = np.asarray([value], dtype="int32")
        elif isinstance(value, float):
            numbers = np.asarray([value], dtype="float64")
        else:
            numbers = np.atleast_1d(np.asarray(value))
        kind = numbers.dtype.newbyteorder("=").name
        if kind not in _TYPES:
            raise ValueError(f"attribute {name}: no classic netCDF type for {kind}")
        stored = numbers.astype(_TYPES[kind][1]).tobytes()
        out += _int(_TYPES[kind][0]) + _int(numbers.size) + _pad(stored)
    return out


def _name(name: str) -> bytes:
    encoded = name.encode()
    return _int(len(encoded)) + _pad(encoded)


def _int(value: int) -> bytes:
    return struct.pack(">i", value)


def _padded(size: int) -> int:
    return (size + 3) // 4 * 4


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (_padded(len(data)) - len(data))
