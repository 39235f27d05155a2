//! The detection schedule: faces are detected on keyframes and on crops around their tracks,
//! so a face that enters between two keyframes must still be covered from its first visible
//! frame (look-ahead window, backward following, and the box carried along its motion to the
//! edge), and one that leaves must stay covered until it is gone.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the face is in `fixtures/astronaut.png` (512x512): the sprite cut around it, and the
/// face box inside the sprite.
const SPRITE: (i64, i64, i64, i64) = (160, 40, 130, 160);
const FACE_IN_SPRITE: (i64, i64, i64, i64) = (22, 18, 88, 120);
const W: i64 = 640;
const H: i64 = 360;
const Y: i64 = 100;

/// A still `w`x360 background of coarse random texture (so the camera's shift reads cleanly),
/// written to `dir/name`.
fn background(dir: &Path, name: &str, w: i64) -> PathBuf {
    let bg = dir.join(name);
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("color=gray:s={}x{}", w / 4, H / 4))
        .args([
            "-vf",
            &format!("noise=alls=100:allf=u,scale={w}:{H}:flags=bilinear"),
        ])
        .args(["-frames:v", "1"])
        .arg(&bg)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg could not make the background");
    bg
}

/// A 640x360 30 fps clip of `frames` frames: the astronaut's face crossing a still background
/// of coarse random texture (so the camera reads as still and keyframes are 6 frames apart) at
/// `speed` px/frame (negative: right to left), starting at `x0`.
fn crossing_clip(dir: &Path, name: &str, frames: u32, x0: i64, speed: i64) -> PathBuf {
    let out = dir.join(name);
    let bg = background(dir, "background.png", W);
    let (sx, sy, sw, sh) = SPRITE;
    let filter = format!(
        "[1:v]crop={sw}:{sh}:{sx}:{sy}[s];[0:v][s]overlay=x='{x0}+({speed})*n':y={Y}:eval=frame,format=yuv420p[v]"
    );
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-framerate", "30", "-i"])
        .arg(&bg)
        .arg("-i")
        .arg(fixture("astronaut.png"))
        .args(["-filter_complex", &filter, "-map", "[v]"])
        .args(["-frames:v", &frames.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "12"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg could not make {name}");
    out
}

/// The face box on frame `i`, clipped to the frame, and the share of the face in view.
fn face_at(i: i64, x0: i64, speed: i64) -> ([i64; 4], f64) {
    let (fx, fy, fw, fh) = FACE_IN_SPRITE;
    let x1 = x0 + speed * i + fx;
    let y1 = Y + fy;
    let (cx1, cx2) = (x1.max(0), (x1 + fw).min(W));
    let visible = (cx2 - cx1).max(0) as f64 / fw as f64;
    ([cx1, y1, (cx2 - cx1).max(0), fh], visible)
}

/// Frames where at least a quarter of the face is in view but its visible part is not
/// redacted (the fine detail inside it kept more than half of the original's).
fn leaks(input: &Path, output: &Path, frames: u32, x0: i64, speed: i64) -> Vec<(i64, f64, f64)> {
    let all: BTreeSet<u64> = (0..frames as u64).collect();
    let orig = veil::decode::decode_gray_frames(input, &all).unwrap();
    let out = veil::decode::decode_gray_frames(output, &all).unwrap();
    let mut leaks = Vec::new();
    for i in 0..frames as i64 {
        let (b, visible) = face_at(i, x0, speed);
        if visible < 0.25 {
            continue;
        }
        let r = veil::eval::detail_ratio(&orig[&(i as u64)], &out[&(i as u64)], b);
        if r >= veil::eval::REDACTED_DETAIL_RATIO {
            leaks.push((i, visible, r));
        }
    }
    leaks
}

fn redact(input: &Path, out: &Path, extra: &[&str]) -> String {
    let o = run(veil()
        .args(["redact", "--no-plates", "-v"])
        .args(extra)
        .arg(input)
        .arg("-o")
        .arg(out));
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
}

#[test]
fn a_fast_face_entering_between_keyframes_is_covered_on_every_frame() {
    let d = tempdir();
    // 36 px a frame (a face crossing the picture in 0.6 s), from fully outside on the left: a
    // quarter of the face is in view from frame 2, all of it from frame 3, and on the next
    // keyframe (frame 6: keyframes fall every 6 frames on this still scene) it is 110 px in.
    let (frames, x0, speed) = (24, -130, 36);
    let clip = crossing_clip(d.path(), "enter.mp4", frames, x0, speed);
    let out = d.path().join("enter.out.mp4");
    redact(&clip, &out, &[]);
    let l = leaks(&clip, &out, frames, x0, speed);
    assert!(
        l.is_empty(),
        "face visible on (frame, share in view, detail ratio) {l:?}"
    );
    // The face entered between keyframes: without following back from its first detection,
    // the frames before it leak. (If they did not, this test would not test the schedule.)
    let bare = d.path().join("enter.nofollow.mp4");
    redact(&clip, &bare, &["--follow", "0"]);
    let l = leaks(&clip, &bare, frames, x0, speed);
    assert!(
        !l.is_empty(),
        "the entry was on a keyframe: the test no longer tests the schedule"
    );
}

#[test]
fn a_fast_face_leaving_stays_covered_until_it_is_gone() {
    let d = tempdir();
    // Right to left at 36 px a frame, leaving the frame at the left edge around frame 16.
    let (frames, x0, speed) = (24, 450, -36);
    let clip = crossing_clip(d.path(), "leave.mp4", frames, x0, speed);
    let out = d.path().join("leave.out.mp4");
    redact(&clip, &out, &[]);
    let l = leaks(&clip, &out, frames, x0, speed);
    assert!(
        l.is_empty(),
        "face visible on (frame, share in view, detail ratio) {l:?}"
    );
}

#[test]
fn thorough_detects_faces_on_every_frame() {
    let d = tempdir();
    let clip = crossing_clip(d.path(), "t.mp4", 20, 100, 4);
    let log = redact(&clip, &d.path().join("t.out.mp4"), &["--thorough"]);
    assert!(
        log.contains("passes on 20 frames: 20 face keyframes"),
        "{log}"
    );
}

/// A 640x360 clip of a camera whipping across a 1280x360 picture with the astronaut's face at
/// `face_x` (the sprite's left edge): still on offset 0 for 10 frames, then one frame smeared
/// by a whip (four sub-frame views 60 px apart, averaged, as a shutter open during the move
/// records it), then still on offset 300. Returns the clip and, per frame, the camera's offset
/// at the middle of the exposure.
fn whip_clip(dir: &Path, face_x: i64, back: bool) -> (PathBuf, Vec<i64>) {
    // Four sub-frames a frame: offset 0 before sub-frame 40, 60..240 over sub-frames 40..43
    // (frame 10), 300 after; every frame is the mean of its four. `back`: the camera whips
    // back over sub-frames 56..59 (frame 14) and stays at 0 from frame 15.
    let after = if back {
        "if(lt(n,56),300,if(lt(n,60),300-(n-55)*60,0))"
    } else {
        "300"
    };
    let camera = format!("if(lt(n,40),0,if(lt(n,44),(n-39)*60,{after}))");
    let out = whip_render(dir, "whip.mp4", face_x, &camera, 20);
    let offsets = (0..20).map(|i| match i {
        0..=9 => 0,
        10 => 150,
        14 if back => 150,
        15.. if back => 0,
        _ => 300,
    });
    (out, offsets.collect())
}

/// Redacts a whip clip (see [`whip_clip`]) and asserts that the face is covered on every frame
/// where a quarter of it is in view, and on each of the `smeared` frames over every 30-px strip
/// of the span its ghosts cover (0..250).
fn assert_whip_covered(back: bool, smeared: &[usize]) {
    let d = tempdir();
    let (clip, offsets) = whip_clip(d.path(), 200, back);
    let out = d.path().join("whip.out.mp4");
    redact(&clip, &out, &[]);
    let all: BTreeSet<u64> = (0..20).collect();
    let orig = veil::decode::decode_gray_frames(&clip, &all).unwrap();
    let red = veil::decode::decode_gray_frames(&out, &all).unwrap();
    let (fx, fy, fw, fh) = FACE_IN_SPRITE;
    let mut boxes: Vec<(usize, [i64; 4])> = Vec::new();
    for (i, off) in offsets.iter().enumerate() {
        let x1 = 200 + fx - off;
        let (cx1, cx2) = (x1.max(0), (x1 + fw).min(W));
        if (cx2 - cx1) * 4 >= fw {
            boxes.push((i, [cx1, Y + fy, cx2 - cx1, fh]));
        }
    }
    for &i in smeared {
        boxes.extend(
            (0..250)
                .step_by(30)
                .map(|x| (i, [x, Y + fy, 30.min(250 - x), fh])),
        );
    }
    let leaks: Vec<_> = boxes
        .into_iter()
        .map(|(i, b)| {
            (
                i,
                b,
                veil::eval::detail_ratio(&orig[&(i as u64)], &red[&(i as u64)], b),
            )
        })
        .filter(|l| l.2 >= veil::eval::REDACTED_DETAIL_RATIO)
        .collect();
    assert!(
        leaks.is_empty(),
        "face visible on (frame, box, detail ratio) {leaks:?}"
    );
}

/// A 640x360 clip that begins in a whip: frame 0 is smeared (four sub-frame views 60..240 px
/// along a 1280x360 picture with the astronaut's face at x 200, averaged), the camera is
/// still at 300 from frame 1 on, with the face out of view.
fn whip_first_clip(dir: &Path) -> PathBuf {
    whip_render(dir, "whip-first.mp4", 200, "if(lt(n,4),(n+1)*60,300)", 12)
}

/// Renders `frames` 640x360 frames of a camera over a 1280x360 picture with the astronaut's
/// face at `face_x`, at 120 sub-frames a second with the camera's offset `camera` (an ffmpeg
/// expression of the sub-frame `n`), each frame the mean of its four sub-frames (a shutter open
/// while the camera moves), into `dir/name`.
fn whip_render(dir: &Path, name: &str, face_x: i64, camera: &str, frames: u32) -> PathBuf {
    let out = dir.join(name);
    let bg = background(dir, "wide.png", 2 * W);
    let (sx, sy, sw, sh) = SPRITE;
    let filter = format!(
        "[1:v]crop={sw}:{sh}:{sx}:{sy}[s];[0:v][s]overlay=x={face_x}:y={Y},fps=120,\
         crop={W}:{H}:x='{camera}':y=0,\
         tmix=frames=4,select='eq(mod(n,4),3)',setpts=N/30/TB,format=yuv420p[v]"
    );
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-framerate", "30", "-i"])
        .arg(&bg)
        .arg("-i")
        .arg(fixture("astronaut.png"))
        .args(["-filter_complex", &filter, "-map", "[v]", "-r", "30"])
        .args(["-frames:v", &frames.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "12"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg could not make {name}");
    out
}

#[test]
fn a_video_that_begins_in_a_whip_has_its_smeared_first_frame_covered() {
    // The face's four ghosts lie at 162, 102, 42 and -18 (88 px wide each) on frame 0 and it
    // is never seen again: no frame before or after places it, so frame 0 is redacted whole.
    let d = tempdir();
    let clip = whip_first_clip(d.path());
    let out = d.path().join("whip-first.out.mp4");
    let log = redact(&clip, &out, &[]);
    assert!(log.contains("redacted whole"), "{log}");
    let first: BTreeSet<u64> = [0, 1].into();
    let orig = veil::decode::decode_gray_frames(&clip, &first).unwrap();
    let red = veil::decode::decode_gray_frames(&out, &first).unwrap();
    let (_, fy, _, fh) = FACE_IN_SPRITE;
    for x in (0..250).step_by(30) {
        let b = [x, Y + fy, 30.min(250 - x), fh];
        let r = veil::eval::detail_ratio(&orig[&0], &red[&0], b);
        assert!(r < veil::eval::REDACTED_DETAIL_RATIO, "frame 0 {b:?}: {r}");
    }
    // Frame 1 is sharp and still: its picture is kept.
    let r = veil::eval::detail_ratio(&orig[&1], &red[&1], [0, 0, W, H]);
    assert!(r > 0.9, "frame 1 kept {r}");
    // A steady video keeps both its ends.
    let steady = crossing_clip(d.path(), "steady.mp4", 12, 200, 0);
    let log = redact(&steady, &d.path().join("steady.out.mp4"), &[]);
    assert!(!log.contains("redacted whole"), "{log}");
}

#[test]
fn a_face_a_whip_takes_out_of_the_frame_is_covered_on_the_smeared_frame() {
    // The face is at x 222..310 before the whip; on the smeared frame its four ghosts lie
    // at 162, 102, 42 and -18 (88 px wide each), and after it the face is out of view
    // (-78..10). No detector finds a face smeared over 240 px: the frames either side, and
    // the camera's move across the smear measured between them, must place it.
    assert_whip_covered(false, &[10]);
}

#[test]
fn a_face_a_whip_takes_out_of_the_frame_and_back_is_covered_on_both_smeared_frames() {
    // The same whip, and 3 frames later one back: the face is found before and after, and
    // the track's gap between is filled where it was in the picture, not where the whips
    // took it (out of view). The smeared frames must still be covered along the move.
    assert_whip_covered(true, &[10, 14]);
}
