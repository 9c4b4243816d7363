//! The binary running in the background, and signals sent to it.

use std::process::{Command, Stdio};

use super::*;

/// Sends a signal (by name: INT, TERM, HUP, KILL) with kill(1): the tests
/// use std only.
pub fn send_signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Sends a signal to every process of the group `pgid` (kill -SIG -- -pgid):
/// what a terminal's Ctrl-C does to the foreground job.
pub fn send_signal_to_group(pgid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), "--", &format!("-{pgid}")]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} -- -{pgid} failed");
}

/// Processes whose executable is `exe` (as /proc/<pid>/exe names it), with
/// their parent pid: a forked helper shares its parent's executable.
pub fn processes_of(exe: &Path) -> Vec<(u32, u32)> {
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if std::fs::read_link(entry.path().join("exe")).ok().as_deref() != Some(exe.as_path()) {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        out.push((pid, ppid));
    }
    out
}

/// The binary running in the background, its stderr read line by line as
/// it comes.
pub struct Running {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub stderr: String,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Starts `program args` (normally the binary, or a wrapper that execs
    /// it) with extra environment variables.
    pub fn start(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        Self::spawn(Command::new(program), args, env)
    }

    /// Like `start`, leading a process group of its own (as a shell runs a
    /// job), so that a signal can go to it and all it forked.
    pub fn start_as_group(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(program);
        cmd.process_group(0);
        Self::spawn(cmd, args, env)
    }

    fn spawn(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Running {
        use std::io::{BufRead, Read};
        let program = cmd.get_program().to_owned();
        let program = Path::new(&program);
        let mut child = cmd
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Running { child, lines: rx, stderr: String::new(), stdout: Some(stdout) }
    }

    fn keep(&mut self, line: String) {
        self.stderr.push_str(&line);
        self.stderr.push('\n');
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `needle`; false on timeout or
    /// when stderr closed first.
    pub fn wait_for_line(&mut self, needle: &str, timeout: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.keep(line);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits up to `timeout` for the binary itself to exit; true when it
    /// did. Processes it forked may still hold its stdout, which `finish`
    /// reads to the end: a test that must look at them first calls this.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    /// Waits for the exit (killing it after `timeout`) and returns what it
    /// printed.
    pub fn finish(mut self, timeout: std::time::Duration) -> Run {
        let status = if self.wait_exit(timeout) {
            self.child.try_wait().unwrap()
        } else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            None
        };
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(2)) {
            self.keep(line);
        }
        let stdout = self.stdout.take().unwrap().join().unwrap_or_default();
        Run { code: status.and_then(|s| s.code()).unwrap_or(-1), stdout, stderr: std::mem::take(&mut self.stderr) }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave the binary running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
