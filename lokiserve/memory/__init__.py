"""Field memory: the unit of knowledge that hot swapping moves around.

* ``files``: the field file format (``Field``, ``read_field``, ``write_field``,
  the ``FieldError`` family, ``MemoryGeometry``, the backbone hash);
* ``field_memory``: ``FieldMemory``, every operation on a model's live memory
  (zero, write, snapshot, restore, state, emptiness, checksum), written once
  for the reference model, the vLLM ranks, the trainer and the evaluator.
"""

from lokiserve.memory.field_memory import FieldMemory, MemorySnapshot
from lokiserve.memory.files import (
    DEFAULT_MAX_FILE_BYTES,
    FORMAT,
    MAX_HEADER_BYTES,
    METADATA_KEYS,
    BackboneHasher,
    Field,
    FieldBackboneError,
    FieldContentError,
    FieldError,
    FieldFormatError,
    FieldTooLargeError,
    MemoryGeometry,
    atomic_write_bytes,
    backbone_hash,
    check_tensors,
    is_backbone_tensor,
    is_memory_tensor,
    field_to_bytes,
    read_field,
    resolve_field_id,
    tensors_sha256,
    write_field,
)

__all__ = [
    "FORMAT", "DEFAULT_MAX_FILE_BYTES", "MAX_HEADER_BYTES", "METADATA_KEYS",
    "Field", "FieldMemory", "MemorySnapshot", "MemoryGeometry", "BackboneHasher",
    "FieldError", "FieldFormatError", "FieldTooLargeError", "FieldBackboneError", "FieldContentError",
    "read_field", "write_field", "field_to_bytes", "atomic_write_bytes", "check_tensors",
    "backbone_hash", "resolve_field_id", "tensors_sha256", "is_memory_tensor", "is_backbone_tensor",
]
