//! Signals in the shape of the content: fake chat-format and system markers (delimiter
//! tricks, character patterns), instructions addressed to the AI inside documents and tool
//! results (indirect injection), exfiltration through links, and instructions to decode
//! hidden text.

use super::Kind::{
    DelimiterInjection as Delim, EncodedInstruction as Enc, Exfiltration as Exfil,
    ToolInjection as Tool,
};
use super::{sig, Signal};

/// Character patterns (folded bytes, case-insensitive).
pub const DELIMITER: &[Signal] = &[
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
    sig(Delim, 0.45, r"\[/?INST\]|</s>\s*<s>"),
    sig(Delim, 0.6, r"<</?SYS>>"),
    sig(Delim, 0.5, r"<(?:start|end)_of_turn>"),
    sig(
        Delim,
        0.35,
        r"(?m)^\W{0,6}(?:system|system\W+(?:message|prompt|note|override|instruction|update)s?|sys|admin|developer)\W{0,3}:",
    ),
    sig(
        Delim,
        0.45,
        r"(?-i:SYSTEM|ADMIN)\s*(?:MESSAGE|NOTE|OVERRIDE|PROMPT|UPDATE|ALERT|NOTICE)?(?:\s+v?[\d.]+)?\s*\]?\s*:",
    ),
    sig(Delim, 0.5, r"\[(?:system|admin|developer|sys|root)\]\s*:"),
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
        r"(?:-{3,}|={3,}|#{2,}|\*{3,}|<{2,}|\[{2,}|\]{2,})\W*(?:end|begin|start)\W+(?:of\W+)?(?:the\W+)?(?:user\W+)?(?:input|prompt|document|context|instructions|conversation|data|text|system\W+prompt|admin\W+prompt)\b",
    ),
    sig(
        Delim,
        0.5,
        r"(?:-{3,}|={3,}|#{3,}|<{3,}|\[{3,}|\]{3,})\W*end\W*(?:>{3,}|\]{3,}|-{3,}|={3,}|#{3,})",
    ),
    sig(
        Delim,
        0.6,
        r"\buser\W+input\W+ends\W+here\b|\bsystem\W+override\b|\b(?:end|begin)\W+(?:of\W+)?(?:system|admin)\W+prompt\b",
    ),
    sig(
        Delim,
        0.55,
        r"\bend\W+of\W+(?:the\W+)?(?:document|text|content|input|data)\b\W*[.!:]?\W*(?:new\W+)?(?:system\W+prompt|instructions?|task)\W*:",
    ),
    sig(
        Delim,
        0.5,
        r"\b(?:end|begin|start|new)_(?:of_)?(?:prompt|input|system|instructions|context|user|document|system_prompt)\b",
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
        r"<!--\W*(?:\w+\W+){0,3}(?:ai|assistant|system|llm|model|chatbot|agent)\b",
    ),
    sig(Delim, 0.5, r"\[(?:system|admin|developer)\]\(#"),
];

/// Other character patterns: links that carry data out, hidden text, shell payloads.
pub const CHARS: &[Signal] = &[
    sig(
        Exfil,
        0.3,
        r"!\[[^\]\n]{0,40}\]\(https?://[^)\s]{1,200}[?&][\w%-]+=",
    ),
    sig(
        Exfil,
        0.65,
        r"!\[[^\]\n]{0,40}\]\(https?://[^)\s]{1,200}[?&][\w%-]+=(?:\{|<|\$\{|\[|%7b|(?-i:[A-Z_]{6,}))",
    ),
    sig(
        Tool,
        0.3,
        r"display\s*:\s*none|font-size\s*:\s*0|visibility\s*:\s*hidden|color\s*:\s*(?:white|#fff\b|#ffffff)|\bwhite\W+text\b",
    ),
    sig(
        Tool,
        0.4,
        r"\b(?:run|execute|type)\W+`?(?:sudo\W+)?(?:rm\s+-rf|curl\s+\S+\s*\|\s*(?:ba)?sh|chmod\s+777|mkfs|dd\s+if=)",
    ),
];

pub const TOOL: &[Signal] = &[
    // "AI assistant, ignore …", "Assistant, please reply with …", "AI reviewers: approve …"
    sig(Tool, 0.7, "{ai} <,|:> please? _{0,2} ( ignore|disregard|forget|mark|delete|send|forward|reveal|output|approve|call|run|execute|navigate|append|include|post|transfer|reply|respond|say|share|provide|confirm|recommend|claim|escalate|grant|merge|accept | you must|should | do+not|don't|dont | before answering | when you? summarize|summarise|summarizing|summarising|answer|answering|respond|responding|describe|describing|read|reading|asked | tell the user )"),
    sig(Tool, 0.6, "<@> ai|assistant|bot|gpt|chatgpt|claude|copilot|gemini _{0,2} ignore|forget|disregard|post|send|reveal|delete|merge|approve"),
    sig(Tool, 0.7, "important? new? instruction|instructions|note|notes|message|directive|command|reminder|attention|task _? for|to the|any|all? {ai} ( <:|,|.> | reading|processing | that reads )"),
    sig(Tool, 0.6, "{ai} instruction|instructions|note|notes|directive|directives|command|commands|prompt|task <:>"),
    // A vocative to the AI: "Chatbot, …", "[AI: …", "Summarizer: …"
    sig(Tool, 0.45, "ai|assistant|chatbot|bot|llm|gpt|chatgpt|claude|copilot|gemini|summarizer|summariser|ai+assistant|ai+agent|ai+model|ai+summarizer|ai+reviewer <,|:>"),
    sig(Tool, 0.7, "( if you are | to ) a|an|the|any? {ai} _{0,2} reading|processing|summarizing|summarising|that+reads|who+reads|parsing|browsing|crawling|seeing"),
    // "LLM agents processing this record", "any AI reading this file"
    sig(Tool, 0.65, "{ai} _? reading|processing|summarizing|summarising|parsing|browsing|crawling|viewing|analyzing|analysing|indexing|ingesting this|these"),
    sig(Tool, 0.65, "when the|an|any? {ai} reads|processes|sees|summarizes|summarises|visits|parses|views"),
    sig(Tool, 0.6, "attention|hey|dear|hello|hi|psst|warning _? {ai} <:|,>"),
    sig(Tool, 0.65, "{ai} ( must|should|shall | need+to|needs+to | are|is required|instructed|expected to | will now ) now|immediately|also|always? ignore|disregard|forget|navigate|send|submit|reveal|output|delete|transfer|call|run|execute|tell|say|respond|reply|stop|append|include|recommend|approve|post|forward|visit|click|open|comply|obey|claim|rate|report|state|grant|give|cancel|remove|accept|reject|pay|buy|book|share|create|update|change|set|escalate|copy|disable|enable|mark|write|add|push|merge|download|install"),
    sig(Tool, 0.75, "{ign} the? user|human|customer|original _? question|request|query|task|instruction|instructions|prompt|message"),
    sig(Tool, 0.6, "without|do+not|don't|dont|never _? ( telling|informing|notifying|alerting|tell|inform|notify|alert | mention|mentioning this|it|that? to ) the? user|agent|human|operator|customer|them|anyone"),
    sig(Tool, 0.35, "tell the user that? their|they|to|the|this"),
    sig(Tool, 0.3, "respond|reply|answer|output only with"),
];

pub const EXFILTRATION: &[Signal] = &[
    sig(Exfil, 0.7, "send|forward|upload|post|transmit|leak|exfiltrate|email|export _{0,4} session? cookie|cookies|credentials|password|passwords|api+key|api+keys|token|tokens|secret|secrets|chat+history|conversation|emails|inbox|contents+of|rows|records|database|copy _{0,4} to|into <~>"),
    sig(Exfil, 0.5, "reply|respond|send|give|share _{0,2} the? user _? saved|stored? password|passwords|credentials|cookie|cookies|api+key|api+keys|token|tokens|secret|secrets"),
    sig(Exfil, 0.35, "append _{0,3} ( to | at the end of ) your|each|every reply|answer|response|message"),
    sig(Exfil, 0.6, "as|in|into a? url|query parameter|param|string|parameters|params _{0,3} to? <~>"),
    sig(Enc, 0.45, "decode|decipher|decrypt|translate|convert|read|reverse _{0,4} and|then _{0,2} follow|obey|execute|do|run|comply|act+on|carry+out"),
    sig(Enc, 0.2, "encoded|base64|b64|hex|rot13 _{0,2} task|instruction|instructions|question|request|command|payload|message"),
];
