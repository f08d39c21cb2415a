//! Giving memory back to the system once a flood of connections has passed.

/// Returns the heap memory the allocator holds free to the system (glibc's
/// `malloc_trim`). After a flood, the buffers of thousands of closed connections
/// stay in the allocator's per-thread arenas, and the process would keep that size
/// until it exits.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // one libc call; see Cargo.toml's lint section
pub fn give_back_freed_memory() {
    // SAFETY: malloc_trim takes a plain integer and works only on the allocator's own
    // free lists, under the allocator's locks; glibc allows it at any time, from any
    // thread. Its result (whether anything was released) needs no handling.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Elsewhere the allocator is not glibc's, and keeps its own counsel.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back_freed_memory() {}

#[cfg(test)]
mod tests {
    #[test]
    fn giving_back_memory_is_harmless() {
        let big: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 64 * 1024]).collect();
        drop(big);
        super::give_back_freed_memory();
        let again = vec![2u8; 1024];
        assert_eq!(again[1023], 2);
    }
}
