//! The routes a contract serves, as `(method, template)` pairs such as
//! `(GET, "/api/auth/callback/{provider}")`. Everything that must not take
//! caller-chosen text reads from here instead of the request: the `route` and
//! `method` labels of the request metrics (so a spray of invented paths or
//! methods cannot grow the number of series) and the methods a CORS preflight
//! allows (so they always match what is actually served).
//!
//! A template segment in braces matches any one path segment; every other
//! segment matches itself. Each contract's table sits beside its warp filter
//! tree, and a test per contract checks that every row is served.

use http::Method;

/// One served route.
#[derive(Debug, Clone)]
struct Route {
    method: Method,
    template: &'static str,
    /// The template split on `/`, `None` for a `{placeholder}` segment.
    segments: Vec<Option<&'static str>>,
    /// The template without its leading `/`, when it has no placeholder: a
    /// path matches it exactly, with no need to split the path.
    literal: Option<&'static str>,
}

impl Route {
    /// Whether the path (without its leading and one trailing `/`), split
    /// into `parts` (`count` of them, `usize::MAX` when too many), matches.
    fn matches(&self, parts: &[&str; MAX_SEGMENTS], count: usize) -> bool {
        self.segments.len() == count
            && self.segments.iter().zip(parts).all(|(expected, part)| {
                !part.is_empty() && expected.is_none_or(|literal| literal == *part)
            })
    }
}

/// `path` without its leading `/` and one trailing `/` (the contracts'
/// filters ignore one).
fn trimmed(path: &str) -> &str {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.strip_suffix('/').unwrap_or(path)
}

/// `path` (trimmed) split on `/`; the count is `usize::MAX` when it has more
/// segments than any template may.
fn split(path: &str) -> ([&str; MAX_SEGMENTS], usize) {
    let mut parts = [""; MAX_SEGMENTS];
    let mut count = 0;
    for part in path.split('/') {
        if count == MAX_SEGMENTS {
            return (parts, usize::MAX);
        }
        parts[count] = part;
        count += 1;
    }
    (parts, count)
}

/// What a mount serves.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// The most segments a template may have (a longer path matches nothing).
const MAX_SEGMENTS: usize = 16;

/// The `route` label of a request that matches no template.
pub const UNMATCHED: &str = "unmatched";

/// The methods requests are labelled with, by [`method_index`]; anything
/// else is `other`.
pub const METHOD_LABELS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other",
];

/// The position of `method`'s label in [`METHOD_LABELS`].
pub fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// The `method` label of `method`.
pub fn method_label(method: &Method) -> &'static str {
    METHOD_LABELS[method_index(method)]
}

fn is_placeholder(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

impl RouteTable {
    /// A table from `(method, template)` rows, most specific first where two
    /// templates match the same path (`/sessions/revoke-others` before
    /// `/sessions/{id}`).
    pub fn new(rows: &[(Method, &'static str)]) -> RouteTable {
        let routes = rows
            .iter()
            .map(|(method, template)| {
                assert!(template.starts_with('/'), "route templates are absolute");
                assert!(
                    template[1..].split('/').count() <= MAX_SEGMENTS,
                    "route templates have at most {MAX_SEGMENTS} segments"
                );
                let segments: Vec<Option<&'static str>> = template[1..]
                    .split('/')
                    .map(|s| (!is_placeholder(s)).then_some(s))
                    .collect();
                Route {
                    method: method.clone(),
                    template,
                    literal: segments.iter().all(Option::is_some).then(|| &template[1..]),
                    segments,
                }
            })
            .collect();
        RouteTable { routes }
    }

    /// The routes serving `path`, with their row numbers; one trailing slash
    /// is ignored, as the contracts' filters ignore it. The path is split once.
    fn matching<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (usize, &'a Route)> + 'a {
        let (parts, count) = split(trimmed(path));
        self.routes
            .iter()
            .enumerate()
            .filter(move |(_, route)| route.matches(&parts, count))
    }

    /// The row serving `method` on `path`; failing that, the first row
    /// matching `path` under another method (a 405); else `None`. Templates
    /// without placeholders compare as whole strings; the path is split only
    /// when a template with placeholders is reached.
    pub fn route(&self, method: &Method, path: &str) -> Option<usize> {
        let path = trimmed(path);
        let mut parts = None;
        let mut first = None;
        for (index, route) in self.routes.iter().enumerate() {
            let matches = match route.literal {
                Some(literal) => literal == path,
                None => {
                    let (parts, count) = parts.get_or_insert_with(|| split(path));
                    route.matches(parts, *count)
                }
            };
            if !matches {
                continue;
            }
            if route.method == *method {
                return Some(index);
            }
            first.get_or_insert(index);
        }
        first
    }

    /// The template of [`RouteTable::route`].
    pub fn label(&self, method: &Method, path: &str) -> Option<&'static str> {
        self.route(method, path).map(|i| self.routes[i].template)
    }

    /// Whether row `index` serves `method` (it may have matched by path alone).
    pub fn serves(&self, index: usize, method: &Method) -> bool {
        self.routes[index].method == *method
    }

    /// The template of row `index`.
    pub fn template(&self, index: usize) -> &'static str {
        self.routes[index].template
    }

    /// How many rows the table has.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The methods served on `path` (every method of the table when no template
    /// matches), plus `OPTIONS`, as a CORS `Access-Control-Allow-Methods` value.
    pub fn allowed_methods(&self, path: &str) -> String {
        let mut methods: Vec<&str> = self
            .matching(path)
            .map(|(_, r)| r.method.as_str())
            .collect();
        if methods.is_empty() {
            methods = self.routes.iter().map(|r| r.method.as_str()).collect();
        }
        methods.push("OPTIONS");
        let mut unique: Vec<&str> = Vec::with_capacity(methods.len());
        for method in methods {
            if !unique.contains(&method) {
                unique.push(method);
            }
        }
        unique.join(", ")
    }

    /// Every row, for tests that check each one is served.
    pub fn rows(&self) -> impl Iterator<Item = (&Method, &'static str)> + '_ {
        self.routes.iter().map(|r| (&r.method, r.template))
    }

    /// A concrete path for `template`, each placeholder replaced by `filler`.
    pub fn example_path(template: &str, filler: &str) -> String {
        template
            .split('/')
            .map(|s| if is_placeholder(s) { filler } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new(&[
            (Method::POST, "/api/v1/auth/sessions/revoke-others"),
            (Method::DELETE, "/api/v1/auth/sessions/{id}"),
            (Method::GET, "/api/auth/callback/{provider}"),
            (Method::PUT, "/api/v1/admin/users/{id}/roles"),
        ])
    }

    #[test]
    fn caller_text_never_becomes_a_label() {
        let t = table();
        assert_eq!(
            t.label(&Method::GET, "/api/auth/callback/anything-at-all"),
            Some("/api/auth/callback/{provider}")
        );
        assert_eq!(
            t.label(&Method::DELETE, "/api/v1/auth/sessions/zz1234"),
            Some("/api/v1/auth/sessions/{id}")
        );
        assert_eq!(
            t.label(&Method::POST, "/api/v1/auth/sessions/revoke-others"),
            Some("/api/v1/auth/sessions/revoke-others")
        );
        // The wrong method still labels by the template (it is a 405 there).
        assert_eq!(
            t.label(&Method::GET, "/api/v1/admin/users/u1/roles"),
            Some("/api/v1/admin/users/{id}/roles")
        );
        assert_eq!(
            t.label(&Method::GET, "/api/auth/callback/twitch/"),
            Some("/api/auth/callback/{provider}")
        );
        assert_eq!(t.label(&Method::GET, "/api/auth/callback/a/b"), None);
        assert_eq!(t.label(&Method::GET, &"/x".repeat(40)), None);
        assert_eq!(
            t.route(&Method::DELETE, "/api/v1/auth/sessions/s1"),
            Some(1)
        );
        assert_eq!(t.label(&Method::GET, "/api/auth/callback/"), None);
        assert_eq!(t.label(&Method::GET, "/nowhere"), None);
    }

    #[test]
    fn the_method_outranks_a_literal_template() {
        let t = table();
        // DELETE on the literal path is the placeholder route's (deleting the
        // session "revoke-others"), as the filters serve it.
        assert_eq!(
            t.route(&Method::DELETE, "/api/v1/auth/sessions/revoke-others"),
            Some(1)
        );
        assert_eq!(
            t.route(&Method::POST, "/api/v1/auth/sessions/revoke-others/"),
            Some(0)
        );
        assert_eq!(
            t.route(&Method::GET, "/api/v1/auth/sessions/revoke-others"),
            Some(0)
        );
        assert_eq!(
            t.route(&Method::POST, "/api/v1/auth/sessions/revoke-others//"),
            None
        );
    }

    /// The first matching row under `method`, else the first under any: the
    /// definition [`RouteTable::route`] must keep while it skips the split.
    fn route_by_definition(t: &RouteTable, method: &Method, path: &str) -> Option<usize> {
        let rows: Vec<(usize, &Route)> = t.matching(path).collect();
        rows.iter()
            .find(|(_, r)| r.method == *method)
            .or(rows.first())
            .map(|(i, _)| *i)
    }

    proptest::proptest! {
        #[test]
        fn route_agrees_with_its_definition(
            segments in proptest::collection::vec(
                proptest::sample::select(vec![
                    "", "api", "v1", "auth", "sessions", "revoke-others", "callback",
                    "twitch", "admin", "users", "u1", "roles", "x",
                ]),
                0..6,
            ),
            trailing in proptest::bool::ANY,
            method in proptest::sample::select(vec![
                Method::GET, Method::POST, Method::PUT, Method::DELETE,
            ]),
        ) {
            let t = table();
            let mut path = format!("/{}", segments.join("/"));
            if trailing {
                path.push('/');
            }
            proptest::prop_assert_eq!(
                t.route(&method, &path),
                route_by_definition(&t, &method, &path),
                "{} {}", method, path
            );
        }
    }

    #[test]
    fn methods_come_from_the_fixed_set() {
        assert_eq!(method_label(&Method::PUT), "PUT");
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "other");
    }

    #[test]
    fn preflights_allow_what_the_path_serves() {
        let t = table();
        assert_eq!(
            t.allowed_methods("/api/v1/admin/users/u1/roles"),
            "PUT, OPTIONS"
        );
        assert_eq!(
            t.allowed_methods("/api/v1/auth/sessions/revoke-others"),
            "POST, DELETE, OPTIONS"
        );
        assert_eq!(
            t.allowed_methods("/unknown"),
            "POST, DELETE, GET, PUT, OPTIONS"
        );
    }

    #[test]
    fn example_paths_fill_placeholders() {
        assert_eq!(
            RouteTable::example_path("/api/v1/admin/users/{id}/roles", "x"),
            "/api/v1/admin/users/x/roles"
        );
    }
}
