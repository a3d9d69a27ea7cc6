//! Plots of a run, as self-contained SVG (viewable offline in any browser): the CDF of block
//! reception times over every (block, receiving node) pair, and for a sweep the stale rate
//! against the swept parameter; and `report.html`, one page holding the figures and the
//! numbers behind them, with nothing to fetch.

use plotters::prelude::*;

use crate::error::SimError;
use crate::queue::Micros;
use crate::results::{Recorder, Results, Summary};

/// Points of the plotted CDF at most (quantiles of all receptions).
const CDF_POINTS: usize = 500;

/// The reception-time CDF of a run, as SVG text.
pub fn reception_cdf_svg(recorder: &Recorder, results: &Results) -> Result<String, SimError> {
    let mut all: Vec<Micros> = recorder.blocks.iter().flat_map(|b| b.receptions.iter()).collect();
    all.sort_unstable();
    let points = cdf_points(&all);
    let x_max = points.last().map_or(1.0, |p| p.0).max(0.001) * 1.05;
    let title = format!(
        "{}: {} nodes, {} blocks, stale rate {:.2}%",
        results.scenario,
        results.nodes,
        results.blocks_mined,
        results.stale_rate * 100.0
    );
    let mut svg = String::new();
    draw(&mut svg, &title, &points, x_max).map_err(|e| SimError::Plot(e.to_string()))?;
    Ok(svg)
}

/// (seconds, fraction of pairs) at evenly spaced ranks.
fn cdf_points(sorted: &[Micros]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(CDF_POINTS).max(1);
    let mut points: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted[i] as f64 / 1e6, (i + 1) as f64 / n as f64))
        .collect();
    points.push((sorted[n - 1] as f64 / 1e6, 1.0));
    points
}

fn draw(svg: &mut String, title: &str, points: &[(f64, f64)], x_max: f64) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (720, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..x_max, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("seconds from mining to acceptance")
        .y_desc("fraction of (block, node) pairs")
        .draw()?;
    chart.draw_series(LineSeries::new(points.iter().copied(), &BLUE))?;
    root.present()?;
    Ok(())
}

/// The stale rate of each run of a sweep against the swept parameter's value, as SVG text:
/// one point per run (several per value with `--seeds`), the values in the order given.
pub fn stale_rate_svg(param: &str, values: &[String], runs: &[Summary]) -> Result<String, SimError> {
    let labels: Vec<String> = dedup_in_order(values);
    let points: Vec<(f64, f64)> = values
        .iter()
        .zip(runs)
        .filter_map(|(v, s)| {
            let x = labels.iter().position(|l| l == v)?;
            Some((x as f64, s.results.stale_rate * 100.0))
        })
        .collect();
    let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(0.1) * 1.15;
    let mut svg = String::new();
    draw_sweep(&mut svg, param, &labels, &points, y_max).map_err(|e| SimError::Plot(e.to_string()))?;
    Ok(svg)
}

fn dedup_in_order(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

fn draw_sweep(
    svg: &mut String,
    param: &str,
    labels: &[String],
    points: &[(f64, f64)],
    y_max: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (720, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = labels.len().max(1) as f64 - 0.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("stale rate against {param}"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5..x_max, 0.0..y_max)?;
    let label_of = |x: &f64| {
        let i = x.round();
        let exact = (x - i).abs() < 1e-9 && i >= 0.0;
        exact
            .then(|| labels.get(i as usize).cloned())
            .flatten()
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_labels(labels.len().max(2) * 2 + 1)
        .x_label_formatter(&label_of)
        .x_desc(param)
        .y_desc("stale blocks, % of blocks mined")
        .draw()?;
    chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 4, BLUE.filled())))?;
    root.present()?;
    Ok(())
}

/// `report.html`: a title, a table of the runs' main numbers and the figures, in one file.
pub fn report_html(title: &str, runs: &[(String, &Summary)], figures: &[&str]) -> String {
    let mut rows = String::new();
    for (label, s) in runs {
        let r = &s.results;
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>\n",
            escape(label),
            r.seed,
            r.nodes,
            r.blocks_mined,
            r.stale_blocks,
            r.stale_rate * 100.0,
            r.reception_ms.p50,
            r.reception_ms.mean,
            r.reception_ms.p90,
            r.reception_ms.p99,
            s.wall_s
        ));
    }
    let figures: String = figures.iter().map(|f| format!("<figure>{f}</figure>\n")).collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em;}}table{{border-collapse:collapse;}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right;}}figure{{margin:1em 0;}}</style>\n\
         </head><body>\n<h1>{t}</h1>\n<table>\n<tr><th>run</th><th>seed</th><th>nodes</th><th>blocks</th>\
         <th>stale</th><th>stale rate</th><th>reception p50 ms</th><th>mean ms</th><th>p90 ms</th><th>p99 ms</th>\
         <th>wall s</th></tr>\n{rows}</table>\n{figures}</body></html>\n",
        t = escape(title)
    )
}

/// Text made safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Scenario, Simulation};

    #[test]
    fn a_run_plots_as_svg() {
        let mut s = Scenario::load("classroom").unwrap();
        s.blocks = 3;
        let mut sim = Simulation::new(s);
        let results = sim.run();
        let svg = reception_cdf_svg(sim.recorder(), &results).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("polyline"),
            "{}",
            &svg[..200.min(svg.len())]
        );
        assert!(svg.contains("stale rate"));
    }

    #[test]
    fn a_sweep_plots_its_stale_rates_and_the_report_holds_everything() {
        let mut base = Scenario::load("classroom").unwrap();
        base.blocks = 3;
        let sweep: crate::sweep::Sweep = "relay=announce,push".parse().unwrap();
        let runs = crate::sweep::plan(&base, Some(&sweep), 1).unwrap();
        let summaries = crate::sweep::run_all(runs, 1);
        let values = vec!["announce".to_string(), "push".to_string()];
        let svg = stale_rate_svg("relay", &values, &summaries).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("circle"), "{}", &svg[..200]);
        assert!(
            svg.contains("announce") && svg.contains("push"),
            "the values label the axis"
        );
        let rows: Vec<(String, &Summary)> = values.iter().cloned().zip(&summaries).collect();
        let html = report_html("classroom <sweep>", &rows, &[&svg]);
        assert!(html.contains("classroom &lt;sweep&gt;"), "titles are escaped");
        assert_eq!(html.matches("<tr><td>").count(), 2, "one row per run");
        assert!(html.contains("<svg") && !html.contains("src=\"http"), "self-contained");
    }
}
