//! Plots of a run, as self-contained SVG (viewable offline in any browser): the CDF of block
//! reception times over every (block, receiving node) pair.

use plotters::prelude::*;

use crate::error::SimError;
use crate::queue::Micros;
use crate::results::{Recorder, Results};

/// Points of the plotted CDF at most (quantiles of all receptions).
const CDF_POINTS: usize = 500;

/// The reception-time CDF of a run, as SVG text.
pub fn reception_cdf_svg(recorder: &Recorder, results: &Results) -> Result<String, SimError> {
    let mut all: Vec<Micros> = recorder
        .blocks
        .iter()
        .flat_map(|b| b.receptions.iter().copied())
        .collect();
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
}
