//! Finding a field's line in a scenario file from its path (`queues[2].arrivals[0].per_hour`),
//! so that errors found after parsing still point at the line to fix.

use toml::de::{DeTable, DeValue};

/// One step of a field path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `queues[2].skills.sales` into keys and indexes. Keys containing `.`, `[` or `]` are
/// not recoverable from the rendered path; the walk then stops at their parent.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(close) = rest.find(']') {
            match rest[1..close].parse() {
                Ok(index) => out.push(Step::Index(index)),
                Err(_) => return out,
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// The 1-based line of the deepest part of `path` present in `text`, if the text parses.
pub(super) fn line_of(text: &str, path: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut offset = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for step in steps(path) {
        match step {
            Step::Key(key) => {
                let Some(current) = table else { break };
                let Some((k, v)) = current.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
                    break;
                };
                offset = Some(k.span().start);
                value = Some(v.get_ref());
                table = v.get_ref().as_table();
            }
            Step::Index(index) => {
                let Some(item) = value
                    .and_then(DeValue::as_array)
                    .and_then(|array| array.get(index))
                else {
                    break;
                };
                offset = Some(item.span().start);
                value = Some(item.get_ref());
                table = item.get_ref().as_table();
            }
        }
    }
    offset.map(|at| line_at(text, at))
}

/// The 1-based line of a byte offset.
pub(super) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "seed = 1\nhours = \"08:00-20:00\"\n\n[[queues]]\nname = \"a\"\n\n[[queues]]\nname = \"b\"\nskills = { sales = 3 }\n\n[[queues.arrivals]]\nmedia = \"voice\"\nper_hour = -3\n";

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            steps("queues[2].arrivals[0].per_hour"),
            vec![
                Step::Key("queues"),
                Step::Index(2),
                Step::Key("arrivals"),
                Step::Index(0),
                Step::Key("per_hour"),
            ]
        );
    }

    #[test]
    fn lines_are_found_for_nested_fields_and_their_deepest_known_parent() {
        assert_eq!(line_of(TEXT, "hours"), Some(2));
        assert_eq!(line_of(TEXT, "queues[1].arrivals[0].per_hour"), Some(13));
        assert_eq!(line_of(TEXT, "queues[1].skills.sales"), Some(9));
        assert_eq!(
            line_of(TEXT, "queues[1].nothing"),
            Some(7).or(line_of(TEXT, "queues[1]"))
        );
        assert_eq!(line_of(TEXT, "nowhere"), None);
    }
}
