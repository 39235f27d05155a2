//! The int8 models made at set-up (scripts/quantize_int8.py) must detect what their float
//! originals detect. A broken quantization (e.g. one scale for the Concat that joins box
//! coordinates and scores, which rounds every score to 0) fails here, not only on footage.

use veil::detect::{Class, Detection, Detector, Rgb};

fn open(id: &str, class: Class) -> Detector {
    let manifest = veil::models::Manifest::builtin().unwrap();
    let model = manifest
        .get(id)
        .and_then(|m| m.resolve())
        .unwrap_or_else(|e| panic!("{id} is not installed (run scripts/setup.sh): {e}"));
    Detector::open(&model, class, 2, veil::accel::Device::Cpu).unwrap()
}

fn astronaut() -> (usize, usize, Vec<u8>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/astronaut.png");
    let img = image::open(path).unwrap().to_rgb8();
    (img.width() as usize, img.height() as usize, img.into_raw())
}

/// Every float detection at `thresh` has an int8 detection over it (IoU >= 0.5) scoring at
/// least `min_ratio` of the float score; returns how many float detections there were.
fn int8_covers_float(float: &[Detection], int8: &[Detection], min_ratio: f32) -> usize {
    for f in float {
        let best = int8
            .iter()
            .filter(|d| d.bbox.iou(&f.bbox) >= 0.5)
            .map(|d| d.score)
            .fold(0.0f32, f32::max);
        assert!(
            best >= min_ratio * f.score,
            "float detection {:?} (score {:.3}) has no int8 match (best {:.3}); int8 found {:?}",
            f.bbox,
            f.score,
            best,
            int8
        );
    }
    float.len()
}

#[test]
fn centerface_int8_finds_the_faces_centerface_finds() {
    let (w, h, px) = astronaut();
    let img = Rgb::new(w, h, w * 3, &px).unwrap();
    let float = open("centerface", Class::Face).detect(&img, 0.2).unwrap();
    // The int8 model at a lower threshold: its scores run up to about 20% lower.
    let int8 = open("centerface-int8", Class::Face)
        .detect(&img, 0.1)
        .unwrap();
    assert!(!float.is_empty(), "the astronaut's face is not found");
    let n = int8_covers_float(&float, &int8, 0.5);
    eprintln!("centerface: {n} float faces, all covered by int8");
}

/// A drawn plate: a white, dark-framed rectangle with seven dark glyphs, on a grey car-like
/// body with a darker bumper band, 640x480.
fn drawn_plate() -> (usize, usize, Vec<u8>) {
    let (w, h) = (640usize, 480usize);
    let mut px = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let v = if (300..380).contains(&y) {
                60
            } else {
                150 + (x / 16 % 3) as u8 * 4
            };
            px[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[v, v, v + 5]);
        }
    }
    let (px0, py0, pw, ph) = (250usize, 310usize, 150usize, 36usize);
    for y in py0..py0 + ph {
        for x in px0..px0 + pw {
            let border = x < px0 + 3 || x >= px0 + pw - 3 || y < py0 + 3 || y >= py0 + ph - 3;
            let gx = (x - px0).saturating_sub(10);
            let glyph = !border
                && (py0 + 8..py0 + ph - 8).contains(&y)
                && gx < 130
                && gx % 19 < 12
                && ((gx % 19) < 3 || (gx % 19) > 8 || (y - py0) % 10 < 3);
            let v = if border || glyph { 20 } else { 235 };
            px[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[v, v, v]);
        }
    }
    (w, h, px)
}

#[test]
fn platedet_int8_scores_like_platedet() {
    // No fixture has a real licence plate: compare the two models on a drawn one, at a low
    // threshold, where both must return the same candidates with similar scores.
    let (w, h, px) = drawn_plate();
    let img = Rgb::new(w, h, w * 3, &px).unwrap();
    let mut float_det = open("platedet", Class::Plate);
    let mut int8_det = open("platedet-int8", Class::Plate);
    let float = float_det.detect(&img, 0.02).unwrap();
    let int8 = int8_det.detect(&img, 0.01).unwrap();
    if float.is_empty() {
        // Nothing plate-like at all: then int8 must not invent strong plates either.
        assert!(int8.iter().all(|d| d.score < 0.2), "{int8:?}");
    } else {
        int8_covers_float(&float, &int8, 0.5);
    }
    // A quantized head that collapsed the scores to 0 would return nothing at 0.01 on any
    // picture; the turned copy of the same image must give candidates too.
    let turned = veil::detect::rotate::rotate_rgb(&img, 15.0);
    let t = Rgb::new(w, h, w * 3, &turned).unwrap();
    let float_t = float_det.detect(&t, 0.02).unwrap();
    let int8_t = int8_det.detect(&t, 0.01).unwrap();
    eprintln!(
        "platedet candidates: float {} + {} turned, int8 {} + {} turned",
        float.len(),
        float_t.len(),
        int8.len(),
        int8_t.len()
    );
    assert!(
        float.len() + float_t.len() == 0 || int8.len() + int8_t.len() > 0,
        "int8 platedet returns nothing where platedet returns {} candidates",
        float.len() + float_t.len()
    );
}
