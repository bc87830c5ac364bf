//! Figures of the whole process, read from `/proc/self`: CPU time, resident
//! memory, open descriptors and start time, as Prometheus's usual
//! `process_*` metrics (the names its client libraries export), and the
//! build's identity (`netloop_build_info`).
//!
//! CPU time and RSS come from [`crate::metrics::procstat`], which the load
//! generator already uses for the same files. Every figure is optional: on a
//! system without `/proc` the families are left out rather than reported
//! as zero.

use crate::metrics::procstat;
use std::fmt::Write;

/// One reading of the process figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessMetrics {
    /// User + system CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size in bytes.
    pub resident_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// Start of the process, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcessMetrics {
    /// Read the figures of this process now.
    pub fn read() -> ProcessMetrics {
        let sample = procstat::sample("self").ok();
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let boot = std::fs::read_to_string("/proc/stat").ok();
        ProcessMetrics {
            cpu_seconds: sample.map(|s| s.cpu.as_secs_f64()),
            resident_bytes: sample.map(|s| s.rss_kib * 1024),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            start_time_seconds: stat
                .zip(boot)
                .and_then(|(stat, boot)| start_time(&stat, &boot)),
        }
    }

    /// Only the resident memory (what the heartbeat server's
    /// `server_status` reports as `memory.rss`): one file read.
    pub fn resident_bytes() -> Option<u64> {
        procstat::sample("self").ok().map(|s| s.rss_kib * 1024)
    }
}

/// Process start in Unix seconds: `starttime` (field 22 of
/// `/proc/PID/stat`, in `USER_HZ` ticks since boot) plus `btime` (boot time,
/// Unix seconds, from `/proc/stat`).
pub fn start_time(stat: &str, proc_stat: &str) -> Option<f64> {
    let after = stat.rsplit_once(')')?.1;
    // Field 3 (the state) is the first after ')', so field 22 is the 20th.
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime as f64 + ticks as f64 * procstat::TICK.as_secs_f64())
}

/// The `process_*` families and `netloop_build_info`, in the text format.
pub fn render(p: &ProcessMetrics) -> String {
    let mut o = String::with_capacity(1024);
    let mut one = |name: &str, kind: &str, help: &str, v: Option<String>| {
        if let Some(v) = v {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
            let _ = writeln!(o, "{name} {v}");
        }
    };
    one(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds.map(|v| v.to_string()),
    );
    one(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        p.resident_bytes.map(|v| v.to_string()),
    );
    one(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        p.open_fds.map(|v| v.to_string()),
    );
    one(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        p.start_time_seconds.map(|v| format!("{v:.2}")),
    );
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let _ = writeln!(
        o,
        "# HELP netloop_build_info The running build: version, build profile, target OS and architecture.\n# TYPE netloop_build_info gauge\nnetloop_build_info{{version=\"{}\",profile=\"{profile}\",os=\"{}\",arch=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_from_proc_texts() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 3 1 0 0 20 0 1 0 12345 1000 200";
        let proc_stat = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(start_time(stat, proc_stat), Some(1_700_000_123.45));
        assert_eq!(start_time("garbage", proc_stat), None);
        assert_eq!(start_time(stat, "cpu 1 2 3\n"), None);
    }

    #[test]
    fn renders_families_and_skips_missing_figures() {
        let p = ProcessMetrics {
            cpu_seconds: Some(1.5),
            resident_bytes: Some(4096),
            open_fds: None,
            start_time_seconds: Some(1_700_000_000.0),
        };
        let text = render(&p);
        assert!(text.contains("\nprocess_cpu_seconds_total 1.5\n"), "{text}");
        assert!(text.contains("\nprocess_resident_memory_bytes 4096\n"));
        assert!(!text.contains("process_open_fds"), "{text}");
        assert!(text.contains("process_start_time_seconds 1700000000.00\n"));
        let version = format!(
            "netloop_build_info{{version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&version), "{text}");
        assert!(text.trim_end().ends_with(" 1"), "{text}");
    }

    #[test]
    fn reads_this_process() {
        let p = ProcessMetrics::read();
        assert!(p.resident_bytes.is_some_and(|b| b > 0));
        assert!(p.open_fds.is_some_and(|n| n >= 3));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = p.start_time_seconds.unwrap();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start}"
        );
    }
}
