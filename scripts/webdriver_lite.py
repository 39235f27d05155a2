"""Shared by scripts/browser-test.py and scripts/review-test.py: a W3C WebDriver client on the
standard library (urllib), chromedriver start-up, the session, and clean shutdown.

Debian: apt-get install chromium chromium-driver.
"""
import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PLACEHOLDER = "__VEIL_DATA__"
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-file-access-from-files", "--mute-audio",
    "--window-size=1280,900",
]


class Fail(Exception):
    pass


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.sid = None

    def call(self, method, path, body=None, timeout=60):
        if self.sid and not path.startswith("/status") and path != "/session":
            path = f"/session/{self.sid}{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                payload = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                payload = json.loads(e.read() or b"{}")
            except ValueError:
                payload = {}
            v = payload.get("value") or {}
            err = v.get("error", f"HTTP {e.code}") if isinstance(v, dict) else f"HTTP {e.code}"
            msg = (v.get("message", "") if isinstance(v, dict) else "").splitlines()[:1]
            raise Fail(f"webdriver {method} {path}: {err}: {' '.join(msg)}") from None
        except (urllib.error.URLError, OSError) as e:
            raise Fail(f"webdriver {method} {path}: {e}") from None
        return payload.get("value")

    def js(self, script, *args):
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.call("POST", "/execute/async", {"script": script, "args": list(args)})

    def find(self, css, what=None):
        try:
            return self.call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT_KEY]
        except Fail as e:
            raise Fail(f"cannot find {what or css} ({css}): {e}") from None

    def click(self, css, what=None):
        el = self.find(css, what)
        try:
            self.call("POST", f"/element/{el}/click", {})
        except Fail as e:
            raise Fail(f"cannot click {what or css}: {e}") from None

    def type(self, css, text, what=None):
        el = self.find(css, what)
        try:
            self.call("POST", f"/element/{el}/value", {"text": text})
        except Fail as e:
            raise Fail(f"cannot type into {what or css}: {e}") from None

    def keys(self, *ks):
        acts = []
        for k in ks:
            acts += [{"type": "keyDown", "value": k}, {"type": "keyUp", "value": k}]
        self.call("POST", "/actions", {"actions": [{"type": "key", "id": "kb", "actions": acts}]})
        self.call("DELETE", "/actions")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(what, fn, timeout, interval=0.05):
    """Call fn() until it returns something truthy; raise Fail(what + last value) on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last and not (isinstance(last, dict) and last.get("done") is False):
            return last
        if time.monotonic() > deadline:
            raise Fail(f"timed out after {timeout:.0f}s waiting for {what} (last state: {json.dumps(last)})")
        time.sleep(interval)


def check_browser_log(wd):
    """Fails on any SEVERE entry in the browser's console log (favicon misses aside)."""
    try:
        entries = wd.call("POST", "/se/log", {"type": "browser"}) or []
    except Fail:
        entries = []  # log endpoint not supported by this chromedriver; window.veilErrors still checked
    severe = [e.get("message", "") for e in entries
              if e.get("level") == "SEVERE" and "favicon.ico" not in e.get("message", "")]
    if severe:
        raise Fail(f"browser logged errors: {severe}")


def read_page(path):
    """The page's absolute path; fails when it is missing or still a raw template."""
    page = Path(path).resolve()
    if not page.is_file():
        raise Fail(f"no such page: {page}")
    raw = page.read_text(encoding="utf-8", errors="replace")
    if PLACEHOLDER in raw:
        raise Fail(f"page still contains the {PLACEHOLDER} placeholder")
    return page


def start(args, state, prefs=None):
    """Starts chromedriver and a headless Chromium session; returns (driver, browser version)."""
    port = free_port()
    log = tempfile.TemporaryFile()
    state["log"] = log
    try:
        # own process group, so cleanup can take the browser down with it even if the session is stuck
        proc = subprocess.Popen([args.chromedriver, f"--port={port}"], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as e:
        raise Fail(f"cannot start {args.chromedriver}: {e} (apt-get install chromium-driver)")
    state["proc"] = proc
    wd = WebDriver(port)
    state["wd"] = wd

    def driver_ready():
        if proc.poll() is not None:
            raise Fail(f"chromedriver exited with {proc.returncode}")
        try:
            return (wd.call("GET", "/status", timeout=2) or {}).get("ready")
        except Fail:
            return False
    poll("chromedriver to start", driver_ready, 15, 0.1)

    options = {"binary": args.chromium, "args": CHROME_ARGS}
    if prefs:
        options["prefs"] = prefs
    caps = {"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": options,
        "goog:loggingPrefs": {"browser": "SEVERE"},
    }}}
    sess = wd.call("POST", "/session", caps, timeout=90)
    wd.sid = sess["sessionId"]
    return wd, (sess.get("capabilities") or {}).get("browserVersion", "?")


def main(name, doc, add_args, run):
    """Parses the common options (plus `add_args(parser)`), runs `run(args, t_start, state)` and
    prints `NAME: ok (summary)` or `NAME: FAIL: reason`; exits 0 or 1. Always cleans up."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("page")
    add_args(ap)
    ap.add_argument("--screenshot", metavar="OUT.png")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for page + video metadata")
    ap.add_argument("--chromedriver", default=os.environ.get("CHROMEDRIVER", "chromedriver"))
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()

    def on_signal(signum, _frame):
        raise Fail(f"interrupted by signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    state = {}
    t_start = time.monotonic()
    rc = 1
    try:
        summary = run(args, t_start, state)
        print(f"{name}: ok ({summary})")
        rc = 0
    except Fail as e:
        print(f"{name}: FAIL: {e}")
        wd = state.get("wd")
        if args.screenshot and wd is not None and wd.sid:
            try:  # a picture of the failing page helps more than the message alone
                Path(args.screenshot).write_bytes(base64.b64decode(wd.call("GET", "/screenshot", timeout=10)))
                print(f"{name}: screenshot of the failing page: {args.screenshot}")
            except (Fail, ValueError, OSError):
                pass
        log = state.get("log")
        if log is not None and os.environ.get("BROWSER_TEST_VERBOSE"):
            log.seek(0)
            sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
    finally:
        cleanup(state)
    sys.exit(rc)


def cleanup(state):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wd, proc = state.get("wd"), state.get("proc")
    if wd is not None and wd.sid:
        try:
            wd.call("DELETE", "", timeout=10)
        except Fail:
            pass
        wd.sid = None
    if proc is not None:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)  # chromedriver's own group: it and the browser it started
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                pass
    if state.get("log") is not None:
        state["log"].close()
