//! libFuzzer entry point of the `lender_core` target: see `pando_fuzz::lender`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pando_fuzz::lender::check(data));
