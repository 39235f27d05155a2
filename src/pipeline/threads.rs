//! The decode and encode threads on either side of the detect stage.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use std::time::Instant;

use super::stage::{redact_in_place, DecMsg, DetectStage, EncMsg, StageResult, ENCODER_GONE};
use crate::decode::{luma, DecodeStatus, Decoder};
use crate::encode::Output;
use crate::error::{Result, VeilError};
use crate::job::Job;
use crate::motion::MotionEstimator;
use crate::redact::RedactConfig;

/// The two ends of the pipeline: the decoder (made on its thread) and the output.
pub(super) struct Ends<D> {
    pub decoder: D,
    pub output: Output,
    /// Input streams copied to the output.
    pub copied: Vec<usize>,
    /// The audio stream the highlights analyser listens to.
    pub tap: Option<usize>,
    /// Frames each queue between the threads holds.
    pub queue: usize,
}

/// Runs decode (`veil-decode`), the detect stage (this thread) and encode (`veil-encode`)
/// joined by bounded queues; returns the stage's result and the video packets written.
pub(super) fn run<'a, D>(
    ends: Ends<D>,
    redact: &RedactConfig,
    job: &Job,
    make_stage: impl FnOnce(SyncSender<EncMsg>) -> DetectStage<'a>,
) -> Result<(StageResult, Encoded)>
where
    D: FnOnce() -> Decoder + Send,
{
    let (dec_tx, dec_rx) = sync_channel(ends.queue);
    let (enc_tx, enc_rx) = sync_channel(ends.queue);
    let spawn_err = |e| VeilError::Internal(format!("cannot start a pipeline thread: {e}"));
    std::thread::scope(|s| {
        let (decoder, copied, tap, output) = (ends.decoder, ends.copied, ends.tap, ends.output);
        let decode = std::thread::Builder::new()
            .name("veil-decode".into())
            .spawn_scoped(s, move || decode_loop(decoder, copied, tap, dec_tx))
            .map_err(spawn_err)?;
        let encode = std::thread::Builder::new()
            .name("veil-encode".into())
            .spawn_scoped(s, || encode_loop(output, enc_rx, redact, job))
            .map_err(spawn_err)?;
        let frames = make_stage(enc_tx).run(dec_rx);
        let panicked = |what: &str| VeilError::Internal(format!("the {what} thread panicked"));
        let enc = encode.join().unwrap_or_else(|_| Err(panicked("encode")));
        let dec = decode.join().unwrap_or_else(|_| Err(panicked("decode")));
        // The first real error wins; a closed channel in one stage is a symptom of another's
        // (the encoder's own error says why it stopped).
        let gone =
            |e: &VeilError| matches!(e, VeilError::Ffmpeg { msg, .. } if msg == ENCODER_GONE);
        match (frames, enc) {
            (Err(e), Err(cause)) if gone(&e) => Err(cause),
            (frames, enc) => {
                let frames = frames?;
                dec?;
                Ok((frames, enc?))
            }
        }
    })
}

/// Decodes every frame, measures the camera's motion onto it, and sends frames and the
/// packets of the copied (`copied`) and analysed (`tap`) streams on. An error is sent too, so
/// the detect stage reports the cause rather than a closed channel.
fn decode_loop(
    dec: impl FnOnce() -> Decoder,
    copied: Vec<usize>,
    tap: Option<usize>,
    tx: SyncSender<Result<DecMsg>>,
) -> Result<()> {
    // Made on this thread: its format converter (swscale) may not cross threads.
    let mut dec = dec();
    let mut motion = MotionEstimator::new();
    let res = (|| -> Result<()> {
        loop {
            let msg = match dec.receive()? {
                DecodeStatus::End => return Ok(()),
                DecodeStatus::Frame {
                    frame,
                    pts,
                    corrupt,
                } => {
                    let m = motion.push_luma(&luma(&frame), 0.0);
                    DecMsg::Frame {
                        frame,
                        pts,
                        corrupt,
                        motion: m,
                    }
                }
                DecodeStatus::Damaged { pts, reason } => DecMsg::Damaged { pts, reason },
                DecodeStatus::Packet(p) => {
                    let si = p.stream();
                    if tap == Some(si) && tx.send(Ok(DecMsg::Tap(p.clone()))).is_err() {
                        return Ok(());
                    }
                    if !copied.contains(&si) {
                        continue;
                    }
                    DecMsg::Packet(si, p)
                }
            };
            if tx.send(Ok(msg)).is_err() {
                // The detect stage stopped; it reports why.
                return Ok(());
            }
        }
    })();
    if let Err(e) = res {
        let msg = e.to_string();
        let _ = tx.send(Err(e));
        return Err(VeilError::ffmpeg("decode", msg));
    }
    Ok(())
}

/// What the encode thread did.
pub(super) struct Encoded {
    pub packets: u64,
    /// Seconds spent redacting.
    pub redact_s: f64,
}

/// Redacts and encodes frames and writes copied packets until the detect stage hangs up.
fn encode_loop(
    mut out: Output,
    rx: Receiver<EncMsg>,
    redact: &RedactConfig,
    job: &Job,
) -> Result<Encoded> {
    let mut scratch = Vec::new();
    let mut redact_s = 0.0;
    while let Ok(msg) = rx.recv() {
        match msg {
            EncMsg::Frame {
                mut frame,
                pts,
                duration,
                regions,
            } => {
                let t0 = Instant::now();
                redact_in_place(&mut frame, &regions, redact, &mut scratch)?;
                redact_s += t0.elapsed().as_secs_f64();
                out.encode(&mut frame, pts, duration)?
            }
            EncMsg::Packet(si, p) => out.copy_packet(si, p)?,
        }
    }
    job.check()?;
    Ok(Encoded {
        packets: out.finish()?,
        redact_s,
    })
}

/// Frames each inter-thread queue holds: 8, fewer for large frames, so the two queues stay
/// under about 64 MiB (a 4K frame is 12 MiB in 4:2:0; detection, not the queues, sets the pace).
pub fn queue_len(w: usize, h: usize) -> usize {
    const BUDGET: usize = 32 << 20;
    let frame = (w * h * 3 / 2).max(1);
    (BUDGET / frame).clamp(2, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_shrink_for_large_frames() {
        assert_eq!(queue_len(1280, 720), 8);
        assert_eq!(queue_len(1920, 1080), 8);
        assert_eq!(queue_len(2560, 1920), 4);
        assert_eq!(queue_len(3840, 2160), 2);
        assert_eq!(queue_len(16384, 16384), 2);
    }
}
