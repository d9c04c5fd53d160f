//! The `wharf` binary: configuration → telemetry → app → run until stopped.
//! `wharf migrate|export|import` are the operator commands of `wharf::cli`.
//! `wharf openapi` prints the OpenAPI document instead (used to refresh `openapi/openapi.json`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        print!("{}", wharf::api::openapi::spec_json());
        return std::process::ExitCode::SUCCESS;
    }
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return healthcheck();
    }
    if wharf::cli::is_command(std::env::args().nth(1).as_deref()) {
        let code = wharf::cli::run(std::env::args().skip(1).collect()).await;
        // As below: skip the runtime teardown (the MongoDB pool's detached tasks).
        std::process::exit(code)
    }
    let config = match wharf::config::Config::from_process_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wharf: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    wharf::telemetry::init(&config);
    let app = match wharf::app::App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("wharf could not start: {e:#}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = match app.run_until_stopped().await {
        Ok(_) => 0,
        Err(e) => {
            tracing::error!("wharf stopped with an error: {e:#}");
            1
        }
    };
    // Everything is stopped or durable by now; exiting here skips the runtime teardown, in
    // which detached library tasks (the MongoDB pool) would panic on their closed channels.
    std::process::exit(code)
}

/// `wharf healthcheck`: for container healthchecks in images without curl. Asks the local
/// server (`PORT`, default 3000) for `/ping`, and for `/health` too when `WAHA_API_KEY`
/// is set; exit 0 only if every answer is 200.
fn healthcheck() -> std::process::ExitCode {
    use std::io::{Read, Write};
    let port = std::env::var("PORT")
        .or_else(|_| std::env::var("WHATSAPP_API_PORT"))
        .unwrap_or_else(|_| "3000".into());
    let key = std::env::var("WAHA_API_KEY").ok().filter(|k| !k.is_empty());
    let get = |path: &str| -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port.parse().unwrap_or(3000)))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(4)));
        let auth = key
            .as_deref()
            .map(|k| format!("X-Api-Key: {k}\r\n"))
            .unwrap_or_default();
        let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n");
        let mut head = [0u8; 12];
        s.write_all(req.as_bytes()).is_ok()
            && s.read_exact(&mut head).is_ok()
            && head.starts_with(b"HTTP/1.")
            && &head[9..12] == b"200"
    };
    let ok = get("/ping") && (key.is_none() || get("/health"));
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
