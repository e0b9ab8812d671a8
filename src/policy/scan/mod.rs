//! The text scanning engine shared by the content policies (`pii-detector`,
//! `dlp-filter`, `safety-filter`): a list of detectors, each a regex plus an optional
//! validator, searched together over a text.
//!
//! Matching rule, the same for whole texts and streams: from the current position, every
//! detector proposes its first *valid* candidate (the regex's preferred match at the
//! leftmost start whose validator accepts it); the candidate with the leftmost start wins
//! (then the longest, then the detector listed first); the search resumes after it.
//! Because a detector's candidate at a start depends only on the text around it, a
//! stream filter ([`filter::ScanFilter`]) that commits only to candidates that can no
//! longer change produces exactly the rewrite of the whole text.
//!
//! Pure: no I/O. Regexes are compiled once, when the policy is built.

pub mod filter;
pub mod live;
pub mod screen;
pub mod walk;

use std::ops::Range;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// Validates a candidate. Gets the whole haystack and the candidate's value span; returns
/// the span to report (the same or a part of it), or `None` to reject. A check may look at
/// most one character before the span's start and one character after the end of the
/// regex match: a stream filter guarantees those and nothing further.
pub type Check = fn(hay: &str, span: Range<usize>) -> Option<Range<usize>>;

/// One detector, as a policy declares it.
#[derive(Debug, Clone)]
pub struct DetectorSpec {
    /// The finding kind reported for its matches (`email`, `credit_card`, a rule name…).
    pub kind: String,
    /// The regex. A capture group named `v` narrows the reported value to that group (the
    /// rest of the match is context, like a `MRN:` label).
    pub pattern: String,
    pub check: Option<Check>,
    /// Free for the policy: which rule, action or category this detector belongs to.
    pub tag: usize,
}

impl DetectorSpec {
    pub fn new(kind: impl Into<String>, pattern: impl Into<String>) -> DetectorSpec {
        DetectorSpec {
            kind: kind.into(),
            pattern: pattern.into(),
            check: None,
            tag: 0,
        }
    }

    pub fn check(mut self, check: Check) -> DetectorSpec {
        self.check = Some(check);
        self
    }

    pub fn tag(mut self, tag: usize) -> DetectorSpec {
        self.tag = tag;
        self
    }
}

/// A compiled detector.
#[derive(Debug)]
pub struct Detector {
    pub kind: String,
    pub tag: usize,
    regex: Regex,
    /// Index of the `v` capture group.
    group: Option<usize>,
    check: Option<Check>,
}

/// One accepted match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Start of the regex match (context included): what decides the order of hits and
    /// when a stream may commit to one.
    pub match_start: usize,
    /// The value to report and rewrite.
    pub span: Range<usize>,
    /// Index of the detector in the scanner.
    pub det: usize,
}

/// A set of detectors compiled for searching together.
#[derive(Debug)]
pub struct Scanner {
    detectors: Vec<Detector>,
    /// Whether any detector matches a text (a clean text skips every per-detector
    /// search), then which.
    set: RegexSet,
    /// Bytes one of which every match holds: a text without any has no match, and the
    /// set is not asked (`None`: some pattern could match without a known byte).
    screen: Option<screen::Screen>,
    live: live::Liveness,
}

/// Compiled-program budget per regex: generous, so bounded repetitions
/// (`[a-z0-9-]{1,63}` in a domain label) compile.
const SIZE_LIMIT: usize = 32 * 1024 * 1024;

impl Scanner {
    /// Compiles the detectors. The error names the detector whose pattern is invalid.
    pub fn new(specs: Vec<DetectorSpec>) -> Result<Scanner, String> {
        let mut detectors = Vec::with_capacity(specs.len());
        for s in &specs {
            let regex = RegexBuilder::new(&s.pattern)
                .size_limit(SIZE_LIMIT)
                .build()
                .map_err(|e| format!("`{}`: invalid regex: {e}", s.kind))?;
            let group = regex.capture_names().position(|n| n == Some("v"));
            detectors.push(Detector {
                kind: s.kind.clone(),
                tag: s.tag,
                regex,
                group,
                check: s.check,
            });
        }
        let patterns: Vec<&str> = specs.iter().map(|s| s.pattern.as_str()).collect();
        let set = RegexSetBuilder::new(&patterns)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid regex: {e}"))?;
        let live = live::Liveness::new(&patterns);
        Ok(Scanner {
            detectors,
            set,
            screen: screen::Screen::new(&patterns),
            live,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }

    pub fn detector(&self, i: usize) -> Option<&Detector> {
        self.detectors.get(i)
    }

    pub fn liveness(&self) -> &live::Liveness {
        &self.live
    }

    /// Every hit in a whole text.
    pub fn find_all(&self, hay: &str) -> Vec<Hit> {
        self.find(hay, 0, usize::MAX)
    }

    /// The hits from byte `from` on whose match starts before `limit`.
    pub fn find(&self, hay: &str, from: usize, limit: usize) -> Vec<Hit> {
        let mut hits = Vec::new();
        if self.detectors.is_empty() || from > hay.len() {
            return hits;
        }
        let rest = hay.as_bytes().get(from..).unwrap_or_default();
        if self.screen.as_ref().is_some_and(|s| !s.may_match(rest)) {
            return hits;
        }
        // Most texts hold nothing: the set's plain search says so in fewer instructions
        // than its overlapping one, and allocates nothing; a text with a hit pays both
        // (RESULTS.md, twenty-first session: kt's CPU per request did not move either way).
        if !self.set.is_match_at(hay, from) {
            return hits;
        }
        let active: Vec<usize> = self.set.matches_at(hay, from).into_iter().collect();
        // The next candidate of every active detector (`None`: no more in this text).
        let mut next: Vec<(usize, Option<Hit>)> = active
            .iter()
            .map(|&d| (d, self.candidate(d, hay, from)))
            .collect();
        loop {
            let best = next
                .iter()
                .filter_map(|(_, h)| h.as_ref())
                .min_by(|a, b| {
                    a.match_start
                        .cmp(&b.match_start)
                        .then(b.span.len().cmp(&a.span.len()))
                        .then(a.det.cmp(&b.det))
                })
                .cloned();
            let Some(hit) = best else { break };
            if hit.match_start >= limit {
                break;
            }
            let pos = hit.span.end;
            hits.push(hit);
            for (d, cand) in &mut next {
                if cand.as_ref().is_some_and(|c| c.match_start < pos) {
                    *cand = self.candidate(*d, hay, pos);
                }
            }
        }
        hits
    }

    /// The first valid candidate of detector `d` starting at or after `at`.
    fn candidate(&self, d: usize, hay: &str, mut at: usize) -> Option<Hit> {
        let det = self.detectors.get(d)?;
        while at <= hay.len() {
            let (match_start, value) = match det.group {
                Some(g) => {
                    let caps = det.regex.captures_at(hay, at)?;
                    let m = caps.get(0)?;
                    (m.start(), caps.get(g).unwrap_or(m).range())
                }
                None => {
                    let m = det.regex.find_at(hay, at)?;
                    (m.start(), m.range())
                }
            };
            let accepted = match det.check {
                Some(check) => check(hay, value),
                None => Some(value),
            };
            if let Some(span) = accepted.filter(|s| !s.is_empty() && s.end <= hay.len()) {
                return Some(Hit {
                    match_start,
                    span,
                    det: d,
                });
            }
            at = next_boundary(hay, match_start);
        }
        None
    }
}

/// The char boundary after `i` (or past the end).
pub fn next_boundary(s: &str, i: usize) -> usize {
    let mut j = i + 1;
    while j < s.len() && !s.is_char_boundary(j) {
        j += 1;
    }
    j
}

/// The char boundary at or before `i`.
pub fn prev_boundary(s: &str, i: usize) -> usize {
    let mut j = i.min(s.len());
    while j > 0 && !s.is_char_boundary(j) {
        j -= 1;
    }
    j
}

/// The character just before byte `i`.
pub fn char_before(hay: &str, i: usize) -> Option<char> {
    hay.get(..i)?.chars().next_back()
}

/// The character starting at byte `i`.
pub fn char_at(hay: &str, i: usize) -> Option<char> {
    hay.get(i..)?.chars().next()
}

/// Rewrites `text`, replacing each hit for which `replace` returns a marker. Returns the
/// hits seen (replaced or not) in order.
pub fn rewrite(
    scanner: &Scanner,
    text: &mut String,
    mut replace: impl FnMut(&Detector, &str) -> Option<String>,
) -> Vec<Hit> {
    let hits = scanner.find_all(text);
    if hits.is_empty() {
        return hits;
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for h in &hits {
        let (Some(det), Some(value)) = (scanner.detector(h.det), text.get(h.span.clone())) else {
            continue;
        };
        if let Some(marker) = replace(det, value) {
            out.push_str(text.get(pos..h.span.start).unwrap_or_default());
            out.push_str(&marker);
            pos = h.span.end;
        }
    }
    if pos > 0 {
        out.push_str(text.get(pos..).unwrap_or_default());
        *text = out;
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits_only(hay: &str, span: Range<usize>) -> Option<Range<usize>> {
        hay[span.clone()]
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then_some(span)
    }

    #[test]
    fn leftmost_then_longest_across_detectors() {
        let s = Scanner::new(vec![
            DetectorSpec::new("short", r"ab"),
            DetectorSpec::new("long", r"abcd"),
            DetectorSpec::new("later", r"cd"),
        ])
        .unwrap();
        let hits = s.find_all("xx abcd cd");
        let kinds: Vec<&str> = hits
            .iter()
            .map(|h| s.detector(h.det).unwrap().kind.as_str())
            .collect();
        assert_eq!(kinds, ["long", "later"]);
        assert_eq!(hits[0].span, 3..7);
    }

    #[test]
    fn rejected_candidates_let_later_starts_through() {
        // `\w{3}` first proposes "a1b" (rejected), then "1b2"… until "123".
        let s = Scanner::new(vec![DetectorSpec::new("num", r"\w{3}").check(digits_only)]).unwrap();
        let hits = s.find_all("a1b2 x123y");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].span, 6..9);
    }

    #[test]
    fn value_group_narrows_the_span() {
        let s = Scanner::new(vec![DetectorSpec::new("mrn", r"MRN: (?P<v>\d+)")]).unwrap();
        let mut t = "see MRN: 12345 now".to_string();
        let hits = rewrite(&s, &mut t, |_, _| Some("[X]".into()));
        assert_eq!(hits.len(), 1);
        assert_eq!(t, "see MRN: [X] now");
    }

    #[test]
    fn invalid_regex_names_the_detector() {
        let e = Scanner::new(vec![DetectorSpec::new("bad", "(")]).unwrap_err();
        assert!(e.starts_with("`bad`: invalid regex"), "{e}");
    }

    #[test]
    fn rewrite_keeps_flagged_hits() {
        let s = Scanner::new(vec![
            DetectorSpec::new("a", "foo").tag(1),
            DetectorSpec::new("b", "bar").tag(2),
        ])
        .unwrap();
        let mut t = "foo bar foo".to_string();
        let hits = rewrite(&s, &mut t, |d, _| (d.tag == 1).then(|| "#".into()));
        assert_eq!(hits.len(), 3);
        assert_eq!(t, "# bar #");
    }
}
