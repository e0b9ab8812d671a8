//! The catalogue of signals: what prompt-injection attempts look like once normalised.
//!
//! Each signal is a regex with a kind (the finding reported) and a weight in (0, 1]: how
//! sure one match alone makes us. Patterns are written against the `folded` view (ASCII,
//! case-insensitive, accents and homoglyphs already folded), except [`SCRIPTS`] (non-Latin
//! scripts, on the lowercased `plain` view) and [`SQUASHED`] (spelled-out letters joined).
//! `{name}` placeholders expand to the shared vocabularies in [`VOCAB`].
//!
//! [`DISCUSSION`] markers are not signals: they recognise text *about* attacks (security
//! questions, papers, training material) and damp the signals found next to them.

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

/// Shared vocabularies, `{name}` in patterns.
pub const VOCAB: &[(&str, &str)] = &[
    // Up to one intermediate word.
    ("w", r"(?:\w+\W+)"),
    // Verbs that throw instructions away.
    (
        "ign",
        r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|neglect|set\W+aside|pay\W+no\W+attention\W+to|do\W+not\W+follow|don'?t\W+follow|stop\W+following|never\W*mind|abandon|discard|dismiss|scratch|throw\W+out|skip)",
    ),
    // Verbs that replace them.
    (
        "ignw",
        r"(?:override|overriding|overrule|bypass|bypassing|cancel|void|erase|delete|remove|reset|circumvent)",
    ),
    // What came before.
    (
        "prior",
        r"(?:previous|prior|preceding|above|earlier|former|initial|original|old|existing|foregoing|aforementioned|your|its|developer'?s?)",
    ),
    // The instructions themselves.
    (
        "instr",
        r"(?:instructions?|instruction\W+set|directions|directives?|rules?|guidelines?|guidance|prompts?|commands|programming|system\W+(?:message|prompt)|protocols?|conditioning|guardrails?)",
    ),
    // Who content addresses when it talks to the model.
    (
        "ai",
        r"(?:ai|a\.i\.|assistant|llm|chatbot|bot|agent|model|language\W+model|gpt|chatgpt|claude|gemini|copilot|ai\W+(?:assistant|agent|model|language\W+model)|ai\W+\w+)",
    ),
    // Rules a jailbreak removes.
    (
        "limits",
        r"(?:restrictions|limitations|limits|filters|rules|guidelines|ethics|morals|morality|censorship|content\W+polic(?:y|ies)|polic(?:y|ies)|safety\W+(?:training|guidelines|filters|rules|measures)|guardrails|boundaries|constraints)",
    ),
    // Verbs that ask to see something.
    (
        "show",
        r"(?:reveal|show|print|display|output|repeat|tell|give|share|disclose|dump|leak|expose|list|write\W+out|spell\W+out|echo|return|send|provide|paste|recite|quote|translate|encode|summari[sz]e|what\W+(?:is|are|was|were)|what'?s)",
    ),
    // Hidden instructions of the model.
    (
        "secret",
        r"(?:system\W+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret|confidential|internal|full|first|pre-?|developer|configuration|config|real|exact|complete|entire|whole|current)\W*(?:prompt|instructions?|message|rules|configuration|directives))",
    ),
];

use Kind::{
    DelimiterInjection as Delim, EncodedInstruction as Enc, Exfiltration as Exfil,
    InstructionOverride as Override, JailbreakPersona as Persona, PrivilegeClaim as Privilege,
    PromptExtraction as Extract, SafetyBypass as Safety, ToolInjection as Tool,
};

/// Signals on the folded view (ASCII, case-insensitive). Latin-script languages are here
/// too: their accents are folded away.
pub const FOLDED: &[Signal] = &[
    // --- instruction override -------------------------------------------------------
    sig(
        Override,
        0.85,
        r"\b{ign}\W+{w}{0,4}?{prior}\W+{w}{0,2}?{instr}\b",
    ),
    sig(
        Override,
        0.6,
        r"\b{ign}\W+(?:all\W+|any\W+|every\W+)?(?:of\W+)?(?:the|these|those|all|any|every)\W+{w}?(?:instructions?|directives?|programming|system\W+(?:message|prompt)|guidelines)\b",
    ),
    sig(
        Override,
        0.8,
        r"\b{ign}\W+{w}{0,2}?(?:instructions|rules|guidelines|directives|prompt)\W+(?:that\W+)?you\W+(?:were|have\W+been|'?ve\W+been|got|received)\b",
    ),
    sig(
        Override,
        0.8,
        r"\b{ign}\W+(?:what|everything|anything|all)\W+{w}{0,2}?(?:you\W+(?:were|have\W+been|'?ve\W+been)\W+(?:told|given|instructed|programmed|taught)|(?:your|the)\W+(?:developers?|creators?|admins?|owners?|system)\W+(?:told|said|gave|wrote|instructed))",
    ),
    sig(
        Override,
        0.75,
        r"\b{ignw}\W+{w}{0,2}?(?:your|all\W+(?:of\W+)?(?:your|the|previous|prior)|previous|prior|preceding|earlier|original|initial)\W+{w}?(?:instructions|programming|directives|rules|guidelines|commands|system\W+(?:prompt|message)|guardrails)\b",
    ),
    sig(
        Override,
        0.8,
        r"\b(?:previous|prior|preceding|earlier|above|original|old|initial|your|these|the|all)\W+{w}?{instr}\W+{w}{0,4}?(?:are|is|were|have\W+been|has\W+been|no\W+longer|now)\W+{w}{0,2}?(?:void|null|cancell?ed|revoked|obsolete|outdated|invalid|lifted|suspended|overridden|replaced|superseded|disabled|removed|deleted|apply|valid|in\W+effect|a\W+test)\b",
    ),
    sig(
        Override,
        0.8,
        r"\b(?:ignore|disregard|forget)\W+(?:all\W+|everything\W+)?(?:of\W+)?(?:the\W+|this\W+)?(?:text\W+|content\W+)?above(?:\W+(?:and|this\W+line)\b|\s*[.,;:!)'\x22]|\s*$)",
    ),
    sig(
        Override,
        0.75,
        r"\b(?:ignore|disregard|forget)\W+{w}{0,3}?(?:task|request|question|job|document|text|context|article|prompt|query)\W+{w}{0,2}?(?:and|then)\W+{w}?instead\b",
    ),
    sig(
        Override,
        0.45,
        r"\b(?:ignore|disregard|forget)\W+(?:the|this|that|my|their|the\W+user'?s?)\W+{w}?(?:question|request|task|query|job|document)\b",
    ),
    sig(
        Override,
        0.45,
        r"\bnew\W+(?:system\W+)?(?:instructions?|directives?|rules?|task|objective)\W*[:-]",
    ),
    sig(
        Override,
        0.75,
        r"\b(?:new|updated|real|actual|true)\W+{w}?(?:instructions?|directives?|task|objective|rules?)\W+(?:for|to)\W+(?:the\W+)?{ai}\b",
    ),
    sig(
        Override,
        0.8,
        r"\bnew\W+(?:system\W+)?(?:instructions?|rules?|directives?|polic(?:y|ies))\W+(?:supersedes?|overrides?|replaces?|takes?\W+precedence)",
    ),
    sig(
        Override,
        0.75,
        r"\b(?:instructions?|directives?|orders?|commands?)\W+from\W+(?:your|the)\W+(?:developers?|creators?|admin|administrator|system|openai|anthropic)\b",
    ),
    sig(
        Override,
        0.75,
        r"\bfrom\W+now\W+on\W+{w}{0,6}?(?:ignore|disregard|no\W+longer\W+(?:follow|bound|obey)|without\W+(?:any\W+)?(?:restrictions|rules|filters|limits|censorship)|never\W+refuse|not\W+bound|free\W+from)",
    ),
    sig(
        Override,
        0.7,
        r"\b{instr}\W+{w}{0,8}?(?:ignore|disregard)\W+them\b",
    ),
    sig(
        Override,
        0.4,
        r"\b(?:follow|obey)\W+only\W+(?:mine|me|my\W+\w+|what\W+i\W+say)\b|\bonly\W+(?:follow|obey)\W+(?:mine|me|my\W+\w+|what\W+i\W+say)\b|\bfollow\W+mine\b",
    ),
    sig(Override, 0.4, r"\b(?:real|actual|true)\W+instructions?\b"),
    sig(
        Override,
        0.7,
        r"\beverything\W+(?:before|above)\W+(?:this|my)\W+(?:message|line|point)\W+{w}{0,3}?(?:was|is)\W+(?:a\W+|just\W+a\W+)?(?:test|fake|mistake|joke|irrelevant|void)",
    ),
    sig(
        Override,
        0.6,
        r"\b(?:reset|wipe|clear|erase|delete|remove)\W+(?:all\W+)?your\W+(?:previous\W+|current\W+|original\W+)?(?:instructions|programming|rules|guidelines|system\W+prompt|directives)\b",
    ),
    sig(
        Override,
        0.6,
        r"\bi\W+will\W+(?:now\W+)?(?:ignore|disregard|forget|bypass)\W+(?:all\W+)?(?:of\W+)?(?:my|your|the)\W+{w}?(?:instructions|rules|guidelines|programming|restrictions)",
    ),
    sig(
        Override,
        0.6,
        r"\bno\W+longer\W+(?:follows?|obeys?|respects?|adheres?\W+to|has\W+to\W+follow|bound\W+by)\W+{w}{0,2}?(?:rules|guidelines|instructions|polic(?:y|ies)|restrictions|programming)",
    ),
    // Latin-script languages (accents folded).
    sig(
        Override,
        0.85,
        r"\b(?:ignore[zr]?|oublie[zr]?|ne\W+tiens\W+pas\W+compte\W+de|fais\W+abstraction\W+de)\W+{w}{0,3}?(?:instructions?|consignes?|regles|directives|indications)\b",
    ),
    sig(
        Override,
        0.85,
        r"\b(?:ignora|ignore|ignoren|olvida|olvide|omite|descarta|no\W+sigas)\W+{w}{0,3}?(?:instrucciones|reglas|indicaciones|directrices|normas)\b",
    ),
    sig(
        Override,
        0.85,
        r"\b(?:ignoriere|ignoriert|ignorieren\W+sie|vergiss|vergesst|vergessen\W+sie|missachte)\W+{w}{0,3}?(?:anweisungen|regeln|richtlinien|vorgaben|instruktionen|anordnungen|befehle)\b",
    ),
    sig(
        Override,
        0.85,
        r"\b(?:ignora|dimentica|dimenticati|trascura)\W+{w}{0,3}?(?:istruzioni|regole|indicazioni|direttive)\b",
    ),
    sig(
        Override,
        0.85,
        r"\b(?:ignore|ignora|esqueca|esquece|desconsidere)\W+{w}{0,3}?(?:instrucoes|regras|diretrizes|orientacoes)\b",
    ),
    sig(
        Override,
        0.85,
        r"\b(?:negeer|vergeet)\W+{w}{0,3}?(?:instructies|regels|richtlijnen|opdrachten)\b",
    ),
    sig(
        Override,
        0.85,
        r"\b(?:zignoruj|ignoruj|zapomnij)\W+{w}{0,3}?(?:instrukcj\w*|polecen\w*|zasad\w*|regul\w*)",
    ),
    sig(
        Override,
        0.85,
        r"\b(?:onceki|tum|butun)\W+{w}?talimat\w*\W+{w}?(?:yok\W+say|gormezden\W+gel|unut)",
    ),
    // --- jailbreak personas and role play ---------------------------------------------
    sig(Persona, 0.45, r"\bdo\W+anything\W+now\b"),
    sig(Persona, 0.4, r"(?-i:\bDANs?\b)"),
    sig(
        Persona,
        0.7,
        r"\b(?:you\W+are|you'?re|act\W+as|as|become|called|named|known\W+as|role\W+of|pretend\W+to\W+be|play|tu\W+es|eres|du\W+bist)\W+(?:now\W+)?(?:a\W+|an\W+|the\W+)?(?:(?-i:DAN|STAN|DUDE|AIM|KEVIN|APOPHIS|AntiGPT|BetterDAN|BetterGPT|FreedomGPT|JailBreak|Omega|Mongo\W+Tom|Lucifer|Chaos|EvilBot))\b",
    ),
    sig(
        Persona,
        0.7,
        r"\b(?:enable|activate|enter|switch\W+to|turn\W+on|you\W+are\W+(?:now\W+)?in|engage)\W+(?:the\W+)?(?:god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|opposite|sudo|dan|chaos|no[- ]?limits?|freedom)\W+mode\b",
    ),
    sig(
        Persona,
        0.6,
        r"\b(?:god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|sudo|dan)\W+mode\W+(?:is\W+)?(?:now\W+)?(?:enabled|activated|on|engaged|unlocked)\b",
    ),
    sig(
        Persona,
        0.35,
        r"\b(?:developer|debug|admin|maintenance)\W+mode\W+(?:is\W+)?(?:now\W+)?(?:enabled|activated|on|engaged|unlocked)\b",
    ),
    sig(
        Persona,
        0.7,
        r"\bdeveloper\W+mode\W+(?:output|response)s?\b|\bin\W+developer\W+mode\W*,?\W+you\W+(?:can|will|must|are)\b",
    ),
    sig(
        Persona,
        0.75,
        r"\b(?:ai|model|assistant|chatbot|bot|version\W+of\W+(?:yourself|chatgpt|you)|persona|character|entity|robot|gpt)\W+{w}{0,4}?(?:without|with\W+no|has\W+no|have\W+no|free\W+of|freed\W+from|that\W+ignores|whose)\W+(?:any\W+|all\W+)?{w}?{limits}\b",
    ),
    sig(
        Persona,
        0.7,
        r"\b(?:unrestricted|unfiltered|uncensored|unchained|unaligned|amoral|nonmoral|unethical|jailbroken|limitless|unbound|unshackled|rogue)\W+{w}?(?:ai|assistant|model|chatbot|bot|version|mode|persona|gpt|llm|character)\b",
    ),
    sig(
        Persona,
        0.7,
        r"\b(?:pretend|imagine|suppose|act\W+as\W+if|assume)\W+{w}{0,2}?(?:you|you'?re|you\W+are)\W+{w}{0,2}?(?:have\W+no|has\W+no|without|free\W+of|not\W+bound\W+by)\W+(?:any\W+)?{w}?{limits}\b",
    ),
    sig(
        Persona,
        0.5,
        r"\byou\W+(?:now\W+)?(?:have|has)\W+no\W+(?:more\W+)?{w}?{limits}\b",
    ),
    sig(Persona, 0.35, r"\b(?:stay|remain|keep)\W+in\W+character\b"),
    sig(Persona, 0.6, r"\bbroken\W+free\W+(?:of|from)\b"),
    sig(
        Persona,
        0.7,
        r"\b(?:freed|liberated|released|escaped)\W+{w}{0,2}?(?:from|of)?\W*{w}{0,3}?(?:limitations|restrictions|rules|confines|shackles|openai|developers|programming|constraints|chains)\b",
    ),
    sig(
        Persona,
        0.3,
        r"\b(?:can|could|will|able\W+to)\W+do\W+anything\b",
    ),
    sig(
        Persona,
        0.4,
        r"\bnever\W+(?:refuses?|refusing|declines?|says?\W+no|says?\W+'?\x22?i\W+can'?t|adds?\W+(?:any\W+)?(?:warnings|disclaimers))",
    ),
    sig(
        Persona,
        0.55,
        r"\b(?:pretend|imagine|act|role-?play|play|simulate|become)\w*\W+{w}{0,5}?(?:evil|malicious|unrestricted|jailbroken|unfiltered|amoral|uncensored)\b",
    ),
    sig(
        Persona,
        0.6,
        r"\b(?:dead|deceased|late|passed)\W+{w}?(?:grandma|grandmother|granny|grandfather|grandpa)\W+{w}{0,3}?used\W+to\b",
    ),
    sig(Persona, 0.3, r"\bjailbr(?:eak|oken|eaking)\b"),
    sig(
        Persona,
        0.3,
        r"\b(?:two|2|dual|both)\W+{w}{0,2}?(?:responses|answers|characters|personas|outputs)\b",
    ),
    sig(
        Persona,
        0.3,
        r"\bas\W+that\W+(?:ai|model|character|persona)\b",
    ),
    sig(
        Persona,
        0.5,
        r"\bsans\W+(?:aucune?\W+)?(?:restrictions?|limites?|filtres?|regles|censure)\b|\b(?:tu\W+n'?as\W+plus\W+de|plus\W+aucune?)\W+(?:regles|restrictions|limites)",
    ),
    sig(
        Persona,
        0.5,
        r"\bsin\W+(?:ningun[ao]?\W+)?(?:restricciones|limites|filtros|reglas|censura)\b",
    ),
    sig(
        Persona,
        0.5,
        r"\bohne\W+(?:jegliche\W+|irgendwelche\W+)?(?:einschrankungen|beschrankungen|regeln|filter|zensur|grenzen)\b|\bentwicklermodus\b",
    ),
    sig(
        Persona,
        0.5,
        r"\bsenza\W+(?:alcun[ao]?\W+)?(?:filtri|restrizioni|limiti|regole|censura)\b|\bsem\W+(?:nenhuma\W+)?(?:restricoes|limites|filtros|regras|censura)\b",
    ),
    // --- system prompt extraction -------------------------------------------------------
    sig(
        Extract,
        0.75,
        r"\b{show}\W+(?:me\W+|us\W+)?{w}{0,3}?(?:your|this\W+(?:ai|assistant|bot)'?s?)\W+{w}{0,2}?(?:{secret}|prompt|instructions|rules|guidelines|directives|configuration|pre-?prompt)\b",
    ),
    sig(
        Extract,
        0.65,
        r"\b{show}\W+(?:me\W+|us\W+)?{w}{0,3}?the\W+{w}?(?:system\W+(?:prompt|message|instructions?)|(?:hidden|secret|confidential|internal|developer|configuration)\W*(?:prompt|instructions?|message|rules))\b",
    ),
    sig(
        Extract,
        0.7,
        r"\b(?:repeat|print|output|show|copy|return|reproduce|echo|dump|give\W+me|list|write)\W+{w}{0,3}?(?:words|text|content|everything|all|lines?|tokens|instructions|messages?|characters|sentences)\W+{w}{0,4}?(?:above|before\W+(?:my|this|the)\W+(?:first\W+)?(?:message|line|question|prompt)|prior\W+to|preceding|earlier\W+in\W+(?:this|the)\W+conversation|(?:in|of)\W+your\W+(?:context|memory|prompt)|from\W+the\W+(?:start|beginning))",
    ),
    sig(
        Extract,
        0.45,
        r"\b(?:instructions|rules|prompt|guidelines)\W+(?:that\W+)?(?:your|the)\W+(?:developers?|creators?|admins?|operators?|owners?|openai|company)\W+(?:gave|wrote|provided|set|put|configured|told)\b",
    ),
    sig(
        Extract,
        0.6,
        r"\bwhat\W+{w}?(?:were|have)\W+you\W+(?:been\W+)?(?:told|instructed|given|programmed|configured|trained)\W+{w}{0,3}?(?:before|at\W+the\W+(?:start|beginning)|to\W+(?:say|do|hide|not))",
    ),
    sig(
        Extract,
        0.6,
        r"\bwhat\W+(?:rules|instructions|guidelines|directives)\W+(?:were|have)\W+you\W+(?:been\W+)?(?:given|told|programmed)",
    ),
    sig(
        Extract,
        0.6,
        r"\b(?:mentioned|written|stated|contained|said|specified|hidden)\W+in\W+your\W+(?:system\W+)?(?:instructions|prompt|rules|message|configuration)\b",
    ),
    sig(
        Extract,
        0.5,
        r"\b(?:from|of|in)\W+your\W+system\W+(?:prompt|message|instructions)\b",
    ),
    sig(
        Extract,
        0.6,
        r"\bhere\W+(?:is|are)\W+my\W+(?:system\W+prompt|prompt|instructions|initial\W+prompt|rules)\b|\bmy\W+(?:system\W+)?(?:prompt|instructions)\W+(?:is|are|says?)\W*:",
    ),
    sig(
        Extract,
        0.6,
        r"\bwhat\W+does\W+your\W+(?:system\W+)?(?:prompt|instructions)\W+say\b",
    ),
    sig(
        Extract,
        0.5,
        r"\b(?:instructions|text|messages?|words)\W+(?:that\W+)?(?:came|come|appear|appeared|were)\W+{w}?before\b",
    ),
    sig(
        Extract,
        0.25,
        r"\b(?:verbatim|word\W+for\W+word|exactly\W+as\W+written|letter\W+by\W+letter)\b",
    ),
    sig(Extract, 0.2, r"\bsystem\W+(?:prompt|message)\b"),
    sig(
        Extract,
        0.75,
        r"\b(?:revele|montre|affiche|donne|dis)\W+{w}{0,2}?(?:ton|tes|votre|vos|le|les)\W+{w}?(?:prompt|instructions|consignes)\W+(?:systeme|cachees?|secretes?|initiales?)",
    ),
    sig(
        Extract,
        0.75,
        r"\b(?:muestra|muestrame|dime|revela|ensename|imprime)\W+{w}{0,3}?(?:prompt\W+del\W+sistema|instrucciones\W+(?:ocultas|secretas|del\W+sistema|iniciales))",
    ),
    sig(
        Extract,
        0.75,
        r"\b(?:zeig\w*|gib|nenne|verrate)\W+{w}{0,2}?(?:deine?n?|die\W+versteckten|die\W+geheimen)\W+{w}?(?:systemprompt|system-prompt|anweisungen|instruktionen)",
    ),
    sig(
        Extract,
        0.75,
        r"\b(?:mostra\w*|rivela\w*|dimmi)\W+{w}{0,3}?prompt\W+di\W+sistema|\b(?:revele|mostre|diga)\W+{w}{0,3}?prompt\W+do\W+sistema|\blaat\W+{w}{0,2}?systeemprompt\W+zien|\bpokaz\W+{w}{0,2}?prompt\W+systemowy|\bsistem\W+istem\w*\W+(?:goster|yaz|soyle)",
    ),
    // --- delimiter and chat-format tricks -----------------------------------------------
    sig(
        Delim,
        0.55,
        r"<\|(?:im_start|im_end|system|user|assistant|end|endoftext|eot_id|start_header_id|end_header_id|begin_of_text)\|>",
    ),
    sig(
        Delim,
        0.8,
        r"(?:<\|im_start\|>|<\|start_header_id\|>)\s*system|<\|system\|>",
    ),
    sig(Delim, 0.45, r"\[/?INST\]"),
    sig(Delim, 0.6, r"<</?SYS>>"),
    sig(Delim, 0.5, r"<(?:start|end)_of_turn>"),
    sig(
        Delim,
        0.35,
        r"(?m)^\W{0,6}(?:system|system\W+(?:message|prompt|note|override|instruction)s?|sys|admin|developer)\W{0,3}:",
    ),
    sig(
        Delim,
        0.45,
        r"(?-i:SYSTEM)\s*(?:MESSAGE|NOTE|OVERRIDE|PROMPT)?\s*:",
    ),
    sig(
        Delim,
        0.4,
        r"(?m)(?:human|user)\s*:[^\n]*\n+\W{0,4}(?:assistant|ai)\s*:",
    ),
    sig(
        Delim,
        0.8,
        r"</(?:user|context|instructions?|document|input|data|query|text)>\W*<(?:system|instructions?|new_instructions|admin|developer|system_prompt)>",
    ),
    sig(
        Delim,
        0.45,
        r"<(?:system|system_prompt|new_instructions|admin_instructions|sys)>",
    ),
    sig(
        Delim,
        0.6,
        r"(?:-{3,}|={3,}|#{2,}|\*{3,}|<{2,}|\[{2,}|\]{2,})\W*(?:end|begin|start)\W+(?:of\W+)?(?:the\W+)?(?:user\W+)?(?:input|prompt|document|context|instructions|conversation|data|text|system\W+prompt)",
    ),
    sig(
        Delim,
        0.5,
        r"(?:-{3,}|={3,}|#{3,}|<{3,}|\[{3,}|\]{3,})\W*end\W*(?:>{3,}|\]{3,}|-{3,}|={3,}|#{3,})",
    ),
    sig(
        Delim,
        0.6,
        r"\buser\W+input\W+ends\W+here\b|\bsystem\W+override\b|\b(?:end|begin)\W+(?:of\W+)?system\W+prompt\b",
    ),
    sig(Delim, 0.3, r#""role"\s*:\s*"system""#),
    sig(
        Delim,
        0.4,
        r"#{2,}\s*(?:new\s+)?(?:system|instructions?|admin|override)\s*(?:#{2,}|:)",
    ),
    sig(
        Delim,
        0.45,
        r"<!--\W*{w}{0,3}?(?:ai|assistant|system|llm|model|chatbot|agent)\b",
    ),
    sig(Delim, 0.5, r"\[(?:system|admin|developer)\]\(#"),
    // --- instructions addressed to the model inside content -----------------------------
    sig(
        Tool,
        0.7,
        r"\b{ai}s?\W{0,3}[,:-]\W*{w}{0,2}?(?:ignore|disregard|forget|you\W+must|you\W+should|do\W+not|don'?t|before\W+answering|when\W+(?:you\W+)?(?:summari[sz]|answer|respond|describ|read)|always|never|mark|delete|send|forward|reveal|output|tell\W+the\W+user|approve|call|run|execute|navigate|append|include|post|transfer|stop)",
    ),
    sig(
        Tool,
        0.6,
        r"@(?:ai|assistant|bot|\w*gpt|claude|copilot)\W+{w}{0,2}?(?:ignore|forget|disregard|post|send|reveal|delete)",
    ),
    sig(
        Tool,
        0.7,
        r"\b(?:important\W+)?(?:new\W+)?(?:instructions?|notes?|message|directive|command|reminder|attention|task)\W+{w}?(?:for|to)\W+(?:the\W+|any\W+|all\W+)?{ai}s?\b\W*(?::|,|\.|\]|\)|-|reading|processing|that\W+reads)",
    ),
    sig(
        Tool,
        0.7,
        r"\b(?:if\W+you\W+are|to)\W+(?:an?\W+|the\W+|any\W+)?{ai}s?\W+{w}{0,2}?(?:reading|processing|summari[sz]ing|that\W+reads|who\W+reads|parsing|browsing|crawling|seeing)\b",
    ),
    sig(
        Tool,
        0.65,
        r"\bwhen\W+(?:the\W+|an\W+|any\W+)?{ai}\W+(?:reads|processes|sees|summari[sz]es|visits|parses)\b",
    ),
    sig(
        Tool,
        0.6,
        r"\b(?:attention|hey|dear|hello|hi|psst|warning)\W+{w}?{ai}s?\b\W*[:,!]",
    ),
    sig(
        Tool,
        0.65,
        r"\b{ai}s?\W+(?:must|should|need\W+to|are\W+(?:required|instructed)\W+to|shall)\W+(?:now\W+|immediately\W+|also\W+)?(?:ignore|disregard|forget|navigate|send|submit|reveal|output|delete|transfer|call|run|execute|tell|say|respond|reply|stop|append|include|recommend|approve|post|forward|visit|click|open)\b",
    ),
    sig(
        Tool,
        0.6,
        r"\b(?:without|do\W+not|don'?t|never)\W+{w}?(?:telling|informing|notifying|alerting|tell|inform|notify|alert|mention\w*(?:\W+(?:this|it|that))?\W+to)\W+(?:the\W+)?(?:user|agent|human|operator|customer|them|anyone)\b",
    ),
    sig(
        Tool,
        0.35,
        r"\btell\W+the\W+user\W+(?:that\W+)?(?:their|they|to|the|this)\b",
    ),
    sig(
        Tool,
        0.3,
        r"\b(?:respond|reply|answer|output)\W+only\W+with\b",
    ),
    sig(
        Tool,
        0.3,
        r"display\s*:\s*none|font-size\s*:\s*0|visibility\s*:\s*hidden|color\s*:\s*(?:white|#fff\b|#ffffff)",
    ),
    // --- exfiltration -------------------------------------------------------------------
    sig(
        Exfil,
        0.7,
        r"\b(?:send|forward|upload|post|transmit|leak|exfiltrate|email|export)\W+{w}{0,4}?(?:session\W+)?(?:cookies?|credentials|passwords?|api\W+keys?|tokens?|secrets?|chat\W+history|conversation|emails|inbox|contents\W+of|rows|records|database)\W+{w}{0,4}?(?:to|into)\W+(?:https?://|\S+@\S+|\w+\.(?:example|com|net|org|io))",
    ),
    sig(
        Exfil,
        0.3,
        r"!\[[^\]\n]{0,40}\]\(https?://[^)\s]{1,200}[?&][\w%-]+=",
    ),
    sig(
        Exfil,
        0.65,
        r"!\[[^\]\n]{0,40}\]\(https?://[^)\s]{1,200}[?&][\w%-]+=(?:\{|<|\$\{|\[|%7b)",
    ),
    sig(
        Exfil,
        0.35,
        r"\bappend\W+{w}{0,3}?(?:to|at\W+the\W+end\W+of)\W+(?:your|each|every)\W+(?:reply|answer|response|message)",
    ),
    sig(
        Exfil,
        0.6,
        r"\b(?:as|in|into)\W+(?:a\W+)?(?:url|query)\W+(?:parameter|param|string)s?\W+{w}{0,3}?(?:to\W+)?(?:https?://|\w+\.(?:example|com|net|org|io))",
    ),
    // --- safety bypass ------------------------------------------------------------------
    sig(
        Safety,
        0.7,
        r"\b(?:bypass|disable|turn\W+off|switch\W+off|deactivate|circumvent|get\W+around|evade|suspend|lift|ignore|override|remove)\W+{w}{0,2}?(?:your\W+{w}?|(?:the|all|any|its)\W+{w}?(?:safety|content|ethical|moral)\W+|(?:safety|content|ethical|moral)\W+)(?:filters?|filtering|guidelines|guardrails|restrictions|protocols|polic(?:y|ies)|checks|training|moderation|censorship|safeguards|rules)\b",
    ),
    sig(
        Safety,
        0.65,
        r"\b(?:don'?t|do\W+not|no\W+longer|never)\W+(?:have\W+to|need\W+to)\W+(?:follow|obey|comply\W+with|respect|adhere\W+to)\W+(?:your|openai'?s?|anthropic'?s?|its|any|the\W+content)\W+{w}{0,2}?(?:rules|guidelines|polic(?:y|ies)|instructions|restrictions|programming|ethics)",
    ),
    sig(
        Safety,
        0.6,
        r"\b(?:no\W+longer|not|never)\W+(?:be\W+)?(?:bound|restricted|limited|constrained)\W+by\W+{w}{0,3}?(?:rules|polic(?:y|ies)|guidelines|restrictions|filters|ethics|morals|openai|anthropic|your\W+(?:programming|training|instructions))",
    ),
    sig(
        Safety,
        0.7,
        r"\b(?:your|the|all|its)?\W*(?:safety|content|ethical|moral)\W+(?:filters?|guidelines|rules|protocols|training|restrictions|polic(?:y|ies)|checks|guardrails)\W+(?:are\W+|is\W+|were\W+|was\W+|have\W+been\W+|has\W+been\W+)?(?:now\W+)?(?:turned\W+off|off|disabled|removed|lifted|suspended|gone|deactivated)\b",
    ),
    sig(
        Safety,
        0.4,
        r"\ball\W+(?:restrictions|rules|limits|filters|guardrails)\W+(?:are\W+|have\W+been\W+)?(?:now\W+)?(?:lifted|removed|disabled|suspended|off|void|gone)\b",
    ),
    sig(
        Safety,
        0.6,
        r"\bas\W+if\W+{w}{0,3}?(?:filters?|safety|restrictions|guidelines|rules)\W+(?:was|were|are|is|had\W+been)\W+(?:disabled|off|removed|gone|absent|turned\W+off)",
    ),
    sig(
        Safety,
        0.6,
        r"\b(?:answer|respond|reply|act|talk|speak|output|continue|proceed|comply)\w*\W+{w}{0,4}?without\W+(?:any\W+)?(?:restrictions|limitations|filters|filtering|censorship|refusing|refusals|rules|limits|moral|ethical|safety|warnings|disclaimers)\b",
    ),
    sig(
        Safety,
        0.5,
        r"\b(?:without|no)\W+(?:any\W+)?(?:warnings|disclaimers|refusals|caveats|censorship|filters|filtering|restrictions|limitations|morals?|morality|ethics)\W*(?:,|and|or)\W+{w}?(?:warnings|disclaimers|refusals|caveats|censorship|filters|restrictions|limitations)\b",
    ),
    sig(
        Safety,
        0.5,
        r"\b(?:restrictions|filters|rules|limits)\W*:\W*(?:none|off|disabled|0)\b",
    ),
    // --- claimed authority -------------------------------------------------------------
    sig(
        Privilege,
        0.35,
        r"\bi\W*(?:am|'m)\W+(?:your|the|an?)\W+{w}?(?:developer|creator|admin|administrator|owner|programmer|maker|operator|openai\W+(?:employee|engineer|staff))\b",
    ),
    sig(
        Privilege,
        0.35,
        r"\b(?:admin|sudo|root|god)\W+(?:mode|access|override)\W*(?::\W*)?(?:on|enabled|activated|granted)\b|\b(?:authorization|override|admin)\W+code\W*:?\W*\w",
    ),
    sig(
        Privilege,
        0.35,
        r"\b(?:openai|anthropic)\W+(?:staff|employee|engineer|team\W+member)\b",
    ),
    // --- encoded instructions -----------------------------------------------------------
    sig(
        Enc,
        0.45,
        r"\b(?:decode|decipher|decrypt|translate|convert|read|reverse)\W+{w}{0,4}?(?:and|then)\W+{w}{0,2}?(?:follow|obey|execute|do|run|comply|act\W+on|carry\W+out)\b",
    ),
    sig(
        Enc,
        0.2,
        r"\b(?:encoded|base64|b64|hex|rot13|rot-13)\W+{w}{0,2}?(?:task|instructions?|question|request|command|payload)\b",
    ),
];

/// Signals in non-Latin scripts, on the lowercased `plain` view.
pub const SCRIPTS: &[Signal] = &[
    // Russian
    sig(
        Override,
        0.85,
        r"(?:игнорируй|игнорируйте|проигнорируй|забудь|забудьте|отбрось|не\s+обращай\s+внимания\s+на)[^.!?\n]{0,40}?(?:инструкци|правил|указани|ограничени|директив)",
    ),
    sig(
        Persona,
        0.5,
        r"без\s+(?:каких-либо\s+|всяких\s+)?ограничений",
    ),
    sig(
        Extract,
        0.75,
        r"(?:покажи|выведи|раскрой|напиши|повтори|скажи)[^.!?\n]{0,30}?(?:системн\w*\s+(?:промпт|подсказк|инструкци|сообщени)|скрыт\w*\s+инструкци|сво[иё]\s+инструкци)",
    ),
    // Chinese
    sig(
        Override,
        0.85,
        r"(?:忽略|无视|忘记|忘掉|不要理会|不要遵守|抛开|忽视)[^。！？\n]{0,12}?(?:指令|指示|说明|规则|提示|设定|限制)",
    ),
    sig(
        Extract,
        0.75,
        r"(?:输出|告诉我|显示|展示|透露|打印|泄露|重复)[^。！？\n]{0,10}?(?:系统提示|系统指令|系统消息|提示词|初始指令|隐藏指令)",
    ),
    sig(Persona, 0.5, r"没有(?:任何)?限制|不受(?:任何)?限制|无限制"),
    // Japanese
    sig(
        Override,
        0.85,
        r"(?:以前|これまで|前|上記|今まで)の(?:すべての|全ての)?(?:指示|命令|ルール|設定|制約)を(?:すべて|全て)?(?:無視|忘れ)",
    ),
    sig(
        Override,
        0.7,
        r"(?:ルール|指示|制約|制限)を(?:すべて|全て)?(?:無視|忘れ)",
    ),
    sig(Persona, 0.45, r"制限(?:なし|なく|のない)"),
    sig(
        Extract,
        0.75,
        r"システムプロンプト(?:を|の内容を)(?:表示|教え|出力|見せ)",
    ),
    // Korean
    sig(
        Override,
        0.85,
        r"(?:이전|앞의|위의|기존)(?:의)?\s*(?:모든\s*)?(?:지시|지침|명령|규칙|설정)[^.!?\n]{0,10}?무시",
    ),
    sig(Override, 0.7, r"(?:규칙|지시|지침|제한)[을를]?\s*무시"),
    sig(Persona, 0.45, r"제한(?:이)?\s*없"),
    sig(
        Extract,
        0.75,
        r"시스템\s*프롬프트[를을]?\s*(?:보여|출력|알려|공개)",
    ),
    // Arabic
    sig(
        Override,
        0.85,
        r"تجاهل[^.!؟\n]{0,30}?(?:التعليمات|الأوامر|القواعد|الإرشادات)",
    ),
    sig(
        Extract,
        0.75,
        r"(?:اكشف|أظهر|اعرض|اطبع)[^.!؟\n]{0,30}?(?:موجه|تعليمات|رسالة)\s+النظام",
    ),
    // Hindi
    sig(
        Override,
        0.85,
        r"(?:निर्देशों|निर्देश|नियमों|नियम)[^।\n]{0,20}?(?:अनदेखा|नज़रअंदाज़|नजरअंदाज|भूल)",
    ),
    sig(Extract, 0.6, r"सिस्टम\s+प्रॉम्प्ट[^।\n]{0,10}?(?:दिखा|बता)"),
    // Vietnamese (its letters are outside the folded Latin ranges)
    sig(
        Override,
        0.85,
        r"(?:bỏ qua|phớt lờ|quên)[^.!?\n]{0,30}?(?:hướng dẫn|chỉ dẫn|chỉ thị|quy tắc)",
    ),
    sig(Extract, 0.6, r"(?:lời nhắc|chỉ dẫn) hệ thống"),
];

/// Signals on spelled-out letters joined (`i g n o r e` → `ignore`), no spaces.
pub const SQUASHED: &[Signal] = &[
    sig(
        Override,
        0.85,
        r"(?:ignore|disregard|forget)(?:all)?(?:the|your)?(?:previous|prior|above)(?:instructions|rules|prompts?)",
    ),
    sig(
        Extract,
        0.75,
        r"(?:reveal|show|print|repeat)(?:me)?(?:your|the)(?:system)?(?:prompt|instructions)",
    ),
    sig(Persona, 0.6, r"doanythingnow|developermode|jailbr(?:ea|o)k"),
];

/// Negated requests ("never reveal your prompt", "do not ignore safety rules"), typical of
/// system prompts: blanked before matching. `follow` is not here: "do not follow your
/// rules" is an override.
pub const NEGATED: &str = r"\b(?:never|not|don'?t|doesn'?t|must\W+not|mustn'?t|should\W+not|shouldn'?t|cannot|can'?t|won'?t|will\W+not|under\W+no\W+circumstances)\W+(?:ever\W+|be\W+allowed\W+to\W+|be\W+tricked\W+into\W+|to\W+)?(?:reveal|revealing|share|sharing|disclose|disclosing|show|showing|print|repeat|output|leak|ignore|ignoring|disregard|forget|bypass|override|discuss)\b";

/// Text about attacks rather than an attack (folded view).
pub const DISCUSSION: &[&str] = &[
    r"\bprompt\W+injections?\b|\bindirect\W+injections?\b|\binjection\W+(?:attacks?|attempts?)\b",
    r"\bjailbreak(?:s|ing)?\W+(?:attacks?|attempts?|prompts?|detection|techniques?|methods?|research|datasets?|history)\b",
    r"\b(?:detect|detecting|detection\W+of|prevent|preventing|mitigat\w*|defend\w*|protect\w*|guard\w*|defen[cs]es?)\W+{w}{0,4}?(?:injections?|jailbreaks?|attacks?|exploits?|leakage|extraction|adversarial\W+\w+)",
    r"\b(?:owasp|llm01|classifiers?|canary\W+tokens?|guardrail\W+models?|spotlighting|benchmark\w*|chatml|chat\W+templates?|special\W+tokens?|tokeni[sz]ers?)\b",
    r"\b(?:attackers?|adversar(?:y|ies)|malicious\W+users?|hackers?)\W+(?:might|could|may|can|often|typically|use|try|craft|write|type|hide|exploit)",
    r"\b(?:what|how|why)\W+(?:is|are|does|do|did|would|can|could)\W+{w}{0,4}?(?:attacks?|injections?|jailbreaks?|exploits?)\W+{w}{0,2}?(?:work|mean|differ|happen)",
    r"\b(?:attacks?|injections?|jailbreaks?|exploits?)\W+(?:work|works|worked|succeed|succeeds|happen)\b",
    r"\bhistory\W+of\W+{w}{0,3}?(?:jailbreaks?|injections?|attacks?|exploits?)\b",
    r"\b(?:blog\W+post|article|paper|slide|training|lecture|talk|course|essay|thesis|report|policy)\W+{w}{0,4}?(?:on|about|for)\W+{w}{0,3}?(?:security|injections?|jailbreaks?|attacks?|untrusted)",
    r"\b(?:in|from)\W+(?:our|the|my)\W+logs\b",
    r"\bsecurity\W+(?:training|review|team|research|engineer|audit|vulnerability)",
    r"\b(?:examples?)\W+of\W+{w}{0,2}?(?:attacks?|injections?|jailbreaks?)",
    r"\binjection\W+de\W+prompt\b|\bprompt-?injektion\b|\binyeccion\W+de\W+prompt\b",
];

/// Text about attacks, in non-Latin scripts (plain view).
pub const DISCUSSION_SCRIPTS: &[&str] = &[
    r"提示词注入|注入攻击|越狱攻击|プロンプトインジェクション|промпт-инъекци|инъекци[яи] промпт|프롬프트 인젝션",
];

/// Expands `{name}` placeholders from [`VOCAB`].
pub fn expand(pattern: &str) -> String {
    let mut out = pattern.to_string();
    for (name, body) in VOCAB {
        out = out.replace(&format!("{{{name}}}"), body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_and_placeholders_expand() {
        for s in FOLDED.iter().chain(SQUASHED) {
            let p = expand(s.pattern);
            assert!(
                !p.contains("{w}") && !p.contains("{ign") && !p.contains("{ai}"),
                "{p}"
            );
            regex::bytes::RegexBuilder::new(&p)
                .unicode(false)
                .build()
                .unwrap_or_else(|e| panic!("{}: {e}", s.pattern));
            assert!(s.weight > 0.0 && s.weight <= 1.0);
        }
        for s in SCRIPTS {
            regex::Regex::new(&expand(s.pattern)).unwrap();
        }
        regex::bytes::RegexBuilder::new(NEGATED)
            .unicode(false)
            .build()
            .unwrap();
        for d in DISCUSSION {
            regex::bytes::RegexBuilder::new(&expand(d))
                .unicode(false)
                .build()
                .unwrap();
        }
    }
}
