//! The reclaim settings of the test filesystem: which of the sysfs knobs in
//! allocation/data/ a run writes after the fill, and in which order.

/// Which reclaim the knobs turn on after the fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reclaim {
    /// dynamic_reclaim=1 periodic_reclaim=1: the bug report's setting.
    #[default]
    Periodic,
    /// dynamic_reclaim=1 periodic_reclaim=0: failed relocations are retried
    /// (btrfs_reclaim_bgs_work's retry list is live only without periodic).
    Dynamic,
    /// bg_reclaim_threshold=N, dynamic and periodic off.
    Threshold(u32),
}

impl Reclaim {
    /// The retry-list hunt's setting: a static threshold that every group
    /// left with one file of ten stays under.
    pub const HUNT_DEFAULT: Reclaim = Reclaim::Threshold(75);
    /// What periodic/dynamic become on a kernel with only the static
    /// threshold (5.19-6.10): every other file deleted leaves each group
    /// about half used, well under 75 %.
    pub const STATIC_DEFAULT: Reclaim = Reclaim::Threshold(75);

    /// The inverse of `name`: periodic, dynamic or threshold=N (1..=99).
    pub fn parse(s: &str) -> Option<Reclaim> {
        match s {
            "periodic" => Some(Reclaim::Periodic),
            "dynamic" => Some(Reclaim::Dynamic),
            _ => match s.strip_prefix("threshold=").map(str::parse::<u32>) {
                Some(Ok(n)) if (1..=99).contains(&n) => Some(Reclaim::Threshold(n)),
                _ => None,
            },
        }
    }

    pub fn name(self) -> String {
        match self {
            Reclaim::Periodic => "periodic".into(),
            Reclaim::Dynamic => "dynamic".into(),
            Reclaim::Threshold(n) => format!("threshold={n}"),
        }
    }

    /// The sysfs knobs to write, in order (allocation/data/).
    pub fn knobs(self) -> Vec<(&'static str, String)> {
        match self {
            Reclaim::Periodic => vec![("dynamic_reclaim", "1".into()), ("periodic_reclaim", "1".into())],
            Reclaim::Dynamic => vec![("dynamic_reclaim", "1".into()), ("periodic_reclaim", "0".into())],
            Reclaim::Threshold(n) => vec![
                ("dynamic_reclaim", "0".into()),
                ("periodic_reclaim", "0".into()),
                ("bg_reclaim_threshold", n.to_string()),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_name_their_knobs() {
        for r in [Reclaim::Periodic, Reclaim::Dynamic, Reclaim::Threshold(1), Reclaim::HUNT_DEFAULT, Reclaim::Threshold(99)] {
            assert_eq!(Reclaim::parse(&r.name()), Some(r));
        }
        for bad in ["sometimes", "threshold=0", "threshold=100", "threshold=", "threshold=-5", "Periodic"] {
            assert_eq!(Reclaim::parse(bad), None, "{bad}");
        }
        let knob = |r: Reclaim| r.knobs().into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        assert_eq!(knob(Reclaim::Periodic), "dynamic_reclaim=1 periodic_reclaim=1");
        assert_eq!(knob(Reclaim::Dynamic), "dynamic_reclaim=1 periodic_reclaim=0");
        assert_eq!(knob(Reclaim::Threshold(75)), "dynamic_reclaim=0 periodic_reclaim=0 bg_reclaim_threshold=75");
    }
}
