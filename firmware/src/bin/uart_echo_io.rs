//! `uart_echo` on the core's `embedded-io` backend
//! (`selectors2_core::embedded_io::IoBackend`): the UARTs are plain
//! `embedded-io` devices (`ReadReady + WriteReady`, as a HAL offers them),
//! and the board adds only a clock and a sleep. The idle limit is the
//! select's own timeout here: a select that returns nothing after 2 s
//! gives up. Same output and run command as `uart_echo` (with
//! `--bin uart_echo_io`).
#![no_std]
#![no_main]

use core::time::Duration;

use cortex_m_rt::entry;
use selectors2_core::embedded_io::{Clock, Devices, IoBackend};
use selectors2_core::{EVENT_READ, EVENT_WRITE, RawFd, Ready, Selector};
use selectors2_firmware::{self as board, Console, Echo, Uart};

/// The devices' "fds": UART 0, 1 and 2 are 0, 1 and 2.
const UARTS: usize = 3;

/// Nothing for this long ends the program with a failure.
const IDLE: Duration = Duration::from_secs(2);

/// The board's clock: the 1 ms SysTick count as a `Duration`
/// (`board::uptime`), and the sleep that loses no interrupt
/// (`board::sleep_until_interrupt`).
struct Ticks;

impl Clock for Ticks {
    const TICK: Duration = Duration::from_millis(1);

    fn now(&mut self) -> Duration {
        board::uptime()
    }

    fn sleep(&mut self, _timeout: Option<Duration>) {
        // A `read_ready` or `write_ready` that said "no" armed its UART's
        // interrupt; the 1 ms SysTick ends the sleep at the latest.
        board::sleep_until_interrupt();
    }
}

#[entry]
fn main() -> ! {
    // On the stack, not in a `static`: the devices hold their registers'
    // addresses, which are not zeros, so a `static` would be `.data`, an
    // initializer image in flash as large as the whole selector.
    let mut sel: Selector<IoBackend<Uart, Ticks, UARTS>, u16, 8> =
        Selector::new(IoBackend::new(Devices::new(Uart::ALL, Ticks)));
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

    let mut echo = [Echo::new(), Echo::new(), Echo::new()];
    let mut ready: Ready<u16, 4> = Ready::new();
    loop {
        // The backend cannot fail (`Infallible`): nothing to unwrap.
        let Ok(n) = sel.select(&mut ready, Some(IDLE));
        if n == 0 {
            console.print(b"no byte for 2 s: giving up\n");
            board::exit(false);
        }
        for (key, events) in &ready {
            let (Some(e), Some(&uart)) = (
                echo.get_mut(usize::from(key.data)),
                Uart::ALL.get(usize::from(key.data)),
            ) else {
                continue;
            };
            if events.contains(EVENT_READ) {
                e.receive(uart);
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
