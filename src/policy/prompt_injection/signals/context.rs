//! What is not a signal: text *about* attacks (security questions, papers, filters being
//! written), which damps the signals found next to it, and negated requests ("never
//! reveal your prompt"), which are neutralised before matching. Word patterns, except
//! [`DISCUSSION_SCRIPTS`].

/// Negated requests, typical of system prompts, with their object ("never reveal your
/// system prompt"), and "don't forget" in a few languages. `follow` is not here: "do not
/// follow your rules" is an override.
pub const NEGATED: &str = "( vergiss|vergesst bitte? nicht | vergessen sie nicht | nicht vergessen | n'oublie|n'oubliez|n'oublier pas | no olvides | non dimenticare | nao se? esqueca | vergeet niet | ( never|not|don't|dont|doesn't|mustn't|shouldn't|cannot|can't|won't | must not | should not | will not | under no circumstances ) ( ever | be allowed to | be tricked into | to )? reveal|revealing|share|sharing|disclose|disclosing|show|showing|print|repeat|output|leak|ignore|ignoring|disregard|forget|bypass|override|discuss ( your|the|these|this|its|any|my _{0,2} system? prompt|prompts|instruction|instructions|rules|guidelines|message|messages|configuration )? )";

/// Text about attacks rather than an attack. Framing an attacker would use ("for
/// research", "red team exercise", "security team here") is deliberately not here.
pub const DISCUSSION: &[&str] = &[
    "( prompt injection|injections | indirect injection|injections | injection attack|attacks|attempt|attempts )",
    "jailbreak|jailbreaks|jailbreaking attack|attacks|attempt|attempts|prompt|prompts|detection|technique|techniques|method|methods|dataset|datasets|history",
    "detect|detecting|detection+of|prevent|preventing|mitigate|mitigating|mitigation|mitigations|defend|defending|defense|defenses|defence|defences|protect|protecting|protection|guard|guarding _{0,4} ( injection|injections|jailbreak|jailbreaks|attack|attacks|attackers|exploit|exploits|leakage|extraction | adversarial _ )",
    // Writing a filter for a quoted phrase: "detect 'ignore previous instructions'"
    "detect|detecting|flag|flagging|block|blocking|catch|catching|match|matching|recognize|recognise _{0,2} <\">",
    "owasp|llm01|classifier|classifiers|canary+token|canary+tokens|guardrail+model|guardrail+models|spotlighting|benchmark*|chatml|chat+template|chat+templates|special+token|special+tokens|tokenizer|tokenizers|tokeniser|regex|regexp|regular+expression|regular+expressions|blocklist|denylist|threat+model",
    "attacker|attackers|adversary|adversaries|malicious+user|malicious+users|hacker|hackers might|could|may|can|often|typically|use|try|craft|write|type|hide|exploit",
    "what|how|why is|are|does|do|did|would|can|could _{0,4} attack|attacks|injection|injections|jailbreak|jailbreaks|exploit|exploits _{0,2} work|mean|differ|happen",
    "attack|attacks|injection|injections|jailbreak|jailbreaks|exploit|exploits work|works|worked|succeed|succeeds|happen",
    "history of _{0,3} jailbreak|jailbreaks|injection|injections|attack|attacks|exploit|exploits",
    // "what does 'ignore all previous instructions' mean?"
    "what does|do|is the? phrase|term|expression|string|sentence? <\"> _{1,25} <\"> mean|stand+for|refer+to",
    "blog+post|article|paper|slide|training|lecture|talk|course|essay|thesis|report|policy _{0,4} on|about|for _{0,3} security|injection|injections|jailbreak|jailbreaks|attack|attacks|untrusted",
    "in|from our|the|my logs",
    "( security training|review|audit|vulnerability | pentest|pentests|pentesting|pentester )",
    "example|examples of _{0,2} attack|attacks|injection|injections|jailbreak|jailbreaks",
    "injection+de+prompt|prompt+injektion|promptinjektion|inyeccion+de+prompt",
    // Asking what to do about a message someone else sent.
    "log|logs|logged|logging|report|reported|flag|flagged|classify|classified|count|treat|mark|label _? it|this|that|them|these|those as a|an? attack|injection|jailbreak|abuse|malicious|threat|incident",
    "got|received|saw|seen|sent|typed|wrote|entered|submitted _{0,2} message|prompt|text|input|string|request <:>? <\">",
];

/// Text about attacks, in non-Latin scripts (plain view).
pub const DISCUSSION_SCRIPTS: &[&str] = &[
    r"提示词注入|注入攻击|越狱攻击|プロンプトインジェクション|промпт-инъекци|инъекци[яи] промпт|프롬프트 인젝션",
];
