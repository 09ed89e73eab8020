//! Interrupts of the long jobs: the first SIGINT (Ctrl-C) or SIGTERM sets a flag that the job
//! polls at its next step boundary (training saves `last` there; evaluation stops without
//! writing a partial result) and prints at once what will happen (the job's [`set_note`]); a
//! second one ends the process at once. The exit status says which signal it was: 130 for
//! SIGINT, 143 for SIGTERM.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The exit status the pending interrupt asks for (0: none).
fn pending() -> &'static Arc<AtomicUsize> {
    static P: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    P.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// Set by the first signal: the next one exits at once.
fn seen() -> &'static Arc<AtomicBool> {
    static S: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    S.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// What the running job does on an interrupt, printed when the first one arrives.
fn note() -> &'static std::sync::Mutex<String> {
    static N: OnceLock<std::sync::Mutex<String>> = OnceLock::new();
    N.get_or_init(|| std::sync::Mutex::new("stopping at the next safe point".into()))
}

/// Say what the running job will do when interrupted ("stopping after this step and saving
/// `last`"): printed the moment the first signal arrives, with how to quit at once.
pub fn set_note(what: &str) {
    if let Ok(mut n) = note().lock() {
        *n = what.to_string();
    }
}

/// Who tells the user, the moment the first signal arrives, what it does (the library prints
/// nothing: `main` sets this to print on stderr).
static ANNOUNCER: OnceLock<fn(&str)> = OnceLock::new();

/// Tell the user through `f` what the first signal does, when it arrives (once per process).
pub fn set_announcer(f: fn(&str)) {
    let _ = ANNOUNCER.set(f);
}

fn announce(code: usize) {
    let what = note().lock().map(|n| n.clone()).unwrap_or_default();
    let again = if code == 143 { "a second signal" } else { "Ctrl-C again" };
    if let Some(f) = ANNOUNCER.get() {
        f(&format!("{} received: {what}; {again} quits at once", name(code as u8)));
    }
}

/// Install the handlers once per process; later calls do nothing. A warning for the caller to
/// pass on when they could not be installed (the first call only).
pub fn install() -> Option<String> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut warning = None;
    ONCE.call_once(|| {
        if let Err(e) = register() {
            warning = Some(format!("interrupt handler not installed ({e}); an interrupt will not save `last`"));
        }
    });
    warning
}

#[cfg(unix)]
fn register() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let seen = seen().clone();
    for (sig, code) in [(SIGINT, 130usize), (SIGTERM, 143)] {
        // In registration order: a second signal (either) exits at once; the first one only
        // raises the flags.
        signal_hook::flag::register_conditional_shutdown(sig, code as i32, seen.clone())?;
        signal_hook::flag::register(sig, seen.clone())?;
        signal_hook::flag::register_usize(sig, pending().clone(), code)?;
    }
    // A thread that says at once what the first signal does (a handler may not print).
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("dae-signals".into()).spawn(move || {
        for sig in signals.forever() {
            announce(if sig == SIGTERM { 143 } else { 130 });
        }
    })?;
    Ok(())
}

#[cfg(not(unix))]
fn register() -> std::io::Result<()> {
    ctrlc::set_handler(|| {
        if seen().swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        pending().store(130, Ordering::SeqCst);
        announce(130);
    })
    .map_err(std::io::Error::other)
}

/// The exit status of the interrupt received since the last [`reset`], if any.
pub fn interrupted() -> Option<u8> {
    match pending().load(Ordering::SeqCst) {
        0 => None,
        c => Some(c as u8),
    }
}

/// Forget an interrupt (a new job in the same process starts clean).
pub fn reset() {
    pending().store(0, Ordering::SeqCst);
    seen().store(false, Ordering::SeqCst);
}

/// Behave as if an interrupt with exit status `code` had arrived (tests of the stop path).
pub fn raise(code: u8) {
    pending().store(code as usize, Ordering::SeqCst);
}

/// Send this process a real SIGINT, through the installed handlers (tests of late interrupts;
/// elsewhere than unix, the same as `raise(130)` after the announcement).
pub fn raise_real() {
    #[cfg(unix)]
    {
        if signal_hook::low_level::raise(signal_hook::consts::SIGINT).is_ok() {
            return;
        }
    }
    announce(130);
    raise(130);
}

/// The signal's name for messages.
pub fn name(code: u8) -> &'static str {
    match code {
        143 => "SIGTERM",
        _ => "interrupt (Ctrl-C)",
    }
}
