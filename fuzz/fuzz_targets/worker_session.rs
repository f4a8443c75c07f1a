//! libFuzzer entry point of the `worker_session` target: see `pando_fuzz::worker`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pando_fuzz::worker::check(data));
