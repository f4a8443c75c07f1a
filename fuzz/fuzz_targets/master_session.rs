//! libFuzzer entry point of the `master_session` target: see `pando_fuzz::master`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pando_fuzz::master::check(data));
