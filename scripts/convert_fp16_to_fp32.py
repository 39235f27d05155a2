#!/usr/bin/env python3
"""Convert a float16 ONNX model to float32.

ONNX Runtime's CPU execution provider has few float16 kernels, so an fp16
model such as platedet.onnx (YOLOv8s-seg, exported with fp16 weights) either
runs through slow fallback paths or gets Cast nodes inserted around every
operator. Widening the model to fp32 avoids that. Every fp16 value is exactly
representable in fp32, so the weights are not changed numerically.

This converter rewrites the protobuf with the small hand-written wire-format
reader/writer of convert_centerface.py (standard library only, no `onnx`
package). Everywhere in the model (main graph, subgraphs in node attributes,
training-info graphs and model-local functions):

  * every TensorProto with data_type FLOAT16 (10) becomes FLOAT (1); its data
    (raw_data, or int32_data holding the 16-bit patterns) becomes
    little-endian fp32 raw_data. This covers graph initializers, sparse
    initializers, and TENSOR / TENSORS / SPARSE_TENSOR(S) node attributes
    (Constant's `value`, ConstantOfShape's `value`, ...);
  * the dtype attributes `to` of Cast and `dtype` of EyeLike, RandomNormal,
    RandomNormalLike, RandomUniform, RandomUniformLike, Multinomial and
    Bernoulli (default ONNX domain) change from 10 to 1;
  * the elem_type of every tensor type (graph inputs, outputs, value_info,
    sequence / map / optional / sparse element types, TYPE_PROTO
    attributes) changes from 10 to 1.

Nothing else changes: every other field is copied through byte for byte, in
its original order, and a rewritten field stays where it was. Cast nodes that
become fp32 -> fp32 are kept (ONNX Runtime removes or skips them). The
output is deterministic, and running the converter on its own output gives
the same bytes again. Tensors stored outside the file (external data) are
refused.

Usage: convert_fp16_to_fp32.py IN OUT    (prints the sha256 of OUT)
"""

import hashlib
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from convert_centerface import (  # noqa: E402
    WT_LEN,
    WT_VARINT,
    ConvertError,
    _encode_varint,
    _len_field,
    _read_varint,
    _string_field,
    iter_fields,
)

FLOAT = 1
FLOAT16 = 10

# --- ONNX field numbers ---------------------------------------------------

MODEL_GRAPH = 7
MODEL_TRAINING_INFO = 20
MODEL_FUNCTIONS = 25

TRAINING_INITIALIZATION = 1
TRAINING_ALGORITHM = 2

GRAPH_NODE = 1
GRAPH_INITIALIZER = 5
GRAPH_INPUT = 11
GRAPH_OUTPUT = 12
GRAPH_VALUE_INFO = 13
GRAPH_SPARSE_INITIALIZER = 15

FUNCTION_NODE = 7
FUNCTION_ATTRIBUTE_PROTO = 11
FUNCTION_VALUE_INFO = 12

NODE_OP_TYPE = 4
NODE_ATTRIBUTE = 5
NODE_DOMAIN = 7

ATTR_NAME = 1
ATTR_I = 3
ATTR_T = 5
ATTR_G = 6
ATTR_TENSORS = 10
ATTR_GRAPHS = 11
ATTR_TP = 14
ATTR_TYPE_PROTOS = 15
ATTR_SPARSE_TENSOR = 22
ATTR_SPARSE_TENSORS = 23

TENSOR_DIMS = 1
TENSOR_DATA_TYPE = 2
TENSOR_INT32_DATA = 5
TENSOR_NAME = 8
TENSOR_RAW_DATA = 9
TENSOR_EXTERNAL_DATA = 13
TENSOR_DATA_LOCATION = 14
DATA_LOCATION_EXTERNAL = 1

SPARSE_VALUES = 1
SPARSE_INDICES = 2

VALUE_INFO_TYPE = 2

TYPE_TENSOR = 1
TYPE_SEQUENCE = 4
TYPE_MAP = 5
TYPE_SPARSE_TENSOR = 8
TYPE_OPTIONAL = 9
TENSOR_TYPE_ELEM_TYPE = 1  # also SparseTensor.elem_type
SEQUENCE_ELEM_TYPE = 1  # a TypeProto; also Optional.elem_type
MAP_VALUE_TYPE = 2  # a TypeProto

# Node attributes that hold a TensorProto.DataType, by (op_type, attribute).
DTYPE_ATTRIBUTES = {
    ("Cast", "to"),
    ("EyeLike", "dtype"),
    ("RandomNormal", "dtype"),
    ("RandomNormalLike", "dtype"),
    ("RandomUniform", "dtype"),
    ("RandomUniformLike", "dtype"),
    ("Multinomial", "dtype"),
    ("Bernoulli", "dtype"),
}

CHUNK = 1 << 20  # values converted per struct call


def _varint_field(number, value):
    return _encode_varint(number << 3 | WT_VARINT) + _encode_varint(value)


def _unpack_varints(buf):
    values = []
    pos = 0
    while pos < len(buf):
        value, pos = _read_varint(buf, pos)
        values.append(value)
    return values


def _f16_bytes_to_f32(data):
    """Little-endian fp16 bytes -> little-endian fp32 bytes (exact)."""
    out = bytearray()
    step = 2 * CHUNK
    for start in range(0, len(data), step):
        chunk = data[start:start + step]
        n = len(chunk) // 2
        out += struct.pack("<%df" % n, *struct.unpack("<%de" % n, chunk))
    return bytes(out)


# --- rewriting ------------------------------------------------------------


def _map_len_fields(buf, handlers):
    """Copy a message, passing length-delimited fields in `handlers` through
    their function (field bytes -> new field bytes); the rest is verbatim."""
    out = bytearray()
    for n, w, v, raw in iter_fields(buf):
        fn = handlers.get(n) if w == WT_LEN else None
        out += _len_field(n, fn(v)) if fn else raw
    return bytes(out)


def _convert_tensor(tensor):
    data_type = None
    dims = []
    raw = None
    int32_data = []
    has_int32 = False
    external = False
    for n, w, v, _ in iter_fields(tensor):
        if n == TENSOR_DATA_TYPE and w == WT_VARINT:
            data_type = v
        elif n == TENSOR_DIMS:
            dims.extend([v] if w == WT_VARINT else _unpack_varints(v))
        elif n == TENSOR_RAW_DATA and w == WT_LEN:
            raw = bytes(v)
        elif n == TENSOR_INT32_DATA:
            has_int32 = True
            int32_data.extend([v] if w == WT_VARINT else _unpack_varints(v))
        elif n == TENSOR_EXTERNAL_DATA:
            external = True
        elif n == TENSOR_DATA_LOCATION and w == WT_VARINT and v == DATA_LOCATION_EXTERNAL:
            external = True
    if data_type != FLOAT16:
        return bytes(tensor)

    name = _string_field(tensor, TENSOR_NAME)
    if external:
        raise ConvertError("tensor %r: external data is not supported" % name)
    count = 1
    for d in dims:
        count *= d
    if raw is not None:
        if has_int32:
            raise ConvertError("tensor %r: both raw_data and int32_data" % name)
        if len(raw) != 2 * count:
            raise ConvertError("tensor %r: %d bytes of raw_data for %d fp16 values"
                               % (name, len(raw), count))
        half = raw
    else:
        if len(int32_data) != count:
            raise ConvertError("tensor %r: %d int32_data values for %d fp16 values"
                               % (name, len(int32_data), count))
        if any(x > 0xFFFF for x in int32_data):
            raise ConvertError("tensor %r: int32_data value is not a 16-bit pattern" % name)
        half = struct.pack("<%dH" % count, *int32_data)
    data = _len_field(TENSOR_RAW_DATA, _f16_bytes_to_f32(half))

    out = bytearray()
    for n, w, v, raw_field in iter_fields(tensor):
        if n == TENSOR_DATA_TYPE and w == WT_VARINT:
            out += _varint_field(n, FLOAT)
        elif n in (TENSOR_RAW_DATA, TENSOR_INT32_DATA):
            out += data  # where the first data field was
            data = b""
        else:
            out += raw_field
    out += data  # a tensor with no data field at all (zero elements)
    return bytes(out)


def _convert_sparse_tensor(sparse):
    return _map_len_fields(sparse, {SPARSE_VALUES: _convert_tensor})


def _convert_type(type_proto):
    def tensor_type(t):
        out = bytearray()
        for n, w, v, raw in iter_fields(t):
            if n == TENSOR_TYPE_ELEM_TYPE and w == WT_VARINT and v == FLOAT16:
                out += _varint_field(n, FLOAT)
            else:
                out += raw
        return bytes(out)

    return _map_len_fields(type_proto, {
        TYPE_TENSOR: tensor_type,
        TYPE_SPARSE_TENSOR: tensor_type,
        TYPE_SEQUENCE: lambda m: _map_len_fields(m, {SEQUENCE_ELEM_TYPE: _convert_type}),
        TYPE_OPTIONAL: lambda m: _map_len_fields(m, {SEQUENCE_ELEM_TYPE: _convert_type}),
        TYPE_MAP: lambda m: _map_len_fields(m, {MAP_VALUE_TYPE: _convert_type}),
    })


def _convert_value_info(vi):
    return _map_len_fields(vi, {VALUE_INFO_TYPE: _convert_type})


def _convert_attribute(attr, dtype_attr):
    out = bytearray()
    for n, w, v, raw in iter_fields(attr):
        if dtype_attr and n == ATTR_I and w == WT_VARINT and v == FLOAT16:
            out += _varint_field(n, FLOAT)
        elif w != WT_LEN:
            out += raw
        elif n in (ATTR_T, ATTR_TENSORS):
            out += _len_field(n, _convert_tensor(v))
        elif n in (ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS):
            out += _len_field(n, _convert_sparse_tensor(v))
        elif n in (ATTR_G, ATTR_GRAPHS):
            out += _len_field(n, _convert_graph(v))
        elif n in (ATTR_TP, ATTR_TYPE_PROTOS):
            out += _len_field(n, _convert_type(v))
        else:
            out += raw
    return bytes(out)


def _convert_node(node):
    op_type = _string_field(node, NODE_OP_TYPE)
    domain = _string_field(node, NODE_DOMAIN) or ""
    default_domain = domain in ("", "ai.onnx")

    def attribute(attr):
        name = _string_field(attr, ATTR_NAME)
        return _convert_attribute(attr, default_domain and (op_type, name) in DTYPE_ATTRIBUTES)

    return _map_len_fields(node, {NODE_ATTRIBUTE: attribute})


def _convert_graph(graph):
    return _map_len_fields(graph, {
        GRAPH_NODE: _convert_node,
        GRAPH_INITIALIZER: _convert_tensor,
        GRAPH_SPARSE_INITIALIZER: _convert_sparse_tensor,
        GRAPH_INPUT: _convert_value_info,
        GRAPH_OUTPUT: _convert_value_info,
        GRAPH_VALUE_INFO: _convert_value_info,
    })


def _convert_function(function):
    return _map_len_fields(function, {
        FUNCTION_NODE: _convert_node,
        FUNCTION_ATTRIBUTE_PROTO: lambda a: _convert_attribute(a, False),
        FUNCTION_VALUE_INFO: _convert_value_info,
    })


def _convert_training_info(info):
    return _map_len_fields(info, {
        TRAINING_INITIALIZATION: _convert_graph,
        TRAINING_ALGORITHM: _convert_graph,
    })


def convert(model):
    """Return the converted ModelProto bytes."""
    graphs = sum(1 for n, w, _, _ in iter_fields(model) if n == MODEL_GRAPH and w == WT_LEN)
    if graphs != 1:
        raise ConvertError("expected exactly one graph, found %d" % graphs)
    return _map_len_fields(model, {
        MODEL_GRAPH: _convert_graph,
        MODEL_TRAINING_INFO: _convert_training_info,
        MODEL_FUNCTIONS: _convert_function,
    })


def convert_file(src, dst):
    """Convert src into dst (written atomically); return dst's sha256 hex."""
    with open(src, "rb") as f:
        data = convert(f.read())
    directory = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=".convert-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return hashlib.sha256(data).hexdigest()


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: convert_fp16_to_fp32.py IN OUT\n")
        return 2
    try:
        digest = convert_file(argv[1], argv[2])
    except (OSError, ConvertError) as e:
        sys.stderr.write("convert_fp16_to_fp32: %s\n" % e)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
