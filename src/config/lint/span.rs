//! A YAML tree with positions, built from `saphyr-parser` events beside the serde parse:
//! serde_yaml gives a location only for its first error, so this tree is what maps a
//! YAML path (`providers.targets[2].base_url`) to a line and column, and what finds
//! every duplicate key. It holds no values the gateway runs on: only keys, scalars'
//! text and positions.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser};
use serde_yaml::Value;

use crate::config::diagnostic::Anchor;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn from_marker(m: Marker) -> Pos {
        Pos {
            line: m.line().max(1),
            column: m.col() + 1,
        }
    }
}

#[derive(Debug)]
pub enum Node {
    Scalar { pos: Pos, text: String },
    Seq { pos: Pos, items: Vec<Node> },
    Map { pos: Pos, entries: Vec<Entry> },
    Alias { pos: Pos },
}

impl Node {
    pub fn pos(&self) -> Pos {
        match self {
            Node::Scalar { pos, .. }
            | Node::Seq { pos, .. }
            | Node::Map { pos, .. }
            | Node::Alias { pos } => *pos,
        }
    }

    fn is_collection(&self) -> bool {
        matches!(self, Node::Seq { .. } | Node::Map { .. })
    }

    /// The text of the scalar under `key`, for a mapping.
    fn scalar_at(&self, key: &str) -> Option<&str> {
        match self {
            Node::Map { entries, .. } => entries.iter().find_map(|e| match &e.value {
                Node::Scalar { text, .. } if e.key.as_deref() == Some(key) => Some(text.as_str()),
                _ => None,
            }),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Entry {
    /// The key's text; `None` for a key that is itself a mapping or sequence.
    pub key: Option<String>,
    pub key_pos: Pos,
    pub value: Node,
}

/// The same key twice in one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// YAML path of the repeated key.
    pub path: String,
    pub key: String,
    pub pos: Pos,
    pub first: Pos,
}

/// The parsed first document of a file.
#[derive(Debug)]
pub struct Tree {
    pub root: Option<Node>,
    pub duplicates: Vec<Duplicate>,
    /// Where a second document starts (`---`), if the file has one.
    pub extra_document: Option<Pos>,
}

/// A YAML syntax error found by the span parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

enum Frame {
    Seq {
        pos: Pos,
        path: String,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        path: String,
        entries: Vec<Entry>,
        pending_key: Option<(Option<String>, Pos)>,
        seen: HashMap<String, Pos>,
    },
}

/// Parses `text` into a positioned tree of its first document.
pub fn parse(text: &str) -> Result<Tree, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut tree = Tree {
        root: None,
        duplicates: Vec::new(),
        extra_document: None,
    };
    let mut documents = 0usize;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| SyntaxError {
            pos: Pos::from_marker(*e.marker()),
            message: e.info().to_string(),
        })?;
        let pos = Pos::from_marker(span.start);
        let done = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    tree.extra_document = Some(pos);
                    break;
                }
                None
            }
            Event::Scalar(text, ..) => Some(Node::Scalar {
                pos,
                text: text.into_owned(),
            }),
            Event::Alias(_) => Some(Node::Alias { pos }),
            Event::SequenceStart(..) => {
                let path = child_path(&stack);
                stack.push(Frame::Seq {
                    pos,
                    path,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(..) => {
                let path = child_path(&stack);
                stack.push(Frame::Map {
                    pos,
                    path,
                    entries: Vec::new(),
                    pending_key: None,
                    seen: HashMap::new(),
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { pos, items, .. }) => Some(Node::Seq { pos, items }),
                Some(Frame::Map { pos, entries, .. }) => Some(Node::Map { pos, entries }),
                None => None,
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => None,
        };
        if let Some(node) = done {
            attach(&mut stack, node, &mut tree);
        }
    }
    Ok(tree)
}

/// The path of the node about to start under the top frame.
fn child_path(stack: &[Frame]) -> String {
    match stack.last() {
        None => String::new(),
        Some(Frame::Seq { path, items, .. }) => format!("{path}[{}]", items.len()),
        Some(Frame::Map {
            path, pending_key, ..
        }) => match pending_key {
            Some((Some(k), _)) => join_key(path, k),
            // A node that is itself a key (complex keys) or under one: no usable path.
            _ => path.clone(),
        },
    }
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn attach(stack: &mut [Frame], node: Node, tree: &mut Tree) {
    match stack.last_mut() {
        None => {
            if tree.root.is_none() {
                tree.root = Some(node);
            }
        }
        Some(Frame::Seq { items, .. }) => items.push(node),
        Some(Frame::Map {
            path,
            entries,
            pending_key,
            seen,
            ..
        }) => match pending_key.take() {
            None => {
                let key_pos = node.pos();
                let key = match node {
                    Node::Scalar { text, .. } => Some(text),
                    Node::Seq { .. } | Node::Map { .. } | Node::Alias { .. } => None,
                };
                if let Some(k) = &key {
                    if let Some(first) = seen.get(k) {
                        tree.duplicates.push(Duplicate {
                            path: join_key(path, k),
                            key: k.clone(),
                            pos: key_pos,
                            first: *first,
                        });
                    } else {
                        seen.insert(k.clone(), key_pos);
                    }
                }
                *pending_key = Some((key, key_pos));
            }
            Some((key, key_pos)) => entries.push(Entry {
                key,
                key_pos,
                value: node,
            }),
        },
    }
}

/// Where a path was found in a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    pub pos: Pos,
    /// How much of the path was resolved (bytes of the path string).
    pub depth: usize,
    /// The whole path was resolved.
    pub complete: bool,
}

impl Tree {
    /// Finds `path` (`a.b[2].c`; keys may themselves contain dots) in the tree. When the
    /// path leads past what the file has, the deepest node reached is returned.
    ///
    /// With `merged` (the layered config value), sequence items that carry an `id` are
    /// matched by id, since layering merges targets by id rather than by position.
    pub fn locate(&self, path: &str, anchor: Anchor, merged: Option<&Value>) -> Located {
        let Some(mut node) = self.root.as_ref() else {
            return Located {
                pos: Pos::START,
                depth: 0,
                complete: path.is_empty(),
            };
        };
        let full = path.len();
        let mut rest = path.strip_prefix("<document>").unwrap_or(path);
        let mut merged = merged;
        let mut via_key: Option<Pos> = None;
        loop {
            let depth = full - rest.len();
            let here = |complete: bool| {
                let pos = match via_key {
                    Some(k) if anchor == Anchor::Key && complete => k,
                    Some(k) if node.is_collection() => k,
                    _ => node.pos(),
                };
                Located {
                    pos,
                    depth,
                    complete,
                }
            };
            if rest.is_empty() {
                return here(true);
            }
            match node {
                Node::Map { entries, .. } => {
                    let r = rest.strip_prefix('.').unwrap_or(rest);
                    let best = entries
                        .iter()
                        .filter_map(|e| {
                            let k = e.key.as_deref()?;
                            let tail = r.strip_prefix(k)?;
                            (tail.is_empty() || tail.starts_with('.') || tail.starts_with('['))
                                .then_some((e, k))
                        })
                        .max_by_key(|(_, k)| k.len());
                    let Some((entry, key)) = best else {
                        return here(false);
                    };
                    merged = merged.and_then(|m| m.get(key));
                    via_key = Some(entry.key_pos);
                    node = &entry.value;
                    rest = r.get(key.len()..).unwrap_or_default();
                }
                Node::Seq { items, .. } => {
                    let Some((index, tail)) = parse_index(rest) else {
                        return here(false);
                    };
                    let merged_item = merged.and_then(|m| m.get(index));
                    let item = match merged_item
                        .and_then(|m| m.get("id"))
                        .and_then(Value::as_str)
                    {
                        Some(id) => items
                            .get(index)
                            .filter(|i| i.scalar_at("id") == Some(id))
                            .or_else(|| items.iter().find(|i| i.scalar_at("id") == Some(id))),
                        None => items.get(index),
                    };
                    let Some(item) = item else {
                        return here(false);
                    };
                    merged = merged_item;
                    via_key = None;
                    node = item;
                    rest = tail;
                }
                Node::Scalar { .. } | Node::Alias { .. } => return here(false),
            }
        }
    }
}

/// `[12].rest` → `(12, ".rest")`.
fn parse_index(s: &str) -> Option<(usize, &str)> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    let index = inner.get(..end)?.parse().ok()?;
    Some((index, inner.get(end + 1..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "pack:\n  name: x\nproviders:\n  targets:\n    - id: a\n      base_url: http://x\n    - {id: b, model: 'q'}\nmodels:\n  aliases:\n    gpt-4.1: b\n";

    fn at(tree: &Tree, path: &str, anchor: Anchor) -> (usize, usize, bool) {
        let l = tree.locate(path, anchor, None);
        (l.pos.line, l.pos.column, l.complete)
    }

    #[test]
    fn paths_map_to_lines_and_columns() {
        let tree = parse(YAML).unwrap();
        assert_eq!(at(&tree, "pack.name", Anchor::Value), (2, 9, true));
        assert_eq!(at(&tree, "pack.name", Anchor::Key), (2, 3, true));
        assert_eq!(at(&tree, "pack", Anchor::Value), (1, 1, true));
        assert_eq!(
            at(&tree, "providers.targets[0].base_url", Anchor::Value),
            (6, 17, true)
        );
        assert_eq!(
            at(&tree, "providers.targets[1]", Anchor::Value),
            (7, 7, true)
        );
        assert_eq!(
            at(&tree, "providers.targets[1].model", Anchor::Value),
            (7, 22, true)
        );
        // Keys with dots resolve whole.
        assert_eq!(
            at(&tree, "models.aliases.gpt-4.1", Anchor::Key),
            (10, 5, true)
        );
        // Past the end: the deepest node reached.
        assert_eq!(
            at(&tree, "providers.targets[1].weight", Anchor::Value),
            (7, 7, false)
        );
        assert_eq!(
            at(&tree, "providers.targets[5]", Anchor::Value),
            (4, 3, false)
        );
        assert_eq!(at(&tree, "", Anchor::Value), (1, 1, true));
    }

    #[test]
    fn items_with_ids_are_matched_by_id_when_layered() {
        let tree = parse("providers:\n  targets:\n    - id: b\n      model: m\n").unwrap();
        let merged: Value =
            serde_yaml::from_str("providers:\n  targets:\n    - id: a\n    - id: b\n").unwrap();
        let l = tree.locate("providers.targets[1].model", Anchor::Value, Some(&merged));
        assert_eq!((l.pos.line, l.complete), (4, true));
        let l = tree.locate("providers.targets[0].model", Anchor::Value, Some(&merged));
        assert!(!l.complete);
    }

    #[test]
    fn duplicate_keys_are_all_found() {
        let tree = parse("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n").unwrap();
        let found: Vec<(String, usize, usize)> = tree
            .duplicates
            .iter()
            .map(|d| (d.path.clone(), d.pos.line, d.first.line))
            .collect();
        assert_eq!(
            found,
            vec![("b.c".to_string(), 4, 3), ("a".to_string(), 5, 1)]
        );
    }

    #[test]
    fn syntax_errors_have_positions_and_extra_documents_are_noticed() {
        let e = parse("a: 1\n b: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        let t = parse("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(t.extra_document.map(|p| p.line), Some(2));
        let t = parse("").unwrap();
        assert!(t.root.is_none());
    }
}
