//! Progress of `migrate` and `down` on stderr. On a terminal the script that is running shows
//! as one live line, `[3/30] V202501010003_add_roles  4.1 s`, redrawn in place under the log
//! (log lines print above it); when it is done its `[3/30] V..._add_roles (4.3 s)` line stays.
//! Elsewhere (pipes, files, CI and Kubernetes logs) there is no live line and nothing is
//! redrawn: the log's own plain lines are the progress, one when a script starts and one when
//! it is done. stdout is never touched, so `--format json` output stays one JSON document.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::time::human;

/// How often the live line is redrawn.
pub const TICK: Duration = Duration::from_millis(200);

/// stderr, shared by the log and the live line.
#[derive(Clone)]
pub struct Live {
    state: Arc<Mutex<State>>,
}

struct State {
    /// Draw a live line (stderr is a terminal and the log is text).
    enabled: bool,
    /// The running step's text and when it started.
    current: Option<(String, Instant)>,
    /// The live line is on screen (the cursor is at its end).
    drawn: bool,
    out: Box<dyn Write + Send>,
}

const CLEAR: &str = "\r\x1b[2K";

impl State {
    fn clear(&mut self) {
        if self.drawn {
            let _ = write!(self.out, "{CLEAR}");
            self.drawn = false;
        }
    }

    fn draw(&mut self) {
        if let (true, Some((text, since))) = (self.enabled, &self.current) {
            let _ = write!(self.out, "{CLEAR}{text}  {}", human(since.elapsed()));
            let _ = self.out.flush();
            self.drawn = true;
        }
    }
}

impl Live {
    /// On `out`; `enabled` draws the live line.
    pub fn new(out: Box<dyn Write + Send>, enabled: bool) -> Live {
        Live {
            state: Arc::new(Mutex::new(State {
                enabled,
                current: None,
                drawn: false,
                out,
            })),
        }
    }

    /// Whether a live line is drawn (then the log leaves out the "started" lines).
    pub fn enabled(&self) -> bool {
        self.lock().enabled
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A log line, above the live line.
    pub fn line(&self, text: &str) {
        let mut s = self.lock();
        s.clear();
        let _ = writeln!(s.out, "{text}");
        s.draw();
        let _ = s.out.flush();
    }

    /// A step started: show it live.
    pub fn start(&self, text: String) {
        let mut s = self.lock();
        s.current = Some((text, Instant::now()));
        s.draw();
    }

    /// The step ended: remove the live line.
    pub fn stop(&self) {
        let mut s = self.lock();
        s.current = None;
        s.clear();
        let _ = s.out.flush();
    }

    /// Redraw the live line (its clock moves on).
    pub fn tick(&self) {
        self.lock().draw();
    }

    /// Run `work`, redrawing the live line every `TICK` meanwhile.
    pub async fn while_running<F: std::future::Future>(&self, work: F) -> F::Output {
        if !self.enabled() {
            return work.await;
        }
        tokio::pin!(work);
        let mut every = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                out = &mut work => {
                    self.stop();
                    return out;
                }
                _ = every.tick() => self.tick(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::Captured;

    #[test]
    fn log_lines_print_above_the_live_line_which_is_cleared_when_done() {
        let out = Captured::default();
        let live = Live::new(Box::new(out.clone()), true);
        live.line("Processing...");
        live.start("[1/2] V202501010001_a.js".into());
        live.line("a warning");
        live.stop();
        live.line("[1/2] V202501010001_a.js (0.0 s)");
        let text = out.text();
        assert!(
            text.starts_with("Processing...\n\r\x1b[2K[1/2] V202501010001_a.js  0.0 s\r\x1b[2Ka warning\n\r\x1b[2K[1/2] V202501010001_a.js  0.0 s\r\x1b[2K[1/2] V202501010001_a.js (0.0 s)\n"),
            "{text:?}"
        );

        let plain = Captured::default();
        let live = Live::new(Box::new(plain.clone()), false);
        live.start("[1/2] x".into());
        live.line("a line");
        live.tick();
        live.stop();
        assert_eq!(
            plain.text(),
            "a line\n",
            "no control characters off a terminal"
        );
    }
}
