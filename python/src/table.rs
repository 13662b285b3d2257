//! The key table of one selector: a growing `DefaultSelector<u32>` opened
//! on one mechanism, and the `Ready` buffer a `select` fills, sized as the
//! table grows.

use std::io;

use selectors2::{BackendKind, DefaultSelector, Error, Events, Ready};

/// The key data of the selector's own wake-up fd in the Rust table (no
/// `SelectorKey` has it: slots index `keys`, which never grows this far).
/// It never reaches Python: `select` drops its reports, and the lookups
/// by fd treat its number as not registered.
pub(crate) const WAKER_SLOT: u32 = u32::MAX;

/// Keys a new selector has room for: a few KiB, made in microseconds, as
/// the standard library's are. The table doubles as `register` fills it,
/// keeping the mechanism, `fileno()` and every registration, with no
/// bound but the OS's.
pub(crate) const FIRST_CAPACITY: usize = 64;

/// The largest `Ready` a select fills: more ready keys than this in one
/// wait are returned by the next `select` (the core's fair pick), the one
/// place a select does not return every ready fd.
pub(crate) const MOST_READY: usize = 65536;

/// A mechanism and its key table, with a `Ready` of as many entries as
/// keys (up to [`MOST_READY`]): `select` returns every ready fd, as
/// Python's does.
pub(crate) struct Table {
    pub(crate) sel: DefaultSelector<u32>,
    pub(crate) ready: ReadyBuf,
}

/// The `Ready` buffer of a table, at one of the sizes it goes through as
/// the table grows (fourfold: memory follows the number of keys).
pub(crate) enum ReadyBuf {
    R64(Box<Ready<u32, 64>>),
    R256(Box<Ready<u32, 256>>),
    R1024(Box<Ready<u32, 1024>>),
    R4096(Box<Ready<u32, 4096>>),
    R16384(Box<Ready<u32, 16384>>),
    R65536(Box<Ready<u32, MOST_READY>>),
}

impl ReadyBuf {
    pub(crate) fn len(&self) -> usize {
        match self {
            ReadyBuf::R64(_) => 64,
            ReadyBuf::R256(_) => 256,
            ReadyBuf::R1024(_) => 1024,
            ReadyBuf::R4096(_) => 4096,
            ReadyBuf::R16384(_) => 16384,
            ReadyBuf::R65536(_) => MOST_READY,
        }
    }

    /// The smallest buffer that holds `keys` (the largest if none does).
    pub(crate) fn for_keys(keys: usize) -> ReadyBuf {
        fn boxed<const M: usize>() -> Box<Ready<u32, M>> {
            Box::new(Ready::new())
        }
        match keys {
            0..=64 => ReadyBuf::R64(boxed()),
            65..=256 => ReadyBuf::R256(boxed()),
            257..=1024 => ReadyBuf::R1024(boxed()),
            1025..=4096 => ReadyBuf::R4096(boxed()),
            4097..=16384 => ReadyBuf::R16384(boxed()),
            _ => ReadyBuf::R65536(boxed()),
        }
    }
}

/// `$body` with `$ready` bound to the buffer's `Ready`, whatever its size.
macro_rules! with_ready {
    ($buf:expr, |$ready:ident| $body:expr) => {
        match $buf {
            $crate::table::ReadyBuf::R64($ready) => $body,
            $crate::table::ReadyBuf::R256($ready) => $body,
            $crate::table::ReadyBuf::R1024($ready) => $body,
            $crate::table::ReadyBuf::R4096($ready) => $body,
            $crate::table::ReadyBuf::R16384($ready) => $body,
            $crate::table::ReadyBuf::R65536($ready) => $body,
        }
    };
}
pub(crate) use with_ready;

impl Table {
    /// A small table on mechanism `kind` only.
    pub(crate) fn open(kind: BackendKind) -> io::Result<Table> {
        let sel = DefaultSelector::<u32>::with_backends_and_capacity(&[kind], FIRST_CAPACITY)?;
        let ready = ReadyBuf::for_keys(sel.capacity());
        Ok(Table { sel, ready })
    }

    pub(crate) fn backend_kind(&self) -> BackendKind {
        self.sel.backend_kind()
    }

    pub(crate) fn fileno(&self) -> Option<i32> {
        self.sel.fileno()
    }

    /// The slot (key data) registered for `fd`.
    pub(crate) fn slot_of(&self, fd: i32) -> Option<u32> {
        self.sel
            .get_key(fd)
            .map(|k| k.data)
            .filter(|&slot| slot != WAKER_SLOT)
    }

    pub(crate) fn unregister(&mut self, fd: i32) -> Result<u32, Error> {
        if self.slot_of(fd).is_none() {
            return Err(Error::NotRegistered(fd));
        }
        self.sel.unregister(fd).map(|k| k.data)
    }

    pub(crate) fn modify(&mut self, fd: i32, events: Events, slot: u32) -> Result<(), Error> {
        self.sel.modify(fd, events, slot).map(drop)
    }

    /// Registers `fd`; the table grows when it is full, and the `Ready`
    /// buffer with it.
    pub(crate) fn register(&mut self, fd: i32, events: Events, slot: u32) -> Result<(), Error> {
        self.sel.register(fd, events, slot)?;
        if self.ready.len() < self.sel.len() && self.ready.len() < MOST_READY {
            self.ready = ReadyBuf::for_keys(self.sel.capacity());
        }
        Ok(())
    }
}
