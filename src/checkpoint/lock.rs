//! The daemon lock: one `ferry sync` (or checkpoint edit) per state store, and how `ferry status`
//! tells whether a daemon runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// An exclusive lock on the state store for one running daemon. Released by the OS when the
/// process exits, however it exits (kill -9 included).
pub struct DaemonLock {
    _file: std::fs::File,
}

impl DaemonLock {
    pub fn acquire(state_path: &Path) -> Result<DaemonLock> {
        Self::acquire_at(state_path, DAEMON, "another ferry daemon is running on")
    }

    /// The lock a `cutover --switch` or `rollback` holds while it waits for its switch: the daemon
    /// carries out a switch request only while it is held, so a command that died (kill -9,
    /// timeout) never leaves a switch behind that nobody would announce.
    pub fn acquire_switch(state_path: &Path) -> Result<DaemonLock> {
        Self::acquire_at(state_path, SWITCH, "another ferry cutover or rollback is switching")
    }

    /// Whether a command waits for a switch on this state store now.
    pub fn switch_awaited(state_path: &Path) -> Result<bool> {
        held(&lock_path(state_path, SWITCH))
    }

    fn acquire_at(state_path: &Path, suffix: &str, taken: &str) -> Result<DaemonLock> {
        let lock_path = lock_path(state_path, suffix);
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        // A few tries: `ferry status` probing the lock (`is_held`) holds it for a moment.
        for _ in 0..PROBE_TRIES {
            match file.try_lock() {
                Ok(()) => return Ok(DaemonLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(5)),
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        Err(Error::fatal(format!(
            "{taken} the state store {} (lock {} is held)",
            state_path.display(),
            lock_path.display()
        )))
    }

    /// Whether a daemon holds the lock on this state store now: false as soon as its process has
    /// ended, however it ended. Probes with a shared lock, released at once; never creates a file.
    pub fn is_held(state_path: &Path) -> Result<bool> {
        held(&lock_path(state_path, DAEMON))
    }
}

/// Probes a lock file with a shared lock, released at once.
fn held(path: &Path) -> Result<bool> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false), // released when `file` closes
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

const PROBE_TRIES: u32 = 20;
const DAEMON: &str = ".lock";
const SWITCH: &str = ".switch.lock";

fn lock_path(state_path: &Path, suffix: &str) -> PathBuf {
    let mut p = state_path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_daemon_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.db");
        assert!(!DaemonLock::is_held(&p).unwrap(), "no lock file yet");
        let first = DaemonLock::acquire(&p).unwrap();
        assert!(DaemonLock::is_held(&p).unwrap());
        assert!(
            DaemonLock::is_held(&p).unwrap(),
            "probing leaves the lock with its holder"
        );
        let err = DaemonLock::acquire(&p).err().expect("second lock must fail");
        assert!(err.to_string().contains("another ferry daemon is running"), "{err}");
        drop(first);
        assert!(!DaemonLock::is_held(&p).unwrap());
        DaemonLock::acquire(&p).unwrap();
    }
}
