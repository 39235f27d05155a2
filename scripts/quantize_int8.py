#!/usr/bin/env python3
"""Make int8 variants of veil's detection models (static QDQ quantization).

On this project's 2-core x86 machines (AVX-512 VNNI), ONNX Runtime runs an
int8 QDQ model several times faster than the float one: platedet goes from
about 200 ms to about 55 ms a 640x640 run, CenterFace at 640x384 from about
18 ms to about 10 ms (see models/README.md for the measurements and the
recall that was checked).

Kinds:
  yolov8-seg   platedet (Ultralytics YOLOv8s-seg, f16). First made a plain
               float32 detector: f16 weights and casts become f32, and the
               32 mask coefficients are dropped from output0 (so the mask
               branch and the prototype output1 disappear from the graph);
               output0 is [1, 5, 8400] = cx, cy, w, h, plate score. After
               quantization the input is made dynamic (make_dynamic). The
               box/score decoding of the head (model.22 outside its cv2/cv3/cv4
               convolution branches) stays in float: quantizing the Concat that
               joins pixel coordinates (0..640) and scores (0..1) to one scale
               would round every score to 0.
  centerface   CenterFace with a dynamic input (after convert_centerface.py),
               opset raised from 9 to 13 (QDQ needs per-axis DequantizeLinear).

The activation ranges are NOT measured during set-up: they come from a JSON
file committed under models/calib/, written once by the `calibrate`
command from frames of the repository's own fixtures (fixtures/*.mp4, made
from Debian packages by scripts/make-fixtures.sh). Quantizing with fixed
ranges involves no inference, only numpy arithmetic, so the output is the
same bytes on every machine and can be pinned by sha256 in models/models.toml.

Needs numpy, onnx and onnxruntime (pinned wheels from PyPI, unpacked by
scripts/fetch_assets.py into <cache>/pytools and put on PYTHONPATH).

Usage:
  quantize_int8.py convert   --kind K --ranges R.json IN OUT
  quantize_int8.py calibrate --kind K --ranges R.json IN [--every N] VIDEO...
      (IN is the float model as installed, e.g. .cache/models/platedet.onnx)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

KINDS = ("yolov8-seg", "centerface")
CALIB_METHOD = "MinMax"


class QuantError(Exception):
    pass


def _libs():
    try:
        import numpy as np
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise QuantError("numpy and onnx are needed (%s); run scripts/setup.sh" % e)
    return np, onnx, numpy_helper


def prepare(kind, model_bytes):
    """The float32 model that is quantized (and that the ranges refer to)."""
    np, onnx, numpy_helper = _libs()
    from onnx import TensorProto, version_converter

    m = onnx.load_from_string(model_bytes)
    g = m.graph
    if kind == "centerface":
        if [i.name for i in g.input] != ["input.1"]:
            raise QuantError("not the converted CenterFace model (inputs %s)"
                             % [i.name for i in g.input])
        m = version_converter.convert_version(m, 13)
    elif kind == "yolov8-seg":
        for i, t in enumerate(g.initializer):
            if t.data_type == TensorProto.FLOAT16:
                a = numpy_helper.to_array(t).astype(np.float32)
                g.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
        for n in g.node:
            for a in n.attribute:
                if n.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT16:
                    a.i = TensorProto.FLOAT
                if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT16:
                    arr = numpy_helper.to_array(a.t).astype(np.float32)
                    a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))
        for v in list(g.input) + list(g.output):
            if v.type.tensor_type.elem_type == TensorProto.FLOAT16:
                v.type.tensor_type.elem_type = TensorProto.FLOAT
        last = [n for n in g.node if "output0" in n.output]
        if len(last) != 1 or last[0].op_type != "Concat" or len(last[0].input) != 3:
            raise QuantError("output0 is not the Concat(boxes, scores, masks) of a YOLOv8-seg head")
        del last[0].input[2]
        out0 = [o for o in g.output if o.name == "output0"][0]
        out0.type.tensor_type.shape.dim[1].dim_value = 5
        del g.output[:]
        g.output.extend([out0])
        need, nodes = {"output0"}, []
        for n in reversed(list(g.node)):
            if any(o in need for o in n.output):
                nodes.append(n)
                need.update(n.input)
        nodes.reverse()
        del g.node[:]
        g.node.extend(nodes)
        inits = [t for t in g.initializer if t.name in need]
        del g.initializer[:]
        g.initializer.extend(inits)
        del g.value_info[:]
    else:
        raise QuantError("unknown kind %r" % kind)
    onnx.checker.check_model(m)
    return m


def excluded_nodes(kind, model):
    """Nodes kept in float (see the module docstring)."""
    if kind == "yolov8-seg":
        names = [n.name for n in model.graph.node
                 if n.name.startswith("/model.22/") and not n.name.startswith("/model.22/cv")]
        if not names:
            raise QuantError("no /model.22/ head nodes found; not an Ultralytics YOLOv8 export")
        return names
    return []


def input_name(kind):
    return {"yolov8-seg": "images", "centerface": "input.1"}[kind]


def quantize(kind, model_bytes, ranges_path):
    """int8 QDQ model bytes, from the float model and the committed ranges."""
    _libs()
    try:
        from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:
        raise QuantError("onnxruntime's quantization tools are needed (%s)" % e)
    import onnx

    if not os.path.isfile(ranges_path):
        raise QuantError("calibration ranges %s not found" % ranges_path)
    model = prepare(kind, model_bytes)
    with tempfile.TemporaryDirectory(prefix="veil-quant.") as tmp:
        f32 = os.path.join(tmp, "f32.onnx")
        pre = os.path.join(tmp, "pre.onnx")
        out = os.path.join(tmp, "int8.onnx")
        onnx.save(model, f32)
        # Shape inference only: no ONNX Runtime graph rewrite, so nothing here depends on
        # the CPU's floating-point kernels.
        quant_pre_process(f32, pre, skip_optimization=True, skip_symbolic_shape=True)
        quantize_static(
            pre, out, None,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded_nodes(kind, model),
            calibration_cache_path=ranges_path,
        )
        q = onnx.load(out)
        if kind == "yolov8-seg":
            q = make_dynamic(q)
        # Drop the tool's bookkeeping (it names temporary paths) so the bytes are stable.
        keep = [p for p in q.metadata_props if not p.key.startswith("onnx.")]
        del q.metadata_props[:]
        q.metadata_props.extend(keep)
        return q.SerializeToString()


# The YOLOv8 head's constants that fix the input at 640x640: the anchor centres and strides
# of the 8400 grid cells, and the DFL reshapes that name that count.
ANCHORS = "/model.22/Constant_12_output_0"
STRIDES = "/model.22/Constant_15_output_0"
DFL = ("/model.22/dfl/Constant_output_0", "/model.22/dfl/Constant_1_output_0")


def make_dynamic(model, strides=(8, 16, 32)):
    """The YOLOv8 graph with a dynamic input (H and W multiples of 32): the anchor centres
    and strides are computed from the input's shape (the same values at 640x640: the float
    outputs are identical), and the DFL reshapes take any number of anchors. A 16:9 frame
    then runs at 640x384 instead of letterboxed into 640x640 (about 35% less time)."""
    np, onnx, numpy_helper = _libs()
    from onnx import TensorProto, helper
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    for name in (ANCHORS, STRIDES) + DFL:
        if name not in inits:
            raise QuantError("not the expected YOLOv8 head: %s missing" % name)
    for name in DFL:
        a = numpy_helper.to_array(inits[name]).copy()
        a[-1] = -1
        inits[name].CopyFrom(numpy_helper.from_array(a, name))
    g.initializer.remove(inits[ANCHORS])
    g.initializer.remove(inits[STRIDES])
    inp = g.input[0].name
    nodes, consts = [], []

    def const(name, value):
        consts.append(numpy_helper.from_array(np.asarray(value), "/veil/dyn/" + name))
        return "/veil/dyn/" + name

    def node(op, ins, name, **kw):
        out = "/veil/dyn/" + name
        nodes.append(helper.make_node(op, ins, [out], name=out, **kw))
        return out

    def unsqueeze(x, axis, name):
        return node("Unsqueeze", [x, const(name + "_axis", np.array([axis], np.int64))], name)

    shape = node("Shape", [inp], "shape")
    h = node("Gather", [shape, const("i2", np.int64(2))], "h")
    w = node("Gather", [shape, const("i3", np.int64(3))], "w")
    zero, one = const("zero", np.int64(0)), const("one", np.int64(1))
    half = const("half", np.float32(0.5))
    xs_all, ys_all, ss_all = [], [], []
    for s in strides:
        sv = const("s%d" % s, np.int64(s))
        hs = node("Div", [h, sv], "h%d" % s)
        ws = node("Div", [w, sv], "w%d" % s)
        centres = []
        for axis, n in (("x", ws), ("y", hs)):
            r = node("Range", [zero, n, one], "%sr%d" % (axis, s))
            f = node("Cast", [r], "%sf%d" % (axis, s), to=TensorProto.FLOAT)
            centres.append(node("Add", [f, half], "%sc%d" % (axis, s)))
        hw = node("Concat", [unsqueeze(hs, 0, "hu%d" % s), unsqueeze(ws, 0, "wu%d" % s)],
                  "hw%d" % s, axis=0)
        gx = node("Expand", [unsqueeze(centres[0], 0, "xu%d" % s), hw], "gx%d" % s)
        gy = node("Expand", [unsqueeze(centres[1], 1, "yu%d" % s), hw], "gy%d" % s)
        flat = const("flat%d" % s, np.array([-1], np.int64))
        xs_all.append(node("Reshape", [gx, flat], "fx%d" % s))
        ys_all.append(node("Reshape", [gy, flat], "fy%d" % s))
        count = unsqueeze(node("Mul", [hs, ws], "n%d" % s), 0, "nv%d" % s)
        ss_all.append(node("Expand", [const("sf%d" % s, np.array([float(s)], np.float32)), count],
                           "st%d" % s))
    xall = node("Concat", xs_all, "xall", axis=0)
    yall = node("Concat", ys_all, "yall", axis=0)
    u0 = const("u0", np.array([0], np.int64))
    xy = node("Concat", [node("Unsqueeze", [xall, u0], "xa"), node("Unsqueeze", [yall, u0], "ya")],
              "xy", axis=0)
    nodes.append(helper.make_node("Unsqueeze", [xy, u0], [ANCHORS], name="/veil/dyn/anchors"))
    sall = node("Concat", ss_all, "sall", axis=0)
    nodes.append(helper.make_node("Unsqueeze", [sall, u0], [STRIDES], name="/veil/dyn/strides"))
    g.initializer.extend(consts)
    # The new nodes depend on the input only: put them first, so the graph stays sorted.
    old = list(g.node)
    del g.node[:]
    g.node.extend(nodes + old)
    for dims, names in ((g.input[0].type.tensor_type.shape.dim, {2: "height", 3: "width"}),
                        (g.output[0].type.tensor_type.shape.dim, {2: "anchors"})):
        for i, name in names.items():
            dims[i].ClearField("dim_value")
            dims[i].dim_param = name
    del g.value_info[:]
    return model


def calibration_frames(kind, videos, every):
    """Float NCHW frames as veil feeds them to the model, decoded by the ffmpeg CLI."""
    np, _, _ = _libs()
    if kind == "yolov8-seg":
        sizes = [(640, 640)]
    else:
        sizes = [(640, None), (1280, None)]
    frames = []
    for v in videos:
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "stream=width,height", "-of", "csv=p=0", v],
            check=True, capture_output=True, text=True).stdout.strip().split(",")
        vw, vh = int(probe[0]), int(probe[1])
        for (w, h) in sizes:
            if h is None:
                if w > vw:
                    continue
                sh = round(vh * w / vw)
                h = -(-sh // 32) * 32
                vf = "scale=%d:%d,pad=%d:%d:0:0" % (w, sh, w, h)
            else:
                vf = ("scale=%d:%d:force_original_aspect_ratio=decrease,"
                      "pad=%d:%d:(ow-iw)/2:(oh-ih)/2:color=0x727272" % (w, h, w, h))
            vf = "select='not(mod(n\\,%d))',%s" % (every, vf)
            raw = subprocess.run(
                ["ffmpeg", "-v", "error", "-i", v, "-vf", vf, "-fps_mode", "passthrough",
                 "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                check=True, capture_output=True).stdout
            n = len(raw) // (w * h * 3)
            a = np.frombuffer(raw[: n * w * h * 3], np.uint8).reshape(n, h, w, 3)
            for f in a:
                x = f.transpose(2, 0, 1)[None].astype(np.float32)
                frames.append(x / 255.0 if kind == "yolov8-seg" else x)
    if not frames:
        raise QuantError("no calibration frames decoded")
    return frames


def drawn_plates(n, seed=1):
    """n 640x640 frames (as platedet's input) with drawn licence plates: light, dark-framed
    rectangles of 40..240 px with dark glyph strokes, on plain bodies. The fixtures hold no
    vehicles, and ranges measured without any plate-like input clip the activations that
    plates cause (a drawn plate scored 0.15 in the float model and under 0.01 in int8)."""
    np, _, _ = _libs()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.empty((640, 640, 3), np.float32)
        img[:] = rng.uniform(40, 200, 3)
        img += rng.normal(0, 6, img.shape)
        for _ in range(int(rng.integers(1, 4))):
            pw = int(rng.integers(40, 240))
            ph = max(10, int(pw * rng.uniform(0.2, 0.5)))
            x0 = int(rng.integers(0, 640 - pw))
            y0 = int(rng.integers(0, 640 - ph))
            bg = rng.uniform(180, 255, 3) if rng.random() < 0.8 else np.array([230.0, 200, 40])
            ink = rng.uniform(0, 60)
            img[y0:y0 + ph, x0:x0 + pw] = bg
            b = max(1, pw // 60)
            img[y0:y0 + b, x0:x0 + pw] = ink
            img[y0 + ph - b:y0 + ph, x0:x0 + pw] = ink
            img[y0:y0 + ph, x0:x0 + b] = ink
            img[y0:y0 + ph, x0 + pw - b:x0 + pw] = ink
            n_glyphs = int(rng.integers(5, 9))
            gw = (pw - 4 * b) / n_glyphs
            for g in range(n_glyphs):
                gx0 = int(x0 + 2 * b + g * gw + gw * 0.15)
                gx1 = int(x0 + 2 * b + (g + 1) * gw - gw * 0.15)
                gy0, gy1 = y0 + int(ph * 0.2), y0 + int(ph * 0.8)
                s = max(1, (gx1 - gx0) // 4)
                for (ax, ay, bx, by) in ((gx0, gy0, gx0 + s, gy1), (gx1 - s, gy0, gx1, gy1),
                                         (gx0, gy0, gx1, gy0 + s), (gx0, gy1 - s, gx1, gy1),
                                         (gx0, (gy0 + gy1) // 2, gx1, (gy0 + gy1) // 2 + s)):
                    if rng.random() < 0.7:
                        img[ay:by, ax:bx] = ink
        img = np.clip(img, 0, 255)
        out.append((img.transpose(2, 0, 1)[None] / 255.0).astype(np.float32))
    return out


def calibrate(kind, model_bytes, ranges_path, videos, every, synthetic=0):
    _libs()
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator
    from onnxruntime.quantization.calibrate import save_tensors_data

    frames = calibration_frames(kind, videos, every)
    if kind == "yolov8-seg" and synthetic:
        frames += drawn_plates(synthetic)
    model = prepare(kind, model_bytes)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(frames)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {input_name(kind): x}

    with tempfile.TemporaryDirectory(prefix="veil-calib.") as tmp:
        f32 = os.path.join(tmp, "f32.onnx")
        onnx.save(model, f32)
        cal = create_calibrator(f32, augmented_model_path=os.path.join(tmp, "aug.onnx"),
                                calibrate_method=CalibrationMethod.MinMax)
        cal.collect_data(Reader())
        save_tensors_data(cal.compute_data(), ranges_path)
    print("calibrate: %d frames (%s%s) -> %s" % (
        len(frames), ", ".join(videos), " and %d drawn plates" % synthetic if synthetic else "",
        ranges_path))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("convert", "calibrate"))
    ap.add_argument("--kind", required=True, choices=KINDS)
    ap.add_argument("--ranges", required=True)
    ap.add_argument("--every", type=int, default=10, help="calibrate: every Nth frame")
    ap.add_argument("--drawn-plates", type=int, default=0,
                    help="calibrate (yolov8-seg): add this many frames of drawn plates")
    ap.add_argument("input")
    ap.add_argument("rest", nargs="+", help="convert: OUT; calibrate: VIDEO...")
    a = ap.parse_args(argv)
    try:
        with open(a.input, "rb") as f:
            data = f.read()
        if a.command == "convert":
            if len(a.rest) != 1:
                ap.error("convert takes IN OUT")
            out = quantize(a.kind, data, a.ranges)
            d = os.path.dirname(os.path.abspath(a.rest[0]))
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".quant-")
            with os.fdopen(fd, "wb") as f:
                f.write(out)
            os.replace(tmp, a.rest[0])
        else:
            calibrate(a.kind, data, a.ranges, a.rest, a.every, a.drawn_plates)
    except (QuantError, OSError, subprocess.CalledProcessError) as e:
        print("quantize_int8: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
