//! What a process used, read from `/proc` (Linux): CPU time from `/proc/PID/stat` (`utime` +
//! `stime`, in clock ticks) and resident memory from `/proc/PID/status` (`VmRSS`). Also the file
//! descriptor limit, raised for the idle scenario.

use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Clock ticks per second, for `/proc/PID/stat` times (`sysconf(_SC_CLK_TCK)`, read through
/// rustix from the auxiliary vector: no assumption of 100).
pub(crate) fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// CPU seconds (user + system) a process has used so far.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / clock_ticks() as f64)
        .with_context(|| format!("{path}: no utime/stime fields"))
}

/// `utime + stime` from a `/proc/PID/stat` line. The command name (field 2) is in parentheses
/// and may hold spaces, so fields are counted from the last `)`: after it come field 3 (state)
/// onward, and utime, stime are fields 14 and 15.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of a process in KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_rss_kib(&status).with_context(|| format!("{path}: no VmRSS line"))
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Raises the soft limit on open files to `want` (or the hard limit, if lower). Returns the soft
/// limit now in force.
pub(crate) fn raise_nofile(want: u64) -> Result<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let current = now.current.unwrap_or(u64::MAX);
    if current >= want {
        return Ok(current);
    }
    let target = now.maximum.map_or(want, |max| want.min(max));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: now.maximum,
        },
    )
    .with_context(|| format!("raising RLIMIT_NOFILE to {target}"))?;
    Ok(target)
}

/// CPU used by the load generator (this process) and, if known, the server, over one phase.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    /// Wall-clock seconds of the phase.
    pub(crate) wall_s: f64,
    /// CPU seconds of this process.
    pub(crate) generator_cpu_s: f64,
    /// CPU seconds of the server process (`--server-pid`).
    pub(crate) server_cpu_s: Option<f64>,
    /// Of the machine's CPU time, the share (%) the hypervisor gave to others while this
    /// machine's CPUs wanted to run ("steal"), and the share idle with I/O outstanding
    /// ("iowait"); `None` without a readable `/proc/stat`.
    pub(crate) steal_iowait_pct: Option<(f64, f64)>,
}

/// A reading at the start of a phase; [`Meter::stop`] gives the [`Usage`] since.
#[derive(Debug)]
pub(crate) struct Meter {
    server_pid: Option<u32>,
    started: Instant,
    generator: f64,
    server: Option<f64>,
    machine: Option<MachineTicks>,
}

impl Meter {
    /// Starts measuring. The server's figures are read only when its pid is known (an embedded
    /// server shares this process, so its CPU cannot be told apart from the generator's).
    pub(crate) fn start(server_pid: Option<u32>) -> Result<Meter> {
        let server = server_pid.map(cpu_seconds).transpose()?;
        Ok(Meter {
            server_pid,
            started: Instant::now(),
            generator: cpu_seconds(std::process::id())?,
            server,
            machine: machine_ticks(),
        })
    }

    /// The usage since [`Meter::start`].
    pub(crate) fn stop(&self) -> Result<Usage> {
        let wall_s = self.started.elapsed().as_secs_f64();
        let generator_cpu_s = cpu_seconds(std::process::id())? - self.generator;
        let server_cpu_s = match (self.server_pid, self.server) {
            (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
            _ => None,
        };
        let steal_iowait_pct = match (self.machine, machine_ticks()) {
            (Some(before), Some(after)) => after.since(&before),
            _ => None,
        };
        Ok(Usage {
            wall_s,
            generator_cpu_s,
            server_cpu_s,
            steal_iowait_pct,
        })
    }
}

/// The machine's CPU time counters from the `cpu` line of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MachineTicks {
    total: u64,
    iowait: u64,
    steal: u64,
}

impl MachineTicks {
    /// `(steal %, iowait %)` of the time between `before` and `self`.
    fn since(&self, before: &MachineTicks) -> Option<(f64, f64)> {
        let total = self.total.checked_sub(before.total).filter(|t| *t > 0)? as f64;
        let share = |now: u64, then: u64| 100.0 * now.saturating_sub(then) as f64 / total;
        Some((
            share(self.steal, before.steal),
            share(self.iowait, before.iowait),
        ))
    }
}

fn machine_ticks() -> Option<MachineTicks> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The first line of `/proc/stat`: `cpu user nice system idle iowait irq softirq steal ...`.
fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user through steal; guest time is already counted in user.
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [_, _, _, _, iowait, _, _, steal] = ticks[..] else {
        return None;
    };
    Some(MachineTicks {
        total: ticks.iter().sum(),
        iowait,
        steal,
    })
}

/// Fails unless the process exists (a typo in `--server-pid` would otherwise read as 0 CPU).
pub(crate) fn check_pid(pid: u32) -> Result<()> {
    if std::fs::metadata(format!("/proc/{pid}")).is_err() {
        bail!("--server-pid {pid}: no such process");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        // The command name holds a space and a parenthesis; utime 1234, stime 56.
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(1290));
        assert_eq!(parse_cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn rss_line() {
        let status = "Name:\tmagpied\nVmPeak:\t  9999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_kib(status), Some(12345));
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn machine_steal_and_iowait() {
        let before = "cpu  100 0 50 800 20 0 10 20 0 0\ncpu0 1 2 3\n";
        let after = "cpu  200 0 100 1550 70 0 20 60 5 0\n";
        let (b, a) = (
            parse_machine_ticks(before).expect("before"),
            parse_machine_ticks(after).expect("after"),
        );
        // 1,000 ticks passed: 40 stolen, 50 in iowait.
        assert_eq!(a.since(&b), Some((4.0, 5.0)));
        assert_eq!(b.since(&b), None, "no time passed");
        assert_eq!(parse_machine_ticks("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(parse_machine_ticks("cpu 1 2 3\n"), None);
        assert!(machine_ticks().is_some(), "this machine's /proc/stat");
    }

    #[test]
    fn this_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_ok());
        assert!(rss_kib(pid).is_ok_and(|kib| kib > 0));
        assert!(clock_ticks() >= 1);
    }
}
