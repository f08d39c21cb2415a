//! The CPU scheduling policy the server's threads run under.
//!
//! Every request crosses threads: the HTTP worker hands SQLite work to a reader thread
//! or to the one writer (store/sqlite/readers.rs, store/sqlite/writer/) and is woken with the answer.
//! Under Linux's default policy a woken thread may preempt the one that woke it, so on a
//! busy core the worker is interrupted after queueing a job or two, the store thread
//! runs just those, and the two ping-pong: the writer's group commit and the readers'
//! bursts stay small and most requests cost a context switch. `SCHED_BATCH` (sched(7))
//! is the same fair scheduler without wake-up preemption: a woken thread waits for the
//! running one to block or for the next tick. The worker then queues every request it
//! has read before a store thread takes them all in one go.
//!
//! Measured on one core with 32 connections (bench/README.md, "Scheduling"): Bearer
//! GETs went from about 0.4 to 0.07 reader sleeps per request and view grants from
//! 0.18 to 0.05 writer sleeps per request; both did 20-30 % more requests per second.
//!
//! Threads inherit the policy of the thread that creates them, so `serve` sets it once
//! on the main thread before anything else starts. It needs no privilege.

/// Puts the calling thread (and every thread it creates afterwards) under `SCHED_BATCH`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // one libc call; see Cargo.toml's lint section
pub fn batch_this_thread() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param that lives for
    // the call, and SCHED_BATCH takes priority 0.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn batch_this_thread() -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "SCHED_BATCH exists on Linux only",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    const SCHED_BATCH: u32 = 3;

    /// Field 41 of /proc/thread-self/stat: the calling thread's policy.
    fn policy() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(41 - 3).unwrap().parse().unwrap()
    }

    #[test]
    fn the_calling_thread_and_its_children_run_batch_and_others_do_not() {
        let before = policy();
        let (mine, childs) = std::thread::spawn(|| {
            batch_this_thread().unwrap();
            (policy(), std::thread::spawn(policy).join().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!((mine, childs), (SCHED_BATCH, SCHED_BATCH));
        assert_eq!(policy(), before, "only the calling thread changed");
    }
}
