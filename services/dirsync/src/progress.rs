//! A progress bar on stderr without a dependency: redrawn in place on a
//! terminal, a line per tenth when stderr is a file or a pipe.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

pub(crate) struct Bar {
    label: String,
    terminal: bool,
    state: Mutex<BarState>,
}

struct BarState {
    drawn_at: Option<Instant>,
    last_tenth: u64,
}

impl Bar {
    pub(crate) fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(BarState {
                drawn_at: None,
                last_tenth: u64::MAX,
            }),
        }
    }

    pub(crate) fn set(&self, done: u64, total: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let total = total.max(1);
        let done = done.min(total);
        let tenth = done * 10 / total;
        if self.terminal {
            let due = state
                .drawn_at
                .is_none_or(|at| at.elapsed().as_millis() >= 80)
                || done == total;
            if !due {
                return;
            }
            state.drawn_at = Some(Instant::now());
            let width = 30;
            let filled = usize::try_from(done * width / total).unwrap_or(0);
            let bar = format!(
                "{}{}",
                "#".repeat(filled),
                ".".repeat(usize::try_from(width).unwrap_or(30) - filled)
            );
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r  {:<28} [{bar}] {done}/{total}   ", self.label);
            let _ = err.flush();
        } else if tenth != state.last_tenth {
            state.last_tenth = tenth;
            eprintln!("  {:<28} {}% ({done}/{total})", self.label, tenth * 10);
        }
    }

    pub(crate) fn finish(&self, note: &str) {
        if self.terminal {
            eprintln!();
        }
        eprintln!("  {:<28} done {note}", self.label);
    }
}
