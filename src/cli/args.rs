//! The command line: clap's argument structs and their translation into library options.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use veil::accel::Device;
use veil::job::{Job, ThreadBudget};
use veil::redact::{Shape, Style};
use veil::RedactOptions;

#[derive(Parser)]
#[command(name = "veil", version, about = "Redact faces and licence plates in body-worn camera footage", long_about = None)]
pub struct Cli {
    /// Log more (repeat for debug output).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Redact every face and plate in a video or image, with an audit record beside the output.
    Redact(RedactArgs),
    /// List the models in the manifest, their licences and whether they are installed.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure redaction recall on labelled media (labels/*.gt.json as in shared/data).
    Eval(EvalArgs),
    /// Redact a folder (recursively) or a manifest of paths into OUTDIR, resumably, in parallel.
    Batch(BatchArgs),
    /// Find escalation highlights (shouting, bangs, struggle, running, rising tension) and
    /// write highlights.json, highlights.vtt and review.html into DIR.
    Highlights(HighlightsArgs),
    /// Redact and find highlights in one decode: DIR gets the redacted video, its audit
    /// record, highlights.json, highlights.vtt and review.html.
    Process(ProcessArgs),
    /// Score highlights on clips with known event times (an index.json as written by
    /// scripts/make-event-clips.sh).
    EvalHighlights(EvalHighlightsArgs),
}

#[derive(Args, Clone)]
pub struct HlArgs {
    /// 0..1: higher finds more moments (and more false alarms).
    #[arg(long, default_value_t = 0.5)]
    pub sensitivity: f32,
    /// Skip the voice-activity model (speech presence is then guessed from pitch).
    #[arg(long)]
    pub no_vad: bool,
    /// An extra ONNX signal, PATH:KIND[:CLASS]: a model taking 1 s of 16 kHz mono audio
    /// [1,16000] and returning scores [1,C]; column CLASS feeds highlights of KIND.
    #[arg(long)]
    pub signal_model: Option<String>,
}

impl HlArgs {
    pub fn to_options(&self) -> veil::Result<veil::highlights::HighlightOptions> {
        Ok(veil::highlights::HighlightOptions {
            sensitivity: self.sensitivity,
            threads: 1,
            vad: !self.no_vad,
            extra: self
                .signal_model
                .as_deref()
                .map(veil::highlights::extra::ExtraSignal::parse)
                .transpose()?,
        })
    }
}

#[derive(Args)]
pub struct HighlightsArgs {
    /// Input video.
    pub input: PathBuf,
    /// Output folder.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub hl: HlArgs,
    /// Print highlights.json on stdout too.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ProcessArgs {
    /// Input video.
    pub input: PathBuf,
    /// Output folder.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub hl: HlArgs,
    #[command(flatten)]
    pub opts: OptArgs,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EvalHighlightsArgs {
    /// Folder holding index.json and the clips it names.
    pub dir: PathBuf,
    /// Onset tolerance in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub tolerance: f64,
    #[command(flatten)]
    pub hl: HlArgs,
    /// Print JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BatchArgs {
    /// A folder of media (searched recursively) or a manifest file with one path per line.
    pub input: PathBuf,
    /// Output folder; inputs are mirrored under it.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Files processed at once (default: one per core below 8 cores, else one per two cores).
    /// Cores are shared out among them.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Process only shard K of N (0-based), e.g. 0/4. Without it, Slurm array and Kubernetes
    /// Indexed Job variables are used when set.
    #[arg(long)]
    pub shard: Option<String>,
    /// Print the report JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Redact only: no highlights or review page per video.
    #[arg(long)]
    pub no_highlights: bool,
    #[command(flatten)]
    pub hl: HlArgs,
    #[command(flatten)]
    pub opts: OptArgs,
}

#[derive(Args)]
pub struct RedactArgs {
    /// Input video (any container or codec FFmpeg reads) or image (jpg, png).
    pub input: PathBuf,
    /// Output file (.mp4, .mov, .mkv for video; .jpg, .png for images).
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub opts: OptArgs,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Apply a reviewer's corrections (edits.json from the review page): tracks marked not
    /// sensitive, manual boxes, audio spans to mute or bleep.
    #[arg(long)]
    pub edits: Option<PathBuf>,
    /// The audit record whose detections `--edits` re-uses (default: OUTPUT.audit.json when it
    /// exists and describes this input; otherwise detection runs again).
    #[arg(long, requires = "edits")]
    pub detections: Option<PathBuf>,
    /// Mute START-END (seconds or [hh:]mm:ss), repeatable. Audio is then re-encoded.
    #[arg(long, value_name = "START-END")]
    pub mute: Vec<String>,
    /// Replace START-END with a 1 kHz tone, repeatable. Audio is then re-encoded.
    #[arg(long, value_name = "START-END")]
    pub bleep: Vec<String>,
}

#[derive(Args, Clone)]
pub struct OptArgs {
    /// Face detection threshold (lower finds more faces and more false positives).
    #[arg(long, default_value_t = 0.2)]
    pub thresh: f32,
    /// Plate detection threshold.
    #[arg(long, default_value_t = 0.2)]
    pub plate_thresh: f32,
    /// Redaction style.
    #[arg(long, value_enum, default_value_t = Style::Blur)]
    pub replacewith: Style,
    /// Shape of face masks (plates are always boxes).
    #[arg(long, value_enum, default_value_t = Shape::Ellipse)]
    pub shape: Shape,
    /// Grow every box by this factor before redaction.
    #[arg(long, default_value_t = 1.3)]
    pub mask_scale: f32,
    /// Do not look for licence plates.
    #[arg(long)]
    pub no_plates: bool,
    /// Face model: a CenterFace- or YOLO-format ONNX file instead of the built-in one.
    #[arg(long)]
    pub face_model: Option<PathBuf>,
    /// Plate model: a YOLO-format ONNX file (v5/v8/v11 export), or the id of a model in the
    /// manifest (`veil models`), instead of the default one.
    #[arg(long)]
    pub plate_model: Option<PathBuf>,
    /// Every frame detected as today's full schedule does, for the most recall whatever the
    /// cost: faces on every frame, the small-face pass every 4th, plates every 0.2 s on every
    /// view and tile, turned (several times slower; see README "Speed").
    #[arg(long)]
    pub thorough: bool,
    /// Long side of the picture faces are detected on.
    #[arg(long, alias = "detect-width", default_value_t = 640)]
    pub detect_size: usize,
    /// Long side of the extra face pass for small faces, run on frames whose long side is over
    /// 1.5x the detection size (0 turns it off).
    #[arg(long, alias = "hires-width", default_value_t = 1280)]
    pub hires_size: usize,
    /// Full-frame face detection every N frames on a steady scene, more often as the camera
    /// moves; between, faces are detected on crops around their tracks (0: every 0.2 s).
    #[arg(long, default_value_t = 0)]
    pub key_every: u32,
    /// Run the extra face pass every N frames (0: every second; every 4 with --thorough).
    #[arg(long, default_value_t = 0)]
    pub hires_every: u32,
    /// Run the plate model every N frames on a steady scene, more often as the camera moves;
    /// tracking covers the frames between (0: every 0.4 s; 0.2 s with --thorough).
    #[arg(long, default_value_t = 0)]
    pub plate_every: u32,
    /// Plate samples between full turned passes; the others turn only around plate-like
    /// candidates (0: every 3rd; every sample with --thorough).
    #[arg(long, default_value_t = 0)]
    pub plate_turns_every: u32,
    /// Tiles of a large frame each plate sample looks at, in turn, besides the regions
    /// around plate-like candidates of the whole-frame look (0: 3; all with --thorough). A
    /// frame that two pieces of up to 1.5 tiles a side hold (1080p) is looked at whole.
    #[arg(long, default_value_t = 0)]
    pub plate_tiles: u32,
    /// Tile size for the extra plate pass on frames over 1.5x this size, each tile seen at
    /// 640 (0 turns it off).
    #[arg(long, default_value_t = 960)]
    pub plate_tile: usize,
    /// The plate model also looks at each view turned by +/- this many degrees, for plates
    /// tilted by a rolling camera (0 turns it off; each turn costs one more model run).
    #[arg(long, default_value_t = 15.0)]
    pub plate_rotate: f32,
    /// Seconds a face or plate is followed by its appearance after its last detection, and
    /// before its first within the look-ahead window (0 turns following off).
    #[arg(long, default_value_t = 1.0)]
    pub follow: f32,
    /// Frames a track may go undetected and still be redacted through.
    #[arg(long, default_value_t = 12)]
    pub max_gap: u32,
    /// Frames redacted before a track's first detection.
    #[arg(long, default_value_t = 6)]
    pub extend_before: u32,
    /// Frames redacted after a track's last detection.
    #[arg(long, default_value_t = 6)]
    pub extend_after: u32,
    /// x264 constant rate factor (lower is better quality).
    #[arg(long, default_value_t = 18)]
    pub crf: u8,
    /// x264 preset.
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
    /// Drop audio streams (they are copied bit-exact by default).
    #[arg(long)]
    pub no_audio: bool,
    /// Redact every frame that decodes and record undecodable spans, instead of failing.
    #[arg(long)]
    pub allow_damaged: bool,
    /// Refuse video frames of more pixels (memory grows with the frame size).
    #[arg(long, default_value_t = veil::options::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Where the redaction review page goes (it shows unredacted faces, so never into the
    /// output folder; default: a sibling folder <output folder>.review-NOT-FOR-DISCLOSURE).
    #[arg(long)]
    pub review_dir: Option<PathBuf>,
    /// Threads for inference and decoding (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the models run: cuda needs a build with `--features cuda`; auto uses CUDA when it
    /// works and says so when it falls back (default: auto in CUDA builds, else cpu).
    #[arg(long, value_enum)]
    pub device: Option<veil::accel::Device>,
    /// NVDEC/NVENC video decode and encode (default: auto in CUDA builds, else none).
    #[arg(long, value_enum)]
    pub hwaccel: Option<veil::accel::Hwaccel>,
}

impl OptArgs {
    /// The job the run works in: cancelled by `cancel`, on `--device`, with all cores.
    pub fn job(&self, cancel: &Arc<AtomicBool>) -> Job {
        let mut job = Job::new(
            self.device.unwrap_or_else(Device::default_for_build),
            ThreadBudget::for_machine(1),
        );
        job.cancel = cancel.clone();
        job
    }

    pub fn to_options(&self) -> RedactOptions {
        let mut o = RedactOptions {
            thresh: self.thresh,
            plate_thresh: self.plate_thresh,
            detect_size: self.detect_size,
            hires_size: self.hires_size,
            hires_every: self.hires_every,
            key_every: self.key_every,
            plate_turns_every: self.plate_turns_every,
            plate_tiles: self.plate_tiles,
            thorough: self.thorough,
            plates: !self.no_plates,
            plate_every: self.plate_every,
            plate_tile: self.plate_tile,
            plate_rotate: self.plate_rotate,
            follow_s: self.follow,
            face_model: self.face_model.clone(),
            plate_model: self.plate_model.clone(),
            allow_damaged: self.allow_damaged,
            max_pixels: self.max_pixels,
            review_dir: self.review_dir.clone(),
            ..RedactOptions::default()
        };
        o.track.max_gap = self.max_gap;
        o.track.extend_before = self.extend_before;
        o.track.extend_after = self.extend_after;
        o.redact.style = self.replacewith;
        o.redact.face_shape = self.shape;
        o.redact.mask_scale = self.mask_scale;
        o.encode.crf = self.crf;
        o.encode.preset = self.preset.clone();
        o.encode.keep_audio = !self.no_audio;
        o.threads = self.threads;
        if let Some(h) = self.hwaccel {
            o.encode.hwaccel = h;
        }
        o
    }
}

#[derive(Args)]
pub struct EvalArgs {
    /// Data root holding the media and a labels/ folder (e.g. ../shared/data).
    #[arg(long, env = "VEIL_DATA")]
    pub data: PathBuf,
    /// Where redacted outputs are written (default: a temp folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only media whose path contains this string.
    #[arg(long)]
    pub only: Option<String>,
    /// Score these already-redacted files instead of running veil: a folder holding
    /// `<media file name>` outputs (for comparing other tools).
    #[arg(long)]
    pub redacted_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub opts: OptArgs,
}
