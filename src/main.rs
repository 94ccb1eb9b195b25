//! `lapor-bridge`: keeps a city's complaint center and SP4N-LAPOR! in step.
//! Everything lives in the library; this file only hands over to the CLI.

fn main() -> std::process::ExitCode {
    lapor_bridge::cli::main()
}
