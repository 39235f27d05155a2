//! Audit records from earlier runs are parsed without panicking; whatever parses round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = veil::audit::AuditRecord::parse(data) {
        let again = serde_json::to_vec(&rec).unwrap();
        assert!(veil::audit::AuditRecord::parse(&again).is_ok());
    }
});
