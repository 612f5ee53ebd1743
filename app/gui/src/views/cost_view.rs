//! The Cost view: what each attached probe costs the kernel (BPF run time
//! per run and share of a CPU, runs and events per second, ring-buffer fill,
//! drops) and what the helper itself uses, with the last two minutes as a
//! plot. The app watches the cost (and the helper keeps the kernel's BPF
//! run-time statistics on) only while this view is shown or the probe
//! panel's "Show cost" is ticked.

use crate::command::{Command, CommandQueue};
use crate::theme;
use egui_plot::{Legend, Line, Plot, PlotPoints};
use microscope_model::{CostSnapshot, Model, ProbeCostFigures, format_mib, format_share};

/// Draws the Cost view.
pub fn cost_ui(ui: &mut egui::Ui, model: &Model, commands: &mut CommandQueue) {
    ui.heading("What tracing costs");
    if model.is_replay() {
        ui.label(
            "Costs are measured live: recordings do not keep them. Press Go live to watch \
             what your probes cost on this machine.",
        );
        return;
    }
    let Some(latest) = model.cost.latest() else {
        ui.label(match &model.cost.watch {
            Some((true, _)) => "Measuring… the first report arrives within a second.",
            _ => "Waiting for the helper to start measuring.",
        });
        return;
    };
    if let Err(reason) = &latest.run_times {
        ui.colored_label(
            theme::WARNING,
            format!("Run times are not measured: {reason}"),
        );
    } else {
        ui.weak(
            "BPF run-time statistics are on while this view is open (they cost every BPF \
             program on the machine two clock reads per run) and off when nobody looks.",
        );
    }
    ui.add_space(theme::SECTION_GAP);
    ui.label(format!(
        "All probes: {} of a CPU ({} of the machine's {} CPUs) · {}",
        format_share(latest.total_cpu_share()),
        format_share(latest.total_cpu_share() / f64::from(latest.cpus.max(1))),
        latest.cpus,
        latest.helper_summary()
    ));
    ui.add_space(theme::SECTION_GAP);
    ui.scope_builder(
        egui::UiBuilder::new().accessibility_label(crate::views::region::COST_TABLE),
        |ui| table_ui(ui, model, latest, commands),
    );
    ui.add_space(theme::SECTION_GAP);
    history_ui(ui, model);
}

/// One row per attached probe.
fn table_ui(ui: &mut egui::Ui, model: &Model, latest: &CostSnapshot, commands: &mut CommandQueue) {
    if latest.probes.is_empty() {
        ui.label("No probe is attached: tick one in the probe list to see what it costs.");
        return;
    }
    egui::Grid::new("cost-table")
        .striped(true)
        .spacing([theme::ITEM_GAP, 4.0])
        .show(ui, |ui| {
            for header in [
                "Probe",
                "Run time per run",
                "Share of a CPU",
                "Runs/s",
                "Events/s",
                "Ring fill",
                "Dropped",
                "Programs (bpftool id)",
            ] {
                ui.strong(header);
            }
            ui.end_row();
            for cost in &latest.probes {
                row_ui(ui, model, cost, latest.run_times.is_ok(), commands);
                ui.end_row();
            }
        });
}

fn row_ui(
    ui: &mut egui::Ui,
    model: &Model,
    cost: &ProbeCostFigures,
    run_times: bool,
    commands: &mut CommandQueue,
) {
    let probe = model.probes.iter().find(|p| p.key == cost.key);
    let name = probe.map_or_else(|| format!("probe {}", cost.key), |p| p.id.clone());
    if let Some(probe) = probe
        && ui
            .link(&name)
            .on_hover_text("Show its subsystem on the map")
            .clicked()
    {
        commands.send(Command::SelectSubsystem(probe.subsystem.clone()));
    } else if probe.is_none() {
        ui.label(&name);
    }
    let dash = || "–".to_owned();
    ui.label(if run_times {
        cost.ns_per_run
            .map_or_else(dash, |ns| format!("{ns:.0} ns"))
    } else {
        dash()
    });
    ui.label(if run_times {
        format_share(cost.cpu_share)
    } else {
        dash()
    });
    ui.label(if run_times {
        microscope_model::format_rate(cost.runs_per_sec)
    } else {
        dash()
    });
    ui.label(microscope_model::format_rate(cost.events_per_sec));
    ui.label(cost.ring_fill.map_or_else(dash, format_share));
    ui.label(cost.kernel_drops.to_string());
    ui.label(
        cost.programs
            .iter()
            .map(|(name, id)| format!("{name} ({id})"))
            .collect::<Vec<_>>()
            .join(", "),
    );
}

/// Each probe's share of a CPU, and the helper's, over the kept history.
fn history_ui(ui: &mut egui::Ui, model: &Model) {
    let mut keys: Vec<microscope_wire::ProbeKey> = Vec::new();
    for snapshot in model.cost.snapshots() {
        for p in &snapshot.probes {
            if !keys.contains(&p.key) {
                keys.push(p.key);
            }
        }
    }
    let name_of = |key| {
        model
            .probes
            .iter()
            .find(|p| p.key == key)
            .map_or_else(|| format!("probe {key}"), |p| p.id.clone())
    };
    let rss = model
        .cost
        .latest()
        .map_or(String::new(), |l| format_mib(l.helper_rss_bytes));
    ui.label(format!(
        "Share of one CPU over the last {} reports (%); helper resident memory now {rss}",
        model.cost.snapshots().count()
    ));
    Plot::new("cost-history")
        .legend(Legend::default())
        .height(ui.available_height().max(120.0))
        .allow_scroll(false)
        .x_axis_label("s")
        .show(ui, |plot| {
            for key in keys {
                let points: PlotPoints = model
                    .cost
                    .snapshots()
                    .filter_map(|s| Some([s.at_secs, s.probe(key)?.cpu_share * 100.0]))
                    .collect();
                plot.line(Line::new(name_of(key), points));
            }
            let helper: PlotPoints = model
                .cost
                .snapshots()
                .map(|s| [s.at_secs, s.helper_cpu_share * 100.0])
                .collect();
            plot.line(Line::new("microscoped (helper)", helper));
        });
}

/// The small line under an enabled probe's checkbox (probe panel, map
/// details): what it cost over the last report.
pub fn probe_cost_line_ui(ui: &mut egui::Ui, model: &Model, key: microscope_wire::ProbeKey) {
    let Some(latest) = model.cost.latest() else {
        return;
    };
    if let Some(cost) = latest.probe(key) {
        ui.label(
            egui::RichText::new(cost.summary(latest.run_times.is_ok()))
                .small()
                .weak(),
        )
        .on_hover_text(
            "BPF run time per program run, its share of one CPU, runs and events per second, \
             peak ring-buffer fill and drops, over the last second",
        );
    }
}
