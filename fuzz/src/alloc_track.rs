//! A counting global allocator, so the targets can assert memory bounds and not only "no crash".
//!
//! [`Tracking`] wraps the system allocator and keeps, per thread, the bytes live, the peak of that
//! since the last [`measure`], and the largest single request. A binary opts in with
//! `#[global_allocator] static ALLOC: Tracking = Tracking;` (every fuzz target and the test harness
//! do); where it is not installed, [`measure`] returns `None` and the memory checks are skipped.
//!
//! Counters are thread-local (`const`-initialised `Cell`s, which never allocate and have no
//! destructor), so the harness's parallel tests do not see each other's allocations. This is the
//! only `unsafe` in the crate: `GlobalAlloc` cannot be implemented without it, and every method
//! forwards to `System` unchanged.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The counting allocator. Install it with `#[global_allocator]`.
pub struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    let size_i = isize::try_from(size).unwrap_or(isize::MAX);
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(size_i);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

fn on_free(size: usize) {
    let size_i = isize::try_from(size).unwrap_or(isize::MAX);
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size_i)));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// only observe sizes and never touch the memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            on_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            on_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` through this wrapper.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as "new block, then free the old one": a moving realloc has both live.
            on_alloc(new_size);
            on_free(layout.size());
        }
        new
    }
}

/// What a closure cost on this thread: the peak of live bytes above what was live when it
/// started, and the largest single allocation it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Peak live bytes above the starting point.
    pub peak: usize,
    /// Largest single allocation (or reallocation target) in bytes.
    pub largest: usize,
}

fn live() -> isize {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// `true` if [`Tracking`] is this binary's global allocator.
pub fn installed() -> bool {
    let before = live();
    let probe = std::hint::black_box(Box::new([0u8; 64]));
    let after = live();
    drop(probe);
    after - before >= 64
}

/// Runs `f` and reports its [`Usage`], or `None` if the tracker is not installed. Nests: an outer
/// measurement still sees the inner one's allocations.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Option<Usage>) {
    if !installed() {
        return (f(), None);
    }
    let base = live();
    let outer_peak = PEAK.with(|p| p.replace(base));
    let outer_largest = LARGEST.with(|l| l.replace(0));
    let result = f();
    let peak = PEAK.with(Cell::get);
    let largest = LARGEST.with(Cell::get);
    PEAK.with(|p| p.set(outer_peak.max(peak)));
    LARGEST.with(|l| l.set(outer_largest.max(largest)));
    let usage = Usage {
        peak: usize::try_from(peak - base).unwrap_or(0),
        largest,
    };
    (result, Some(usage))
}
