//! An explicit peer graph read from a file: one link a line as two node numbers, the
//! dialler first (`3 17`, or `3,17`), blank lines and `#` comments ignored. Errors name the
//! file and the line, on one line.

use std::path::Path;

use crate::error::SimError;

/// Reads the edge list in `path`.
pub fn read(path: &Path) -> Result<Vec<(usize, usize)>, SimError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SimError::Edges {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    parse(&text).map_err(|message| SimError::Edges { path: shown, message })
}

/// Parses an edge list; the error says which line is wrong and why.
pub fn parse(text: &str) -> Result<Vec<(usize, usize)>, String> {
    let mut edges = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let edge = parse_line(line).map_err(|why| format!("line {}: {why}", k + 1))?;
        edges.push(edge);
    }
    if edges.is_empty() {
        return Err("no edges in it".into());
    }
    Ok(edges)
}

/// One `a b` pair.
fn parse_line(line: &str) -> Result<(usize, usize), String> {
    let fields: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|f| !f.is_empty())
        .collect();
    let expected = || format!("expected two node numbers, got {line:?}");
    let [a, b] = fields.as_slice() else {
        return Err(expected());
    };
    let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) else {
        return Err(expected());
    };
    if a == b {
        return Err(format!("node {a} cannot link to itself"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_comments_and_blank_lines() {
        let text = "# a line of three\n0 1\n\n1,2   # the far end\n";
        assert_eq!(parse(text), Ok(vec![(0, 1), (1, 2)]));
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        assert_eq!(
            parse("0 1\n2\n").unwrap_err(),
            "line 2: expected two node numbers, got \"2\""
        );
        assert!(parse("0 1\n1 x\n").unwrap_err().starts_with("line 2: expected"));
        assert!(parse("0 1 2\n").unwrap_err().starts_with("line 1: expected"));
        assert!(parse("-1 2\n").unwrap_err().starts_with("line 1: expected"));
        assert_eq!(parse("4 4").unwrap_err(), "line 1: node 4 cannot link to itself");
        assert_eq!(parse("# nothing\n").unwrap_err(), "no edges in it");
    }
}
