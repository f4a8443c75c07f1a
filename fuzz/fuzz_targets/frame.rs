//! libFuzzer entry point of the `frame` target: see `pando_fuzz::frame`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pando_fuzz::frame::check(data));
