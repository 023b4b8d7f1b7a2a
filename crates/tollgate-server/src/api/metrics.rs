//! Prometheus metrics at `/metrics`: the service's counters, its latency histograms (HTTP,
//! checks, ingest; buckets below) and the process's own figures read from `/proc` on Linux.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Upper bounds (seconds) of every latency histogram: from a cached check (well under a
/// millisecond) to a slow bill run.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Installs the global recorder once per process (several servers in one test process share it).
pub fn install_recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

#[utoipa::path(get, path = "/metrics", operation_id = "metrics_render", responses((status = 200, description = "Prometheus text format")))]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    match &state.metrics {
        Some(handle) => {
            process::record();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain")],
            "metrics recorder unavailable".to_owned(),
        ),
    }
}

/// The process metrics Prometheus' client libraries export (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, ...), read from `/proc/self` when `/metrics` is scraped.
/// Elsewhere than Linux there is no `/proc` and they are left out.
pub mod process {
    /// `/proc` reports times in USER_HZ ticks, which Linux fixes at 100 for user space.
    const TICKS_PER_SECOND: f64 = 100.0;

    /// The figures of one reading; `None` where `/proc` did not say.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Reading {
        pub cpu_seconds: Option<f64>,
        pub resident_bytes: Option<f64>,
        pub virtual_bytes: Option<f64>,
        pub threads: Option<f64>,
        pub open_fds: Option<f64>,
        pub max_fds: Option<f64>,
        pub start_time_seconds: Option<f64>,
    }

    /// Sets the gauges from a fresh reading.
    pub fn record() {
        let r = read();
        let gauges = [
            ("process_cpu_seconds_total", r.cpu_seconds),
            ("process_resident_memory_bytes", r.resident_bytes),
            ("process_virtual_memory_bytes", r.virtual_bytes),
            ("process_threads", r.threads),
            ("process_open_fds", r.open_fds),
            ("process_max_fds", r.max_fds),
            ("process_start_time_seconds", r.start_time_seconds),
        ];
        for (name, value) in gauges {
            if let Some(value) = value {
                metrics::gauge!(name).set(value);
            }
        }
    }

    /// Reads `/proc/self` (empty on other systems).
    pub fn read() -> Reading {
        let text = |path: &str| std::fs::read_to_string(path).ok();
        let mut r = Reading::default();
        if let Some(stat) = text("/proc/self/stat") {
            let (cpu, start_ticks) = parse_stat(&stat);
            r.cpu_seconds = cpu;
            let boot = text("/proc/stat").and_then(|s| field_after(&s, "btime"));
            r.start_time_seconds = start_ticks
                .zip(boot)
                .map(|(ticks, boot)| boot + ticks / TICKS_PER_SECOND);
        }
        if let Some(status) = text("/proc/self/status") {
            let kib = |name| field_after(&status, name).map(|v| v * 1024.0);
            r.resident_bytes = kib("VmRSS:");
            r.virtual_bytes = kib("VmSize:");
            r.threads = field_after(&status, "Threads:");
        }
        r.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| count(d.count()));
        r.max_fds = text("/proc/self/limits").and_then(|l| {
            l.lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        });
        r
    }

    fn count(n: usize) -> f64 {
        u32::try_from(n).map_or(f64::from(u32::MAX), f64::from)
    }

    /// The number after `name` on the line that starts with it (`VmRSS:   1234 kB`).
    fn field_after(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    /// CPU seconds (user + system) and the start time in ticks after boot, from
    /// `/proc/self/stat`; its second field (the command) may hold spaces and parentheses, so
    /// fields are counted after the last `)`.
    pub fn parse_stat(stat: &str) -> (Option<f64>, Option<f64>) {
        let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
            return (None, None);
        };
        // After the command: field 3 (state) is index 0, so field N is index N - 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        let cpu = number(14)
            .zip(number(15))
            .map(|(user, system)| (user + system) / TICKS_PER_SECOND);
        (cpu, number(22))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stat_fields_are_counted_after_the_command() {
            let stat = "4242 (tollgate (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                        250 50 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615";
            let (cpu, start) = parse_stat(stat);
            assert_eq!(cpu, Some(3.0));
            assert_eq!(start, Some(12345.0));
            assert_eq!(parse_stat("garbage"), (None, None));
        }

        #[test]
        #[cfg(target_os = "linux")]
        fn this_process_is_read() {
            let r = read();
            assert!(r.resident_bytes.unwrap() > 0.0);
            assert!(r.threads.unwrap() >= 1.0);
            assert!(r.open_fds.unwrap() >= 1.0);
            assert!(r.max_fds.unwrap() >= r.open_fds.unwrap());
            assert!(r.cpu_seconds.is_some());
            assert!(r.start_time_seconds.unwrap() > 1.0e9, "{r:?}");
        }
    }
}
