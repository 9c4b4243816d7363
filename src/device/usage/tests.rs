use super::*;
use crate::testing::TempDir;

fn info(name: &str, major: u32, minor: u32) -> BlockInfo {
    BlockInfo { name: name.into(), major, minor, ..BlockInfo::default() }
}

fn whats(u: Vec<Use>) -> Vec<String> {
    u.into_iter().map(|u| u.what).collect()
}

#[test]
fn finds_every_kind_of_use() {
    // The disk holding / (ext4, matched by device number), a btrfs mount
    // (anonymous 0:N, matched by source), swap and dm holders.
    let usage = Usage::parse(
        "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
         36 22 0:32 / /home rw shared:30 - btrfs /dev/sdb1 rw,space_cache=v2\n",
        "Filename\tType\tSize\tUsed\tPriority\n/dev/sdc2 partition 1 0 -2\n",
        vec!["sdd".into()],
    );
    let root = uses(&["/dev/vda".into()], &[info("vda", 254, 0)], &usage);
    assert_eq!(whats(root), vec!["/dev/vda is mounted on /".to_string()]);
    // A whole disk whose partition is mounted.
    let disk = uses(&["/dev/sdb".into()], &[info("sdb", 8, 16), info("sdb1", 8, 17)], &usage);
    assert_eq!(whats(disk), vec!["/dev/sdb1 is mounted on /home".to_string()]);
    // btrfs seen only through /sys/fs/btrfs/*/devices.
    let multi = uses(&["/dev/sdd".into()], &[info("sdd", 8, 48)], &usage);
    assert!(multi[0].what.contains("mounted btrfs"));
    let swap = uses(&["/dev/sdc2".into()], &[info("sdc2", 8, 34)], &usage);
    assert_eq!(whats(swap), vec!["/dev/sdc2 is in use as swap".to_string()]);
    let mut held = info("sde", 8, 64);
    held.holders = vec!["dm-0".into()];
    let h = uses(&["/dev/sde".into()], &[held], &usage);
    assert!(h[0].what.contains("held by dm-0 (device-mapper)"), "{h:?}");
    assert!(h[0].remedy.contains("dmsetup remove"));
    assert!(uses(&["/dev/sdf".into()], &[info("sdf", 8, 80)], &usage).is_empty());
    // Named through a path the mount source uses verbatim.
    let usage = Usage::parse("40 22 0:40 / /data rw - btrfs /dev/disk/by-label/data rw\n", "", vec![]);
    assert!(!uses(&["/dev/disk/by-label/data".into()], &[info("sdg", 8, 96)], &usage).is_empty());
}

#[test]
fn parses_swaps() {
    let t = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/zram0 partition 8388604 0 100\n/var/my\\040swap file 1024 0 -2\n";
    assert_eq!(parse_swaps(t), vec!["/dev/zram0".to_string(), "/var/my swap".to_string()]);
    assert!(parse_swaps("").is_empty());
    let t = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/var/tab\\011and\\134slash file 1024 0 -2\n";
    assert_eq!(parse_swaps(t), vec!["/var/tab\tand\\slash".to_string()]);
}

/// A fixture sysfs tree in a temp directory: the layout of /sys that
/// block_info and friends read (dev/block/M:m symlinks into devices/,
/// partitions as subdirectories with a `partition` file, holders/,
/// loop/backing_file, block/<disk>, fs/btrfs/<fsid>/devices/<name>).
struct Sysfs {
    root: TempDir,
}

impl Sysfs {
    fn new(name: &str) -> Sysfs {
        let root = TempDir::new(&format!("sysfs-{name}"));
        std::fs::create_dir_all(root.join("dev/block")).unwrap();
        std::fs::create_dir_all(root.join("block")).unwrap();
        Sysfs { root }
    }

    fn disk(&self, name: &str, dev: &str) -> &Sysfs {
        let d = self.root.join("devices").join(name);
        std::fs::create_dir_all(d.join("holders")).unwrap();
        std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
        std::os::unix::fs::symlink(format!("../../devices/{name}"), self.root.join("dev/block").join(dev)).unwrap();
        std::os::unix::fs::symlink(format!("../devices/{name}"), self.root.join("block").join(name)).unwrap();
        self
    }

    fn partition(&self, disk: &str, name: &str, dev: &str) -> &Sysfs {
        let d = self.root.join("devices").join(disk).join(name);
        std::fs::create_dir_all(d.join("holders")).unwrap();
        std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
        std::fs::write(d.join("partition"), "1\n").unwrap();
        std::os::unix::fs::symlink(format!("../../devices/{disk}/{name}"), self.root.join("dev/block").join(dev)).unwrap();
        self
    }

    /// `path` is devices/<...>: the disk or partition directory.
    fn holder(&self, path: &str, holder: &str) -> &Sysfs {
        std::fs::create_dir_all(self.root.join("devices").join(path).join("holders").join(holder)).unwrap();
        self
    }

    fn backing(&self, disk: &str, file: &str) -> &Sysfs {
        let d = self.root.join("devices").join(disk).join("loop");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("backing_file"), format!("{file}\n")).unwrap();
        self
    }

    fn btrfs_member(&self, fsid: &str, name: &str) -> &Sysfs {
        let d = self.root.join("fs/btrfs").join(fsid).join("devices");
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(format!("../../../../devices/{name}"), d.join(name)).unwrap();
        self
    }
}

const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

/// The disk holding /: never to be staged on a real machine.
#[test]
fn refuses_the_disk_holding_root() {
    let s = Sysfs::new("root");
    s.disk("vda", "254:0").partition("vda", "vda1", "254:1").partition("vda", "vda2", "254:2");
    let info = block_info(&s.root, 254, 0).unwrap();
    assert_eq!(info.name, "vda");
    assert_eq!(info.partitions, vec!["vda1".to_string(), "vda2".to_string()]);
    // ext4 on a partition: matched by device number.
    let ext4 = Usage::parse("22 1 254:2 / / rw,relatime shared:1 - ext4 /dev/vda2 rw\n", SWAPS_HEADER, vec![]);
    let u = block_device_uses(&s.root, &ext4, 254, 0, &["/dev/vda".into()]);
    assert_eq!(whats(u), vec!["/dev/vda2 is mounted on /".to_string()]);
    // Naming the partition itself.
    let u = block_device_uses(&s.root, &ext4, 254, 2, &["/dev/vda2".into()]);
    assert_eq!(whats(u), vec!["/dev/vda2 is mounted on /".to_string()]);
    // The other partition is free.
    assert!(block_device_uses(&s.root, &ext4, 254, 1, &["/dev/vda1".into()]).is_empty());
    // btrfs on / shows 0:N: matched by source, and by /sys/fs/btrfs.
    let btrfs = Usage::parse("22 1 0:27 / / rw shared:1 - btrfs /dev/vda2 rw,space_cache=v2\n", SWAPS_HEADER, vec![]);
    let u = block_device_uses(&s.root, &btrfs, 254, 0, &["/dev/vda".into()]);
    assert_eq!(whats(u), vec!["/dev/vda2 is mounted on /".to_string()]);
    s.btrfs_member("3f1c0000-0000-0000-0000-000000000001", "vda2");
    let sources_elsewhere = Usage::parse("22 1 0:27 / / rw - btrfs /dev/root rw\n", SWAPS_HEADER, btrfs_device_names(&s.root));
    let u = block_device_uses(&s.root, &sources_elsewhere, 254, 0, &["/dev/vda".into()]);
    assert!(u[0].what.contains("/dev/vda2 belongs to a mounted btrfs"), "{u:?}");
}

/// A second device of a multi-device btrfs is not the mount source: only
/// /sys/fs/btrfs/<fsid>/devices lists it.
#[test]
fn refuses_a_member_of_a_mounted_multi_device_btrfs() {
    let s = Sysfs::new("multi");
    s.disk("sdb", "8:16").disk("sdc", "8:32").disk("sdd", "8:48");
    s.btrfs_member("5a5a0000-0000-0000-0000-000000000002", "sdb").btrfs_member("5a5a0000-0000-0000-0000-000000000002", "sdc");
    assert_eq!(btrfs_device_names(&s.root), vec!["sdb".to_string(), "sdc".to_string()]);
    let usage = Usage::parse("36 22 0:32 / /pool rw - btrfs /dev/sdb rw\n", SWAPS_HEADER, btrfs_device_names(&s.root));
    let u = block_device_uses(&s.root, &usage, 8, 32, &["/dev/sdc".into()]);
    assert_eq!(u.len(), 1);
    assert!(u[0].what.contains("/dev/sdc belongs to a mounted btrfs"));
    let u = block_device_uses(&s.root, &usage, 8, 16, &["/dev/sdb".into()]);
    assert_eq!(whats(u), vec!["/dev/sdb is mounted on /pool".to_string()]);
    assert!(block_device_uses(&s.root, &usage, 8, 48, &["/dev/sdd".into()]).is_empty());
}

/// dm and md hold the device (or one of its partitions) without any
/// mount of it showing up: sysfs holders/ says so.
#[test]
fn refuses_devices_held_by_dm_or_md() {
    let s = Sysfs::new("holders");
    s.disk("sdb", "8:16").disk("sdc", "8:32").partition("sdc", "sdc1", "8:33").disk("nvme0n1", "259:0");
    s.holder("sdb", "dm-0").holder("sdc/sdc1", "md127");
    let usage = Usage::parse("", SWAPS_HEADER, vec![]);
    let u = block_device_uses(&s.root, &usage, 8, 16, &["/dev/sdb".into()]);
    assert_eq!(whats(u), vec!["/dev/sdb is held by dm-0 (device-mapper)".to_string()]);
    let u = block_device_uses(&s.root, &usage, 8, 32, &["/dev/sdc".into()]);
    assert_eq!(whats(u), vec!["/dev/sdc1 is held by md127 (md RAID)".to_string()]);
    assert!(block_device_uses(&s.root, &usage, 259, 0, &["/dev/nvme0n1".into()]).is_empty());
    // A device named through a symlink: canonical names are compared.
    let usage = Usage::parse("", &format!("{SWAPS_HEADER}/dev/nvme0n1 partition 1 0 -2\n"), vec![]);
    let u = block_device_uses(&s.root, &usage, 259, 0, &["/dev/disk/by-id/nvme-x".into(), "/dev/nvme0n1".into()]);
    assert_eq!(whats(u), vec!["/dev/nvme0n1 is in use as swap".to_string()]);
}

/// An image file is in use when a loop device over it (or a partition of
/// that loop device) is mounted, in swap or held.
#[test]
fn refuses_an_image_whose_loop_device_is_in_use() {
    let s = Sysfs::new("image");
    s.disk("loop0", "7:0").disk("loop1", "7:1").partition("loop1", "loop1p1", "259:5").disk("loop2", "7:2");
    s.backing("loop0", "/var/tmp/a.img").backing("loop1", "/var/tmp/b.img").backing("loop2", "/var/tmp/c.img (deleted)");
    let usage = Usage::parse(
        "50 22 0:50 / /mnt/a rw - btrfs /dev/loop0 rw\n51 22 259:5 / /mnt/b rw - ext4 /dev/loop1p1 rw\n",
        &format!("{SWAPS_HEADER}/dev/loop2 partition 1 0 -2\n/var/tmp/d.img file 1 0 -3\n"),
        vec![],
    );
    let a = image_uses(&s.root, &usage, "/var/tmp/a.img");
    assert_eq!(whats(a), vec!["it is attached to /dev/loop0, and /dev/loop0 is mounted on /mnt/a".to_string()]);
    let b = image_uses(&s.root, &usage, "/var/tmp/b.img");
    assert_eq!(whats(b), vec!["it is attached to /dev/loop1, and /dev/loop1p1 is mounted on /mnt/b".to_string()]);
    assert!(b_remedy_says_detach(&image_uses(&s.root, &usage, "/var/tmp/b.img")));
    let c = image_uses(&s.root, &usage, "/var/tmp/c.img");
    assert_eq!(whats(c), vec!["it is attached to /dev/loop2, and /dev/loop2 is in use as swap".to_string()]);
    assert_eq!(whats(image_uses(&s.root, &usage, "/var/tmp/d.img")), vec!["it is in use as a swap file".to_string()]);
    assert!(image_uses(&s.root, &usage, "/var/tmp/e.img").is_empty());
    // Naming a second loop device over a.img: a.img's mounted loop counts.
    s.disk("loop3", "7:3").backing("loop3", "/var/tmp/a.img");
    let u = block_device_uses(&s.root, &usage, 7, 3, &["/dev/loop3".into()]);
    assert!(u[0].what.contains("also attached to /dev/loop0, and /dev/loop0 is mounted on /mnt/a"), "{u:?}");
}

fn b_remedy_says_detach(u: &[Use]) -> bool {
    u.first().is_some_and(|u| u.remedy.contains("losetup -d"))
}
