//! What a soak counts and reports: one JSON object (`--json`) or a table.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the load thread counted over the whole run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Counters {
    /// Connections opened, by server (bad-input connections included).
    pub connections: BTreeMap<String, u64>,
    /// Messages verified (echoes, chat deliveries, framed replies).
    pub messages: u64,
    /// Payload bytes verified.
    pub bytes: u64,
    /// Chat messages sent by verifying senders (each delivered to many).
    pub chat_messages_sent: u64,
    /// Chat deliveries proved owed (member present for the message's whole
    /// duration, and ended cleanly) and so checked for loss.
    pub chat_deliveries_owed: u64,
    /// Verifying clients that ended with a clean close.
    pub clean_closes: u64,
    /// Faults injected, by kind (`half_close`, `reset`).
    pub faults: BTreeMap<String, u64>,
    /// Bad inputs tried, by kind.
    pub bad_inputs: BTreeMap<String, u64>,
    /// Bad inputs that did not get the documented answer.
    pub bad_input_failures: u64,
    /// Errors: failed connects, and closes nobody asked for.
    pub errors: u64,
    /// Bytes sent by verifying clients that ended cleanly, never received
    /// back (echo, framed) or never delivered to a member owed them (chat).
    pub bytes_lost: u64,
    /// Messages those bytes belonged to.
    pub messages_lost: u64,
    /// Bytes that arrived wrong (corrupt, out of order, misdelivered, extra).
    pub mismatches: u64,
    /// Clients still open when the drain deadline passed.
    pub stuck: u64,
    /// A few descriptions of failures, for the report's notes.
    pub samples: Vec<String>,
}

/// Most failure descriptions kept.
pub const MAX_SAMPLES: usize = 10;

impl Counters {
    /// Add one to a by-kind counter.
    pub fn bump(map: &mut BTreeMap<String, u64>, key: impl ToString) {
        *map.entry(key.to_string()).or_default() += 1;
    }

    /// Keep a failure description (the first few only).
    pub fn note(&mut self, s: String) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(s);
        }
    }
}

/// One server's resources over the run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ServerUsage {
    /// `echo`, `chat` or `framed`.
    pub server: String,
    /// Its address.
    pub addr: String,
    /// Its pid, when known.
    pub pid: Option<u32>,
    /// Still running at the end.
    pub alive: bool,
    /// RSS before any load, KiB.
    pub rss_kib_baseline: u64,
    /// Highest RSS sampled (once a second), KiB.
    pub rss_kib_peak: u64,
    /// RSS after every client had gone, KiB.
    pub rss_kib_final: u64,
    /// Open descriptors before any load.
    pub fds_baseline: u64,
    /// Most descriptors sampled.
    pub fds_peak: u64,
    /// Descriptors after every client had gone.
    pub fds_final: u64,
    /// How far above the baseline the final RSS may be, KiB.
    pub rss_tolerance_kib: u64,
    /// Final RSS within the tolerance of the baseline and descriptors back.
    pub returned_to_baseline: bool,
}

/// Everything a soak reports.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SoakReport {
    /// Always `soak`.
    pub workload: String,
    /// The seed (rerun with `--seed` to get the same choices).
    pub seed: u64,
    /// Concurrent clients kept open.
    pub connections_target: usize,
    /// Length of the load phase, seconds.
    pub duration_s: f64,
    /// Time from the end of the load phase until every client was gone, seconds.
    pub drain_s: f64,
    /// What the clients counted.
    #[serde(flatten)]
    pub counts: Counters,
    /// Per server.
    pub servers: Vec<ServerUsage>,
    /// Every server with a pid returned to its baseline.
    pub returned_to_baseline: bool,
    /// Remarks.
    pub notes: Vec<String>,
}

impl SoakReport {
    /// Nothing lost, nothing wrong, every server alive, every bad input
    /// answered as documented, no client stuck.
    pub fn ok(&self) -> bool {
        self.counts.bytes_lost == 0
            && self.counts.messages_lost == 0
            && self.counts.mismatches == 0
            && self.counts.bad_input_failures == 0
            && self.counts.stuck == 0
            && self.servers.iter().all(|s| s.alive)
    }

    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human table.
    pub fn to_table(&self) -> String {
        let c = &self.counts;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "netloop bench soak  (seed {}, {} clients, {:.1} s + {:.1} s drain)",
            self.seed, self.connections_target, self.duration_s, self.drain_s
        );
        let row = |s: &mut String, k: &str, v: String| {
            let _ = writeln!(s, "  {k:<22} {v}");
        };
        let map = |m: &BTreeMap<String, u64>| {
            let total: u64 = m.values().sum();
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!("{total}  ({})", parts.join(", "))
        };
        row(&mut s, "connections", map(&c.connections));
        row(&mut s, "messages verified", c.messages.to_string());
        row(&mut s, "bytes verified", c.bytes.to_string());
        row(
            &mut s,
            "chat messages sent",
            c.chat_messages_sent.to_string(),
        );
        row(
            &mut s,
            "chat deliveries owed",
            c.chat_deliveries_owed.to_string(),
        );
        row(&mut s, "clean closes", c.clean_closes.to_string());
        row(&mut s, "faults injected", map(&c.faults));
        row(&mut s, "bad inputs tried", map(&c.bad_inputs));
        row(
            &mut s,
            "bad input failures",
            c.bad_input_failures.to_string(),
        );
        row(&mut s, "errors", c.errors.to_string());
        row(
            &mut s,
            "bytes lost",
            format!("{}  ({} messages)", c.bytes_lost, c.messages_lost),
        );
        row(&mut s, "mismatched bytes", c.mismatches.to_string());
        row(&mut s, "stuck clients", c.stuck.to_string());
        for sv in &self.servers {
            row(
                &mut s,
                &format!("{} server", sv.server),
                format!(
                    "{}  RSS {} / {} / {} KiB (tolerance +{}), fds {} / {} / {} (baseline/peak/final){}",
                    if sv.alive { "alive" } else { "DEAD" },
                    sv.rss_kib_baseline,
                    sv.rss_kib_peak,
                    sv.rss_kib_final,
                    sv.rss_tolerance_kib,
                    sv.fds_baseline,
                    sv.fds_peak,
                    sv.fds_final,
                    if sv.returned_to_baseline {
                        ""
                    } else {
                        "  NOT back to baseline"
                    }
                ),
            );
        }
        row(
            &mut s,
            "returned to baseline",
            self.returned_to_baseline.to_string(),
        );
        for n in self.notes.iter().chain(&c.samples) {
            let _ = writeln!(s, "  note: {n}");
        }
        s
    }
}
