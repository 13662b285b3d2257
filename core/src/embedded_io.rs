//! A [`Backend`](crate::Backend) over [`embedded-io`](::embedded_io)
//! devices: each device's [`ReadReady`] and [`WriteReady`] answer
//! "readable" and "writable", your [`Clock`] tells the time and sleeps.
//! Behind the `embedded-io` feature.
//!
//! `read_ready` and `write_ready` are level queries, what the selector's
//! model needs: a UART is readable while bytes wait in it, whoever asks
//! and however often.
//!
//! ```
//! use core::convert::Infallible;
//! use core::time::Duration;
//! use embedded_io::{ErrorType, ReadReady, WriteReady};
//! use selectors2_core::embedded_io::{Clock, Devices, IoBackend};
//! use selectors2_core::{EVENT_READ, EVENT_WRITE, Ready, Selector};
//!
//! /// A serial port, as a HAL's driver implements embedded-io.
//! struct Serial {
//!     rx_waiting: usize,
//!     tx_room: usize,
//! }
//! impl ErrorType for Serial {
//!     type Error = Infallible;
//! }
//! impl ReadReady for Serial {
//!     fn read_ready(&mut self) -> Result<bool, Infallible> {
//!         Ok(self.rx_waiting > 0)
//!     }
//! }
//! impl WriteReady for Serial {
//!     fn write_ready(&mut self) -> Result<bool, Infallible> {
//!         Ok(self.tx_room > 0)
//!     }
//! }
//!
//! /// The board's 1 ms tick and its sleep (simulated here).
//! struct Ticks(u64);
//! impl Clock for Ticks {
//!     const TICK: Duration = Duration::from_millis(1);
//!     fn now(&mut self) -> Duration {
//!         Duration::from_millis(self.0)
//!     }
//!     fn sleep(&mut self, _timeout: Option<Duration>) {
//!         self.0 += 1; // a board: `cortex_m::asm::wfe()`
//!     }
//! }
//!
//! let ports = [Serial { rx_waiting: 0, tx_room: 16 }, Serial { rx_waiting: 3, tx_room: 0 }];
//! let backend: IoBackend<Serial, Ticks, 2> = IoBackend::new(Devices::new(ports, Ticks(0)));
//! let mut sel: Selector<_, &str, 4> = Selector::new(backend);
//! sel.register(0, EVENT_READ, "console").unwrap();
//! sel.register(1, EVENT_READ | EVENT_WRITE, "modem").unwrap();
//!
//! let mut ready: Ready<&str, 2> = Ready::new();
//! assert_eq!(sel.select(&mut ready, Some(Duration::from_millis(10))).ok(), Some(1));
//! let (key, events) = ready.iter().next().unwrap();
//! assert_eq!((key.data, events), ("modem", EVENT_READ));
//! ```

use core::convert::Infallible;
use core::time::Duration;

use ::embedded_io::{ReadReady, WriteReady};

use crate::{Events, Fixed, Readiness, Sources};

/// The user's time and sleep for [`Devices`].
pub trait Clock {
    /// The resolution of [`now`](Clock::now): see [`Sources::TICK`].
    const TICK: Duration = Duration::ZERO;

    /// A monotonic time (since start-up, say).
    fn now(&mut self) -> Duration;

    /// Sleeps until a device may have changed or `timeout` has passed
    /// (`None`: no limit), without losing an interrupt that came since the
    /// devices were last asked: `WFE`, or a flag tested with interrupts
    /// masked before `WFI` (see [`Sources`]). May return early.
    fn sleep(&mut self, timeout: Option<Duration>);
}

/// `K` embedded-io devices of one type `T` and a [`Clock`], as
/// [`Sources`]: device `i` is source (fd) `i`. Devices of several types
/// go in an enum of your own that forwards the two traits.
///
/// A device whose `read_ready` or `write_ready` fails is reported with
/// [`Readiness::ERROR`]: it counts as readable and writable, so that the
/// application's next read or write meets the error itself (as Python's
/// selectors report a socket error).
#[derive(Debug)]
pub struct Devices<T, C, const K: usize> {
    devices: [T; K],
    clock: C,
}

impl<T, C, const K: usize> Devices<T, C, K> {
    /// `devices`, numbered `0..K`, and the clock.
    pub const fn new(devices: [T; K], clock: C) -> Self {
        Devices { devices, clock }
    }

    /// Device `i`, to read or write it after a `select`.
    #[inline]
    pub fn device(&mut self, i: usize) -> Option<&mut T> {
        self.devices.get_mut(i)
    }

    /// All the devices.
    #[inline]
    pub fn devices(&mut self) -> &mut [T; K] {
        &mut self.devices
    }

    /// The clock.
    #[inline]
    pub fn clock(&mut self) -> &mut C {
        &mut self.clock
    }
}

impl<T: ReadReady + WriteReady, C: Clock, const K: usize> Sources for Devices<T, C, K> {
    type Error = Infallible;
    const TICK: Duration = C::TICK;

    fn readiness(&mut self, source: usize, interest: Events) -> Readiness {
        let Some(device) = self.devices.get_mut(source) else {
            return Readiness::empty();
        };
        let mut r = Readiness::empty();
        // Ask only what the registration waits for.
        if interest.contains(Events::READ) {
            match device.read_ready() {
                Ok(ready) => r.set(Readiness::READABLE, ready),
                Err(_) => r |= Readiness::ERROR,
            }
        }
        if interest.contains(Events::WRITE) && !r.contains(Readiness::ERROR) {
            match device.write_ready() {
                Ok(ready) => r.set(Readiness::WRITABLE, ready),
                Err(_) => r |= Readiness::ERROR,
            }
        }
        r
    }

    #[inline]
    fn now(&mut self) -> Duration {
        self.clock.now()
    }

    #[inline]
    fn sleep(&mut self, timeout: Option<Duration>) -> Result<(), Infallible> {
        self.clock.sleep(timeout);
        Ok(())
    }
}

/// A [`Backend`](crate::Backend) over `K` embedded-io devices: a
/// [`Fixed`] over [`Devices`].
pub type IoBackend<T, C, const K: usize> = Fixed<Devices<T, C, K>, K>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EVENT_READ, EVENT_WRITE, Ready, Selector};
    use ::embedded_io::{ErrorKind, ErrorType};

    #[derive(Default)]
    struct Dev {
        rx: bool,
        tx: bool,
        broken: bool,
        asked_read: u32,
        asked_write: u32,
    }
    impl ErrorType for Dev {
        type Error = ErrorKind;
    }
    impl ReadReady for Dev {
        fn read_ready(&mut self) -> Result<bool, ErrorKind> {
            self.asked_read += 1;
            if self.broken {
                Err(ErrorKind::Other)
            } else {
                Ok(self.rx)
            }
        }
    }
    impl WriteReady for Dev {
        fn write_ready(&mut self) -> Result<bool, ErrorKind> {
            self.asked_write += 1;
            if self.broken {
                Err(ErrorKind::Other)
            } else {
                Ok(self.tx)
            }
        }
    }

    #[derive(Default)]
    struct Ms(u64);
    impl Clock for Ms {
        const TICK: Duration = Duration::from_millis(1);
        fn now(&mut self) -> Duration {
            Duration::from_millis(self.0)
        }
        fn sleep(&mut self, _: Option<Duration>) {
            self.0 += 1;
        }
    }

    type Sel = Selector<IoBackend<Dev, Ms, 3>, u8, 4>;

    fn sel() -> Sel {
        let devices = [Dev::default(), Dev::default(), Dev::default()];
        Selector::new(IoBackend::new(Devices::new(devices, Ms(0))))
    }

    fn dev(sel: &mut Sel, i: usize) -> &mut Dev {
        sel.backend_mut().sources_mut().device(i).unwrap()
    }

    #[test]
    fn read_and_write_ready_become_events() {
        let mut sel = sel();
        sel.register(0, EVENT_READ, 0).unwrap();
        sel.register(1, EVENT_READ | EVENT_WRITE, 1).unwrap();
        sel.register(2, EVENT_WRITE, 2).unwrap();
        (dev(&mut sel, 0).rx, dev(&mut sel, 0).tx) = (true, true);
        dev(&mut sel, 1).tx = true;
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, Some(Duration::ZERO)), Ok(2));
        let got: std::vec::Vec<_> = ready.iter().map(|(k, e)| (k.fd, e)).collect();
        assert_eq!(got, [(0, EVENT_READ), (1, EVENT_WRITE)]);
        // A READ-only registration never asks write_ready, and vice versa.
        assert_eq!(dev(&mut sel, 0).asked_write, 0);
        assert_eq!(dev(&mut sel, 2).asked_read, 0);
    }

    #[test]
    fn a_failing_device_is_reported_for_what_it_waits_for() {
        let mut sel = sel();
        sel.register(0, EVENT_READ, 0).unwrap();
        sel.register(1, EVENT_WRITE, 1).unwrap();
        dev(&mut sel, 0).broken = true;
        dev(&mut sel, 1).broken = true;
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(sel.select(&mut ready, None), Ok(2));
        let got: std::vec::Vec<_> = ready.iter().map(|(k, e)| (k.fd, e)).collect();
        assert_eq!(got, [(0, EVENT_READ), (1, EVENT_WRITE)]);
    }

    #[test]
    fn sleeps_on_the_clock_until_the_timeout() {
        let mut sel = sel();
        sel.register(0, EVENT_READ, 0).unwrap();
        let mut ready: Ready<u8, 4> = Ready::new();
        assert_eq!(
            sel.select(&mut ready, Some(Duration::from_millis(4))),
            Ok(0)
        );
        // Four whole ticks and the one under way.
        assert_eq!(sel.backend_mut().sources_mut().clock().0, 5);
    }
}
