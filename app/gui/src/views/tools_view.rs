//! Windows opened from the probe list: every tracepoint of the running
//! kernel (search, switch on), kernel and user functions to probe, and the
//! in-kernel process filter.

use crate::command::{Command, CommandQueue};
use crate::theme;
use microscope_model::Model;
use microscope_wire::ProcessFilter;

/// Most tracepoints listed at once; the search narrows the rest.
const LISTED: usize = 200;

/// State of the two tool windows.
#[derive(Debug, Default)]
pub struct ToolsState {
    /// The tracepoint browser is open.
    pub browser_open: bool,
    /// Its search box.
    pub browser_query: String,
    /// The process filter window is open.
    pub filter_open: bool,
    /// The filter form: pid, command, cgroup id, as typed.
    pub form: [String; 3],
    /// Why the form could not be applied.
    pub form_error: Option<String>,
    /// The function picker is open.
    pub functions_open: bool,
    /// Kernel function search.
    pub kernel_query: String,
    /// User binary path and symbol search.
    pub binary: String,
    /// Symbol search in the binary.
    pub symbol_query: String,
    /// The binary's matching symbols, or why they could not be read.
    pub symbols: Option<Result<(Vec<String>, bool), String>>,
}

/// The buttons that open the windows, for the probe list.
pub fn tools_buttons_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &mut ToolsState,
    commands: &mut CommandQueue,
) {
    ui.horizontal_wrapped(|ui| {
        let live = model.is_connected();
        if ui
            .add_enabled(live, egui::Button::new("All tracepoints…"))
            .on_disabled_hover_text("Needs a connection to the helper.")
            .clicked()
        {
            state.browser_open = true;
            if model.tracepoints.is_empty() {
                commands.send(Command::ListTracepoints);
            }
        }
        if ui
            .add_enabled(live, egui::Button::new("Functions…"))
            .on_disabled_hover_text("Needs a connection to the helper.")
            .clicked()
        {
            state.functions_open = true;
        }
        let label = if model.filter.is_empty() {
            "Process filter…".to_owned()
        } else {
            format!("Filter: {}", model.filter)
        };
        if ui
            .add_enabled(live, egui::Button::new(label))
            .on_disabled_hover_text("Needs a connection to the helper.")
            .clicked()
        {
            state.filter_open = true;
        }
    });
}

/// Draws the open windows.
pub fn tools_windows_ui(
    ctx: &egui::Context,
    model: &Model,
    state: &mut ToolsState,
    commands: &mut CommandQueue,
) {
    let mut open = state.browser_open;
    egui::Window::new("All tracepoints")
        .open(&mut open)
        .default_size([420.0, 480.0])
        .show(ctx, |ui| browser_ui(ui, model, state, commands));
    state.browser_open = open;
    let mut open = state.functions_open;
    egui::Window::new("Functions")
        .open(&mut open)
        .default_size([440.0, 520.0])
        .show(ctx, |ui| functions_ui(ui, model, state, commands));
    state.functions_open = open;
    let mut open = state.filter_open;
    egui::Window::new("Process filter")
        .open(&mut open)
        .resizable(false)
        .show(ctx, |ui| filter_ui(ui, model, state, commands));
    state.filter_open = open;
}

fn browser_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &mut ToolsState,
    commands: &mut CommandQueue,
) {
    ui.label(format!(
        "{} tracepoints on this kernel. Switching one on decodes every field \
         from its format file.",
        model.tracepoints.len()
    ));
    ui.add(
        egui::TextEdit::singleline(&mut state.browser_query)
            .hint_text("Search, e.g. block_rq or tcp_")
            .desired_width(f32::INFINITY),
    );
    if model.tracepoints.is_empty() {
        ui.weak("Asking the helper…");
        return;
    }
    let query = state.browser_query.trim().to_lowercase();
    let matches: Vec<&String> = model
        .tracepoints
        .iter()
        .filter(|t| query.is_empty() || t.to_lowercase().contains(&query))
        .collect();
    ui.add_space(theme::SECTION_GAP);
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for id in matches.iter().take(LISTED) {
                let mut on = model.wanted.contains(id.as_str());
                if ui.checkbox(&mut on, id.as_str()).changed() {
                    commands.send(Command::SetProbeEnabled {
                        probe: (*id).clone(),
                        enabled: on,
                    });
                }
            }
            if matches.len() > LISTED {
                ui.weak(format!(
                    "and {} more: narrow the search",
                    matches.len() - LISTED
                ));
            }
        });
}

/// Most symbols listed from one binary.
const SYMBOLS_LISTED: usize = 300;

fn functions_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &mut ToolsState,
    commands: &mut CommandQueue,
) {
    ui.label(
        "Count calls and time each one from entry to return, in the kernel: \
         a call rate on the timeline and a latency histogram under Rates.",
    );
    if let Some(helper) = &model.helper {
        let kernel_ok = helper
            .capabilities
            .iter()
            .any(|c| (c.name == "kprobes" || c.name == "fentry") && c.available);
        if !kernel_ok {
            ui.colored_label(
                theme::WARNING,
                "This kernel lets no probe reach kernel functions (no kprobes, fentry refused); \
                 user functions still work.",
            );
        }
    }
    ui.add_space(theme::SECTION_GAP);
    ui.strong("Kernel function");
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut state.kernel_query)
                .hint_text("e.g. vfs_read or tcp_send")
                .desired_width(240.0),
        );
        if ui.button("Search").clicked() && !state.kernel_query.trim().is_empty() {
            commands.send(Command::ListKernelFunctions(
                state.kernel_query.trim().to_owned(),
            ));
        }
    });
    if let Some((query, names, truncated)) = &model.kernel_functions {
        ui.weak(format!(
            "{}{} functions contain `{query}`",
            names.len(),
            if *truncated { "+" } else { "" }
        ));
        egui::ScrollArea::vertical()
            .id_salt("kernel-functions")
            .max_height(160.0)
            .show(ui, |ui| {
                for name in names {
                    probe_toggle(ui, model, format!("func:{name}"), commands);
                }
            });
    }
    ui.add_space(theme::SECTION_GAP);
    ui.strong("Function of a program or library");
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut state.binary)
                .hint_text("/usr/bin/bash or /lib/x86_64-linux-gnu/libc.so.6")
                .desired_width(300.0),
        );
    });
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut state.symbol_query)
                .hint_text("symbol contains, e.g. readline")
                .desired_width(200.0),
        );
        if ui.button("List symbols").clicked() {
            state.symbols = Some(list_symbols(&state.binary, &state.symbol_query));
        }
    });
    match &state.symbols {
        Some(Ok((names, truncated))) => {
            ui.weak(format!(
                "{}{} function symbols",
                names.len(),
                if *truncated { "+" } else { "" }
            ));
            let binary = state.binary.trim().to_owned();
            egui::ScrollArea::vertical()
                .id_salt("binary-symbols")
                .max_height(160.0)
                .show(ui, |ui| {
                    for name in names {
                        probe_toggle(ui, model, format!("uprobe:{binary}:{name}"), commands);
                    }
                });
        }
        Some(Err(err)) => {
            ui.colored_label(theme::WARNING, err);
        }
        None => {}
    }
}

/// The function symbols of `binary` containing `query`; an error is a
/// sentence. Read here, with the user's own rights, never by the helper.
pub fn list_symbols(binary: &str, query: &str) -> Result<(Vec<String>, bool), String> {
    let binary = binary.trim();
    if !binary.starts_with('/') {
        return Err("give the binary's absolute path, e.g. /usr/bin/bash".to_owned());
    }
    microscope_catalogue::targets::binary_symbols(
        std::path::Path::new(binary),
        query.trim(),
        SYMBOLS_LISTED,
    )
}

fn probe_toggle(ui: &mut egui::Ui, model: &Model, id: String, commands: &mut CommandQueue) {
    let mut on = model.wanted.contains(&id);
    if ui.checkbox(&mut on, &id).changed() {
        commands.send(Command::SetProbeEnabled {
            probe: id,
            enabled: on,
        });
    }
}

/// Reads the filter form; an error is a sentence naming the bad field.
pub fn parse_filter(form: &[String; 3]) -> Result<ProcessFilter, String> {
    let [pid, comm, cgroup] = form.each_ref().map(|s| s.trim());
    let pid = match pid {
        "" => None,
        text => Some(
            text.parse::<u32>()
                .map_err(|_| format!("`{text}` is not a process id (a whole number)"))?,
        ),
    };
    let comm = match comm {
        "" => None,
        text if text.len() > 15 => {
            return Err(format!(
                "`{text}` is longer than the 15 bytes the kernel keeps of a command name"
            ));
        }
        text => Some(text.to_owned()),
    };
    let cgroup = match cgroup {
        "" => None,
        text => Some(text.parse::<u64>().map_err(|_| {
            format!("`{text}` is not a cgroup id (the inode number of its directory, `stat -c %i`)")
        })?),
    };
    Ok(ProcessFilter { pid, comm, cgroup })
}

fn filter_ui(
    ui: &mut egui::Ui,
    model: &Model,
    state: &mut ToolsState,
    commands: &mut CommandQueue,
) {
    ui.label(
        "Keep only events of matching tasks. The kernel applies it, so filtered-out \
         events cost almost nothing. It applies to every client of the helper.",
    );
    ui.label(format!("Now: {}", model.filter));
    egui::Grid::new("filter-form")
        .num_columns(2)
        .show(ui, |ui| {
            for (i, (label, hint)) in [
                ("Process id", "e.g. 1234"),
                ("Command", "e.g. postgres"),
                ("cgroup id", "e.g. 4026"),
            ]
            .into_iter()
            .enumerate()
            {
                ui.label(label);
                ui.add(egui::TextEdit::singleline(&mut state.form[i]).hint_text(hint));
                ui.end_row();
            }
        });
    ui.horizontal(|ui| {
        if ui.button("Apply").clicked() {
            match parse_filter(&state.form) {
                Ok(filter) => {
                    state.form_error = None;
                    commands.send(Command::SetFilter(filter));
                }
                Err(err) => state.form_error = Some(err),
            }
        }
        if ui.button("Clear").clicked() {
            state.form = Default::default();
            state.form_error = None;
            commands.send(Command::SetFilter(ProcessFilter::default()));
        }
    });
    if let Some(err) = &state.form_error {
        ui.colored_label(theme::WARNING, err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pid: &str, comm: &str, cgroup: &str) -> [String; 3] {
        [pid.into(), comm.into(), cgroup.into()]
    }

    #[test]
    fn symbols_are_listed_from_this_test_binary() {
        let exe = std::env::current_exe().expect("test binary");
        let (names, _) = list_symbols(exe.to_str().expect("utf-8 path"), "main").expect("symbols");
        assert!(names.iter().any(|n| n == "main"), "{names:?}");
        let err = list_symbols("bash", "").expect_err("relative");
        assert!(err.contains("absolute path"), "{err}");
        let err = list_symbols("/no/such/binary", "").expect_err("missing");
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn the_form_becomes_a_filter_or_a_sentence() {
        assert_eq!(
            parse_filter(&form("", "", "")),
            Ok(ProcessFilter::default())
        );
        assert_eq!(
            parse_filter(&form(" 42 ", "cat", "7")),
            Ok(ProcessFilter {
                pid: Some(42),
                comm: Some("cat".into()),
                cgroup: Some(7),
            })
        );
        let err = parse_filter(&form("abc", "", "")).unwrap_err();
        assert!(err.contains("`abc` is not a process id"), "{err}");
        let err = parse_filter(&form("", "a-name-far-too-long", "")).unwrap_err();
        assert!(err.contains("15 bytes"), "{err}");
        let err = parse_filter(&form("", "", "-1")).unwrap_err();
        assert!(err.contains("cgroup id"), "{err}");
    }
}
