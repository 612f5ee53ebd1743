//! The metrics endpoint (issue 13 §4) scraped by a real Prometheus server
//! (Debian's `prometheus`, installed by `cargo xtask setup`), started here on
//! loopback with a scrape configuration pointing at the helper; after a known
//! workload, PromQL through its HTTP API returns the expected counts.

use super::Helper;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Prometheus may take to start and scrape what the test expects.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(90);

/// A function only this test calls, counted through a uprobe.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn microscope_metrics_test_function(n: u64) -> u64 {
    std::hint::black_box(n ^ 0x5a)
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on `addr`; the body, or `None` when nothing answers yet.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The one value of an instant PromQL query, once it has one.
fn promql(prometheus: SocketAddr, query: &str) -> Option<f64> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    let body = http_get(prometheus, &format!("/api/v1/query?query={encoded}"))?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = json.pointer("/data/result")?.as_array()?;
    let [one] = result.as_slice() else {
        return None;
    };
    one.pointer("/value/1")?.as_str()?.parse().ok()
}

/// Prometheus on loopback, stopped when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(dir: &Path, target: SocketAddr) -> Self {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
                 - job_name: microscope\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "prometheus runs (apt-get install prometheus; `cargo xtask setup` installs it)",
            );
        Self { child, addr }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `query` until it equals `expected` (what Prometheus scraped last
/// may lag a second behind); fails with the last value seen.
fn wait_for_value(prometheus: &Prometheus, query: &str, expected: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + PROMETHEUS_TIMEOUT;
    let mut last = None;
    while Instant::now() < deadline {
        last = promql(prometheus.addr, query);
        if let Some(value) = last
            && expected(value)
        {
            return value;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("Prometheus answered {last:?} to `{query}` after {PROMETHEUS_TIMEOUT:?}");
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn prometheus_scrapes_the_counts_of_a_known_workload() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let uprobe = format!("uprobe:{}:microscope_metrics_test_function", exe.display());
    let config = dir.path().join("metrics.toml");
    std::fs::write(
        &config,
        format!(
            "# what the endpoint runs\nprobes = [\"{uprobe}\", \"raw_syscalls:sys_enter\", \
             \"syscalls:sys_enter_openat\"]\ncost = true\n"
        ),
    )
    .unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _helper = Helper::start_with(&[
        "--metrics".as_ref(),
        metrics.to_string().as_ref(),
        "--metrics-config".as_ref(),
        config.as_os_str(),
    ]);
    // The endpoint's probes are on once it says so (no app is connected).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = http_get(metrics, "/metrics").unwrap_or_default();
        if body.contains(&format!("microscope_probe_enabled{{probe=\"{uprobe}\"}} 1"))
            && body.contains("microscope_probe_enabled{probe=\"raw_syscalls:sys_enter\"} 1")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the endpoint's probes were not enabled:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The known workload: calls only this process makes, and getppid()s
    // and opens of a path of our own.
    const CALLS: u64 = 4_321;
    for i in 0..CALLS {
        microscope_metrics_test_function(i);
        nix::unistd::getppid();
    }
    let prometheus = Prometheus::start(dir.path(), metrics);

    let calls = format!("microscope_function_calls_total{{probe=\"{uprobe}\"}}");
    let value = wait_for_value(&prometheus, &calls, |v| v >= CALLS as f64);
    assert_eq!(value, CALLS as f64, "{calls}");
    let count = format!("microscope_function_latency_seconds_count{{probe=\"{uprobe}\"}}");
    assert_eq!(wait_for_value(&prometheus, &count, |_| true), CALLS as f64);
    // Every call is in a bucket below +Inf: the histogram is whole.
    let inf =
        format!("microscope_function_latency_seconds_bucket{{probe=\"{uprobe}\",le=\"+Inf\"}}");
    assert_eq!(wait_for_value(&prometheus, &inf, |_| true), CALLS as f64);
    // Other processes may call getppid too: at least ours.
    let getppid = wait_for_value(
        &prometheus,
        "microscope_syscalls_total{syscall=\"getppid\"}",
        |v| v >= CALLS as f64,
    );
    assert!(getppid >= CALLS as f64);
    // Streamed events and the cost figures are there too.
    wait_for_value(
        &prometheus,
        "microscope_events_total{probe=\"syscalls:sys_enter_openat\"}",
        |v| v > 0.0,
    );
    wait_for_value(
        &prometheus,
        &format!("sum(microscope_bpf_runs_total{{probe=\"{uprobe}\"}})"),
        |v| v >= 2.0 * CALLS as f64,
    );
    wait_for_value(&prometheus, "microscope_helper_resident_bytes", |v| {
        v > 1_048_576.0
    });
}

#[test]
#[ignore = "needs root to load eBPF; `cargo xtask test` runs it as root"]
fn a_bad_metrics_setup_stops_the_helper_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("metrics.toml");
    std::fs::write(&config, "probes = \"sched:sched_switch\"\n").unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_microscoped"))
            .arg("--socket")
            .arg(dir.path().join("s.sock"))
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let config_arg = config.to_str().unwrap();
    let err = run(&["--metrics", "127.0.0.1:0", "--metrics-config", config_arg]);
    assert!(
        err.contains("is not valid") && err.contains("probes = ["),
        "{err}"
    );
    let err = run(&["--metrics", "0.0.0.0:9464", "--metrics-config", config_arg]);
    assert!(err.contains("--metrics-allow-remote"), "{err}");
    let missing = dir.path().join("nope.toml");
    let err = run(&[
        "--metrics",
        "127.0.0.1:0",
        "--metrics-config",
        missing.to_str().unwrap(),
    ]);
    assert!(
        err.contains("could not read the metrics configuration"),
        "{err}"
    );
}
