//! Logs and metrics: `tracing` to stderr (text or JSON) and one process-wide
//! Prometheus recorder rendered at `/metrics`.
//!
//! Every line a request logs carries its request id, method, route and
//! contract, read from the dispatcher's [`RequestScope`] when the line is
//! written (not from a span made for every request, whose fields were
//! formatted even when nothing was logged): in text, as the span prefix
//! `request{request_id=… method=… route=… contract=…}:`; in JSON, as the fields
//! `request_id`, `method`, `route` and `contract`.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tachigo_frontends::common::RequestScope;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the log subscriber. `RUST_LOG` overrides the default: `info`,
/// with ractor_cluster's own lines at `error` (it logs every node session that
/// opens and closes, which a stranger dialling the node port could repeat
/// without bound; the cluster module logs what matters, rate-limited).
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,ractor_cluster=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .event_format(WithRequestScope(
                format::format().json().flatten_event(true),
            ))
            .init();
    } else {
        builder
            .event_format(WithRequestScope(format::format()))
            .init();
    }
}

/// An event format that adds the current request's scope to `F`'s lines.
struct WithRequestScope<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithRequestScope<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(scope) = RequestScope::with_current(|s| s.cloned()) else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&with_scope(&line, &scope))
    }
}

/// `line` (one formatted event) with the request's scope added: after the
/// opening brace of a JSON object, or in front of the target in text (where a
/// span prefix goes), keeping everything else as it was.
fn with_scope(line: &str, scope: &RequestScope) -> String {
    let mut out = String::with_capacity(line.len() + 160);
    if let Some(rest) = line.strip_prefix('{') {
        let _ = write!(
            out,
            "{{\"request_id\":{},\"method\":{},\"route\":{},\"contract\":{},",
            json(scope.request_id.as_str()),
            json(scope.method),
            json(scope.route),
            json(scope.contract)
        );
        out.push_str(rest);
        return out;
    }
    let prefix = format!(
        "request{{request_id={} method={} route={} contract={}}}: ",
        scope.request_id, scope.method, scope.route, scope.contract
    );
    match after_level(line) {
        Some(at) => {
            out.push_str(&line[..at]);
            out.push_str(&prefix);
            out.push_str(&line[at..]);
        }
        None => {
            out.push_str(&prefix);
            out.push_str(line);
        }
    }
    out
}

/// Where a text line's level ends: lines are `<time> <LEVEL> <target>:
/// <fields>`, and the scope goes where a span would, before the target.
fn after_level(line: &str) -> Option<usize> {
    let time_end = line.find(' ')?;
    let rest = &line[time_end..];
    let level_start = time_end + (rest.len() - rest.trim_start().len());
    let level_len = line[level_start..].find(' ')?;
    let level = &line[level_start..level_start + level_len];
    matches!(level, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR")
        .then_some(level_start + level_len + 1)
}

fn json(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// The process-wide metrics recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by a test harness);
            // this handle then renders nothing, which is harmless.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tachigo_frontends::common::RequestId;

    fn scope() -> RequestScope {
        RequestScope {
            request_id: RequestId::new(),
            method: "POST",
            route: "/api/v1/auth/refresh",
            contract: "dashboard",
        }
    }

    #[test]
    fn text_lines_get_the_scope_where_a_span_goes() {
        let s = scope();
        let line = "2026-12-01T00:00:00.000000Z  INFO tachigo_frontends::dashboard: body fallback user_agent=x\n";
        let out = with_scope(line, &s);
        assert_eq!(
            out,
            format!("2026-12-01T00:00:00.000000Z  INFO request{{request_id={} method=POST route=/api/v1/auth/refresh contract=dashboard}}: tachigo_frontends::dashboard: body fallback user_agent=x\n", s.request_id)
        );
    }

    #[test]
    fn a_level_word_in_the_message_does_not_move_the_scope() {
        let s = scope();
        let line = "2026-12-01T00:00:00.000000Z ERROR t: DEBUG INFO words\n";
        assert!(with_scope(line, &s).starts_with("2026-12-01T00:00:00.000000Z ERROR request{"));
    }

    #[test]
    fn json_lines_get_the_scope_as_fields() {
        let s = scope();
        let line = "{\"timestamp\":\"t\",\"level\":\"INFO\",\"message\":\"m\"}\n";
        let out = with_scope(line, &s);
        let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(value["request_id"], s.request_id.as_str());
        assert_eq!(value["route"], "/api/v1/auth/refresh");
        assert_eq!(value["contract"], "dashboard");
        assert_eq!(value["method"], "POST");
        assert_eq!(value["message"], "m");
    }
}
