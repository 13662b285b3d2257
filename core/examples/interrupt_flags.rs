//! An embedded-style event loop on `selectors2-core`.
//!
//! On a microcontroller there are no file descriptors, but there are event
//! sources: a UART with bytes waiting, a DMA transfer done, a timer tick.
//! Interrupt handlers set one bit per source in an atomic word; the main
//! loop registers the sources it cares about with a [`Selector`] of fixed
//! capacity and asks which are ready, exactly as a Python program asks
//! `selectors` about sockets.
//!
//! Here the "interrupts" are simulated by a loop counter so that the example
//! runs on a host: `cargo run -p selectors2-core --example interrupt_flags`.
//! Nothing in it needs `std` or an allocator but `wait_for_interrupt`, the
//! board's sleep, which the host simulates with a thread sleep.
//!
//! The backend keeps the two rules of the `Backend` contract that matter
//! for a source of your own: it is level-triggered (it never clears a bit;
//! the application does, once it has serviced the source), and it reports,
//! and wakes, only for what a registration asked for (a READ-only source
//! whose TX is free does not end the wait), sleeping otherwise until an
//! interrupt or the timeout.

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use selectors2_core::{
    Backend, BackendSlot, EVENT_READ, EVENT_WRITE, Events, RawFd, Readiness, Ready, Selector, Tag,
};

/// Bit `n` set: source `n` has input. Written by interrupt handlers.
static RX_PENDING: AtomicU32 = AtomicU32::new(0);
/// Bit `n` set: source `n` can take output.
static TX_FREE: AtomicU32 = AtomicU32::new(0);

const UART: RawFd = 0;
const RADIO: RawFd = 1;
const TICK: RawFd = 2;

/// The application's backend: a source is "readable" while its RX bit is
/// set and "writable" while its TX bit is set (level-triggered: the bits
/// stay set until the handler code clears them).
struct IrqFlags {
    interest: [Events; 32],
    tags: [Tag; 32],
}

impl IrqFlags {
    /// Reports each source's readiness that its registration asked for;
    /// whether there was any.
    fn report_ready(&self, report: &mut impl FnMut(RawFd, Tag, Readiness)) -> bool {
        let (rx, tx) = (
            RX_PENDING.load(Ordering::Acquire),
            TX_FREE.load(Ordering::Acquire),
        );
        let mut any = false;
        for src in 0..32 {
            let interest = self.interest[src as usize];
            let mut r = Readiness::empty();
            r.set(
                Readiness::READABLE,
                interest.contains(Events::READ) && rx & (1 << src) != 0,
            );
            r.set(
                Readiness::WRITABLE,
                interest.contains(Events::WRITE) && tx & (1 << src) != 0,
            );
            if !r.is_empty() {
                report(src, self.tags[src as usize], r);
                any = true;
            }
        }
        any
    }
}

/// The board's sleep: on a microcontroller, arm a timer for `timeout` and
/// `WFI` until it or another interrupt fires. The host simulates it.
fn wait_for_interrupt(timeout: Option<Duration>) {
    std::thread::sleep(timeout.unwrap_or(Duration::from_millis(1)));
}

impl Backend for IrqFlags {
    type Error = core::convert::Infallible;

    fn fd_limit(&self) -> Option<RawFd> {
        Some(32) // one bit per source
    }

    fn register(
        &mut self,
        src: RawFd,
        interest: Events,
        tag: Tag,
    ) -> Result<BackendSlot, Self::Error> {
        self.interest[src as usize] = interest;
        self.tags[src as usize] = tag;
        Ok(BackendSlot::NONE)
    }

    fn modify(
        &mut self,
        src: RawFd,
        _: BackendSlot,
        _: Events,
        new: Events,
        tag: Tag,
    ) -> Result<(), Self::Error> {
        self.interest[src as usize] = new;
        self.tags[src as usize] = tag;
        Ok(())
    }

    fn unregister(&mut self, src: RawFd, _: BackendSlot, _: Events) -> Result<(), Self::Error> {
        self.interest[src as usize] = Events::empty();
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
        // Nothing usable: sleep until an interrupt or the timeout, then
        // report what the interrupt brought (if anything).
        wait_for_interrupt(timeout);
        self.report_ready(&mut report);
        Ok(())
    }
}

/// What the main loop keeps with each source.
#[derive(Clone, Copy, Debug)]
enum Source {
    Uart,
    Radio,
    Tick,
}

/// Stands in for the interrupt handlers firing between loop iterations.
fn simulate_interrupts(round: u32) {
    if round.is_multiple_of(2) {
        RX_PENDING.fetch_or(1 << UART, Ordering::Release);
    }
    if round.is_multiple_of(3) {
        RX_PENDING.fetch_or(1 << RADIO, Ordering::Release);
    }
    RX_PENDING.fetch_or(1 << TICK, Ordering::Release);
    TX_FREE.fetch_or(1 << UART, Ordering::Release);
}

fn main() {
    // Room for 8 sources, all in a fixed-size struct: no heap.
    let mut sel: Selector<IrqFlags, Source, 8> = Selector::new(IrqFlags {
        interest: [Events::empty(); 32],
        tags: [Tag::NONE; 32],
    });
    sel.register(UART, EVENT_READ, Source::Uart).expect("UART");
    sel.register(RADIO, EVENT_READ, Source::Radio)
        .expect("radio");
    sel.register(TICK, EVENT_READ, Source::Tick).expect("tick");

    let mut ready: Ready<Source, 4> = Ready::new();
    let mut uart_out = 0u32;
    for round in 0..6 {
        simulate_interrupts(round);
        let n = sel
            .select(&mut ready, Some(Duration::from_millis(10)))
            .expect("select");
        print!("round {round}: {n} ready:");
        for (key, events) in &ready {
            print!(
                " {:?}{}",
                key.data,
                if events.contains(EVENT_WRITE) {
                    "(w)"
                } else {
                    ""
                }
            );
            match key.data {
                // Consume the input: the handler bit is level state.
                Source::Uart | Source::Radio | Source::Tick if events.contains(EVENT_READ) => {
                    RX_PENDING.fetch_and(!(1 << key.fd), Ordering::Release);
                }
                _ => {}
            }
            if events.contains(EVENT_WRITE) {
                uart_out += 1;
                TX_FREE.fetch_and(!(1 << key.fd), Ordering::Release);
            }
        }
        println!();
        // Every third round the UART has a reply to send: also watch for WRITE.
        let events = if round % 3 == 2 {
            EVENT_READ | EVENT_WRITE
        } else {
            EVENT_READ
        };
        sel.modify(UART, events, Source::Uart).expect("modify");
    }
    println!("{} sources registered, {uart_out} UART writes", sel.len());
}
