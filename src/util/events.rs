//! What a long job tells its caller as it goes. The library prints nothing of a job's progress:
//! `dae train`, `dae eval`, `dae report` and `dae viz` take a sink of these, and `main.rs` shows
//! them (notes unless `--quiet`, warnings always, a progress bar on a terminal or a plain line at
//! most every 10 s without one).

/// One thing a job reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A line about the job (the adapter, the model, a checkpoint saved, a validation's scores).
    Note(String),
    /// Something the user should know that did not stop the job.
    Warning(String),
    /// A pass over `total` items starts ("epoch 2/3" of steps, "test set x 4 levels" of images);
    /// `done` of them already (a resumed epoch).
    Start { what: String, total: usize, done: usize },
    /// Items of the pass done, and what to show beside the count (loss, images/s).
    Progress { done: usize, msg: String },
    /// The pass ended: all of it (`finished`), or cut short by an interrupt or an error.
    End { finished: bool },
}
