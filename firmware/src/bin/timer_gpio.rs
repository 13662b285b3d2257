//! A blink timer and a button, with a `Selector` over a backend for this
//! board's SysTick clock and GPIO interrupt: blinks the status LED every
//! 50 ms, counts button presses, and first checks that the selector's
//! timeouts wait at least as long as asked on the 1 ms tick. Prints what
//! it did through semihosting; exits with status 0 when every check held.
//!
//! Run it (`-icount` makes QEMU's clock count instructions, so the tick
//! numbers printed are the same on every run):
//!
//! ```text
//! cd firmware && cargo build --release --bin timer_gpio
//! qemu-system-arm -machine lm3s6965evb -nographic -monitor none \
//!   -icount shift=4,sleep=off -semihosting-config enable=on,target=native \
//!   -kernel target/thumbv7m-none-eabi/release/timer_gpio
//! ```
//!
//! QEMU cannot press a button: the program pends port A's interrupt
//! itself after some blinks, and the same handler runs as for a pin.
#![no_std]
#![no_main]

use core::convert::Infallible;
use core::time::Duration;

use cortex_m_rt::entry;
use selectors2_core::{
    Backend, BackendSlot, EVENT_READ, Events, RawFd, Readiness, Ready, Selector, Tag,
};
use selectors2_firmware::{self as board, Console};

/// Readable once its deadline has passed; the application re-arms it.
const TIMER: RawFd = 0;
/// Readable while presses are counted and not taken.
const BUTTON: RawFd = 1;
const SOURCES: usize = 2;

const BLINK_MS: u32 = 50;
const BLINKS: u32 = 10;

/// The board as a readiness source: a software timer on the SysTick clock
/// and the button's press counter.
struct Board {
    interest: [Events; SOURCES],
    tags: [Tag; SOURCES],
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

    fn readable(&self, fd: RawFd) -> bool {
        match fd {
            // Wrapping: "due" is at most 2^31 ticks in the past.
            TIMER => (board::now().wrapping_sub(self.timer_due) as i32) >= 0,
            BUTTON => board::presses() > 0,
            _ => false,
        }
    }

    /// Reports each source that is readable and registered for READ;
    /// whether there was one.
    fn report_ready(&self, report: &mut impl FnMut(RawFd, Tag, Readiness)) -> bool {
        let mut any = false;
        for (fd, (interest, tag)) in self.interest.iter().zip(&self.tags).enumerate() {
            let fd = fd as RawFd;
            if interest.contains(Events::READ) && self.readable(fd) {
                report(fd, *tag, Readiness::READABLE);
                any = true;
            }
        }
        any
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
        // Tick edges to wait for: zero polls, `None` (or past 49 days)
        // waits until something is ready.
        let limit = match timeout {
            Some(t) if t.is_zero() => Some(0),
            Some(t) => board::timeout_ticks(t),
            None => None,
        };
        loop {
            // Masked from the check to the `WFI`: a press or tick after the
            // check stays pending and ends the `WFI` at once. The SysTick
            // and the button's interrupt are always enabled: nothing to arm.
            cortex_m::interrupt::disable();
            let any = self.report_ready(&mut report);
            let expired = limit.is_some_and(|n| board::now().wrapping_sub(start) >= n);
            if !any && !expired {
                cortex_m::asm::wfi();
            }
            // SAFETY: interrupts were enabled when `wait` was called.
            unsafe { cortex_m::interrupt::enable() };
            if any || expired {
                return Ok(());
            }
        }
    }
}

/// Which source a key is, kept as its data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Timer,
    Button,
}

#[entry]
fn main() -> ! {
    static mut SEL: Selector<Board, Source, 4> = Selector::new(Board::new());
    let sel = SEL;
    let mut out = Console::open();
    let Some(core) = cortex_m::Peripherals::take() else {
        board::exit(false);
    };
    board::start_clock(core.SYST);
    board::init_gpio();
    board::init_led();
    let mut ok = true;
    let mut ready: Ready<Source, 2> = Ready::new();

    // Timeouts with nothing ready: each waits at least what it asks
    // (rounded up to the 1 ms tick), one tick more at most.
    if sel.register(BUTTON, EVENT_READ, Source::Button).is_err() {
        board::exit(false);
    }
    for (micros, least) in [(0u32, 0), (1000, 1), (2500, 3), (10_000, 10)] {
        // Start on a tick edge, so that the count below is exact.
        let edge = board::now();
        while board::now() == edge {
            cortex_m::asm::wfi();
        }
        let start = board::now();
        let Ok(n) = sel.select(&mut ready, Some(Duration::from_micros(u64::from(micros))));
        let waited = board::now().wrapping_sub(start);
        let good = n == 0 && waited >= least && waited <= least + 1;
        ok &= good;
        out.print(b"timeout ");
        out.print_u32(micros);
        out.print(b" us: woke after ");
        out.print_u32(waited);
        out.print(if good { b" ms: ok\n" } else { b" ms: WRONG\n" });
    }

    let t0 = board::now();
    sel.backend_mut().timer_due = t0.wrapping_add(BLINK_MS);
    if sel.register(TIMER, EVENT_READ, Source::Timer).is_err() {
        board::exit(false);
    }
    let (mut blinks, mut presses) = (0u32, 0u32);
    while blinks < BLINKS {
        // No timeout: the blink timer ends every wait.
        let Ok(_) = sel.select(&mut ready, None);
        for (key, _) in &ready {
            match key.data {
                Source::Timer => {
                    blinks += 1;
                    board::set_led(blinks % 2 == 1);
                    let late = board::now().wrapping_sub(sel.backend().timer_due);
                    out.print(b"blink ");
                    out.print_u32(blinks);
                    out.print(b" at +");
                    out.print_u32(board::now().wrapping_sub(t0));
                    out.print(b" ms\n");
                    ok &= late == 0;
                    let due = sel.backend().timer_due.wrapping_add(BLINK_MS);
                    sel.backend_mut().timer_due = due;
                    if blinks == 3 || blinks == 6 {
                        board::press_button();
                    }
                }
                Source::Button => {
                    let n = board::take_presses();
                    presses += n;
                    out.print(b"button pressed ");
                    out.print_u32(n);
                    out.print(b" time(s)\n");
                }
            }
        }
    }
    out.print(b"blinked ");
    out.print_u32(blinks);
    out.print(b" times, ");
    out.print_u32(presses);
    out.print(b" presses\n");
    board::exit(ok && presses == 2);
}
