//! The step type of the two `SimBackend` targets ([`key_map`] and
//! [`selector_sim`]), and the one driver that runs it on a
//! `Selector<SimBackend, D, N>` selecting into a `Ready<D, 3>`, against
//! the [`Model`] plus a fairness window. The targets differ only in the
//! table's capacity `N` and the data type `D`.
//!
//! After every step the result (the exact error variant included: `Full`,
//! `InvalidEvents`, `InvalidFd`, `AlreadyRegistered`, `NotRegistered`,
//! `Backend`), `len()`, the `get_map()` contents, `get_key` for every fd,
//! `SimBackend::registered`, each fd's simulated readiness and the backend
//! call counts (a data-only `modify` makes no call) must agree with the
//! model. Injected backend failures must change nothing; after
//! `SimBackend::close(fd)`, `unregister(fd)` must still succeed and remove
//! the key, while `modify` with new events fails with `Error::Backend` and
//! changes nothing.
//!
//! Every `select` result must hold one entry per fd, only fds the model
//! says are ready (none unknown, none unregistered, none closed), each with
//! the key the model holds and `events == Readiness::to_events(key.events)`
//! of the fd's simulated readiness: never empty, within the interest. When
//! at most `M` fds are ready, all of them. A failed `select` (injected)
//! leaves an empty `Ready`.
//!
//! Fairness: while the state that decides which fds are ready (the table's
//! interests, the backend's registrations, the ready set) stays the same,
//! any `ceil(ready / M)` consecutive successful selects together report
//! every ready fd. The report order and split mode are deliberately not
//! part of that state: the guarantee holds whichever backend reports, in
//! whatever order, so toggling them must not break it.
//!
//! [`key_map`]: crate::key_map
//! [`selector_sim`]: crate::selector_sim

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;

use arbitrary::Arbitrary;
use selectors2_core::ReportOrder;
use selectors2_core::{Events, RawFd, Ready, Selector, SimBackend};

use crate::input::{FdIn, Interest, ReadinessIn, TimeoutIn};
use crate::model::{Model, TableOp};

/// The `Ready` buffer's capacity: small, so that more fds are ready than
/// it holds and fairness matters.
pub const M: usize = 3;

/// One step, with data of type `D`.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOp<D> {
    /// `Selector::register`.
    Register {
        /// The fd.
        fd: FdIn,
        /// The interest.
        events: Interest,
        /// The data.
        data: D,
    },
    /// `Selector::modify`.
    Modify {
        /// The fd.
        fd: FdIn,
        /// The new interest.
        events: Interest,
        /// The new data.
        data: D,
    },
    /// `Selector::unregister`.
    Unregister {
        /// The fd.
        fd: FdIn,
    },
    /// `Selector::get_key`.
    GetKey {
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

fn signature<D: Copy + Eq + Debug>(model: &Model<D>) -> Signature {
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
        step: &dyn Debug,
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

/// How the simulated backend reports.
#[derive(Debug, Clone, Copy, Default)]
struct Mode {
    /// Kernel-like batches of `M` reports.
    kernel: bool,
    /// One report per readiness bit.
    split: bool,
}

/// The selector under test, the model it is checked against, and what the
/// checks carry from one step to the next.
struct Run<D, const N: usize> {
    sel: Selector<SimBackend, D, N>,
    model: Model<D>,
    ready: Ready<D, M>,
    fairness: Fairness,
    mode: Mode,
}

/// Runs `ops` on a fresh `Selector<SimBackend, D, N>` and the model,
/// checking after each step; panics at the first mismatch, with the step.
pub fn run<D, const N: usize>(ops: &[SimOp<D>])
where
    D: Copy + Eq + Debug,
{
    let mut run: Run<D, N> = Run {
        sel: Selector::new(SimBackend::new()),
        model: Model::new(N),
        ready: Ready::new(),
        fairness: Fairness::default(),
        mode: Mode::default(),
    };
    run.model.assert_matches(&run.sel, &"start");
    for (i, &op) in ops.iter().enumerate() {
        let step = (i, op);
        run.step(op, &step);
        run.model.assert_matches(&run.sel, &step);
    }
}

impl<D: Copy + Eq + Debug, const N: usize> Run<D, N> {
    fn step(&mut self, op: SimOp<D>, step: &dyn Debug) {
        let (sel, model) = (&mut self.sel, &mut self.model);
        match op {
            SimOp::Register { fd, events, data } => {
                let op = TableOp::Register(fd.fd(), events.events(), data);
                model.check_table_op(sel, op, step);
            }
            SimOp::Modify { fd, events, data } => {
                let op = TableOp::Modify(fd.fd(), events.events(), data);
                model.check_table_op(sel, op, step);
            }
            SimOp::Unregister { fd } => {
                model.check_table_op(sel, TableOp::Unregister(fd.fd()), step);
            }
            SimOp::GetKey { fd } => {
                assert_eq!(
                    sel.get_key(fd.fd()).copied(),
                    model.get_key(fd.fd()),
                    "result of {step:?}"
                );
            }
            SimOp::SetReadiness { fd, readiness } => {
                model.set_readiness(fd.fd(), readiness.readiness());
                sel.backend_mut()
                    .set_readiness(fd.fd(), readiness.readiness());
            }
            SimOp::ClearReadiness { fd } => {
                model.set_readiness(fd.fd(), Default::default());
                sel.backend_mut().clear_readiness(fd.fd());
            }
            SimOp::FailNext => {
                model.fail_next();
                sel.backend_mut().fail_next();
            }
            SimOp::SplitReports(split) => {
                sel.backend_mut().set_split_reports(split);
                if self.mode.kernel && split != self.mode.split {
                    // A different batch shape: a new fairness window.
                    self.fairness = Fairness::default();
                }
                self.mode.split = split;
            }
            SimOp::KernelBatches(on) => {
                sel.backend_mut()
                    .set_kernel_batches(if on { Some(|max| max) } else { None });
                if on != self.mode.kernel {
                    self.fairness = Fairness::default();
                }
                self.mode.kernel = on;
            }
            SimOp::Descending(desc) => sel.backend_mut().set_report_order(if desc {
                ReportOrder::Descending
            } else {
                ReportOrder::Ascending
            }),
            SimOp::Close { fd } => {
                model.close(fd.fd());
                sel.backend_mut().close(fd.fd());
            }
            SimOp::Select { timeout, repeat } => {
                for _ in 0..=repeat % 6 {
                    self.select_once(timeout, step);
                }
            }
        }
    }

    fn select_once(&mut self, timeout: TimeoutIn, step: &dyn Debug) {
        let Run {
            sel,
            model,
            ready,
            fairness,
            mode,
        } = self;
        let timeout = timeout.timeout();
        let want = model.select(timeout);
        let got = sel
            .select(ready, timeout)
            .map_err(selectors2_core::Error::Backend);
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
            // A batch of M reports: at least one fd when any is ready, at
            // most M; with split reports an fd may take several of them.
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
        // How many reports the ready fds make, and so how many selects
        // reach them all: ceil(fds / M) when the selector picks,
        // ceil(reports / M) when a kernel batch of M reports does.
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
}
