//! The `wharf` binary: configuration → telemetry → app → run until stopped.
//! `wharf openapi` prints the OpenAPI document instead (used to refresh `openapi/openapi.json`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        print!("{}", wharf::api::openapi::spec_json());
        return std::process::ExitCode::SUCCESS;
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
