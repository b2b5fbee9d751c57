//! A host of its own on this machine: a network namespace joined to this
//! one by a veth pair, whose link a test takes down to cut the host off
//! without stopping it (its connections stall, as across a real network
//! partition; nothing is refused). Traffic stays on this machine.
//!
//! The servers listen on 127.0.0.1 and the broker advertises
//! 127.0.0.1:9092, so inside the namespace `socat` listens on those
//! loopback ports and forwards across the link to this side's end, where a
//! [`Proxy`](super::proxy::Proxy) hands on to the real server.

use std::process::{Child, Command, Stdio};

use super::proxy::Proxy;

pub struct NetNs {
    pub name: String,
    /// This side's end of the link.
    veth: String,
    forwarders: Vec<Child>,
    _proxies: Vec<Proxy>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    /// A namespace numbered `n` (1-250, unique among the tests running at
    /// once) that reaches this side's servers on `ports` as 127.0.0.1.
    pub fn new(n: u8, ports: &[u16]) -> NetNs {
        let tag = format!("{}{n}", std::process::id() % 10_000);
        let (name, veth, peer) = (format!("b2k{tag}"), format!("vb{tag}"), format!("vp{tag}"));
        let (here, there) = (format!("10.213.{n}.1"), format!("10.213.{n}.2"));
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &name]);
        ip(&["addr", "add", &format!("{here}/30"), "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{there}/30"),
            "dev",
            &peer,
        ]);
        ip(&["-n", &name, "link", "set", &peer, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let mut proxies = Vec::new();
        let mut forwarders = Vec::new();
        for &port in ports {
            let proxy = Proxy::start_at(&here, 0, port);
            forwarders.push(
                Command::new("ip")
                    .args(["netns", "exec", &name, "socat"])
                    .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
                    .arg(format!("TCP:{here}:{}", proxy.port))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("run socat (scripts/testenv installs it)"),
            );
            proxies.push(proxy);
        }
        // socat listens once it has started.
        for &port in ports {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let ok = Command::new("ip")
                    .args(["netns", "exec", &name, "bash", "-c"])
                    .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}"))
                    .status()
                    .unwrap()
                    .success();
                if ok {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "socat in {name} does not listen on {port}"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        NetNs {
            name,
            veth,
            forwarders,
            _proxies: proxies,
        }
    }

    /// The command prefix that runs a program inside the namespace.
    pub fn exec(&self) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.name.clone(),
        ]
    }

    /// Takes the link down (`up` false) or brings it back.
    pub fn link(&self, up: bool) {
        ip(&["link", "set", &self.veth, if up { "up" } else { "down" }]);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for f in &mut self.forwarders {
            let _ = f.kill();
            let _ = f.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
