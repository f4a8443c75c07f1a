//! Rows and the one table they make.

use std::fmt::Write as _;

use crate::measure::{Contender, Outcome, Unit, median, summary};

/// One line of the table: this project's figure, the peer's figure measured
/// in the same run, and their ratio.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    /// What is measured, this project's side named first.
    pub(crate) what: String,
    /// The unit of both figures.
    pub(crate) unit: Unit,
    /// This project's figure.
    pub(crate) ours: Outcome,
    /// The peer's name and figure; `None` for a row without a peer.
    pub(crate) peer: Option<(String, Outcome)>,
    /// Shown in the peer's column of a row without a peer (the goal, say).
    pub(crate) note: Option<String>,
}

impl Row {
    /// `ours` against `peer`, both measured in the same round-robin.
    pub(crate) fn versus(
        what: impl Into<String>,
        unit: Unit,
        ours: &Contender<'_>,
        peer: &Contender<'_>,
    ) -> Row {
        Row {
            what: what.into(),
            unit,
            ours: ours.outcome().clone(),
            peer: Some((peer.name().to_string(), peer.outcome().clone())),
            note: None,
        }
    }

    /// A row without a peer; `note` takes the peer's place.
    pub(crate) fn alone(
        what: impl Into<String>,
        unit: Unit,
        ours: &Contender<'_>,
        note: impl Into<String>,
    ) -> Row {
        Row {
            what: what.into(),
            unit,
            ours: ours.outcome().clone(),
            peer: None,
            note: Some(note.into()),
        }
    }

    /// The ratio cell: ours / peer, the median of the per-run ratios with
    /// their spread, and which side is faster.
    fn ratio(&self) -> String {
        let (Outcome::Measured(ours), Some((_, Outcome::Measured(peer)))) = (&self.ours, &self.peer) else {
            return "—".to_string();
        };
        if ours.is_empty() || peer.is_empty() {
            return "—".to_string();
        }
        let ratios: Vec<f64> = if ours.len() == peer.len() {
            ours.iter().zip(peer).map(|(o, p)| o / p).collect()
        } else {
            vec![median(ours) / median(peer)]
        };
        let r = median(&ratios);
        let mut out = format!("{}×", ratio_number(r));
        if ratios.len() > 1 {
            let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let _ = write!(out, " [{}–{}]", ratio_number(min), ratio_number(max));
        }
        let speed = if self.unit.lower_is_better() { 1.0 / r } else { r };
        if speed >= 1.0 {
            let _ = write!(out, ", {speed:.1}× faster");
        } else {
            let _ = write!(out, ", {:.1}× slower", 1.0 / speed);
        }
        out
    }
}

/// A ratio with two decimals, or two significant digits below 0.1, or fewer
/// decimals above 10.
fn ratio_number(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else if r >= 0.1 {
        format!("{r:.2}")
    } else if r >= 0.01 {
        format!("{r:.3}")
    } else {
        format!("{r:.4}")
    }
}

/// A figure's cell: `median [min–max] unit`, or why there is none.
fn cell(outcome: &Outcome, unit: Unit) -> String {
    match outcome {
        Outcome::Measured(values) if values.is_empty() => "no runs".to_string(),
        Outcome::Measured(values) => summary(values, unit),
        Outcome::Skipped(reason) => format!("skipped: {reason}"),
        Outcome::Failed(reason) => format!("failed: {reason}"),
    }
}

/// Text made safe for one Markdown table cell: one line, no bare `|`, not
/// too long.
fn escape(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = if one_line.chars().count() > 200 {
        one_line.chars().take(199).chain(['…']).collect()
    } else {
        one_line
    };
    short.replace('|', "\\|")
}

/// The runs behind a row's figures.
fn runs(row: &Row) -> String {
    match &row.ours {
        Outcome::Measured(values) => values.len().to_string(),
        _ => "—".to_string(),
    }
}

/// The Markdown table of `rows`.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| benchmark | this project | peer | peer's figure | project / peer | runs |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in rows {
        let (peer, peer_figure) = match (&row.peer, &row.note) {
            (Some((name, outcome)), _) => (name.clone(), cell(outcome, row.unit)),
            (None, Some(note)) => (note.clone(), "—".to_string()),
            (None, None) => ("—".to_string(), "—".to_string()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            escape(&row.what),
            escape(&cell(&row.ours, row.unit)),
            escape(&peer),
            escape(&peer_figure),
            row.ratio(),
            runs(row),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_cells() {
        let row = Row {
            what: "a | b".to_string(),
            unit: Unit::NsPerItem,
            ours: Outcome::Measured(vec![2.0, 3.0, 2.0]),
            peer: Some(("p".to_string(), Outcome::Measured(vec![4.0, 4.0, 8.0]))),
            note: None,
        };
        assert_eq!(row.ratio(), "0.50× [0.25–0.75], 2.0× faster");
        let skipped = Row {
            peer: Some(("p".to_string(), Outcome::Skipped("node not found".to_string()))),
            ..row.clone()
        };
        assert_eq!(skipped.ratio(), "—");
        let t = table(&[row, skipped]);
        assert!(t.contains("| a \\| b | 2.00 ns/item [2.00–3.00] | p | 4.00 ns/item [4.00–8.00] |"));
        assert!(t.contains("| skipped: node not found | — | 3 |"));
    }

    #[test]
    fn rates_are_faster_when_higher() {
        let row = Row {
            what: "x".to_string(),
            unit: Unit::ItemsPerSec,
            ours: Outcome::Measured(vec![100.0]),
            peer: Some(("p".to_string(), Outcome::Measured(vec![400.0]))),
            note: None,
        };
        assert_eq!(row.ratio(), "0.25×, 4.0× slower");
        assert_eq!(ratio_number(0.0042), "0.0042");
        assert_eq!(ratio_number(0.042), "0.042");
        assert_eq!(ratio_number(526.67), "527");
        assert_eq!(ratio_number(12.345), "12.3");
    }
}
