//! Two windows opened from the probe list: every tracepoint of the running
//! kernel (search, switch on), and the in-kernel process filter.

use crate::command::{Command, CommandQueue};
use crate::model::Model;
use crate::theme;
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
