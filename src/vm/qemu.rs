//! The QEMU command line, and the choice of accelerator. KVM only where it
//! really works: the guest's architecture is the host's, /dev/kvm opens
//! read-write and answers API version 12, and (x86) the cpu flags show
//! vmx or svm. A software nested KVM (kvm_pvm) passes the first three and
//! then hangs a standard guest without a word; the host also falls back to
//! TCG at run time when a KVM guest prints no "Linux version" (host.rs).

use super::image::Arch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// --vm-accel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelAsk {
    Auto,
    Kvm,
    Tcg,
}

/// What the host looked at.
#[derive(Debug, Clone)]
pub struct Probe {
    pub host: Option<Arch>,
    /// Ok(api version) or why /dev/kvm is unusable.
    pub kvm: Result<i32, String>,
    /// vmx or svm among /proc/cpuinfo's flags (x86 hosts).
    pub virt_flags: bool,
}

/// The accelerator and why, in words for stderr and the verdict's VM facts;
/// Err when --vm-accel kvm cannot be had.
pub fn choose(ask: AccelAsk, guest: Arch, p: &Probe) -> Result<(Accel, String), String> {
    let tcg = |why: String| Ok((Accel::Tcg, why));
    if ask == AccelAsk::Tcg {
        return tcg("--vm-accel tcg".into());
    }
    let refuse = |why: String| if ask == AccelAsk::Kvm { Err(format!("--vm-accel kvm: {why}")) } else { tcg(why) };
    if p.host != Some(guest) {
        return refuse(format!("{} guest on {} host", guest.name(), p.host.map(Arch::name).unwrap_or("another")));
    }
    match &p.kvm {
        Err(why) => return refuse(why.clone()),
        Ok(12) => {}
        Ok(v) => return refuse(format!("/dev/kvm answers API version {v}, not 12")),
    }
    if guest == Arch::X86_64 && !p.virt_flags && ask == AccelAsk::Auto {
        return tcg("/dev/kvm is there but the cpu has no vmx/svm flag (a nested or software KVM such as kvm_pvm hangs standard guests)".into());
    }
    Ok((Accel::Kvm, "/dev/kvm works and the cpu has vmx/svm".into()))
}

/// Whether /proc/cpuinfo's flags name hardware virtualization.
pub fn has_virt_flags(cpuinfo: &str) -> bool {
    cpuinfo.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

/// One guest to boot. The files are given as paths QEMU opens: the host
/// passes descriptors of files already unlinked, as /proc/self/fd/N.
#[derive(Debug, Clone)]
pub struct Machine {
    pub arch: Arch,
    pub accel: Accel,
    pub smp: u32,
    pub mem_mib: u32,
    pub kernel: String,
    pub initrd: String,
    /// /dev/vda: the disk under test.
    pub disk: String,
    /// /dev/vdb: where the guest writes its frames (serial brr-results).
    pub results: String,
    /// Added to the kernel command line.
    pub append: String,
}

pub const RESULTS_SERIAL: &str = "brr-results";

pub fn program(arch: Arch) -> String {
    format!("qemu-system-{}", arch.name())
}

/// The kernel command line: the serial console (the progress and the
/// fallback verdict channel) with an early console for boot failures,
/// panic=-1 so a panic ends QEMU (-no-reboot), our /init, and a kernel log
/// buffer big enough that the binary loses no record. No oops=panic or
/// panic_on_warn: the binary judges WARN and Oops itself and must live on
/// to unmount (the bug shows at close_ctree).
pub fn cmdline(m: &Machine) -> String {
    let console = match m.arch {
        Arch::X86_64 => "console=ttyS0,115200 earlyprintk=serial,ttyS0,115200",
        Arch::Aarch64 => "console=ttyAMA0 earlycon",
    };
    let mut s = format!("{console} panic=-1 rdinit=/init loglevel=7 log_buf_len=16M printk.time=1 brr.accel={}", m.accel.name());
    if !m.append.trim().is_empty() {
        s.push(' ');
        s.push_str(m.append.trim());
    }
    s
}

/// argv, program first.
pub fn argv(m: &Machine) -> Vec<String> {
    let mut a: Vec<String> = vec![program(m.arch)];
    let mut add = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    match (m.arch, m.accel) {
        (Arch::X86_64, Accel::Tcg) => add(&["-accel", "tcg", "-cpu", "max"]),
        (Arch::X86_64, Accel::Kvm) => add(&["-accel", "kvm", "-cpu", "host"]),
        // cortex-a57, not max: max emulates pointer authentication, slow under TCG.
        (Arch::Aarch64, Accel::Tcg) => add(&["-M", "virt", "-accel", "tcg", "-cpu", "cortex-a57"]),
        (Arch::Aarch64, Accel::Kvm) => add(&["-M", "virt,gic-version=host", "-accel", "kvm", "-cpu", "host"]),
    }
    let smp = m.smp.to_string();
    let mem = m.mem_mib.to_string();
    let append = cmdline(m);
    let disk = format!("file={},format=raw,if=none,id=test,cache=unsafe,file.locking=off", m.disk);
    let results = format!("file={},format=raw,if=none,id=results,cache=unsafe,file.locking=off", m.results);
    let results_dev = format!("virtio-blk-pci,drive=results,serial={RESULTS_SERIAL}");
    add(&[
        "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none", "-smp", &smp, "-m", &mem,
        "-kernel", &m.kernel, "-initrd", &m.initrd, "-append", &append,
        // The disk under test first: the guest's /dev/vda.
        "-drive", &disk, "-device", "virtio-blk-pci,drive=test,serial=brr-test",
        "-drive", &results, "-device", &results_dev,
        "-serial", "stdio",
    ]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(host: Arch, kvm: Result<i32, String>, virt_flags: bool) -> Probe {
        Probe { host: Some(host), kvm, virt_flags }
    }

    #[test]
    fn kvm_only_where_it_works() {
        let good = probe(Arch::X86_64, Ok(12), true);
        assert_eq!(choose(AccelAsk::Auto, Arch::X86_64, &good).unwrap().0, Accel::Kvm);
        assert_eq!(choose(AccelAsk::Tcg, Arch::X86_64, &good).unwrap().0, Accel::Tcg);
        // This machine: kvm_pvm answers, the cpu has no vmx/svm.
        let pvm = probe(Arch::X86_64, Ok(12), false);
        let (a, why) = choose(AccelAsk::Auto, Arch::X86_64, &pvm).unwrap();
        assert_eq!(a, Accel::Tcg);
        assert!(why.contains("no vmx/svm"), "{why}");
        assert_eq!(choose(AccelAsk::Kvm, Arch::X86_64, &pvm).unwrap().0, Accel::Kvm);
        let (a, why) = choose(AccelAsk::Auto, Arch::Aarch64, &good).unwrap();
        assert_eq!((a, why.as_str()), (Accel::Tcg, "aarch64 guest on x86_64 host"));
        let denied = probe(Arch::X86_64, Err("open /dev/kvm: Permission denied (EACCES)".into()), true);
        assert_eq!(choose(AccelAsk::Auto, Arch::X86_64, &denied).unwrap().0, Accel::Tcg);
        assert!(choose(AccelAsk::Kvm, Arch::X86_64, &denied).unwrap_err().starts_with("--vm-accel kvm: open /dev/kvm"));
        assert_eq!(choose(AccelAsk::Auto, Arch::X86_64, &probe(Arch::X86_64, Ok(11), true)).unwrap().0, Accel::Tcg);
        // An aarch64 host needs no cpu flag.
        assert_eq!(choose(AccelAsk::Auto, Arch::Aarch64, &probe(Arch::Aarch64, Ok(12), false)).unwrap().0, Accel::Kvm);
    }

    #[test]
    fn cpu_flags_are_read_from_the_flags_lines() {
        assert!(has_virt_flags("processor\t: 0\nflags\t\t: fpu vme vmx sse\n"));
        assert!(has_virt_flags("flags\t\t: fpu svm\n"));
        assert!(!has_virt_flags("flags\t\t: fpu vme sse\nmodel name\t: vmx-like cpu\n"));
    }

    fn machine(arch: Arch, accel: Accel) -> Machine {
        Machine {
            arch,
            accel,
            smp: 2,
            mem_mib: 2048,
            kernel: "/k/bzImage".into(),
            initrd: "/proc/self/fd/3".into(),
            disk: "/proc/self/fd/4".into(),
            results: "/proc/self/fd/5".into(),
            append: " brr.x=1 ".into(),
        }
    }

    fn after<'a>(a: &'a [String], flag: &str) -> &'a str {
        &a[a.iter().position(|x| x == flag).unwrap_or_else(|| panic!("no {flag} in {a:?}")) + 1]
    }

    #[test]
    fn x86_64_tcg_and_kvm() {
        let a = argv(&machine(Arch::X86_64, Accel::Tcg));
        assert_eq!(a[0], "qemu-system-x86_64");
        assert_eq!((after(&a, "-accel"), after(&a, "-cpu")), ("tcg", "max"));
        assert_eq!((after(&a, "-kernel"), after(&a, "-initrd"), after(&a, "-serial")), ("/k/bzImage", "/proc/self/fd/3", "stdio"));
        assert_eq!(after(&a, "-append"), "console=ttyS0,115200 earlyprintk=serial,ttyS0,115200 panic=-1 rdinit=/init loglevel=7 log_buf_len=16M printk.time=1 brr.accel=tcg brr.x=1");
        let drives: Vec<&String> = a.iter().filter(|x| x.starts_with("file=")).collect();
        assert!(drives[0].starts_with("file=/proc/self/fd/4,") && drives[0].contains("id=test"), "{drives:?}");
        assert!(drives[1].starts_with("file=/proc/self/fd/5,") && drives[1].contains("id=results"), "{drives:?}");
        assert!(a.contains(&"-no-reboot".to_string()) && a.contains(&"-nodefaults".to_string()));
        let k = argv(&machine(Arch::X86_64, Accel::Kvm));
        assert_eq!((after(&k, "-accel"), after(&k, "-cpu")), ("kvm", "host"));
        assert!(after(&k, "-append").contains("brr.accel=kvm"));
    }

    #[test]
    fn aarch64_uses_virt_and_the_pl011_console() {
        let a = argv(&machine(Arch::Aarch64, Accel::Tcg));
        assert_eq!(a[0], "qemu-system-aarch64");
        assert_eq!((after(&a, "-M"), after(&a, "-cpu"), after(&a, "-accel")), ("virt", "cortex-a57", "tcg"));
        assert!(after(&a, "-append").starts_with("console=ttyAMA0 earlycon panic=-1"));
        let k = argv(&machine(Arch::Aarch64, Accel::Kvm));
        assert_eq!((after(&k, "-M"), after(&k, "-cpu")), ("virt,gic-version=host", "host"));
    }
}
