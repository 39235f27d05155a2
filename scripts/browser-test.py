#!/usr/bin/env python3
"""Smoke-test a generated veil highlights review page in headless Chromium.

usage: browser-test.py PAGE.html [--screenshot OUT.png] [--timeout S]

Standard library only: speaks the W3C WebDriver protocol to `chromedriver`
(Debian: apt-get install chromium chromium-driver) over HTTP with urllib.

Checks: no leftover placeholder, page rendered (window.veilReady), video
metadata loaded (readyState >= 1), clicking the last highlight card seeks to
its start and marks the card active, key `p` jumps to the previous highlight's
start and `n` back, and no JS errors (window.veilErrors and the browser log).
Prints `browser-test: ok (...)` and exits 0, or `browser-test: FAIL: ...` and
exits 1.
"""
import base64
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webdriver_lite import ELEMENT_KEY, PLACEHOLDER, Fail, check_browser_log, main, poll, read_page  # noqa: E402
from webdriver_lite import start as start_browser  # noqa: E402



STATE_JS = """
const v = document.getElementById('player'), m = document.getElementById('vmsg');
return {ready: window.veilReady === true, errors: window.veilErrors || null,
        rs: v ? v.readyState : -1, err: v && v.error ? v.error.code : 0,
        w: v ? v.videoWidth : 0, h: v ? v.videoHeight : 0, dur: v ? v.duration : null,
        t: v ? v.currentTime : null, paused: v ? v.paused : null,
        msg: m && !m.hidden ? m.textContent : ''};
"""


def run(args, t_start, state):
    timings = {}
    page = read_page(args.page)

    wd, browser_version = start_browser(args, state)
    timings["browser"] = time.monotonic() - t_start

    t0 = time.monotonic()
    wd.call("POST", "/url", {"url": page.as_uri()})

    def loaded():
        s = wd.js(STATE_JS)
        if s.get("errors"):
            raise Fail(f"JS errors on the page: {s['errors']}")
        if s.get("err"):
            raise Fail(f"video failed to load (MediaError code {s['err']}; 4 = file missing or codec unsupported); "
                       f"page says: {s.get('msg')!r}")
        s["done"] = bool(s.get("ready") and s.get("rs", 0) >= 1)
        return s
    st = poll("window.veilReady and video metadata (readyState >= 1)", loaded, args.timeout)
    timings["load"] = time.monotonic() - t0
    if not st.get("w"):
        raise Fail(f"video metadata loaded but it has no decodable picture (videoWidth 0; codec unsupported by this "
                   f"browser, e.g. HEVC, so only audio plays); page says: {st.get('msg')!r}")
    video_info = f"video {st['w']}x{st['h']} {st['dur']:.1f}s readyState={st['rs']}"

    if wd.js("return document.documentElement.outerHTML.indexOf(arguments[0]);", PLACEHOLDER) != -1:
        raise Fail(f"rendered page contains {PLACEHOLDER}")
    data = wd.js("return JSON.parse(document.getElementById('veil-data').textContent);")
    hs = data.get("highlights") or []
    if not hs:
        raise Fail("page has no highlights (need at least one to test navigation)")
    src = data.get("source") or ""
    shown = wd.js("return [document.title, document.getElementById('source').textContent];")
    if src and (shown[1] != src or src not in shown[0]):
        raise Fail(f"source name not shown verbatim: title={shown[0]!r} header={shown[1]!r}")
    n_cards = wd.js("return document.querySelectorAll('#list .hl').length;")
    if n_cards != len(hs):
        raise Fail(f"{n_cards} cards for {len(hs)} highlights")
    n_marks = wd.js("return document.querySelectorAll('#timeline .mk').length;")

    # Record every completed seek, so a seek that playback runs past between polls still counts.
    wd.js("const v = document.getElementById('player'); window.__bt = [];"
          "v.addEventListener('seeked', () => window.__bt.push(v.currentTime));")
    last_id = wd.js("const c = document.querySelectorAll('#list .hl'); return c[c.length - 1].getAttribute('data-id');")
    by_id = {str(h.get("id")): h for h in hs}
    if last_id not in by_id:
        raise Fail(f"last card has data-id {last_id!r}, not found in the data")
    last = by_id[last_id]
    sel = '.hl[data-id="%s"]' % last_id.replace("\\", "\\\\").replace('"', '\\"')
    el = wd.call("POST", "/element", {"using": "css selector", "value": sel})[ELEMENT_KEY]

    t0 = time.monotonic()
    wd.call("POST", f"/element/{el}/click", {})
    start = float(last["start"])

    def at_start():
        r = wd.js("const v = document.getElementById('player'), s = arguments[0];"
                  "const hit = !v.seeking && (Math.abs(v.currentTime - s) < 0.5 || (window.__bt || []).some(t => Math.abs(t - s) < 0.5));"
                  "if (hit) v.pause(); return hit ? {t: v.currentTime, played: !v.paused || v.played.length > 0} : false;", start)
        return r
    r = poll(f"currentTime to reach the last highlight's start {start:.2f}s after clicking its card", at_start, 10)
    timings["seek"] = time.monotonic() - t0

    def active():
        return wd.js("const c = document.querySelector(arguments[0]); const v = document.getElementById('player');"
                     "return c.classList.contains('active') ? {t: v.currentTime} : false;", sel)
    t_active = poll(f"card {last_id} to get class 'active' (paused at {r['t']:.2f}s, highlight {start:.2f}-{last['end']}s)",
                    active, 5)["t"]

    nav = "single highlight, key navigation skipped"
    earlier = sorted((h for h in hs if float(h["start"]) < start - 0.5), key=lambda h: float(h["start"]))
    if len(hs) >= 2 and earlier:
        prev = earlier[-1]

        def key_to(k, target):
            wd.call("POST", "/actions", {"actions": [{"type": "key", "id": "kb", "actions": [
                {"type": "keyDown", "value": k}, {"type": "keyUp", "value": k}]}]})
            wd.call("DELETE", "/actions")
            return poll(f"key {k!r} to seek to {target:.2f}s",
                        lambda: wd.js("const v = document.getElementById('player');"
                                      "return !v.seeking && Math.abs(v.currentTime - arguments[0]) < 0.5 ? {t: v.currentTime} : false;",
                                      target), 5)["t"]
        t_prev = key_to("p", float(prev["start"]))
        t_next = key_to("n", start)
        nav = f"p -> {t_prev:.2f}s (highlight {prev.get('id')}), n -> {t_next:.2f}s"
    elif len(hs) >= 2:
        nav = "all highlights start together, key navigation skipped"

    if args.screenshot:
        # let the frame at the new position be decoded and painted first
        poll("the video frame to be ready for the screenshot",
             lambda: wd.js("const v = document.getElementById('player'); return !v.seeking && v.readyState >= 2;"), 5)
        time.sleep(0.3)
        png = base64.b64decode(wd.call("GET", "/screenshot"))
        Path(args.screenshot).write_bytes(png)

    st = wd.js(STATE_JS)
    if st.get("errors"):
        raise Fail(f"JS errors on the page: {st['errors']}")
    check_browser_log(wd)

    timings["total"] = time.monotonic() - t_start
    return (f"chromium {browser_version}; {len(hs)} highlights, {n_marks} markers; {video_info}; "
            f"card {last_id} -> {r['t']:.2f}s, active at {t_active:.2f}s; {nav}; "
            + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
            + (f"; screenshot {args.screenshot}" if args.screenshot else ""))


def add_args(_ap):
    pass

if __name__ == "__main__":
    main("browser-test", __doc__, add_args, run)
