//! Progress lines on stderr: one per phase, plus rate-limited updates during
//! long phases (rewritten in place on a terminal).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    start: Instant,
    last_update: Option<Instant>,
    tty: bool,
    pending_line: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress { start: Instant::now(), last_update: None, tty: std::io::stderr().is_terminal(), pending_line: false }
    }

    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn end_pending(&mut self, err: &mut impl Write) {
        if self.pending_line {
            let _ = writeln!(err);
            self.pending_line = false;
        }
    }

    /// A line that stays: the start or end of a phase, a finding.
    pub fn say(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        self.end_pending(&mut err);
        let _ = writeln!(err, "[{:6.1}s] {text}", self.elapsed());
    }

    /// A transient update during a long phase: at most one a second, on a
    /// terminal rewritten in place, elsewhere one line every 5 s.
    pub fn update(&mut self, text: &str) {
        let every = if self.tty { Duration::from_secs(1) } else { Duration::from_secs(5) };
        let now = Instant::now();
        if self.last_update.is_some_and(|t| now.duration_since(t) < every) {
            return;
        }
        if self.last_update.is_none() {
            // The first update of a phase waits one period: short phases stay quiet.
            self.last_update = Some(now);
            return;
        }
        self.last_update = Some(now);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K[{:6.1}s] {text}", self.elapsed());
            self.pending_line = true;
        } else {
            let _ = writeln!(err, "[{:6.1}s] {text}", self.elapsed());
        }
        let _ = err.flush();
    }

    /// Ends a phase's updates.
    pub fn done_updates(&mut self) {
        self.last_update = None;
        let mut err = std::io::stderr().lock();
        self.end_pending(&mut err);
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
