//! Numbers for people: durations, counts, rates and sizes, formatted in
//! one place so the views, the tooltips and the command line agree.

/// A duration for a person, with about three significant digits:
/// `850 ns`, `12.3 µs`, `2.10 ms`, `1.50 s`.
pub fn format_duration_ns(ns: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "s"), (1e6, "ms"), (1e3, "µs")];
    let value = ns as f64;
    for (scale, unit) in UNITS {
        if value >= scale {
            let scaled = value / scale;
            return if scaled >= 100.0 {
                format!("{scaled:.0} {unit}")
            } else if scaled >= 10.0 {
                format!("{scaled:.1} {unit}")
            } else {
                format!("{scaled:.2} {unit}")
            };
        }
    }
    format!("{ns} ns")
}

/// A duration in ns, rounded to a whole number of the largest fitting unit.
pub fn format_whole_duration_ns(ns: u128) -> String {
    const UNITS: [(u128, &str); 4] = [
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "µs"),
        (1, "ns"),
    ];
    for (scale, unit) in UNITS {
        if ns >= scale {
            return format!("{} {unit}", ns.saturating_add(scale / 2) / scale);
        }
    }
    "0 ns".to_owned()
}

/// Seconds with millisecond precision: `1.234 s`.
pub fn format_seconds_ns(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// `1234567` → `1 234 567`, so large rates stay readable.
pub fn format_count(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

/// An event rate in few characters: `0`, `0.5`, `42`, `12k`.
pub fn format_rate(rate: f64) -> String {
    if rate >= 10_000.0 {
        format!("{:.0}k", rate / 1000.0)
    } else if rate >= 10.0 {
        format!("{rate:.0}")
    } else if rate > 0.0 {
        format!("{rate:.1}")
    } else {
        "0".to_owned()
    }
}

/// A size in bytes, exactly: `4096 bytes`.
pub fn format_bytes(bytes: u64) -> String {
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration_ns(850), "850 ns");
        assert_eq!(format_duration_ns(12_345), "12.3 µs");
        assert_eq!(format_duration_ns(2_100_000), "2.10 ms");
        assert_eq!(format_duration_ns(1_500_000_000), "1.50 s");
    }

    #[test]
    fn whole_durations_round_to_the_largest_unit() {
        assert_eq!(format_whole_duration_ns(0), "0 ns");
        assert_eq!(format_whole_duration_ns(512), "512 ns");
        assert_eq!(format_whole_duration_ns(1_499), "1 µs");
        assert_eq!(format_whole_duration_ns(1_500), "2 µs");
        assert_eq!(format_whole_duration_ns(33_554_432), "34 ms");
    }

    #[test]
    fn seconds_and_sizes() {
        assert_eq!(format_seconds_ns(1_234_567_890), "1.235 s");
        assert_eq!(format_seconds_ns(0), "0.000 s");
        assert_eq!(format_bytes(4096), "4096 bytes");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1 000");
        assert_eq!(format_count(1_234_567), "1 234 567");
    }

    #[test]
    fn rates_fit_in_few_characters() {
        assert_eq!(format_rate(0.0), "0");
        assert_eq!(format_rate(0.25), "0.2");
        assert_eq!(format_rate(42.4), "42");
        assert_eq!(format_rate(12_345.0), "12k");
    }
}
