//! Board support for the Stellaris LM3S6965 evaluation board (Cortex-M3),
//! the board `qemu-system-arm -machine lm3s6965evb` emulates: what a
//! peripheral access crate and a HAL give a real project, cut down to what
//! the programs in `src/bin/` use.
//!
//! * three UARTs (PL011) driven by polling their flag registers, with
//!   interrupts that only wake the core: a handler masks its UART's
//!   interrupt and leaves the data to the main loop;
//! * a 1 ms SysTick clock ([`now`]) and the one conversion from a
//!   [`Duration`] timeout to ticks ([`timeout_ticks`]);
//! * GPIO port A's interrupt counted as button presses ([`presses`]);
//! * output and the exit status through semihosting ([`Console`], [`exit`]).
//!
//! The programs themselves hold what a firmware engineer copies: a
//! [`Backend`](selectors2_core::Backend) for the board and the main loop.
#![no_std]

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::time::Duration;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use cortex_m_semihosting::{debug, hio};

/// The system clock QEMU's LM3S6965 runs at out of reset.
pub const SYSCLK_HZ: u32 = 12_000_000;

/// The interrupts the programs use (the LM3S6965's numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Irq {
    /// GPIO port A.
    GpioA = 0,
    /// UART 0.
    Uart0 = 5,
    /// UART 1.
    Uart1 = 6,
    /// UART 2.
    Uart2 = 33,
}

// SAFETY: each number is the LM3S6965's for that interrupt, and below its 38.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

/// One entry of the vector table.
pub union Vector {
    handler: unsafe extern "C" fn(),
    reserved: usize,
}

unsafe extern "C" {
    fn DefaultHandler();
}

/// The device part of the vector table: the four interrupts above, every
/// other one to cortex-m-rt's `DefaultHandler` (reserved ones 0).
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
pub static __INTERRUPTS: [Vector; 34] = {
    const D: Vector = Vector {
        handler: DefaultHandler,
    };
    let mut v = [D; 34];
    v[0] = Vector { handler: GPIOA };
    v[5] = Vector { handler: UART0 };
    v[6] = Vector { handler: UART1 };
    v[33] = Vector { handler: UART2 };
    // Reserved on the LM3S6965.
    v[12] = Vector { reserved: 0 };
    v[16] = Vector { reserved: 0 };
    v
};

const RCGC1: usize = 0x400F_E104;
const RCGC2: usize = 0x400F_E108;

fn reg(addr: usize) -> u32 {
    // SAFETY: every address passed here is a memory-mapped register of the
    // LM3S6965, always readable.
    unsafe { read_volatile(addr as *const u32) }
}

fn set_reg(addr: usize, value: u32) {
    // SAFETY: as in `reg`; the register's side effects are the caller's
    // intent.
    unsafe { write_volatile(addr as *mut u32, value) }
}

/// A PL011 UART of the LM3S6965, 8N1, FIFOs off (one byte each way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    base: usize,
    irq: Irq,
}

const DR: usize = 0x000;
const FR: usize = 0x018;
const IBRD: usize = 0x024;
const FBRD: usize = 0x028;
const LCRH: usize = 0x02C;
const CTL: usize = 0x030;
const IM: usize = 0x038;
const ICR: usize = 0x044;
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const IM_RX: u32 = 1 << 4;
const IM_TX: u32 = 1 << 5;

impl Uart {
    /// The board's three UARTs.
    pub const ALL: [Uart; 3] = [
        Uart {
            base: 0x4000_C000,
            irq: Irq::Uart0,
        },
        Uart {
            base: 0x4000_D000,
            irq: Irq::Uart1,
        },
        Uart {
            base: 0x4000_E000,
            irq: Irq::Uart2,
        },
    ];

    /// Clocks it, sets 115200 8N1 without FIFOs, enables it with its
    /// interrupts masked, and unmasks its line at the NVIC (the UART's own
    /// mask decides from then on).
    pub fn init(self, index: u32) {
        set_reg(RCGC1, reg(RCGC1) | 1 << index);
        set_reg(self.base + CTL, 0);
        // 12 MHz / (16 * 115200) = 6.51: integer 6, fraction 0.51 * 64 = 33.
        set_reg(self.base + IBRD, 6);
        set_reg(self.base + FBRD, 33);
        set_reg(self.base + LCRH, 0x60);
        set_reg(self.base + IM, 0);
        set_reg(self.base + ICR, 0x7F0);
        set_reg(self.base + CTL, 1 | 1 << 8 | 1 << 9);
        // SAFETY: the UART's own interrupt mask is 0, so unmasking its line
        // starts no handler until a backend arms it.
        unsafe { NVIC::unmask(self.irq) };
    }

    /// Whether a received byte is waiting (level: until it is read).
    #[inline]
    pub fn rx_ready(self) -> bool {
        reg(self.base + FR) & FR_RXFE == 0
    }

    /// Whether the transmitter takes a byte now.
    #[inline]
    pub fn tx_ready(self) -> bool {
        reg(self.base + FR) & FR_TXFF == 0
    }

    /// The received byte (check [`rx_ready`](Self::rx_ready) first).
    #[inline]
    pub fn read(self) -> u8 {
        reg(self.base + DR) as u8
    }

    /// Sends `byte` (check [`tx_ready`](Self::tx_ready) first).
    #[inline]
    pub fn write(self, byte: u8) {
        set_reg(self.base + DR, u32::from(byte));
    }

    /// Lets a byte received (`rx`) or room to send (`tx`) interrupt, so
    /// that a `WFI` wakes for it. The handler masks both again.
    #[inline]
    pub fn arm(self, rx: bool, tx: bool) {
        let mut mask = 0;
        if rx {
            mask |= IM_RX;
        }
        if tx {
            mask |= IM_TX;
        }
        set_reg(self.base + IM, mask);
    }

    fn disarm(self) {
        set_reg(self.base + IM, 0);
    }
}

/// The UART as an `embedded-io` device, as a HAL's driver would offer it.
/// Asking whether it is ready, and hearing "no", arms its interrupt for
/// that direction, so that a sleep after the question ends when the byte
/// (or the room) comes: the question is the registration.
impl embedded_io::ErrorType for Uart {
    type Error = core::convert::Infallible;
}

impl embedded_io::ReadReady for Uart {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        let ready = self.rx_ready();
        if !ready {
            set_reg(self.base + IM, reg(self.base + IM) | IM_RX);
        }
        Ok(ready)
    }
}

impl embedded_io::WriteReady for Uart {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        let ready = self.tx_ready();
        if !ready {
            set_reg(self.base + IM, reg(self.base + IM) | IM_TX);
        }
        Ok(ready)
    }
}

/// A UART's interrupt only wakes the core: mask it (the line drops) and
/// leave the byte to the main loop, which finds it by polling the flags.
#[unsafe(no_mangle)]
extern "C" fn UART0() {
    Uart::ALL[0].disarm();
    WOKEN.store(true, Ordering::Relaxed);
}

#[unsafe(no_mangle)]
extern "C" fn UART1() {
    Uart::ALL[1].disarm();
    WOKEN.store(true, Ordering::Relaxed);
}

#[unsafe(no_mangle)]
extern "C" fn UART2() {
    Uart::ALL[2].disarm();
    WOKEN.store(true, Ordering::Relaxed);
}

/// Set by every interrupt handler: something may have changed.
static WOKEN: AtomicBool = AtomicBool::new(false);

/// Sleeps until an interrupt, unless one came since the last call: for a
/// backend that checks its sources *before* it sleeps (as
/// `selectors2_core::Fixed` does), the interrupt that came between the
/// check and the sleep has set the flag, so the sleep returns at once
/// instead of waiting for the next one. The flag is tested and cleared
/// with interrupts masked, and `WFI` runs still masked (a pending
/// interrupt ends it); the handler runs once they are unmasked.
pub fn sleep_until_interrupt() {
    cortex_m::interrupt::disable();
    if !WOKEN.swap(false, Ordering::Relaxed) {
        cortex_m::asm::wfi();
    }
    // SAFETY: called with interrupts enabled (from a main loop).
    unsafe { cortex_m::interrupt::enable() };
}

static TICKS: AtomicU32 = AtomicU32::new(0);
/// How often `TICKS` wrapped (every 49.7 days).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes: a load and a store cannot lose a tick.
    let ticks = TICKS.load(Ordering::Relaxed).wrapping_add(1);
    if ticks == 0 {
        WRAPS.store(
            WRAPS.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }
    TICKS.store(ticks, Ordering::Relaxed);
    WOKEN.store(true, Ordering::Relaxed);
}

/// Starts the 1 ms SysTick (its interrupt also ends every `WFI`).
pub fn start_clock(mut syst: cortex_m::peripheral::SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSCLK_HZ / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since [`start_clock`], wrapping after 49 days (compare
/// with `wrapping_sub`).
#[inline]
pub fn now() -> u32 {
    TICKS.load(Ordering::Relaxed)
}

/// The time since [`start_clock`], for a backend that keeps deadlines as
/// `Duration`s (`selectors2_core::Fixed`): the tick count, extended past
/// its wrap, converted without a 64-bit division (which a Cortex-M3 does
/// in a library call of a kilobyte): 2^32 ms is 4,294,967 s and 296 ms.
pub fn uptime() -> Duration {
    let (wraps, ms) = loop {
        let wraps = WRAPS.load(Ordering::Relaxed);
        let ms = TICKS.load(Ordering::Relaxed);
        // A wrap between the two loads: read again.
        if WRAPS.load(Ordering::Relaxed) == wraps {
            break (wraps, ms);
        }
    };
    let extra_ms = wraps.wrapping_mul(296) + ms % 1000;
    let secs = u64::from(wraps) * 4_294_967 + u64::from(ms / 1000) + u64::from(extra_ms / 1000);
    Duration::new(secs, extra_ms % 1000 * 1_000_000)
}

/// How many tick edges a wait of `timeout` must see: a timeout that is not
/// a whole number of milliseconds rounds up (never to zero), and one more
/// tick, since the tick under way when the wait starts is partly gone
/// already. `None` for a timeout past what a `u32` of ticks holds (49
/// days): wait as long as the caller's `None` would.
///
/// In `u64` and `u32` only: a `Duration`'s `as_millis` is a `u128`, whose
/// division a 32-bit core does in a library call.
#[inline]
pub fn timeout_ticks(timeout: Duration) -> Option<u32> {
    let ms = timeout
        .as_secs()
        .checked_mul(1000)?
        .checked_add(u64::from(timeout.subsec_nanos().div_ceil(1_000_000)))?;
    u32::try_from(ms).ok()?.checked_add(1)
}

const GPIOA_BASE: usize = 0x4000_4000;
const GPIO_ICR: usize = 0x41C;

static PRESSES: AtomicU32 = AtomicU32::new(0);

/// Port A's interrupt: a button press, counted until the main loop takes it.
#[unsafe(no_mangle)]
extern "C" fn GPIOA() {
    set_reg(GPIOA_BASE + GPIO_ICR, 0xFF);
    PRESSES.store(
        PRESSES.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    WOKEN.store(true, Ordering::Relaxed);
}

/// Clocks GPIO ports A and F and unmasks port A's interrupt.
pub fn init_gpio() {
    set_reg(RCGC2, reg(RCGC2) | 1 | 1 << 5);
    // SAFETY: the handler only counts and acknowledges.
    unsafe { NVIC::unmask(Irq::GpioA) };
}

/// Presses counted by port A's interrupt and not yet [taken](take_presses).
#[inline]
pub fn presses() -> u32 {
    PRESSES.load(Ordering::Relaxed)
}

/// Takes the presses counted so far (with interrupts masked, so that none
/// is lost between the read and the reset).
pub fn take_presses() -> u32 {
    cortex_m::interrupt::free(|_| PRESSES.swap(0, Ordering::Relaxed))
}

/// Presses the button: QEMU cannot, so the program pends port A's
/// interrupt itself, and the same handler runs as for a pin's edge.
pub fn press_button() {
    NVIC::pend(Irq::GpioA);
}

const LED_PF0: usize = 0x4002_5000 + (1 << 2);
const GPIOF_DIR: usize = 0x4002_5400;
const GPIOF_DEN: usize = 0x4002_551C;

/// The board's status LED (PF0) as an output.
pub fn init_led() {
    set_reg(GPIOF_DIR, reg(GPIOF_DIR) | 1);
    set_reg(GPIOF_DEN, reg(GPIOF_DEN) | 1);
}

/// Lights the LED or puts it out.
pub fn set_led(on: bool) {
    set_reg(LED_PF0, u32::from(on));
}

/// The host's standard output, through semihosting.
#[derive(Clone, Copy)]
pub struct Console(Option<hio::HostStream>);

impl Console {
    /// Opens the host's standard output (output is dropped if there is no
    /// debugger or emulator to take it).
    pub fn open() -> Console {
        Console(hio::hstdout().ok())
    }

    /// Writes `bytes`.
    pub fn print(&mut self, bytes: &[u8]) {
        if let Some(out) = &mut self.0 {
            let _ = out.write_all(bytes);
        }
    }

    /// Writes `n` in decimal (without `core::fmt`, which costs kilobytes).
    pub fn print_u32(&mut self, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || at == 0 {
                break;
            }
        }
        self.print(digits.get(at..).unwrap_or_default());
    }
}

/// Ends the program: QEMU exits with status 0 when `ok`, 1 otherwise.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Without a debugger, semihosting returns: stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// End of a UART's input.
pub const EOT: u8 = 0x04;

/// One UART's echo, the same in every echo program (with the selector
/// and without): bytes received and not yet sent back, until [`EOT`].
pub struct Echo {
    buf: [u8; 16],
    head: usize,
    len: usize,
    /// Bytes sent back so far.
    pub echoed: u32,
    eot: bool,
}

impl Echo {
    pub const fn new() -> Echo {
        Echo {
            buf: [0; 16],
            head: 0,
            len: 0,
            echoed: 0,
            eot: false,
        }
    }

    pub fn receive(&mut self, uart: Uart) {
        while self.len < self.buf.len() && uart.rx_ready() {
            let byte = uart.read();
            if let Some(slot) = self.buf.get_mut((self.head + self.len) % 16) {
                *slot = byte;
            }
            self.len += 1;
            self.eot |= byte == EOT;
        }
    }

    pub fn send(&mut self, uart: Uart) {
        while self.len > 0 && uart.tx_ready() {
            uart.write(self.buf.get(self.head).copied().unwrap_or(0));
            self.head = (self.head + 1) % 16;
            self.len -= 1;
            self.echoed += 1;
        }
    }

    /// Finished: EOT received and everything sent back.
    pub fn done(&self) -> bool {
        self.eot && self.len == 0
    }

    /// Room to receive, until EOT.
    pub fn wants_read(&self) -> bool {
        !self.eot && self.len < self.buf.len()
    }

    /// Bytes to send back.
    pub fn wants_write(&self) -> bool {
        self.len > 0
    }

    /// What to wait for next, as a selector's interest.
    pub fn interest(&self) -> selectors2_core::Events {
        let mut events = selectors2_core::Events::empty();
        events.set(selectors2_core::EVENT_READ, self.wants_read());
        events.set(selectors2_core::EVENT_WRITE, self.wants_write());
        events
    }
}

/// The end of every echo program: how many bytes each UART had echoed,
/// then a successful exit.
pub fn echoed_then_exit(console: &mut Console, echo: &[Echo]) -> ! {
    for (i, e) in echo.iter().enumerate() {
        console.print(b"uart");
        console.print_u32(i as u32);
        console.print(b": echoed ");
        console.print_u32(e.echoed);
        console.print(b" bytes\n");
    }
    exit(true)
}

impl Default for Echo {
    fn default() -> Self {
        Self::new()
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // `.ci/firmware` checks that no program links this: nothing panics.
    exit(false)
}
