//! A TCP proxy for fault tests: sits between the daemon and a server and can
//! cut connections (and refuse new ones), black-hole them (accept and read,
//! never answer), or delay them, so network faults are reproducible.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const PASS: u8 = 0;
const CUT: u8 = 1;
const BLACKHOLE: u8 = 2;

pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    delay_ms: Arc<AtomicU64>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on 127.0.0.1:`port` (0 = any free port) and forwards to
    /// 127.0.0.1:`target`.
    pub fn start(port: u16, target: u16) -> Proxy {
        Proxy::start_at("127.0.0.1", port, target)
    }

    /// Listens on `ip`:`port` (a namespace's link to this side) and
    /// forwards to 127.0.0.1:`target`.
    pub fn start_at(ip: &str, port: u16, target: u16) -> Proxy {
        let listener = TcpListener::bind((ip, port)).expect("bind proxy port");
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let live = Arc::new(Mutex::new(Vec::new()));
        let (m, d, l) = (mode.clone(), delay_ms.clone(), live.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if m.load(Ordering::SeqCst) == CUT {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                l.lock().unwrap().push(client.try_clone().unwrap());
                l.lock().unwrap().push(server.try_clone().unwrap());
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    m.clone(),
                    d.clone(),
                );
                pump(server, client, m.clone(), d.clone());
            }
        });
        Proxy {
            port,
            mode,
            delay_ms,
            live,
        }
    }

    /// Closes every open connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Keeps connections open but forwards nothing in either direction.
    pub fn blackhole(&self) {
        self.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    /// Adds `ms` of latency to every chunk forwarded.
    pub fn delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.delay_ms.store(0, Ordering::SeqCst);
        self.mode.store(PASS, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>, delay_ms: Arc<AtomicU64>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match mode.load(Ordering::SeqCst) {
                CUT => break,
                BLACKHOLE => continue,
                _ => {}
            }
            let d = delay_ms.load(Ordering::SeqCst);
            if d > 0 {
                thread::sleep(Duration::from_millis(d));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// A proxy for the Kafka protocol that can lose the broker's answer to a
/// produce request: the request reaches the broker (which stores the
/// batch), its answer is dropped and the connection closed, as when a
/// network fails between the broker's write and the client.
pub struct KafkaProxy {
    pub port: u16,
    /// Lose the answer to the next Produce request at least this large
    /// (0: none armed). Commit-log checkpoints are small; data batches of
    /// many rows are not.
    arm_min_bytes: Arc<AtomicU64>,
    /// Answers lost so far.
    pub lost: Arc<AtomicU64>,
}

impl KafkaProxy {
    pub fn start(port: u16, target: u16) -> KafkaProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind proxy port");
        let port = listener.local_addr().unwrap().port();
        let arm = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let (a, l) = (arm.clone(), lost.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                // The correlation id whose answer is to be lost (-1: none).
                let doomed = Arc::new(std::sync::atomic::AtomicI64::new(-1));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (a2, d2) = (a.clone(), doomed.clone());
                thread::spawn(move || {
                    frames(c2, s2, |f| {
                        let api_key = i16::from_be_bytes([f[0], f[1]]);
                        let corr = i32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                        let min = a2.load(Ordering::SeqCst);
                        if api_key == 0 && min > 0 && f.len() as u64 >= min {
                            a2.store(0, Ordering::SeqCst);
                            d2.store(corr as i64, Ordering::SeqCst);
                        }
                        true
                    })
                });
                let l2 = l.clone();
                thread::spawn(move || {
                    frames(server, client, |f| {
                        let corr = i32::from_be_bytes([f[0], f[1], f[2], f[3]]);
                        if doomed.load(Ordering::SeqCst) == corr as i64 {
                            l2.fetch_add(1, Ordering::SeqCst);
                            return false;
                        }
                        true
                    })
                });
            }
        });
        KafkaProxy {
            port,
            arm_min_bytes: arm,
            lost,
        }
    }

    /// Loses the answer to the next Produce request of `min_bytes` or more.
    pub fn lose_next_produce_answer(&self, min_bytes: u64) {
        self.arm_min_bytes.store(min_bytes, Ordering::SeqCst);
    }
}

/// Forwards length-prefixed frames from `from` to `to` while `keep(frame)`
/// says so; a frame it refuses ends the connection (both ways).
fn frames(mut from: TcpStream, mut to: TcpStream, mut keep: impl FnMut(&[u8]) -> bool) {
    loop {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        if from.read_exact(&mut frame).is_err() || frame.len() < 8 {
            break;
        }
        if !keep(&frame) {
            break;
        }
        if to.write_all(&len).is_err() || to.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
