//! The `mockwa` binary: `mockwa --listen 127.0.0.1:0` serves the mock network
//! and prints exactly one line, `mockwa listening on HOST:PORT`, to stdout.
//! Runs until killed (SIGINT/SIGTERM or the parent closing).

use std::io::Write;

fn usage() -> ! {
    eprintln!("usage: mockwa [--listen HOST:PORT]   (default 127.0.0.1:0)");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut listen = "127.0.0.1:0".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or_else(|| usage()),
            "-h" | "--help" => usage(),
            other => match other.strip_prefix("--listen=") {
                Some(v) => listen = v.to_string(),
                None => usage(),
            },
        }
    }
    let net = match mockwa::MockNetwork::start(&listen).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("mockwa: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "mockwa listening on {}", net.addr());
    let _ = out.flush();
    drop(out);
    let _ = tokio::signal::ctrl_c().await;
    net.shutdown().await;
}
