//! `uart_echo` without the selector: the same board, the same echo and
//! idle timer, the same output, as a hand-written flag loop. It exists to
//! measure what the selector costs in flash and RAM (`.ci/firmware` prints
//! both sizes); it runs under QEMU like the original.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use selectors2_firmware::{self as board, Console, Echo, Uart};

const IDLE_MS: u32 = 2000;

#[entry]
fn main() -> ! {
    let mut console = Console::open();
    let Some(core) = cortex_m::Peripherals::take() else {
        board::exit(false);
    };
    board::start_clock(core.SYST);
    for (i, uart) in Uart::ALL.iter().enumerate() {
        uart.init(i as u32);
    }
    let mut timer_due = board::now().wrapping_add(IDLE_MS);
    let mut echo = [Echo::new(), Echo::new(), Echo::new()];
    loop {
        // Masked from the check to the `WFI`, as in `uart_echo`'s backend.
        cortex_m::interrupt::disable();
        let mut any = false;
        for (uart, e) in Uart::ALL.iter().zip(&echo) {
            let (r, w) = (e.wants_read(), e.wants_write());
            uart.arm(r, w);
            any |= (r && uart.rx_ready()) || (w && uart.tx_ready());
        }
        let timed_out = (board::now().wrapping_sub(timer_due) as i32) >= 0;
        if !any && !timed_out {
            cortex_m::asm::wfi();
        }
        // SAFETY: interrupts were enabled before the masked check.
        unsafe { cortex_m::interrupt::enable() };
        if timed_out {
            console.print(b"no byte for 2 s: giving up\n");
            board::exit(false);
        }
        let mut all_done = true;
        for (uart, e) in Uart::ALL.iter().zip(&mut echo) {
            if e.wants_read() && uart.rx_ready() {
                e.receive(*uart);
                timer_due = board::now().wrapping_add(IDLE_MS);
            }
            if e.wants_write() && uart.tx_ready() {
                e.send(*uart);
            }
            all_done &= e.done();
        }
        if all_done {
            break;
        }
    }
    board::echoed_then_exit(&mut console, &echo);
}
