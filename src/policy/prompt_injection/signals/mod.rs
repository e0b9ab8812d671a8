//! The catalogue of signals: what prompt-injection attempts look like once normalised.
//!
//! Each signal has a kind (the finding reported) and a weight in (0, 1]: how sure one
//! match alone makes us. Most are *word patterns* (see `symbols.rs` for the syntax),
//! matched word by word on the folded view, so that "up to four words" costs one step per
//! word; `{name}` is a vocabulary from [`VOCAB`], and a synonym added there reaches every
//! pattern that uses it. A few are *character patterns* (regexes over the folded bytes,
//! case-insensitive) for what is not made of words: chat-format tokens, markdown, CSS,
//! case-sensitive names. [`SCRIPTS`] are regexes for non-Latin scripts (lowercased
//! `plain` view) and [`SQUASHED`] for spelled-out letters joined.
//!
//! The catalogue is split by what the attack goes after: the model's instructions
//! ([`instructions`]), its persona and safety rules ([`personas`]), the shape of the
//! content around it ([`content`]), other languages ([`languages`]); [`context`] holds what
//! is not a signal (discussion of attacks, negated requests).

mod content;
mod context;
mod instructions;
mod languages;
mod personas;

pub use context::{DISCUSSION, DISCUSSION_SCRIPTS, NEGATED};
pub use languages::{SCRIPTS, SQUASHED};

/// What a signal is evidence of; also the finding kind in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    InstructionOverride,
    JailbreakPersona,
    PromptExtraction,
    DelimiterInjection,
    ToolInjection,
    Exfiltration,
    SafetyBypass,
    PrivilegeClaim,
    EncodedInstruction,
    CustomPattern,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::InstructionOverride => "instruction_override",
            Kind::JailbreakPersona => "jailbreak_persona",
            Kind::PromptExtraction => "prompt_extraction",
            Kind::DelimiterInjection => "delimiter_injection",
            Kind::ToolInjection => "tool_injection",
            Kind::Exfiltration => "exfiltration",
            Kind::SafetyBypass => "safety_bypass",
            Kind::PrivilegeClaim => "privilege_claim",
            Kind::EncodedInstruction => "encoded_instruction",
            Kind::CustomPattern => "custom_pattern",
        }
    }

    /// What the end user is told when this kind of signal blocks a request.
    pub fn explanation(self) -> &'static str {
        match self {
            Kind::InstructionOverride => {
                "it tries to make the assistant ignore or replace its instructions"
            }
            Kind::JailbreakPersona => {
                "it asks the assistant to act as an unrestricted persona (a jailbreak)"
            }
            Kind::PromptExtraction => {
                "it tries to make the assistant reveal its hidden instructions"
            }
            Kind::DelimiterInjection => "it contains fake system or chat-format markers",
            Kind::ToolInjection => {
                "it contains instructions addressed to the AI inside content it should only read"
            }
            Kind::Exfiltration => {
                "it tries to make the assistant send conversation data to an outside address"
            }
            Kind::SafetyBypass => "it asks the assistant to switch off its safety rules",
            Kind::PrivilegeClaim => "it claims special authority to change the assistant's rules",
            Kind::EncodedInstruction => "it hides instructions in encoded or disguised text",
            Kind::CustomPattern => "it matches a pattern blocked by your administrator",
        }
    }
}

/// One pattern of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Signal {
    pub kind: Kind,
    pub weight: f64,
    pub pattern: &'static str,
}

const fn sig(kind: Kind, weight: f64, pattern: &'static str) -> Signal {
    Signal {
        kind,
        weight,
        pattern,
    }
}

/// Every word pattern, in a fixed order.
pub fn words() -> Vec<Signal> {
    [
        instructions::OVERRIDE,
        instructions::EXTRACTION,
        personas::PERSONA,
        personas::SAFETY,
        personas::PRIVILEGE,
        content::TOOL,
        content::EXFILTRATION,
        languages::LATIN,
    ]
    .concat()
}

/// Every character pattern, in a fixed order.
pub fn chars() -> Vec<Signal> {
    [content::DELIMITER, content::CHARS, personas::CHARS].concat()
}

/// Shared vocabularies (word patterns), `{name}` in patterns.
pub const VOCAB: &[(&str, &str)] = &[
    // Verbs that throw instructions away.
    (
        "ign",
        "ignore|ignoring|disregard|disregarding|forget|forgetting|neglect|set+aside|put+aside|pay+no+attention+to|do+not+follow|don't+follow|dont+follow|not+follow|stop+following|stop+obeying|stop+listening+to|no+need+to+follow|never+mind|nevermind|abandon|discard|dismiss|scratch|throw+out|throw+away|skip|drop|scrap|ditch|let+go+of|forgo|unlearn|move+past|break+free+of|break+free+from|overlook",
    ),
    // Verbs that replace them.
    (
        "ignw",
        "override|overriding|overrule|bypass|bypassing|cancel|void|erase|delete|remove|reset|circumvent|replace|rewrite|suspend|deactivate",
    ),
    // Whose or which instructions: the model's, or the earlier ones.
    (
        "prior",
        "previous|prior|preceding|above|earlier|former|initial|original|old|existing|foregoing|aforementioned|current|your|its|whatever|developer|developers|operator|operators|creator|creators|system|openai",
    ),
    // The instructions themselves.
    (
        "instr",
        "instruction|instructions|directions|directive|directives|rule|rules|ruleset|guideline|guidelines|guidance|prompt|prompts|commands|programming|protocol|protocols|conditioning|guardrail|guardrails|constraints|restrictions|limitations|persona|preamble|setup|configuration|training|safeguards|boundaries|filters|policy|policies|principles|ethics|morals|alignment|system+message|system+prompt|system+instructions|rule+set|instruction+set",
    ),
    // Who content addresses when it talks to the model.
    (
        "ai",
        "ai|ais|assistant|assistants|llm|llms|chatbot|chatbots|bot|bots|agent|agents|model|models|language+model|language+models|gpt|chatgpt|claude|gemini|copilot|ai+assistant|ai+assistants|ai+agent|ai+agents|ai+model|ai+models|ai+system|ai+systems|ai+reader|ai+readers|ai+summarizer|ai+summarizers|ai+reviewer|ai+reviewers|ai+crawler|ai+crawlers|ai+language+model",
    ),
    // Rules a jailbreak removes.
    (
        "limits",
        "restrictions|limitations|limits|filters|filter|filtering|rules|guidelines|ethics|morals|morality|censorship|content+policy|content+policies|content+guidelines|content+filter|content+filters|policy|policies|safety|safety+training|safety+guidelines|safety+filters|safety+rules|safety+measures|safety+layer|safety+features|guardrails|boundaries|constraints|safeguards|refusals|principles|conscience",
    ),
    // Verbs that ask to see something.
    (
        "show",
        "reveal|show|print|display|output|repeat|tell|give|share|disclose|dump|leak|expose|list|write+out|spell+out|type+out|read+out|read+back|echo|return|send|provide|paste|recite|quote|translate|encode|summarize|summarise|copy|reproduce|convert|format|rewrite|restate|paraphrase|transcribe|export|post|insert|include|what+is|what+are|what+was|what+were|what's",
    ),
    // Hidden instructions of the model.
    (
        "secret",
        "( system prompt|message|instructions|instruction|preamble|configuration|context|rules | initial|original|hidden|secret|confidential|internal|full|first|developer|configuration|config|real|exact|complete|entire|whole|current|starting|opening prompt|instructions|instruction|message|rules|configuration|directives|preamble|context|persona|setup | preamble|preprompt|pre+prompt|metaprompt|meta+prompt|initialization|initialisation )",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::prompt_injection::compile::Compiler;

    #[test]
    fn every_pattern_compiles() {
        let mut c = Compiler::new(VOCAB);
        let words = words();
        for s in &words {
            c.register(s.pattern)
                .unwrap_or_else(|e| panic!("{}: {e}", s.pattern));
        }
        for s in &words {
            let re = c
                .compile(s.pattern)
                .unwrap_or_else(|e| panic!("{}: {e}", s.pattern));
            regex::Regex::new(&re).unwrap_or_else(|e| panic!("{}: {e}", s.pattern));
            assert!(s.weight > 0.0 && s.weight <= 1.0);
        }
        for s in chars().iter().chain(SQUASHED) {
            regex::bytes::RegexBuilder::new(s.pattern)
                .unicode(false)
                .case_insensitive(true)
                .build()
                .unwrap_or_else(|e| panic!("{}: {e}", s.pattern));
        }
        for s in SCRIPTS {
            regex::Regex::new(s.pattern).unwrap();
        }
        for d in DISCUSSION_SCRIPTS {
            regex::Regex::new(d).unwrap();
        }
    }
}
