//! `uart_echo` without the selector: the same board, the same echo and
//! idle timer, the same output, as a hand-written flag loop. It exists to
//! measure what the selector costs in flash and RAM (`.ci/firmware` prints
//! both sizes); it runs under QEMU like the original.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use selectors2_firmware::{self as board, Console, Uart};

const IDLE_MS: u32 = 2000;
const EOT: u8 = 0x04;

struct Echo {
    buf: [u8; 16],
    head: usize,
    len: usize,
    echoed: u32,
    eot: bool,
}

impl Echo {
    const fn new() -> Echo {
        Echo {
            buf: [0; 16],
            head: 0,
            len: 0,
            echoed: 0,
            eot: false,
        }
    }

    fn receive(&mut self, uart: Uart) {
        while self.len < self.buf.len() && uart.rx_ready() {
            let byte = uart.read();
            if let Some(slot) = self.buf.get_mut((self.head + self.len) % 16) {
                *slot = byte;
            }
            self.len += 1;
            self.eot |= byte == EOT;
        }
    }

    fn send(&mut self, uart: Uart) {
        while self.len > 0 && uart.tx_ready() {
            uart.write(self.buf.get(self.head).copied().unwrap_or(0));
            self.head = (self.head + 1) % 16;
            self.len -= 1;
            self.echoed += 1;
        }
    }

    fn done(&self) -> bool {
        self.eot && self.len == 0
    }

    fn wants_read(&self) -> bool {
        !self.eot && self.len < self.buf.len()
    }

    fn wants_write(&self) -> bool {
        self.len > 0
    }
}

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
    for (i, e) in echo.iter().enumerate() {
        console.print(b"uart");
        console.print_u32(i as u32);
        console.print(b": echoed ");
        console.print_u32(e.echoed);
        console.print(b" bytes\n");
    }
    board::exit(true);
}
