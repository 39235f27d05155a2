//! The model manifest parser never panics, and accepts only plain file names and 64-hex hashes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = veil::models::Manifest::parse(text) {
            for e in &m.models {
                assert_eq!(e.sha256.len(), 64);
                assert!(!e.file.contains('/') && !e.file.contains(".."));
            }
        }
    }
});
