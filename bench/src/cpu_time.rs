//! CPU time (user + system) of processes over the measured window, from
//! `/proc/<pid>/stat`: what one operation costs the server and the load
//! generator. On a shared, noisy machine this moves far less than throughput
//! does, and it is what says whether a target fits in the cores at all.

use serde::Serialize;

/// CPU seconds `pid` has used so far, or `None` where `/proc` cannot say.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split_whitespace();
    // Fields 14 and 15 of the line are utime and stime; `after_name` starts at field 3.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

/// CPU seconds of this process and of the servers (when the scenario spawned
/// any: several cluster nodes count as one sum).
#[derive(Clone, Copy)]
pub struct CpuSample {
    this_process: Option<f64>,
    server: Option<f64>,
}

impl CpuSample {
    pub fn now(server_pids: &[u32]) -> CpuSample {
        let server = if server_pids.is_empty() {
            None
        } else {
            server_pids
                .iter()
                .map(|&pid| cpu_seconds(pid))
                .sum::<Option<f64>>()
        };
        CpuSample {
            this_process: cpu_seconds(std::process::id()),
            server,
        }
    }

    /// CPU microseconds per operation between `start` and `self`.
    pub fn per_op_since(&self, start: &CpuSample, ops: u64) -> Option<CpuPerOp> {
        if ops == 0 {
            return None;
        }
        let per_op =
            |end: Option<f64>, start: Option<f64>| Some((end? - start?) * 1e6 / ops as f64);
        Some(CpuPerOp {
            load_generator: per_op(self.this_process, start.this_process)?,
            server: per_op(self.server, start.server),
        })
    }
}

/// CPU microseconds per successful operation in the measured window.
#[derive(Serialize)]
pub struct CpuPerOp {
    /// This benchmark process: the load generator (and, in the in-process
    /// engine scenarios, the engine itself).
    pub load_generator: f64,
    /// The spawned `tachigo-auth` process, when the scenario started one (all
    /// of its processes together, for the `cluster` scenario's nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<f64>,
}
