//! `key_map`: the key table of a small `Selector<SimBackend, u16, 8>`
//! against a `BTreeMap` model.
//!
//! After every step the result (the exact error variant included: `Full`,
//! `InvalidEvents`, `InvalidFd`, `AlreadyRegistered`, `NotRegistered`,
//! `Backend`), `len()`, the `get_map()` contents, `get_key` for every fd,
//! and `SimBackend::registered` must agree with the model. Injected backend
//! failures must change nothing; after `SimBackend::close(fd)`,
//! `unregister(fd)` must still succeed and remove the key, while `modify`
//! with new events fails with `Error::Backend` and changes nothing.

use arbitrary::Arbitrary;
use selectors2_core::{Selector, SimBackend};

use crate::input::{EventsIn, FdIn};
use crate::model::{Model, TableOp};

/// The table's capacity: small, so that `Full` is reached often.
pub const CAPACITY: usize = 8;

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
        data: u16,
    },
    /// `Selector::modify`.
    Modify {
        /// The fd.
        fd: FdIn,
        /// The new interest.
        events: EventsIn,
        /// The new data.
        data: u16,
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
    /// `SimBackend::fail_next`: the next backend call fails.
    FailNext,
    /// `SimBackend::close`: the fd disappears from the backend, not from
    /// the table.
    Close {
        /// The fd.
        fd: FdIn,
    },
}

/// Runs `ops` on a fresh selector and the model, checking after each step.
pub fn run(ops: &[Op]) {
    let mut sel: Selector<SimBackend, u16, CAPACITY> = Selector::new(SimBackend::new());
    let mut model: Model<u16> = Model::new(CAPACITY);
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
            Op::GetKey { fd } => {
                assert_eq!(
                    sel.get_key(fd.fd()).copied(),
                    model.get_key(fd.fd()),
                    "result of {step:?}"
                );
            }
            Op::FailNext => {
                model.fail_next();
                sel.backend_mut().fail_next();
            }
            Op::Close { fd } => {
                model.close(fd.fd());
                sel.backend_mut().close(fd.fd());
            }
        }
        model.assert_matches(&sel, &step);
    }
}
