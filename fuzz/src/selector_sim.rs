//! `selector_sim`: a `Selector<SimBackend, u32, 16>` selecting into a
//! `Ready<u32, 3>`, against the [`Model`] plus a fairness window.
//!
//! Every `select` result must hold one entry per fd, only fds the model
//! says are ready (none unknown, none unregistered, none closed), each with
//! the key the model holds and `events == Readiness::to_events(key.events)`
//! of the fd's simulated readiness: never empty, within the interest. When
//! at most `M` fds are ready, all of them. A failed call (injected) changes
//! nothing: table, backend registrations, and an empty `Ready` after a
//! failed `select`.
//!
//! Fairness: while the state that decides which fds are ready (the table's
//! interests, the backend's registrations, the ready set) stays the same,
//! any `ceil(ready / M)` consecutive successful selects together report
//! every ready fd. The report order and split mode are deliberately not
//! part of that state: the guarantee holds whichever backend reports, in
//! whatever order, so toggling them must not break it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use arbitrary::Arbitrary;
use selectors2_core::{Events, RawFd, Ready, ReportOrder, Selector, SimBackend};

use crate::input::{EventsIn, FdIn, ReadinessIn, TimeoutIn};
use crate::model::{Model, TableOp};

/// The table's capacity.
pub const CAPACITY: usize = 16;
/// The `Ready` buffer's capacity: small, so that more fds are ready than
/// it holds and fairness matters.
pub const M: usize = 3;

/// One step.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Op {
    /// `Selector::register`.
    Register {
        /// The fd.
        fd: FdIn,
        /// The interest.
        events: EventsIn,
        /// The data.
        data: u32,
    },
    /// `Selector::modify`.
    Modify {
        /// The fd.
        fd: FdIn,
        /// The new interest.
        events: EventsIn,
        /// The new data.
        data: u32,
    },
    /// `Selector::unregister`.
    Unregister {
        /// The fd.
        fd: FdIn,
    },
    /// `SimBackend::set_readiness`.
    SetReadiness {
        /// The fd.
        fd: FdIn,
        /// Its new state.
        readiness: ReadinessIn,
    },
    /// `SimBackend::clear_readiness`.
    ClearReadiness {
        /// The fd.
        fd: FdIn,
    },
    /// `SimBackend::fail_next`: the next backend call fails.
    FailNext,
    /// `SimBackend::set_split_reports`: one report per readiness bit, as
    /// kqueue's separate filters.
    SplitReports(bool),
    /// `SimBackend::set_report_order`: `true` is descending.
    Descending(bool),
    /// `SimBackend::set_kernel_batches`: bounded batches of `max` reports
    /// that rotate, as epoll and kqueue (once fixed) behave.
    KernelBatches(bool),
    /// `SimBackend::close`: the fd disappears from the backend, not from
    /// the table.
    Close {
        /// The fd.
        fd: FdIn,
    },
    /// `Selector::select`, `1 + repeat % 6` times in a row.
    Select {
        /// The timeout passed (the simulation never blocks).
        timeout: TimeoutIn,
        /// How many more selects follow at once.
        repeat: u8,
    },
}

/// What decides which fds a select may report: fd -> interest in the
/// table, fd -> interest in the backend, fd -> events of the ready set.
type Signature = (
    BTreeMap<RawFd, Events>,
    BTreeMap<RawFd, Events>,
    BTreeMap<RawFd, Events>,
);

fn signature(model: &Model<u32>) -> Signature {
    (
        model.table.iter().map(|(&fd, &(e, _))| (fd, e)).collect(),
        model.backend.clone(),
        model
            .ready_set()
            .into_iter()
            .map(|(fd, (_, e))| (fd, e))
            .collect(),
    )
}

/// The sliding fairness window: the fds of the last successful selects
/// since the signature last changed.
#[derive(Default)]
struct Fairness {
    signature: Option<Signature>,
    history: VecDeque<BTreeSet<RawFd>>,
}

impl Fairness {
    /// `window`: how many consecutive selects must reach every ready fd.
    fn observe(
        &mut self,
        sig: Signature,
        reported: BTreeSet<RawFd>,
        window: usize,
        step: &dyn std::fmt::Debug,
    ) {
        let ready: BTreeSet<RawFd> = sig.2.keys().copied().collect();
        if self.signature.as_ref() != Some(&sig) {
            self.history.clear();
            self.signature = Some(sig);
        }
        self.history.push_back(reported);
        while self.history.len() > window {
            self.history.pop_front();
        }
        if window > 0 && self.history.len() == window {
            let seen: BTreeSet<RawFd> = self.history.iter().flatten().copied().collect();
            assert_eq!(
                seen, ready,
                "fairness: the last {window} selects must report every ready fd, at {step:?}"
            );
        }
    }
}

/// Runs `ops` on a fresh selector and the model, checking after each step.
pub fn run(ops: &[Op]) {
    let mut sel: Selector<SimBackend, u32, CAPACITY> = Selector::new(SimBackend::new());
    let mut model: Model<u32> = Model::new(CAPACITY);
    let mut ready: Ready<u32, M> = Ready::new();
    let mut fairness = Fairness::default();
    let mut mode = Mode::default();
    model.assert_matches(&sel, &"start");
    for (i, &op) in ops.iter().enumerate() {
        let step = (i, op);
        match op {
            Op::Register { fd, events, data } => {
                let op = TableOp::Register(fd.fd(), events.events(), data);
                model.check_table_op(&mut sel, op, &step);
            }
            Op::Modify { fd, events, data } => {
                let op = TableOp::Modify(fd.fd(), events.events(), data);
                model.check_table_op(&mut sel, op, &step);
            }
            Op::Unregister { fd } => {
                model.check_table_op(&mut sel, TableOp::Unregister(fd.fd()), &step);
            }
            Op::SetReadiness { fd, readiness } => {
                model.set_readiness(fd.fd(), readiness.readiness());
                sel.backend_mut()
                    .set_readiness(fd.fd(), readiness.readiness());
            }
            Op::ClearReadiness { fd } => {
                model.set_readiness(fd.fd(), Default::default());
                sel.backend_mut().clear_readiness(fd.fd());
            }
            Op::FailNext => {
                model.fail_next();
                sel.backend_mut().fail_next();
            }
            Op::SplitReports(split) => {
                sel.backend_mut().set_split_reports(split);
                if mode.kernel && split != mode.split {
                    // A different batch shape: a new fairness window.
                    fairness = Fairness::default();
                }
                mode.split = split;
            }
            Op::KernelBatches(on) => {
                sel.backend_mut()
                    .set_kernel_batches(if on { Some(|max| max) } else { None });
                if on != mode.kernel {
                    fairness = Fairness::default();
                }
                mode.kernel = on;
            }
            Op::Descending(desc) => sel.backend_mut().set_report_order(if desc {
                ReportOrder::Descending
            } else {
                ReportOrder::Ascending
            }),
            Op::Close { fd } => {
                model.close(fd.fd());
                sel.backend_mut().close(fd.fd());
            }
            Op::Select { timeout, repeat } => {
                for _ in 0..=repeat % 6 {
                    select_once(
                        &mut sel,
                        &mut model,
                        &mut ready,
                        &mut fairness,
                        mode,
                        timeout,
                        &step,
                    );
                }
            }
        }
        model.assert_matches(&sel, &step);
    }
}

/// How the simulated backend reports.
#[derive(Debug, Clone, Copy, Default)]
struct Mode {
    /// Kernel-like batches of `M` reports.
    kernel: bool,
    /// One report per readiness bit.
    split: bool,
}

fn select_once(
    sel: &mut Selector<SimBackend, u32, CAPACITY>,
    model: &mut Model<u32>,
    ready: &mut Ready<u32, M>,
    fairness: &mut Fairness,
    mode: Mode,
    timeout: TimeoutIn,
    step: &dyn std::fmt::Debug,
) {
    let timeout = timeout.timeout();
    let want = model.select(timeout);
    let got = sel.select(ready, timeout);
    let expected = match want {
        Err(e) => {
            assert_eq!(got, Err(e), "result of select at {step:?}");
            assert!(
                ready.is_empty(),
                "a failed select leaves Ready empty, at {step:?}"
            );
            return;
        }
        Ok(expected) => expected,
    };
    let n = match got {
        Ok(n) => n,
        Err(e) => panic!("select failed with {e:?}, model expected {expected:?}, at {step:?}"),
    };
    assert_eq!(n, ready.len(), "select's count vs Ready::len, at {step:?}");
    assert_eq!(ready.iter().len(), n, "Ready::iter().len(), at {step:?}");
    if mode.kernel {
        // A batch of M reports: at least one fd when any is ready, at most
        // M; with split reports an fd may take several of them.
        assert!(
            n <= expected.len().min(M) && (n > 0) != expected.is_empty(),
            "{} fds ready (M = {M}), got {ready:?} from a kernel batch, at {step:?}",
            expected.len()
        );
    } else {
        assert_eq!(
            n,
            expected.len().min(M),
            "{} fds ready (M = {M}), got {ready:?}, at {step:?}",
            expected.len()
        );
    }
    let mut reported = BTreeSet::new();
    for (key, events) in ready.iter() {
        assert!(
            reported.insert(key.fd),
            "fd {} twice in {ready:?}, at {step:?}",
            key.fd
        );
        let Some(&(want_key, want_events)) = expected.get(&key.fd) else {
            panic!(
                "fd {} reported but not ready (model: {expected:?}), at {step:?}",
                key.fd
            );
        };
        assert_eq!(*key, want_key, "key of fd {}, at {step:?}", key.fd);
        if mode.kernel && mode.split {
            // The fd's last report may not have fitted in the batch.
            assert!(
                want_events.contains(events),
                "events of fd {}: {events:?} beyond {want_events:?}, at {step:?}",
                key.fd
            );
        } else {
            assert_eq!(events, want_events, "events of fd {}, at {step:?}", key.fd);
        }
        assert!(
            !events.is_empty(),
            "empty events for fd {}, at {step:?}",
            key.fd
        );
        assert!(
            key.events.contains(events),
            "events beyond interest, at {step:?}"
        );
    }
    // How many reports the ready fds make, and so how many selects reach
    // them all: ceil(fds / M) when the selector picks, ceil(reports / M)
    // when a kernel batch of M reports does.
    let reports: usize = if mode.kernel && mode.split {
        expected
            .values()
            .map(|(key, _)| {
                let r = sel.backend().readiness(key.fd);
                r.iter()
                    .filter(|b| !b.to_events(key.events).is_empty())
                    .count()
            })
            .sum()
    } else {
        expected.len()
    };
    if reports <= M {
        let all: BTreeSet<RawFd> = expected.keys().copied().collect();
        assert_eq!(reported, all, "every ready fd fits, at {step:?}");
    }
    fairness.observe(signature(model), reported, reports.div_ceil(M), step);
}
