//! A `#![no_std]` program on `selectors2-core` with a readiness source of
//! its own, written from the crate's docs as a newcomer would: a board with
//! two serial ports whose receive interrupts fill ring buffers and whose
//! transmitters are free or busy. The main loop echoes each port's input
//! back out, watching WRITE only while it has something to send.
//!
//! It builds for bare metal (`cargo build -p selectors2-no-std-program
//! --target thumbv7em-none-eabihf`); its tests run it on the host against a
//! simulated board and check every byte.
#![no_std]

use core::time::Duration;

use selectors2_core::{
    Backend, BackendSlot, EVENT_READ, EVENT_WRITE, Events, RawFd, Readiness, Ready, Selector, Tag,
};

/// Ports on the board: the "fd" of each.
pub const PORTS: usize = 2;
const RING: usize = 64;

/// One serial port as the interrupt handlers leave it.
#[derive(Debug, Clone, Copy)]
pub struct Port {
    rx: [u8; RING],
    rx_len: usize,
    /// Whether the transmitter takes a byte now.
    pub tx_free: bool,
    /// What was transmitted (a real board drives a pin).
    pub sent: [u8; RING],
    /// How many bytes of `sent` are valid.
    pub sent_len: usize,
}

impl Port {
    const IDLE: Port = Port {
        rx: [0; RING],
        rx_len: 0,
        tx_free: true,
        sent: [0; RING],
        sent_len: 0,
    };
}

/// The board: the backend. Level-triggered (a port stays readable while
/// its ring holds bytes; the application drains it), and it reports only
/// what a registration asked for.
#[derive(Debug)]
pub struct Board {
    /// The ports (public: the "interrupt handlers" of the tests write here).
    pub ports: [Port; PORTS],
    interest: [Events; PORTS],
    tags: [Tag; PORTS],
    /// Simulated time slept in `wait` (a board would `WFI`).
    pub slept: Duration,
}

impl Board {
    /// A board with every port idle.
    pub const fn new() -> Board {
        Board {
            ports: [Port::IDLE; PORTS],
            interest: [Events::empty(); PORTS],
            tags: [Tag::NONE; PORTS],
            slept: Duration::ZERO,
        }
    }

    /// The receive interrupt: a byte arrived on `port` (dropped if full).
    pub fn receive(&mut self, port: usize, byte: u8) {
        let p = &mut self.ports[port];
        if p.rx_len < RING {
            p.rx[p.rx_len] = byte;
            p.rx_len += 1;
        }
    }

    fn report_ready(&self, report: &mut impl FnMut(RawFd, Tag, Readiness)) -> bool {
        let mut any = false;
        for (i, p) in self.ports.iter().enumerate() {
            let mut r = Readiness::empty();
            r.set(Readiness::READABLE, p.rx_len > 0);
            r.set(Readiness::WRITABLE, p.tx_free);
            if !r.to_events(self.interest[i]).is_empty() {
                report(i as RawFd, self.tags[i], r);
                any = true;
            }
        }
        any
    }
}

impl Default for Board {
    fn default() -> Self {
        Board::new()
    }
}

impl Backend for Board {
    type Error = core::convert::Infallible;

    fn fd_limit(&self) -> Option<RawFd> {
        Some(PORTS as RawFd)
    }

    fn register(
        &mut self,
        fd: RawFd,
        interest: Events,
        tag: Tag,
    ) -> Result<BackendSlot, Self::Error> {
        (self.interest[fd as usize], self.tags[fd as usize]) = (interest, tag);
        Ok(BackendSlot::NONE)
    }

    fn modify(
        &mut self,
        fd: RawFd,
        _: BackendSlot,
        _: Events,
        new: Events,
        tag: Tag,
    ) -> Result<(), Self::Error> {
        (self.interest[fd as usize], self.tags[fd as usize]) = (new, tag);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd, _: BackendSlot, _: Events) -> Result<(), Self::Error> {
        self.interest[fd as usize] = Events::empty();
        Ok(())
    }

    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        _max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> Result<(), Self::Error> {
        if self.report_ready(&mut report) || timeout == Some(Duration::ZERO) {
            return Ok(());
        }
        // Nothing usable: sleep until an interrupt or the timeout.
        self.slept += timeout.unwrap_or(Duration::from_millis(1));
        self.report_ready(&mut report);
        Ok(())
    }
}

/// The application: echoes each port's input back out of the same port.
#[derive(Debug)]
pub struct Echo {
    sel: Selector<Board, usize, 4>,
    pending: [[u8; RING]; PORTS],
    pending_len: [usize; PORTS],
}

impl Echo {
    /// Watches every port for input.
    pub fn new(board: Board) -> Echo {
        let mut sel = Selector::new(board);
        for port in 0..PORTS {
            // Cannot fail: the port numbers are below the board's limit and
            // the table holds 4.
            let _ = sel.register(port as RawFd, EVENT_READ, port);
        }
        Echo {
            sel,
            pending: [[0; RING]; PORTS],
            pending_len: [0; PORTS],
        }
    }

    /// The board, for the interrupt handlers.
    pub fn board(&mut self) -> &mut Board {
        self.sel.backend_mut()
    }

    /// One turn of the main loop: returns how many ports were served.
    pub fn turn(&mut self, timeout: Duration) -> usize {
        let mut ready: Ready<usize, PORTS> = Ready::new();
        // The backend's `Error` is `Infallible`, and `select` fails only
        // with that: nothing to unwrap.
        let Ok(n) = self.sel.select(&mut ready, Some(timeout));
        for (key, events) in &ready {
            let port = key.data;
            let board = self.sel.backend_mut();
            if events.contains(EVENT_READ) {
                let p = &mut board.ports[port];
                for &b in &p.rx[..p.rx_len] {
                    if self.pending_len[port] < RING {
                        self.pending[port][self.pending_len[port]] = b;
                        self.pending_len[port] += 1;
                    }
                }
                p.rx_len = 0; // drained: no longer readable
            }
            let p = &mut board.ports[port];
            // One byte per turn while the transmitter is free: partial writes.
            if p.tx_free && self.pending_len[port] > 0 {
                p.sent[p.sent_len] = self.pending[port][0];
                p.sent_len += 1;
                self.pending[port].copy_within(1..self.pending_len[port], 0);
                self.pending_len[port] -= 1;
            }
            let want = if self.pending_len[port] > 0 {
                EVENT_READ | EVENT_WRITE
            } else {
                EVENT_READ
            };
            if key.events != want {
                let _ = self.sel.modify(port as RawFd, want, port);
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn echoes_every_byte_with_a_transmitter_that_is_sometimes_busy() {
        let mut echo = Echo::new(Board::new());
        // Idle: the select sleeps its timeout and serves nothing.
        assert_eq!(echo.turn(Duration::from_millis(10)), 0);
        assert_eq!(echo.board().slept, Duration::from_millis(10));
        for b in b"hello" {
            echo.board().receive(0, *b);
        }
        echo.board().receive(1, b'!');
        for round in 0..40 {
            // The transmitter of port 0 is busy every other turn.
            echo.board().ports[0].tx_free = round % 2 == 0;
            echo.turn(Duration::from_millis(1));
        }
        let p0 = echo.board().ports[0];
        let p1 = echo.board().ports[1];
        assert_eq!(&p0.sent[..p0.sent_len], b"hello");
        assert_eq!(&p1.sent[..p1.sent_len], b"!");
        // Everything sent: READ only again, and an idle turn sleeps.
        let slept = echo.board().slept;
        assert_eq!(echo.turn(Duration::from_millis(5)), 0);
        assert_eq!(echo.board().slept, slept + Duration::from_millis(5));
    }
}
