//! Batch manifests never panic, and no entry maps to an output outside the output folder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(items) = veil::batch::parse_manifest(text, Path::new("/base")) {
            for it in &items {
                let out = veil::batch::output_for(Path::new("/out"), it);
                assert!(out.starts_with("/out"), "{}", out.display());
                assert!(!out.components().any(|c| c == Component::ParentDir));
            }
        }
    }
});
