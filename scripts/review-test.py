#!/usr/bin/env python3
"""End-to-end test of a generated veil redaction review page in headless Chromium.

usage: review-test.py PAGE.html --out DIR [--screenshot OUT.png] [--timeout S]

Standard library only: speaks the W3C WebDriver protocol to `chromedriver`
(Debian: apt-get install chromium chromium-driver) over HTTP with urllib.

Acts like a reviewer with real clicks, keys and pointer drags: marks the first
track card not sensitive with a reason (after checking that export refuses
without one), draws a manual region with keyframes at two frames on #overlay,
adds an audio mute span 1.0-2.0 s (when the data says the clip has audio),
exports, and checks the edits.json that the browser downloads into DIR.
Also checks the overlay lies exactly over the displayed picture, the
low-confidence filter, the , / . frame keys, and that there are no JS errors
(window.veilErrors and the browser log). Prints `review-test: ok (...)` and
exits 0, or `review-test: FAIL: ...` and exits 1.
"""
import base64
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webdriver_lite import ELEMENT_KEY, PLACEHOLDER, Fail, check_browser_log, main, poll, read_page  # noqa: E402
from webdriver_lite import start as start_browser  # noqa: E402

TRACK_REASON = "Bystander's face is a poster on the wall <not a person> & public"
BOX_REASON = "Child's face visible in the mirror, missed by the detector"
AUDIO_REASON = "Witness states her home address"
# drawn rectangles, as fractions of the displayed picture: (x0, y0, x1, y1)
RECT1 = (0.08, 0.10, 0.42, 0.40)
RECT2 = (0.60, 0.58, 0.90, 0.92)


STATE_JS = """
const m = document.getElementById('vmsg');
const vs = ['red', 'orig'].map((id) => { const v = document.getElementById(id);
  return v ? {rs: v.readyState, err: v.error ? v.error.code : 0, w: v.videoWidth, h: v.videoHeight, dur: v.duration,
              t: v.currentTime, paused: v.paused, seeking: v.seeking, src: v.getAttribute('src')} : null; });
return {ready: window.veilReady === true, errors: window.veilErrors || null, red: vs[0], orig: vs[1],
        msg: m && !m.hidden ? m.textContent : '', pwned: window.__pwned !== undefined};
"""

# Seek the redacted video (the page syncs the original to it), paused; resolve once both have settled.
SEEK_JS = """
const [t, done] = [arguments[0], arguments[arguments.length - 1]];
const red = document.getElementById('red'), orig = document.getElementById('orig'), sync = !!orig.getAttribute('src');
red.pause();
let n = 0;
const check = () => {
  const ok = !red.seeking && red.paused && red.readyState >= 2 && Math.abs(red.currentTime - t) < 1e-3 &&
             (!sync || (!orig.seeking && orig.paused && orig.readyState >= 2 && Math.abs(orig.currentTime - t) < 0.02));
  if (ok || ++n > 200) done({ok: ok, t: red.currentTime, orig: sync ? orig.currentTime : null, paused: red.paused,
                             clock: document.getElementById('clock').textContent});
  else setTimeout(check, 25);
};
red.addEventListener('seeked', () => setTimeout(check, 0), {once: true});
red.currentTime = t;
"""

# Where the overlay is, and where the picture of the redacted video is shown (object-fit: contain).
GEOM_JS = """
const v = document.getElementById('red'), o = document.getElementById('overlay');
o.scrollIntoView({block: 'center'});
const r = v.getBoundingClientRect(), q = o.getBoundingClientRect();
const s = Math.min(v.clientWidth / v.videoWidth, v.clientHeight / v.videoHeight), w = v.videoWidth * s, h = v.videoHeight * s;
return {overlay: [q.left, q.top, q.width, q.height],
        picture: [r.left + v.clientLeft + (v.clientWidth - w) / 2, r.top + v.clientTop + (v.clientHeight - h) / 2, w, h],
        pe: getComputedStyle(o).pointerEvents, hidden: o.hidden};
"""


def run(args, t_start, state):
    timings = {}
    page = read_page(args.page)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    target = out / "edits.json"
    for stale in [target] + list(out.glob("edits*.json")) + list(out.glob("*.crdownload")):
        stale.unlink(missing_ok=True)  # else Chromium would save the new file as "edits (1).json"

    wd, browser_version = start_browser(args, state, prefs={
        "download.default_directory": str(out), "download.prompt_for_download": False,
        "download.directory_upgrade": True, "safebrowsing.enabled": False})
    try:  # headless Chromium may ignore the prefs; this makes downloads land in `out` without a prompt
        wd.call("POST", "/goog/cdp/execute", {"cmd": "Browser.setDownloadBehavior",
                                              "params": {"behavior": "allow", "downloadPath": str(out)}})
    except Fail as e:
        print(f"review-test: note: Browser.setDownloadBehavior failed ({e}); relying on prefs", file=sys.stderr)
    timings["browser"] = time.monotonic() - t_start

    # 1. load --------------------------------------------------------------------------------------
    t0 = time.monotonic()
    wd.call("POST", "/url", {"url": page.as_uri()})
    want_orig = None

    def loaded():
        s = wd.js(STATE_JS)
        if s.get("errors"):
            raise Fail(f"JS errors on the page: {s['errors']}")
        vids = [("redacted", s["red"])] + ([("original", s["orig"])] if want_orig else [])
        for name, v in vids:
            if v and v.get("err"):
                raise Fail(f"{name} video failed to load (MediaError code {v['err']}; 4 = file missing or codec "
                           f"unsupported); page says: {s.get('msg')!r}")
        s["done"] = bool(s.get("ready") and all(v and v["rs"] >= 1 and v["w"] > 0 for _, v in vids))
        return s
    data = wd.js("return JSON.parse(document.getElementById('veil-data').textContent);")
    if not isinstance(data, dict):
        raise Fail("embedded data is not a JSON object")
    want_orig = bool(data.get("original"))
    st = poll("window.veilReady and both videos' metadata (readyState >= 1, videoWidth > 0)", loaded, args.timeout)
    timings["load"] = time.monotonic() - t0
    video_info = f"video {st['red']['w']}x{st['red']['h']} {st['red']['dur']:.1f}s" + (
        "" if want_orig else " (no original)")

    if wd.js("return document.documentElement.outerHTML.indexOf(arguments[0]);", PLACEHOLDER) != -1:
        raise Fail(f"rendered page contains {PLACEHOLDER}")
    src = data.get("source") or ""
    shown = wd.js("return [document.title, document.getElementById('source').textContent];")
    if src and (shown[1] != src or src not in shown[0]):
        raise Fail(f"source name not shown verbatim: title={shown[0]!r} header={shown[1]!r}")
    tracks = data.get("tracks") or []
    if not tracks:
        raise Fail("page data has no tracks (need at least one to test 'not sensitive')")
    n_cards = wd.js("return document.querySelectorAll('#list .track').length;")
    if n_cards != len(tracks):
        raise Fail(f"{n_cards} track cards for {len(tracks)} tracks")
    fps, W, H = float(data["fps"]), int(data["width"]), int(data["height"])
    frames = int(data["frames"])
    has_audio = data.get("audio") is True

    # low-confidence filter
    n_low = sum(1 for t in tracks if t.get("low_confidence") is True)
    wd.click("#filter-low", "the low-confidence filter")
    vis = wd.js("return [[...document.querySelectorAll('#list .track')].filter((c) => c.offsetParent !== null).length,"
                " document.getElementById('low-count').textContent];")
    if vis[0] != n_low or vis[1].strip() != str(n_low):
        raise Fail(f"low-confidence filter shows {vis[0]} cards, count {vis[1]!r}; data has {n_low} low-confidence tracks")
    wd.click("#filter-low", "the low-confidence filter")
    if wd.js("return [...document.querySelectorAll('#list .track')].filter((c) => c.offsetParent !== null).length;") != len(tracks):
        raise Fail("unticking the low-confidence filter does not show all cards again")

    # 2. first track: not sensitive, but export must refuse until it has a reason ------------------
    first_id = wd.js("return document.querySelector('#list .track').getAttribute('data-id');")
    card = '#list .track:first-child'
    wd.click(card + " .not-sensitive", "the first card's 'not sensitive' checkbox")
    if not wd.js("return document.querySelector(arguments[0]).checked;", card + " .not-sensitive"):
        raise Fail("clicking 'not sensitive' on the first card did not tick it")
    wd.click("#export", "the export button")
    refusal = wd.js("const m = document.getElementById('export-msg');"
                    "return {text: m.textContent, shown: m.offsetParent !== null, last: window.veilLastExport === undefined};")
    if not refusal["last"] or not refusal["shown"] or not refusal["text"]:
        raise Fail(f"export without a reason was not refused visibly: {refusal}")
    wd.type(card + " .reason", TRACK_REASON, "the first card's reason")

    def seek(t, what):
        r = wd.js_async(SEEK_JS, t)
        if not r or not r.get("ok"):
            raise Fail(f"seeking to {t:.3f}s ({what}) did not settle with both videos paused there: {r}")
        return r

    def draw(rect, what):
        g = wd.js(GEOM_JS)
        if g["hidden"] or g["pe"] == "none":
            raise Fail(f"overlay not ready for drawing ({what}): hidden={g['hidden']} pointer-events={g['pe']}")
        if any(abs(a - b) > 1.5 for a, b in zip(g["overlay"], g["picture"])):
            raise Fail(f"overlay {g['overlay']} is not over the displayed picture {g['picture']}")
        ow, oh = g["overlay"][2], g["overlay"][3]
        el = wd.find("#overlay")
        org = {ELEMENT_KEY: el}
        # element-origin offsets are relative to the element's centre
        pts = [(int(round(fx * ow - ow / 2)), int(round(fy * oh - oh / 2)))
               for fx, fy in ((rect[0], rect[1]), ((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2), (rect[2], rect[3]))]
        acts = [{"type": "pointerMove", "duration": 0, "origin": org, "x": pts[0][0], "y": pts[0][1]},
                {"type": "pointerDown", "button": 0}]
        acts += [{"type": "pointerMove", "duration": 80, "origin": org, "x": x, "y": y} for x, y in pts[1:]]
        acts += [{"type": "pointerUp", "button": 0}]
        wd.call("POST", "/actions", {"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                                                  "actions": acts}]})
        wd.call("DELETE", "/actions")
        # the frame-pixel rectangle the drag should have produced
        return [(pts[0][0] + ow / 2) / ow * W, (pts[0][1] + oh / 2) / oh * H,
                (pts[2][0] + ow / 2) / ow * W, (pts[2][1] + oh / 2) / oh * H]

    # 3. manual region with keyframes at two frames -------------------------------------------------
    t0 = time.monotonic()
    f1, f2 = min(10, frames - 1), (40 if frames > 50 else max(0, frames - 10))
    wd.click("#add-box", "the add-box button")
    seek((f1 + 0.5) / fps, f"frame {f1}")
    exp1 = draw(RECT1, "first keyframe")
    n_kf = wd.js("const b = window.veilBuildEdits().boxes; return b.length ? b[b.length - 1].keyframes.length : 0;")
    if n_kf != 1:
        raise Fail(f"drawing on #overlay at frame {f1} gave {n_kf} keyframes, expected 1")
    r2 = seek((f2 + 0.5) / fps, f"frame {f2}")
    if f"frame {f2} " not in r2["clock"] + " ":
        raise Fail(f"page clock says {r2['clock']!r} at {r2['t']:.3f}s, expected frame {f2}")
    exp2 = draw(RECT2, "second keyframe")
    wd.type("#manual-list .region.open .reason", BOX_REASON, "the open region's reason")
    wd.click("#finish-box", "the finish-box button")
    if wd.js("return document.querySelectorAll('#manual-list .region').length;") != 1:
        raise Fail("#manual-list does not list exactly one region after #finish-box")
    timings["draw"] = time.monotonic() - t0

    if args.screenshot:
        time.sleep(0.3)  # let the paused frame and the overlay paint
        Path(args.screenshot).write_bytes(base64.b64decode(wd.call("GET", "/screenshot")))

    # keys , and . step one frame (focus is on a button, not a text input)
    def frame_after(k, want):
        wd.keys(k)
        return poll(f"key {k!r} to step to frame {want}",
                    lambda: wd.js("const v = document.getElementById('red');"
                                  "return !v.seeking && Math.floor(v.currentTime * arguments[0] + 1e-3) === arguments[1]"
                                  " ? v.currentTime : false;", fps, want), 5)
    frame_after(".", f2 + 1)
    frame_after(",", f2)

    # 4. audio span ------------------------------------------------------------------------------
    audio_hidden = wd.js("return document.getElementById('audio-section').offsetParent === null;")
    if has_audio:
        if audio_hidden:
            raise Fail("data says the clip has audio but the audio section is hidden")
        seek(1.0, "audio mark in")
        wd.click("#mark-in", "mark in")
        seek(2.0, "audio mark out")
        wd.click("#mark-out", "mark out")
        wd.click('#audio-action option[value="mute"]', "the 'mute' option")
        wd.type("#audio-reason", AUDIO_REASON, "the audio reason")
        wd.click("#add-audio", "add audio span")
        if wd.js("return document.querySelectorAll('#audio-list li').length;") != 1:
            msg = wd.js("return document.getElementById('audio-msg').textContent;")
            raise Fail(f"#audio-list does not list exactly one span after #add-audio (message: {msg!r})")
    elif not audio_hidden:
        raise Fail("data says the clip has no audio but the audio section is shown")

    # 5. export ----------------------------------------------------------------------------------
    t0 = time.monotonic()
    wd.click("#export", "the export button")

    def downloaded():
        if list(out.glob("*.crdownload")) or not target.is_file():
            return False
        try:
            return {"edits": json.loads(target.read_text(encoding="utf-8"))}
        except ValueError:
            return False  # still being written
    try:
        edits = poll(f"{target} to be downloaded", downloaded, 10, 0.1)["edits"]
    except Fail:
        msg = wd.js("return document.getElementById('export-msg').textContent;")
        raise Fail(f"{target} did not appear within 10s after #export (page says {msg!r}; files in {out}: "
                   f"{sorted(p.name for p in out.iterdir())})") from None
    timings["export"] = time.monotonic() - t0
    last = wd.js("return window.veilLastExport;")
    if not isinstance(last, str) or json.loads(last) != edits:
        raise Fail("downloaded edits.json differs from window.veilLastExport")

    # check edits.json
    def expect(cond, what):
        if not cond:
            raise Fail(f"edits.json: {what}; got {json.dumps(edits)}")
    expect(edits.get("schema") == "veil.edits/1", "schema is not veil.edits/1")
    expect(edits.get("input_sha256") == data.get("input_sha256"), "input_sha256 differs from the page data")
    expect(edits.get("source") == data.get("source"), "source differs from the page data")
    ts = edits.get("tracks")
    expect(isinstance(ts, list) and len(ts) == 1, "expected exactly one track correction")
    expect(str(ts[0].get("id")) == first_id and ts[0].get("action") == "not_sensitive" and ts[0].get("reason") == TRACK_REASON,
           f"track correction should be id {first_id}, not_sensitive, reason {TRACK_REASON!r}")
    bs = edits.get("boxes")
    expect(isinstance(bs, list) and len(bs) == 1, "expected exactly one manual region")
    kfs = bs[0].get("keyframes") or []
    expect(bs[0].get("reason") == BOX_REASON, f"region reason should be {BOX_REASON!r}")
    expect([k.get("frame") for k in kfs] == [f1, f2], f"region keyframes should be at frames {f1} and {f2}")
    for k, exp, quad in ((kfs[0], exp1, "top-left"), (kfs[1], exp2, "bottom-right")):
        vals = [k.get(n) for n in ("x", "y", "w", "h")]
        expect(all(isinstance(v, int) and not isinstance(v, bool) for v in vals), f"keyframe {k} has non-integer coordinates")
        x, y, w, h = vals
        expect(w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= W and y + h <= H, f"keyframe {k} is not inside the {W}x{H} frame")
        cx, cy = x + w / 2, y + h / 2
        in_quad = (cx < W / 2 and cy < H / 2) if quad == "top-left" else (cx > W / 2 and cy > H / 2)
        expect(in_quad, f"keyframe {k} centre ({cx:.0f},{cy:.0f}) is not in the {quad} quadrant")
        err = max(abs(x - exp[0]), abs(y - exp[1]), abs(x + w - exp[2]), abs(y + h - exp[3]))
        expect(err <= max(3, 0.02 * W), f"keyframe {k} is {err:.1f}px from the drawn rectangle "
                                        f"{[round(v) for v in exp]} (x0,y0,x1,y1)")
    au = edits.get("audio")
    if has_audio:
        expect(isinstance(au, list) and len(au) == 1, "expected exactly one audio span")
        a = au[0]
        expect(a.get("action") == "mute" and a.get("reason") == AUDIO_REASON, "audio span should be mute with the typed reason")
        s, e = a.get("start"), a.get("end")
        expect(isinstance(s, (int, float)) and isinstance(e, (int, float)) and abs(s - 1.0) <= 0.1 and abs(e - 2.0) <= 0.1 and s < e,
               "audio span should be 1.0-2.0 s (+-0.1)")
        expect(round(s, 3) == s and round(e, 3) == e, "audio times should have at most 3 decimals")
    else:
        expect(au == [], "expected no audio spans")
    extra = [p.name for p in out.iterdir() if p.name.startswith("edits") and p.name != "edits.json"]
    if extra:
        raise Fail(f"more than one download in {out}: {extra}")

    # 6. no errors -------------------------------------------------------------------------------
    st = wd.js(STATE_JS)
    if st.get("errors"):
        raise Fail(f"JS errors on the page: {st['errors']}")
    if st.get("pwned"):
        raise Fail("a hostile string in the data was executed (window.__pwned is set)")
    check_browser_log(wd)

    timings["total"] = time.monotonic() - t_start
    k1, k2 = kfs
    return (f"chromium {browser_version}; {len(tracks)} tracks ({n_low} low); {video_info}; "
            f"track {first_id} not sensitive; region keyframes f{k1['frame']} {k1['x']},{k1['y']} {k1['w']}x{k1['h']} and "
            f"f{k2['frame']} {k2['x']},{k2['y']} {k2['w']}x{k2['h']}; "
            + (f"audio {au[0]['action']} {au[0]['start']}-{au[0]['end']}s; " if has_audio else "no audio; ")
            + f"{target}; " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
            + (f"; screenshot {args.screenshot}" if args.screenshot else ""))


def add_args(ap):
    ap.add_argument("--out", required=True, metavar="DIR", help="download directory; edits.json lands here")

if __name__ == "__main__":
    main("review-test", __doc__, add_args, run)
