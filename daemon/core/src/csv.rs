//! The one CSV writer (call and task exports, the customer directory, reports): RFC 4180 quoting, CRLF line ends,
//! UTF-8 with a byte-order mark so Excel shows Chinese names, and one formula guard (OWASP "CSV injection"): a cell
//! that a spreadsheet would run as a formula gets a leading apostrophe, which [`unguard`] removes again on import.

use std::borrow::Cow;

/// Starts every CSV file: Excel then reads it as UTF-8.
pub const BOM: char = '\u{FEFF}';

/// Digits with at most one decimal point: "+8613800138000" and "-5.5" are numbers, not formulas.
fn is_plain_number(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|&b| b == b'.').count() <= 1
}

/// What a spreadsheet would take for a formula: a leading `=`, `@`, tab or carriage return, or `+`/`-` not followed
/// by a plain number.
pub fn looks_like_formula(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_plain_number(&s[1..]),
        _ => false,
    }
}

/// A cell needs the apostrophe when it looks like a formula, or when it is apostrophes before something that does:
/// escaping those too makes export then import give back exactly what was there.
fn needs_apostrophe(s: &str) -> bool {
    looks_like_formula(s.trim_start_matches('\''))
}

/// The cell as written: with a leading apostrophe when [`needs_apostrophe`].
pub fn guard(cell: &str) -> Cow<'_, str> {
    if needs_apostrophe(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The cell as it was before [`guard`].
pub fn unguard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_apostrophe(rest) => rest,
        _ => cell,
    }
}

/// One field: guarded, then quoted when it holds a comma, a semicolon or a tab (the separators of other Excel
/// locales), a quote or a line break.
pub fn push_cell(out: &mut String, cell: &str) {
    let cell = guard(cell);
    if cell.contains([',', ';', '\t', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&cell);
    }
}

/// One record, CRLF-terminated.
pub fn push_row<S: AsRef<str>>(out: &mut String, row: &[S]) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_cell(out, cell.as_ref());
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formulas_are_defused_and_numbers_are_not() {
        let mut out = String::new();
        push_row(
            &mut out,
            &[
                "=1+1",
                "@SUM(A1)",
                "+86138",
                "-5.5",
                "-x",
                "a,b",
                "say \"hi\"",
                "'=x",
                "'ok",
            ],
        );
        assert_eq!(
            out,
            "'=1+1,'@SUM(A1),+86138,-5.5,'-x,\"a,b\",\"say \"\"hi\"\"\",''=x,'ok\r\n"
        );
    }

    proptest! {
        #[test]
        fn guard_then_unguard_gives_back_the_cell(cell in ".{0,12}") {
            let written = guard(&cell);
            prop_assert_eq!(unguard(&written), cell.as_str());
            prop_assert!(!looks_like_formula(&written), "a written cell is never a formula");
        }
    }
}
