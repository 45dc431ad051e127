//! Shared pieces of the Magpie benches.
