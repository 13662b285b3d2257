//! `uart_echo` on the core's `Fixed` backend: the board code answers only
//! "what can source `i` do now" and "sleep until an interrupt"; `Fixed`
//! keeps the interests, the tags and the timeout's deadline. Same
//! program, same output, same run command as `uart_echo` (with
//! `--bin uart_echo_fixed`).
//!
//! Sleeping without losing a wake-up takes another shape here: `Fixed`
//! checks the sources and then calls `sleep`, so an interrupt between the
//! two must not be slept through. `readiness` arms a UART's interrupt for
//! what is waited on and not there yet, every handler sets a flag, and
//! `sleep` (`board::sleep_until_interrupt`) skips the `WFI` when the flag
//! says an interrupt came since.
#![no_std]
#![no_main]

use core::convert::Infallible;
use core::time::Duration;

use cortex_m_rt::entry;
use selectors2_core::{
    EVENT_READ, EVENT_WRITE, Events, Fixed, RawFd, Readiness, Ready, Selector, Sources,
};
use selectors2_firmware::{self as board, Console, Echo, Uart};

/// The sources' "fds": UART 0, 1 and 2 are 0, 1 and 2.
const UARTS: usize = 3;
/// The idle timer: readable once its deadline has passed.
const TIMER: RawFd = 3;
const SOURCES: usize = 4;

/// No byte for this long ends the program with a failure.
const IDLE_MS: u32 = 2000;

/// The board: the three UARTs' flags, the idle timer, the clock.
struct Board {
    /// When the timer becomes readable (a [`board::now`] value).
    timer_due: u32,
}

impl Board {
    const fn new() -> Board {
        Board { timer_due: 0 }
    }
}

impl Sources for Board {
    type Error = Infallible;
    const TICK: Duration = Duration::from_millis(1);

    fn readiness(&mut self, source: usize, interest: Events) -> Readiness {
        let mut r = Readiness::empty();
        if let Some(uart) = Uart::ALL.get(source) {
            let (rx, tx) = (uart.rx_ready(), uart.tx_ready());
            r.set(Readiness::READABLE, rx);
            r.set(Readiness::WRITABLE, tx);
            // What is waited on and not there yet interrupts when it comes
            // (the handler masks it again).
            uart.arm(
                interest.contains(Events::READ) && !rx,
                interest.contains(Events::WRITE) && !tx,
            );
        } else if source == TIMER as usize {
            // Wrapping: "due" is at most 2^31 ticks in the past. The 1 ms
            // SysTick wakes the sleep: nothing to arm.
            r.set(
                Readiness::READABLE,
                (board::now().wrapping_sub(self.timer_due) as i32) >= 0,
            );
        }
        r
    }

    fn now(&mut self) -> Duration {
        board::uptime()
    }

    fn sleep(&mut self, _timeout: Option<Duration>) -> Result<(), Infallible> {
        // The 1 ms SysTick ends it at the latest: `Fixed` then checks the
        // time against its deadline.
        board::sleep_until_interrupt();
        Ok(())
    }
}

#[entry]
fn main() -> ! {
    // A `static` selector: its table is all zeros, so it costs `.bss`
    // only (no initializer image in flash).
    static mut SEL: Selector<Fixed<Board, SOURCES>, u16, 8> =
        Selector::new(Fixed::new(Board::new()));
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
    sel.backend_mut().sources_mut().timer_due = board::now().wrapping_add(IDLE_MS);
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
                sel.backend_mut().sources_mut().timer_due = board::now().wrapping_add(IDLE_MS);
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
