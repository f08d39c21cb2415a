use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,refinery_core=warn"),
    )
    .init();
    tollgate::cli::run()
}
