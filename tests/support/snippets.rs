//! The code blocks of `docs/contracts/*.md` that tests run or compare, read from
//! the markdown at test time: a snippet is the fenced block right after a
//! `<!-- snippet: NAME -->` line (the same rule as `tests/e2e/lib/snippets.js`).

use std::path::Path;

/// One snippet: its fence's language and its code (every line, each ending in `\n`).
#[derive(Debug)]
pub struct Snippet {
    pub lang: String,
    pub code: String,
}

/// Snippet `name` of `docs/contracts/<doc>`. Panics when the marker is missing
/// or appears twice, or no closed fence follows it.
pub fn doc_snippet(doc: &str, name: &str) -> Snippet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/contracts")
        .join(doc);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let marker = format!("<!-- snippet: {name} -->");
    let at: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim() == marker)
        .collect();
    assert_eq!(at.len(), 1, "{doc}: want exactly one {marker:?} line");
    let open = (at[0] + 1..lines.len())
        .find(|&i| !lines[i].trim().is_empty())
        .unwrap_or_else(|| panic!("{doc}: nothing after {marker:?}"));
    let ticks = lines[open].len() - lines[open].trim_start_matches('`').len();
    assert!(ticks >= 3, "{doc}: no code fence after {marker:?}");
    let fence = &lines[open][..ticks];
    let close = (open + 1..lines.len())
        .find(|&i| lines[i].trim() == fence)
        .unwrap_or_else(|| panic!("{doc}: the fence after {marker:?} is never closed"));
    Snippet {
        lang: lines[open][ticks..].trim().to_string(),
        code: lines[open + 1..close]
            .iter()
            .map(|line| format!("{line}\n"))
            .collect(),
    }
}
