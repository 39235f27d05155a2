//! Label files for the evaluation tool never panic the parser or the box maths.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(label) = serde_json::from_slice::<veil::eval::LabelFile>(data) {
        let img = veil::decode::Gray { width: 8, height: 8, data: vec![7; 64] };
        for boxes in label.frames.values() {
            for b in boxes {
                let _ = veil::eval::detail(&img, b.r#box);
            }
        }
    }
});
