//! Printing, as kubectl prints: tables aligned like Go's tabwriter with kubectl's settings, JSON
//! with sorted keys and four-space indents, and YAML in the style of the Go YAML library kubectl
//! uses (sorted keys, sequences flush with their key, strings quoted only when they must be,
//! long lines folded at 80 columns).

use serde_json::Value;

/// kubectl's tabwriter settings: a cell is at least 6 wide, and 3 spaces follow its text.
const MIN_WIDTH: usize = 6;
const PADDING: usize = 3;

/// Rows of cells; every cell but a row's last is padded to its column's width. Widths only grow
/// from one [`Table::render`] to the next, so rows printed later (a watch) stay aligned.
#[derive(Default, Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
    widths: Vec<usize>,
}

impl Table {
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows pushed since the last render, aligned; they are then forgotten.
    pub fn render(&mut self) -> String {
        for row in &self.rows {
            let cells = row.len().saturating_sub(1);
            if self.widths.len() < cells {
                self.widths.resize(cells, 0);
            }
            for (i, cell) in row.iter().take(cells).enumerate() {
                let width = (cell.chars().count() + PADDING).max(MIN_WIDTH);
                self.widths[i] = self.widths[i].max(width);
            }
        }
        let mut out = String::new();
        for row in self.rows.drain(..) {
            let last = row.len().saturating_sub(1);
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    let pad = self.widths[i].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Aligns tab-separated text as Go's `text/tabwriter` does (flags 0): a column's width is set by
/// each run of consecutive lines that have a cell in it, and any line with fewer cells ends the
/// run; the text after a line's last tab is never padded.
pub fn align(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    align_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        min_width,
        padding,
        &mut out,
    );
    // Every piece `split` gave was written with a newline, one more than the text has.
    out.pop();
    out
}

fn align_block(
    lines: &[Vec<&str>],
    mut start: usize,
    end: usize,
    widths: &mut Vec<usize>,
    min_width: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = start;
    while this < end {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, start, this, widths, out);
        start = this;
        let mut width = min_width;
        while this < end && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + padding);
            this += 1;
        }
        widths.push(width);
        align_block(lines, start, this, widths, min_width, padding, out);
        widths.pop();
        start = this;
    }
    write_lines(lines, start, end, widths, out);
}

fn write_lines(lines: &[Vec<&str>], start: usize, end: usize, widths: &[usize], out: &mut String) {
    for line in &lines[start..end] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() {
                if let Some(w) = widths.get(j) {
                    let pad = w.saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.push('\n');
    }
}

/// Sorts every object's keys, as Go's maps print.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// JSON as kubectl prints it: sorted keys, four-space indent, `<`, `>` and `&` escaped, newline.
pub fn json(value: &Value) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    let _ = serde::Serialize::serialize(&sorted(value), &mut ser);
    let text = String::from_utf8(buf).unwrap_or_default();
    // These characters only occur inside strings, where Go's encoder escapes them.
    let mut out = text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    out.push('\n');
    out
}

/// YAML as kubectl prints it.
pub fn yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            write_scalar(&mut out, scalar, 0);
            out.push('\n');
        }
    }
    out
}

const BEST_WIDTH: usize = 80;

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut first = true;
    for key in keys {
        if !first || !out.ends_with("- ") {
            pad_to(out, indent);
        }
        first = false;
        write_string(out, key, indent, true);
        out.push(':');
        write_value(out, &map[key], indent);
    }
}

/// Starts a new line at `indent` unless the cursor already sits right after a `- ` there.
fn pad_to(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_value(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            // Go's YAML writes a sequence under a key flush with the key.
            write_seq(out, items, indent);
        }
        scalar => {
            out.push(' ');
            write_scalar(out, scalar, indent + 2);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad_to(out, indent);
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => write_map(out, map, indent + 2),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            scalar => {
                write_scalar(out, scalar, indent + 2);
                out.push('\n');
            }
        }
    }
}

fn column(out: &str) -> usize {
    out.rsplit('\n').next().map_or(0, |l| l.chars().count())
}

fn write_scalar(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s, indent, false),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

fn write_string(out: &mut String, s: &str, indent: usize, is_key: bool) {
    if s.contains('\n') && !is_key && s.chars().all(|c| c == '\n' || is_printable(c)) {
        return write_literal(out, s, indent);
    }
    match style_of(s) {
        Style::Plain => write_folded(out, s, indent, !is_key, None),
        Style::Single => write_folded(out, s, indent, !is_key, Some('\'')),
        Style::Double => write_double(out, s),
    }
}

#[derive(PartialEq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
}

/// What Go's YAML emitter writes as it is; anything else (tabs and characters beyond the
/// basic plane included) makes it double-quote the string.
fn is_printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

/// Whether Go's YAML reads the plain text as something other than a string: then it must be
/// double-quoted to stay a string.
fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if s.is_empty() || SPECIAL.contains(&s) {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return false;
    }
    let plain = s.replace('_', "");
    if parses_as_int(&plain) || parses_as_float(&plain) {
        return true;
    }
    is_timestamp(s) || is_base60_float(s)
}

fn parses_as_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(bin) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1');
    }
    if let Some(oct) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        return !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c));
    }
    !body.is_empty() && body.chars().all(|c| c.is_ascii_digit())
}

fn parses_as_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let digits = mantissa.replace('.', "");
    let mantissa_ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && mantissa.matches('.').count() <= 1;
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

/// A date, or a date and time, as Go's YAML recognises them.
fn is_timestamp(s: &str) -> bool {
    let date_len = s
        .char_indices()
        .find(|(_, c)| matches!(c, 'T' | 't' | ' '))
        .map_or(s.len(), |(i, _)| i);
    let date = &s[..date_len];
    let parts: Vec<&str> = date.split('-').collect();
    let date_ok = parts.len() == 3
        && parts[0].len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
        && parts[1].len() <= 2
        && parts[2].len() <= 2;
    if !date_ok {
        return false;
    }
    if date_len == s.len() {
        return true;
    }
    let time = &s[date_len + 1..];
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, ""),
    };
    let clock_parts: Vec<&str> = clock.split(':').collect();
    let clock_ok = clock_parts.len() == 3
        && clock_parts.iter().enumerate().all(|(i, p)| {
            let p = if i == 2 {
                p.split('.').next().unwrap_or("")
            } else {
                p
            };
            !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit())
        });
    let zone_ok = zone.is_empty()
        || zone == "Z"
        || (zone.len() == 6
            && zone[1..3].chars().all(|c| c.is_ascii_digit())
            && &zone[3..4] == ":"
            && zone[4..].chars().all(|c| c.is_ascii_digit()));
    clock_ok && zone_ok
}

fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let mut parts = body.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && !head.is_empty()
        && head.chars().all(|c| c.is_ascii_digit() || c == '_')
        && head.starts_with(|c: char| ('1'..='9').contains(&c))
        && rest.iter().enumerate().all(|(i, p)| {
            let p = if i == rest.len() - 1 {
                p.split('.').next().unwrap_or("")
            } else {
                p
            };
            !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit())
        })
}

/// Which quoting Go's YAML emitter picks for a one-line string.
fn style_of(s: &str) -> Style {
    if !s.chars().all(is_printable) || s.contains('\n') {
        return Style::Double;
    }
    if resolves_to_non_string(s) {
        return Style::Double;
    }
    if plain_allowed(s) {
        Style::Plain
    } else {
        Style::Single
    }
}

fn plain_allowed(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let first = chars[0];
    let last = chars[chars.len() - 1];
    if first == ' ' || last == ' ' || first == '\t' || last == '\t' {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let space_after = |i: usize| chars.get(i + 1).is_none_or(|c| *c == ' ' || *c == '\t');
    for (i, &c) in chars.iter().enumerate() {
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => return false,
                '?' | ':' | '-' if space_after(i) => return false,
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => return false,
                ':' if space_after(i) => return false,
                '#' if chars[i - 1] == ' ' || chars[i - 1] == '\t' => return false,
                _ => {}
            }
        }
    }
    true
}

/// A plain or single-quoted scalar; as Go's emitter does, a space past column 80 followed by a
/// non-space becomes a line break indented to `indent`.
fn write_folded(out: &mut String, s: &str, indent: usize, allow_breaks: bool, quote: Option<char>) {
    if let Some(q) = quote {
        out.push(q);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut col = column(out);
    let mut after_space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_is_space = chars.get(i + 1) == Some(&' ');
            let at_edge = i == 0 || i == chars.len() - 1;
            if allow_breaks && !after_space && col > BEST_WIDTH && !next_is_space && !at_edge {
                out.push('\n');
                pad_to(out, indent);
                col = indent;
            } else {
                out.push(' ');
                col += 1;
            }
            after_space = true;
        } else {
            if c == '\'' && quote.is_some() {
                out.push('\'');
                col += 1;
            }
            out.push(c);
            col += 1;
            after_space = false;
        }
    }
    if let Some(q) = quote {
        out.push(q);
    }
}

fn write_double(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if !is_printable(c) => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A multi-line string as a literal block: `|` keeps the final newline, `|-` has none, `|+`
/// keeps several.
fn write_literal(out: &mut String, s: &str, indent: usize) {
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    out.push('|');
    if s.starts_with(' ') {
        out.push('2');
    }
    out.push_str(chomp);
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad_to(out, indent);
            out.push_str(line);
        }
    }
}

/// Compact JSON with sorted keys, as Go marshals a map.
pub fn json_compact(value: &Value) -> String {
    serde_json::to_string(&sorted(value)).unwrap_or_default()
}

/// Adds `kind` and `apiVersion` to a list's items (the API leaves them out) and wraps them as
/// kubectl's `List`.
pub fn as_list(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_pad_every_cell_but_the_last() {
        let mut t = Table::default();
        t.push(vec!["NAME".into(), "READY".into(), "AGE".into()]);
        t.push(vec!["web".into(), "1/1".into(), "5s".into()]);
        assert_eq!(t.render(), "NAME   READY   AGE\nweb    1/1     5s\n");
        // Widths are remembered: a later, shorter row keeps the columns.
        t.push(vec!["a".into(), "0/1".into(), "1s".into()]);
        assert_eq!(t.render(), "a      0/1     1s\n");
    }

    #[test]
    fn align_works_in_blocks_as_go_tabwriter_does() {
        let text = "Name:\tweb\nIP:\t\nContainers:\n  c:\n    Image:\tx\n    Restart Count:\t0\n";
        assert_eq!(
            align(text, 0, 2),
            "Name:  web\nIP:    \nContainers:\n  c:\n    Image:          x\n    Restart Count:  0\n"
        );
    }

    #[test]
    fn json_reads_like_kubectl() {
        let v = json!({"b": 1, "a": {"d": [], "c": "<x&y>"}});
        assert_eq!(
            json(&v),
            "{\n    \"a\": {\n        \"c\": \"\\u003cx\\u0026y\\u003e\",\n        \"d\": []\n    },\n    \"b\": 1\n}\n"
        );
    }

    #[test]
    fn yaml_reads_like_kubectl() {
        let v = json!({
            "metadata": {"name": "web", "labels": {}, "resourceVersion": "", "uid": "1234"},
            "spec": {"containers": [{"name": "c", "args": ["--address", ":8081"], "ports": [{"containerPort": 80}]}]},
            "status": {"phase": "Running", "startTime": "2026-12-01T00:00:00Z", "ok": true, "x": null},
        });
        assert_eq!(
            yaml(&v),
            "metadata:\n  labels: {}\n  name: web\n  resourceVersion: \"\"\n  uid: \"1234\"\nspec:\n  containers:\n  - args:\n    - --address\n    - :8081\n    name: c\n    ports:\n    - containerPort: 80\nstatus:\n  ok: true\n  phase: Running\n  startTime: \"2026-12-01T00:00:00Z\"\n  x: null\n"
        );
    }

    #[test]
    fn yaml_quotes_and_folds_as_go_does() {
        assert_eq!(yaml(&json!({"a": "x: y"})), "a: 'x: y'\n");
        assert_eq!(yaml(&json!({"a": "it's"})), "a: it's\n");
        assert_eq!(yaml(&json!({"a": "'q'"})), "a: '''q'''\n");
        assert_eq!(yaml(&json!({"a": "yes"})), "a: \"yes\"\n");
        assert_eq!(yaml(&json!({"a": "1.5"})), "a: \"1.5\"\n");
        assert_eq!(yaml(&json!({"a": "256M"})), "a: 256M\n");
        assert_eq!(yaml(&json!({"a": "a\tb"})), "a: \"a\\tb\"\n");
        assert_eq!(
            yaml(&json!({"a": "line\nnext\n"})),
            "a: |\n  line\n  next\n"
        );
        assert_eq!(yaml(&json!({"a": "line\nnext"})), "a: |-\n  line\n  next\n");
        let long = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
        assert_eq!(
            yaml(&json!({"status": {"message": long}})),
            "status:\n  message: '0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are\n    available: 1 No preemption victims found for incoming pod.'\n"
        );
    }
}
