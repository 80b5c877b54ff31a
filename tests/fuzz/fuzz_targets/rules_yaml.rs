#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| saker_fuzz::entry_rules_yaml::run(data));
