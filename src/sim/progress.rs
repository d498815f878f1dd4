//! The progress bar: on stderr, over simulated time, shown only once a run has taken more
//! than a second of wall time (short runs print nothing but their report).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::Timestamp;

/// Wall time after which a run shows its bar.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A bar that appears after [`SHOW_AFTER`] if enabled.
pub(super) struct Progress {
    enabled: bool,
    started: Instant,
    open: Timestamp,
    close: Timestamp,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(enabled: bool, open: Timestamp, close: Timestamp) -> Self {
        Progress {
            enabled,
            started: Instant::now(),
            open,
            close,
            bar: None,
        }
    }

    /// Reports that simulated time reached `now`.
    pub fn tick(&mut self, now: Timestamp) {
        if !self.enabled {
            return;
        }
        let bar = match &self.bar {
            Some(bar) => bar,
            None => {
                if self.started.elapsed() < SHOW_AFTER {
                    return;
                }
                let length = self.close.since(self.open).as_secs();
                let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr())
                    .with_elapsed(self.started.elapsed());
                if let Ok(style) = ProgressStyle::with_template(
                    "simulating the day: {msg} [{wide_bar}] {percent}% · {elapsed} so far",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                self.bar.insert(bar)
            }
        };
        let seconds = now.0.max(0) / 1_000_000;
        bar.set_message(format!("{:02}:{:02}", seconds / 3600, seconds / 60 % 60));
        bar.set_position(now.since(self.open).as_secs());
    }

    /// Removes the bar, if it was shown.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
