//! cargo-fuzz target `inflate`: see `magpie_wire_fuzz::inflate` for what it asserts.
#![no_main]

use magpie_wire_fuzz::alloc_track::Tracking;

// Counts allocations so the target can check its memory bounds.
#[global_allocator]
static ALLOC: Tracking = Tracking;

libfuzzer_sys::fuzz_target!(|data: &[u8]| magpie_wire_fuzz::inflate(data));
