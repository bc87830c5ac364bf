//! The documents' opening tables point at things that exist: every test
//! RELIABILITY.md's "At a glance" table names is a function in the file it
//! names, and every chart BENCHMARKS.md shows is a committed file.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The rows of the first table after the heading `heading`.
fn table_after(text: &str, heading: &str) -> Vec<String> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no heading {heading}"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(str::to_string)
        .collect()
}

/// The backticked spans of `s`, in order.
fn code_spans(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_test_named_in_the_reliability_table_exists() {
    let text = read("RELIABILITY.md");
    let rows = table_after(&text, "## At a glance");
    assert!(rows.len() >= 20, "{} rows", rows.len());
    let mut checked = 0;
    for row in &rows {
        let cells: Vec<&str> = row.split(" | ").collect();
        let test_cell = cells.get(1).unwrap_or_else(|| panic!("row {row}"));
        let spans = code_spans(test_cell);
        let mut file: Option<String> = None;
        let mut named = 0;
        for span in spans {
            if span.starts_with("tests/") && span.ends_with(".rs") {
                file = Some(read(span));
            } else if let Some(f) = &file {
                if span
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    assert!(
                        f.contains(&format!("fn {span}(")),
                        "{span} not found in its file: {row}"
                    );
                    named += 1;
                }
            }
        }
        // Rows without a test file are the by-hand ones (fuzzing).
        if file.is_some() {
            assert!(named > 0, "a test file without a test name: {row}");
            checked += named;
        } else {
            assert!(
                test_cell.contains("by hand"),
                "neither a test nor a by-hand run: {row}"
            );
        }
    }
    assert!(checked >= 20, "{checked}");
}

#[test]
fn every_chart_in_benchmarks_md_is_committed() {
    let text = read("BENCHMARKS.md");
    let mut n = 0;
    for part in text.split("](").skip(1) {
        let Some(end) = part.find(')') else { continue };
        let target = &part[..end];
        if target.ends_with(".svg") {
            assert!(Path::new(ROOT).join(target).is_file(), "{target} missing");
            n += 1;
        }
    }
    assert!(n >= 4, "BENCHMARKS.md shows {n} charts");
}
