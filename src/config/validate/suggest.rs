//! "Did you mean" for misspelled keys, policy names and choices.

/// The closest of `choices` to `input`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a, S: AsRef<str>>(input: &str, choices: &'a [S]) -> Option<&'a str> {
    let lower = input.to_lowercase().replace('_', "-");
    choices
        .iter()
        .map(AsRef::as_ref)
        .map(|c| {
            let score = strsim::jaro_winkler(&lower, &c.to_lowercase().replace('_', "-"));
            (c, score)
        })
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// `did you mean `x`? valid keys: a, b, c` (or just the list when nothing is close).
pub fn with_choices<S: AsRef<str>>(input: &str, choices: &[S], label: &str) -> String {
    let list = choices
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    let list = if list.is_empty() {
        format!("no {label} are allowed here")
    } else {
        format!("{label}: {list}")
    };
    match did_you_mean(input, choices) {
        Some(best) => format!("did you mean `{best}`? {list}"),
        None => list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let known = ["prompt-injection", "pii-detector", "audit-logger"];
        assert_eq!(
            did_you_mean("prompt-injections", &known),
            Some("prompt-injection")
        );
        assert_eq!(did_you_mean("pii_detector", &known), Some("pii-detector"));
        assert_eq!(did_you_mean("Audit-Loger", &known), Some("audit-logger"));
        assert_eq!(did_you_mean("quality-scorer", &known), None);
        assert_eq!(
            with_choices("actions", &["action", "pci_mode"], "valid keys"),
            "did you mean `action`? valid keys: action, pci_mode"
        );
        assert_eq!(with_choices("zzz", &["a"], "valid keys"), "valid keys: a");
    }
}
