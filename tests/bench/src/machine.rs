//! What the numbers were measured on: the machine, and the disk under the data.
//!
//! Everything here is best effort (read from `/proc` and `/sys`); what cannot be found
//! out is reported as unknown rather than failing the benchmark.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The machine the benchmark ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs this process may use (what `nproc` prints).
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_gib: Option<f64>,
    pub kernel: Option<String>,
    /// `/proc/loadavg` when the benchmark started: other work on the box skews results.
    pub load_at_start: Option<String>,
    /// `/proc/loadavg` when it ended.
    pub load_at_end: Option<String>,
}

impl Machine {
    /// Looks at the machine now.
    pub fn probe() -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model(),
            memory_gib: memory_gib(),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            load_at_start: load_average(),
            load_at_end: None,
        }
    }

    /// A warning when the machine was already busy as the benchmark started (the
    /// one-minute load average above half the CPUs): the results will be noisy.
    pub fn busy_warning(&self) -> Option<String> {
        let load: f64 = self
            .load_at_start
            .as_deref()?
            .split(' ')
            .next()?
            .parse()
            .ok()?;
        (load > self.cpus as f64 / 2.0).then(|| {
            format!(
                "warning: the one-minute load average was {load:.2} on {} CPUs at the start; \
                 other work is running and the results will be noisy",
                self.cpus
            )
        })
    }

    /// Notes the load average at the end of the run.
    pub fn finish(&mut self) {
        self.load_at_end = load_average();
    }

    /// One line per fact, for the printed report.
    pub fn print(&self) {
        println!(
            "machine : {} CPUs (nproc), {}",
            self.cpus,
            or_unknown(&self.cpu_model)
        );
        let memory = self
            .memory_gib
            .map_or_else(|| "unknown".to_string(), |g| format!("{g:.1} GiB"));
        println!(
            "          memory {memory}, Linux {}, load average at start {}",
            or_unknown(&self.kernel),
            or_unknown(&self.load_at_start)
        );
        if let Some(warning) = self.busy_warning() {
            println!("          {warning}");
        }
    }
}

/// The filesystem a directory lives on.
#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    pub path: PathBuf,
    /// The mounted device, e.g. `/dev/nvme0n1p2`.
    pub source: Option<String>,
    pub fstype: Option<String>,
    pub mount_point: Option<PathBuf>,
    pub mount_options: Option<String>,
    /// Whether the kernel reports the block device as rotational (a spinning disk).
    pub rotational: Option<bool>,
}

impl Disk {
    /// Finds the mount that holds `path` (the longest mount point above it, as
    /// `findmnt -T` does).
    pub fn of(path: &Path) -> Disk {
        let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mount = fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .filter_map(Mount::parse)
                    .filter(|m| path.starts_with(&m.point))
                    .max_by_key(|m| m.point.components().count())
            });
        let rotational = fs::metadata(&path)
            .ok()
            .and_then(|meta| rotational(meta.dev()));
        match mount {
            Some(m) => Disk {
                path,
                source: Some(m.source),
                fstype: Some(m.fstype),
                mount_point: Some(m.point),
                mount_options: Some(m.options),
                rotational,
            },
            None => Disk {
                path,
                source: None,
                fstype: None,
                mount_point: None,
                mount_options: None,
                rotational,
            },
        }
    }

    /// One line, for the printed report.
    pub fn describe(&self) -> String {
        let mount_point = self
            .mount_point
            .as_ref()
            .map_or_else(|| "unknown".to_string(), |p| p.display().to_string());
        // What the kernel reports; virtual disks often claim to be rotational.
        let kind = match self.rotational {
            Some(true) => "queue/rotational=1",
            Some(false) => "queue/rotational=0",
            None => "queue/rotational unknown",
        };
        format!(
            "{} on {} ({}, {kind}, mounted at {mount_point}, {})",
            self.path.display(),
            or_unknown(&self.source),
            or_unknown(&self.fstype),
            or_unknown(&self.mount_options),
        )
    }
}

/// One line of `/proc/self/mountinfo`.
struct Mount {
    point: PathBuf,
    options: String,
    fstype: String,
    source: String,
}

impl Mount {
    /// `36 35 98:0 /root /mnt rw,noatime master:1 - ext4 /dev/sda1 rw,errors=continue`
    fn parse(line: &str) -> Option<Mount> {
        let (before, after) = line.split_once(" - ")?;
        let mut before = before.split(' ');
        let point = before.nth(4)?;
        let options = before.next()?;
        let mut after = after.split(' ');
        let fstype = after.next()?;
        let source = after.next()?;
        Some(Mount {
            point: PathBuf::from(unescape(point)),
            options: options.to_string(),
            fstype: fstype.to_string(),
            source: unescape(source),
        })
    }
}

/// Undoes the octal escapes (`\040` for a space) of `/proc/self/mountinfo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes.get(i) == Some(&b'\\'))
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.extend(bytes.get(i));
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the block device `dev` (a partition or a whole disk) is rotational.
fn rotational(dev: u64) -> Option<bool> {
    let (major, minor) = split_dev(dev);
    let base = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    // A partition has no queue of its own; its disk is the parent directory.
    [
        base.join("queue/rotational"),
        base.join("../queue/rotational"),
    ]
    .iter()
    .find_map(read_trimmed)
    .map(|v| v == "1")
}

/// Splits `st_dev` into major and minor numbers (glibc's `major()` and `minor()`).
fn split_dev(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
    (major, minor)
}

fn cpu_model() -> Option<String> {
    let info = fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_string())
}

fn memory_gib() -> Option<f64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

fn load_average() -> Option<String> {
    let line = read_trimmed("/proc/loadavg")?;
    Some(line.split(' ').take(3).collect::<Vec<_>>().join(" "))
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn or_unknown(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_machine_is_called_out() {
        let mut m = Machine::probe();
        m.cpus = 2;
        m.load_at_start = Some("0.40 0.30 0.20".into());
        assert_eq!(m.busy_warning(), None);
        m.load_at_start = Some("2.53 1.66 0.95".into());
        assert!(
            m.busy_warning()
                .is_some_and(|w| w.contains("2.53 on 2 CPUs"))
        );
        m.load_at_start = None;
        assert_eq!(m.busy_warning(), None);
    }

    #[test]
    fn mountinfo_lines_parse() {
        let line = "36 35 98:0 / /var/my\\040tmp rw,noatime master:1 - ext4 /dev/vda1 rw";
        let m = Mount::parse(line);
        assert!(m.is_some());
        if let Some(m) = m {
            assert_eq!(m.point, PathBuf::from("/var/my tmp"));
            assert_eq!(m.options, "rw,noatime");
            assert_eq!(m.fstype, "ext4");
            assert_eq!(m.source, "/dev/vda1");
        }
        assert!(Mount::parse("garbage").is_none());
    }

    #[test]
    fn device_numbers_split_like_the_kernel() {
        // makedev(259, 3) on Linux.
        let dev = (259u64 << 8) | 3;
        assert_eq!(split_dev(dev), (259, 3));
        // makedev(0x1234, 0x5678): both numbers spill into the high bits.
        let big = (0x1000u64 << 32) | (0x234 << 8) | (0x5600 << 12) | 0x78;
        assert_eq!(split_dev(big), (0x1234, 0x5678));
    }
}
