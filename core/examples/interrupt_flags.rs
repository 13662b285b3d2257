//! An embedded-style event loop on `selectors2-core`, over interrupt flags.
//!
//! On a microcontroller there are no file descriptors, but there are event
//! sources: a UART with bytes waiting, a radio packet, a timer tick.
//! Interrupt handlers set one bit per source in an atomic word; the main
//! loop registers the sources it cares about with a [`Selector`] over a
//! [`Fixed`] backend and asks which are ready, exactly as a Python program
//! asks `selectors` about sockets. The board code answers only two
//! questions ([`Sources`]): what is a source ready for now, and sleep until
//! an interrupt or the timeout. `Fixed` keeps interests, tags and the
//! timeout's deadline.
//!
//! Everything but `main` is `no_std` code: `event_loop` writes its log
//! through `core::fmt::Write`, and only `main` prints it. The sleep is
//! simulated so that the example runs on a host:
//! `cargo run -p selectors2-core --example interrupt_flags`. On a board,
//! `sleep` is `WFE` (or the masked check before `WFI`; see [`Sources`])
//! and `now` reads the 1 ms tick counter; `firmware/` in the repository
//! has programs that run so under QEMU.

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use selectors2_core::{
    EVENT_READ, EVENT_WRITE, Events, Fixed, Readiness, Ready, Selector, Sources,
};

/// Bit `n` set: source `n` has input. Written by interrupt handlers.
static RX_PENDING: AtomicU32 = AtomicU32::new(0);
/// Bit `n` set: source `n` can take output.
static TX_FREE: AtomicU32 = AtomicU32::new(0);

const UART: i32 = 0;
const RADIO: i32 = 1;
const TICK: i32 = 2;
const SOURCES: usize = 3;

/// The board: level-triggered flags (a bit stays set until the
/// application has serviced its source) and a 1 ms tick clock.
struct IrqFlags {
    ms: u64,
}

impl Sources for IrqFlags {
    type Error = core::convert::Infallible;
    const TICK: Duration = Duration::from_millis(1);

    fn readiness(&mut self, source: usize, _interest: Events) -> Readiness {
        let bit = 1u32 << source;
        let mut r = Readiness::empty();
        r.set(
            Readiness::READABLE,
            RX_PENDING.load(Ordering::Acquire) & bit != 0,
        );
        r.set(
            Readiness::WRITABLE,
            TX_FREE.load(Ordering::Acquire) & bit != 0,
        );
        r
    }

    fn now(&mut self) -> Duration {
        Duration::from_millis(self.ms)
    }

    fn sleep(&mut self, _timeout: Option<Duration>) -> Result<(), Self::Error> {
        // A board: `cortex_m::asm::wfe()`. Here the next tick comes, and
        // with it the interrupts this tick fires.
        self.ms += 1;
        fire_interrupts(self.ms);
        Ok(())
    }
}

/// Stands in for the interrupt handlers: the UART receives every 2 ms,
/// the radio every 3 ms, the tick source every 5 ms; the UART's
/// transmitter frees up every 4 ms.
fn fire_interrupts(ms: u64) {
    for (source, period) in [(UART, 2), (RADIO, 3), (TICK, 5)] {
        if ms.is_multiple_of(period) {
            RX_PENDING.fetch_or(1 << source, Ordering::Release);
        }
    }
    if ms.is_multiple_of(4) {
        TX_FREE.fetch_or(1 << UART, Ordering::Release);
    }
}

/// What the main loop keeps with each source.
#[derive(Clone, Copy, Debug)]
enum Source {
    Uart,
    Radio,
    Tick,
}

/// The application: `rounds` selects, servicing what each reports, logged
/// to `log`. No heap, no `std`.
fn event_loop(rounds: u32, log: &mut impl Write) -> core::fmt::Result {
    // Room for 8 keys, all in a fixed-size struct (it could be a `static`).
    let mut sel: Selector<Fixed<IrqFlags, SOURCES>, Source, 8> =
        Selector::new(Fixed::new(IrqFlags { ms: 0 }));
    for (fd, data) in [
        (UART, Source::Uart),
        (RADIO, Source::Radio),
        (TICK, Source::Tick),
    ] {
        if let Err(e) = sel.register(fd, EVENT_READ, data) {
            return writeln!(log, "register: {e}");
        }
    }
    let mut ready: Ready<Source, 4> = Ready::new();
    let mut uart_replies = 0u32;
    for round in 0..rounds {
        // `select` fails only with the backend's error, and this backend's
        // is `Infallible`: no `unwrap`, no panic path.
        let Ok(n) = sel.select(&mut ready, Some(Duration::from_millis(10)));
        let ms = sel.backend().sources().ms;
        write!(log, "{ms:>3} ms, round {round}: {n} ready:")?;
        for (key, events) in &ready {
            write!(log, " {:?}", key.data)?;
            let bit = 1 << key.fd;
            if events.contains(EVENT_READ) {
                // Consume the input: the flag is level state.
                RX_PENDING.fetch_and(!bit, Ordering::Release);
            }
            if events.contains(EVENT_WRITE) {
                write!(log, "(reply sent)")?;
                uart_replies += 1;
                TX_FREE.fetch_and(!bit, Ordering::Release);
            }
        }
        writeln!(log)?;
        // Every third round the UART has a reply to send: watch WRITE too,
        // until it is sent.
        let events = if round % 3 == 2 {
            EVENT_READ | EVENT_WRITE
        } else {
            EVENT_READ
        };
        if let Err(e) = sel.modify(UART, events, Source::Uart) {
            return writeln!(log, "modify: {e}");
        }
    }
    writeln!(
        log,
        "{} sources registered, {uart_replies} UART replies",
        sel.len()
    )
}

fn main() {
    let mut log = String::new();
    if event_loop(8, &mut log).is_ok() {
        print!("{log}");
    }
}
