//! The probe list: one checkbox per probe, grouped by kernel subsystem.

use crate::command::{Command, CommandQueue};
use crate::theme;
use microscope_model::Model;
use microscope_model::Probe;
use microscope_model::map::SubsystemMap;
use std::collections::BTreeMap;

/// A catalogue this short is shown with every group open.
const SHOW_ALL_UP_TO: usize = 12;

/// Draws the probe list, filtered by `filter` (matched against ids and
/// descriptions). Subsystems show under their catalogue names; a group
/// opens by itself while the filter is set, when one of its probes is on,
/// or when the whole list is short enough to show at once.
pub fn probes_ui(
    ui: &mut egui::Ui,
    model: &Model,
    map: &SubsystemMap,
    filter: &mut String,
    show_cost: bool,
    commands: &mut CommandQueue,
) {
    ui.heading("Probes");
    ui.add_space(theme::SECTION_GAP);
    if model.probes.is_empty() {
        ui.weak("No probes yet: the list comes from the helper once it is connected.");
        return;
    }
    cost_toggle_ui(ui, model, show_cost, commands);
    ui.add(
        egui::TextEdit::singleline(filter)
            .hint_text("Filter probes")
            .desired_width(f32::INFINITY),
    );
    let needle = filter.trim().to_lowercase();
    let mut by_subsystem = BTreeMap::<&str, Vec<&Probe>>::new();
    for probe in &model.probes {
        if needle.is_empty()
            || probe.id.to_lowercase().contains(&needle)
            || probe.description.to_lowercase().contains(&needle)
        {
            let name = map
                .subsystem(&probe.subsystem)
                .map_or(probe.subsystem.as_str(), |s| s.name.as_str());
            by_subsystem.entry(name).or_default().push(probe);
        }
    }
    if by_subsystem.is_empty() {
        ui.weak(format!("No probe matches `{}`.", filter.trim()));
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for (subsystem, probes) in by_subsystem {
                let active = probes.iter().any(|p| model.wanted.contains(&p.id))
                    || model.probes.len() <= SHOW_ALL_UP_TO;
                egui::CollapsingHeader::new(format!("{subsystem} ({})", probes.len()))
                    .id_salt(subsystem)
                    .default_open(active)
                    .open((!needle.is_empty()).then_some(true))
                    .show(ui, |ui| {
                        for probe in probes {
                            probe_checkbox_ui(ui, model, probe, commands);
                            crate::views::probe_cost_line_ui(ui, model, probe);
                        }
                    });
            }
        });
}

/// One probe's checkbox (greyed out with the reason when unavailable, read-
/// only in a replay).
pub(crate) fn probe_checkbox_ui(
    ui: &mut egui::Ui,
    model: &Model,
    probe: &Probe,
    commands: &mut CommandQueue,
) {
    if model.is_replay() {
        // A recording holds what it holds: show it, but nothing to toggle.
        let mut recorded = probe.enabled;
        ui.add_enabled(false, egui::Checkbox::new(&mut recorded, &probe.id))
            .on_disabled_hover_text(format!(
                "{}
{} Press Go live to choose probes on your own kernel.",
                probe.description,
                if recorded {
                    "Recorded."
                } else {
                    "Not in this recording."
                }
            ));
        return;
    }
    let wanted = model.wanted.contains(&probe.id);
    let mut checked = wanted;
    let response = match &probe.unavailable_reason {
        None => ui.checkbox(&mut checked, &probe.id).on_hover_text(format!(
            "{}\n{}",
            probe.description,
            kind_note(probe)
        )),
        Some(reason) => {
            let response = ui
                .add_enabled(false, egui::Checkbox::new(&mut checked, &probe.id))
                .on_disabled_hover_text(format!("Unavailable on this kernel: {reason}"));
            if crate::views::has_verifier_log(probe) {
                crate::views::verifier_log_button_ui(ui, probe, commands);
            }
            response
        }
    };
    if response.changed() && checked != wanted {
        commands.send(Command::SetProbeEnabled {
            probe: probe.id.clone(),
            enabled: checked,
        });
    }
}

/// "Show cost": what each enabled probe costs, under its checkbox, and the
/// helper's own CPU and memory (live only).
fn cost_toggle_ui(ui: &mut egui::Ui, model: &Model, show_cost: bool, commands: &mut CommandQueue) {
    if model.is_replay() {
        return;
    }
    let mut shown = show_cost;
    if ui
        .checkbox(&mut shown, "Show cost")
        .on_hover_text(
            "Measure what each probe costs the kernel (BPF run time per run, share of a CPU,              events/s, ring-buffer fill, drops). The kernel's run-time statistics stay on only              while you look; the Cost tab shows more.",
        )
        .changed()
    {
        commands.send(Command::ShowCost(shown));
    }
    if show_cost && let Some(latest) = model.cost.latest() {
        ui.label(egui::RichText::new(latest.helper_summary()).weak());
        if let Err(reason) = &latest.run_times {
            ui.label(egui::RichText::new(reason).color(theme::WARNING));
        }
    }
}

fn kind_note(probe: &Probe) -> &'static str {
    use microscope_model::ProbeKind;
    match probe.kind {
        ProbeKind::Stream => "Streams every event.",
        ProbeKind::SyscallCounts => "Counts syscalls in the kernel; the timeline shows syscalls/s.",
        ProbeKind::SyscallLatency => "Measures syscall latency in the kernel; see the histogram.",
        ProbeKind::Fields => "Streams every event with all its fields; see the event inspector.",
        ProbeKind::Function => {
            "Counts calls and entry-to-exit time in the kernel; the timeline shows calls/s."
        }
        ProbeKind::Stacks => "Counts stacks in the kernel; see the flame graph.",
        ProbeKind::Pack => {
            "A pack's own BPF programs: counters, histograms and stack counts read from its \
             maps, counted in the kernel for every client of the helper (machine-wide); see \
             the Pack data tab and, for stacks, the flame graph."
        }
        ProbeKind::TimeStacks => {
            "A pack's own BPF programs: time summed per stack in the kernel (machine-wide, for \
             every client of the helper); see the flame graph and the paths view."
        }
    }
}
