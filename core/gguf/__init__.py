"""GGUF files, read once: the one header reader, whole-file validation, and what a model is.

    parse_header(buf, file_size=None)    -> GGUFHeader from any prefix of a file; HeaderIncomplete
                                            (.need: fetch that many bytes and retry) or HeaderError
    read_prefix(fetch, first_bytes=)     -> HeaderRead(header, bytes_read, file_size), growing the
                                            prefix through fetch(start, end) (the hub's HTTP ranges)
    read_header(path)                    -> GGUFHeader of a local file (the planner)
    check_file(path)                     -> CheckedFile: header + tensor data checked against the file
    inspect_gguf(path)                   -> ModelInfo, every split part validated (the library, CLI)
    LIMITS                               what we are willing to read, in one place (limits.py)
    MappedGGUF(path)                     tensor data memory-mapped through gguf-py (a quantizer source)

This package is the only code that knows the GGUF container and gguf-py's reader insides; importing
it does not import gguf-py or numpy (they load on the first parse, for the tensor type table).
"""
from .errors import GGUFError, HeaderError, HeaderIncomplete
from .header import ArrayInfo, GGUFHeader, TensorInfo, array_length, ggml_types, metadata_count
from .info import SPLIT_NAME, ModelInfo, file_type_name, inspect_gguf, split_parts
from .limits import LIMITS, Limits
from .mapped import MappedGGUF
from .reader import FIRST_BYTES, HeaderRead, parse_header, read_header, read_prefix
from .validate import CheckedFile, check_file

__all__ = [
    "GGUFError", "HeaderError", "HeaderIncomplete",
    "ArrayInfo", "GGUFHeader", "TensorInfo", "array_length", "ggml_types", "metadata_count",
    "SPLIT_NAME", "ModelInfo", "file_type_name", "inspect_gguf", "split_parts",
    "LIMITS", "Limits", "MappedGGUF",
    "FIRST_BYTES", "HeaderRead", "parse_header", "read_header", "read_prefix",
    "CheckedFile", "check_file",
]
