//! Before `--vm` boots anything: every host-side check (a refusal, nothing
//! started), then the initramfs (ourselves as /init, the pass's argv), the
//! scratch disk and the results disk, all held by descriptor only.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::cpio::{self, Entry};
use super::image::Arch;
use super::qemu::{self, Accel};
use super::Options;

/// Free space $TMPDIR must have: the sparse disk only grows by what the
/// guest writes (metadata and, with --fill-mode write, data).
const TMP_ROOM: u64 = 256 << 20;

pub(super) struct Prepared {
    pub(super) arch: Arch,
    pub(super) accel: Accel,
    pub(super) accel_why: String,
    pub(super) qemu: String,
    pub(super) initramfs: File,
    pub(super) disk: File,
    pub(super) results: File,
}

/// Every host-side check, then the three files, all before QEMU starts.
pub(super) fn prepare(o: &Options) -> Result<Prepared, String> {
    let arch = super::image::detect_file(&o.kernel)?;
    let guest_binary = guest_binary(arch)?;
    let qemu = qemu::program(arch);
    if find_in_path(&qemu).is_none() {
        let pkg = if arch == Arch::X86_64 { "qemu-system-x86" } else { "qemu-system-arm" };
        return Err(format!("{qemu} not found in PATH (install {pkg})"));
    }
    let tmp = std::env::var_os("TMPDIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    let space = crate::sys::fs::statfs(&tmp).map_err(|e| format!("$TMPDIR {}: {e}", tmp.display()))?;
    let free = space.avail_bytes;
    if free < TMP_ROOM {
        return Err(format!("no room in $TMPDIR {}: {} MiB free, the VM's scratch disk needs {} MiB (set TMPDIR elsewhere)", tmp.display(), free >> 20, TMP_ROOM >> 20));
    }
    let (accel, accel_why) = qemu::choose(o.accel, arch, &probe())?;
    let binary = std::fs::read(&guest_binary).map_err(|e| format!("cannot read the guest binary {}: {e}", guest_binary.display()))?;
    let argv: Vec<u8> = o.guest_args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let archive = cpio::newc(&[
        Entry::Dir { path: "dev", mode: 0o755 },
        Entry::CharDev { path: "dev/console", mode: 0o600, major: 5, minor: 1 },
        Entry::Dir { path: "proc", mode: 0o755 },
        Entry::Dir { path: "sys", mode: 0o755 },
        Entry::Dir { path: "mnt", mode: 0o755 },
        Entry::Dir { path: "brr", mode: 0o755 },
        Entry::File { path: "brr/argv", mode: 0o644, data: &argv },
        Entry::File { path: "init", mode: 0o755, data: &binary },
    ]);
    let mut initramfs = scratch(&tmp, "initramfs")?;
    initramfs.write_all(&archive).map_err(|e| format!("write the initramfs in {}: {e}", tmp.display()))?;
    let disk = scratch(&tmp, "disk")?;
    disk.set_len(o.disk_bytes).map_err(|e| format!("size the VM disk in {}: {e}", tmp.display()))?;
    let results = scratch(&tmp, "results")?;
    // The frames, plus the --log records (the kernel log buffer is 16 MiB).
    results.set_len(64 << 20).map_err(|e| format!("size the results disk in {}: {e}", tmp.display()))?;
    Ok(Prepared { arch, accel, accel_why, qemu, initramfs, disk, results })
}

/// A file in `dir` with no name: O_TMPFILE, or where the filesystem lacks
/// it, a new file unlinked at once. Only the descriptor holds it.
fn scratch(dir: &Path, what: &str) -> Result<File, String> {
    let err = |e: std::io::Error| format!("cannot create the VM's {what} file in $TMPDIR {}: {e}", dir.display());
    match std::fs::OpenOptions::new().read(true).write(true).mode(0o600).custom_flags(libc::O_TMPFILE).open(dir) {
        Ok(f) => Ok(f),
        Err(_) => {
            let path = dir.join(format!("brr-vm-{}-{what}", std::process::id()));
            let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path).map_err(err)?;
            std::fs::remove_file(&path).map_err(err)?;
            Ok(f)
        }
    }
}

/// The guest's /init: this binary when the kernel is of our architecture,
/// else the other architecture's static build next to it
/// (dist/btrfs-reclaim-repro-aarch64 beside dist/btrfs-reclaim-repro-x86_64).
fn guest_binary(arch: Arch) -> Result<PathBuf, String> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| format!("readlink /proc/self/exe: {e}"))?;
    if Arch::host() == Some(arch) {
        return Ok(exe);
    }
    let name = format!("btrfs-reclaim-repro-{}", arch.name());
    let beside = exe.with_file_name(&name);
    if beside.is_file() {
        return Ok(beside);
    }
    Err(format!("an {} kernel needs the {} binary as its /init: no {} (make dist builds it)", arch.name(), arch.name(), beside.display()))
}

fn find_in_path(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(prog)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn probe() -> qemu::Probe {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied { " (add yourself to group kvm)" } else { "" };
            format!("{}{hint}", crate::sys::with("open", "/dev/kvm")(e))
        })
        .and_then(|f| crate::sys::vm::kvm_api_version(&f).map_err(|e| e.to_string()));
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // Test hook: BRR_TEST_VM_SKIP_CPU_CHECK=1 takes the cpu for one with
    // vmx/svm, so that this machine's hanging kvm_pvm is chosen.
    let skip = std::env::var("BRR_TEST_VM_SKIP_CPU_CHECK").is_ok_and(|v| v == "1");
    qemu::Probe { host: Arch::host(), kvm, virt_flags: skip || qemu::has_virt_flags(&cpuinfo) }
}
