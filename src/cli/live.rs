//! Progress on stderr, drawn in one place. Two kinds of work show progress:
//!
//! - a **step** (`start`): the running script of `migrate` and `down`. On a terminal it is one
//!   live line, `[3/30] V202501010003_add_roles  4.1 s`, redrawn in place under the log (log
//!   lines print above it); when it is done its `[3/30] V..._add_roles (4.3 s)` log line stays.
//!   Elsewhere nothing is drawn: the log's own plain lines are the progress, one when a script
//!   starts and one when it is done.
//! - a **gauge** (`gauge`): a backup, restore or a rehearsal's read of the data, counted in a
//!   `backup::Progress` (`cli::progress::render` says what its line reads). Nothing for the
//!   first second; then on a terminal the line is redrawn in place a few times a second, and
//!   elsewhere a plain line every 10 s — or, under `--log-format json`, a JSON log line
//!   (`backup.progress` / `restore.progress` with the counters). When the operation is over
//!   (`Progress::finish`, or `stop`) a gauge that was shown prints its last line.
//!
//! - **lanes** (`lane`): a run over many databases draws, on a terminal, one line per running
//!   database (`shard-1  [2/3] V..._add_roles  1.2 s`) under the log; each database's steps
//!   go to its own lane (a `Live` from `lane(name)`), which its log lines name.
//!
//! stdout is never touched, so `--format json` output stays one JSON document.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backup::Progress;
use crate::time::human;

/// How often the live line is redrawn.
pub const TICK: Duration = Duration::from_millis(200);
/// A gauge shows nothing for operations done within this.
const GAUGE_FIRST: Duration = Duration::from_secs(1);
/// A gauge's plain (or JSON) line, off a terminal.
const GAUGE_PLAIN_EVERY: Duration = Duration::from_secs(10);

/// How stderr is drawn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A terminal with text logs: live lines redrawn in place.
    Terminal,
    /// Pipes, files, CI and Kubernetes logs: plain lines, no control characters.
    Plain,
    /// `--log-format json`: a gauge is a JSON log line.
    Json,
}

impl Mode {
    pub fn of(tty: bool, log_json: bool) -> Mode {
        match (log_json, tty) {
            (true, _) => Mode::Json,
            (false, true) => Mode::Terminal,
            (false, false) => Mode::Plain,
        }
    }
}

/// stderr, shared by the log and the live line.
#[derive(Clone)]
pub struct Live {
    state: Arc<Mutex<State>>,
    /// The database this handle draws for (a run over many databases).
    lane: Option<Arc<str>>,
}

enum Current {
    Step {
        text: String,
        since: Instant,
    },
    Gauge {
        what: String,
        progress: Arc<Progress>,
        /// When it is drawn next.
        next: Instant,
        shown: bool,
    },
}

struct State {
    mode: Mode,
    current: Option<Current>,
    /// The live line is on screen (the cursor is at its end).
    drawn: bool,
    /// Lines drawn below the first (the lanes of a run over many databases).
    extra: usize,
    /// Each running database's step, in the order they started.
    lanes: Vec<(Arc<str>, String, Instant)>,
    out: Box<dyn Write + Send>,
}

const CLEAR: &str = "\r\x1b[2K";

impl State {
    fn clear(&mut self) {
        if self.drawn {
            let _ = write!(self.out, "{CLEAR}");
            for _ in 0..self.extra {
                let _ = write!(self.out, "\x1b[1A{CLEAR}");
            }
            self.drawn = false;
            self.extra = 0;
        }
    }

    /// Redraw the live line on a terminal (a log line was printed above it).
    fn redraw(&mut self) {
        if self.mode != Mode::Terminal {
            return;
        }
        let text = match &self.current {
            Some(Current::Step { text, since }) => format!("{text}  {}", human(since.elapsed())),
            Some(Current::Gauge {
                what,
                progress,
                shown: true,
                ..
            }) => super::progress::render(what, &progress.snapshot()),
            None if !self.lanes.is_empty() => {
                let width = self.lanes.iter().map(|(n, ..)| n.len()).max().unwrap_or(0);
                let lines: Vec<String> = self
                    .lanes
                    .iter()
                    .map(|(n, text, since)| {
                        format!("{n:<width$}  {text}  {}", human(since.elapsed()))
                    })
                    .collect();
                self.extra = lines.len() - 1;
                lines.join("\n")
            }
            _ => return,
        };
        let _ = write!(self.out, "{CLEAR}{text}");
        let _ = self.out.flush();
        self.drawn = true;
    }

    /// What a tick does: move the step's clock, draw a gauge that is due, end a finished one.
    fn tick(&mut self, now: Instant) {
        if self.settle() {
            return;
        }
        let every = match self.mode {
            Mode::Terminal => TICK,
            Mode::Plain | Mode::Json => GAUGE_PLAIN_EVERY,
        };
        match &mut self.current {
            Some(Current::Step { .. }) => self.redraw(),
            None if !self.lanes.is_empty() => {
                self.clear();
                self.redraw()
            }
            Some(Current::Gauge { next, shown, .. }) if now >= *next => {
                *shown = true;
                *next = now + every;
                self.gauge_line(false);
            }
            _ => {}
        }
    }

    /// End a gauge whose operation is over; true if it did.
    fn settle(&mut self) -> bool {
        let over = matches!(&self.current, Some(Current::Gauge { progress, .. }) if progress.snapshot().done);
        if over {
            self.end_gauge();
        }
        over
    }

    /// A gauge's line: redrawn in place, a plain line, or a JSON log line.
    fn gauge_line(&mut self, last: bool) {
        let Some(Current::Gauge { what, progress, .. }) = &self.current else {
            return;
        };
        let s = progress.snapshot();
        match self.mode {
            Mode::Terminal => {
                let line = super::progress::render(what, &s);
                let _ = write!(self.out, "{CLEAR}{line}");
                self.drawn = true;
                if last {
                    let _ = writeln!(self.out);
                    self.drawn = false;
                }
            }
            Mode::Plain => {
                let line = super::progress::render(what, &s);
                let _ = writeln!(self.out, "{line}");
            }
            Mode::Json => {
                let line = super::progress::json_line(what, &s);
                let _ = writeln!(self.out, "{line}");
            }
        }
        let _ = self.out.flush();
    }

    /// Whatever is current ends: a gauge that was shown prints its last line.
    fn end(&mut self) {
        match &self.current {
            Some(Current::Gauge { .. }) => self.end_gauge(),
            Some(Current::Step { .. }) => {
                self.current = None;
                self.clear();
                let _ = self.out.flush();
            }
            None => {}
        }
    }

    fn end_gauge(&mut self) {
        if let Some(Current::Gauge { shown: true, .. }) = &self.current {
            self.gauge_line(true);
        }
        self.current = None;
        self.clear();
        let _ = self.out.flush();
    }
}

impl Live {
    /// On `out`, drawn per `mode`.
    pub fn new(out: Box<dyn Write + Send>, mode: Mode) -> Live {
        Live {
            state: Arc::new(Mutex::new(State {
                mode,
                current: None,
                drawn: false,
                extra: 0,
                lanes: Vec::new(),
                out,
            })),
            lane: None,
        }
    }

    /// The same output, drawing for database `name` (its steps on a line of its own).
    pub fn lane(&self, name: &str) -> Live {
        Live {
            state: self.state.clone(),
            lane: Some(name.into()),
        }
    }

    /// The database this handle draws for.
    pub fn lane_name(&self) -> Option<&str> {
        self.lane.as_deref()
    }

    /// On the process's stderr.
    pub fn stderr(mode: Mode) -> Live {
        Live::new(Box::new(std::io::stderr()), mode)
    }

    /// Draw per `mode` from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Whether steps are drawn live (then the log leaves out the "started" lines).
    pub fn enabled(&self) -> bool {
        self.lock().mode == Mode::Terminal
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A log line, above the live line (after the last line of a gauge whose operation is over).
    pub fn line(&self, text: &str) {
        let mut s = self.lock();
        s.settle();
        s.clear();
        let _ = writeln!(s.out, "{}", crate::redact::secrets(text));
        s.redraw();
        let _ = s.out.flush();
    }

    /// A step started: show it live (a gauge still running ends first).
    pub fn start(&self, text: String) {
        let mut s = self.lock();
        if let Some(name) = &self.lane {
            s.clear();
            s.lanes.retain(|(n, ..)| n != name);
            s.lanes.push((name.clone(), text, Instant::now()));
            s.redraw();
            return;
        }
        s.end();
        s.current = Some(Current::Step {
            text,
            since: Instant::now(),
        });
        s.redraw();
    }

    /// An operation counted in `progress` started, about `what` (e.g. `/prod`): show its gauge.
    pub fn gauge(&self, what: &str, progress: Arc<Progress>) {
        if self.lane.is_some() {
            // Many databases at once: their steps are drawn, not their transfers' gauges.
            return;
        }
        let mut s = self.lock();
        s.end();
        s.current = Some(Current::Gauge {
            what: what.to_string(),
            progress,
            next: Instant::now() + GAUGE_FIRST,
            shown: false,
        });
    }

    /// The step or operation ended.
    pub fn stop(&self) {
        let mut s = self.lock();
        if let Some(name) = &self.lane {
            if s.lanes.iter().any(|(n, ..)| n == name) {
                s.clear();
                s.lanes.retain(|(n, ..)| n != name);
                s.redraw();
                let _ = s.out.flush();
            }
            return;
        }
        s.end();
    }

    /// Redraw what is due (a step's clock moves on; a gauge's counters).
    pub fn tick(&self) {
        self.lock().tick(Instant::now());
    }

    /// Run `work`, ticking every `TICK` meanwhile; whatever is current ends with it.
    pub async fn while_running<F: std::future::Future>(&self, work: F) -> F::Output {
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
    use crate::cli::captured::Captured;

    #[test]
    fn log_lines_print_above_the_live_line_which_is_cleared_when_done() {
        let out = Captured::default();
        let live = Live::new(Box::new(out.clone()), Mode::Terminal);
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
        let live = Live::new(Box::new(plain.clone()), Mode::Plain);
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

    #[test]
    fn each_running_database_has_a_line_of_its_own() {
        let out = Captured::default();
        let live = Live::new(Box::new(out.clone()), Mode::Terminal);
        let (a, b) = (live.lane("shard-1"), live.lane("s2"));
        a.start("[1/3] V1_a.js".into());
        b.start("[2/3] V2_b.js".into());
        a.line("[shard-1] a log line");
        b.stop();
        a.stop();
        let text = out.text();
        assert!(
            text.contains("shard-1  [1/3] V1_a.js  0.0 s\ns2       [2/3] V2_b.js  0.0 s"),
            "two lines: {text:?}"
        );
        assert!(
            text.contains("\x1b[1A\r\x1b[2K[shard-1] a log line\n"),
            "both cleared before a log line: {text:?}"
        );
        assert!(live.lock().lanes.is_empty() && !live.lock().drawn);
    }

    fn counted(bytes: u64) -> Arc<Progress> {
        let p = Arc::new(Progress::default());
        p.restart(crate::backup::Phase::Backup);
        p.bytes(bytes);
        p.nodes(3);
        p.request();
        p
    }

    #[test]
    fn a_gauge_shows_after_a_second_redraws_in_place_and_leaves_its_last_line() {
        let out = Captured::default();
        let live = Live::new(Box::new(out.clone()), Mode::Terminal);
        let p = counted(1_500_000);
        let t0 = Instant::now();
        live.gauge("/app", p.clone());
        live.lock().tick(t0 + Duration::from_millis(500));
        assert_eq!(out.text(), "", "nothing within the first second");
        live.lock().tick(t0 + Duration::from_millis(1100));
        live.line("a log line");
        p.bytes(1_000_000);
        live.lock().tick(t0 + Duration::from_millis(1400));
        p.finish();
        live.line("Backup prepared successfully");
        let text = out.text();
        let lines: Vec<&str> = text.split(CLEAR).collect();
        assert!(
            lines[1].starts_with("Backing up /app: 1.5 MB, 3 nodes, "),
            "{text:?}"
        );
        assert!(
            lines[2].starts_with("a log line\n"),
            "log lines above it: {text:?}"
        );
        assert!(
            lines[3].starts_with("Backing up /app: 1.5 MB"),
            "redrawn: {text:?}"
        );
        assert!(lines[4].starts_with("Backing up /app: 2.5 MB"), "{text:?}");
        assert!(
            text.ends_with(" requests\nBackup prepared successfully\n"),
            "its last line stays, then the log goes on: {text:?}"
        );
        assert!(live.lock().current.is_none());

        let quick = Captured::default();
        let live = Live::new(Box::new(quick.clone()), Mode::Terminal);
        live.gauge("/app", counted(10));
        live.stop();
        live.line("done");
        assert_eq!(
            quick.text(),
            "done\n",
            "an operation within a second prints nothing"
        );
    }

    #[test]
    fn off_a_terminal_a_gauge_is_a_plain_or_json_line_every_ten_seconds() {
        let out = Captured::default();
        let live = Live::new(Box::new(out.clone()), Mode::Plain);
        let t0 = Instant::now();
        live.gauge("/app", counted(2_000_000));
        for ms in [1100, 5000, 10_000, 11_200] {
            live.lock().tick(t0 + Duration::from_millis(ms));
        }
        live.stop();
        let text = out.text();
        assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
        assert_eq!(
            text.lines().count(),
            3,
            "at 1 s, at 11 s, and the last: {text:?}"
        );
        assert!(text
            .lines()
            .all(|l| l.starts_with("Backing up /app: 2.0 MB, 3 nodes")));

        let json = Captured::default();
        let live = Live::new(Box::new(json.clone()), Mode::Json);
        live.gauge("/app", counted(2_000_000));
        live.lock().tick(t0 + Duration::from_millis(1100));
        live.stop();
        let lines: Vec<serde_json::Value> = json
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "backup.progress");
        assert_eq!(lines[0]["bytes"], 2_000_000);
        assert_eq!(lines[0]["path"], "/app");

        let steps = Captured::default();
        let live = Live::new(Box::new(steps.clone()), Mode::Json);
        live.start("[1/1] V202501010001_a.js".into());
        live.tick();
        live.stop();
        assert_eq!(
            steps.text(),
            "",
            "steps are the log's own lines off a terminal"
        );
    }
}
