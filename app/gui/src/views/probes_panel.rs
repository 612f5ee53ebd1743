//! The probe list: one checkbox per probe, grouped by kernel subsystem.

use crate::command::{Command, CommandQueue};
use crate::model::Model;
use crate::theme;
use crate::update::Probe;
use std::collections::BTreeMap;

/// Draws the probe list.
pub fn probes_ui(ui: &mut egui::Ui, model: &Model, commands: &mut CommandQueue) {
    ui.heading("Probes");
    ui.add_space(theme::SECTION_GAP);
    if model.probes.is_empty() {
        ui.weak("No probes yet: the list comes from the helper once it is connected.");
        return;
    }
    let mut by_subsystem = BTreeMap::<&str, Vec<&Probe>>::new();
    for probe in &model.probes {
        by_subsystem
            .entry(probe.subsystem.as_str())
            .or_default()
            .push(probe);
    }
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for (subsystem, probes) in by_subsystem {
                egui::CollapsingHeader::new(subsystem)
                    .default_open(true)
                    .show(ui, |ui| {
                        for probe in probes {
                            probe_checkbox_ui(ui, model, probe, commands);
                        }
                    });
            }
        });
}

fn probe_checkbox_ui(ui: &mut egui::Ui, model: &Model, probe: &Probe, commands: &mut CommandQueue) {
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
        Some(reason) => ui
            .add_enabled(false, egui::Checkbox::new(&mut checked, &probe.id))
            .on_disabled_hover_text(format!("Unavailable on this kernel: {reason}")),
    };
    if response.changed() && checked != wanted {
        commands.send(Command::SetProbeEnabled {
            probe: probe.id.clone(),
            enabled: checked,
        });
    }
}

fn kind_note(probe: &Probe) -> &'static str {
    use crate::update::ProbeKind;
    match probe.kind {
        ProbeKind::Stream => "Streams every event.",
        ProbeKind::SyscallCounts => "Counts syscalls in the kernel; the timeline shows syscalls/s.",
        ProbeKind::SyscallLatency => "Measures syscall latency in the kernel; see the histogram.",
        ProbeKind::Fields => "Streams every event with all its fields; see the event inspector.",
        ProbeKind::Function => {
            "Counts calls and entry-to-exit time in the kernel; the timeline shows calls/s."
        }
        ProbeKind::Stacks => "Counts stacks in the kernel; see the flame graph.",
    }
}
