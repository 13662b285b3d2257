//! Echoes each of the board's three UARTs back out, with a `Selector` over
//! a backend for this board, until each UART has sent an EOT byte (0x04)
//! and had it echoed; then prints what it echoed through semihosting and
//! exits with status 0. A timer source ends it with status 1 when no byte
//! arrives for two seconds.
//!
//! Run it (the bytes come from `uart0.in`.. and go to `uart0.out`..):
//!
//! ```text
//! cd firmware && cargo build --release --bin uart_echo
//! qemu-system-arm -machine lm3s6965evb -nographic -monitor none \
//!   -semihosting-config enable=on,target=native \
//!   -chardev file,id=u0,path=uart0.out,input-path=uart0.in -serial chardev:u0 \
//!   -chardev file,id=u1,path=uart1.out,input-path=uart1.in -serial chardev:u1 \
//!   -chardev file,id=u2,path=uart2.out,input-path=uart2.in -serial chardev:u2 \
//!   -kernel target/thumbv7m-none-eabi/release/uart_echo
//! ```
//!
//! The backend is what to copy: it answers "what is ready" from the
//! hardware's own flags (level state, so nothing is lost between two
//! selects), and it sleeps without losing a wake-up: interrupts masked,
//! the wake-up sources armed, the flags checked again, `WFI`, interrupts
//! unmasked (the handler that woke the core runs there), and round again.
#![no_std]
#![no_main]

use core::convert::Infallible;
use core::time::Duration;

use cortex_m_rt::entry;
use selectors2_core::{
    Backend, BackendSlot, EVENT_READ, EVENT_WRITE, Events, RawFd, Readiness, Ready, Selector, Tag,
};
use selectors2_firmware::{self as board, Console, Echo, Uart};

/// The sources' "fds": UART 0, 1 and 2 are 0, 1 and 2.
const UARTS: usize = 3;
/// The idle timer: readable once its deadline has passed.
const TIMER: RawFd = 3;
const SOURCES: usize = 4;

/// No byte for this long ends the program with a failure.
const IDLE_MS: u32 = 2000;

/// The board as a readiness source.
struct Board {
    interest: [Events; SOURCES],
    tags: [Tag; SOURCES],
    /// When the timer becomes readable (a [`board::now`] value).
    timer_due: u32,
}

impl Board {
    const fn new() -> Board {
        Board {
            interest: [Events::empty(); SOURCES],
            tags: [Tag::NONE; SOURCES],
            timer_due: 0,
        }
    }

    /// What source `fd` can do now, from the hardware's flags.
    fn readiness(&self, fd: usize) -> Readiness {
        let mut r = Readiness::empty();
        if let Some(uart) = Uart::ALL.get(fd) {
            r.set(Readiness::READABLE, uart.rx_ready());
            r.set(Readiness::WRITABLE, uart.tx_ready());
        } else if fd == TIMER as usize {
            // Wrapping: "due" is at most 2^31 ticks in the past.
            r.set(
                Readiness::READABLE,
                (board::now().wrapping_sub(self.timer_due) as i32) >= 0,
            );
        }
        r
    }

    /// Reports every source whose registration can use what it can do
    /// now; whether there was one.
    fn report_ready(&self, report: &mut impl FnMut(RawFd, Tag, Readiness)) -> bool {
        let mut any = false;
        for (fd, (interest, tag)) in self.interest.iter().zip(&self.tags).enumerate() {
            let r = self.readiness(fd);
            // Only what the registration asked for: a UART registered for
            // READ must not end the wait because it could send.
            if !r.to_events(*interest).is_empty() {
                report(fd as RawFd, *tag, r);
                any = true;
            }
        }
        any
    }

    /// Lets each UART interrupt for what its registration waits on, so
    /// that the `WFI` ends when it comes. (The 1 ms SysTick ends it too:
    /// the timer source and the timeout need nothing armed.)
    fn arm(&self) {
        for (uart, interest) in Uart::ALL.iter().zip(&self.interest) {
            uart.arm(
                interest.contains(Events::READ),
                interest.contains(Events::WRITE),
            );
        }
    }

    fn set(&mut self, fd: RawFd, interest: Events, tag: Tag) {
        let at = fd as usize;
        if let (Some(i), Some(t)) = (self.interest.get_mut(at), self.tags.get_mut(at)) {
            (*i, *t) = (interest, tag);
        }
    }
}

impl Backend for Board {
    type Error = Infallible;

    fn fd_limit(&self) -> Option<RawFd> {
        Some(SOURCES as RawFd)
    }

    fn register(
        &mut self,
        fd: RawFd,
        interest: Events,
        tag: Tag,
    ) -> Result<BackendSlot, Infallible> {
        self.set(fd, interest, tag);
        Ok(BackendSlot::NONE)
    }

    fn modify(
        &mut self,
        fd: RawFd,
        _: BackendSlot,
        _: Events,
        new: Events,
        tag: Tag,
    ) -> Result<(), Infallible> {
        self.set(fd, new, tag);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd, _: BackendSlot, _: Events) -> Result<(), Infallible> {
        self.set(fd, Events::empty(), Tag::NONE);
        Ok(())
    }

    fn may_report_twice(&self) -> bool {
        false
    }

    fn wait<F: FnMut(RawFd, Tag, Readiness)>(
        &mut self,
        _max: usize,
        timeout: Option<Duration>,
        mut report: F,
    ) -> Result<(), Infallible> {
        let start = board::now();
        // How many tick edges to wait for: zero polls; `None` (or a
        // timeout past 49 days) waits until something is ready.
        let limit = match timeout {
            Some(t) if t.is_zero() => Some(0),
            Some(t) => board::timeout_ticks(t),
            None => None,
        };
        loop {
            // Masked from here to the `WFI`: an interrupt that comes after
            // the check below stays pending, and a pending interrupt ends
            // the `WFI` at once, so no wake-up is lost between the check
            // and the sleep.
            cortex_m::interrupt::disable();
            self.arm();
            let any = self.report_ready(&mut report);
            let expired = limit.is_some_and(|n| board::now().wrapping_sub(start) >= n);
            if !any && !expired {
                cortex_m::asm::wfi();
            }
            // SAFETY: interrupts were enabled when `wait` was called (the
            // program never calls `select` with them masked).
            unsafe { cortex_m::interrupt::enable() };
            if any || expired {
                return Ok(());
            }
        }
    }
}

#[entry]
fn main() -> ! {
    // A `static` selector: its table is all zeros, so it costs `.bss`
    // only (no initializer image in flash).
    static mut SEL: Selector<Board, u16, 8> = Selector::new(Board::new());
    let sel = SEL;
    let mut console = Console::open();
    let Some(core) = cortex_m::Peripherals::take() else {
        board::exit(false);
    };
    board::start_clock(core.SYST);
    for (i, uart) in Uart::ALL.iter().enumerate() {
        uart.init(i as u32);
        // An fd in range, never registered before: cannot fail.
        if sel.register(i as RawFd, EVENT_READ, i as u16).is_err() {
            board::exit(false);
        }
    }
    sel.backend_mut().timer_due = board::now().wrapping_add(IDLE_MS);
    if sel.register(TIMER, EVENT_READ, TIMER as u16).is_err() {
        board::exit(false);
    }

    let mut echo = [Echo::new(), Echo::new(), Echo::new()];
    let mut ready: Ready<u16, 4> = Ready::new();
    loop {
        // The backend cannot fail (`Infallible`): nothing to unwrap.
        let Ok(_) = sel.select(&mut ready, None);
        for (key, events) in &ready {
            let (Some(e), Some(&uart)) = (
                echo.get_mut(usize::from(key.data)),
                Uart::ALL.get(usize::from(key.data)),
            ) else {
                // The idle timer.
                console.print(b"no byte for 2 s: giving up\n");
                board::exit(false);
            };
            if events.contains(EVENT_READ) {
                e.receive(uart);
                sel.backend_mut().timer_due = board::now().wrapping_add(IDLE_MS);
            }
            if events.contains(EVENT_WRITE) {
                e.send(uart);
            }
        }
        let mut all_done = true;
        for (fd, e) in echo.iter().enumerate().take(UARTS) {
            let fd = fd as RawFd;
            if e.done() {
                if sel.get_key(fd).is_some() {
                    let _ = sel.unregister(fd);
                }
                continue;
            }
            all_done = false;
            let _ = sel.modify(fd, e.interest(), fd as u16);
        }
        if all_done {
            break;
        }
    }
    board::echoed_then_exit(&mut console, &echo);
}
