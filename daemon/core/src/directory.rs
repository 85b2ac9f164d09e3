//! The customer directory's records and its CSV import and export (SERVICE-POLICY §3 VIP customers, §7 customer
//! directory: names for numbers, VIP, level A/B/C, best time to call, notes; CSV import).
//!
//! Pure: no I/O. The store keeps [`Customer`] records keyed by their normalised number; the web API imports with
//! [`parse_csv`], exports with [`to_csv`] and checks single records with [`validate`].
//!
//! Import files come from people's spreadsheets, so the reader is forgiving about what Excel and friends write:
//! UTF-8 with or without BOM, GB18030/GBK (Excel on Chinese Windows), UTF-16 with BOM (Excel's "Unicode text"),
//! comma, semicolon (European locales) or tab separators, an Excel `sep=;` first line, CRLF, LF or lone-CR line
//! ends, blank rows and rows of empty cells. It is strict about what it cannot guess: an unknown column stops the
//! import (a misspelt `notes` column would otherwise lose data silently), and every bad row is reported with its
//! line number while the good rows are kept.
//!
//! Long because the CSV import accepts the shapes spreadsheets write (encodings, headers, quoting), each documented.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Customer level (A best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerLevel {
    A,
    B,
    C,
}

impl CustomerLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerLevel::A => "A",
            CustomerLevel::B => "B",
            CustomerLevel::C => "C",
        }
    }

    /// `A`, `B` or `C` in either case, optionally followed by `级` ("A级"); surrounding whitespace ignored.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim();
        let t = t.strip_suffix('级').unwrap_or(t).trim_end();
        match t {
            "A" | "a" => Some(CustomerLevel::A),
            "B" | "b" => Some(CustomerLevel::B),
            "C" | "c" => Some(CustomerLevel::C),
            _ => None,
        }
    }
}

impl fmt::Display for CustomerLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Normalised (see [`normalize_number`]): digits, a leading '+', '*' and '#'.
    pub number: String,
    pub name: String,
    #[serde(default)]
    pub vip: bool,
    pub level: Option<CustomerLevel>,
    /// Free text, e.g. "weekdays 14:00-17:00".
    pub best_time: Option<String>,
    pub notes: Option<String>,
}

/// A problem with one row of an import file (or with the file itself: then `line` is the header's line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowError {
    /// 1-based physical line on which the row starts.
    pub line: usize,
    pub message: String,
}

/// Messages of warning-level row errors (the row was imported, or superseded, but someone should look) start
/// with this.
pub const WARNING_PREFIX: &str = "warning: ";

impl RowError {
    /// True for a warning (a duplicate number: the later row was imported), false for a row that was rejected.
    pub fn is_warning(&self) -> bool {
        self.message.starts_with(WARNING_PREFIX)
    }
}

/// The export header, also accepted on import.
pub const CSV_HEADER: &str = "number,name,vip,level,best_time,notes";

/// Longest normalised number accepted (E.164 has at most 15 digits; this leaves room for prefixes and extensions).
pub const MAX_NUMBER_LEN: usize = 32;

/// Normalises a phone number as typed by a person: keeps digits, a leading '+', '*' and '#'; drops spaces
/// (including no-break and ideographic spaces), '-', '.', '(' and ')'. Full-width forms (`１３８`, `＋`, `－`)
/// count as their ASCII twins, typographic dashes as '-'. `None` when anything else is in it (letters, a '+'
/// not at the start), when no digit remains, or when it is longer than [`MAX_NUMBER_LEN`].
pub fn normalize_number(s: &str) -> Option<String> {
    let mut out = String::new();
    for ch in s.chars() {
        let c = match ch {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            _ => ch,
        };
        match c {
            '0'..='9' | '*' | '#' => out.push(c),
            '+' if out.is_empty() => out.push(c),
            '-' | '.' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            _ => return None,
        }
        if out.len() > MAX_NUMBER_LEN {
            return None;
        }
    }
    out.bytes().any(|b| b.is_ascii_digit()).then_some(out)
}

/// Validates one record given through the API, by the same rules as an import row: the number must normalise,
/// the name must not be blank. Returns the normalised record (number normalised; name, best time and notes
/// trimmed; blank optional texts become `None`), or every problem found.
pub fn validate(c: &Customer) -> Result<Customer, Vec<String>> {
    let mut problems = Vec::new();
    let number = normalize_number(&c.number);
    if number.is_none() {
        problems.push(number_problem(&c.number));
    }
    let name = c.name.trim();
    if name.is_empty() {
        problems.push("empty name".to_owned());
    }
    match number {
        Some(number) if problems.is_empty() => Ok(Customer {
            number,
            name: name.to_owned(),
            vip: c.vip,
            level: c.level,
            best_time: clean_text(c.best_time.as_deref()),
            notes: clean_text(c.notes.as_deref()),
        }),
        _ => Err(problems),
    }
}

fn clean_text(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn number_problem(raw: &str) -> String {
    let t = raw.trim();
    if t.is_empty() {
        "missing number".to_owned()
    } else if looks_scientific(t) {
        format!(
            "bad number {}: Excel showed it in scientific notation and lost digits; format the column as Text and \
             export again",
            quoted(t)
        )
    } else {
        format!("bad number {}", quoted(t))
    }
}

/// `1.38001E+10`, `1E10`: what Excel makes of a long number in a General-format column.
fn looks_scientific(s: &str) -> bool {
    let Some((mantissa, exponent)) = s.split_once(['e', 'E']) else {
        return false;
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && digits(frac) && digits(exponent)
}

/// A value for an error message: quoted, control characters escaped, cut at 40 characters.
fn quoted(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

fn parse_vip(s: &str) -> Result<bool, String> {
    match s.trim().to_lowercase().as_str() {
        "" | "false" | "no" | "0" | "否" => Ok(false),
        "true" | "yes" | "1" | "是" => Ok(true),
        _ => Err(format!(
            "bad vip flag {} (use true/false, yes/no, 1/0 or 是/否)",
            quoted(s.trim())
        )),
    }
}

fn parse_level(s: &str) -> Result<Option<CustomerLevel>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    CustomerLevel::parse(s)
        .map(Some)
        .ok_or_else(|| format!("bad level {} (use A, B or C)", quoted(s.trim())))
}

// ---------------------------------------------------------------------------------------------------------------
// Export

/// Exports the directory: UTF-8 with BOM (so Excel opens it as UTF-8), header [`CSV_HEADER`], CRLF line ends,
/// RFC 4180 quoting; formula-looking cells get a leading apostrophe. [`parse_csv`] reads it back unchanged.
pub fn to_csv(customers: &[Customer]) -> String {
    let mut out = String::with_capacity(64 + customers.len() * 64);
    out.push('\u{FEFF}');
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for c in customers {
        let cells = [
            c.number.as_str(),
            c.name.as_str(),
            if c.vip { "true" } else { "false" },
            c.level.map_or("", CustomerLevel::as_str),
            c.best_time.as_deref().unwrap_or(""),
            c.notes.as_deref().unwrap_or(""),
        ];
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::csv::push_cell(&mut out, cell);
        }
        out.push_str("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Import

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Number,
    Name,
    Vip,
    Level,
    BestTime,
    Notes,
}

impl Column {
    const ALL: [Column; 6] = [
        Column::Number,
        Column::Name,
        Column::Vip,
        Column::Level,
        Column::BestTime,
        Column::Notes,
    ];

    fn from_header(cell: &str) -> Option<Column> {
        let key: String = cell
            .trim()
            .chars()
            .map(|c| {
                if c == ' ' || c == '-' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        match key.as_str() {
            "number" | "号码" | "电话" => Some(Column::Number),
            "name" | "姓名" | "名称" => Some(Column::Name),
            "vip" => Some(Column::Vip),
            "level" | "等级" => Some(Column::Level),
            "best_time" | "最佳时间" => Some(Column::BestTime),
            "notes" | "备注" => Some(Column::Notes),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Column::Number => "number",
            Column::Name => "name",
            Column::Vip => "vip",
            Column::Level => "level",
            Column::BestTime => "best_time",
            Column::Notes => "notes",
        }
    }
}

/// Parses an import file: UTF-8 (with or without BOM) or, if not valid UTF-8, GB18030 (Excel on Chinese Windows
/// saves CSV as GBK); UTF-16 with a BOM is read too.
///
/// A header row is required; column names are case-insensitive, in any order, English or Chinese: number|号码|电话,
/// name|姓名|名称, vip (true/false/yes/no/1/0/是/否, blank = false), level|等级 (A/B/C, blank = none),
/// best_time|最佳时间, notes|备注. Only number and name are required columns. Unknown, repeated or missing
/// columns are one error on the header's line and nothing is imported. A column with an empty header is ignored
/// as long as its cells are empty. RFC 4180 quoting (quoted fields with separators, doubled quotes, line breaks);
/// the separator (comma, semicolon or tab) is the one the header line uses most, or the one an Excel `sep=X`
/// first line names. Cells are trimmed; a leading apostrophe before a formula-looking cell (see [`to_csv`]) and
/// before a number is removed.
///
/// Returns the good rows in file order, plus one error per bad row with its 1-based line number and every problem
/// with it (bad number, empty name, bad level, bad vip flag, values outside the header's columns, an unterminated
/// quote). A number repeated within the file: the later row wins and is reported as a warning
/// ([`RowError::is_warning`]). Blank rows (also rows of empty cells) are skipped. Never panics.
pub fn parse_csv(bytes: &[u8]) -> (Vec<Customer>, Vec<RowError>) {
    let text = decode(bytes);
    let Some((mut reader, first_line)) = Reader::start(&text) else {
        let message = format!("empty file: a header row is required ({CSV_HEADER})");
        return (Vec::new(), vec![RowError { line: 1, message }]);
    };
    let header = loop {
        match reader.next_record() {
            None => {
                let message = format!("no header row: a header row is required ({CSV_HEADER})");
                return (
                    Vec::new(),
                    vec![RowError {
                        line: first_line,
                        message,
                    }],
                );
            }
            Some(Err(e)) => return (Vec::new(), vec![e]),
            Some(Ok(r)) if is_blank(&r.fields) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let columns = match map_header(&header.fields) {
        Ok(columns) => columns,
        Err(message) => {
            return (
                Vec::new(),
                vec![RowError {
                    line: header.line,
                    message,
                }],
            )
        }
    };

    let mut rows: Vec<Option<Customer>> = Vec::new();
    let mut errors = Vec::new();
    // number -> (index in rows, line) of the row that currently holds it
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    while let Some(record) = reader.next_record() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if is_blank(&record.fields) {
            continue;
        }
        let customer = match row_to_customer(&columns, &record.fields) {
            Ok(c) => c,
            Err(problems) => {
                errors.push(RowError {
                    line: record.line,
                    message: problems.join("; "),
                });
                continue;
            }
        };
        if let Some(&(index, line)) = seen.get(&customer.number) {
            rows[index] = None;
            errors.push(RowError {
                line: record.line,
                message: format!(
                    "{WARNING_PREFIX}duplicate number {} (also on line {line}); this later row replaces it",
                    customer.number
                ),
            });
        }
        seen.insert(customer.number.clone(), (rows.len(), record.line));
        rows.push(Some(customer));
    }
    (rows.into_iter().flatten().collect(), errors)
}

fn decode(bytes: &[u8]) -> String {
    let text = match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, bom_len)) => encoding
            .decode_without_bom_handling(&bytes[bom_len..])
            .0
            .into_owned(),
        None => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => encoding_rs::GB18030
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        },
    };
    // A GB18030-encoded BOM decodes to U+FEFF.
    match text.strip_prefix('\u{FEFF}') {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

fn is_blank(fields: &[String]) -> bool {
    fields.iter().all(|f| f.trim().is_empty())
}

fn map_header(fields: &[String]) -> Result<Vec<Option<Column>>, String> {
    let mut columns = Vec::with_capacity(fields.len());
    let mut unknown = Vec::new();
    let mut repeated = Vec::new();
    let mut seen = [false; Column::ALL.len()];
    for cell in fields {
        let cell = cell.trim();
        let column = if cell.is_empty() {
            None
        } else {
            Column::from_header(cell)
        };
        match column {
            None if !cell.is_empty() => unknown.push(quoted(cell)),
            None => {}
            Some(col) if seen[col as usize] => repeated.push(format!(
                "{} (another name for {})",
                quoted(cell),
                col.name()
            )),
            Some(col) => seen[col as usize] = true,
        }
        columns.push(column);
    }
    let missing: Vec<&str> = [Column::Number, Column::Name]
        .into_iter()
        .filter(|c| !seen[*c as usize])
        .map(Column::name)
        .collect();
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!(
            "unknown column(s) {}; the columns are {} (or 号码/电话, 姓名/名称, vip, 等级, 最佳时间, 备注)",
            list(&unknown),
            Column::ALL.map(Column::name).join(", ")
        ));
    }
    if !repeated.is_empty() {
        problems.push(format!("repeated column(s) {}", list(&repeated)));
    }
    if !missing.is_empty() {
        problems.push(format!(
            "missing column(s) {} (the first row must be a header such as {CSV_HEADER})",
            missing.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(problems.join("; "))
    }
}

/// At most ten items of a list for a message.
fn list(items: &[String]) -> String {
    const MAX: usize = 10;
    match items.len().checked_sub(MAX) {
        Some(more) if more > 0 => format!("{} and {more} more", items[..MAX].join(", ")),
        _ => items.join(", "),
    }
}

fn row_to_customer(columns: &[Option<Column>], fields: &[String]) -> Result<Customer, Vec<String>> {
    let mut cells: [&str; 6] = [""; 6];
    let mut stray = false;
    for (i, field) in fields.iter().enumerate() {
        let value = crate::csv::unguard(field.trim());
        match columns.get(i).copied().flatten() {
            Some(col) => cells[col as usize] = value,
            None => stray |= !value.is_empty(),
        }
    }
    let cell = |c: Column| cells[c as usize];
    // Excel users type a leading apostrophe to keep a number's leading zero.
    let number = cell(Column::Number);
    let number = number.strip_prefix('\'').unwrap_or(number);
    let candidate = Customer {
        number: number.to_owned(),
        name: cell(Column::Name).to_owned(),
        vip: false,
        level: None,
        best_time: Some(cell(Column::BestTime).to_owned()),
        notes: Some(cell(Column::Notes).to_owned()),
    };
    let (customer, mut problems) = match validate(&candidate) {
        Ok(c) => (Some(c), Vec::new()),
        Err(p) => (None, p),
    };
    let vip = match parse_vip(cell(Column::Vip)) {
        Ok(v) => v,
        Err(e) => {
            problems.push(e);
            false
        }
    };
    let level = match parse_level(cell(Column::Level)) {
        Ok(l) => l,
        Err(e) => {
            problems.push(e);
            None
        }
    };
    if stray {
        problems.push(format!(
            "values outside the header's {} columns",
            columns.len()
        ));
    }
    match customer {
        Some(c) if problems.is_empty() => Ok(Customer { vip, level, ..c }),
        _ => Err(problems),
    }
}

struct Record {
    line: usize,
    fields: Vec<String>,
}

/// RFC 4180 record reader over decoded text, counting physical lines (CRLF, LF or a lone CR).
struct Reader<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    sep: char,
}

impl<'a> Reader<'a> {
    /// Skips leading blank lines, takes an Excel `sep=X` line, or else detects the separator from the header line.
    /// Returns the reader positioned at the header, and the header's line; `None` when the text is blank.
    fn start(text: &'a str) -> Option<(Reader<'a>, usize)> {
        let mut rest = text;
        let mut line = 1;
        loop {
            let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
            let current = &rest[..end];
            let after = match rest[end..].strip_prefix("\r\n") {
                Some(after) => after,
                None => rest.get(end + 1..).unwrap_or(""),
            };
            if current.trim().is_empty() {
                if end == rest.len() {
                    return None;
                }
                rest = after;
                line += 1;
                continue;
            }
            let sep = match sep_directive(current) {
                Some(sep) => {
                    rest = after;
                    line += 1;
                    sep
                }
                None => detect_separator(current),
            };
            let reader = Reader {
                chars: rest.chars().peekable(),
                line,
                sep,
            };
            return Some((reader, line));
        }
    }

    fn next_record(&mut self) -> Option<Result<Record, RowError>> {
        self.chars.peek()?;
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut was_quoted = false;
        let mut quote_line = start;
        loop {
            let Some(c) = self.chars.next() else {
                if in_quotes {
                    let message = format!(
                        "unterminated quoted field (the quote opened on line {quote_line} never closes; the rest of \
                         the file was read into it)"
                    );
                    return Some(Err(RowError {
                        line: start,
                        message,
                    }));
                }
                fields.push(field);
                return Some(Ok(Record {
                    line: start,
                    fields,
                }));
            };
            if in_quotes {
                match c {
                    '"' if self.chars.peek() == Some(&'"') => {
                        self.chars.next();
                        field.push('"');
                    }
                    '"' => in_quotes = false,
                    '\n' => {
                        self.line += 1;
                        field.push(c);
                    }
                    '\r' => {
                        if self.chars.peek() != Some(&'\n') {
                            self.line += 1;
                        }
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                // An opening quote, possibly after stray spaces (`a, "b,c"`).
                '"' if !was_quoted && field.trim().is_empty() => {
                    field.clear();
                    in_quotes = true;
                    was_quoted = true;
                    quote_line = self.line;
                }
                c if c == self.sep => {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\n' | '\r' => {
                    if c == '\r' && self.chars.peek() == Some(&'\n') {
                        self.chars.next();
                    }
                    self.line += 1;
                    fields.push(field);
                    return Some(Ok(Record {
                        line: start,
                        fields,
                    }));
                }
                _ => field.push(c),
            }
        }
    }
}

/// Excel's `sep=;` first line.
fn sep_directive(line: &str) -> Option<char> {
    let t = line.trim_matches(' ');
    let prefix = t.get(..4)?;
    if !prefix.eq_ignore_ascii_case("sep=") {
        return None;
    }
    let mut rest = t[4..].chars();
    match (rest.next(), rest.next()) {
        (Some(c), None) if c != '"' => Some(c),
        _ => None,
    }
}

/// The separator the header line uses most outside quotes; comma on a tie or when there is none.
fn detect_separator(line: &str) -> char {
    let mut counts = [0usize; 3];
    let mut in_quotes = false;
    for c in line.chars() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => counts[0] += 1,
            ';' if !in_quotes => counts[1] += 1,
            '\t' if !in_quotes => counts[2] += 1,
            _ => {}
        }
    }
    let best = (1..3).fold(0, |best, i| if counts[i] > counts[best] { i } else { best });
    [',', ';', '\t'][best]
}

#[cfg(test)]
mod tests;
