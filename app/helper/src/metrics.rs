//! The Prometheus endpoint (`microscoped --metrics 127.0.0.1:9464`): what
//! the probes of `/etc/microscope/metrics.toml` count, in the Prometheus
//! text exposition format, for machines watched by Prometheus and Grafana.
//!
//! Three parts, so that a remote scraper can never stall the hub:
//! - **the metrics client** (thread `microscoped-metrics`) connects to the
//!   helper's own socket like any client, enables the configured probes
//!   (they then stay attached while no app is connected) and turns every
//!   message into a [`Snapshot`]: it is held to the same bounds as every
//!   other client, and if it read too slowly only its own data would be
//!   dropped;
//! - **the snapshot**, behind a mutex held only to apply one message or to
//!   encode one scrape;
//! - **the HTTP server** on the tokio runtime: at most
//!   [`MAX_SCRAPES`] connections at once (more are closed at once), a
//!   request head of at most [`MAX_REQUEST_BYTES`] read within
//!   [`SCRAPE_TIMEOUT`], the answer written within it too.
//!
//! Encoding uses `prometheus-client`, the Prometheus project's own Rust
//! client: its text encoder gets names, escaping, `le` labels and the
//! `_bucket`/`_sum`/`_count` series right, and its `Collector` trait reads
//! our snapshot at scrape time instead of keeping a second copy of every
//! value. The HTTP part is a few lines over tokio (one `GET /metrics`,
//! `Connection: close`): a web framework would add more code than it saves.

use microscope_wire::{Aggregates, ClientMessage, Connection, CostReport, HelperMessage, ProbeKey};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Where the endpoint's configuration is read from by default.
pub const DEFAULT_CONFIG: &str = "/etc/microscope/metrics.toml";
/// Scrapes served at once; more connections are closed at once.
pub const MAX_SCRAPES: usize = 4;
/// Longest request head read.
pub const MAX_REQUEST_BYTES: usize = 8 << 10;
/// Time a scraper has to send its request and to take the answer.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most probes a configuration may name.
pub const MAX_CONFIG_PROBES: usize = 64;

/// `metrics.toml`: which probes run for the endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Probe ids, as `microscope probes` lists them.
    #[serde(default)]
    pub probes: Vec<String>,
    /// Keep the kernel's BPF run-time statistics on for the cost figures
    /// (every BPF program on the machine then pays two clock reads per run).
    #[serde(default)]
    pub cost: bool,
}

/// How the endpoint is set up (from the command line).
#[derive(Clone, Debug)]
pub struct MetricsOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// The configuration file.
    pub config: PathBuf,
    /// Whether `config` was given explicitly (then it must exist).
    pub config_given: bool,
    /// Listen on a non-loopback address (`--metrics-allow-remote`).
    pub allow_remote: bool,
}

/// Refuses a non-loopback address unless `allow_remote`. An error is a
/// sentence.
pub fn check_address(addr: SocketAddr, allow_remote: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    Err(format!(
        "--metrics {addr} would let every machine that can reach this one read what the kernel \
         does here; use a loopback address such as 127.0.0.1:{} (and a reverse proxy or an SSH \
         tunnel), or pass --metrics-allow-remote if that is what you want",
        addr.port()
    ))
}

/// Reads the configuration. A missing file at the default path means no
/// probes (the endpoint still serves the helper's own figures); a missing
/// file given explicitly, or a bad one, is an error sentence.
pub fn load_config(path: &Path, given: bool) -> Result<MetricsConfig, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !given => {
            log::warn!(
                "{} does not exist, so the metrics endpoint runs no probe of its own; list \
                 some there (see the README)",
                path.display()
            );
            return Ok(MetricsConfig::default());
        }
        Err(err) => {
            return Err(format!(
                "could not read the metrics configuration {}: {err}",
                path.display()
            ));
        }
    };
    parse_config(&text).map_err(|reason| {
        format!(
            "the metrics configuration {} is not valid: {reason}",
            path.display()
        )
    })
}

/// Parses `metrics.toml`; an error says where and what.
pub fn parse_config(text: &str) -> Result<MetricsConfig, String> {
    let config: MetricsConfig = toml::from_str(text).map_err(|err| {
        format!(
            "{}; it takes `probes = [\"id\", ...]` and `cost = true|false`",
            err.to_string().trim_end()
        )
    })?;
    if config.probes.len() > MAX_CONFIG_PROBES {
        return Err(format!(
            "it lists {} probes, more than the {MAX_CONFIG_PROBES} the endpoint runs",
            config.probes.len()
        ));
    }
    if let Some(bad) = config
        .probes
        .iter()
        .find(|p| p.is_empty() || p.len() > 4096 || p.contains(char::is_whitespace))
    {
        return Err(format!("`{bad}` is not a probe id"));
    }
    Ok(config)
}

/// Everything the endpoint shows, updated message by message.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Probe ids by key.
    names: BTreeMap<ProbeKey, String>,
    /// Configured probes: whether each is enabled (or why not).
    configured: BTreeMap<String, Result<(), String>>,
    /// Records streamed per probe since the endpoint started.
    events: BTreeMap<ProbeKey, u64>,
    /// Latest (kernel, client) drop totals per probe.
    drops: BTreeMap<ProbeKey, (u64, u64)>,
    /// Latest in-kernel aggregates (cumulative).
    aggregates: Option<Aggregates>,
    /// Latest log2 histograms of pack probes: (probe, map, label) → (unit, buckets).
    pack_histograms: BTreeMap<(ProbeKey, String, String), (String, Vec<u64>)>,
    /// Latest cost report, and run time and runs per program summed over
    /// every report since the endpoint started (key: probe, program id).
    cost: Option<CostReport>,
    run_totals: BTreeMap<(ProbeKey, String, u32), (u64, u64)>,
}

impl Snapshot {
    /// Takes one message from the helper.
    pub fn apply(&mut self, message: HelperMessage) {
        match message {
            HelperMessage::Probes(probes) => {
                self.names = probes.into_iter().map(|p| (p.key, p.id)).collect();
            }
            HelperMessage::ProbeAdded(probe) => {
                self.names.insert(probe.key, probe.id);
            }
            HelperMessage::Batch(batch) => {
                for event in &batch.events {
                    *self.events.entry(event.probe).or_default() += 1;
                }
                for stats in batch.stats {
                    self.drops
                        .insert(stats.probe, (stats.kernel_drops, stats.client_drops));
                }
            }
            HelperMessage::Aggregates(aggregates) => self.aggregates = Some(aggregates),
            HelperMessage::PackData(data) => {
                for h in data.histograms {
                    self.pack_histograms
                        .insert((data.probe, h.map, h.label), (h.unit, h.buckets));
                }
            }
            HelperMessage::Cost(report) => {
                for probe in &report.probes {
                    for program in &probe.programs {
                        let total = self
                            .run_totals
                            .entry((probe.probe, program.name.clone(), program.id))
                            .or_default();
                        total.0 += program.interval_run_time_ns;
                        total.1 += program.interval_run_count;
                    }
                }
                self.cost = Some(report);
            }
            HelperMessage::Hello(_)
            | HelperMessage::ProbeState { .. }
            | HelperMessage::Error { .. }
            | HelperMessage::Tracepoints(_)
            | HelperMessage::KernelFunctions { .. }
            | HelperMessage::Filter(_)
            | HelperMessage::Stacks(_)
            | HelperMessage::VerifierLog { .. }
            | HelperMessage::CostWatch { .. } => {}
        }
    }

    /// Notes whether configured probe `id` could be enabled.
    pub fn configured(&mut self, id: &str, outcome: Result<(), String>) {
        self.configured.insert(id.to_owned(), outcome);
    }

    fn name(&self, key: ProbeKey) -> String {
        self.names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("probe {key}"))
    }
}

/// A log2 histogram as Prometheus buckets: bucket `i` counts values in
/// `[2^i, 2^(i+1))` of the unit, so its upper bound (`le`) is `2^(i+1)`
/// times `scale`. The sum is estimated at each bucket's middle (the kernel
/// keeps no sum); the count is exact.
fn log2_histogram(buckets: &[u64], scale: f64) -> (f64, u64, Vec<(f64, u64)>) {
    let mut sum = 0.0;
    let mut count = 0;
    let mut out = Vec::with_capacity(buckets.len());
    for (i, n) in buckets.iter().enumerate() {
        let low = if i == 0 { 0.0 } else { 2f64.powi(i as i32) };
        let high = 2f64.powi(i as i32 + 1);
        sum += *n as f64 * (low + high) / 2.0 * scale;
        count += n;
        out.push((high * scale, *n));
    }
    // Trailing empty buckets say nothing; +Inf closes the series.
    while out.len() > 1 && out.last().is_some_and(|(_, n)| *n == 0) {
        out.pop();
    }
    (sum, count, out)
}

/// Reads the [`Snapshot`] at every scrape.
#[derive(Debug)]
struct SnapshotCollector(Arc<Mutex<Snapshot>>);

type Labels = Vec<(&'static str, String)>;

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let probe = |key| -> Labels { vec![("probe", s.name(key))] };

        let mut family = encoder.encode_descriptor(
            "microscope_probe_enabled",
            "Whether a probe of metrics.toml is enabled for the endpoint (0: refused; see the helper's log)",
            None,
            MetricType::Gauge,
        )?;
        for (id, outcome) in &s.configured {
            let labels: Labels = vec![("probe", id.clone())];
            family
                .encode_family(&labels)?
                .encode_gauge(&i64::from(outcome.is_ok()))?;
        }

        let mut family = encoder.encode_descriptor(
            "microscope_events",
            "Records a probe streamed since the endpoint started",
            None,
            MetricType::Counter,
        )?;
        for (key, n) in &s.events {
            family
                .encode_family(&probe(*key))?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }

        for (name, help, pick) in [
            (
                "microscope_kernel_drops",
                "Records lost in the kernel (ring buffer full), since the helper loaded the probe",
                0,
            ),
            (
                "microscope_client_drops",
                "Records the endpoint lost because it read too slowly",
                1,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (key, drops) in &s.drops {
                let n = if pick == 0 { drops.0 } else { drops.1 };
                family
                    .encode_family(&probe(*key))?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }

        if let Some(aggregates) = &s.aggregates {
            let mut family = encoder.encode_descriptor(
                "microscope_syscalls",
                "System calls by name, counted in the kernel (raw_syscalls:sys_enter)",
                None,
                MetricType::Counter,
            )?;
            for (nr, n) in &aggregates.syscall_counts {
                let name = syscalls::Sysno::new(*nr as usize)
                    .map_or_else(|| format!("syscall_{nr}"), |s| s.name().to_owned());
                let labels: Labels = vec![("syscall", name)];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
            if !aggregates.latency_log2_ns.is_empty() {
                let (sum, count, buckets) = log2_histogram(&aggregates.latency_log2_ns, 1e-9);
                encoder
                    .encode_descriptor(
                        "microscope_syscall_latency_seconds",
                        "System call latency, log2 buckets counted in the kernel (sum estimated)",
                        None,
                        MetricType::Histogram,
                    )?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
            let mut family = encoder.encode_descriptor(
                "microscope_function_calls",
                "Calls of a probed kernel or user function, counted in the kernel",
                None,
                MetricType::Counter,
            )?;
            for f in &aggregates.functions {
                family
                    .encode_family(&probe(f.probe))?
                    .encode_counter::<NoLabelSet, _, u64>(&f.calls, None)?;
            }
            let mut family = encoder.encode_descriptor(
                "microscope_function_latency_seconds",
                "Entry-to-exit time of a probed function, log2 buckets counted in the kernel (sum estimated)",
                None,
                MetricType::Histogram,
            )?;
            for f in &aggregates.functions {
                let (sum, count, buckets) = log2_histogram(&f.latency_log2_ns, 1e-9);
                family
                    .encode_family(&probe(f.probe))?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "microscope_pack_histogram",
            "A pack probe's log2 histogram map, in the unit of its `unit` label (sum estimated)",
            None,
            MetricType::Histogram,
        )?;
        for ((key, map, label), (unit, buckets)) in &s.pack_histograms {
            let labels: Labels = vec![
                ("probe", s.name(*key)),
                ("map", map.clone()),
                ("key", label.clone()),
                ("unit", unit.clone()),
            ];
            let (sum, count, buckets) = log2_histogram(buckets, 1.0);
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        encode_cost(&s, &mut encoder)
    }
}

/// The cost figures (issue 13 §1), when the configuration asks for them.
fn encode_cost(s: &Snapshot, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let Some(cost) = &s.cost else {
        return Ok(());
    };
    for (name, help, time) in [
        (
            "microscope_bpf_run_time_seconds",
            "Time a probe's BPF program ran in the kernel (BPF run-time statistics) since the endpoint started",
            true,
        ),
        (
            "microscope_bpf_runs",
            "Runs of a probe's BPF program since the endpoint started",
            false,
        ),
    ] {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for ((key, program, id), (ns, runs)) in &s.run_totals {
            let labels: Labels = vec![
                ("probe", s.name(*key)),
                ("program", program.clone()),
                ("id", id.to_string()),
            ];
            let mut metric = family.encode_family(&labels)?;
            if time {
                metric.encode_counter::<NoLabelSet, _, f64>(&(*ns as f64 * 1e-9), None)?;
            } else {
                metric.encode_counter::<NoLabelSet, _, u64>(runs, None)?;
            }
        }
    }
    let mut family = encoder.encode_descriptor(
        "microscope_ring_fill_ratio",
        "Peak fill of the ring buffer a probe writes into, over the last second",
        None,
        MetricType::Gauge,
    )?;
    for p in cost.probes.iter().filter(|p| p.ring_bytes > 0) {
        let labels: Labels = vec![("probe", s.name(p.probe))];
        family
            .encode_family(&labels)?
            .encode_gauge(&(p.ring_peak_bytes as f64 / p.ring_bytes as f64))?;
    }
    encoder
        .encode_descriptor(
            "microscope_helper_cpu_seconds",
            "CPU time microscoped used (user + system, every thread)",
            None,
            MetricType::Counter,
        )?
        .encode_counter::<NoLabelSet, _, f64>(&(cost.helper.cpu_ns as f64 * 1e-9), None)?;
    encoder
        .encode_descriptor(
            "microscope_helper_resident_bytes",
            "Resident memory of microscoped",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&(i64::try_from(cost.helper.rss_bytes).unwrap_or(i64::MAX)))?;
    Ok(())
}

/// The endpoint's registry over `snapshot`.
fn registry(snapshot: Arc<Mutex<Snapshot>>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot)));
    registry
}

/// The text a scrape returns.
fn render(registry: &Registry) -> String {
    let mut text = String::new();
    if let Err(err) = prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
        log::error!("could not encode the metrics: {err}");
    }
    text
}

/// Starts the endpoint: binds `options.addr` (an error is a sentence), the
/// metrics client (which connects to `socket` and enables `config`'s
/// probes) and the HTTP server on the current tokio runtime.
pub async fn start(
    options: &MetricsOptions,
    config: MetricsConfig,
    socket: PathBuf,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|err| format!("could not listen on {} for metrics: {err}", options.addr))?;
    let snapshot = Arc::new(Mutex::new(Snapshot::default()));
    let client_snapshot = snapshot.clone();
    std::thread::Builder::new()
        .name("microscoped-metrics".to_owned())
        .spawn(move || metrics_client(&socket, &config, &client_snapshot))
        .map_err(|err| format!("could not start the metrics client: {err}"))?;
    let registry = Arc::new(registry(snapshot));
    log::info!(
        "serving Prometheus metrics on http://{}/metrics",
        options.addr
    );
    tokio::spawn(serve_http(listener, registry));
    Ok(())
}

/// Accepts scrapers, at most [`MAX_SCRAPES`] at once.
async fn serve_http(listener: tokio::net::TcpListener, registry: Arc<Registry>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                log::warn!("metrics: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            log::debug!("metrics: {peer} refused, {MAX_SCRAPES} scrapes in progress");
            drop(stream);
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if tokio::time::timeout(SCRAPE_TIMEOUT, answer(stream, &registry))
                .await
                .is_err()
            {
                log::debug!("metrics: {peer} too slow; closed");
            }
        });
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: tokio::net::TcpStream, registry: &Registry) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_REQUEST_BYTES {
            let _ = stream
                .write_all(&response(431, "text/plain", "request too large\n"))
                .await;
            return;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    let line = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or_default())
        .trim()
        .to_owned();
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let reply = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => response(
            200,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            &render(registry),
        ),
        ("GET", "/") => response(
            200,
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">Microscope metrics</a></body></html>\n",
        ),
        ("GET", _) => response(
            404,
            "text/plain",
            "not found: the metrics are at /metrics\n",
        ),
        _ => response(405, "text/plain", "only GET is served\n"),
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
}

fn response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The endpoint's own client of the helper: enables the configured probes
/// and keeps the snapshot up to date; reconnects after an error.
fn metrics_client(socket: &Path, config: &MetricsConfig, snapshot: &Mutex<Snapshot>) {
    loop {
        match serve_snapshot(socket, config, snapshot) {
            Ok(()) => return,
            Err(err) => log::warn!("metrics: the connection to the helper ended ({err})"),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn serve_snapshot(
    socket: &Path,
    config: &MetricsConfig,
    snapshot: &Mutex<Snapshot>,
) -> Result<(), microscope_wire::ClientError> {
    let mut connection = Connection::connect(socket)?;
    let apply = |message: HelperMessage| {
        snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(message);
    };
    apply(HelperMessage::Probes(connection.list_probes()?));
    for id in &config.probes {
        let outcome = match connection.enable_probe(id) {
            Ok(replies) => {
                replies.into_iter().for_each(apply);
                Ok(())
            }
            Err(microscope_wire::ClientError::Refused(reason)) => {
                log::warn!("metrics: probe {id} not enabled: {reason}");
                Err(reason)
            }
            Err(err) => return Err(err),
        };
        snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .configured(id, outcome);
    }
    if config.cost {
        connection.send(&ClientMessage::WatchCost { watch: true })?;
    }
    loop {
        apply(connection.recv()?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microscope_wire::{Event, EventBatch, EventData, FunctionStats, ProbeInfo, ProbeStats};

    #[test]
    fn addresses_other_than_loopback_need_the_flag() {
        let local: SocketAddr = "127.0.0.1:9464".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        assert!(check_address(local, false).is_ok());
        assert!(check_address("[::1]:9464".parse().unwrap(), false).is_ok());
        let err = check_address(any, false).unwrap_err();
        assert!(err.contains("--metrics-allow-remote"), "{err}");
        assert!(check_address(any, true).is_ok());
    }

    #[test]
    fn bad_configurations_get_a_sentence() {
        assert_eq!(
            parse_config("probes = [\"raw_syscalls:sys_enter\"]\ncost = true\n"),
            Ok(MetricsConfig {
                probes: vec!["raw_syscalls:sys_enter".into()],
                cost: true
            })
        );
        assert_eq!(parse_config(""), Ok(MetricsConfig::default()));
        let err = parse_config("probes = \"sched:sched_switch\"").unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("probes = ["),
            "{err}"
        );
        let err = parse_config("probe = []").unwrap_err();
        assert!(err.contains("unknown field `probe`"), "{err}");
        let err = parse_config("probes = [\"a b\"]").unwrap_err();
        assert!(err.contains("`a b` is not a probe id"), "{err}");
        let many = format!("probes = [{}]", vec!["\"x:y\""; 65].join(","));
        assert!(parse_config(&many).unwrap_err().contains("65 probes"));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("metrics.toml");
        assert_eq!(load_config(&missing, false), Ok(MetricsConfig::default()));
        let err = load_config(&missing, true).unwrap_err();
        assert!(
            err.contains("could not read the metrics configuration"),
            "{err}"
        );
        std::fs::write(&missing, "cost = maybe").unwrap();
        let err = load_config(&missing, true).unwrap_err();
        assert!(err.contains("is not valid"), "{err}");
    }

    fn info(key: ProbeKey, id: &str) -> ProbeInfo {
        ProbeInfo {
            id: id.into(),
            key,
            subsystem: String::new(),
            description: String::new(),
            kind: microscope_wire::ProbeKind::Stream,
            availability: microscope_wire::Availability::yes(""),
            enabled: true,
            fields: Vec::new(),
        }
    }

    #[test]
    fn the_snapshot_renders_as_prometheus_text() {
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        {
            let mut s = snapshot.lock().unwrap();
            s.apply(HelperMessage::Probes(vec![info(1, "sched:sched_switch")]));
            s.apply(HelperMessage::ProbeAdded(info(2, "func:vfs_read")));
            s.configured("sched:sched_switch", Ok(()));
            let event = Event {
                probe: 1,
                cpu: 0,
                ts_ns: 1,
                pid: 1,
                tgid: 1,
                comm: "a".into(),
                data: EventData::Fields(Vec::new()),
            };
            s.apply(HelperMessage::Batch(EventBatch {
                events: vec![event.clone(), event],
                stats: vec![ProbeStats {
                    probe: 1,
                    kernel_drops: 3,
                    client_drops: 0,
                }],
            }));
            let mut latency = vec![0; 64];
            latency[10] = 4; // [1024, 2048) ns
            s.apply(HelperMessage::Aggregates(Aggregates {
                ts_ns: 1,
                syscall_counts: vec![(0, 7), (257, 5)],
                latency_log2_ns: latency.clone(),
                functions: vec![FunctionStats {
                    probe: 2,
                    calls: 4,
                    latency_log2_ns: latency,
                }],
            }));
        }
        let text = render(&registry(snapshot));
        for line in [
            "microscope_probe_enabled{probe=\"sched:sched_switch\"} 1",
            "microscope_events_total{probe=\"sched:sched_switch\"} 2",
            "microscope_kernel_drops_total{probe=\"sched:sched_switch\"} 3",
            "microscope_syscalls_total{syscall=\"read\"} 7",
            "microscope_syscalls_total{syscall=\"openat\"} 5",
            "microscope_syscall_latency_seconds_bucket{le=\"1.024e-06\"} 0",
            "microscope_syscall_latency_seconds_bucket{le=\"2.048e-06\"} 4",
            "microscope_syscall_latency_seconds_bucket{le=\"+Inf\"} 4",
            "microscope_syscall_latency_seconds_count 4",
            "microscope_function_calls_total{probe=\"func:vfs_read\"} 4",
            "microscope_function_latency_seconds_count{probe=\"func:vfs_read\"} 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        assert!(text.contains("# TYPE microscope_syscall_latency_seconds histogram"));
    }

    /// Names of the form `microscope_…` in `text`.
    fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("microscope_"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_shipped_config_parses_and_the_dashboard_reads_only_what_is_served() {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets");
        let example = std::fs::read_to_string(assets.join("package/metrics.toml")).unwrap();
        let config = parse_config(&example).unwrap();
        assert!(config.probes.contains(&"raw_syscalls:sys_enter".to_owned()));
        // A snapshot with every family: events, drops, aggregates, a pack
        // histogram, a cost report.
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        {
            let mut s = snapshot.lock().unwrap();
            s.configured("x:y", Ok(()));
            s.apply(HelperMessage::Batch(EventBatch {
                events: Vec::new(),
                stats: vec![ProbeStats::default()],
            }));
            s.events.insert(1, 1);
            s.apply(HelperMessage::Aggregates(Aggregates {
                ts_ns: 1,
                syscall_counts: vec![(0, 1)],
                latency_log2_ns: vec![1],
                functions: vec![FunctionStats {
                    probe: 2,
                    calls: 1,
                    latency_log2_ns: vec![1],
                }],
            }));
            s.apply(HelperMessage::PackData(microscope_wire::PackData {
                probe: 3,
                ts_ns: 1,
                tables: Vec::new(),
                histograms: vec![microscope_wire::PackHistogram {
                    map: "hist".into(),
                    label: "all".into(),
                    unit: "µs".into(),
                    buckets: vec![1],
                }],
            }));
            s.apply(HelperMessage::Cost(CostReport {
                probes: vec![microscope_wire::ProbeCost {
                    probe: 1,
                    programs: vec![microscope_wire::ProgramCost::default()],
                    ring_bytes: 8,
                    ..Default::default()
                }],
                ..Default::default()
            }));
        }
        let served = metric_names(&render(&registry(snapshot)));
        let dashboard: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(assets.join("grafana/microscope.json")).unwrap(),
        )
        .unwrap();
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(panels.len() >= 8);
        for panel in panels {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for name in metric_names(expr) {
                    assert!(
                        served.contains(&name),
                        "panel `{}` reads {name}, which the endpoint does not serve",
                        panel["title"]
                    );
                }
            }
        }
    }

    #[test]
    fn log2_buckets_become_le_bounds() {
        let (sum, count, buckets) = log2_histogram(&[1, 0, 2, 0, 0], 1.0);
        assert_eq!(count, 3);
        assert_eq!(buckets, vec![(2.0, 1), (4.0, 0), (8.0, 2)]);
        assert!((sum - (1.0 + 2.0 * 6.0)).abs() < 1e-9);
        assert_eq!(log2_histogram(&[], 1.0).1, 0);
    }
}
