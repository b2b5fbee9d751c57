//! One shape for every thread of the daemon: spawned by name, joined
//! through a [`Handle`], and reporting its end (a return or a panic) on one
//! exit channel, which the supervisor selects on instead of polling each
//! thread.

use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

/// Where threads report that they ended: the thread's name.
pub type Exit = Sender<&'static str>;

/// A new exit channel.
pub fn exits() -> (Exit, Receiver<&'static str>) {
    crossbeam_channel::unbounded()
}

/// A running thread of the daemon.
pub struct Handle<T> {
    name: &'static str,
    join: JoinHandle<T>,
}

/// Sends the thread's name when it ends, returning or unwinding.
struct Report(&'static str, Exit);

impl Drop for Report {
    fn drop(&mut self) {
        // Nobody listening (replay, a test): nothing to tell.
        let _ = self.1.send(self.0);
    }
}

thread_local! {
    /// The pipeline this thread works for, in a fleet (where one process
    /// runs many): log lines carry it. Threads inherit it from the thread
    /// that spawned them.
    static CONTEXT: std::cell::RefCell<Option<std::sync::Arc<str>>> = const { std::cell::RefCell::new(None) };
}

/// Names the pipeline this thread (and every thread it spawns) works for.
pub fn set_context(pipeline: &str) {
    CONTEXT.with(|c| *c.borrow_mut() = Some(pipeline.into()));
}

/// The pipeline this thread works for, if it was named.
pub fn context() -> Option<std::sync::Arc<str>> {
    CONTEXT.with(|c| c.borrow().clone())
}

/// Starts thread `name` running `f`; its end is reported on `exit`.
pub fn spawn<T: Send + 'static>(
    name: &'static str,
    exit: Exit,
    f: impl FnOnce() -> T + Send + 'static,
) -> Handle<T> {
    let context = context();
    let join = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Some(c) = context {
                CONTEXT.with(|x| *x.borrow_mut() = Some(c));
            }
            let _report = Report(name, exit);
            f()
        })
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"));
    Handle { name, join }
}

impl<T> Handle<T> {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Its result; a panic (already printed by the panic hook) is raised
    /// again here, naming the thread.
    pub fn join(self) -> T {
        let name = self.name;
        self.join
            .join()
            .unwrap_or_else(|_| panic!("{name} thread panicked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_reports_its_end_whether_it_returns_or_panics() {
        let (exit, ended) = exits();
        let ok = spawn("b2k-test-ok", exit.clone(), || 7);
        assert_eq!(ended.recv().unwrap(), "b2k-test-ok");
        assert_eq!(ok.join(), 7);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let bad = spawn("b2k-test-panic", exit, || panic!("boom"));
        assert_eq!(ended.recv().unwrap(), "b2k-test-panic");
        assert!(bad.is_finished() || bad.join.join().is_err());
        std::panic::set_hook(hook);
    }
}
