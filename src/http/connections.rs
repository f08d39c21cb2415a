//! Connection admission: at most so many open connections in all, and from one
//! address. A connection past either bound is closed as soon as it is accepted (a
//! plain-HTTP one is first told `503` with `Retry-After`), so clients already
//! connected keep being served and a flood of idle or trickling connections cannot
//! take every file descriptor and buffer the process has.
use crate::config::ConnectionLimits as Limits;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a refused plain-HTTP connection is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
Retry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 25\r\n\r\ntoo many open connections";

/// Connections one address may hold while three quarters of the total are taken.
pub const UNDER_PRESSURE_PER_ADDRESS: usize = 8;

/// Connections open at once that count as a flood, for [`Admission::flood_passed`].
pub const FLOOD: usize = 256;

/// The open connections, counted per address.
pub struct Admission {
    limits: Limits,
    exempt: Vec<IpAddr>,
    open: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
    refused: AtomicU64,
    /// The most connections open at once since [`Admission::flood_passed`] last said so.
    busiest: AtomicUsize,
    /// When a refusal was last logged, as milliseconds since `started`.
    last_logged: AtomicU64,
    started: Instant,
}

/// One admitted connection; dropping it (when the connection ends) frees its place.
pub struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.total.fetch_sub(1, Ordering::Relaxed);
        let mut open = lock(&self.admission.open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub fn new(limits: Limits, exempt: Vec<IpAddr>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            exempt,
            open: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            busiest: AtomicUsize::new(0),
            last_logged: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// A place for a connection from `ip`, or None past a bound.
    /// Under pressure (three quarters of the total taken), an address that already
    /// holds [`UNDER_PRESSURE_PER_ADDRESS`] connections gets no more: the places that
    /// free go to addresses with few, so a flood spread over many addresses cannot
    /// keep every place refilled while newcomers are refused.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut open = lock(&self.open);
        let from_ip = open.get(&ip).copied().unwrap_or(0);
        let total = self.total.load(Ordering::Relaxed);
        let per_address = if total * 4 >= self.limits.total * 3 {
            self.limits.per_address.min(UNDER_PRESSURE_PER_ADDRESS)
        } else {
            self.limits.per_address
        };
        if total >= self.limits.total || (from_ip >= per_address && !self.exempt.contains(&ip)) {
            return None;
        }
        open.insert(ip, from_ip + 1);
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        self.busiest.fetch_max(total, Ordering::Relaxed);
        Some(Admitted {
            admission: self.clone(),
            ip,
        })
    }

    /// Whether a flood has passed since the last call: at least [`FLOOD`]
    /// connections were open at once, and fewer than a quarter of those are now.
    /// Then the memory their buffers took can be given back (see `memory.rs`).
    pub fn flood_passed(&self) -> bool {
        let busiest = self.busiest.load(Ordering::Relaxed);
        let open = self.open();
        if busiest < FLOOD || open * 4 >= busiest {
            return false;
        }
        self.busiest.store(open, Ordering::Relaxed);
        true
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Connections refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// `HttpServer::on_connect`: admits the connection, or closes it at once.
    pub fn on_connect(self: &Arc<Self>, conn: &dyn Any, ext: &mut Extensions) {
        let Some((tcp, plain)) = tcp_stream(conn) else {
            return;
        };
        let Ok(peer) = tcp.peer_addr() else {
            return;
        };
        if let Some(admitted) = self.admit(peer.ip()) {
            ext.insert(admitted);
            return;
        }
        let sock = socket2::SockRef::from(tcp);
        if plain {
            // A fresh socket's send buffer is empty: this never blocks.
            let _ = sock.send(REFUSAL);
        }
        let _ = sock.shutdown(Shutdown::Both);
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        self.log_refusal(peer.ip(), refused);
    }

    /// At most one line every ten seconds, however many connections are refused.
    fn log_refusal(&self, ip: IpAddr, refused: u64) {
        let now = self.started.elapsed().as_millis() as u64 + 10_000;
        let last = self.last_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn!(
                "refusing connections past the limits ({} in all, {} per address); the latest \
                 from {ip}; {refused} refused since start",
                self.limits.total,
                self.limits.per_address
            );
        }
    }
}

/// The TCP stream under a plain or TLS connection, and whether it is plain.
fn tcp_stream(conn: &dyn Any) -> Option<(&TcpStream, bool)> {
    if let Some(tcp) = conn.downcast_ref::<TcpStream>() {
        return Some((tcp, true));
    }
    conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
        .map(|tls| (tls.get_ref().0, false))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The soft limit on open files, where the system says (Linux's /proc).
pub fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn admits_up_to_each_bound_and_frees_a_place_when_a_connection_ends() {
        let a = Admission::new(
            Limits {
                total: 3,
                per_address: 2,
            },
            vec![ip(9)],
        );
        let first = a.admit(ip(1)).unwrap();
        let _second = a.admit(ip(1)).unwrap();
        assert!(a.admit(ip(1)).is_none(), "a third from one address");
        let _other = a.admit(ip(2)).unwrap();
        assert!(a.admit(ip(3)).is_none(), "a fourth in all");
        assert_eq!(a.open(), 3);
        drop(first);
        assert_eq!(a.open(), 2);
        assert!(a.admit(ip(1)).is_some(), "the freed place is taken again");
    }

    #[test]
    fn under_pressure_an_address_holding_many_gets_no_more_and_newcomers_get_in() {
        let a = Admission::new(
            Limits {
                total: 40,
                per_address: 30,
            },
            vec![],
        );
        let mut held: Vec<_> = (0..20).map(|_| a.admit(ip(1)).unwrap()).collect();
        held.extend((0..10).map(|_| a.admit(ip(2)).unwrap()));
        assert_eq!(a.open(), 30, "three quarters taken");
        assert!(a.admit(ip(1)).is_none(), "20 held: past the pressure bound");
        assert!(a.admit(ip(2)).is_none(), "10 held: past it too");
        for n in 3..=12 {
            held.push(a.admit(ip(n)).expect("a newcomer gets in"));
        }
        assert!(a.admit(ip(13)).is_none(), "the total is full");
        held.truncate(5);
        assert!(
            a.admit(ip(2)).is_some(),
            "below three quarters: the usual bound"
        );
    }

    #[test]
    fn a_flood_has_passed_once_most_of_its_connections_are_gone() {
        let a = Admission::new(Limits::default(), vec![]);
        let mut held: Vec<_> = (0..FLOOD)
            .map(|n| a.admit(ip((n % 200) as u8)).unwrap())
            .collect();
        assert!(!a.flood_passed(), "still open");
        held.truncate(FLOOD / 4);
        assert!(!a.flood_passed(), "a quarter still open");
        held.truncate(FLOOD / 4 - 1);
        assert!(a.flood_passed());
        assert!(!a.flood_passed(), "said once");
    }

    #[test]
    fn trusted_proxies_have_no_per_address_bound() {
        let a = Admission::new(
            Limits {
                total: 10,
                per_address: 1,
            },
            vec![ip(9)],
        );
        let held: Vec<_> = (0..5).map(|_| a.admit(ip(9)).unwrap()).collect();
        assert_eq!(held.len(), 5);
    }

    #[test]
    fn the_open_files_limit_is_read() {
        if cfg!(target_os = "linux") {
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }
}
