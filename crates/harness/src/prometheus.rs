//! Reading the nodes' `/metrics`, in the Prometheus text format.

/// The value of a metric sample line `name{labels} value` in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_metric_samples() {
        let text = "# HELP x y\nx_total{a=\"b\"} 3\nplain 0.250\n";
        assert_eq!(metric(text, "x_total{a=\"b\"}"), Some(3.0));
        assert_eq!(metric(text, "plain"), Some(0.25));
        assert_eq!(metric(text, "missing"), None);
    }
}
