//! The model both `Selector` targets are checked against: the key table as
//! a `BTreeMap`, and the `SimBackend` underneath it (its registrations, each
//! fd's readiness, a pending injected failure, and how often each backend
//! method was called).
//!
//! It is written from the contract (the design's semantics, the `Selector`
//! and `SimBackend` docs), not from the implementation: validation in
//! Python's order, failed calls change nothing, `unregister` forgives a
//! closed fd, `modify` with only new data makes no backend call.

use std::collections::BTreeMap;
use std::fmt::Debug;

use core::time::Duration;

use selectors2_core::{Error, Events, RawFd, Readiness, Selector, SelectorKey, SimBackend};
use selectors2_core::{SIM_FD_LIMIT, SimCalls, SimError};

use crate::input::fd_universe;

/// What a `register`, `modify` or `unregister` returns, by value.
pub type KeyResult<D> = Result<SelectorKey<D>, Error<SimError>>;

/// A `register`, `modify` or `unregister` with its arguments.
#[derive(Debug, Clone, Copy)]
pub enum TableOp<D> {
    /// `register(fd, events, data)`.
    Register(RawFd, Events, D),
    /// `modify(fd, events, data)`.
    Modify(RawFd, Events, D),
    /// `unregister(fd)`.
    Unregister(RawFd),
}

/// fd -> (key, events): what a `select` may report.
pub type ReadySet<D> = BTreeMap<RawFd, (SelectorKey<D>, Events)>;

/// The key table and the simulated backend, as plain maps.
#[derive(Debug, Clone)]
pub struct Model<D> {
    /// The table's capacity, `N`.
    pub capacity: usize,
    /// fd -> (interest, data): the key table.
    pub table: BTreeMap<RawFd, (Events, D)>,
    /// fd -> interest: what `SimBackend` has registered. `close` removes an
    /// fd here but not from `table`.
    pub backend: BTreeMap<RawFd, Events>,
    /// fd -> readiness, for the fds `SimBackend` simulates (non-empty only).
    pub readiness: BTreeMap<RawFd, Readiness>,
    /// `fail_next` was called and no backend call has consumed it yet.
    pub fail_pending: bool,
    /// How often each backend method must have been called.
    pub calls: SimCalls,
    /// The timeout of the last `select`, as `SimBackend::last_timeout`.
    pub last_timeout: Option<Option<Duration>>,
}

fn simulated(fd: RawFd) -> bool {
    (0..SIM_FD_LIMIT).contains(&fd)
}

impl<D: Copy + Eq + Debug> Model<D> {
    /// An empty table of `capacity` over an idle backend.
    pub fn new(capacity: usize) -> Self {
        Model {
            capacity,
            table: BTreeMap::new(),
            backend: BTreeMap::new(),
            readiness: BTreeMap::new(),
            fail_pending: false,
            calls: SimCalls::default(),
            last_timeout: None,
        }
    }

    fn key(&self, fd: RawFd) -> Option<SelectorKey<D>> {
        self.table
            .get(&fd)
            .map(|&(events, data)| SelectorKey { fd, events, data })
    }

    /// The checks `register` and `modify` share, in Python's order.
    fn check(fd: RawFd, events: Events) -> Result<(), Error<SimError>> {
        if !events.is_valid_interest() {
            return Err(Error::InvalidEvents(events.bits()));
        }
        if !simulated(fd) {
            return Err(Error::InvalidFd(fd));
        }
        Ok(())
    }

    /// One backend call: counted, and failed if a failure was injected.
    fn backend_call(&mut self, counter: fn(&mut SimCalls) -> &mut u32) -> Result<(), SimError> {
        *counter(&mut self.calls) += 1;
        if std::mem::take(&mut self.fail_pending) {
            Err(SimError::Injected)
        } else {
            Ok(())
        }
    }

    /// `Selector::register`.
    pub fn register(&mut self, fd: RawFd, events: Events, data: D) -> KeyResult<D> {
        Self::check(fd, events)?;
        if self.table.contains_key(&fd) {
            return Err(Error::AlreadyRegistered(fd));
        }
        if self.table.len() == self.capacity {
            return Err(Error::Full {
                capacity: self.capacity,
            });
        }
        self.backend_call(|c| &mut c.register)
            .map_err(Error::Backend)?;
        self.backend.insert(fd, events);
        self.table.insert(fd, (events, data));
        Ok(SelectorKey { fd, events, data })
    }

    /// `Selector::modify`.
    pub fn modify(&mut self, fd: RawFd, events: Events, data: D) -> KeyResult<D> {
        Self::check(fd, events)?;
        let Some(&(old, _)) = self.table.get(&fd) else {
            return Err(Error::NotRegistered(fd));
        };
        if old != events {
            self.backend_call(|c| &mut c.modify)
                .map_err(Error::Backend)?;
            // A closed fd: the OS refuses, and nothing changes.
            let Some(registered) = self.backend.get_mut(&fd) else {
                return Err(Error::Backend(SimError::Closed(fd)));
            };
            *registered = events;
        }
        self.table.insert(fd, (events, data));
        Ok(SelectorKey { fd, events, data })
    }

    /// `Selector::unregister`.
    pub fn unregister(&mut self, fd: RawFd) -> KeyResult<D> {
        if fd < 0 {
            return Err(Error::InvalidFd(fd));
        }
        let Some(key) = self.key(fd) else {
            return Err(Error::NotRegistered(fd));
        };
        self.backend_call(|c| &mut c.unregister)
            .map_err(Error::Backend)?;
        // Whether the backend still had it or the fd was closed (gone), the
        // key goes: Python's behaviour.
        self.backend.remove(&fd);
        self.table.remove(&fd);
        Ok(key)
    }

    /// Applies one key-table operation to both `sel` and the model and
    /// asserts they return the same (the shared step of the targets).
    pub fn check_table_op<const N: usize>(
        &mut self,
        sel: &mut Selector<SimBackend, D, N>,
        op: TableOp<D>,
        step: &dyn Debug,
    ) {
        let (got, want) = match op {
            TableOp::Register(fd, events, data) => (
                sel.register(fd, events, data).copied(),
                self.register(fd, events, data),
            ),
            TableOp::Modify(fd, events, data) => (
                sel.modify(fd, events, data).copied(),
                self.modify(fd, events, data),
            ),
            TableOp::Unregister(fd) => (sel.unregister(fd), self.unregister(fd)),
        };
        assert_eq!(got, want, "result of {step:?}");
    }

    /// `Selector::get_key`.
    pub fn get_key(&self, fd: RawFd) -> Option<SelectorKey<D>> {
        self.key(fd)
    }

    /// `SimBackend::fail_next`.
    pub fn fail_next(&mut self) {
        self.fail_pending = true;
    }

    /// `SimBackend::close`: the registration and the readiness go, the key
    /// stays.
    pub fn close(&mut self, fd: RawFd) {
        self.backend.remove(&fd);
        self.readiness.remove(&fd);
    }

    /// `SimBackend::set_readiness` (`clear_readiness` is the empty one).
    pub fn set_readiness(&mut self, fd: RawFd, r: Readiness) {
        if !simulated(fd) {
            return;
        }
        if r.is_empty() {
            self.readiness.remove(&fd);
        } else {
            self.readiness.insert(fd, r);
        }
    }

    /// The fds a `select` must be able to report, with their key and
    /// events: registered in the table and (still) in the backend, with
    /// readiness that meets the interest.
    pub fn ready_set(&self) -> ReadySet<D> {
        self.table
            .iter()
            .filter(|(fd, _)| self.backend.contains_key(fd))
            .filter_map(|(&fd, &(interest, data))| {
                let r = self.readiness.get(&fd).copied().unwrap_or_default();
                let events = r.to_events(interest);
                let key = SelectorKey {
                    fd,
                    events: interest,
                    data,
                };
                (!events.is_empty()).then_some((fd, (key, events)))
            })
            .collect()
    }

    /// `Selector::select` up to the backend: one `wait` call, which fails
    /// if a failure was injected, else the ready set.
    pub fn select(&mut self, timeout: Option<Duration>) -> Result<ReadySet<D>, Error<SimError>> {
        self.last_timeout = Some(timeout);
        self.backend_call(|c| &mut c.wait).map_err(Error::Backend)?;
        Ok(self.ready_set())
    }

    /// Asserts that `sel` (table, backend registrations, readiness, call
    /// counts) is in the model's state. `step` is printed on a mismatch.
    pub fn assert_matches<const N: usize>(
        &self,
        sel: &Selector<SimBackend, D, N>,
        step: &dyn Debug,
    ) {
        assert_eq!(sel.capacity(), self.capacity, "capacity, after {step:?}");
        assert_eq!(sel.len(), self.table.len(), "len(), after {step:?}");
        assert_eq!(
            sel.is_empty(),
            self.table.is_empty(),
            "is_empty(), after {step:?}"
        );

        let map = sel.get_map();
        assert_eq!(
            map.len(),
            self.table.len(),
            "get_map().len(), after {step:?}"
        );
        assert_eq!(
            map.iter().len(),
            self.table.len(),
            "get_map().iter().len(), after {step:?}"
        );
        let mut contents = BTreeMap::new();
        for key in map {
            let old = contents.insert(key.fd, (key.events, key.data));
            assert!(
                old.is_none(),
                "fd {} twice in get_map(), after {step:?}",
                key.fd
            );
        }
        assert_eq!(contents, self.table, "get_map() contents, after {step:?}");

        // Every key the backend holds is in the table.
        for fd in self.backend.keys() {
            assert!(
                self.table.contains_key(fd),
                "model: backend fd {fd} not in table"
            );
        }

        let backend = sel.backend();
        for fd in fd_universe() {
            let want = self.key(fd);
            assert_eq!(
                sel.get_key(fd).copied(),
                want,
                "get_key({fd}), after {step:?}"
            );
            assert_eq!(
                map.get(fd).copied(),
                want,
                "get_map().get({fd}), after {step:?}"
            );
            assert_eq!(
                map.contains_key(fd),
                want.is_some(),
                "contains_key({fd}), after {step:?}"
            );
            assert_eq!(
                backend.registered(fd),
                self.backend.get(&fd).copied(),
                "SimBackend::registered({fd}), after {step:?}"
            );
            assert_eq!(
                backend.readiness(fd),
                self.readiness.get(&fd).copied().unwrap_or_default(),
                "SimBackend::readiness({fd}), after {step:?}"
            );
        }
        assert_eq!(
            backend.calls(),
            self.calls,
            "SimBackend::calls(), after {step:?}"
        );
        assert_eq!(
            backend.last_timeout(),
            self.last_timeout,
            "last_timeout(), after {step:?}"
        );
    }
}
