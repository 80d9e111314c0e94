//! Tasks without a connection (a checksum): each is a slab entry (`Conn::Task`) owned by a
//! control connection, stepped one bounded slice per turn from the run queue like a busy data
//! connection, so other sessions' events come between two slices. The one read buffer all
//! tasks share (they run one at a time) exists only while some task does. (A task that must wait
//! until a time, pacing say, would be one more `Step` and the timer table; nothing needs it yet.)
//!
//! A task ends by finishing (`handle_task_done` with its result), by failing (with the error),
//! or by being dropped: `Action::CancelTask` (ABOR), a new task, or its session closing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::{Conn, Server};
use crate::config::CHECKSUM_SLICE_BYTES;
use crate::transfer::{ChecksumError, Step, Task, TaskDone};

pub(super) struct TaskConn {
    owner: usize,
    task: Task,
}

impl Server {
    /// `Action::RunTask`: the task goes into the slab and runs from the next turn on.
    pub(super) fn start_task(&mut self, owner: usize, task: Task) {
        self.cancel_task(owner);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        entry.insert(Conn::Task(Box::new(TaskConn { owner, task })));
        self.tasks += 1;
        if let Some(control) = self.control(owner) {
            control.task_key = Some(key);
        }
        self.runnable.push_back(key);
    }

    /// One slice of the task, under `catch_unwind` like every call into a session or a pump.
    pub(super) fn run_task(&mut self, key: usize, now: Instant) {
        let Some(Conn::Task(conn)) = self.conns.get_mut(key) else {
            return;
        };
        let owner = conn.owner;
        if self.task_buf.is_empty() {
            self.task_buf = vec![0; CHECKSUM_SLICE_BYTES];
        }
        let buf = &mut self.task_buf;
        let Ok(step) = catch_unwind(AssertUnwindSafe(|| conn.task.step(buf))) else {
            self.remove_task(owner, key);
            return self.abort_session(owner, "a task panicked");
        };
        match step {
            // A task has no socket to wait for: Blocked is one more turn, as Yield is.
            Ok(Step::Yield) | Ok(Step::Blocked) => self.runnable.push_back(key),
            Ok(Step::Done) => {
                let Some(task) = self.remove_task(owner, key) else {
                    return;
                };
                match catch_unwind(AssertUnwindSafe(|| task.finish())) {
                    Ok(done) => self.task_done(owner, Ok(done), now),
                    Err(_) => self.abort_session(owner, "a task panicked"),
                }
            }
            Err(e) => {
                self.remove_task(owner, key);
                self.task_done(owner, Err(e), now);
            }
        }
    }

    fn task_done(&mut self, owner: usize, result: Result<TaskDone, ChecksumError>, now: Instant) {
        if self
            .with_session(owner, |session| session.handle_task_done(result, now))
            .is_some()
        {
            self.service_control(owner, now);
        }
    }

    /// Drops the session's task, if it has one.
    pub(super) fn cancel_task(&mut self, owner: usize) {
        if let Some(key) = self.control(owner).and_then(|control| control.task_key) {
            self.remove_task(owner, key);
        }
    }

    fn remove_task(&mut self, owner: usize, key: usize) -> Option<Task> {
        match self.conns.get(key) {
            Some(Conn::Task(conn)) if conn.owner == owner => {}
            _ => return None,
        }
        let Conn::Task(conn) = self.conns.remove(key) else {
            return None;
        };
        self.timers.set(key, None);
        self.tasks -= 1;
        if self.tasks == 0 {
            // No task runs: no buffer is kept for one.
            self.task_buf = Vec::new();
        }
        if let Some(control) = self.control(owner) {
            if control.task_key == Some(key) {
                control.task_key = None;
            }
        }
        Some(conn.task)
    }
}
