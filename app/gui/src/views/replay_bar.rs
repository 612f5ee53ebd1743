//! The replay bar: play/pause, speed, a scrubber, and the way back to live data.

use crate::command::{Command, CommandQueue};
use crate::theme;
use microscope_model::Model;
use microscope_model::ReplaySpeed;
use microscope_sources::RecordingStatus;
use microscope_sources::ReplayControl;
use std::time::Instant;

/// Draws the bar for the replay in `model` (nothing when live).
pub fn replay_bar_ui(
    ui: &mut egui::Ui,
    model: &Model,
    recording: Option<RecordingStatus>,
    now: Instant,
    commands: &mut CommandQueue,
) {
    let Some(status) = &model.replay else {
        ui.horizontal(|ui| {
            if ui.button("Open recording…").clicked() {
                commands.send(Command::ShowOpenDialog);
            }
            match &recording {
                Some(recording) => {
                    if ui.button("Stop recording").clicked() {
                        commands.send(Command::StopRecording);
                    }
                    ui.colored_label(
                        theme::WARNING,
                        format!(
                            "recording {:.0} s, {} events to {}",
                            recording.elapsed.as_secs_f64(),
                            recording.events,
                            recording.path.display()
                        ),
                    );
                }
                None => {
                    if ui
                        .add_enabled(model.is_connected(), egui::Button::new("Record"))
                        .on_hover_text(
                            "Record everything the helper sends from now on into a file in \
                             the current directory; open it later with Open recording…",
                        )
                        .on_disabled_hover_text("Needs a connection to the helper.")
                        .clicked()
                    {
                        commands.send(Command::StartRecording);
                    }
                }
            }
        });
        return;
    };
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = theme::ITEM_GAP;
        let (label, control) = if status.playing {
            ("Pause", ReplayControl::Pause)
        } else {
            ("Play", ReplayControl::Play)
        };
        if ui.button(label).clicked() {
            commands.send(Command::Replay(control));
        }
        for speed in ReplaySpeed::CHOICES {
            if ui
                .selectable_label(status.speed == speed, speed.label())
                .clicked()
            {
                commands.send(Command::Replay(ReplayControl::Speed(speed)));
            }
        }
        let duration_s = status.duration_ns as f64 / 1e9;
        let mut position_s = status.position_at(now).as_secs_f64();
        let text = format!("{position_s:.1} s / {duration_s:.1} s");
        let slider = egui::Slider::new(&mut position_s, 0.0..=duration_s.max(0.001))
            .show_value(false)
            .text(text);
        let response = ui.add_sized(
            [theme::SCRUBBER_WIDTH, ui.spacing().interact_size.y],
            slider,
        );
        if response.drag_stopped() || (response.changed() && !response.dragged()) {
            let to_ns = (position_s * 1e9).round() as u64;
            commands.send(Command::Replay(ReplayControl::Seek(to_ns)));
        }
        let name = status.path.file_name().map_or_else(
            || status.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        ui.label(name)
            .on_hover_text(status.path.display().to_string());
        if ui.button("Open recording…").clicked() {
            commands.send(Command::ShowOpenDialog);
        }
        let baseline = model
            .browse
            .baseline
            .as_ref()
            .and_then(|b| b.path.file_name())
            .map(|name| name.to_string_lossy().into_owned());
        if ui
            .button("Open baseline…")
            .on_hover_text(
                "A second recording to compare with: the flame graph, the rates and the latency \
                 histogram show both.",
            )
            .clicked()
        {
            commands.send(Command::ShowBaselineDialog);
        }
        if let Some(name) = baseline {
            ui.weak(format!("baseline: {name}"));
        }
        if ui
            .button("Go live")
            .on_hover_text("Connect to the helper and show this kernel live.")
            .clicked()
        {
            commands.send(Command::GoLive);
        }
    });
}
