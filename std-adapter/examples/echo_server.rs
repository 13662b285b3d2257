//! A non-blocking TCP echo server on `DefaultSelector`: Python's
//! `selectors` quickstart, grown up.
//!
//! ```text
//! cargo run -p selectors2 --example echo_server -- 127.0.0.1:7878
//! ```
//!
//! Try it with `nc 127.0.0.1 7878`. It prints one line per connection
//! event and runs until interrupted.

#[path = "shared/echo.rs"]
#[allow(dead_code)] // the stop handle is for the loopback demo
mod echo;

use selectors2::sys::Auto;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let mut server = echo::EchoServer::<Auto, 1024>::bind(&addr, true)?;
    println!(
        "echo server on {} using {}",
        server.local_addr()?,
        server.backend_name()
    );
    server.run()?;
    Ok(())
}
