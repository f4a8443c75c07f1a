//! libFuzzer entry point of the `genet_node` target: see `pando_fuzz::genet`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pando_fuzz::genet::check(data));
