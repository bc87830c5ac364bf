//! Figures of the applications a process runs, on the same `GET /metrics`
//! as the loop's: a process-wide registry of *sources*.
//!
//! A service that has figures of its own (the chat's Redis link, say)
//! [`register`]s a source: a function that appends its current
//! [`Sample`]s. Every scrape calls every live source and renders the
//! samples in the Prometheus text format, one `# HELP`/`# TYPE` header per
//! family however many sources report it (Prometheus rejects a family
//! declared twice), families in name order.
//!
//! Contract: a source is called on the scraping loop's thread, so it must
//! be quick and must not lock anything the scraping loop may hold; it
//! reports nothing once the state it reads is gone (hold it weakly), and
//! sources that report nothing are forgotten at the next scrape.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

/// The kind of a family, as Prometheus names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One sample of a family.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Full metric name (`netloop_...`).
    pub name: &'static str,
    /// The family's help text.
    pub help: &'static str,
    /// The family's kind.
    pub kind: Kind,
    /// Labels (the value is escaped when rendered).
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// A source: appends its samples; returns false once it is gone for good.
pub type Source = Box<dyn Fn(&mut Vec<Sample>) -> bool + Send + Sync>;

static SOURCES: Mutex<Vec<Source>> = Mutex::new(Vec::new());

/// Add `source` to every later scrape of this process.
pub fn register(source: Source) {
    SOURCES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(source);
}

/// Every live source's samples, in the text format (empty if none).
pub fn render() -> String {
    let mut samples = Vec::new();
    SOURCES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|s| s(&mut samples));
    render_samples(&samples)
}

/// `samples` in the text format, one header per family.
pub fn render_samples(samples: &[Sample]) -> String {
    let mut families: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        families.entry(s.name).or_default().push(s);
    }
    let mut out = String::new();
    for (name, v) in families {
        let kind = match v[0].kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {}", v[0].help);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in v {
            out.push_str(name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, val)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let esc = val
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    let _ = write!(out, "{k}=\"{esc}\"");
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", s.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_header_per_family_and_labels_escaped() {
        let s = |node: &str, v| Sample {
            name: "netloop_x_total",
            help: "Xs.",
            kind: Kind::Counter,
            labels: vec![("node", node.to_string())],
            value: v,
        };
        let text = render_samples(&[s("a", 1.0), s("b\"", 2.0)]);
        assert_eq!(
            text,
            "# HELP netloop_x_total Xs.\n# TYPE netloop_x_total counter\n\
             netloop_x_total{node=\"a\"} 1\nnetloop_x_total{node=\"b\\\"\"} 2\n"
        );
        assert_eq!(render_samples(&[]), "");
    }
}
