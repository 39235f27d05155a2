//! Audio edits (`--mute`, `--bleep`, a reviewer's spans): AAC-LC and PCM packets that overlap
//! a span (plus one packet each side) are decoded, edited and re-encoded with the same codec
//! and spliced in; every other packet is copied bit-exact. Other codecs are re-encoded whole.

use ffmpeg::{codec, format, frame, Packet, Rational, Rescale};
use ffmpeg_next as ffmpeg;

use super::ready;
use crate::edits::{AudioAction, AudioEdit};
use crate::error::{Result, VeilError};

/// Decodes an audio stream, mutes or bleeps the edited spans, and re-encodes it with the
/// same codec. The whole stream is re-encoded: packets outside the spans are not bit-exact.
pub(super) struct AudioRewriter {
    pub(super) decoder: ffmpeg::decoder::Audio,
    pub(super) encoder: ffmpeg::encoder::Audio,
    pub(super) spans: Vec<AudioEdit>,
    pub(super) in_tb: Rational,
    /// Samples sent to the encoder so far (its pts, in 1/rate).
    pub(super) next_pts: i64,
    pub(super) frame: frame::Audio,
    /// Splice mode: only the packets around the spans are re-encoded; the rest are copied.
    pub(super) splice: Option<Splice>,
    pub(super) bit_rate: usize,
}

/// A range of packets being re-encoded: its encoder, the original packets it replaces, and
/// the packets the encoder produced so far.
type OpenRange = (ffmpeg::encoder::Audio, Vec<Packet>, Vec<Packet>);

/// State of span-only re-encoding.
pub(super) struct Splice {
    codec: ffmpeg::Codec,
    global_header: bool,
    /// The decoded frame of the last copied packet: primes the encoder of the next range.
    pub(super) prev: Option<frame::Audio>,
    pub(super) open: Option<OpenRange>,
}

impl AudioRewriter {
    pub(super) fn new(
        s: &format::stream::Stream,
        spans: &[AudioEdit],
        global_header: bool,
    ) -> Result<(AudioRewriter, ffmpeg::Codec)> {
        let ferr = |c: &'static str| move |e: ffmpeg::Error| VeilError::ffmpeg(c, e);
        let dctx = codec::context::Context::from_parameters(s.parameters())
            .map_err(ferr("audio edit decoder"))?;
        let decoder = dctx.decoder().audio().map_err(ferr("audio edit decoder"))?;
        let id = s.parameters().id();
        let codec = ffmpeg::encoder::find(id).ok_or_else(|| {
            VeilError::setting(
                "audio edits",
                format!("they need re-encoding, and this FFmpeg has no encoder for {id:?}; drop the audio edits or --no-audio"),
            )
        })?;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(ferr("audio edit encoder"))?;
        let fmt = codec
            .audio()
            .ok()
            .and_then(|a| a.formats().and_then(|mut f| f.next()))
            .unwrap_or(decoder.format());
        let layout = if decoder.channel_layout().bits() == 0 {
            ffmpeg::ChannelLayout::default(decoder.channels() as i32)
        } else {
            decoder.channel_layout()
        };
        enc.set_rate(decoder.rate() as i32);
        enc.set_channel_layout(layout);
        enc.set_format(fmt);
        enc.set_time_base(Rational::new(1, decoder.rate() as i32));
        let br = decoder.bit_rate();
        enc.set_bit_rate(if br > 0 { br } else { 128_000 });
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc
            .open_as(codec)
            .map_err(ferr("open audio edit encoder"))?;
        // Splicing keeps the original stream's parameters, so the re-encoded packets must be
        // decodable with them: AAC-LC (or a codec without profiles, like PCM) only.
        // SAFETY: reads one int of the parameters the stream owns.
        let profile = unsafe { (*s.parameters().as_ptr()).profile };
        let spliceable = match id {
            codec::Id::AAC => profile == ffmpeg::ffi::FF_PROFILE_AAC_LOW,
            codec::Id::PCM_S16LE | codec::Id::PCM_S24LE | codec::Id::PCM_F32LE => true,
            _ => false,
        };
        if encoder.format() != decoder.format() {
            return Err(VeilError::setting(
                "audio edits",
                format!(
                    "the {id:?} encoder wants {:?} samples but the decoder gives {:?}",
                    encoder.format(),
                    decoder.format()
                ),
            ));
        }
        Ok((
            AudioRewriter {
                decoder,
                encoder,
                spans: spans.to_vec(),
                in_tb: s.time_base(),
                next_pts: 0,
                frame: frame::Audio::empty(),
                bit_rate: if br > 0 { br } else { 128_000 },
                splice: spliceable.then_some(Splice {
                    codec,
                    global_header,
                    prev: None,
                    open: None,
                }),
            },
            codec,
        ))
    }

    /// A fresh encoder with the settings of the first (for each spliced range).
    fn fresh_encoder(
        &self,
        codec: ffmpeg::Codec,
        global_header: bool,
    ) -> Result<ffmpeg::encoder::Audio> {
        let ferr = |c: &'static str| move |e: ffmpeg::Error| VeilError::ffmpeg(c, e);
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(ferr("audio edit encoder"))?;
        enc.set_rate(self.encoder.rate() as i32);
        enc.set_channel_layout(self.encoder.channel_layout());
        enc.set_format(self.encoder.format());
        enc.set_time_base(self.encoder.time_base());
        enc.set_bit_rate(self.bit_rate);
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        enc.open_as(codec).map_err(ferr("open audio edit encoder"))
    }

    /// True when the packet's audio is within one packet of a span (the neighbours are
    /// re-encoded too, so the transform's overlap at the boundaries is consistent).
    pub(super) fn affects(&self, pkt: &Packet) -> bool {
        let tb = f64::from(self.in_tb);
        let Some(pts) = pkt.pts() else {
            return true;
        };
        let dur = pkt.duration().max(1);
        let (a, b) = (pts as f64 * tb, (pts + dur) as f64 * tb);
        let d = dur as f64 * tb;
        self.spans
            .iter()
            .any(|sp| a < sp.end + d && b > sp.start - d)
    }

    /// Mutes or bleeps the samples of `f` (starting at `t0` seconds) that fall in a span.
    fn edit(&self, f: &mut frame::Audio, t0: f64) {
        let rate = f.rate().max(1) as f64;
        let n = f.samples();
        let planar = f.is_planar();
        let chans = f.channels() as usize;
        for sp in &self.spans {
            let a = (((sp.start - t0) * rate).ceil().max(0.0) as usize).min(n);
            let b = (((sp.end - t0) * rate).ceil().max(0.0) as usize).min(n);
            if a >= b {
                continue;
            }
            let value = |i: usize| -> f32 {
                match sp.action {
                    AudioAction::Mute => 0.0,
                    AudioAction::Bleep => {
                        let t = t0 + i as f64 / rate;
                        (0.3 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as f32
                    }
                }
            };
            let planes = if planar { chans } else { 1 };
            let step = if planar { 1 } else { chans };
            for p in 0..planes {
                match f.format() {
                    format::Sample::F32(_) => {
                        let d = f.plane_mut::<f32>(p);
                        for i in a..b {
                            for c in 0..step {
                                d[i * step + c] = value(i);
                            }
                        }
                    }
                    format::Sample::I16(_) => {
                        let d = f.plane_mut::<i16>(p);
                        for i in a..b {
                            for c in 0..step {
                                d[i * step + c] = (value(i) * 32767.0) as i16;
                            }
                        }
                    }
                    format::Sample::I32(_) => {
                        let d = f.plane_mut::<i32>(p);
                        for i in a..b {
                            for c in 0..step {
                                d[i * step + c] = (value(i) as f64 * 2147483647.0) as i32;
                            }
                        }
                    }
                    _ => {
                        // Zero bytes are silence for signed and float formats alike.
                        let bps = f.format().bytes();
                        let d = f.data_mut(p);
                        let (lo, hi) = (a * step * bps, (b * step * bps).min(d.len()));
                        d[lo..hi].fill(0);
                    }
                }
            }
        }
    }
}

/// Feeds one packet's audio to the range encoder (opening a range, primed with the
/// previous packet's audio, if none is open). `edited` packets are replaced in the output;
/// the packet after a range only completes the encoder's overlap and is copied.
pub(super) fn splice_feed(
    rw: &mut AudioRewriter,
    pkt: &Packet,
    frames: Vec<frame::Audio>,
    edited: bool,
) -> Result<()> {
    let aerr = |c: &'static str| move |e: ffmpeg::Error| VeilError::ffmpeg(c, e);
    let rate = rw.encoder.rate().max(1) as i32;
    let enc_tb = Rational::new(1, rate);
    let in_tb = rw.in_tb;
    if rw.splice.as_ref().is_some_and(|s| s.open.is_none()) {
        let (codec, gh) = {
            let sp = rw.splice.as_ref().expect("splice mode");
            (sp.codec, sp.global_header)
        };
        let mut enc = rw.fresh_encoder(codec, gh)?;
        if let Some(mut p) = rw.splice.as_mut().and_then(|s| s.prev.take()) {
            let fs = enc.frame_size() as usize;
            if (fs == 0 || p.samples() == fs) && p.pts().is_some() {
                let pts = p.pts().map(|t| t.rescale(in_tb, enc_tb));
                p.set_pts(pts);
                enc.send_frame(&p).map_err(aerr("prime audio encoder"))?;
            }
        }
        rw.splice.as_mut().expect("splice").open = Some((enc, Vec::new(), Vec::new()));
    }
    // One frame per packet at the packet's time: a packet that decoded to fewer samples
    // (the trimmed start of a stream) is padded at the front with silence.
    let pts = pkt.pts().unwrap_or(0);
    let fmt = rw.decoder.format();
    let (fs, layout) = {
        let open = rw
            .splice
            .as_ref()
            .and_then(|s| s.open.as_ref())
            .expect("opened");
        (open.0.frame_size() as usize, open.0.channel_layout())
    };
    let mut f = match frames.into_iter().next() {
        Some(f) if fs == 0 || f.samples() == fs => f,
        other => {
            let n = if fs > 0 {
                fs
            } else {
                other.as_ref().map(|f| f.samples()).unwrap_or(0)
            };
            let mut z = frame::Audio::new(fmt, n, layout);
            z.set_rate(rate as u32);
            for i in 0..z.planes() {
                z.data_mut(i).fill(0);
            }
            if let Some(src) = other {
                let per = if fmt.is_planar() {
                    1
                } else {
                    src.channels() as usize
                };
                let bps = fmt.bytes() * per;
                let k = src.samples().min(n);
                for i in 0..z.planes().min(src.planes()) {
                    let off = (n - k) * bps;
                    let dst = z.data_mut(i);
                    dst[off..off + k * bps].copy_from_slice(&src.data(i)[..k * bps]);
                }
            }
            z
        }
    };
    if edited {
        rw.edit(&mut f, pts as f64 * f64::from(in_tb));
    }
    f.set_pts(Some(pts.rescale(in_tb, enc_tb)));
    let open = rw
        .splice
        .as_mut()
        .and_then(|s| s.open.as_mut())
        .expect("opened");
    open.0.send_frame(&f).map_err(aerr("encode edited audio"))?;
    let mut p = Packet::empty();
    while ready(open.0.receive_packet(&mut p), "encode edited audio")? {
        open.2.push(std::mem::replace(&mut p, Packet::empty()));
    }
    if edited {
        open.1.push(pkt.clone());
    }
    Ok(())
}

/// Ends the open range: flushes its encoder and writes, for each replaced packet, the
/// re-encoded packet with the same timestamp. A missing one fails the job (fail closed).
pub(super) fn splice_close(
    octx: &mut format::context::Output,
    out_index: usize,
    in_tb: Rational,
    out_tb: Rational,
    rw: &mut AudioRewriter,
) -> Result<()> {
    let rate = rw.encoder.rate().max(1) as i32;
    let enc_tb = Rational::new(1, rate);
    let Some((mut enc, originals, mut encoded)) = rw.splice.as_mut().and_then(|s| s.open.take())
    else {
        return Ok(());
    };
    enc.send_eof()
        .map_err(|e| VeilError::ffmpeg("flush edited audio encoder", e))?;
    let mut p = Packet::empty();
    while ready(enc.receive_packet(&mut p), "flush edited audio encoder")? {
        encoded.push(std::mem::replace(&mut p, Packet::empty()));
    }
    for o in originals {
        let want = o.pts().unwrap_or(0).rescale(in_tb, enc_tb);
        let Some(e) = encoded.iter().find(|e| e.pts() == Some(want)) else {
            return Err(VeilError::ffmpeg(
                "edit audio",
                format!("no re-encoded packet for the audio at {want}/{rate} s; output rejected"),
            ));
        };
        let mut n = e.clone();
        n.set_pts(o.pts());
        n.set_dts(o.dts());
        n.set_duration(o.duration());
        n.set_stream(out_index);
        n.rescale_ts(in_tb, out_tb);
        n.set_position(-1);
        n.write_interleaved(octx)
            .map_err(|e| VeilError::ffmpeg("write edited audio packet", e))?;
    }
    Ok(())
}

/// Moves decoded audio through the edits into the encoder, and encoded packets to the
/// muxer. `eof` flushes both.
pub(super) fn pump_audio(
    octx: &mut format::context::Output,
    out_index: usize,
    out_tb: Rational,
    rw: &mut AudioRewriter,
    eof: bool,
) -> Result<()> {
    let aerr = |c: &'static str| move |e: ffmpeg::Error| VeilError::ffmpeg(c, e);
    if eof {
        rw.decoder
            .send_eof()
            .map_err(|e| VeilError::ffmpeg("flush audio decoder", e))?;
    }
    let mut f = std::mem::replace(&mut rw.frame, frame::Audio::empty());
    while ready(rw.decoder.receive_frame(&mut f), "decode audio for editing")? {
        let t0 = f
            .pts()
            .map(|p| p as f64 * f64::from(rw.in_tb))
            .unwrap_or(rw.next_pts as f64 / f.rate().max(1) as f64);
        rw.edit(&mut f, t0);
        f.set_pts(Some(rw.next_pts));
        rw.next_pts += f.samples() as i64;
        rw.encoder
            .send_frame(&f)
            .map_err(aerr("encode edited audio"))?;
        drain_audio(octx, out_index, out_tb, rw)?;
    }
    rw.frame = f;
    if eof {
        rw.encoder.send_eof().map_err(aerr("flush audio encoder"))?;
        drain_audio(octx, out_index, out_tb, rw)?;
    }
    Ok(())
}

fn drain_audio(
    octx: &mut format::context::Output,
    out_index: usize,
    out_tb: Rational,
    rw: &mut AudioRewriter,
) -> Result<()> {
    let mut p = Packet::empty();
    while ready(rw.encoder.receive_packet(&mut p), "encode edited audio")? {
        p.set_stream(out_index);
        p.rescale_ts(rw.encoder.time_base(), out_tb);
        p.set_position(-1);
        p.write_interleaved(octx)
            .map_err(|e| VeilError::ffmpeg("write edited audio packet", e))?;
    }
    Ok(())
}
