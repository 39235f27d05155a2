//! Criterion benches per stage: preprocessing, inference per model, detection decoding and
//! NMS, redaction kernels by box size, following a box and turning an image. Throughput is reported in pixels or elements.
//! Run with `cargo bench --bench stages`; models come from the project cache (`make setup`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ffmpeg_next as ffmpeg;
use veil::detect::{nms, BBox, Class, Detection, Detector, Rgb};
use veil::redact::{redact_plane, Plane, Shape, Style};

fn noise(n: usize) -> Vec<u8> {
    let mut s = 0x2545F491u32;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect()
}

fn preprocess(c: &mut Criterion) {
    veil::decode::init().unwrap();
    let mut g = c.benchmark_group("preprocess_yuv_to_rgb640");
    for (w, h) in [(1280u32, 720u32), (1920, 1080), (2560, 1920)] {
        let mut f = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, w, h);
        for p in 0..3 {
            let n = f.data(p).len();
            f.data_mut(p).copy_from_slice(&noise(n));
        }
        let mut sc = veil::decode::RgbScaler::default();
        let dh = (h as u64 * 640 / w as u64) as u32;
        g.throughput(Throughput::Elements((w * h) as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{w}x{h}")),
            &f,
            |b, f| b.iter(|| black_box(sc.run(f, 640, dh).unwrap().1)),
        );
    }
    g.finish();
}

fn inference(c: &mut Criterion) {
    let manifest = veil::models::Manifest::builtin().unwrap();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut g = c.benchmark_group("inference");
    g.sample_size(10);
    for (id, class, sizes) in [
        // 640x360 and 1280x720: a keyframe's passes; 160x160: a face crop between keyframes.
        (
            "centerface",
            Class::Face,
            vec![(640usize, 360usize), (1280, 720), (160, 160)],
        ),
        (
            "centerface-int8",
            Class::Face,
            vec![(640usize, 360usize), (1280, 720), (160, 160)],
        ),
        ("platedet", Class::Plate, vec![(640, 360)]),
        ("platedet-int8", Class::Plate, vec![(640, 360)]),
        ("fastanpr", Class::Plate, vec![(640, 360)]),
    ] {
        let model = match manifest.get(id).and_then(|m| m.resolve()) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("SKIPPED inference/{id}: {e}");
                continue;
            }
        };
        let mut det = match Detector::open(&model, class, threads, veil::accel::Device::Cpu) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("SKIPPED inference/{id}: {e}");
                continue;
            }
        };
        for (w, h) in sizes {
            let buf = noise(w * h * 3);
            let img = Rgb::new(w, h, w * 3, &buf).unwrap();
            det.detect(&img, 0.2).unwrap();
            g.throughput(Throughput::Elements((w * h) as u64));
            g.bench_function(BenchmarkId::new(id, format!("{w}x{h}")), |b| {
                b.iter(|| black_box(det.detect(&img, 0.2).unwrap().len()))
            });
        }
    }
    g.finish();
}

fn decode_nms(c: &mut Criterion) {
    let mut g = c.benchmark_group("nms");
    for n in [10usize, 100, 1000] {
        let r = noise(n * 4);
        let dets: Vec<Detection> = (0..n)
            .map(|i| {
                let x = r[i * 4] as f32 * 4.0;
                let y = r[i * 4 + 1] as f32 * 3.0;
                Detection {
                    class: Class::Face,
                    bbox: BBox::from_xywh(x, y, 20.0 + r[i * 4 + 2] as f32 / 4.0, 24.0),
                    score: r[i * 4 + 3] as f32 / 255.0,
                }
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &dets, |b, d| {
            b.iter(|| black_box(nms(d.clone(), 0.3).len()))
        });
    }
    g.finish();
}

fn kernels(c: &mut Criterion) {
    let (w, h) = (1920usize, 1080usize);
    let mut data = noise(w * h);
    let mut scratch = Vec::new();
    let mut g = c.benchmark_group("redact_kernel_y_plane");
    for size in [32usize, 128, 512] {
        for style in [Style::Blur, Style::Mosaic, Style::Solid] {
            g.throughput(Throughput::Elements((size * size) as u64));
            g.bench_function(BenchmarkId::new(format!("{style:?}"), size), |b| {
                b.iter(|| {
                    let mut plane = Plane {
                        data: &mut data,
                        stride: w,
                        width: w,
                        height: h,
                        channels: 1,
                    };
                    let r = BBox::from_xywh(100.0, 100.0, size as f32, size as f32);
                    redact_plane(&mut plane, &r, Shape::Ellipse, style, &[16], &mut scratch);
                })
            });
        }
    }
    g.finish();
}

/// Following one box from a frame to the next (template matching), by box size, and turning a
/// detector-size image for the rotated plate pass.
fn follow_and_turn(c: &mut Criterion) {
    use veil::follow::{follow, Luma};
    let (w, h) = (1920usize, 1080usize);
    // A smooth aperiodic picture (a blurred noise field) and the same moved by (6, -4).
    let base = noise((w + 16) * (h + 16));
    let smooth = |dx: usize, dy: usize| -> Vec<u8> {
        let mut v = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0u32;
                for k in 0..4 {
                    acc += base[(y + dy + k) * (w + 16) + x + dx] as u32;
                    acc += base[(y + dy) * (w + 16) + x + dx + k] as u32;
                }
                v[y * w + x] = (acc / 8) as u8;
            }
        }
        v
    };
    let (a, b) = (smooth(6, 0), smooth(0, 4));
    let la = Luma {
        data: &a,
        stride: w,
        width: w,
        height: h,
    };
    let lb = Luma {
        data: &b,
        stride: w,
        width: w,
        height: h,
    };
    let mut g = c.benchmark_group("follow_box");
    for size in [24usize, 96, 384] {
        let bx = BBox::from_xywh(700.0, 400.0, size as f32, size as f32 * 0.6);
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::from_parameter(size), |bn| {
            bn.iter(|| black_box(follow(&la, &lb, &bx, (-6.0, 4.0)).is_some()))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("turn_rgb");
    let (tw, th) = (640usize, 480usize);
    let img = noise(tw * th * 3);
    let rgb = Rgb::new(tw, th, tw * 3, &img).unwrap();
    g.throughput(Throughput::Elements((tw * th) as u64));
    g.bench_function(BenchmarkId::from_parameter("640x480"), |bn| {
        bn.iter(|| black_box(veil::detect::rotate::rotate_rgb(&rgb, 15.0).len()))
    });
    g.finish();
}

criterion_group!(
    benches,
    preprocess,
    inference,
    decode_nms,
    kernels,
    follow_and_turn
);
criterion_main!(benches);
