//! kubectl's JSONPath templates: text with `{…}` expressions — fields (`.a.b`, `['a.b']`), indexes
//! (`[0]`, `[-1]`, `[1:3]`), every item (`[*]`), `{range …}…{end}` and quoted literals (`{"\n"}`).
//! Missing fields print nothing, as `kubectl get -o jsonpath` allows missing keys.

use serde_json::Value;

use crate::Error;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    All,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Segment>),
    Range(Vec<Segment>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template(Vec<Node>);

impl Template {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut tokens = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find('{') {
                None => {
                    tokens.push(Token::Text(rest.to_string()));
                    break;
                }
                Some(start) => {
                    if start > 0 {
                        tokens.push(Token::Text(rest[..start].to_string()));
                    }
                    let end = closing_brace(&rest[start..]).ok_or_else(|| {
                        Error::other(format!("error parsing jsonpath {text}, unclosed action"))
                    })?;
                    tokens.push(Token::Action(
                        rest[start + 1..start + end].trim().to_string(),
                    ));
                    rest = &rest[start + end + 1..];
                }
            }
        }
        let mut iter = tokens.into_iter();
        let nodes = parse_nodes(&mut iter, text, false)?;
        Ok(Template(nodes))
    }

    /// The template applied to `value`.
    pub fn render(&self, value: &Value) -> String {
        let mut out = String::new();
        render(&self.0, value, &mut out);
        out
    }

    /// The values the template's first expression selects (for `--sort-by`).
    pub fn select<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        for node in &self.0 {
            if let Node::Path(path) = node {
                return select(path, value);
            }
        }
        Vec::new()
    }
}

enum Token {
    Text(String),
    Action(String),
}

/// The index of the `}` closing the `{` at the start of `s`, skipping quoted text.
fn closing_brace(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '}') => return Some(i),
            _ => {}
        }
        escaped = false;
    }
    None
}

fn parse_nodes(
    tokens: &mut impl Iterator<Item = Token>,
    text: &str,
    in_range: bool,
) -> Result<Vec<Node>, Error> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.next() {
        match token {
            Token::Text(t) => nodes.push(Node::Text(t)),
            Token::Action(a) if a == "end" => {
                if in_range {
                    return Ok(nodes);
                }
                return Err(Error::other(format!(
                    "error parsing jsonpath {text}, not in range"
                )));
            }
            Token::Action(a) => {
                if let Some(path) = a.strip_prefix("range ") {
                    let body = parse_nodes(tokens, text, true)?;
                    nodes.push(Node::Range(parse_path(path.trim())?, body));
                } else if let Some(lit) = literal(&a) {
                    nodes.push(Node::Text(lit));
                } else {
                    nodes.push(Node::Path(parse_path(&a)?));
                }
            }
        }
    }
    if in_range {
        return Err(Error::other(format!(
            "error parsing jsonpath {text}, unclosed range"
        )));
    }
    Ok(nodes)
}

/// `"text"` or `'text'` with Go's escapes `\n`, `\t`, `\\`, `\"`.
fn literal(action: &str) -> Option<String> {
    let quote = action.chars().next()?;
    if !(quote == '"' || quote == '\'') || !action.ends_with(quote) || action.len() < 2 {
        return None;
    }
    let inner = &action[1..action.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn parse_path(path: &str) -> Result<Vec<Segment>, Error> {
    let bad = || Error::other(format!("error parsing jsonpath {{{path}}}"));
    let mut segments = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    if chars.first() == Some(&'$') || chars.first() == Some(&'@') {
        i = 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let name: String = chars[start..i.min(chars.len())].iter().collect();
                let name = name.replace("\\.", ".");
                if name == "*" {
                    segments.push(Segment::All);
                } else if !name.is_empty() {
                    segments.push(Segment::Field(name));
                }
            }
            '[' => {
                let close = chars[i..].iter().position(|c| *c == ']').ok_or_else(bad)? + i;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                segments.push(if inner == "*" {
                    Segment::All
                } else if let Some(name) = literal(inner) {
                    Segment::Field(name)
                } else if let Some((a, b)) = inner.split_once(':') {
                    let num = |s: &str| -> Result<Option<i64>, Error> {
                        let s = s.trim();
                        if s.is_empty() {
                            Ok(None)
                        } else {
                            s.parse().map(Some).map_err(|_| bad())
                        }
                    };
                    Segment::Slice(num(a)?, num(b.split(':').next().unwrap_or(""))?)
                } else {
                    Segment::Index(inner.parse().map_err(|_| bad())?)
                });
                i = close + 1;
            }
            _ => return Err(bad()),
        }
    }
    Ok(segments)
}

fn select<'a>(path: &[Segment], value: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![value];
    for segment in path {
        let mut next = Vec::new();
        for v in current {
            match (segment, v) {
                (Segment::Field(name), Value::Object(map)) => next.extend(map.get(name)),
                (Segment::Index(i), Value::Array(items)) => {
                    let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                    if idx >= 0 {
                        next.extend(items.get(idx as usize));
                    }
                }
                (Segment::Slice(a, b), Value::Array(items)) => {
                    let len = items.len() as i64;
                    let clamp = |x: i64| (if x < 0 { len + x } else { x }).clamp(0, len) as usize;
                    let (from, to) = (clamp(a.unwrap_or(0)), clamp(b.unwrap_or(len)));
                    if from < to {
                        next.extend(&items[from..to]);
                    }
                }
                (Segment::All, Value::Array(items)) => next.extend(items),
                (Segment::All, Value::Object(map)) => next.extend(map.values()),
                _ => {}
            }
        }
        current = next;
    }
    current
}

/// How one selected value prints: strings raw, everything else as compact JSON.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn render(nodes: &[Node], value: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(path) => {
                let parts: Vec<String> = select(path, value).into_iter().map(text_of).collect();
                out.push_str(&parts.join(" "));
            }
            Node::Range(path, body) => {
                for item in select(path, value) {
                    render(body, item, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(template: &str, v: &Value) -> String {
        Template::parse(template).unwrap().render(v)
    }

    #[test]
    fn templates_select_as_kubectl_does() {
        let pod = json!({"spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running"},
            "metadata": {"annotations": {"x.io/y": "z"}}});
        assert_eq!(run("{.spec.nodeName} {.status.phase}", &pod), "n1 Running");
        assert_eq!(run("{.spec.containers[*].name}", &pod), "a b");
        assert_eq!(run("{.spec.containers[-1].name}", &pod), "b");
        assert_eq!(run("{.spec.missing}", &pod), "");
        assert_eq!(
            run("{range .spec.containers[*]}{.name}{\"\\n\"}{end}", &pod),
            "a\nb\n"
        );
        assert_eq!(run("{.metadata.annotations['x.io/y']}", &pod), "z");
        assert_eq!(run("{.metadata.annotations.x\\.io/y}", &pod), "z");
        assert_eq!(run("{.spec.containers[0]}", &pod), "{\"name\":\"a\"}");
    }
}
