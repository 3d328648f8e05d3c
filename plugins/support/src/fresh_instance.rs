//! What a `no_std` plugin needs besides its code: an allocator, a panic handler and the
//! canonical ABI's `cabi_realloc`, all in [`fresh_instance_runtime!`](crate::fresh_instance_runtime).
//!
//! The allocator bumps a pointer and frees nothing one by one: every evaluation runs in a
//! fresh instance that is thrown away afterwards, so that is all an evaluation needs. It
//! starts over from the arena's start whenever no allocation is live (e.g. after a call's
//! results are freed), so an instance that is called again (the host's benchmark of a bare
//! call) does not run out. The arena lives in the module's own memory image (no
//! `memory.grow` at the start of every evaluation, which costs more than the rest of a small
//! plugin's work). Past the arena it grows the memory, up to the host's cap, which traps the
//! plugin (fail closed).

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

// `memcmp` and friends: without `std`, nothing links the C library that provides them on
// this target. Only the objects referenced are taken from it, and they import nothing.
#[link(name = "c")]
unsafe extern "C" {}

/// The arena: enough for a request, a config and the work of any example plugin.
const ARENA_BYTES: usize = 256 << 10;
const PAGE: usize = 64 << 10;

#[repr(C, align(16))]
struct Arena([u8; ARENA_BYTES]);

static mut ARENA: Arena = Arena([0; ARENA_BYTES]);
/// The next free address and the end of the current region (0, 0 before the first use).
static NEXT: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);
/// Allocations not yet freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The bump allocator of a fresh instance.
pub struct BumpAllocator;

unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if LIVE.load(Ordering::Relaxed) == 0 {
            let start = (&raw mut ARENA) as usize;
            NEXT.store(start, Ordering::Relaxed);
            END.store(start + ARENA_BYTES, Ordering::Relaxed);
        }
        let align = layout.align();
        let mut start = (NEXT.load(Ordering::Relaxed) + align - 1) & !(align - 1);
        if start + layout.size() > END.load(Ordering::Relaxed) {
            // A new region from fresh pages; the rest of the old one is abandoned.
            let pages = (layout.size() + align).div_ceil(PAGE);
            let first = core::arch::wasm32::memory_grow(0, pages);
            if first == usize::MAX {
                return core::ptr::null_mut();
            }
            let base = first * PAGE;
            END.store(base + pages * PAGE, Ordering::Relaxed);
            start = (base + align - 1) & !(align - 1);
        }
        NEXT.store(start + layout.size(), Ordering::Relaxed);
        LIVE.fetch_add(1, Ordering::Relaxed);
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The canonical ABI's allocator, through the global one.
///
/// # Safety
/// Called by the host as the canonical ABI specifies.
pub unsafe fn cabi_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    use alloc::alloc::{alloc, realloc};
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: the canonical ABI passes a valid alignment, and `old` with its length.
    let ptr = unsafe {
        if old_len == 0 {
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(old, Layout::from_size_align_unchecked(old_len, align), new_len)
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable();
    }
    ptr
}

/// The allocator, panic handler and `cabi_realloc` of a `no_std` plugin; invoke it once at
/// the top of the plugin crate. A panic traps, which the host reports and treats as a deny.
#[macro_export]
macro_rules! fresh_instance_runtime {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::fresh_instance::BumpAllocator =
            $crate::fresh_instance::BumpAllocator;

        #[panic_handler]
        fn panic(_: &core::panic::PanicInfo) -> ! {
            core::arch::wasm32::unreachable()
        }

        /// The canonical ABI's allocator.
        ///
        /// # Safety
        /// Called by the host as the canonical ABI specifies.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn cabi_realloc(
            old: *mut u8,
            old_len: usize,
            align: usize,
            new_len: usize,
        ) -> *mut u8 {
            // SAFETY: forwarded as received.
            unsafe { $crate::fresh_instance::cabi_realloc(old, old_len, align, new_len) }
        }
    };
}
