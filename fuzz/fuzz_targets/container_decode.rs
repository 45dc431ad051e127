//! cargo-fuzz target `container_decode`: see `magpie_wire_fuzz::container_decode` for what it asserts.
#![no_main]

use magpie_wire_fuzz::alloc_track::Tracking;

// Counts allocations so the target can check its memory bounds.
#[global_allocator]
static ALLOC: Tracking = Tracking;

libfuzzer_sys::fuzz_target!(|data: &[u8]| magpie_wire_fuzz::container_decode(data));
