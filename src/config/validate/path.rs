//! YAML paths as findings show them: `providers.targets[2].base_url`.

use serde_yaml::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub fn from_serde(seg: &serde_path_to_error::Segment) -> Option<Seg> {
    match seg {
        serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
        serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
        serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => None,
    }
}

/// `base` followed by `segs`.
pub fn join(base: &str, segs: &[Seg]) -> String {
    let mut out = base.to_string();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

pub fn key(base: &str, key: &str) -> String {
    join(base, &[Seg::Key(key.to_string())])
}

/// Splits a path string into segments (keys containing dots are split too: use this only
/// for paths whose keys are field names).
pub fn parse(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            if let Ok(i) = inner[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &inner[end + 1..];
        }
    }
    out
}

/// The field a path ends in: `timeout_seconds` for `providers.targets[0].timeout_seconds`,
/// the list's name for an item.
pub fn last_key(path: &str) -> &str {
    let trimmed = match path.find('[') {
        Some(i) if path.ends_with(']') && !path[i..].contains('.') => &path[..i],
        _ => path,
    };
    let tail = trimmed.rsplit('.').next().unwrap_or(trimmed);
    match tail.find('[') {
        Some(i) => &tail[..i],
        None => tail,
    }
}

/// The parent of a path, for messages (`the top level` for top-level keys).
pub fn parent_display(path: &str) -> String {
    match path.rfind(['.', '[']) {
        Some(i) => path[..i].to_string(),
        None => "the top level".to_string(),
    }
}

pub fn get_mut<'a>(root: &'a mut Value, segs: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = root;
    for s in segs {
        cur = match s {
            Seg::Key(k) => cur.get_mut(k.as_str())?,
            Seg::Index(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_split_and_name_their_field() {
        let segs = vec![
            Seg::Key("targets".into()),
            Seg::Index(2),
            Seg::Key("base_url".into()),
        ];
        assert_eq!(join("providers", &segs), "providers.targets[2].base_url");
        assert_eq!(parse("providers.targets[2].base_url")[1..], segs[..]);
        assert_eq!(last_key("providers.targets[2].base_url"), "base_url");
        assert_eq!(last_key("policies.chain[3]"), "chain");
        assert_eq!(last_key("pack"), "pack");
        assert_eq!(
            parent_display("policy.pii-detector.actions"),
            "policy.pii-detector"
        );
        assert_eq!(parent_display("pakc"), "the top level");
    }
}
