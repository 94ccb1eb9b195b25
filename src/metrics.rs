//! Process metrics in Prometheus text form (prefix `lapor_bridge_`). Counters
//! and histograms live here; gauges read from the database are added by the
//! `/metrics` handler at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// (metric name, rendered labels) → value
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let rendered: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    rendered.join(",")
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)]) {
        self.add(name, pairs, 1);
    }

    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], by: u64) {
        let key = (name, labels(pairs));
        self.with(|inner| *inner.counters.entry(key).or_default() += by);
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], value: Duration) {
        let key = (name, labels(pairs));
        let secs = value.as_secs_f64();
        self.with(|inner| {
            let h = inner.histograms.entry(key).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        });
    }

    pub fn counter_value(&self, name: &'static str, pairs: &[(&str, &str)]) -> u64 {
        let key = (name, labels(pairs));
        self.with(|inner| inner.counters.get(&key).copied().unwrap_or(0))
    }

    /// Counters and histograms in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with(|inner| {
            let mut last = "";
            for ((name, labels), value) in &inner.counters {
                if *name != last {
                    let _ = writeln!(out, "# TYPE lapor_bridge_{name} counter");
                    last = name;
                }
                let _ = writeln!(out, "lapor_bridge_{name}{{{labels}}} {value}");
            }
            let mut last = "";
            for ((name, labels), h) in &inner.histograms {
                if *name != last {
                    let _ = writeln!(out, "# TYPE lapor_bridge_{name} histogram");
                    last = name;
                }
                let sep = if labels.is_empty() { "" } else { "," };
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "lapor_bridge_{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "lapor_bridge_{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(out, "lapor_bridge_{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "lapor_bridge_{name}_count{{{labels}}} {}", h.count);
            }
        });
        out
    }
}
