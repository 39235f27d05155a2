//! The detect stage: detection, tracking, following and redaction of one video, on the thread
//! between decode and encode. Frames wait in a look-ahead window until every detection that
//! could touch them is known; only then are they redacted and sent on.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

use ffmpeg::{frame, Packet};
use ffmpeg_next as ffmpeg;

use super::{passes, PassCounts, StageTiming, PLATE_FIRST_ID};
use crate::audit::{DamagedSpan, Discontinuity, TrackLog, TrackRecord, WholeFrame};
use crate::decode::RgbScaler;
use crate::detect::{BBox, Class, Detectors};
use crate::error::{Result, Stage, VeilError};
use crate::highlights::Analyzer;
use crate::job::Job;
use crate::motion::FrameMotion;
use crate::options::ResolvedOptions;
use crate::progress::ProgressFn;
use crate::rerender::FrameBoxes;
use crate::schedule::Scheduler;
use crate::track::Tracker;

#[path = "stage_camera.rs"]
mod camera;

/// What the decode thread sends.
pub(super) enum DecMsg {
    Frame {
        frame: frame::Video,
        pts: Option<i64>,
        corrupt: bool,
        /// The camera's motion onto this frame, measured once for following and highlights.
        motion: FrameMotion,
    },
    /// A packet of a stream copied to the output.
    Packet(usize, Packet),
    /// A packet of the stream the highlights analyser listens to (`veil process`).
    Tap(Packet),
    Damaged {
        pts: Option<i64>,
        reason: String,
    },
}

/// What the encode thread takes: a final frame with its pts, duration and the regions still
/// to redact in it, or a copied packet.
pub(super) enum EncMsg {
    Frame {
        frame: frame::Video,
        pts: i64,
        duration: i64,
        regions: Vec<(Class, BBox)>,
    },
    Packet(usize, Packet),
}

/// What the stage reports when the encode thread stopped taking frames: a symptom, whose cause
/// is the encode thread's own error.
pub(super) const ENCODER_GONE: &str = "encoder stopped early";

/// Where a run's boxes come from.
pub enum BoxSource<'d> {
    /// The detectors, with tracking and following.
    Detect(&'d mut Detectors),
    /// The boxes of an earlier run's audit record (a re-render with a reviewer's edits).
    Replay(&'d FrameBoxes),
}

/// A decoded frame waiting for its boxes to become final.
struct Pending {
    index: u64,
    pts: i64,
    frame: frame::Video,
}

/// What the stage hands back when the stream ends.
pub(super) struct StageResult {
    pub frames_in: u64,
    pub frames_out: u64,
    pub redacted_frames: u64,
    pub damaged: Vec<DamagedSpan>,
    pub fixups: u64,
    pub discontinuities: Vec<Discontinuity>,
    pub whole_frames: Vec<WholeFrame>,
    pub tracks: Vec<TrackRecord>,
    pub timing: StageTiming,
    pub counts: PassCounts,
    pub thumbs: HashMap<u32, Vec<String>>,
}

/// Where the stage sends its frames, and who watches.
pub(super) struct Sinks<'a> {
    pub enc: SyncSender<EncMsg>,
    pub tap: Option<&'a mut Analyzer>,
    pub progress: Option<ProgressFn<'a>>,
    pub total: Option<u64>,
}

/// Detection, tracking and redaction for one video.
pub(super) struct DetectStage<'a> {
    opts: &'a ResolvedOptions,
    source: BoxSource<'a>,
    sinks: Sinks<'a>,
    job: &'a Job,
    w: usize,
    h: usize,
    /// Stream time base, in seconds per tick.
    tb: f64,
    /// Clockwise quarter turns from the stored frame to the upright picture.
    turn: u32,
    faces: Tracker,
    plates: Tracker,
    scaler: RgbScaler,
    scratch: Vec<u8>,
    log: TrackLog,
    /// Review-page thumbnails per track: (frame of the last one, data URIs).
    thumbs: HashMap<u32, (u64, Vec<String>)>,
    timing: StageTiming,
    /// Per recent frame, the camera's shift onto it from the frame before, in pixels.
    shifts: VecDeque<(u64, (f32, f32))>,
    /// Frames just past a smeared one whose shift in `shifts` carries the rest of the move
    /// across the smear: the shift measured onto each, which is what smeared it.
    measured: std::collections::BTreeMap<u64, (f32, f32)>,
    /// Frames onto which no camera shift explains the change (see [`unexplained`]).
    blind: VecDeque<u64>,
    /// The ends of the video that are smeared with no sharp frame beyond them (see
    /// `motion_cover`): redacted whole.
    ends: camera::BlindEnds,
    /// Where the camera jolted (boxes not detected there reach along the jolt).
    jolts: camera::Jolts,
    /// Bands along the frame's edge where objects were last seen while the camera shakes.
    guards: super::edge_guard::EdgeGuards,
    /// (frame, track id) of boxes carried by the camera's shift alone: redacted, but the track
    /// counts as lost there (a crop looks for it, and the next frame is a keyframe).
    carried: std::collections::BTreeSet<(u64, u32)>,
    /// Tracks carried by the camera alone, confirmed or let go by their detector's next pass.
    unsure: camera::Unsure,
    last_sharpness: f32,
    /// The sharpness of the frame before that.
    sharpness_before: f32,
    window: VecDeque<Pending>,
    lookahead: usize,
    scheduler: Scheduler,
    /// A face track was lost on the last frame (the next one is a keyframe).
    lost: bool,
    last_key: Option<u64>,
    last_plate: Option<u64>,
    /// The next tile a plate sample looks at in turn.
    tile_next: usize,
    counts: PassCounts,
    next_index: u64,
    last_pts: Option<i64>,
    last_dur: i64,
    fixups: u64,
    /// Added to the input's timestamps since the last backward jump.
    pts_offset: i64,
    discontinuities: Vec<Discontinuity>,
    whole_frames: Vec<WholeFrame>,
    damaged: Vec<DamagedSpan>,
    out_frames: u64,
    redacted: u64,
}

/// Frame geometry and timing of the video the stage works on.
pub(super) struct Geometry {
    pub w: usize,
    pub h: usize,
    pub tb: f64,
    pub turn: u32,
    /// One frame's duration in time-base ticks (for frames without a timestamp).
    pub default_dur: i64,
    pub fps: f64,
}

impl<'a> DetectStage<'a> {
    pub fn new(
        opts: &'a ResolvedOptions,
        source: BoxSource<'a>,
        sinks: Sinks<'a>,
        job: &'a Job,
        geo: Geometry,
    ) -> Self {
        let (fw, fh) = (geo.w as f32, geo.h as f32);
        let faces = Tracker::new(opts.opts.track).with_frame(fw, fh);
        let plates = Tracker::with_first_id(opts.plate_track, PLATE_FIRST_ID).with_frame(fw, fh);
        let lookahead = {
            let (f, p) = (faces.config(), plates.config());
            [
                f.max_gap + 1,
                f.extend_before,
                p.max_gap + 1,
                p.extend_before,
                // A face first detected on a keyframe is followed back to the keyframe before.
                opts.cadence.key + 1,
            ]
            .into_iter()
            .max()
            .unwrap_or(1) as usize
        };
        tracing::debug!(
            lookahead,
            plate_every = opts.opts.plate_every,
            "detect stage"
        );
        DetectStage {
            opts,
            source,
            sinks,
            job,
            w: geo.w,
            h: geo.h,
            tb: geo.tb,
            turn: geo.turn,
            faces,
            plates,
            scaler: RgbScaler::default(),
            scratch: Vec::new(),
            log: TrackLog::default(),
            thumbs: HashMap::new(),
            timing: StageTiming::default(),
            shifts: VecDeque::new(),
            measured: Default::default(),
            blind: VecDeque::new(),
            ends: Default::default(),
            jolts: Default::default(),
            guards: super::edge_guard::EdgeGuards::new(geo.w, geo.h, geo.fps),
            carried: Default::default(),
            unsure: Default::default(),
            last_sharpness: 0.0,
            sharpness_before: 0.0,
            window: VecDeque::new(),
            lookahead,
            scheduler: Scheduler::new(opts.cadence, geo.fps),
            lost: false,
            last_key: None,
            last_plate: None,
            tile_next: 0,
            counts: PassCounts::default(),
            next_index: 0,
            last_pts: None,
            last_dur: geo.default_dur,
            fixups: 0,
            pts_offset: 0,
            discontinuities: Vec::new(),
            whole_frames: Vec::new(),
            damaged: Vec::new(),
            out_frames: 0,
            redacted: 0,
        }
    }

    fn when(&self, pts: i64) -> String {
        crate::util::format_time(pts as f64 * self.tb)
    }

    fn enc_closed() -> VeilError {
        VeilError::ffmpeg("encode", ENCODER_GONE)
    }

    /// Runs the stage until the decode thread hangs up, then finishes the window.
    pub fn run(mut self, rx: Receiver<Result<DecMsg>>) -> Result<StageResult> {
        let mut wait = Instant::now();
        while let Ok(msg) = rx.recv() {
            self.timing.wait_decode_s += wait.elapsed().as_secs_f64();
            self.job.check()?;
            self.on_message(msg?)?;
            wait = Instant::now();
        }
        self.finish()
    }

    fn on_message(&mut self, msg: DecMsg) -> Result<()> {
        match msg {
            DecMsg::Packet(si, p) => self
                .sinks
                .enc
                .send(EncMsg::Packet(si, p))
                .map_err(|_| Self::enc_closed()),
            DecMsg::Tap(p) => match self.sinks.tap.as_deref_mut() {
                Some(a) => a.push_audio_packet(&p),
                None => Ok(()),
            },
            DecMsg::Damaged { pts, reason } => {
                self.damaged.push(DamagedSpan {
                    before_frame: self.next_index,
                    // Without a timestamp of its own, the damage is placed after the last frame.
                    time_s: pts
                        .or(self.last_pts)
                        .map(|p| p as f64 * self.tb)
                        .unwrap_or(0.0)
                        .max(0.0),
                    reason,
                });
                Ok(())
            }
            DecMsg::Frame {
                frame,
                pts,
                corrupt,
                motion,
            } => self.on_frame(frame, pts, corrupt, motion),
        }
    }

    fn on_frame(
        &mut self,
        f: frame::Video,
        raw_pts: Option<i64>,
        corrupt: bool,
        mut motion: FrameMotion,
    ) -> Result<()> {
        let index = self.next_index;
        self.next_index += 1;
        if corrupt {
            self.damaged.push(DamagedSpan {
                before_frame: index,
                time_s: raw_pts.map(|p| p as f64 * self.tb).unwrap_or(0.0),
                reason: "frame decoded with errors (concealed); redacted as decoded".into(),
            });
        }
        // A timestamp more than a frame behind the last one is a discontinuity (segments
        // joined end to end), not a stream of frames to squeeze into one tick each: the frames
        // from here on move forward by the jump, so the segment keeps its duration.
        if let (Some(raw), Some(last)) = (raw_pts, self.last_pts) {
            let raw = raw.saturating_add(self.pts_offset);
            if raw.saturating_add(self.last_dur) < last {
                let shift = last.saturating_add(self.last_dur) - raw;
                self.pts_offset = self.pts_offset.saturating_add(shift);
                self.discontinuities.push(Discontinuity {
                    before_frame: index,
                    time_s: raw as f64 * self.tb,
                    shift_s: shift as f64 * self.tb,
                });
            }
        }
        let raw_pts = raw_pts.map(|p| p.saturating_add(self.pts_offset));
        let (pts, fixed) = next_pts(raw_pts, self.last_pts, self.last_dur);
        self.fixups += fixed as u64;
        self.last_pts = Some(pts);
        let tb = self.tb;
        let at = |e: VeilError, stage| {
            e.at_frame(index, crate::util::format_time(pts as f64 * tb), stage)
        };
        if let Some(a) = self.sinks.tap.as_deref_mut() {
            motion.t = a.video_time(pts);
            a.push_motion(motion);
        }
        self.record_shift(index, &motion);
        self.follow_forward(index, &f);
        if let Err(e) = self.detect(&f, index, &motion) {
            return Err(at(e, Stage::Detect));
        }
        self.follow_back(index, &f, self.window.len());
        self.window.push_back(Pending {
            index,
            pts,
            frame: f,
        });
        self.flush(self.lookahead)?;
        // Retire tracks that can no longer reach unfinished frames.
        if let Some(front) = self.window.front() {
            let front = front.index;
            self.unsure.forget_before(front);
            for t in self
                .faces
                .retire_before(front)
                .into_iter()
                .chain(self.plates.retire_before(front))
            {
                self.unsure.retire(t.id);
                self.log
                    .set_detections(t.id, t.dets.len() as u64, t.max_score());
            }
        }
        Ok(())
    }

    /// The end of the stream: the last frame's plate pass, then every frame left.
    fn finish(mut self) -> Result<StageResult> {
        // The detectors must also see the last frame, so nothing that appeared after the last
        // keyframe or plate sample goes unseen at the end.
        let last = self.window.back().map(|b| (b.index, b.pts));
        self.ends.ended(last.map(|l| l.0), &self.blind);
        if let (Some((index, pts)), BoxSource::Detect(_)) = (last, &self.source) {
            let faces = self.last_key != Some(index);
            let plates = self.opts.cadence.plate > 0 && self.last_plate != Some(index);
            if faces || plates {
                let back = self.window.pop_back().expect("window has a last frame");
                let mut res = Ok(());
                if faces {
                    res = self.detect_faces(&back.frame, index, false);
                }
                if plates && res.is_ok() {
                    let every = passes::Turns {
                        all: true,
                        whole_side: None,
                    };
                    res = self.detect_plates(&back.frame, index, every, false);
                }
                let n = self.window.len();
                // New tracks there are followed back into the frames before it.
                self.follow_back(index, &back.frame, n);
                self.window.push_back(back);
                res.map_err(|e| e.at_frame(index, self.when(pts), Stage::Detect))?;
            }
        }
        self.flush(0)?;
        let remaining = std::mem::take(&mut self.faces)
            .into_tracks()
            .into_iter()
            .chain(std::mem::take(&mut self.plates).into_tracks());
        for t in remaining {
            self.log
                .set_detections(t.id, t.dets.len() as u64, t.max_score());
        }
        if self.next_index == 0 {
            return Err(VeilError::Damaged("no video frame could be decoded".into()));
        }
        Ok(StageResult {
            frames_in: self.next_index,
            frames_out: self.out_frames,
            redacted_frames: self.redacted,
            damaged: self.damaged,
            fixups: self.fixups,
            discontinuities: self.discontinuities,
            whole_frames: self.whole_frames,
            tracks: self.log.into_records(),
            thumbs: self
                .thumbs
                .into_iter()
                .map(|(id, (_, v))| (id, v))
                .collect(),
            timing: self.timing,
            counts: self.counts,
        })
    }

    /// Redacts and sends on every frame but the last `keep` of the window.
    fn flush(&mut self, keep: usize) -> Result<()> {
        while self.window.len() > keep {
            let mut p = self.window.pop_front().expect("len checked");
            let dur = self
                .window
                .front()
                .map(|n| n.pts - p.pts)
                .unwrap_or(self.last_dur)
                .max(1);
            self.last_dur = dur;
            let t0 = Instant::now();
            let regions = self.finalise(&p);
            self.redacted += !regions.is_empty() as u64;
            // The encode thread redacts (off this thread, which detection keeps busy), except
            // a frame a highlights thumbnail is taken from: thumbnails come from the redacted
            // picture, never the original.
            let thumb_at = self.sinks.tap.as_deref().and_then(|a| {
                let t = a.video_time(p.pts);
                a.wants_thumb(t).then_some(t)
            });
            let regions = match thumb_at {
                Some(t) => {
                    redact_in_place(
                        &mut p.frame,
                        &regions,
                        &self.opts.opts.redact,
                        &mut self.scratch,
                    )
                    .map_err(|e| e.at_frame(p.index, self.when(p.pts), Stage::Redact))?;
                    let a = self
                        .sinks
                        .tap
                        .as_deref_mut()
                        .expect("a thumbnail needs the analyser");
                    a.push_thumb(&p.frame, t).map_err(|e| {
                        e.at_frame(
                            p.index,
                            crate::util::format_time(p.pts as f64 * self.tb),
                            Stage::Highlights,
                        )
                    })?;
                    Vec::new()
                }
                None => regions,
            };
            let t1 = Instant::now();
            self.timing.redact_s += (t1 - t0).as_secs_f64();
            self.sinks
                .enc
                .send(EncMsg::Frame {
                    frame: p.frame,
                    pts: p.pts,
                    duration: dur,
                    regions,
                })
                .map_err(|_| Self::enc_closed())?;
            self.timing.wait_encode_s += t1.elapsed().as_secs_f64();
            self.out_frames += 1;
            if let Some(cb) = self.sinks.progress {
                cb(self.out_frames, self.sinks.total);
            }
        }
        Ok(())
    }

    /// Runs the passes the scheduler asks for on frame `index`.
    fn detect(&mut self, f: &frame::Video, index: u64, motion: &FrameMotion) -> Result<()> {
        if let BoxSource::Replay(_) = self.source {
            return Ok(());
        }
        let p = self.scheduler.plan(motion, self.lost);
        tracing::trace!(
            index,
            key = p.key,
            crops = p.crops,
            plates = p.plates,
            lost = self.lost,
            speed = motion.dx.hypot(motion.dy),
            conf = motion.confidence,
            diff = motion.diff,
            "plan"
        );
        self.counts.frames += 1;
        if p.key {
            self.detect_faces(f, index, p.hires)?;
            self.settle_carried(index, motion, Class::Face);
        } else if p.crops {
            self.detect_face_crops(f, index)?;
        } else {
            self.faces.update(index, Class::Face, &[]);
        }
        // A face track seen on the frame before and found neither by following nor by a
        // detection here is lost: the next frame is a keyframe.
        let carried = &self.carried;
        self.lost = self.faces.tracks_mut().iter().any(|t| {
            index > 0
                && t.seen_at(index - 1).is_some()
                && (t.seen_at(index).is_none() || carried.contains(&(index, t.id)))
        });
        if p.plates {
            let turns = passes::Turns {
                all: p.all_turns,
                whole_side: p.whole_side,
            };
            self.detect_plates(f, index, turns, p.new_scene)?;
            self.settle_carried(index, motion, Class::Plate);
        }
        Ok(())
    }

    /// After a pass of `class`'s detector over the whole of frame `index`: the carried tracks
    /// it did not find are let go, if large enough at that pass's scale (see `camera::Unsure`).
    fn settle_carried(&mut self, index: u64, motion: &FrameMotion, class: Class) {
        let BoxSource::Detect(dets) = &self.source else {
            return;
        };
        let (det, target_long, min_px, tracks) = match (class, &dets.plate) {
            (Class::Plate, Some(plate)) => {
                (plate, 0, camera::PLATE_CONFIRM_MIN_PX, &mut self.plates)
            }
            (Class::Plate, None) => return,
            _ => (
                &dets.face,
                self.opts.opts.detect_size,
                camera::CONFIRM_MIN_PX,
                &mut self.faces,
            ),
        };
        let (iw, ih) = det.input_size(self.w, self.h, target_long);
        let scale = (iw.max(ih) as f32 / self.w.max(self.h).max(1) as f32).min(1.0);
        let sharp = !self.blind.contains(&index);
        let min_height = min_px / scale;
        let (missed, trusted) = self
            .unsure
            .after_pass(tracks, index, (motion, sharp), min_height);
        self.unsure
            .pass(class, index, trusted.then_some(min_height));
        for t in tracks.tracks_mut() {
            if missed.contains(&t.id) {
                t.absent.insert(index);
            }
        }
    }

    /// The full-frame face passes (a keyframe).
    fn detect_faces(&mut self, f: &frame::Video, index: u64, hires: bool) -> Result<()> {
        let BoxSource::Detect(dets) = &mut self.source else {
            return Ok(());
        };
        let t0 = Instant::now();
        let found = passes::faces_full(
            &mut dets.face,
            f,
            &self.opts.opts,
            self.turn,
            hires,
            &mut self.scaler,
        )?;
        self.faces.update(index, Class::Face, &found);
        self.last_key = Some(index);
        self.counts.keys += 1;
        self.counts.hires += hires as u64;
        self.timing.face_detect_s += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// Faces on crops around the face tracks that following lost on this frame: where each
    /// was on the frame before, moved with the camera. (Following carries the others; the
    /// next keyframe refreshes them.)
    fn detect_face_crops(&mut self, f: &frame::Video, index: u64) -> Result<()> {
        let BoxSource::Detect(dets) = &mut self.source else {
            return Ok(());
        };
        // `shift_at`, inlined: `self.source` is borrowed mutably above.
        let hint = self
            .shifts
            .iter()
            .rev()
            .find(|s| s.0 == index)
            .map(|s| s.1)
            .unwrap_or((0.0, 0.0));
        let boxes: Vec<BBox> = self
            .faces
            .tracks_mut()
            .iter()
            .filter(|t| t.seen_at(index).is_none() || self.carried.contains(&(index, t.id)))
            .filter_map(|t| {
                t.seen_at(index.checked_sub(1)?)
                    .map(|b| b.map(1.0, 1.0, hint.0, hint.1))
            })
            .collect();
        let t0 = Instant::now();
        let found = if boxes.is_empty() {
            Vec::new()
        } else {
            passes::faces_around(&mut dets.face, f, &boxes, self.turn, self.opts.opts.thresh)?
        };
        self.faces.update(index, Class::Face, &found);
        self.counts.crops += boxes.len() as u64;
        self.timing.face_detect_s += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// The plate model on the whole frame, plus overlapping tiles on large frames.
    fn detect_plates(
        &mut self,
        f: &frame::Video,
        index: u64,
        turns: passes::Turns,
        all_tiles: bool,
    ) -> Result<()> {
        let all_turns = turns.all;
        let BoxSource::Detect(dets) = &mut self.source else {
            return Ok(());
        };
        let long = f.width().max(f.height()) as usize;
        if crate::detect::views::needs_tiles(long, self.opts.opts.plate_tile) {
            dets.open_plate_pair()?;
        }
        let Some(pd) = dets.plate.as_mut() else {
            return Ok(());
        };
        let pair = dets.plate_pair.as_mut();
        let t0 = Instant::now();
        let per_sample = self.opts.opts.plate_tiles as usize;
        let tiles = if per_sample == 0 || all_tiles {
            passes::Tiles::All
        } else {
            passes::Tiles::Some {
                start: self.tile_next,
                count: per_sample,
            }
        };
        let (mut found, looked, candidates, side_by_side) = passes::plates(
            (pd, pair),
            f,
            &self.opts.opts,
            self.turn,
            turns,
            tiles,
            &mut self.scaler,
        )?;
        // A face box rules plates out only if its face is sure: found on this frame, or its
        // track once found with a score of `SURE_FACE` or more. A doubtful face held or
        // followed here may be a car's grille or the ghost of a plate's characters.
        let sure: Vec<&crate::track::Track> = (self.faces.tracks().iter())
            .filter(|t| t.detected_at(index) || t.max_score() >= passes::SURE_FACE)
            .collect();
        let faces: Vec<BBox> = (self.faces.boxes_at(index).iter())
            .filter(|b| sure.iter().any(|t| t.id == b.0))
            .map(|b| b.2)
            .collect();
        // For the height rule, those found on this frame or followed here (not those carried
        // by the camera's shift, which may have drifted onto the background).
        let detected: Vec<BBox> = (sure.iter())
            .filter(|t| t.detected_at(index) || !self.carried.contains(&(index, t.id)))
            .filter_map(|t| t.seen_at(index))
            .collect();
        passes::keep_plausible(&mut found, f, &faces, &detected);
        let found = crate::detect::tighten_plates(found);
        self.tile_next += per_sample;
        tracing::trace!(
            index,
            all_turns,
            looked,
            found = ?found.iter().map(|d| (d.bbox.to_xywh_i32(), d.score)).collect::<Vec<_>>(),
            "plates"
        );
        self.plates.update(index, Class::Plate, &found);
        let seen = candidates > 0 || !self.plates.boxes_at(index).is_empty();
        self.scheduler.plates_seen(seen);
        self.last_plate = Some(index);
        self.counts.plate_samples += 1;
        self.counts.plate_tiles += looked as u64;
        self.counts.all_turns += all_turns as u64;
        self.counts.side_by_side += side_by_side as u64;
        self.timing.plate_detect_s += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// Every box to redact on frame `index`: (track id, class, box).
    fn boxes_at(&self, index: u64) -> Vec<(u32, Class, BBox)> {
        let mut boxes = match &self.source {
            BoxSource::Replay(replay) => replay.get(&index).cloned().unwrap_or_default(),
            BoxSource::Detect(_) => {
                let carry = |a: u64, b: u64| self.carry(a, b);
                let mut b = self.faces.boxes_carried(index, &carry);
                b.extend(self.plates.boxes_carried(index, &carry));
                b
            }
        };
        if let Some(plan) = &self.opts.opts.edits {
            boxes.retain(|(id, _, _)| !plan.suppressed.contains(id));
            boxes.extend(plan.manual_at(index));
        }
        boxes
    }

    /// The final boxes of a frame leaving the window: logged for the audit record, with the
    /// reviewer's thumbnails cut from the unredacted picture; returns the regions to redact.
    fn finalise(&mut self, p: &Pending) -> Vec<(Class, BBox)> {
        let boxes = self.boxes_at(p.index);
        for (id, _, b) in &boxes {
            let e = self.thumbs.entry(*id).or_insert((0, Vec::new()));
            if e.1.len() < crate::review::THUMBS_PER_TRACK
                && (e.1.is_empty() || p.index >= e.0 + crate::review::THUMB_EVERY)
            {
                if let Some(t) = crate::review::crop_thumb(&p.frame, b) {
                    e.0 = p.index;
                    e.1.push(t);
                }
            }
        }
        let time_s = p.pts as f64 * self.tb;
        for (id, class, b) in &boxes {
            self.log.add(*id, *class, p.index, time_s, b.to_xywh_i32());
        }
        let grown = self.motion_cover(p.index, boxes);
        if grown.iter().any(|g| g.0 == camera::WHOLE_FRAME) {
            self.whole_frames.push(WholeFrame {
                frame: p.index,
                time_s: time_s.max(0.0),
                reason: camera::WHOLE_FRAME_REASON.into(),
            });
        }
        crate::redact::merge_overlaps(&grown)
    }
}

/// Redacts `regions` of a decoded frame in place (making its buffers its own first, as the
/// decoder may still reference them).
pub(super) fn redact_in_place(
    f: &mut frame::Video,
    regions: &[(Class, BBox)],
    cfg: &crate::redact::RedactConfig,
    scratch: &mut Vec<u8>,
) -> Result<()> {
    if regions.is_empty() {
        return Ok(());
    }
    crate::decode::make_writable(f)?;
    crate::redact::redact_frame(f, regions, cfg, scratch);
    Ok(())
}

/// The timestamp a frame is encoded with: its own when it is later than the previous one;
/// one duration after the previous when it has none; one tick after the previous when it does
/// not increase (an encoder needs strictly increasing timestamps). Returns whether it was moved.
pub fn next_pts(raw: Option<i64>, prev: Option<i64>, last_dur: i64) -> (i64, bool) {
    match (raw, prev) {
        (None, None) => (0, false),
        (None, Some(l)) => (l.saturating_add(last_dur.max(1)), false),
        (Some(p), Some(l)) if p <= l => (l.saturating_add(1), true),
        (Some(p), _) => (p, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Encoded timestamps always increase, and equal the input's whenever it increases.
        #[test]
        fn timestamps_strictly_increase(raw in proptest::collection::vec(proptest::option::of(-1000i64..1000), 1..200), dur in 1i64..100) {
            let mut prev: Option<i64> = None;
            for r in raw {
                let (p, fixed) = next_pts(r, prev, dur);
                if let Some(l) = prev {
                    proptest::prop_assert!(p > l);
                }
                if let (Some(r), Some(l)) = (r, prev) {
                    proptest::prop_assert_eq!(fixed, r <= l);
                    if r > l {
                        proptest::prop_assert_eq!(p, r);
                    }
                }
                prev = Some(p);
            }
        }
    }
}
