//! `magpie-bench report`: a directory of JSON records to one markdown table, the median of the
//! repetitions of each configuration and scenario, Magpie's ratios to each peer, and the issue's
//! targets checked against those medians.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::disk;
use super::stats::{Record, format_figure};

/// What a configuration is in the table: Magpie's, a peer's (ratios are taken against it), or a
/// control run (shown, no ratios). Ordered as the columns are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Ours,
    Peer,
    Control,
}

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    Neither,
}

/// The rows of the table: scenario, figure, what people read, which way is better.
const ROWS: &[(&str, &str, &str, Better)] = &[
    (
        "pairs",
        "msgs_per_s",
        "pairs: delivered msg/s",
        Better::Higher,
    ),
    (
        "pairs",
        "server_cpu_s",
        "pairs: server CPU s",
        Better::Lower,
    ),
    (
        "pairs",
        "msgs_per_server_cpu_s",
        "pairs: msgs per server CPU-second",
        Better::Higher,
    ),
    (
        "pairs",
        "server_cpu_pct",
        "pairs: server CPU % of a core",
        Better::Neither,
    ),
    (
        "pairs",
        "generator_cpu_pct",
        "pairs: load generator CPU % of a core",
        Better::Neither,
    ),
    (
        "pairs",
        "generator_share_pct",
        "pairs: load generator share of CPU used %",
        Better::Neither,
    ),
    ("latency", "p50_ms", "latency: p50 ms", Better::Lower),
    ("latency", "p99_ms", "latency: p99 ms", Better::Lower),
    ("latency", "p999_ms", "latency: p99.9 ms", Better::Lower),
    ("latency", "max_ms", "latency: max ms", Better::Lower),
    (
        "latency",
        "achieved_per_s",
        "latency: achieved msg/s",
        Better::Neither,
    ),
    (
        "latency",
        "pacer_lag_p99_ms",
        "latency: pacer lag p99 ms",
        Better::Neither,
    ),
    (
        "latency",
        "server_cpu_pct",
        "latency: server CPU % of a core",
        Better::Lower,
    ),
    (
        "latency",
        "machine_steal_pct",
        "latency: machine CPU time stolen by the hypervisor %",
        Better::Neither,
    ),
    (
        "latency",
        "generator_share_pct",
        "latency: load generator share of CPU used %",
        Better::Neither,
    ),
    (
        "fanout",
        "deliveries_per_s",
        "fanout: deliveries/s",
        Better::Higher,
    ),
    (
        "fanout",
        "server_cpu_s",
        "fanout: server CPU s",
        Better::Lower,
    ),
    (
        "fanout",
        "deliveries_per_server_cpu_s",
        "fanout: deliveries per server CPU-second",
        Better::Higher,
    ),
    (
        "fanout",
        "generator_share_pct",
        "fanout: load generator share of CPU used %",
        Better::Neither,
    ),
    (
        "idle",
        "server_kib_per_connection",
        "idle: server KiB RSS per connection",
        Better::Lower,
    ),
    (
        "idle",
        "connects_per_s",
        "idle: connections opened/s",
        Better::Higher,
    ),
    ("sync", "sync_ms", "sync: ms until synced", Better::Lower),
    (
        "sync",
        "wire_to_body_ratio",
        "sync: wire bytes / body bytes",
        Better::Lower,
    ),
    (
        "sync",
        "wire_bytes_down",
        "sync: wire bytes, server to client",
        Better::Lower,
    ),
];

/// The median of each figure over a group's records.
#[derive(Debug, Default)]
struct Group {
    runs: usize,
    failed: usize,
    figures: BTreeMap<String, f64>,
    mechanism: Option<String>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0),
    }
}

/// Groups by (label, scenario) and takes medians.
fn aggregate(records: &[Record]) -> BTreeMap<(String, String), Group> {
    let mut values: BTreeMap<(String, String), BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for r in records {
        let key = (r.label.clone(), r.scenario.clone());
        let g = groups.entry(key.clone()).or_default();
        g.runs += 1;
        g.failed += usize::from(!r.ok());
        if g.mechanism.is_none() {
            g.mechanism.clone_from(&r.mechanism);
        }
        let v = values.entry(key).or_default();
        for (k, x) in &r.figures {
            v.entry(k.clone()).or_default().push(*x);
        }
    }
    for (key, figures) in values {
        if let Some(g) = groups.get_mut(&key) {
            g.figures = figures
                .into_iter()
                .filter_map(|(k, v)| median(v).map(|m| (k, m)))
                .collect();
        }
    }
    groups
}

/// Reads every `*.json` record of `dir`.
fn read_records(dir: &Path) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let record: Record = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a magpie-bench record", path.display()))?;
        records.push(record);
    }
    if records.is_empty() {
        bail!("no *.json records in {}", dir.display());
    }
    Ok(records)
}

/// Writes the report of the records in `dir` to `out`.
pub(crate) fn write(dir: &Path, out: &Path) -> Result<()> {
    let records = read_records(dir)?;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let text = markdown(&records, read("meta.txt"), read("commands.txt"));
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} ({} records)", out.display(), records.len());
    Ok(())
}

/// The report: the table, the targets, the meaning of an ack, and `meta`/`commands` verbatim.
pub(crate) fn markdown(
    records: &[Record],
    meta: Option<String>,
    commands: Option<String>,
) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = write_markdown(&mut o, records, meta, commands);
    o
}

fn write_markdown(
    o: &mut String,
    records: &[Record],
    meta: Option<String>,
    commands: Option<String>,
) -> std::fmt::Result {
    let groups = aggregate(records);
    // Configurations: Magpie's first, then the peers, each in label order.
    let mut labels: Vec<(Role, String, String)> = Vec::new();
    // The disk probe is not a configuration: it has a section of its own.
    for r in records.iter().filter(|r| r.target != DISK) {
        let role = match (r.control, r.target == "magpie") {
            (true, _) => Role::Control,
            (false, true) => Role::Ours,
            (false, false) => Role::Peer,
        };
        let entry = (role, r.label.clone(), r.target.clone());
        if !labels.contains(&entry) {
            labels.push(entry);
        }
    }
    labels.sort();
    let ours: Vec<&str> = labels
        .iter()
        .filter(|l| l.0 == Role::Ours)
        .map(|l| l.1.as_str())
        .collect();
    let peers: Vec<&str> = labels
        .iter()
        .filter(|l| l.0 == Role::Peer)
        .map(|l| l.1.as_str())
        .collect();
    let columns: Vec<&str> = labels.iter().map(|l| l.1.as_str()).collect();
    let ratios: Vec<(&str, &str)> = ours
        .iter()
        .flat_map(|m| peers.iter().map(move |p| (*m, *p)))
        .collect();
    let get = |label: &str, scenario: &str, figure: &str| {
        groups
            .get(&(label.to_owned(), scenario.to_owned()))
            .and_then(|g| g.figures.get(figure).copied())
    };

    writeln!(o, "# magpie-bench: Magpie and its peers on one machine\n")?;
    let reps = groups.values().map(|g| g.runs).max().unwrap_or(0);
    writeln!(
        o,
        "Each figure is the median of {reps} run(s) per configuration and scenario (the median \
         of each figure on its own). Ratios are Magpie / peer; the last column of each row name \
         says which way is better.\n"
    )?;
    write!(o, "| figure | better |")?;
    for c in &columns {
        write!(o, " {c} |")?;
    }
    for (m, p) in &ratios {
        write!(o, " {m} / {p} |")?;
    }
    writeln!(o)?;
    write!(o, "|---|---|")?;
    for _ in 0..columns.len() + ratios.len() {
        write!(o, "---:|")?;
    }
    writeln!(o)?;
    for (scenario, figure, name, better) in ROWS {
        if columns.iter().all(|c| get(c, scenario, figure).is_none()) {
            continue;
        }
        let better = match better {
            Better::Higher => "higher",
            Better::Lower => "lower",
            Better::Neither => "",
        };
        write!(o, "| {name} | {better} |")?;
        for c in &columns {
            match get(c, scenario, figure) {
                Some(v) => write!(o, " {} |", format_figure(v))?,
                None => write!(o, " – |")?,
            }
        }
        for (m, p) in &ratios {
            match (get(m, scenario, figure), get(p, scenario, figure)) {
                (Some(a), Some(b)) if b != 0.0 => write!(o, " {:.2}× |", a / b)?,
                _ => write!(o, " – |")?,
            }
        }
        writeln!(o)?;
    }

    let failed: Vec<String> = groups
        .iter()
        .filter(|(_, g)| g.failed > 0)
        .map(|((l, s), g)| format!("{l} {s}: {} of {} runs", g.failed, g.runs))
        .collect();
    if failed.is_empty() {
        writeln!(
            o,
            "\nEvery run passed its exactly-once-in-order check (pairs, latency, fanout, sync)."
        )?;
    } else {
        writeln!(
            o,
            "\n**Runs that FAILED their check**: {}",
            failed.join("; ")
        )?;
    }

    write_targets(o, &groups, &labels)?;
    write_disk(o, &groups)?;

    writeln!(o, "\n## What the figures mean\n")?;
    let mut seen = Vec::new();
    for r in records.iter().filter(|r| r.target != DISK) {
        if !seen.contains(&r.label) {
            writeln!(o, "- **{}** ({}) ack: {}", r.label, r.target, r.ack)?;
            seen.push(r.label.clone());
        }
    }
    for ((label, scenario), g) in &groups {
        if let (Some(m), "fanout") = (&g.mechanism, scenario.as_str()) {
            writeln!(o, "- **{label}** fan-out: {m}")?;
        }
    }
    if labels.iter().any(|l| l.0 == Role::Control) {
        writeln!(
            o,
            "- Control runs (the last columns) are shown for comparison; no ratios are taken \
             against them and no target reads them."
        )?;
    }
    writeln!(
        o,
        "- Latency is open loop: message k is due at t0 + k/rate and its latency counts from \
         that due time to its arrival at the receiving application (same process, same clock), \
         so a stall cannot hide behind unsent messages. The pacer lag row is how late the \
         generator itself handed messages out.\n\
         - Server CPU is utime + stime of the server process from /proc/PID/stat over the \
         measured phase; the load generator's share is its CPU / (its CPU + the server's): on a \
         machine with few cores a high share means the generator, not the server, limits the \
         figure.\n\
         - Stolen time is the machine's `steal` from /proc/stat: CPU time a \
         virtual machine's CPUs wanted and the hypervisor gave elsewhere, over the measured \
         phase. Steal slows every thread here, the load generator's included: compare the \
         pacer lag row.\n\
         - idle: (server VmRSS with C connections open − VmRSS before) / C.\n\
         - sync: from the start of connect until the last missed message reached the \
         application; wire bytes counted server to client by a proxy, handshake included."
    )?;
    if let Some(meta) = meta {
        writeln!(o, "\n## Machine and versions\n\n{}", meta.trim_end())?;
    }
    if let Some(commands) = commands {
        writeln!(o, "\n## Commands\n\n```sh\n{}\n```", commands.trim_end())?;
    }
    Ok(())
}

/// The target (and label and scenario) of the disk probe's records.
const DISK: &str = disk::NAME;

/// The disk probe's medians, if the records have it, and what they mean for the durable
/// latency target.
fn write_disk(o: &mut String, groups: &BTreeMap<(String, String), Group>) -> std::fmt::Result {
    let Some(g) = groups.get(&(DISK.to_owned(), DISK.to_owned())) else {
        return Ok(());
    };
    let figure = |name: &str| g.figures.get(name).copied();
    writeln!(o, "\n## The disk under the durable figures\n")?;
    writeln!(
        o,
        "`magpie-bench disk` in the folder of the data directories (median of {} run(s); \
         the commands are below): appends of a small group commit's size, each followed by \
         fsync(2).\n",
        g.runs
    )?;
    writeln!(o, "| fsync | value |")?;
    writeln!(o, "|---|---:|")?;
    let rows = [
        ("calls", "fsync_count", ""),
        ("p50", "fsync_p50_ms", " ms"),
        ("p99", "fsync_p99_ms", " ms"),
        ("p99.9", "fsync_p999_ms", " ms"),
        ("max", "fsync_max_ms", " ms"),
        ("calls over 2 ms", disk::OVER_BOUND_CALLS_PCT, " %"),
        (
            "time in fsyncs past 2 ms, share of fsync time",
            disk::BEYOND_BOUND_TIME_PCT,
            " %",
        ),
    ];
    for (name, key, unit) in rows {
        match figure(key) {
            Some(v) => writeln!(o, "| {name} | {}{unit} |", format_figure(v))?,
            None => writeln!(o, "| {name} | – |")?,
        }
    }
    let back_to_back = figure("paced_per_s").is_none_or(|r| r == 0.0);
    if let (Some(floor), true) = (figure(disk::BEYOND_BOUND_TIME_PCT), back_to_back) {
        // The argument and its conditions are in the `disk` module's docs.
        let reading = if floor > 1.0 {
            "above 1 %: on this disk, at the probe's time, such a server cannot have a p99 of \
             2 ms"
        } else {
            "at most 1 %: the disk's fsync latency alone does not explain a durable p99 above \
             2 ms"
        };
        writeln!(
            o,
            "\nmagpied's committer runs one fsync at a time, and a write that arrives while one \
             is in flight waits for it and then for its own. Under an open-loop load that keeps \
             an fsync in flight, and if the server's fsyncs are no faster than the probe's, at \
             least the last row's share of the writes wait more than 2 ms: {}% here, {reading}.",
            format_figure(floor)
        )?;
    }
    Ok(())
}

/// The issue's targets, checked against the medians, for the configurations found.
fn write_targets(
    o: &mut String,
    groups: &BTreeMap<(String, String), Group>,
    labels: &[(Role, String, String)],
) -> std::fmt::Result {
    let find = |pred: &dyn Fn(&(Role, String, String)) -> bool| {
        labels.iter().find(|l| pred(l)).map(|l| l.1.clone())
    };
    let durable = find(&|l| l.0 == Role::Ours && !l.1.contains("relaxed"));
    let relaxed = find(&|l| l.0 == Role::Ours && l.1.contains("relaxed"));
    let mqtt = find(&|l| l.0 == Role::Peer && l.2 == "mqtt");
    let get = |label: &Option<String>, scenario: &str, figure: &str| {
        label.as_ref().and_then(|l| {
            groups
                .get(&(l.clone(), scenario.to_owned()))
                .and_then(|g| g.figures.get(figure).copied())
        })
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    };
    let targets: Vec<(&str, Option<f64>, f64, bool, &str)> = vec![
        (
            "pairs delivered msg/s, durable ≥ 1.0× mosquitto QoS 1",
            ratio(
                get(&durable, "pairs", "msgs_per_s"),
                get(&mqtt, "pairs", "msgs_per_s"),
            ),
            1.0,
            true,
            "×",
        ),
        (
            "pairs msgs per server CPU-second ≥ 2× mosquitto",
            ratio(
                get(&durable, "pairs", "msgs_per_server_cpu_s"),
                get(&mqtt, "pairs", "msgs_per_server_cpu_s"),
            ),
            2.0,
            true,
            "×",
        ),
        (
            "latency p99 at 10k msg/s, durable ≤ 2 ms",
            get(&durable, "latency", "p99_ms"),
            2.0,
            false,
            " ms",
        ),
        (
            "latency p99, relaxed ≤ mosquitto's p99",
            ratio(
                get(&relaxed, "latency", "p99_ms"),
                get(&mqtt, "latency", "p99_ms"),
            ),
            1.0,
            false,
            "×",
        ),
        (
            "fanout deliveries/s, durable ≥ mosquitto",
            ratio(
                get(&durable, "fanout", "deliveries_per_s"),
                get(&mqtt, "fanout", "deliveries_per_s"),
            ),
            1.0,
            true,
            "×",
        ),
        (
            "idle server RSS ≤ 4 KiB per connection",
            get(&durable, "idle", "server_kib_per_connection"),
            4.0,
            false,
            " KiB",
        ),
        (
            "sync of the missed messages ≤ 200 ms",
            get(&durable, "sync", "sync_ms"),
            200.0,
            false,
            " ms",
        ),
        (
            "sync wire bytes ≤ 1.2× body bytes",
            get(&durable, "sync", "wire_to_body_ratio"),
            1.2,
            false,
            "×",
        ),
    ];
    writeln!(o, "\n## Targets (issue 5)\n")?;
    writeln!(o, "| target | measured | verdict |")?;
    writeln!(o, "|---|---:|---|")?;
    for (name, value, bound, higher, unit) in targets {
        match value {
            Some(v) => {
                let pass = if higher { v >= bound } else { v <= bound };
                let verdict = if pass { "PASS" } else { "MISS" };
                writeln!(o, "| {name} | {}{unit} | {verdict} |", format_figure(v))?;
            }
            None => writeln!(o, "| {name} | – | not measured |")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(label: &str, target: &str, scenario: &str, figure: &str, v: f64) -> Record {
        let mut r = Record::new(scenario, target, "127.0.0.1:1", "test");
        r.label = label.into();
        r.figures = BTreeMap::from([(figure.to_owned(), v)]);
        r
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn table_has_medians_ratios_and_targets() {
        let records = vec![
            rec("magpie-durable", "magpie", "pairs", "msgs_per_s", 30_000.0),
            rec("magpie-durable", "magpie", "pairs", "msgs_per_s", 10_000.0),
            rec("magpie-durable", "magpie", "pairs", "msgs_per_s", 20_000.0),
            rec("mosquitto", "mqtt", "pairs", "msgs_per_s", 40_000.0),
        ];
        let md = markdown(
            &records,
            Some("- nproc: 2".into()),
            Some("magpie-bench pairs".into()),
        );
        assert!(
            md.contains("| pairs: delivered msg/s | higher | 20000 | 40000 | 0.50× |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| pairs delivered msg/s, durable ≥ 1.0× mosquitto QoS 1 | 0.500× | MISS |"
            ),
            "{md}"
        );
        assert!(md.contains("- nproc: 2"));
        assert!(md.contains("```sh\nmagpie-bench pairs\n```"));
        assert!(!md.contains("## The disk"), "no probe, no section");
    }

    #[test]
    fn controls_get_a_column_but_no_ratios_and_no_targets() {
        let mut control = rec("a-broker-beside-fsyncs", "mqtt", "latency", "p99_ms", 20.0);
        control.control = true;
        let records = vec![
            rec("magpie-relaxed", "magpie", "latency", "p99_ms", 10.0),
            rec("mosquitto", "mqtt", "latency", "p99_ms", 5.0),
            control,
        ];
        let md = markdown(&records, None, None);
        // Sorted by name alone, the control would come first and be taken as the broker.
        assert!(
            md.contains("| latency p99, relaxed ≤ mosquitto's p99 | 2.000× | MISS |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| figure | better | magpie-relaxed | mosquitto | a-broker-beside-fsyncs | \
                 magpie-relaxed / mosquitto |\n"
            ),
            "{md}"
        );
        assert!(md.contains("Control runs (the last columns)"), "{md}");
    }

    #[test]
    fn the_disk_probe_gets_a_section_not_a_column() {
        let records = vec![
            rec("magpie-durable", "magpie", "latency", "p99_ms", 20.0),
            rec("mosquitto", "mqtt", "latency", "p99_ms", 10.0),
            rec(DISK, DISK, DISK, disk::BEYOND_BOUND_TIME_PCT, 0.5),
            rec(DISK, DISK, DISK, disk::BEYOND_BOUND_TIME_PCT, 3.0),
            rec(DISK, DISK, DISK, disk::BEYOND_BOUND_TIME_PCT, 2.0),
        ];
        let md = markdown(&records, None, None);
        assert!(
            md.contains(
                "| figure | better | magpie-durable | mosquitto | magpie-durable / mosquitto |"
            ),
            "{md}"
        );
        assert!(md.contains("## The disk under the durable figures"), "{md}");
        assert!(
            md.contains("| time in fsyncs past 2 ms, share of fsync time | 2.000 % |"),
            "{md}"
        );
        assert!(md.contains("2.000% here, above 1 %"), "{md}");
        assert!(!md.contains("**disk**"), "{md}");
    }
}
