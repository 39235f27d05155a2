#!/usr/bin/env python3
"""Write a tiny ONNX "peak meter" model for the `--signal-model` tests.

veil's extension point `--signal-model PATH:KIND[:CLASS]` feeds the model's
first input one second of 16 kHz mono audio, float32 [1, 16000] in -1..1,
and reads element CLASS of its first output (flattened, clamped to 0..1).
This model computes, for its input x:

    scores[0, 0] = max(|x|)        (the peak level of the second)
    scores[0, 1] = 1 - max(|x|)

Graph (opset 13, IR version 7, so any ONNX Runtime since 1.7 loads it):

    audio [1,16000] -> Abs -> ReduceMax(axes=[1], keepdims=1) -> peak [1,1]
    Sub(one, peak) -> inv [1,1]            (initializer one = [[1.0]])
    Concat(peak, inv, axis=1) -> scores [1,2]

The protobuf is written by hand (standard library only, no `onnx` package),
with the same wire-format approach as scripts/convert_centerface.py. The
output is deterministic: every run writes the same bytes.

Usage: make-signal-model.py [OUT]   (default: fixtures/peak_signal.onnx in
this repository; prints the sha256 of OUT)
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The protobuf wire helpers and the atomic writer of the CenterFace converter.
from convert_centerface import WT_VARINT, _encode_varint, write_atomic  # noqa: E402
from convert_centerface import _len_field as _len_bytes  # noqa: E402


def _int_field(number, value):
    return _encode_varint((number << 3) | WT_VARINT) + _encode_varint(value)


def _len_field(number, payload):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return _len_bytes(number, payload)


# --- ONNX messages (field numbers from onnx/onnx.proto) -------------------

IR_VERSION = 7          # IR_VERSION_2020_5_8, the one that came with opset 13
OPSET = 13
ELEM_FLOAT = 1          # TensorProto.DataType.FLOAT
ATTR_INT, ATTR_INTS = 2, 7  # AttributeProto.AttributeType


def attr_int(name, value):
    # AttributeProto: name=1, i=3, type=20
    return _len_field(1, name) + _int_field(3, value) + _int_field(20, ATTR_INT)


def attr_ints(name, values):
    # AttributeProto: name=1, ints=8 (repeated, written unpacked), type=20
    out = _len_field(1, name)
    for v in values:
        out += _int_field(8, v)
    return out + _int_field(20, ATTR_INTS)


def node(op_type, inputs, outputs, name, attributes=()):
    # NodeProto: input=1, output=2, name=3, op_type=4, attribute=5
    out = b"".join(_len_field(1, i) for i in inputs)
    out += b"".join(_len_field(2, o) for o in outputs)
    out += _len_field(3, name) + _len_field(4, op_type)
    out += b"".join(_len_field(5, a) for a in attributes)
    return out


def value_info(name, dims):
    # ValueInfoProto{name=1, type=2}; TypeProto{tensor_type=1};
    # TypeProto.Tensor{elem_type=1, shape=2}; TensorShapeProto{dim=1};
    # Dimension{dim_value=1}
    shape = b"".join(_len_field(1, _int_field(1, d)) for d in dims)
    tensor = _int_field(1, ELEM_FLOAT) + _len_field(2, shape)
    return _len_field(1, name) + _len_field(2, _len_field(1, tensor))


def float_tensor(name, dims, values):
    # TensorProto: dims=1, data_type=2, name=8, raw_data=9 (little-endian)
    out = b"".join(_int_field(1, d) for d in dims)
    out += _int_field(2, ELEM_FLOAT) + _len_field(8, name)
    return out + _len_field(9, struct.pack("<%df" % len(values), *values))


def build_model():
    nodes = [
        node("Abs", ["audio"], ["abs"], "abs"),
        node("ReduceMax", ["abs"], ["peak"], "peak",
             [attr_ints("axes", [1]), attr_int("keepdims", 1)]),
        node("Sub", ["one", "peak"], ["inv"], "inv"),
        node("Concat", ["peak", "inv"], ["scores"], "scores", [attr_int("axis", 1)]),
    ]
    # GraphProto: node=1, name=2, initializer=5, input=11, output=12
    graph = b"".join(_len_field(1, n) for n in nodes)
    graph += _len_field(2, "peak_signal")
    graph += _len_field(5, float_tensor("one", [1, 1], [1.0]))
    graph += _len_field(11, value_info("audio", [1, 16000]))
    graph += _len_field(12, value_info("scores", [1, 2]))
    # ModelProto: ir_version=1, producer_name=2, producer_version=3, graph=7,
    # opset_import=8 (OperatorSetIdProto{domain=1, version=2}; the default
    # "" domain is written by leaving domain out)
    model = _int_field(1, IR_VERSION)
    model += _len_field(2, "veil scripts/make-signal-model.py")
    model += _len_field(3, "1")
    model += _len_field(7, graph)
    model += _len_field(8, _int_field(2, OPSET))
    return model


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        sys.stderr.write("usage: make-signal-model.py [OUT]\n")
        return 2
    if len(argv) == 2:
        dst = argv[1]
    else:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        dst = os.path.join(repo, "fixtures", "peak_signal.onnx")
    try:
        digest = write_atomic(dst, build_model(), prefix=".make-signal-model-")
    except OSError as e:
        sys.stderr.write("make-signal-model: %s\n" % e)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
