//! Winsock `select` (every Windows): there an `fd_set` is a counted array
//! of sockets, not a bitmap, and `FD_SETSIZE` bounds how many sockets it
//! holds, not how large a number. Ours hold [`FD_SETSIZE`] (512, as
//! CPython's Windows builds): the selector refuses a register beyond that
//! many keys with `Full` ([`Backend::key_limit`]), before anything changes.
//!
//! The read and write sets are kept between calls and stay dense: each
//! registration (its `slot`, handed back by the selector) knows where its
//! socket sits in each set, and a removal moves the set's last socket into
//! the gap, so every change is O(1). Each `select` copies the counted part
//! of the sets into output sets, which Winsock compacts to the ready
//! sockets in their original order; a walk over both finds each ready
//! socket's registration.
//!
//! A non-blocking `connect` that fails is reported in the except set only
//! (not as writable), so every registered socket is passed there, and a
//! socket in it is reported as an error: `READ | WRITE`, masked by what
//! its key asked for, as WSAPoll's `POLLERR` and every unix backend report
//! it. (CPython passes only the write set there, so a READ-only key never
//! hears of the failure.) `select` with three empty sets fails with
//! `WSAEINVAL`, so a selector with nothing registered sleeps its timeout.
#![allow(unsafe_code)] // system calls; each block has its SAFETY proof

use std::io;
use std::time::Duration;

use selectors2_core::{Backend, BackendSlot, Events, Readiness, Tag};
use windows_sys::Win32::Networking::WinSock::{
    FD_SET, SOCKET, SOCKET_ERROR, TIMEVAL, WSAENOTSOCK, WSAGetLastError,
};

use super::indices::IndexPool;
use super::winsock::{check_socket, is_socket, sleep, socket_of_fd, startup};
use super::{OsBackend, Sealed};
use crate::timeout::to_timeval;
use crate::{BackendKind, RawFd};

/// How many sockets the select backend watches at once on Windows (the
/// size of its `fd_set` arrays): 512, as CPython builds with. A selector
/// on it holds at most this many keys, whatever its capacity.
pub const FD_SETSIZE: RawFd = SETSIZE as RawFd;

const SETSIZE: usize = 512;

/// Not in a set.
const NONE: u32 = u32::MAX;

/// Winsock's `fd_set` with room for `SETSIZE` sockets: the layout of
/// `FD_SET` (a count, then the array), which Winsock reads up to the
/// count, as C programs that define their own `FD_SETSIZE` rely on.
#[repr(C)]
struct FdSet {
    count: u32,
    sockets: [SOCKET; SETSIZE],
}

impl FdSet {
    fn new() -> Box<FdSet> {
        Box::new(FdSet {
            count: 0,
            sockets: [0; SETSIZE],
        })
    }

    #[inline]
    fn live(&self) -> &[SOCKET] {
        &self.sockets[..self.count as usize]
    }

    /// The set for `select`: null when empty (Winsock skips it).
    #[inline]
    fn as_arg(&mut self) -> *mut FD_SET {
        if self.count == 0 {
            std::ptr::null_mut()
        } else {
            (self as *mut FdSet).cast()
        }
    }

    /// Copies the sockets of `from`, in order; only those that still are
    /// sockets if `skip_closed`.
    #[inline]
    fn copy_from(&mut self, from: &FdSet, skip_closed: bool) {
        if skip_closed {
            self.count = 0;
            for &s in from.live().iter().filter(|&&s| is_socket(s)) {
                self.sockets[self.count as usize] = s;
                self.count += 1;
            }
        } else {
            let n = from.count as usize;
            self.sockets[..n].copy_from_slice(&from.sockets[..n]);
            self.count = from.count;
        }
    }
}

/// One side (read or write) of the registrations: the set and, for each
/// of its sockets, the slot it belongs to.
struct Side {
    set: Box<FdSet>,
    owner: Box<[u32; SETSIZE]>,
    out: Box<FdSet>,
}

impl Side {
    fn new() -> Side {
        Side {
            set: FdSet::new(),
            owner: Box::new([NONE; SETSIZE]),
            out: FdSet::new(),
        }
    }

    /// Adds `socket` for `slot`; returns its index.
    #[inline]
    fn insert(&mut self, socket: SOCKET, slot: u32) -> u32 {
        let i = self.set.count;
        self.set.sockets[i as usize] = socket;
        self.owner[i as usize] = slot;
        self.set.count += 1;
        i
    }

    /// Removes the socket at `i`, moving the last one into its place;
    /// returns the slot of the socket that moved (now at `i`), if any.
    #[inline]
    fn remove(&mut self, i: u32) -> Option<u32> {
        let last = self.set.count - 1;
        self.set.sockets[i as usize] = self.set.sockets[last as usize];
        self.owner[i as usize] = self.owner[last as usize];
        self.set.count = last;
        (i != last).then(|| self.owner[i as usize])
    }

    /// Calls `f(socket, slot)` for each socket of `out` (a compacted copy of `set`
    /// in the same order, as `select` leaves it).
    #[inline]
    fn each_ready(&self, out: &FdSet, mut f: impl FnMut(SOCKET, u32)) {
        let live = self.set.live();
        let mut at = 0;
        for &socket in out.live() {
            // Winsock keeps the order, so this finds it at or just after
            // `at`; a full turn is the fallback if it ever did not.
            let found = (0..live.len())
                .map(|k| (at + k) % live.len())
                .find(|&i| live[i] == socket);
            if let Some(i) = found {
                f(socket, self.owner[i]);
                at = i + 1;
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Reg {
    tag: Tag,
    read: u32,
    write: u32,
}

/// The select backend of [`SelectSelector`](crate::SelectSelector) on
/// Windows.
pub struct Select {
    read: Side,
    write: Side,
    /// Every registered socket once, rebuilt for each `select` from the
    /// other two: a failed connect is reported only here.
    except: Side,
    regs: Box<[Reg; SETSIZE]>,
    indices: IndexPool,
}

impl std::fmt::Debug for Select {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Select")
            .field("read", &self.read.set.count)
            .field("write", &self.write.set.count)
            .finish_non_exhaustive()
    }
}

impl Sealed for Select {
    fn open(_capacity: usize) -> io::Result<Self> {
        startup()?;
        Ok(Select {
            read: Side::new(),
            write: Side::new(),
            except: Side::new(),
            regs: Box::new(
                [Reg {
                    tag: Tag::NONE,
                    read: NONE,
                    write: NONE,
                }; SETSIZE],
            ),
            indices: IndexPool::new(SETSIZE)?,
        })
    }
}

impl OsBackend for Select {
    fn kind(&self) -> BackendKind {
        BackendKind::Select
    }
}

impl Select {
    /// Puts `slot`'s socket in the sets `interest` names and out of the
    /// others.
    #[inline]
    fn set(&mut self, socket: SOCKET, slot: u32, interest: Events) {
        let want_read = interest.contains(Events::READ);
        let want_write = interest.contains(Events::WRITE);
        for (side, want, read) in [
            (&mut self.read, want_read, true),
            (&mut self.write, want_write, false),
        ] {
            let reg = &mut self.regs[slot as usize];
            let at = if read { &mut reg.read } else { &mut reg.write };
            if want && *at == NONE {
                *at = side.insert(socket, slot);
            } else if !want && *at != NONE {
                let i = std::mem::replace(at, NONE);
                if let Some(moved) = side.remove(i) {
                    let m = &mut self.regs[moved as usize];
                    if read { m.read = i } else { m.write = i }
                }
            }
        }
    }

    /// The registration at `slot`, checked against `fd`.
    #[inline]
    fn check(&self, fd: RawFd, slot: u32) -> io::Result<()> {
        let socket = socket_of_fd(fd);
        let ok = self.regs.get(slot as usize).is_some_and(|r| {
            (r.read != NONE && self.read.set.sockets[r.read as usize] == socket)
                || (r.write != NONE && self.write.set.sockets[r.write as usize] == socket)
        });
        if ok {
            Ok(())
        } else {
            // The selector hands back the slot `register` returned; anything
            // else is a bug, reported rather than acted on.
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    }

    /// One Winsock `select` on copies of the sets (only the sockets that
    /// still are sockets if `skip_closed`): the number of sockets ready,
    /// or the Winsock error. The output sets hold the ready ones.
    fn select(&mut self, timeout: Option<Duration>, skip_closed: bool) -> Result<i32, i32> {
        self.fill_except(skip_closed);
        let (read, write, except) = (&mut self.read, &mut self.write, &mut self.except);
        read.out.copy_from(&read.set, skip_closed);
        write.out.copy_from(&write.set, skip_closed);
        except.out.copy_from(&except.set, false);
        if read.out.count == 0 && write.out.count == 0 {
            return Ok(0);
        }
        let tv = timeout.map(to_timeval);
        let tv_ptr = tv
            .as_ref()
            .map_or(std::ptr::null(), |tv| tv as *const TIMEVAL);
        // SAFETY: each non-null set is a live, exclusively borrowed `FdSet`,
        // laid out as `FD_SET` with room for `SETSIZE` sockets, whose count
        // Winsock reads and which it only shrinks; `tv_ptr` is null or
        // points at `tv`, alive for the call. The first argument is ignored
        // by Winsock.
        let n = unsafe {
            windows_sys::Win32::Networking::WinSock::select(
                0,
                read.out.as_arg(),
                write.out.as_arg(),
                except.out.as_arg(),
                tv_ptr,
            )
        };
        if n == SOCKET_ERROR {
            // SAFETY: no preconditions; reads this thread's last error.
            Err(unsafe { WSAGetLastError() })
        } else {
            Ok(n)
        }
    }

    /// Puts every registered socket (only those that still are sockets if
    /// `skip_closed`) in the except set once: the write set's, then the
    /// read set's that are not in the write set.
    fn fill_except(&mut self, skip_closed: bool) {
        let except = &mut self.except;
        except.set.count = 0;
        let regs = &self.regs;
        for (side, in_write_too) in [(&self.write, false), (&self.read, true)] {
            for (&socket, &slot) in side.set.live().iter().zip(side.owner.iter()) {
                if in_write_too && regs[slot as usize].write != NONE {
                    continue;
                }
                if !skip_closed || is_socket(socket) {
                    except.insert(socket, slot);
                }
            }
        }
    }

    /// After `WSAENOTSOCK`: report each registered socket that is no longer
    /// a socket (closed) as invalid, as WSAPoll does with `POLLNVAL`,
    /// instead of failing the whole call without saying which is at fault.
    #[cold]
    fn report_closed(&self, report: &mut impl FnMut(RawFd, Tag, Readiness)) {
        for side in [&self.read, &self.write] {
            for (i, &socket) in side.set.live().iter().enumerate() {
                if !is_socket(socket) {
                    let slot = side.owner[i];
                    report(
                        socket as RawFd,
                        self.regs[slot as usize].tag,
                        Readiness::INVALID,
                    );
                }
            }
        }
    }
}

impl Backend for Select {
    type Error = io::Error;

    #[inline]
    fn key_limit(&self) -> Option<usize> {
        Some(SETSIZE)
    }

    #[inline]
    fn register(&mut self, fd: RawFd, interest: Events, tag: Tag) -> io::Result<BackendSlot> {
        if fd < 0 {
            // No socket has that number; only a direct caller (the
            // selector refuses it first) can ask.
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let socket = check_socket(fd)?;
        let slot = self.indices.take()?;
        self.regs[slot as usize] = Reg {
            tag,
            read: NONE,
            write: NONE,
        };
        self.set(socket, slot, interest);
        Ok(BackendSlot::new(slot))
    }

    #[inline]
    fn modify(
        &mut self,
        fd: RawFd,
        slot: BackendSlot,
        _: Events,
        new: Events,
        tag: Tag,
    ) -> io::Result<()> {
        let slot = slot.get();
        self.check(fd, slot)?;
        self.set(socket_of_fd(fd), slot, new);
        self.regs[slot as usize].tag = tag;
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd, slot: BackendSlot, _: Events) -> io::Result<()> {
        let slot = slot.get();
        self.check(fd, slot)?;
        self.set(socket_of_fd(fd), slot, Events::empty());
        self.indices.give_back(slot);
        Ok(())
    }

    #[inline]
    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        _max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> io::Result<()> {
        if self.read.set.count == 0 && self.write.set.count == 0 {
            // select with three empty sets fails with WSAEINVAL.
            sleep(timeout);
            return Ok(());
        }
        let n = match self.select(timeout, false) {
            Ok(n) => n,
            // A socket closed while registered fails the whole call: say
            // which, and select the others without waiting (something is
            // to be reported already), so that it hides none of them.
            Err(WSAENOTSOCK) => {
                self.report_closed(&mut report);
                let mut again = self.select(Some(Duration::ZERO), true);
                if again == Err(WSAENOTSOCK) {
                    // Another one closed meanwhile.
                    self.report_closed(&mut report);
                    again = self.select(Some(Duration::ZERO), true);
                }
                match again {
                    Ok(n) => n,
                    Err(WSAENOTSOCK) => return Ok(()),
                    Err(code) => return Err(io::Error::from_raw_os_error(code)),
                }
            }
            Err(code) => return Err(io::Error::from_raw_os_error(code)),
        };
        if n <= 0 {
            return Ok(());
        }
        let regs = &self.regs;
        // Registered sockets fit in an fd (the selector checked).
        self.read.each_ready(&self.read.out, |s, slot| {
            report(s as RawFd, regs[slot as usize].tag, Readiness::READABLE);
        });
        self.write.each_ready(&self.write.out, |s, slot| {
            report(s as RawFd, regs[slot as usize].tag, Readiness::WRITABLE);
        });
        // A failed connect: an error, which wakes readers and writers.
        self.except.each_ready(&self.except.out, |s, slot| {
            report(s as RawFd, regs[slot as usize].tag, Readiness::ERROR);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_sockets_find_their_slot_in_any_order() {
        let mut side = Side::new();
        for (socket, slot) in [(100, 7), (104, 3), (108, 5), (112, 1)] {
            side.insert(socket, slot);
        }
        let mut out = FdSet::new();
        // In order, as Winsock leaves it, and (the fallback) out of order.
        for ready in [[104, 112], [112, 100]] {
            out.count = 0;
            for s in ready {
                out.sockets[out.count as usize] = s;
                out.count += 1;
            }
            let mut seen = Vec::new();
            side.each_ready(&out, |s, slot| seen.push((s, slot)));
            let want: Vec<_> = ready
                .iter()
                .map(|&s| {
                    (
                        s,
                        side.owner[side.set.live().iter().position(|&x| x == s).unwrap()],
                    )
                })
                .collect();
            assert_eq!(seen, want);
        }
    }

    #[test]
    fn sets_stay_dense_and_slots_stable() {
        let mut s = Select::open(8).unwrap();
        let (_sockets, fds) = super::super::winsock::test_sockets(4);
        let [f0, f1, f2, f3] = fds[..] else {
            unreachable!()
        };
        let [s0, s1, s2] = [f0, f1, f2].map(socket_of_fd);
        let a = s.register(f0, Events::READ, Tag::from_bits(1)).unwrap();
        let b = s.register(f1, Events::all(), Tag::from_bits(2)).unwrap();
        let c = s.register(f2, Events::WRITE, Tag::from_bits(3)).unwrap();
        assert_eq!(s.read.set.live(), [s0, s1]);
        assert_eq!(s.write.set.live(), [s1, s2]);
        s.fill_except(false);
        assert_eq!(s.except.set.live(), [s1, s2, s0], "each socket once");
        s.modify(f1, b, Events::all(), Events::READ, Tag::from_bits(2))
            .unwrap();
        assert_eq!(s.write.set.live(), [s2]);
        s.unregister(f0, a, Events::READ).unwrap();
        assert_eq!(s.read.set.live(), [s1], "the last moved into the gap");
        assert!(
            s.modify(f1, a, Events::READ, Events::WRITE, Tag::from_bits(2))
                .is_err()
        );
        let d = s.register(f3, Events::READ, Tag::from_bits(4)).unwrap();
        assert_eq!(d, a, "the slot is reused");
        let err = s
            .register(0x7fff_fff0, Events::READ, Tag::NONE)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(WSAENOTSOCK), "not a socket: {err}");
        for (fd, slot) in [(f1, b), (f2, c), (f3, d)] {
            s.unregister(fd, slot, Events::READ).unwrap();
        }
        assert_eq!((s.read.set.count, s.write.set.count), (0, 0));
        assert_eq!(s.indices.high_water(), 0);
        assert_eq!(s.key_limit(), Some(512));
        assert_eq!(size_of::<FdSet>(), 8 + 8 * SETSIZE, "FD_SET's layout");
    }
}
