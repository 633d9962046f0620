//! The contracts' memory allocator on wasm32: a bump allocator.
//!
//! A contract instance lives for one call, and its whole memory is discarded when the call
//! ends, so nothing needs to be reused within a call. Memory is handed out upward from the
//! end of the contract's data (`__heap_base`). Two cases give space back: freeing the most
//! recent allocation, and resizing it (how a growing `Vec` or `String` usually grows) stays
//! in place. Linear memory grows only when the next allocation does not fit.
//!
//! Against the standard allocator (dlmalloc, which grows memory for its first allocation of
//! every call) this saves the allocator's own work and, with the linker's
//! `--initial-memory` set above what a call needs (`scripts/build-contracts.sh`), the
//! `memory.grow` that makes the VM change page protections on every call. A call that
//! allocates more than the memory limit fails as with any allocator: the instance traps.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

const PAGE: usize = 65_536;

extern "C" {
    /// Where the linker put the end of the stack and static data.
    static __heap_base: u8;
}

pub struct Bump {
    /// The next free byte (0 before the first allocation).
    next: Cell<usize>,
    /// The start of the most recent allocation, while it is still the last one.
    last: Cell<usize>,
    /// Bytes of linear memory, as last seen.
    limit: Cell<usize>,
}

// SAFETY: a wasm32 contract runs on one thread; nothing else touches the allocator.
#[allow(unsafe_code)]
unsafe impl Sync for Bump {}

impl Bump {
    pub const fn new() -> Bump {
        Bump { next: Cell::new(0), last: Cell::new(0), limit: Cell::new(0) }
    }

    /// Makes linear memory reach `end`; false if it cannot grow that far.
    fn reach(&self, end: usize) -> bool {
        if end <= self.limit.get() {
            return true;
        }
        let size = core::arch::wasm32::memory_size(0) * PAGE;
        if end > size {
            let pages = (end - size + PAGE - 1) / PAGE;
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return false;
            }
            self.limit.set(size + pages * PAGE);
        } else {
            self.limit.set(size);
        }
        true
    }

    fn is_last(&self, ptr: *mut u8, size: usize) -> bool {
        ptr as usize == self.last.get() && ptr as usize + size == self.next.get()
    }
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut next = self.next.get();
        if next == 0 {
            // Only the symbol's address is taken, never its contents.
            next = core::ptr::addr_of!(__heap_base) as usize;
        }
        let start = (next + layout.align() - 1) & !(layout.align() - 1);
        let end = match start.checked_add(layout.size()) {
            Some(end) if self.reach(end) => end,
            _ => return core::ptr::null_mut(),
        };
        self.next.set(end);
        self.last.set(start);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.is_last(ptr, layout.size()) {
            self.next.set(ptr as usize);
            self.last.set(0);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.is_last(ptr, layout.size()) {
            let end = match (ptr as usize).checked_add(new_size) {
                Some(end) if self.reach(end) => end,
                _ => return core::ptr::null_mut(),
            };
            self.next.set(end);
            return ptr;
        }
        // The caller guarantees that `new_size` with this alignment is a valid layout.
        let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            // Both blocks are live, distinct, and at least this long.
            core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
        }
        new
    }
}
