//! `microscope`: the window, or `probes` / `watch` / `record` / `info` /
//! `export` / `profile` in a terminal.

use clap::Parser as _;
use microscope::cli::{Cli, CliCommand};
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match cli.command {
        None => match microscope::run_gui(cli.socket, cli.enable, cli.replay, cli.view, cli.select)
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("microscope: {err:#}");
                ExitCode::FAILURE
            }
        },
        Some(CliCommand::Probes {
            verifier_log: Some(probe),
        }) => match microscope::verifier_log(&cli.socket, &probe) {
            Ok(log) => {
                print!("{log}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("microscope: {err}");
                ExitCode::from(2)
            }
        },
        Some(CliCommand::Probes { verifier_log: None }) => {
            match microscope::probes_report(&cli.socket) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("microscope: {err}");
                    ExitCode::from(2)
                }
            }
        }
        Some(CliCommand::Watch { probes, seconds }) => {
            let mut stdout = std::io::stdout().lock();
            match microscope::run_watch(&cli.socket, &probes, seconds, &mut stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("microscope: {err}");
                    ExitCode::from(err.exit_code())
                }
            }
        }
        Some(CliCommand::Record {
            probes,
            seconds,
            output,
            force,
        }) => match microscope::run_record(&cli.socket, &probes, seconds, &output, force) {
            Ok(outcome) => {
                println!("{outcome}");
                match &outcome.stopped_early {
                    None => ExitCode::SUCCESS,
                    Some(reason) => {
                        eprintln!(
                            "microscope: the recording stopped early ({reason}); \
                             the file holds what arrived until then"
                        );
                        ExitCode::from(2)
                    }
                }
            }
            Err(err) => {
                eprintln!("microscope: {err}");
                ExitCode::from(err.exit_code())
            }
        },
        Some(CliCommand::NewPack { lang, dir }) => match microscope::new_pack(&dir, lang) {
            Ok(next) => {
                print!("{next}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("microscope: {err}");
                ExitCode::FAILURE
            }
        },
        Some(CliCommand::CheckPack { dir }) => match microscope::check_pack(&dir) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("microscope: {err}");
                ExitCode::FAILURE
            }
        },
        Some(CliCommand::Profile {
            seconds,
            pid,
            off_cpu,
            hz,
            output,
            force,
        }) => {
            let request = microscope::ProfileRequest {
                seconds,
                pid,
                off_cpu,
                hz,
                output,
                force,
            };
            let started = || {
                eprintln!("microscope: profiling {} for {seconds} s", request.probe());
            };
            match microscope::run_profile(&cli.socket, &request, started) {
                Ok(outcome) => {
                    if let Some(warning) = &outcome.warning {
                        eprintln!("microscope: warning: {warning}");
                    }
                    eprintln!("microscope: {outcome}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("microscope: {err}");
                    ExitCode::from(err.exit_code())
                }
            }
        }
        Some(CliCommand::Info { file }) => match microscope::info_report(&file) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("microscope: {err}");
                ExitCode::FAILURE
            }
        },
        Some(CliCommand::BenchFlame { stacks, frames }) => {
            let report =
                microscope::bench::flame_frame_times(&microscope::bench::FlameBenchOptions {
                    unique_stacks: stacks,
                    frames,
                    ..Default::default()
                });
            println!("{}", microscope::bench::report_json(&report));
            ExitCode::SUCCESS
        }
        Some(CliCommand::Export {
            file,
            format,
            output,
            force,
        }) => match microscope::run_export(&file, format, &output, force) {
            Ok(outcome) => {
                if let Some(warning) = &outcome.warning {
                    eprintln!("microscope: warning: {warning}");
                }
                if output != std::path::Path::new("-") {
                    eprintln!(
                        "microscope: exported {} events to {}",
                        outcome.events,
                        output.display()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("microscope: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
