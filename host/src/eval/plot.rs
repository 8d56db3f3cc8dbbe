//! `arbiter eval --plot DIR`: the report's figures, each as SVG and PNG, one function per
//! figure, each drawing on any plotters backend.
//!
//! Text is laid out (and, for PNG, rasterised) with ab_glyph from a font embedded in the
//! binary, so no system font library is needed to build or run.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{EvalReport, KPoint};

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 640);

/// Distinct, colour-blind-friendly series colours (the Tableau 10 palette).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("the embedded font could not be loaded")]
    Font,
    #[error("creating {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("drawing {}: {source}", path.display())]
    Draw {
        path: PathBuf,
        source: Box<dyn StdError + Send + Sync>,
    },
}

type DrawResult = Result<(), Box<dyn StdError + Send + Sync>>;

/// The figures, by file stem.
pub const FIGURES: [&str; 3] = ["accuracy-cost", "success-at-k", "latency"];

/// Writes every figure as `DIR/<name>.svg` and `DIR/<name>.png`; returns the files.
pub fn write_all(report: &EvalReport, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    register_font()?;
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Dir {
        path: dir.into(),
        source,
    })?;
    let mut written = Vec::new();
    for name in FIGURES {
        let svg = dir.join(format!("{name}.svg"));
        let png = dir.join(format!("{name}.png"));
        draw_named(
            name,
            report,
            SVGBackend::new(&svg, SIZE).into_drawing_area(),
        )
        .map_err(|source| PlotError::Draw {
            path: svg.clone(),
            source,
        })?;
        draw_named(
            name,
            report,
            BitMapBackend::new(&png, SIZE).into_drawing_area(),
        )
        .map_err(|source| PlotError::Draw {
            path: png.clone(),
            source,
        })?;
        written.extend([svg, png]);
    }
    Ok(written)
}

fn draw_named<DB: DrawingBackend>(
    name: &str,
    report: &EvalReport,
    root: DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    match name {
        "accuracy-cost" => draw_cost_accuracy(&root, report)?,
        "success-at-k" => draw_success_at_k(&root, report)?,
        _ => draw_latency(&root, report)?,
    }
    // Writes the file (the backends would otherwise write on drop, ignoring errors).
    root.present()?;
    Ok(())
}

fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

/// Every figure's frame: its title, margins and room for the axis labels.
fn figure<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: String,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, (FAMILY, 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70);
    builder
}

/// Every figure's legend: each series by name, lower right, on a light box.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn dataset_name(report: &EvalReport) -> String {
    Path::new(&report.dataset)
        .file_name()
        .map_or(report.dataset.clone(), |n| n.to_string_lossy().into_owned())
}

/// Decimals that show the cost axis' ticks apart (USD per query spans 1e-5 to 1e-1).
fn usd_digits(max: f64) -> usize {
    if max <= 0.0 {
        return 2;
    }
    (1 - max.log10().floor() as i32).clamp(1, 8) as usize
}

/// Accuracy against cost per query: every pipeline, each model alone, the oracle, and
/// the pipelines' Pareto frontier as a step line.
pub fn draw_cost_accuracy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &EvalReport,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let models: Vec<(&str, f64, f64)> = report
        .models
        .iter()
        .filter_map(|m| Some((m.model.as_str(), m.cost_per_query_usd?, m.accuracy)))
        .collect();
    let costs = report
        .pipelines
        .iter()
        .map(|p| p.cost_per_query_usd)
        .chain(models.iter().map(|m| m.1))
        .chain(report.oracle.iter().map(|o| o.cost_per_query_usd));
    let max_cost = costs.fold(0.0, f64::max);
    let x_max = if max_cost > 0.0 { max_cost * 1.1 } else { 1e-6 };
    let accs = report
        .pipelines
        .iter()
        .map(|p| p.accuracy)
        .chain(models.iter().map(|m| m.2))
        .chain(report.oracle.iter().map(|o| o.accuracy));
    let min_acc = accs.fold(1.0, f64::min);
    let y_min = ((min_acc - 0.05) * 10.0).floor().max(0.0) / 10.0;

    let mut chart = figure(
        root,
        format!("Accuracy against cost per query ({})", dataset_name(report)),
    )
    .build_cartesian_2d(0.0..x_max, y_min..1.0)?;
    let digits = usd_digits(x_max);
    chart
        .configure_mesh()
        .x_desc("cost per query (USD)")
        .y_desc("accuracy")
        .x_label_formatter(&|x| format!("{x:.digits$}"))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .draw()?;

    // The frontier as a staircase: a pipeline's accuracy holds until a costlier one
    // on the frontier beats it.
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for f in &report.frontier {
        if let Some(&(_, last_acc)) = steps.last() {
            steps.push((f.cost_per_query_usd, last_acc));
        }
        steps.push((f.cost_per_query_usd, f.accuracy));
    }
    if let Some(&(_, acc)) = steps.last() {
        steps.push((x_max, acc));
    }
    let grey = RGBColor(90, 90, 90);
    chart
        .draw_series(LineSeries::new(steps, grey.stroke_width(2)))?
        .label("Pareto frontier of the pipelines")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2)));

    let n = report.pipelines.len();
    for (j, (model, cost, acc)) in models.iter().enumerate() {
        let c = color(n + j);
        chart
            .draw_series([Cross::new((*cost, *acc), 11, c.stroke_width(3))])?
            .label(format!("{model} alone"))
            .legend(move |(x, y)| Cross::new((x + 10, y), 6, c.stroke_width(3)));
    }
    // Pipelines on top: a single-model pipeline sits on its model's cross.
    for (i, p) in report.pipelines.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series([Circle::new(
                (p.cost_per_query_usd, p.accuracy),
                7,
                c.filled(),
            )])?
            .label(p.pipeline.clone())
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, c.filled()));
    }
    if let Some(o) = &report.oracle {
        chart
            .draw_series([TriangleMarker::new(
                (o.cost_per_query_usd, o.accuracy),
                9,
                BLACK.filled(),
            )])?
            .label("oracle routing (labels)")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 7, BLACK.filled()));
    }
    draw_legend(&mut chart)
}

/// Success@K: for each pipeline, the share of queries with a correct answer among the
/// first K samples it drew, with its selected top-1 (its accuracy) marked at the K it
/// chose from; for each model, the dataset's unbiased estimate over all its samples.
pub fn draw_success_at_k<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &EvalReport,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let k_max = report
        .pipelines
        .iter()
        .map(|p| p.success_at_k.len())
        .chain(report.models.iter().map(|m| m.success_at_k_curve.len()))
        .max()
        .unwrap_or(1)
        .max(2);
    let mut chart = figure(root, format!("Success@K ({})", dataset_name(report)))
        .build_cartesian_2d(0.5..k_max as f64 + 0.5, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("K (samples per query)")
        .y_desc("Success@K (share of queries with a correct answer among K)")
        .x_labels(k_max.min(11))
        // Only whole K are samples; plotters may place ticks between them.
        .x_label_formatter(&|k| {
            if (k - k.round()).abs() < 1e-9 {
                format!("{k:.0}")
            } else {
                String::new()
            }
        })
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .draw()?;
    let xy = |curve: &[KPoint]| -> Vec<(f64, f64)> {
        curve.iter().map(|p| (p.k as f64, p.success)).collect()
    };
    for (i, p) in report.pipelines.iter().enumerate() {
        let c = color(i);
        let points = xy(&p.success_at_k);
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
            .label(format!("{}: Success@K of its samples", p.pipeline))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        // Short curves (one or two samples) would be invisible as lines alone.
        if points.len() <= 10 {
            chart.draw_series(points.iter().map(|&pt| Circle::new(pt, 3, c.filled())))?;
        }
        let top1_k = p.success_at_k.len().max(1) as f64;
        chart
            .draw_series([TriangleMarker::new((top1_k, p.accuracy), 9, c.filled())])?
            .label(format!("{}: selected top-1", p.pipeline))
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 7, c.filled()));
    }
    let n = report.pipelines.len();
    for (j, m) in report.models.iter().enumerate() {
        let c = color(n + j);
        let points = xy(&m.success_at_k_curve);
        let style = ShapeStyle::from(c).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))?
            .label(format!("{} (dataset, unbiased estimate)", m.model))
            .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 20, y)], 6, 3, style));
        if points.len() <= 10 {
            chart.draw_series(
                points
                    .iter()
                    .map(|&pt| Cross::new(pt, 5, c.stroke_width(2))),
            )?;
        }
    }
    draw_legend(&mut chart)
}

/// Latency to answer per pipeline as a cumulative distribution, p50 and p95 marked; the
/// legend names each pipeline's strategy, so a race reads against a sequential one.
pub fn draw_latency<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &EvalReport,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let max_ms = report
        .pipelines
        .iter()
        .flat_map(|p| p.latency_cdf.iter().map(|l| l.ms))
        .fold(0.0, f64::max);
    let x_max = if max_ms > 0.0 { max_ms * 1.05 } else { 1.0 };
    let title = if report.simulated_latency {
        "Latency to answer, simulated"
    } else {
        "Latency to answer"
    };
    let mut chart = figure(root, format!("{title} ({})", dataset_name(report)))
        .build_cartesian_2d(0.0..x_max, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("share of queries answered within")
        .x_label_formatter(&|ms| format!("{ms:.0}"))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .draw()?;
    for (i, p) in report.pipelines.iter().enumerate() {
        let c = color(i);
        let strategy = p.strategy.as_deref().unwrap_or("?");
        chart
            .draw_series(LineSeries::new(
                p.latency_cdf.iter().map(|l| (l.ms, l.share)),
                c.stroke_width(2),
            ))?
            .label(format!(
                "{} ({strategy}): p50 {:.0} ms, p95 {:.0} ms",
                p.pipeline, p.latency_p50_ms, p.latency_p95_ms
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    let marks = |q: f64| {
        report.pipelines.iter().enumerate().map(move |(i, p)| {
            let ms = if q < 0.9 {
                p.latency_p50_ms
            } else {
                p.latency_p95_ms
            };
            (i, (ms, q))
        })
    };
    chart
        .draw_series(marks(0.5).map(|(i, pt)| Circle::new(pt, 6, color(i).filled())))?
        .label("p50 of each pipeline")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.filled()));
    chart
        .draw_series(marks(0.95).map(|(i, pt)| TriangleMarker::new(pt, 8, color(i).filled())))?
        .label("p95 of each pipeline")
        .legend(|(x, y)| TriangleMarker::new((x + 10, y), 7, BLACK.filled()));
    draw_legend(&mut chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{score, LatencyPoint, ModelReference};

    fn svg_of(figure: &str, report: &EvalReport) -> String {
        register_font().unwrap();
        let mut svg = String::new();
        draw_named(
            figure,
            report,
            SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        )
        .unwrap();
        svg
    }

    #[test]
    fn degenerate_runs_still_draw() {
        // No answered query, no price, no latency, no samples: every range collapses to
        // a point, which plotters cannot map; each figure must still come out.
        let empty = score("nothing", &[], 0.0);
        let model = ModelReference {
            model: "unpriced".into(),
            samples_per_query: 0.0,
            accuracy: 0.0,
            success_at_k: 0.0,
            cost_per_query_usd: None,
            success_at_k_curve: vec![],
        };
        let report = EvalReport::new("d.jsonl".into(), 0, vec![empty], vec![model], None);
        let svg = svg_of("accuracy-cost", &report);
        assert!(svg.contains("nothing") && !svg.contains("unpriced alone"));
        assert!(svg_of("success-at-k", &report).contains("unpriced (dataset"));
        assert!(svg_of("latency", &report).contains("nothing (?)"));
    }

    #[test]
    fn latency_legend_names_strategy_and_percentiles() {
        let mut race = score("r", &[], 0.0);
        race.strategy = Some("race".into());
        race.latency_p50_ms = 700.0;
        race.latency_p95_ms = 3600.0;
        race.latency_cdf = vec![
            LatencyPoint {
                share: 0.0,
                ms: 100.0,
            },
            LatencyPoint {
                share: 1.0,
                ms: 9000.0,
            },
        ];
        let report = EvalReport::new("d.jsonl".into(), 1, vec![race], vec![], None);
        let svg = svg_of("latency", &report);
        assert!(svg.contains("r (race): p50 700 ms, p95 3600 ms"), "{svg}");
    }

    #[test]
    fn cost_ticks_keep_cents_of_a_cent_apart() {
        assert_eq!(usd_digits(0.0041), 4);
        assert_eq!(usd_digits(0.00009), 6);
        assert_eq!(usd_digits(2.5), 1);
        assert_eq!(usd_digits(0.0), 2);
    }
}
