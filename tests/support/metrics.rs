//! Reading `/metrics` the way an operator's scraper does: the series of the
//! request counter and histogram, and the values a label takes.

use std::collections::BTreeSet;

use super::{plain_client, TestServer};

/// The series of the request counter and histogram in a `/metrics` text.
pub fn request_series(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("tachigo_http_requests_total{")
                || l.starts_with("tachigo_http_request_duration_seconds{")
                || l.starts_with("tachigo_http_request_duration_seconds_bucket{")
        })
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_string()))
        .collect()
}

pub async fn metrics_text(server: &TestServer) -> String {
    plain_client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The label values of `label` across `series`.
pub fn label_values(series: &BTreeSet<String>, label: &str) -> BTreeSet<String> {
    let key = format!("{label}=\"");
    series
        .iter()
        .filter_map(|s| {
            let start = s.find(&key)? + key.len();
            let end = start + s[start..].find('"')?;
            Some(s[start..end].to_string())
        })
        .collect()
}
