//! The request metrics of one mount, `tachigo_http_requests_total` and
//! `tachigo_http_request_duration_seconds`, as handles made once per series.
//!
//! Recording through the `metrics!` macros builds the label set and looks the
//! series up by it on every request; here each series is looked up the first
//! time it is used and its handle kept, so a request costs two atomic updates.
//! Every label comes from a fixed set (the mount's route table, the method and
//! status label sets), so the series are bounded whatever callers send.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};

use super::route_table::{RouteTable, METHOD_LABELS, UNMATCHED};

/// The `status` labels: the statuses this server answers with, as static text,
/// then the three classes everything else falls in.
const STATUS_LABELS: [&str; 24] = [
    "200",
    "201",
    "202",
    "204",
    "302",
    "303",
    "304",
    "400",
    "401",
    "403",
    "404",
    "405",
    "408",
    "409",
    "413",
    "415",
    "429",
    "431",
    "500",
    "502",
    "503",
    "other_success",
    "other_client_error",
    "other_server_error",
];

/// The position of `status`'s label in [`STATUS_LABELS`].
fn status_index(status: u16) -> usize {
    match status {
        200 => 0,
        201 => 1,
        202 => 2,
        204 => 3,
        302 => 4,
        303 => 5,
        304 => 6,
        400 => 7,
        401 => 8,
        403 => 9,
        404 => 10,
        405 => 11,
        408 => 12,
        409 => 13,
        413 => 14,
        415 => 15,
        429 => 16,
        431 => 17,
        500 => 18,
        502 => 19,
        503 => 20,
        _ if status < 400 => 21,
        _ if status < 500 => 22,
        _ => 23,
    }
}

/// The `status` label of `status`.
pub fn status_label(status: u16) -> &'static str {
    STATUS_LABELS[status_index(status)]
}

/// The series of one route under one method.
#[derive(Default)]
struct Series {
    duration: OnceLock<Histogram>,
    requests: [OnceLock<Counter>; STATUS_LABELS.len()],
}

/// Every series one mount can record.
pub struct RequestMetrics {
    contract: &'static str,
    /// The route templates by row, then [`UNMATCHED`].
    routes: Vec<&'static str>,
    /// `routes.len() × METHOD_LABELS.len()` series, row-major.
    series: Vec<Series>,
}

impl RequestMetrics {
    pub fn new(contract: &'static str, table: &RouteTable) -> RequestMetrics {
        let mut routes: Vec<&'static str> = (0..table.len()).map(|i| table.template(i)).collect();
        routes.push(UNMATCHED);
        let series = (0..routes.len() * METHOD_LABELS.len())
            .map(|_| Series::default())
            .collect();
        RequestMetrics {
            contract,
            routes,
            series,
        }
    }

    /// Records one answered request: `route` is the route table's row (`None`:
    /// unmatched), `method` an index into [`METHOD_LABELS`].
    pub fn record(&self, route: Option<usize>, method: usize, status: u16, elapsed: Duration) {
        let route = route.unwrap_or(self.routes.len() - 1);
        let series = &self.series[route * METHOD_LABELS.len() + method];
        let status = status_index(status);
        let (contract, route, method) = (self.contract, self.routes[route], METHOD_LABELS[method]);
        series.requests[status]
            .get_or_init(|| {
                metrics::counter!("tachigo_http_requests_total",
                    "contract" => contract, "method" => method, "route" => route,
                    "status" => STATUS_LABELS[status])
            })
            .increment(1);
        series
            .duration
            .get_or_init(|| {
                metrics::histogram!("tachigo_http_request_duration_seconds",
                    "contract" => contract, "method" => method, "route" => route)
            })
            .record(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_label_is_its_own_status() {
        for label in STATUS_LABELS.iter().filter(|l| l.parse::<u16>().is_ok()) {
            assert_eq!(status_label(label.parse().unwrap()), *label);
        }
    }

    #[test]
    fn status_labels_are_a_fixed_set() {
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(303), "303");
        assert_eq!(status_label(299), "other_success");
        assert_eq!(status_label(418), "other_client_error");
        assert_eq!(status_label(599), "other_server_error");
        assert_eq!(status_label(0), "other_success");
    }
}
