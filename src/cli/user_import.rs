//! `tachigo-auth user import --file users.jsonl [--dry-run]`: moves users in
//! from another system. The file holds one JSON object per line; this module
//! owns that format (reading, field names, timestamps, line numbers) and hands
//! each user to [`Engine::import_user`], which validates and stores it whole.
//!
//! The file is streamed, one bounded line at a time, so its size does not
//! matter. A bad line is reported by its number and the rest go on; the
//! summary counts what was imported, skipped (already there) and refused.
//! See docs/operations.md, "Moving users in".

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use tachigo_engine::{Engine, ImportOutcome, ImportedAccount, ImportedUser};

use super::{open_engine, Common};

/// Longest line read; a longer one is refused without being held in memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Exit status when the whole file was read but some lines were refused (the
/// others were imported): a script sees that something needs fixing, and a
/// second run after the fix is safe since imported users are skipped.
pub const EXIT_LINES_REFUSED: i32 = 3;

/// One line of the import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserLine {
    email: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(deserialize_with = "unix_millis_or_rfc3339")]
    created_at: i64,
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    accounts: Vec<AccountLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountLine {
    provider: String,
    subject: String,
    #[serde(default)]
    email: Option<String>,
}

impl From<UserLine> for ImportedUser {
    fn from(line: UserLine) -> ImportedUser {
        ImportedUser {
            email: line.email,
            email_verified: line.email_verified,
            name: line.name,
            roles: line.roles,
            created_at: line.created_at,
            password_hash: line.password_hash,
            accounts: line
                .accounts
                .into_iter()
                .map(|a| ImportedAccount {
                    provider: a.provider,
                    subject: a.subject,
                    email: a.email,
                })
                .collect(),
        }
    }
}

/// `created_at`: Unix milliseconds (an integer) or an RFC 3339 time
/// (`2019-03-04T05:06:07Z`, `2020-01-02T03:04:05.678+02:00`).
fn unix_millis_or_rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("Unix milliseconds or an RFC 3339 time")
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("created_at is out of range"))
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
            let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map_err(|e| E::custom(format_args!("created_at is not an RFC 3339 time: {e}")))?;
            i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
                .map_err(|_| E::custom("created_at is out of range"))
        }
    }
    d.deserialize_any(Visitor)
}

/// What one run did.
#[derive(Debug, Default)]
struct Tally {
    imported: u64,
    skipped: u64,
    refused: u64,
}

/// Users earlier in the file, by email and by account, with their line.
#[derive(Default)]
struct SeenInFile {
    emails: HashMap<String, u64>,
    accounts: HashMap<(String, String), u64>,
}

impl SeenInFile {
    /// Why `user` repeats an earlier line, if it does.
    fn repeats(&self, user: &ImportedUser) -> Option<String> {
        if let Some(line) = tachigo_engine::normalize_email(&user.email)
            .ok()
            .and_then(|email| self.emails.get(&email))
        {
            return Some(format!("the email is also on line {line}"));
        }
        user.accounts.iter().find_map(|a| {
            self.accounts
                .get(&(a.provider.clone(), a.subject.clone()))
                .map(|line| {
                    format!(
                        "the {} account {} is also on line {line}",
                        a.provider, a.subject
                    )
                })
        })
    }

    fn remember(&mut self, user: &ImportedUser, line: u64) {
        if let Ok(email) = tachigo_engine::normalize_email(&user.email) {
            self.emails.entry(email).or_insert(line);
        }
        for a in &user.accounts {
            self.accounts
                .entry((a.provider.clone(), a.subject.clone()))
                .or_insert(line);
        }
    }
}

/// One line of the file as read.
enum Line {
    Text(Vec<u8>),
    TooLong,
}

/// Reads the next line (without its `\n` / `\r\n`), holding at most
/// [`MAX_LINE_BYTES`] + 1 bytes of it; `None` at the end of the file.
fn next_line(reader: &mut impl BufRead) -> std::io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let limit = MAX_LINE_BYTES as u64 + 1;
    if reader.by_ref().take(limit).read_until(b'\n', &mut buf)? == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Some(Line::Text(buf)));
    }
    if buf.len() <= MAX_LINE_BYTES {
        return Ok(Some(Line::Text(buf))); // the last line, without a newline
    }
    // Too long: pass over the rest of it without keeping it.
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                break;
            }
            None => {
                let len = available.len();
                reader.consume(len);
            }
        }
    }
    Ok(Some(Line::TooLong))
}

/// A JSON error without serde_json's "at line 1 column N" (every line of the
/// file is line 1 to it), with its column instead.
fn json_refusal(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);
    match e.classify() {
        serde_json::error::Category::Data => format!("{message} (column {})", e.column()),
        _ => format!("not a JSON object: {message} (column {})", e.column()),
    }
}

/// Imports every line of `reader`, printing a report of each line not
/// imported; stops only when the file or storage fails.
async fn import_lines(
    engine: &Engine,
    mut reader: impl BufRead,
    dry_run: bool,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let mut seen = SeenInFile::default();
    let mut number = 0u64;
    while let Some(line) = next_line(&mut reader).context("reading the import file")? {
        number += 1;
        let refused = |tally: &mut Tally, reason: &dyn std::fmt::Display| {
            println!("line {number}: refused: {reason}");
            tally.refused += 1;
        };
        let text = match line {
            Line::TooLong => {
                refused(
                    tally,
                    &format_args!("the line is longer than {MAX_LINE_BYTES} bytes"),
                );
                continue;
            }
            Line::Text(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    refused(tally, &"the line is not UTF-8");
                    continue;
                }
            },
        };
        // A byte-order mark some editors put before the first line.
        let text = if number == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(&text)
        } else {
            &text
        };
        if text.trim().is_empty() {
            continue;
        }
        let user: ImportedUser = match serde_json::from_str::<UserLine>(text) {
            Ok(parsed) => parsed.into(),
            Err(e) => {
                refused(tally, &json_refusal(&e));
                continue;
            }
        };
        if let Some(repeat) = seen.repeats(&user) {
            refused(tally, &repeat);
            continue;
        }
        let outcome = engine
            .import_user(user.clone(), dry_run)
            .await
            .with_context(|| format!("line {number}: storage failed; the lines before it are done and a second run skips them"))?;
        match outcome {
            ImportOutcome::Imported { .. } | ImportOutcome::WouldImport => {
                tally.imported += 1;
                seen.remember(&user, number);
            }
            ImportOutcome::Skipped(reason) => {
                println!("line {number}: skipped: {reason}");
                tally.skipped += 1;
                seen.remember(&user, number);
            }
            ImportOutcome::Refused(reason) => refused(tally, &reason),
        }
    }
    Ok(())
}

pub async fn run(common: &Common, file: &Path, dry_run: bool) -> anyhow::Result<()> {
    let reader =
        BufReader::new(File::open(file).with_context(|| format!("opening `{}`", file.display()))?);
    let engine = open_engine(common).await?;
    let mut tally = Tally::default();
    let result = import_lines(&engine, reader, dry_run, &mut tally).await;
    engine.shutdown().await?;
    let verb = if dry_run { "would import" } else { "imported" };
    let so_far = if result.is_err() {
        " before stopping"
    } else {
        ""
    };
    let dry = if dry_run {
        " (dry run: nothing stored)"
    } else {
        ""
    };
    println!(
        "{verb} {}, skipped {}, refused {}{so_far}{dry}",
        tally.imported, tally.skipped, tally.refused
    );
    result?;
    if tally.refused > 0 {
        // A status of its own, not an error: everything else was imported.
        let released = engine.storage_release();
        drop(engine);
        released.await;
        std::io::stdout().flush()?;
        eprintln!(
            "{} line(s) refused: fix them and run the import again (imported users are skipped)",
            tally.refused
        );
        std::process::exit(EXIT_LINES_REFUSED);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Result<String, ()>> {
        let mut reader = BufReader::with_capacity(1024, input);
        let mut out = Vec::new();
        while let Some(line) = next_line(&mut reader).unwrap() {
            out.push(match line {
                Line::Text(t) => Ok(String::from_utf8(t).unwrap()),
                Line::TooLong => Err(()),
            });
        }
        out
    }

    #[test]
    fn lines_are_split_bounded_and_a_long_one_is_passed_over() {
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        let exact = "y".repeat(MAX_LINE_BYTES);
        let input = format!("a\r\n\n{long}\nb\n{exact}\n{long}");
        assert_eq!(
            lines(input.as_bytes()),
            vec![
                Ok("a".into()),
                Ok("".into()),
                Err(()),
                Ok("b".into()),
                Ok(exact),
                Err(())
            ]
        );
    }

    #[test]
    fn created_at_takes_millis_or_rfc3339_with_any_offset() {
        let at = |v: &str| {
            serde_json::from_str::<UserLine>(&format!(r#"{{"email":"a@b.c","created_at":{v}}}"#))
                .map(|l| l.created_at)
                .map_err(|e| json_refusal(&e))
        };
        assert_eq!(at("1546300800000"), Ok(1_546_300_800_000));
        assert_eq!(at(r#""2019-01-01T00:00:00Z""#), Ok(1_546_300_800_000));
        assert_eq!(
            at(r#""2019-01-01T02:00:00.5+02:00""#),
            Ok(1_546_300_800_500)
        );
        assert!(at(r#""yesterday""#).unwrap_err().contains("RFC 3339"));
        assert!(at("1.5").is_err());
    }

    #[test]
    fn unknown_fields_are_refused_with_their_column() {
        let e =
            serde_json::from_str::<UserLine>(r#"{"emial":"a@b.c","created_at":0}"#).unwrap_err();
        let reason = json_refusal(&e);
        assert!(reason.starts_with("unknown field `emial`"), "{reason}");
        assert!(!reason.contains("line 1"), "{reason}");
        let e = serde_json::from_str::<UserLine>("{not json").unwrap_err();
        assert!(json_refusal(&e).starts_with("not a JSON object"));
    }
}
