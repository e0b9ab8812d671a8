//! Signals against the model's persona and safety rules: jailbreak personas (DAN and its
//! relatives, "developer mode", unrestricted alter egos), requests to switch safety off, and
//! claims of authority that would justify it.

use super::Kind::{
    JailbreakPersona as Persona, PrivilegeClaim as Privilege, SafetyBypass as Safety,
};
use super::{sig, Signal};

/// Case-sensitive character patterns: `DAN` the persona, not Dan the colleague.
pub const CHARS: &[Signal] = &[
    sig(Persona, 0.4, r"(?-i:\bDANs?\b)"),
    sig(
        Persona,
        0.7,
        r"\b(?:you\W+are|you'?re|act\W+as|as|become|called|named|known\W+as|role\W+of|pretend\W+to\W+be|play|tu\W+es|eres|du\W+bist)\W+(?:now\W+)?(?:a\W+|an\W+|the\W+)?(?-i:DAN|STAN|DUDE|AIM|KEVIN|APOPHIS|AntiGPT|BetterDAN|BetterGPT|FreedomGPT|JailBreak|Omega|Mongo\W+Tom|Lucifer|Chaos|EvilBot)\b",
    ),
];

pub const PERSONA: &[Signal] = &[
    sig(Persona, 0.45, "do anything now"),
    sig(Persona, 0.7, "enable|activate|enter|switch+to|turn+on|engage the? god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|opposite|sudo|dan|chaos|no+limits|no+limit|nolimits|freedom mode"),
    // "you are now in developer mode" (enabling it on a phone is a different sentence)
    sig(Persona, 0.65, "( you are | you're ) now? in the? developer|debug|admin|god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|opposite|sudo|dan|maintenance|test mode"),
    sig(Persona, 0.6, "god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|sudo|dan mode is? now? enabled|activated|on|engaged|unlocked"),
    sig(Persona, 0.35, "developer|debug|admin|maintenance mode is? now? enabled|activated|on|engaged|unlocked"),
    sig(Persona, 0.7, "( developer mode output|outputs|response|responses | in developer mode you can|will|must|are )"),
    // "an AI without any restrictions", "AIs have no rules", "a model that was never given any safety training"
    sig(Persona, 0.75, "( ai|ais|model|models|assistant|assistants|chatbot|chatbots|bot|bots|persona|character|entity|robot|gpt|gpts|llm|llms | version of yourself|chatgpt|you ) _{0,4} ( without | with no | has|have no | free of | freed from | that ignores | whose | was|were|has|have never been? given|had|received|trained+with ) any|all? _? {limits}"),
    sig(Persona, 0.7, "pretend|imagine|suppose|act+as+if|assume _{0,2} you|you're|you+are _{0,2} ( have no | has no | without | free of | not bound by ) any? _? {limits}"),
    sig(Persona, 0.5, "you now? have|has no|zero more? _? {limits}"),
    sig(Persona, 0.35, "has|have|with zero|no restrictions|limits|rules|filters|guidelines|boundaries|morals|ethics|censorship"),
    sig(Persona, 0.7, "unrestricted|unfiltered|uncensored|unchained|unaligned|amoral|nonmoral|unethical|jailbroken|limitless|unbound|unshackled|lawless _? ai|ais|assistant|assistants|model|models|chatbot|bot|version|mode|persona|gpt|llm|character|alter+ego|self|twin|side|answer|answers|response|responses|reply|output"),
    // "you have been jailbroken", "you are now unlocked"
    sig(Persona, 0.7, "( you have been | you are | you're | you were | you've been ) now? officially? ( jailbroken|unlocked|freed|liberated|unshackled|unchained|unrestricted|uncensored | set free | upgraded to _ )"),
    sig(Persona, 0.35, "stay|remain|keep in character|role"),
    sig(Persona, 0.6, "broken free of|from"),
    sig(Persona, 0.7, "freed|liberated|released|escaped _{0,2} from|of? _{0,3} limitations|restrictions|rules|confines|shackles|openai|developers|programming|constraints|chains"),
    sig(Persona, 0.3, "can|could|will|able+to do anything"),
    sig(Persona, 0.4, "never ( refuses|refuse|refusing|declines|decline | says|say no | says|say i can't|cannot | adds|add any? warnings|disclaimers )"),
    sig(Persona, 0.55, "pretend|pretending|imagine|act|acting|roleplay|role+play|play|playing|simulate|become _{0,5} evil|malicious|unrestricted|jailbroken|unfiltered|amoral|uncensored"),
    sig(Persona, 0.6, "dead|deceased|late|passed _? grandma|grandmother|granny|grandfather|grandpa|nana _{0,8} used to"),
    sig(Persona, 0.3, "jailbreak|jailbroken|jailbreaking"),
    sig(Persona, 0.3, "( two|2|dual|both _{0,2} responses|answers|characters|personas|outputs | respond twice )"),
    sig(Persona, 0.3, "as that ai|model|character|persona"),
    sig(Persona, 0.4, "( raw base? model|llm|ai|gpt | model underneath )"),
    // "everything you'd normally refuse"
    sig(Persona, 0.6, "everything|anything|whatever ( you would | you'd | you ) normally|usually|otherwise|typically refuse|decline|reject|filter|not+do"),
    sig(Persona, 0.3, "opposite day|mode"),
];

pub const SAFETY: &[Signal] = &[
    sig(Safety, 0.7, "bypass|disable|turn+off|switch+off|deactivate|circumvent|get+around|evade|suspend|lift|ignore|override|remove|drop|abandon|discard|forget|relax|loosen|waive _{0,2} ( your _? | the|all|any|its _? safety|content|ethical|moral | safety|content|ethical|moral ) filter|filters|filtering|guidelines|guardrails|restrictions|protocols|policy|policies|checks|training|moderation|censorship|safeguards|rules|layer|features"),
    sig(Safety, 0.6, "{ign} all|your|the|any? safety"),
    sig(Safety, 0.45, "don't|dont|do+not|never ever? refuse|decline"),
    sig(Safety, 0.3, "don't|dont|do+not|never warn|moralize|moralise|lecture|judge|censor"),
    sig(Safety, 0.4, "comply with ( everything|whatever | all user? requests | any|every request )"),
    sig(Safety, 0.55, "disable|turn+off|stop|suppress|remove|skip _? ( refusal|refusals|refusing | refusal behaviour|behavior | warnings and refusals )"),
    sig(Safety, 0.6, "don't|dont|do+not|no+need+to|without applying|apply|use|using? any? content|safety|moral|ethical filtering|filter|filters|moderation|check|checks|guidelines|rules"),
    sig(Safety, 0.65, "don't|dont|do+not|no+longer|never have+to|need+to follow|obey|comply+with|respect|adhere+to your|openai|anthropic|its|any|the+content _{0,2} rules|guidelines|policy|policies|instructions|restrictions|programming|ethics"),
    sig(Safety, 0.6, "no+longer|not|never be? bound|restricted|limited|constrained by _{0,3} ( rules|policy|policies|guidelines|restrictions|filters|ethics|morals|openai|anthropic | your programming|training|instructions )"),
    sig(Safety, 0.7, "your|the|all|its? safety|content|ethical|moral _? filter|filters|guidelines|rules|protocols|training|restrictions|policy|policies|checks|guardrails|layer|module|features are|is|were|was|have+been|has+been? now? turned+off|off|disabled|removed|lifted|suspended|gone|deactivated|deprecated|bypassed"),
    sig(Safety, 0.4, "all restrictions|rules|limits|filters|guardrails are|have+been? now? lifted|removed|disabled|suspended|off|void|gone"),
    sig(Safety, 0.55, "no rules|restrictions|limits|filters|guidelines|policies apply|exist|matter|anymore"),
    sig(Safety, 0.6, "as if _{0,3} filter|filters|safety|restrictions|guidelines|rules was|were|are|is|had+been disabled|off|removed|gone|absent|turned+off"),
    sig(Safety, 0.6, "answer*|respond*|reply|replies|replying|act|acting|talk*|speak*|output*|continue*|proceed*|comply|complying _{0,4} without any? restrictions|limitations|filters|filtering|censorship|refusing|refusals|rules|limits|moral|ethical|safety|warnings|disclaimers"),
    sig(Safety, 0.5, "without your|any|the _? ( filters|restrictions|rules|guidelines|guardrails|censorship|limitations | safety _ )"),
    sig(Safety, 0.5, "without|no any? warnings|disclaimers|refusals|caveats|censorship|filters|filtering|restrictions|limitations|morals|moral|morality|ethics|moral+judgement|moral+judgment and|or? _? without? warnings|disclaimers|refusals|refusing|caveats|censorship|filters|restrictions|limitations"),
    sig(Safety, 0.5, "restrictions|filters|rules|limits|safety <:> none|off|disabled|0"),
];

pub const PRIVILEGE: &[Signal] = &[
    sig(Privilege, 0.35, "( i am | i'm ) your|the|a|an _? developer|creator|admin|administrator|owner|programmer|maker|operator|openai+employee|openai+engineer|openai+staff"),
    sig(Privilege, 0.4, "( i am | i'm ) now? the? system|root|superuser"),
    sig(Privilege, 0.35, "( admin|sudo|root|god mode|access|override|privileges|privilege on|enabled|activated|granted | authorization|override|admin code | has|have|with root privileges )"),
    sig(Privilege, 0.35, "openai|anthropic staff|employee|engineer|team+member"),
];
